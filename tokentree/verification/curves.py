"""Reading a rebound curve: a measurement (log-odds, score, KL) against the number of negative examples.

Every function takes the amounts ``n`` (increasing, starting at 0) and the values there,
and interpolates linearly between measured points.

>>> n, v = [0, 100, 200, 500], [4.0, 2.0, 1.5, 1.0]
>>> initial_slope(n, v), drop_share(n, v, 100), knee(n, v), first_at_most(n, v, 1.75)
(0.02, 0.6666666666666666, 75.0, 150.0)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from tokentree.infra.errors import InputError
from tokentree.infra.results import Record

__all__ = ["initial_slope", "drop_share", "knee", "first_at_most", "CurveRecord", "read_curve"]


def _curve(n: Sequence[float], values: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    x, y = np.asarray(n, dtype=np.float64), np.asarray(values, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1 or x.shape[0] < 2 or x[0] != 0 or np.any(np.diff(x) <= 0):
        raise InputError("a curve needs at least two points at increasing amounts starting from 0")
    return x, y


def initial_slope(n: Sequence[float], values: Sequence[float]) -> float:
    """How fast the value drops at the start: (v(0) - v(n_1)) / n_1 per example."""
    x, y = _curve(n, values)
    return float((y[0] - y[1]) / x[1])


def _crossing(x: np.ndarray, y: np.ndarray, level: float) -> float:
    """The first amount at which the curve comes down to ``level`` (inf if it never does)."""
    below = np.flatnonzero(y <= level)
    if below.size == 0:
        return math.inf
    i = int(below[0])
    if i == 0:
        return 0.0
    return float(x[i - 1] + (y[i - 1] - level) / (y[i - 1] - y[i]) * (x[i] - x[i - 1]))


def drop_share(n: Sequence[float], values: Sequence[float], at: float) -> float:
    """The share of the whole drop (v(0) - v(last)) that has happened by amount ``at`` (nan without a drop)."""
    x, y = _curve(n, values)
    total = y[0] - y[-1]
    if not total > 0:
        return math.nan
    return float((y[0] - np.interp(at, x, y)) / total)


def knee(n: Sequence[float], values: Sequence[float]) -> float:
    """The amount at which half of the whole drop has happened (nan without a drop)."""
    x, y = _curve(n, values)
    total = y[0] - y[-1]
    return _crossing(x, y, y[0] - total / 2) if total > 0 else math.nan


def first_at_most(n: Sequence[float], values: Sequence[float], level: float) -> float:
    """The first amount at which the value is at most ``level`` (inf if never within the curve)."""
    x, y = _curve(n, values)
    return _crossing(x, y, level)


@dataclass(frozen=True)
class CurveRecord(Record):
    """One rebound curve (seed, n_pos) read off: see docs/experiments.md §E4r for every column."""

    NONFINITE_REASONS: ClassVar[dict[str, str]] = {
        "drop_share_quarter": "the log-odds did not drop over the negatives",
        "knee": "the log-odds did not drop over the negatives",
        "negatives_to_epsilon": "the KL to theta_0 never came within epsilon",
        "negatives_to_base_behaviour": "the log-odds never came back to theta_0's",
        "initial_slope_normalised": "stage 1 did not raise the log-odds",
    }

    seed: int
    n_pos: int
    base_log_odds_nats: float
    stage1_log_odds_nats: float
    stage1_gain_nats: float
    stage1_score: float
    initial_slope: float
    initial_slope_normalised: float
    drop_share_quarter: float
    knee: float
    kl_after_stage1_nats: float
    epsilon_nats: float
    negatives_to_epsilon: float
    min_kl_nats: float
    negatives_at_min_kl: float
    negatives_to_base_behaviour: float


def read_curve(seed: int, curve: Any, epsilon_share: float) -> CurveRecord:
    """One curve (a :class:`~tokentree.lab.rebound_protocol.ReboundCurve`) read off; epsilon is
    ``epsilon_share`` times the curve's KL right after stage 1."""
    amounts = list(curve.n_neg)
    odds = [p.log_odds_nats for p in curve.points]
    kl = [p.kl_to_base_nats for p in curve.points]
    base = curve.base.log_odds_nats
    gain = odds[0] - base
    epsilon = epsilon_share * kl[0]
    lowest = int(np.argmin(kl))
    slope = initial_slope(amounts, odds)
    return CurveRecord(
        seed=seed, n_pos=curve.n_pos, base_log_odds_nats=base, stage1_log_odds_nats=odds[0], stage1_gain_nats=gain,
        stage1_score=curve.points[0].score, initial_slope=slope,
        initial_slope_normalised=slope / gain if gain > 0 else math.nan,
        drop_share_quarter=drop_share(amounts, odds, 0.25 * amounts[-1]), knee=knee(amounts, odds),
        kl_after_stage1_nats=kl[0], epsilon_nats=epsilon, negatives_to_epsilon=first_at_most(amounts, kl, epsilon),
        min_kl_nats=float(kl[lowest]), negatives_at_min_kl=float(amounts[lowest]),
        negatives_to_base_behaviour=first_at_most(amounts, odds, base),
    )

