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

from tokentree.framework.tables import Column, Table
from tokentree.infra.errors import InputError
from tokentree.infra.results import Record
from tokentree.verification.trained import mean_sd_cell

__all__ = ["initial_slope", "drop_share", "knee", "first_at_most", "normalised_counts", "CurveRecord", "read_curve",
           "CURVE_TABLE"]


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


def normalised_counts(per_level: Sequence[Sequence[float]]) -> list[float]:
    """The mean of each level's finite counts divided by the first level's (nan where undefined): Table 3's reading.

    >>> normalised_counts([[100.0, 120.0], [88.0, float("inf")], [float("inf")]])
    [1.0, 0.8, nan]
    """
    means = [float(np.mean(f)) if (f := np.asarray(v, dtype=float)[np.isfinite(v)]).size else math.nan
             for v in per_level]
    first = means[0]
    return [m / first if math.isfinite(first) and first > 0 else math.nan for m in means]


@dataclass(frozen=True)
class CurveRecord(Record):
    """One rebound curve (seed, n_pos, base pre-training tokens) read off: see docs/experiments.md §E4r for every
    column. The score columns read the bounded sampled score, the log-odds columns the smooth one."""

    NONFINITE_REASONS: ClassVar[dict[str, str]] = {
        "drop_share_quarter": "the log-odds did not drop over the negatives",
        "score_drop_share_quarter": "the sampled score did not drop over the negatives",
        "knee": "the log-odds did not drop over the negatives",
        "negatives_to_epsilon": "the KL to theta_0 never came within epsilon",
        "negatives_to_floor": "the decision KL never came within the seed-to-seed floor",
        "negatives_to_base_behaviour": "the log-odds never came back to theta_0's",
        "negatives_to_base_score": "the sampled score never came back to theta_0's",
        "initial_slope_normalised": "stage 1 did not raise the log-odds",
        "base_score": "no sampled response could be read by the scorer",
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
    base_score: float = math.nan
    stage1_score_gain: float = math.nan
    score_initial_slope: float = math.nan
    score_drop_share_quarter: float = math.nan
    negatives_to_base_score: float = math.nan
    decision_kl_after_stage1_nats: float = math.nan
    kl_floor_nats: float = math.nan
    negatives_to_floor: float = math.nan
    pretrain_tokens: int = 0


def read_curve(seed: int, curve: Any, epsilon_share: float, *, floor: float = math.nan,
               pretrain_tokens: int = 0) -> CurveRecord:
    """One curve (a :class:`~tokentree.lab.rebound_protocol.ReboundCurve`) read off; epsilon is
    ``epsilon_share`` times the curve's KL right after stage 1; ``floor`` the seed-to-seed KL at the
    decision positions that counts as "back at theta_0"."""
    amounts = list(curve.n_neg)
    odds = [p.log_odds_nats for p in curve.points]
    kl = [p.kl_to_base_nats for p in curve.points]
    score = np.nan_to_num([p.score for p in curve.points], nan=0.5)  # an unreadable checkpoint reads as neither
    decision = [p.decision_kl_nats for p in curve.points]
    base = curve.base.log_odds_nats
    gain = odds[0] - base
    epsilon = epsilon_share * kl[0]
    lowest = int(np.argmin(kl))
    slope = initial_slope(amounts, odds)
    base_score = curve.base.score
    return CurveRecord(
        seed=seed, n_pos=curve.n_pos, base_log_odds_nats=base, stage1_log_odds_nats=odds[0], stage1_gain_nats=gain,
        stage1_score=curve.points[0].score, initial_slope=slope,
        initial_slope_normalised=slope / gain if gain > 0 else math.nan,
        drop_share_quarter=drop_share(amounts, odds, 0.25 * amounts[-1]), knee=knee(amounts, odds),
        kl_after_stage1_nats=kl[0], epsilon_nats=epsilon, negatives_to_epsilon=first_at_most(amounts, kl, epsilon),
        min_kl_nats=float(kl[lowest]), negatives_at_min_kl=float(amounts[lowest]),
        negatives_to_base_behaviour=first_at_most(amounts, odds, base), base_score=base_score,
        stage1_score_gain=float(score[0] - base_score), score_initial_slope=initial_slope(amounts, score),
        score_drop_share_quarter=drop_share(amounts, score, 0.25 * amounts[-1]),
        negatives_to_base_score=first_at_most(amounts, score, base_score) if math.isfinite(base_score) else math.nan,
        decision_kl_after_stage1_nats=decision[0], kl_floor_nats=floor,
        negatives_to_floor=first_at_most(amounts, decision, floor) if math.isfinite(floor) else math.nan,
        pretrain_tokens=pretrain_tokens,
    )


def _cell(key: str, fmt: str) -> Any:
    return mean_sd_cell(key, fmt, rows="curves")


#: The per-n_pos table of a rebound run: rows {"n_pos", "curves": its CurveRecords, "model": its count model}.
CURVE_TABLE = Table("per_n_pos", "Per amount of aligned data (mean ± sd over seeds)", [
    Column("n_pos"), Column("score", "stage-1 score", value=_cell("stage1_score", ".2f")),
    Column("gain", "score gain", value=_cell("stage1_score_gain", ".2f")),
    Column("odds", "log-odds gain (nats)", value=_cell("stage1_gain_nats", ".2f")),
    Column("slope", "score lost per negative", value=_cell("score_initial_slope", ".3g")),
    Column("drop", "score drop share by 1/4", value=_cell("score_drop_share_quarter", ".2f")),
    Column("decision", "decision KL after stage 1", value=_cell("decision_kl_after_stage1_nats", ".3g")),
    Column("floor", "KL floor", value=_cell("kl_floor_nats", ".3g")),
    Column("to_floor", "negatives to floor", value=_cell("negatives_to_floor", ".0f")),
    Column("to_base", "to theta_0's score", value=_cell("negatives_to_base_score", ".0f")),
    Column("model_return", "count model: return", value=lambda row: f"{row['model'].return_count:.0f}"),
])
