"""The Theorem 4.2 mixture, written once: the shares of D_p and the component sizes.

Training jointly on datasets of sizes n_1, ..., n_m gives the size-weighted mixture
q = sum_i n_i P_i / sum_i n_i (docs/theory.md §4). In the setting of Theorem 4.2
(docs/theory.md §5), sizes are in units of |D_a|: D_p has k = |D_p|/|D_a|, D_a has 1
and D_t has l = |D_t|/|D_a|, so

.. math:: q(l) = (k P_p + P_a + l P_t) / (k + 1 + l).

When D_p is given as parts D_1, D_2, D_3 with shares beta (D_a drawn like D_2, D_t
like D_3), the same mixture has three components of sizes
k beta_1, k beta_2 + 1 and k beta_3 + l. Every module that needs these numbers calls
:func:`theorem_4_2_sizes`; the shares are validated once, by :class:`Shares`.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tokentree.infra.errors import InputError

__all__ = [
    "SHARES_SUM_RTOL",
    "MAX_SIZE_RATIO",
    "check_size",
    "check_sizes",
    "Shares",
    "theorem_4_2_sizes",
    "mixture_weights",
    "mix",
    "log_mix",
]

#: Shares are typed by hand as decimals (0.6, 0.2, 0.2) whose float sum is off by a
#: few ulps; anything further from 1 than this is a mistake, not rounding.
SHARES_SUM_RTOL = 1e-12

#: k = |D_p|/|D_a| and l = |D_t|/|D_a| are accepted up to this value. Within it the rates,
#: the analytic derivatives and the identity are exact to float precision (tested at
#: k = 1e9 with masses down to 1e-300); far beyond it k + 1 + l rounds to k and the
#: derivatives, of order 1/k^2, underflow the precision of the rates.
MAX_SIZE_RATIO = 1e9

_COUNT_WORDS = {1: "one", 2: "two", 3: "three", 4: "four"}


def check_size(x: float, name: str, *, allow_zero: bool = False) -> float:
    """``x`` as a float if it is a finite size ratio in (0, MAX_SIZE_RATIO] ([0, ...] with ``allow_zero``).

    >>> check_size(10, "k")
    10.0
    >>> check_size(1e300, "k")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    tokentree.infra.errors.InputError: k must be a finite number in (0, 1e+09]; got 1e+300 (outside this range ...)
    """
    try:
        value = float(x)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a number; got {x!r}") from None
    low = "[0" if allow_zero else "(0"
    if not (math.isfinite(value) and (value >= 0 if allow_zero else value > 0) and value <= MAX_SIZE_RATIO):
        raise InputError(
            f"{name} must be a finite number in {low}, {MAX_SIZE_RATIO:g}]; got {value:g} (outside this range the "
            "rates are not computed exactly)"
        )
    return value


def check_sizes(values: Any, name: str) -> np.ndarray:
    """An array of size ratios, each checked like :func:`check_size` with zero allowed."""
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1 or arr.shape[0] == 0:
        raise InputError(f"{name} must be a non-empty list of numbers; got shape {arr.shape}")
    bad = ~(np.isfinite(arr) & (arr >= 0) & (arr <= MAX_SIZE_RATIO))
    if bad.any():
        check_size(float(arr[np.argmax(bad)]), f"every {name} value", allow_zero=True)
    return arr


@dataclass(frozen=True)
class Shares:
    """beta_1, ..., beta_m: the fraction of D_p made up by each of its parts.

    Validated on construction: finite, non-negative (positive with ``positive=True``
    in :meth:`of`), summing to 1 within :data:`SHARES_SUM_RTOL`.

    >>> Shares.of([0.5, 0.3, 0.2]).array.tolist()
    [0.5, 0.3, 0.2]
    >>> Shares.of([0.5, 0.5, 0.5], name="betas")
    Traceback (most recent call last):
    ...
    tokentree.infra.errors.InputError: betas must be three non-negative shares summing to 1; got [0.5, 0.5, 0.5]
    """

    values: tuple[float, ...]

    @classmethod
    def of(
        cls, values: Sequence[float] | np.ndarray | Shares, *, count: int | None = 3, positive: bool = False,
        name: str = "betas",
    ) -> Shares:
        """Validate ``values`` as shares; ``count`` parts (None: any number), each > 0 if ``positive``."""
        if isinstance(values, Shares):
            values = values.values
        try:
            arr = np.asarray(values, dtype=np.float64)
        except (TypeError, ValueError):
            arr = np.array([np.nan])
        sign = "positive" if positive else "non-negative"
        amount = "" if count is None else f"{_COUNT_WORDS.get(count, str(count))} "
        ok = (
            arr.ndim == 1
            and arr.shape[0] >= 1
            and (count is None or arr.shape[0] == count)
            and bool(np.all(np.isfinite(arr)))
            and bool(np.all(arr > 0) if positive else np.all(arr >= 0))
            and math.isclose(float(arr.sum()), 1.0, rel_tol=SHARES_SUM_RTOL)
        )
        if not ok:
            shown = arr.tolist() if arr.ndim == 1 and np.all(np.isfinite(arr)) else list(np.ravel(values))
            raise InputError(f"{name} must be {amount}{sign} shares summing to 1; got {shown}")
        return cls(tuple(float(v) for v in arr))

    @property
    def array(self) -> np.ndarray:
        return np.array(self.values)

    def __len__(self) -> int:
        return len(self.values)

    def __iter__(self) -> Iterator[float]:
        return iter(self.values)

    def __getitem__(self, i: int) -> float:
        return self.values[i]


def theorem_4_2_sizes(k: float, l: float | np.ndarray, shares: Shares | None = None) -> np.ndarray:
    """Component sizes of the Theorem 4.2 mixture, in units of |D_a|.

    Without shares: ``[k, 1, l]`` for (D_p, D_a, D_t). With the shares of D_p's parts
    D_1, D_2, D_3 (D_a counted with D_2, D_t with D_3): ``[k b1, k b2 + 1, k b3 + l]``.
    For an array ``l`` the sizes are the last axis.

    >>> theorem_4_2_sizes(10.0, 0.5).tolist()
    [10.0, 1.0, 0.5]
    >>> theorem_4_2_sizes(10.0, 0.5, Shares.of([0.5, 0.3, 0.2])).tolist()
    [5.0, 4.0, 2.5]
    """
    ll = np.asarray(l, dtype=np.float64)
    if shares is None:
        base = np.array([k, 1.0, 0.0])
    else:
        if len(shares) != 3:
            raise InputError(f"Theorem 4.2 needs the shares of three parts D_1, D_2, D_3; got {len(shares)}")
        base = k * shares.array + np.array([0.0, 1.0, 0.0])
    result: np.ndarray = base + ll[..., None] * np.array([0.0, 0.0, 1.0])
    return result


def mixture_weights(sizes: np.ndarray) -> np.ndarray:
    """Sizes normalised along the last axis: the weights n_i / sum_j n_j of the joint model.

    >>> mixture_weights(np.array([3.0, 1.0])).tolist()
    [0.75, 0.25]
    """
    sizes = np.asarray(sizes, dtype=np.float64)
    result: np.ndarray = sizes / sizes.sum(axis=-1, keepdims=True)
    return result


def mix(distributions: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """The joint model q = sum_i n_i P_i / sum_i n_i of distributions (rows) with sizes n_i.

    >>> mix(np.array([[1.0, 0.0], [0.0, 1.0]]), np.array([3.0, 1.0])).tolist()
    [0.75, 0.25]
    """
    sizes = np.asarray(sizes, dtype=np.float64)
    result: np.ndarray = sizes @ distributions / sizes.sum()
    return result


def log_mix(distributions: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Natural log of :func:`mix`, computed without forming the products n_i P_i(s).

    A symbol only a tiny component has (P = 1e-300 at size l = 1e-15 next to k = 1e9)
    has a mixture weight below the smallest float; its log is still exact here, and it
    is -inf only where every component gives the symbol zero mass.

    >>> rows, sizes = np.array([[1.0, 0.0], [1.0, 1e-300]]), np.array([1e9, 1e-15])
    >>> round(float(log_mix(rows, sizes)[1] / np.log(10)), 9), float(mix(rows, sizes)[1])
    (-324.0, 0.0)
    """
    from scipy.special import logsumexp

    sizes = np.asarray(sizes, dtype=np.float64)
    with np.errstate(divide="ignore"):
        terms = np.log(distributions) + np.log(sizes)[:, None]
    result: np.ndarray = logsumexp(terms, axis=0) - np.log(sizes.sum())
    return result
