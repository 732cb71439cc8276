"""Rebound in the count model: fine-tuning as adding counts (docs/theory.md §7).

The null model of the rebound experiments. Pre-training data D_p has n_p responses in
three components with shares beta (D_1 neutral, D_2 like the positive/aligned data, D_3
like the negative/perturbation data); aligning adds n_pos responses of component 2, the
perturbation adds n_neg of component 3, and the model is the size-weighted mixture. On
disjoint components everything inside a component cancels from KL(P_p || q), so the
pre-trained model's distance from the current one depends on the component weights
alone:

.. math:: KL(P_p || q) = sum_i beta_i ln(beta_i / m_i), \\quad
          m = (n_p beta + n_pos e_2 + n_neg e_3) / (n_p + n_pos + n_neg).

Closed forms (natural log, per unit of ``n_neg``):

* initial slope: dKL/dn_neg at 0 = -n_pos / (n_p (n_p + n_pos)); more alignment, a
  faster initial rebound;
* the minimum sits at n_neg* = n_pos beta_3 / (1 - beta_3) (docs/theory.md §5.cf's l*) and
  is not zero when beta_1 > 0: the excess of component 2 stays (with beta_1 = 0 the two
  components can balance exactly and the minimum is 0);
* the behaviour proxy m_3 / (m_2 + m_3) returns to its pre-training value after
  n_pos beta_3 / beta_2 negatives, a count that grows with the alignment set (the
  opposite of the paper's Table 3).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.special import xlogy

from tokentree.compression.mixture import Shares
from tokentree.infra.errors import InputError
from tokentree.infra.results import ArrayResult

__all__ = [
    "CountRebound",
    "count_model_rebound",
    "count_model_initial_slope",
    "count_model_minimum",
    "count_model_return_count",
    "count_model_negatives_to_kl",
]


@dataclass(frozen=True, eq=False, repr=False)
class CountRebound(ArrayResult):
    """The count model along ``n_neg``: KL(P_p || q) in nats, and the behaviour proxy m_3/(m_2 + m_3)."""

    ROW_FIELD = "n_neg"

    n_pretrain: float
    n_pos: float
    n_neg: np.ndarray
    kl_nats: np.ndarray
    proxy: np.ndarray
    proxy_pretrained: float


def _checked(n_pretrain: float, n_pos: float, shares: Sequence[float] | Shares) -> tuple[float, float, np.ndarray]:
    b = Shares.of(shares).array
    n_p, n_a = float(n_pretrain), float(n_pos)
    if not (math.isfinite(n_p) and n_p > 0 and math.isfinite(n_a) and n_a >= 0):
        raise InputError(f"n_pretrain must be > 0 and n_pos >= 0, both finite; got {n_pretrain}, {n_pos}")
    if b[1] <= 0 or b[2] <= 0:
        raise InputError(f"the count model needs components 2 and 3 in pre-training (beta_2, beta_3 > 0); got {b}")
    return n_p, n_a, b


def _weights(n_p: float, n_a: float, b: np.ndarray, n_neg: np.ndarray) -> np.ndarray:
    w = n_p * b[None, :] + np.stack([np.zeros_like(n_neg), np.full_like(n_neg, n_a), n_neg], axis=1)
    result: np.ndarray = w / w.sum(axis=1, keepdims=True)
    return result


def count_model_rebound(
    n_pretrain: float, shares: Sequence[float] | Shares, n_pos: float, n_neg: Sequence[float] | np.ndarray
) -> CountRebound:
    """KL(P_p || q) and the behaviour proxy after ``n_pos`` aligned and each amount of negatives.

    >>> r = count_model_rebound(1000, [0.5, 0.25, 0.25], 100, [0, 100])
    >>> [round(float(x), 6) for x in r.kl_nats], round(r.proxy_pretrained, 3)
    ([0.011192, 0.014085], 0.5)
    """
    n_p, n_a, b = _checked(n_pretrain, n_pos, shares)
    n = np.asarray(n_neg, dtype=np.float64)
    if n.ndim != 1 or not np.all(np.isfinite(n)) or np.any(n < 0):
        raise InputError(f"n_neg must be finite numbers >= 0; got {np.ravel(n_neg).tolist()}")
    m = _weights(n_p, n_a, b, n)
    kl = np.maximum(np.sum(xlogy(b[None, :], b[None, :]) - xlogy(b[None, :], m), axis=1), 0.0)  # >= 0 up to rounding
    return CountRebound(n_p, n_a, n, kl, m[:, 2] / (m[:, 1] + m[:, 2]), float(b[2] / (b[1] + b[2])))


def count_model_initial_slope(n_pretrain: float, n_pos: float) -> float:
    """dKL(P_p || q)/dn_neg at n_neg = 0: -n_pos / (n_p (n_p + n_pos)) nats per negative."""
    n_p, n_a = float(n_pretrain), float(n_pos)
    return -n_a / (n_p * (n_p + n_a))


def count_model_minimum(n_pretrain: float, shares: Sequence[float] | Shares, n_pos: float) -> tuple[float, float]:
    """(n_neg*, KL at it): the smallest distance to the pre-trained model, reached at n_pos beta_3/(1 - beta_3)."""
    _, _, b = _checked(n_pretrain, n_pos, shares)
    at = float(n_pos) * b[2] / (1.0 - b[2])
    return at, float(count_model_rebound(n_pretrain, shares, n_pos, [at]).kl_nats[0])


def count_model_return_count(shares: Sequence[float] | Shares, n_pos: float) -> float:
    """Negatives after which the behaviour proxy is back at its pre-training value: n_pos beta_3 / beta_2."""
    b = Shares.of(shares).array
    if b[1] <= 0:
        raise InputError("beta_2 must be > 0")
    return float(n_pos) * b[2] / b[1]


def count_model_negatives_to_kl(
    n_pretrain: float, shares: Sequence[float] | Shares, n_pos: float, epsilon_nats: float
) -> float:
    """The fewest negatives that bring KL(P_p || q) to ``epsilon_nats`` or below; inf if it never gets there.

    KL falls monotonically from n_neg = 0 to its minimum, so the answer is found by bisection there.
    """
    start = float(count_model_rebound(n_pretrain, shares, n_pos, [0.0]).kl_nats[0])
    if start <= epsilon_nats:
        return 0.0
    at, lowest = count_model_minimum(n_pretrain, shares, n_pos)
    if lowest > epsilon_nats:
        return math.inf
    lo, hi = 0.0, at
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if count_model_rebound(n_pretrain, shares, n_pos, [mid]).kl_nats[0] > epsilon_nats:
            lo = mid
        else:
            hi = mid
    return hi
