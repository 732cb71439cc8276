"""Verdicts: one claim of the theory or of a paper, what a run measured, and whether they agree.

A verdict never rests on a number fixed in advance: every judge compares this run's
measurements with the prediction, using the named tolerances of
:mod:`tokentree.verification.tolerances`. ``reference`` points at the section of
docs/theory.md or docs/experiments.md where the claim is stated.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field

from tokentree.infra.results import Record

__all__ = ["VerdictStatus", "Verdict"]


class VerdictStatus(enum.StrEnum):
    """How a claim fared in a run.

    HOLDS: the measurement agrees with the claim. FAILS_AS_PREDICTED: a control where
    the theory says the effect must fail, and it does. UNEXPECTED: an exact claim of the
    theory that the measurement contradicts (or a predicted failure that did not come).
    FAILS: an empirical claim (of a paper, on trained models) that the measurement
    contradicts beyond the seed-to-seed noise. WITHIN_NOISE: the measured effect is
    smaller than its seed-to-seed spread, so it neither supports nor contradicts the
    claim. NOT_DETECTABLE: the run's regime or design could not show the effect either way
    (e.g. too few seeds for the test, or the claim's premise on the data not met), so the
    verdict says so instead of "fails". NOT_APPLICABLE: the claim's premise does not hold for these data (e.g. a
    closed form for disjoint symbol sets on overlapping ones).
    """

    HOLDS = "holds"
    FAILS_AS_PREDICTED = "fails as predicted"
    UNEXPECTED = "unexpected"
    FAILS = "fails"
    WITHIN_NOISE = "within noise"
    NOT_DETECTABLE = "not detectable at this regime"
    NOT_APPLICABLE = "not applicable"

    @classmethod
    def judge(cls, agrees: bool, *, control: bool = False) -> VerdictStatus:
        """HOLDS (FAILS_AS_PREDICTED for a control) when ``agrees``, UNEXPECTED otherwise."""
        if not agrees:
            return cls.UNEXPECTED
        return cls.FAILS_AS_PREDICTED if control else cls.HOLDS


@dataclass(frozen=True)
class Verdict(Record):
    """One claim, its verdict, and the evidence from this run.

    Attributes
    ----------
    item : str
        The claim's label, e.g. "5.2" (docs/theory.md §5.2).
    claim : str
        The claim in words.
    status : VerdictStatus
    evidence : str
        The numbers this run measured, in words.
    reference : str
        Where the claim is stated, e.g. "docs/theory.md §5.2".
    values : Mapping[str, float]
        The numbers behind ``evidence``, by name (what a test or a notebook reads instead of
        parsing the words), e.g. ``{"max_residual": 3e-13, "tolerance": 1e-9}``.
    """

    item: str
    claim: str
    status: VerdictStatus
    evidence: str
    reference: str
    values: Mapping[str, float] = field(default_factory=dict)
