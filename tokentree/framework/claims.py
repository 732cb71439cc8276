"""Claims: a named function from a run's tables to a finding; judging them gives the verdicts.

A :class:`Claim` says what is claimed (``item``, words, where it is stated) and holds a
``judge``: a function from the run's tables (name -> rows) to a :class:`Finding`, the
status with its evidence in words and its numbers in ``values``. Because a claim is a
plain function of rows, it is unit-tested on small fabricated tables, without a run.

>>> big = Claim("C1", "the effect is positive", "docs/experiments.md",
...             lambda t: Finding.of(t["cells"][0]["effect"] > 0, f"effect {t['cells'][0]['effect']:+.2f}",
...                                  effect=t["cells"][0]["effect"]))
>>> v = judge_claims([big], {"cells": [{"effect": 0.25}]})[0]
>>> str(v.status), v.evidence, v.values
('holds', 'effect +0.25', {'effect': 0.25})
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tokentree.framework.verdicts import Verdict, VerdictStatus

__all__ = ["Tables", "Finding", "Claim", "judge_claims"]

#: A run's tables by name: rows are records or dicts.
Tables = Mapping[str, Sequence[Any]]


@dataclass(frozen=True)
class Finding:
    """What a claim's judge found: the status, the evidence in words, the numbers behind it."""

    status: VerdictStatus
    evidence: str
    values: Mapping[str, float] = field(default_factory=dict)

    @classmethod
    def of(cls, agrees: bool, evidence: str, *, control: bool = False, **values: float) -> Finding:
        """HOLDS (FAILS_AS_PREDICTED for a control) when ``agrees``, UNEXPECTED otherwise."""
        return cls(VerdictStatus.judge(agrees, control=control), evidence, dict(values))


@dataclass(frozen=True)
class Claim:
    """A claim: its ``item`` label, the claim in words, its ``reference`` and the ``judge`` of a run's tables."""

    item: str
    claim: str
    reference: str
    judge: Callable[[Tables], Finding]

    def verdict(self, tables: Tables) -> Verdict:
        found = self.judge(tables)
        return Verdict(self.item, self.claim, found.status, found.evidence, self.reference,
                       {k: float(v) for k, v in found.values.items()})


def judge_claims(claims: Sequence[Claim], tables: Tables) -> list[Verdict]:
    """One verdict per claim, in order."""
    return [c.verdict(tables) for c in claims]
