"""Tests over seeds for trained-model claims: paired tests, trend tests, Holm's correction, seed clustering.

The unit of replication is the seed: runs that share a seed are averaged first
(:func:`cluster_by_seed`, or ``seeds=`` on every test), so ``n`` counts seeds, never runs.
Every test is one-sided in the direction the claim makes (``alternative``: "greater" for an
effect above zero or a quantity that increases along the levels, "less" for the reverse) and
also reports the one-sided p-value the other way, so that one result can be judged *holds*,
*fails* or *within noise* (:mod:`tokentree.framework.decisions`, docs/experiments.md §noise).
Intervals are two-sided at ``confidence`` = 1 - 2 alpha = 90% by default: a 90% t interval
excludes zero exactly when one of the two one-sided t tests at 5% rejects.

==========================  ===================================================================
:func:`paired_test`         paired t (df = n - 1) or Wilcoxon signed-rank on per-seed differences
:func:`slope_test`          trend: each seed's least-squares slope on log x, then a t test over seeds
:func:`page_test`           trend: Page's L over k >= 3 ordered levels, seeds as blocks
:func:`holm`                Holm's step-down adjusted p-values, in the input order
:func:`holm_adjust`         the same over a family of :class:`SeedTest` (both directions)
:func:`cluster_by_seed`     the mean over the runs of each seed
==========================  ===================================================================

References
----------
1. Holm, S. (1979). A simple sequentially rejective multiple test procedure. Scand. J. Statist. 6, 65-70.
2. Page, E. B. (1963). Ordered hypotheses for multiple treatments. J. Amer. Statist. Assoc. 58, 216-230.
3. Lakens, D. (2013). Calculating and reporting effect sizes. Front. Psychol. 4:863 (Cohen's d_z).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, TypeAlias

import numpy as np
from scipy import special, stats

from tokentree.infra.errors import InputError
from tokentree.infra.results import Record

__all__ = [
    "Alternative", "PAIRED_T", "WILCOXON", "SLOPE_T", "PAGE_L", "SeedTest", "SeedMeans",
    "cluster_by_seed", "paired_test", "paired_test_by_seed", "slope_test", "page_test", "holm", "holm_adjust", "p_text",
]

#: Per-seed (or per-run) values: a list or an array.
Values: TypeAlias = Sequence[float] | np.ndarray
Alternative: TypeAlias = Literal["greater", "less"]
PAIRED_T, WILCOXON, SLOPE_T, PAGE_L = "paired t", "Wilcoxon signed-rank", "slope t", "Page's L"
_OPPOSITE = {"greater": "less", "less": "greater"}


def p_text(p: float) -> str:
    """A p-value in words, to two significant digits.

    >>> p_text(0.00812), p_text(0.25), p_text(3.1e-7)
    ('0.0081', '0.25', '3.1e-07')
    """
    return f"{p:.2g}"


@dataclass(frozen=True)
class SeedTest(Record):
    """One one-sided test over seeds, with its effect size and interval.

    Attributes
    ----------
    test : str
        :data:`PAIRED_T`, :data:`WILCOXON`, :data:`SLOPE_T` or :data:`PAGE_L`.
    alternative : str
        The direction the claim makes: "greater" or "less".
    n : int
        Seeds (independent units) after clustering.
    statistic, df : float
        t and its degrees of freedom (n - 1); W+ (sum of the ranks of the positive
        differences) or Page's L, with ``df`` nan.
    p_value, p_opposite : float
        One-sided p-values in the claimed direction and the other way (nan when undefined).
    p_adjusted, p_opposite_adjusted : float
        The same after Holm's correction over ``cells`` tests (equal to the raw ones for one cell).
    effect, effect_low, effect_high, confidence : float
        The mean per-seed quantity (``effect_name``: a mean difference, a slope, Spearman's rho)
        and its two-sided interval at ``confidence``.
    effect_size : float
        Cohen's d_z: (effect - null) / spread.
    spread : float
        Sample standard deviation over seeds of the per-seed quantity.
    min_p : float
        The smallest p-value this test can reach with these seeds (0 for a t test;
        2^-n for an exact signed-rank test, (1/k!)^n for an exact Page test).
    """

    test: str
    alternative: str
    n: int
    statistic: float
    df: float
    p_value: float
    p_opposite: float
    p_adjusted: float
    p_opposite_adjusted: float
    effect: float
    effect_low: float
    effect_high: float
    confidence: float
    effect_size: float
    spread: float
    min_p: float
    effect_name: str = "mean"
    unit: str = ""
    null: float = 0.0
    cells: int = 1

    @property
    def p_two_sided(self) -> float:
        """The two-sided p-value, unadjusted: twice the smaller one-sided one (at most 1; nan for one seed).

        >>> round(paired_test([0.1, 0.2, 0.15]).p_two_sided, 4)
        0.0351
        """
        return float(np.minimum(1.0, 2 * np.minimum(self.p_value, self.p_opposite)))

    def values(self) -> dict[str, float]:
        """The numbers of this test by name (a :class:`~tokentree.framework.verdicts.Verdict`'s ``values``)."""
        names = ("n", "statistic", "df", "p_value", "p_opposite", "p_adjusted", "p_opposite_adjusted", "effect",
                 "effect_low", "effect_high", "confidence", "effect_size", "spread", "min_p", "null", "cells")
        return {name: float(getattr(self, name)) for name in names}

    def evidence(self) -> str:
        """The test in words, e.g. "mean +0.012 nats [+0.004, +0.02] (90% CI), d_z = 1.1, t(7) = 3.1, ..."."""
        unit = f" {self.unit}" if self.unit else ""
        against = f" against {self.null:g}" if self.null else ""
        statistic = {PAIRED_T: f"t({self.df:.0f}) = {self.statistic:.2f}", SLOPE_T: f"t({self.df:.0f}) = "
                     f"{self.statistic:.2f}", WILCOXON: f"Wilcoxon W+ = {self.statistic:g}"}.get(
                         self.test, f"{self.test} = {self.statistic:g}")
        holm = f", Holm over {self.cells} cells p = {p_text(self.p_adjusted)}" if self.cells > 1 else ""
        return (f"{self.effect_name} {self.effect:+.3g}{unit} [{self.effect_low:+.3g}, {self.effect_high:+.3g}] "
                f"({self.confidence:.0%} CI){against}, d_z = {self.effect_size:.2f}, {statistic}, "
                f"{self.n} seeds, p = {p_text(self.p_value)} one-sided ({self.alternative}){holm}")


@dataclass(frozen=True)
class SeedMeans:
    """The mean over runs of each seed: ``seeds`` sorted, ``values`` one row per seed, ``runs`` per seed."""

    seeds: np.ndarray
    values: np.ndarray
    runs: np.ndarray


def cluster_by_seed(seeds: Sequence[int] | np.ndarray, values: Values) -> SeedMeans:
    """Average the runs that share a seed, so that a test counts seeds (clustering by seed).

    ``values`` has one entry (or one row) per run, in the order of ``seeds``.

    >>> m = cluster_by_seed([3, 1, 3], [1.0, 5.0, 2.0])
    >>> m.seeds.tolist(), m.values.tolist(), m.runs.tolist()
    ([1, 3], [5.0, 1.5], [1, 2])
    """
    s, x = np.asarray(seeds), np.asarray(values, dtype=np.float64)
    if s.ndim != 1 or x.ndim not in (1, 2) or x.shape[0] != s.shape[0] or not s.size:
        raise InputError(f"need one seed per run and one value (or row) per run; got seeds of shape {s.shape} and "
                         f"values of shape {x.shape}: pass seeds[i] for values[i]")
    unique, inverse, runs = np.unique(s, return_inverse=True, return_counts=True)
    sums = np.zeros((unique.size, *x.shape[1:]))
    np.add.at(sums, inverse, x)
    return SeedMeans(unique, sums / runs.reshape(-1, *([1] * (x.ndim - 1))), runs)


def _per_seed(values: Values, seeds: Sequence[int] | np.ndarray | None, ndim: int, what: str, *,
              finite: bool = True) -> np.ndarray:
    x = np.asarray(values, dtype=np.float64)
    if x.ndim != ndim or not x.size:
        raise InputError(f"{what}: need a {'vector' if ndim == 1 else 'matrix (seeds x levels)'} of per-seed values; "
                         f"got shape {x.shape}")
    if np.isnan(x).any():
        raise InputError(f"{what}: values contain nan at {np.argwhere(np.isnan(x))[0].tolist()}; drop that run "
                         "or record what it measured")
    if finite and np.isinf(x).any():
        raise InputError(f"{what}: values must be finite; got {x[np.isinf(x)][0]} (a run that never reached a "
                         "threshold has no mean: use page_test, which ranks infinities)")
    return x if seeds is None else cluster_by_seed(seeds, x).values


def _location(x: np.ndarray, test: str, alternative: Alternative, *, null: float, unit: str, effect_name: str,
              confidence: float, interval: str, rng: int | np.random.Generator | None) -> SeedTest:
    """Mean, interval and d_z of per-seed ``x``, with a one-sided t test of mean(x) = ``null``."""
    if alternative not in _OPPOSITE:
        raise InputError(f"alternative must be 'greater' or 'less', the direction the claim makes; got {alternative!r}")
    if not 0 < confidence < 1 or interval not in ("t", "bootstrap"):
        raise InputError(f"need 0 < confidence < 1 and interval 't' or 'bootstrap'; got {confidence}, {interval!r}")
    n, mean = x.size, float(x.mean())
    sd = float(x.std(ddof=1)) if n > 1 else math.nan
    df = float(n - 1) if n > 1 else math.nan
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.float64(mean - null) / np.float64(sd / math.sqrt(n))
        d_z = float(np.float64(mean - null) / np.float64(sd))
    # special.stdtr is the t cdf as a plain ufunc: scipy.stats.t.sf's dispatch would dominate the run time
    p_greater, p_less = (float(special.stdtr(df, -t)), float(special.stdtr(df, t))) if n > 1 else (math.nan,) * 2
    if interval == "bootstrap":
        if rng is None:
            raise InputError("a bootstrap interval draws resamples: pass rng=SEED (an int) for a reproducible one")
        low, high = (mean, mean) if n < 2 or sd == 0 else (float(v) for v in stats.bootstrap(
            (x,), np.mean, confidence_level=confidence, rng=rng).confidence_interval)
    else:
        half = special.stdtrit(df, (1 + confidence) / 2) * sd / math.sqrt(n) if n > 1 else math.nan
        low, high = mean - half, mean + half
    p, q = (p_greater, p_less) if alternative == "greater" else (p_less, p_greater)
    return SeedTest(test, alternative, n, float(t), df, p, q, p, q, mean, float(low), float(high), confidence, d_z,
                    sd, 0.0, effect_name, unit, null)


def paired_test(treatment: Values, control: Values | None = None, *, alternative: Alternative = "greater",
                method: Literal["t", "wilcoxon"] = "t", seeds: Sequence[int] | np.ndarray | None = None,
                null: float = 0.0, unit: str = "", confidence: float = 0.9, interval: Literal["t", "bootstrap"] = "t",
                rng: int | np.random.Generator | None = None) -> SeedTest:
    """One-sided paired test of ``treatment - control`` (or of ``treatment`` alone) against ``null``.

    ``method="t"``: the t statistic of the mean per-seed difference, df = n - 1.
    ``method="wilcoxon"``: the signed-rank test (:func:`scipy.stats.wilcoxon`, exact for
    n <= 50 distinct nonzero differences, exhaustive permutations with ties or zeros for
    n <= 13; zero differences dropped). Both report the mean difference, its interval
    (``interval="t"``, or a seeded BCa ``"bootstrap"`` over seeds) and Cohen's d_z.
    With ``seeds``, runs that share a seed are averaged first.

    Examples
    --------
    >>> r = paired_test([0.12, 0.15, 0.11, 0.14, 0.10, 0.16, 0.13, 0.12], [0.1] * 8, unit="nats")
    >>> r.n, r.df, round(r.effect, 4), round(r.statistic, 2), round(r.p_value, 5)
    (8, 7.0, 0.0287, 4.0, 0.00258)
    >>> w = paired_test([0.12, 0.15, 0.11, 0.14, 0.10, 0.16, 0.13, 0.12], [0.1] * 8, method="wilcoxon")
    >>> w.statistic, round(w.p_value, 5), w.min_p  # 7 nonzero differences (one zero dropped)
    (28.0, 0.00781, 0.0078125)
    """
    x = _per_seed(treatment, None, 1, "treatment")
    if control is not None:
        c = _per_seed(control, None, 1, "control")
        if c.shape != x.shape:
            raise InputError(f"treatment and control must be paired by seed; got {x.size} and {c.size} values")
        x = x - c
    x = x if seeds is None else cluster_by_seed(seeds, x).values
    result = _location(x, PAIRED_T, alternative, null=null, unit=unit, effect_name="mean", confidence=confidence,
                       interval=interval, rng=rng)
    if method == "t":
        return result
    if method != "wilcoxon":
        raise InputError(f"method must be 't' or 'wilcoxon'; got {method!r}")
    nonzero = int(np.count_nonzero(x - null))
    if nonzero == 0:
        w, p, q = math.nan, math.nan, math.nan
    else:
        both = stats.wilcoxon(np.stack([x - null, null - x]), alternative=alternative, axis=1)  # -d: the other way
        w, p, q = float(both.statistic[0]), float(both.pvalue[0]), float(both.pvalue[1])
    return dataclasses.replace(result, test=WILCOXON, statistic=w, df=math.nan, p_value=p, p_opposite=q,
                               p_adjusted=p, p_opposite_adjusted=q, min_p=0.5**nonzero)


def paired_test_by_seed(treatment: Mapping[int, float], control: Mapping[int, float] | None = None, *,
                        null: float = 0.0, unit: str = "") -> SeedTest | None:
    """:func:`paired_test` (one-sided, greater) of values keyed by seed, over the seeds both have (None if none)."""
    seeds = sorted(set(treatment) & set(control if control is not None else treatment))
    if not seeds:
        return None
    return paired_test([treatment[s] for s in seeds], None if control is None else [control[s] for s in seeds],
                       null=null, unit=unit)


def slope_test(x: Values, values: Values, *, alternative: Alternative = "greater", log_x: bool = True,
               seeds: Sequence[int] | np.ndarray | None = None, unit: str = "", confidence: float = 0.9,
               interval: Literal["t", "bootstrap"] = "t", rng: int | np.random.Generator | None = None) -> SeedTest:
    """A trend over levels ``x``: each seed's least-squares slope of ``values`` on log x, t-tested over seeds.

    ``values`` is a matrix, one row per seed (or per run, with ``seeds``), one column per
    level of ``x``. Fitting one line per seed and testing the n slopes (df = n - 1) is the
    regression clustered by seed: the levels of one seed are not independent replicates.

    >>> r = slope_test([10, 100, 1000], [[0.1, 0.3, 0.5], [0.0, 0.2, 0.5], [0.2, 0.3, 0.4]], unit="nats")
    >>> r.n, r.df, round(r.effect, 4), round(r.p_value, 4)
    (3, 2.0, 0.0796, 0.0266)
    >>> print(r.evidence())  # doctest: +NORMALIZE_WHITESPACE
    slope +0.0796 nats per log x [+0.0237, +0.136] (90% CI), d_z = 2.40, t(2) = 4.16, 3 seeds,
    p = 0.027 one-sided (greater)
    """
    y = _per_seed(values, seeds, 2, "slope_test")
    levels = np.asarray(x, dtype=np.float64)
    if levels.shape != (y.shape[1],) or np.unique(levels).size < 2 or (log_x and np.any(levels <= 0)):
        raise InputError(f"slope_test: need one x per column ({y.shape[1]}), at least two distinct"
                         f"{', all > 0 for log_x' if log_x else ''}; got {levels.tolist()}")
    u = np.log(levels) if log_x else levels
    u = u - u.mean()
    slopes = (y - y.mean(axis=1, keepdims=True)) @ u / (u @ u)
    return _location(slopes, SLOPE_T, alternative, null=0.0, unit=(f"{unit} " if unit else "") + (
        "per log x" if log_x else "per x"), effect_name="slope", confidence=confidence, interval=interval, rng=rng)


def page_test(values: Values, *, alternative: Alternative = "greater", seeds: Sequence[int] | np.ndarray | None = None,
              confidence: float = 0.9) -> SeedTest:
    """Page's L test of an ordered alternative over k >= 3 levels, seeds as blocks (scipy's ``page_trend_test``).

    ``values`` has one row per seed (or per run, with ``seeds``) and one column per level, in
    the claimed order; "greater" claims the values increase along the columns. Only ranks
    within a seed count, so infinities (a run that never reached a threshold) are allowed.
    The effect is the mean over seeds of Spearman's rho between the level and the value.

    >>> r = page_test([[1, 2, 3], [1, 3, 2], [0, 1, 2], [2, 3, 4]])
    >>> r.statistic, round(r.p_value, 4), r.effect, round(1 / r.min_p)  # exact: (1/3!)^4
    (55.0, 0.0069, 0.875, 1296)
    """
    y = _per_seed(values, seeds, 2, "page_test", finite=False)
    m, k = y.shape
    if m < 2 or k < 3:
        raise InputError(f"page_test: need at least 2 seeds and 3 levels; got {m} x {k} (for 2 levels use paired_test)")
    ordered = y if alternative == "greater" else y[:, ::-1]
    result = stats.page_trend_test(ordered)
    q = float(stats.page_trend_test(ordered[:, ::-1]).pvalue)
    ranks = stats.rankdata(y, axis=1) - (k + 1) / 2
    centred = np.arange(k) - (k - 1) / 2
    with np.errstate(invalid="ignore"):
        rho = np.nan_to_num(ranks @ centred / np.sqrt((ranks**2).sum(axis=1) * (centred @ centred)))
    if result.method == "exact":
        min_p = 1 / math.factorial(k) ** m
    else:  # Page's normal approximation at the largest L, m * sum(i^2)
        e0, v0 = m * k * (k + 1) ** 2 / 4, m * k**2 * (k + 1) * (k**2 - 1) / 144
        min_p = float(stats.norm.sf((m * k * (k + 1) * (2 * k + 1) / 6 - e0) / math.sqrt(v0)))
    trend = _location(rho, PAGE_L, alternative, null=0.0, unit="", effect_name="Spearman rho",
                      confidence=confidence, interval="t", rng=None)
    p = float(result.pvalue)
    return dataclasses.replace(trend, test=PAGE_L, statistic=float(result.statistic), df=math.nan, p_value=p,
                               p_opposite=q, p_adjusted=p, p_opposite_adjusted=q, min_p=min_p,
                               effect_low=max(trend.effect_low, -1.0), effect_high=min(trend.effect_high, 1.0))


def holm(p_values: Values) -> np.ndarray:
    """Holm's step-down adjusted p-values, in the input order (an undefined p, nan, counts as 1).

    The i-th smallest of m p-values is multiplied by m - i + 1, then running maxima keep the
    order, capped at 1 [1]. Rejecting where the adjusted p < alpha controls the chance of any
    false rejection at alpha.

    >>> holm([0.01, 0.04, 0.03, 0.005]).round(6).tolist()
    [0.03, 0.06, 0.06, 0.02]
    """
    p = np.nan_to_num(np.asarray(p_values, dtype=np.float64), nan=1.0)
    if p.ndim != 1 or np.any((p < 0) | (p > 1)):
        raise InputError(f"holm: need a vector of p-values in [0, 1]; got {p.tolist()}")
    order = np.argsort(p, kind="stable")
    adjusted = np.empty_like(p)
    adjusted[order] = np.minimum(np.maximum.accumulate((p.size - np.arange(p.size)) * p[order]), 1.0)
    return adjusted


def holm_adjust(tests: Sequence[SeedTest]) -> tuple[SeedTest, ...]:
    """The tests with Holm-adjusted p-values over the family, in each direction, and ``cells`` = its size."""
    p, q = holm([t.p_value for t in tests]), holm([t.p_opposite for t in tests])
    return tuple(dataclasses.replace(t, p_adjusted=float(a), p_opposite_adjusted=float(b), cells=len(tests))
                 for t, a, b in zip(tests, p, q, strict=True))
