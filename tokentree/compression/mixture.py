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

import numpy as np

from tokentree.errors import InputError

__all__ = ["SHARES_SUM_RTOL", "Shares", "theorem_4_2_sizes", "mixture_weights", "mix"]

#: Shares are typed by hand as decimals (0.6, 0.2, 0.2) whose float sum is off by a
#: few ulps; anything further from 1 than this is a mistake, not rounding.
SHARES_SUM_RTOL = 1e-12

_COUNT_WORDS = {1: "one", 2: "two", 3: "three", 4: "four"}


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
    tokentree.errors.InputError: betas must be three non-negative shares summing to 1; got [0.5, 0.5, 0.5]
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
