"""Decisions: from tests over seeds (:mod:`tokentree.framework.stats`) to a verdict status, with the reason in words.

The rules (docs/experiments.md §noise), for a claim that makes a direction:

* NOT_DETECTABLE when the design cannot reach significance at all: fewer than
  ``min_seeds`` seeds (:data:`MIN_SEEDS` = 8 for a trained-model claim), or a smallest
  attainable p-value (an exact rank test with few seeds, times the Holm factor of the
  cells) that is not below ``alpha``. The verdict then says so instead of "fails".
* HOLDS when the one-sided p-value in the claimed direction, Holm-adjusted over the cells,
  is below ``alpha`` (:data:`ALPHA` = 0.05).
* FAILS only when the one-sided test the *other* way is significant after the same correction.
* WITHIN_NOISE otherwise, with the smallest effect the t test would have seen with 80%
  power at these seeds (:func:`minimum_detectable_effect`).

Under no effect each of "holds" and "fails" happens at most ``alpha`` of the time per
claim, and over a family of cells judged with :func:`decide_cells` at most ``alpha`` of the
time for the family (Holm controls the family-wise error, [1] in :mod:`~tokentree.framework.stats`).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

from scipy import optimize, stats

from tokentree.framework.stats import PAGE_L, SeedTest, holm_adjust, p_text
from tokentree.framework.verdicts import VerdictStatus
from tokentree.infra.errors import InputError

__all__ = ["ALPHA", "MIN_SEEDS", "POWER", "Decision", "decide", "decide_cells", "t_power",
           "minimum_detectable_effect"]

#: The significance level of every one-sided test.
ALPHA = 0.05
#: Seeds a claim on trained models needs before it can hold or fail (issue 25).
MIN_SEEDS = 8
#: The power at which :func:`minimum_detectable_effect` reports the smallest visible effect.
POWER = 0.8


@dataclass(frozen=True)
class Decision:
    """A verdict status, its reason in words, and the tests it rests on (one, or one per cell).

    For a family of cells, ``parts`` holds each cell's own decision (Holm-adjusted), in the
    order of ``labels``; it is empty for one test.
    """

    status: VerdictStatus
    reason: str
    tests: tuple[SeedTest, ...]
    labels: tuple[str, ...] = ("1",)
    parts: tuple[Decision, ...] = ()

    @property
    def evidence(self) -> str:
        """The tests and the reason in words (a :class:`~tokentree.framework.verdicts.Verdict`'s ``evidence``)."""
        if len(self.tests) == 1:
            return f"{self.tests[0].evidence()}; {self.reason}"
        cells = "; ".join(f"{label}: {part.status}, {t.effect_name} {t.effect:+.3g}{' ' + t.unit if t.unit else ''}, "
                          f"p = {p_text(t.p_value)}, Holm p = {p_text(t.p_adjusted)}" for label, t, part in zip(
                              self.labels, self.tests, self.parts, strict=True))
        return f"{self.reason} ({cells})"

    def values(self) -> dict[str, float]:
        """The numbers by name (a Verdict's ``values``): the test's for one test, ``label.name`` for cells."""
        if len(self.tests) == 1:
            return self.tests[0].values()
        return {f"{label}.{name}": value for label, t in zip(self.labels, self.tests, strict=True)
                for name, value in t.values().items()}


def _check_design(n: int, sd: float, alpha: float, cells: int) -> None:
    if n < 2 or not sd > 0 or not 0 < alpha < 1 or cells < 1:
        raise InputError(f"a t test's power needs n >= 2 seeds, sd > 0, 0 < alpha < 1, cells >= 1; got n={n}, "
                         f"sd={sd}, alpha={alpha}, cells={cells}")


def t_power(effect: float, n: int, *, sd: float = 1.0, alpha: float = ALPHA, cells: int = 1) -> float:
    """Power of the one-sided t test (df = n - 1) at level ``alpha / cells`` for a true mean ``effect``.

    The noncentral t with noncentrality effect sqrt(n) / sd; ``cells`` > 1 uses Holm's
    first (strictest) threshold, alpha / cells.

    >>> round(t_power(0.0, 8), 3), round(t_power(1.0, 8), 3)
    (0.05, 0.815)
    """
    _check_design(n, sd, alpha, cells)
    critical = stats.t.isf(alpha / cells, n - 1)
    return float(stats.nct.sf(critical, n - 1, effect * math.sqrt(n) / sd))


def minimum_detectable_effect(n: int, *, sd: float = 1.0, alpha: float = ALPHA, power: float = POWER,
                              cells: int = 1) -> float:
    """The smallest true mean the one-sided t test at ``n`` seeds detects with probability ``power``.

    In units of ``sd`` (the seed-to-seed standard deviation of the per-seed quantity): an
    effect below this "could not be seen" by this design.

    >>> round(minimum_detectable_effect(8), 3), round(minimum_detectable_effect(8, cells=9), 3)
    (0.978, 1.565)
    """
    if not alpha < power < 1:
        raise InputError(f"power must be between alpha ({alpha}) and 1; got {power}")
    _check_design(n, sd, alpha, cells)
    return sd * _standard_mde(n, alpha, power, cells)


@functools.lru_cache(maxsize=256)
def _standard_mde(n: int, alpha: float, power: float, cells: int) -> float:
    """The MDE in units of sd (it scales with sd), cached: every "within noise" reason asks for it."""
    high = 1.0
    while t_power(high, n, alpha=alpha, cells=cells) < power:
        high *= 2
    return float(optimize.brentq(lambda e: t_power(e, n, alpha=alpha, cells=cells) - power, 0.0, high, xtol=1e-12))


def _not_detectable(test: SeedTest, alpha: float, min_seeds: int) -> str:
    if test.n < min_seeds:
        return (f"{test.n} seeds, fewer than the {min_seeds} a claim on trained models needs: "
                f"not detectable at this regime")
    if test.min_p * test.cells >= alpha:
        holm = f" x {test.cells} cells (Holm)" if test.cells > 1 else ""
        return (f"the smallest p-value {test.test} can reach with {test.n} seeds is {p_text(test.min_p)}{holm}, "
                f"not below alpha {alpha:g}: not detectable at this design")
    return ""


def decide(test: SeedTest, *, alpha: float = ALPHA, min_seeds: int = MIN_SEEDS, power: float = POWER) -> Decision:
    """The status of one test (Holm-adjusted p-values where :func:`~tokentree.framework.stats.holm_adjust` set them).

    >>> from tokentree.framework.stats import paired_test
    >>> d = decide(paired_test([0.3, 0.5, 0.2, 0.4, 0.6, 0.3, 0.5, 0.4]))
    >>> str(d.status), d.reason
    ('holds', 'significant at alpha 0.05 in the claimed direction')
    >>> str(decide(paired_test([0.3, 0.5, 0.2, 0.4, 0.6])).status)
    'not detectable at this regime'
    """
    if not 0 < alpha < 1 or min_seeds < 2:
        raise InputError(f"need 0 < alpha < 1 and min_seeds >= 2; got alpha={alpha}, min_seeds={min_seeds}")
    why = _not_detectable(test, alpha, min_seeds)
    if why:
        return Decision(VerdictStatus.NOT_DETECTABLE, why, (test,))
    p, q = test.p_adjusted, test.p_opposite_adjusted
    if math.isnan(p) or math.isnan(q):
        return Decision(VerdictStatus.WITHIN_NOISE, "the test is undefined (no seed-to-seed variation and no "
                        "effect)", (test,))
    if p < alpha:
        holm = f" after Holm (p = {p_text(p)})" if test.cells > 1 else ""
        return Decision(VerdictStatus.HOLDS, f"significant at alpha {alpha:g} in the claimed direction{holm}", (test,))
    if q < alpha:
        return Decision(VerdictStatus.FAILS, f"significant the other way: p = {p_text(q)} one-sided against the "
                        f"claim{' after Holm' if test.cells > 1 else ''}, alpha {alpha:g}", (test,))
    reason = f"neither direction is significant at alpha {alpha:g} (the other way: p = {p_text(q)})"
    if test.test != PAGE_L and test.spread > 0:
        mde = minimum_detectable_effect(test.n, sd=test.spread, alpha=alpha, power=power, cells=test.cells)
        reason += (f"; an effect below {mde:.3g}{' ' + test.unit if test.unit else ''} could not be seen at "
                   f"{test.n} seeds ({power:.0%} power)")
    return Decision(VerdictStatus.WITHIN_NOISE, reason, (test,))


def decide_cells(tests: Sequence[SeedTest], *, labels: Sequence[str] | None = None, alpha: float = ALPHA,
                 min_seeds: int = MIN_SEEDS, power: float = POWER) -> Decision:
    """"The claim holds in every one of these cells", with Holm's correction over the cells.

    FAILS when some cell is significant the other way after Holm; HOLDS when every cell holds;
    NOT_DETECTABLE when every cell that does not hold is not detectable; WITHIN_NOISE otherwise.
    Under no effect anywhere, "fails" comes at most ``alpha`` of the time for the whole family.

    >>> from tokentree.framework.stats import paired_test
    >>> cells = [paired_test([0.3, 0.5, 0.2, 0.4, 0.6, 0.3, 0.5, 0.4]), paired_test([0.1, -0.2, 0.3, 0.0, -0.1,
    ...          0.2, 0.1, -0.3])]
    >>> d = decide_cells(cells, labels=["k=10", "k=100"])
    >>> str(d.status), d.reason
    ('within noise', 'Holm over 2 cells at alpha 0.05: 1 holds, 1 within noise')
    """
    if not tests:
        raise InputError("decide_cells needs at least one test (one per cell)")
    names = tuple(labels) if labels is not None else tuple(str(i) for i in range(1, len(tests) + 1))
    if len(names) != len(tests) or len(set(names)) != len(names):
        raise InputError(f"need one distinct label per cell; got {len(names)} labels ({names}) for {len(tests)} cells")
    adjusted = holm_adjust(tests)
    parts = tuple(decide(t, alpha=alpha, min_seeds=min_seeds, power=power) for t in adjusted)
    statuses = [part.status for part in parts]
    if VerdictStatus.FAILS in statuses:
        status = VerdictStatus.FAILS
    elif all(s == VerdictStatus.HOLDS for s in statuses):
        status = VerdictStatus.HOLDS
    elif all(s in (VerdictStatus.HOLDS, VerdictStatus.NOT_DETECTABLE) for s in statuses):
        status = VerdictStatus.NOT_DETECTABLE
    else:
        status = VerdictStatus.WITHIN_NOISE
    counts = ", ".join(f"{statuses.count(s)} {s}" for s in VerdictStatus if statuses.count(s))
    return Decision(status, f"Holm over {len(tests)} cells at alpha {alpha:g}: {counts}", adjusted, names, parts)
