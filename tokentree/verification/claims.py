"""Judging empirical claims over seeds: orderings, thresholds and sign tests, with "within noise".

A trained model's measurement varies from seed to seed, so an empirical claim gets one of
three verdicts (docs/experiments.md §noise): it *holds* when the effect has the claimed
direction and stands out of the noise (at least two standard errors of the per-seed
differences), it *fails* when the effect stands out in the other direction, and it is
*within noise* otherwise.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import TypeAlias

import numpy as np
from scipy import stats

from tokentree.framework.verdicts import VerdictStatus

#: The old rule (a sign at two standard errors): kept until rebound-scale and piggyback use framework.decisions.
RESOLVED_STANDARD_ERRORS = 2.0

#: Per-seed values: a list or an array.
Values: TypeAlias = Sequence[float] | np.ndarray

__all__ = ["direction", "ordered", "at_least", "all_of", "sign_test"]


def direction(differences: Values) -> VerdictStatus:
    """HOLDS if the per-seed ``differences`` are positive beyond noise, FAILS if negative, else WITHIN_NOISE.

    >>> str(direction([0.3, 0.25, 0.4])), str(direction([0.3, -0.25, 0.1])), str(direction([-1.0, -1.2, -0.9]))
    ('holds', 'within noise', 'fails')
    """
    d = np.asarray(differences, dtype=np.float64)
    d = d[np.isfinite(d)]
    if d.size < 2:
        return VerdictStatus.WITHIN_NOISE
    error = d.std(ddof=1) / math.sqrt(d.size)
    mean = float(d.mean())
    if abs(mean) < RESOLVED_STANDARD_ERRORS * error or mean == 0:
        return VerdictStatus.WITHIN_NOISE
    return VerdictStatus.HOLDS if mean > 0 else VerdictStatus.FAILS


def ordered(per_group: Sequence[Values]) -> VerdictStatus:
    """Whether a quantity increases from each group to the next (per-seed values, paired by seed).

    HOLDS when every step increases beyond noise; FAILS when any step decreases beyond
    noise; WITHIN_NOISE otherwise.
    """
    with np.errstate(invalid="ignore"):  # inf - inf (a run that never got there twice) is nan: left out
        return all_of([direction(np.asarray(b, float) - np.asarray(a, float))
                       for a, b in itertools.pairwise(per_group)])


def all_of(statuses: Sequence[VerdictStatus]) -> VerdictStatus:
    """A claim made of parts: FAILS if any part fails, HOLDS if every part holds, else WITHIN_NOISE.

    >>> str(all_of([VerdictStatus.HOLDS, VerdictStatus.WITHIN_NOISE])), str(all_of([]))
    ('within noise', 'within noise')
    """
    if VerdictStatus.FAILS in statuses:
        return VerdictStatus.FAILS
    if statuses and all(s == VerdictStatus.HOLDS for s in statuses):
        return VerdictStatus.HOLDS
    return VerdictStatus.WITHIN_NOISE


def at_least(values: Values, threshold: float) -> VerdictStatus:
    """HOLDS if the per-seed ``values`` exceed ``threshold`` beyond noise, FAILS if below, else WITHIN_NOISE."""
    return direction(np.asarray(values, dtype=np.float64) - threshold)


def sign_test(wins: int, total: int) -> float:
    """Two-sided binomial p-value of ``wins`` out of ``total`` under a fair coin (nan for no trials)."""
    if total <= 0:
        return math.nan
    return float(stats.binomtest(wins, total, 0.5).pvalue)
