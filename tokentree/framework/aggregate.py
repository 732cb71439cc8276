"""Descriptive summaries over seeds: means, spreads, signs, log-log slopes.

Only descriptions: whether a change stands out of the seed noise is a test
(:mod:`tokentree.framework.stats`) and a verdict (:mod:`tokentree.framework.decisions`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from tokentree.infra.errors import InputError

__all__ = ["SeedStats", "seed_stats", "mean_sd_text", "loglog_slope"]


@dataclass(frozen=True)
class SeedStats:
    """Mean and spread of one quantity over seeds.

    ``std`` is the sample standard deviation (nan for one seed); ``n_positive`` and
    ``n_negative`` count the seeds on each side of zero.
    """

    n: int
    mean: float
    std: float
    n_positive: int
    n_negative: int

    @property
    def standard_error(self) -> float:
        return self.std / math.sqrt(self.n) if self.n > 1 else math.nan


def seed_stats(values: Sequence[float] | np.ndarray) -> SeedStats:
    """:class:`SeedStats` of one value per seed.

    >>> s = seed_stats([1.0, 2.0, 3.0])
    >>> s.mean, s.std, s.standard_error
    (2.0, 1.0, 0.5773502691896258)
    """
    x = np.asarray(values, dtype=np.float64)
    if x.ndim != 1 or x.shape[0] == 0:
        raise InputError(f"need one value per seed; got shape {x.shape}")
    return SeedStats(
        n=int(x.shape[0]),
        mean=float(x.mean()),
        std=float(x.std(ddof=1)) if x.shape[0] > 1 else math.nan,
        n_positive=int((x > 0).sum()),
        n_negative=int((x < 0).sum()),
    )


def mean_sd_text(values: Sequence[float] | np.ndarray, fmt: str = ".3g", missing: str = "n/a") -> str:
    """"mean ± sd" of the finite values (the sample sd; the mean alone for one value; ``missing`` for none).

    >>> mean_sd_text([1.0, 2.0, 3.0, float("nan")]), mean_sd_text([0.5], ".2f"), mean_sd_text([])
    ('2 ± 1', '0.50', 'n/a')
    """
    x = np.asarray(values, dtype=np.float64)
    x = x[np.isfinite(x)]
    if not x.size:
        return missing
    return f"{x.mean():{fmt}} ± {x.std(ddof=1):{fmt}}" if x.size > 1 else f"{x.mean():{fmt}}"


def loglog_slope(x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray) -> float:
    """Least-squares slope of log |y| against log x (nan with fewer than two finite points).

    >>> round(loglog_slope([1, 10, 100], [-2, -20, -200]), 12)
    1.0
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        lx, ly = np.log(np.asarray(x, dtype=np.float64)), np.log(np.abs(np.asarray(y, dtype=np.float64)))
    if lx.shape[0] < 2 or not np.all(np.isfinite(ly)):
        return math.nan
    return float(np.polyfit(lx, ly, 1)[0])
