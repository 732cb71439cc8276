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

import numpy as np

from tokentree.infra.errors import InputError

__all__ = ["initial_slope", "drop_share", "knee", "first_at_most"]


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
