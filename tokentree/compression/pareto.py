"""Fitting the Pareto shape of a pruned tree's symbol masses (docs/theory.md §6).

Maximum likelihood (the Hill estimator) on the tail x >= x_min, with x_min chosen to
minimise the Kolmogorov-Smirnov distance between the tail and the fitted law
(Clauset, Shalizi & Newman 2009). Masses are counts, treated as continuous; the fit is
meaningful for tails of a few dozen symbols or more.

References
----------
1. A. Clauset, C. R. Shalizi, M. E. J. Newman, "Power-law distributions in empirical
   data", SIAM Review 51 (2009).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from tokentree.infra.errors import InputError
from tokentree.infra.results import to_json_ready

__all__ = ["ParetoFit", "fit_pareto"]


@dataclass(frozen=True)
class ParetoFit:
    """A Pareto(alpha, x_min) fit of the tail of symbol masses.

    Attributes
    ----------
    alpha : float
        Tail exponent: P(X > x) = (x_min / x)^alpha (Zipf rank exponent s = 1/alpha).
    x_min : float
        Where the tail starts.
    n_tail : int
        Masses in the tail.
    ks_statistic : float
        Kolmogorov-Smirnov distance between tail and fit (smaller is better).
    ks_pvalue : float
        The KS test's p-value (optimistic, since x_min and alpha were fitted).
    alpha_stderr : float
        Standard error of alpha, (alpha - 1)/sqrt(n) style: alpha/sqrt(n_tail).
    """

    alpha: float
    x_min: float
    n_tail: int
    ks_statistic: float
    ks_pvalue: float
    alpha_stderr: float

    def to_dict(self) -> dict[str, float | int | None]:
        """JSON-ready (non-finite numbers as None)."""
        result: dict[str, float | int | None] = to_json_ready(self)
        return result


def _hill(tail: np.ndarray, x_min: float) -> float:
    logs = np.log(tail / x_min)
    s = logs.sum()
    return float(tail.shape[0] / s) if s > 0 else float("inf")


def fit_pareto(masses: np.ndarray | list[float], *, x_min: float | None = None, min_tail: int = 20) -> ParetoFit:
    """Maximum-likelihood Pareto exponent of the tail of ``masses``.

    Parameters
    ----------
    masses : array of positive numbers
        E.g. ``tree.symbols().mass``.
    x_min : float, optional
        Tail threshold; default: the candidate minimising the KS distance.
    min_tail : int
        Smallest tail size considered when choosing x_min.

    >>> from tokentree.data.synthetic import as_generator
    >>> x = as_generator(0).pareto(2.0, 20000) + 1.0
    >>> round(fit_pareto(x, x_min=1.0).alpha, 1)
    2.0
    """
    x = np.asarray(masses, dtype=np.float64)
    x = x[x > 0]
    if x.shape[0] < min_tail:
        raise InputError(f"need at least {min_tail} positive masses to fit a tail; got {x.shape[0]}")
    x = np.sort(x)
    if x_min is None:
        candidates = np.unique(x[: x.shape[0] - min_tail + 1])
        if candidates.shape[0] > 200:
            candidates = np.unique(np.quantile(candidates, np.linspace(0, 1, 200), method="lower"))
        best = (np.inf, float(candidates[0]))
        for c in candidates:
            tail = x[x >= c]
            alpha = _hill(tail, float(c))
            d = stats.kstest(tail, stats.pareto(alpha, scale=float(c)).cdf).statistic
            if d < best[0]:
                best = (d, float(c))
        x_min = best[1]
    tail = x[x >= x_min]
    if tail.shape[0] < 2:
        raise InputError(f"x_min = {x_min} leaves fewer than 2 masses in the tail")
    alpha = _hill(tail, x_min)
    ks = stats.kstest(tail, stats.pareto(alpha, scale=x_min).cdf)
    return ParetoFit(
        alpha=alpha, x_min=float(x_min), n_tail=int(tail.shape[0]),
        ks_statistic=float(ks.statistic), ks_pvalue=float(ks.pvalue),
        alpha_stderr=alpha / float(np.sqrt(tail.shape[0])),
    )
