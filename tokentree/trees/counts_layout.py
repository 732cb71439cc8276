"""The stored layout of node counts: one byte per node and a sparse table of the large ones (issue 26).

In a window tree almost every node counts 1 (97.9% of the 60M nodes of 10M Zipf tokens at
d = 8), so a count is stored as a uint8 and the few counts of :data:`SATURATED` or more
(at most ``depth * total / 255`` of them) are stored beside it as ``(node, count)`` pairs
sorted by node: the node's byte holds :data:`SATURATED`, the table its count.

Whether that pays is decided from the counts alone (:func:`narrow_pays`), so equal trees
store equal arrays: when the table would cost more than the dense counts save (a tree of
mostly large counts, e.g. weighted by tokens), the counts stay dense, uint32 when the total
mass (the root's count, the largest) is below 2**32, else int64, with an empty table.

>>> stored, at, big = narrow_counts(np.array([300, 299] + [1] * 40))
>>> stored[:4].tolist(), at.tolist(), big.tolist()
([255, 255, 1, 1], [0, 1], [300, 299])
>>> wide_slice(stored, at, big, 1, 4).tolist(), count_at(stored, at, big, 0)
([299, 1, 1], 300)
>>> narrow_counts(np.array([300, 299, 1, 1]))[0].dtype  # half the counts large: dense pays
dtype('uint32')
"""

from __future__ import annotations

import numpy as np

__all__ = ["SATURATED", "MAX_U32_MASS", "count_dtype", "narrow_pays", "narrow_counts", "canonical_counts",
           "wide_slice", "count_at"]

#: A stored uint8 count of this value means "look the count up in the table".
SATURATED = 255
#: Total masses below this have dense counts stored as uint32.
MAX_U32_MASS = 2**32
#: Bytes per table entry (int64 node index and int64 count).
ENTRY_BYTES = 16
_EMPTY = np.zeros(0, dtype=np.int64)


def count_dtype(total_mass: int) -> np.dtype:
    """Dtype of dense stored counts: uint32 when the total mass (the root's count, the largest) fits, else int64."""
    return np.dtype(np.uint32 if int(total_mass) < MAX_U32_MASS else np.int64)


def narrow_pays(n_nodes: int, n_large: int, total_mass: int) -> bool:
    """Whether one byte per node plus a table of ``n_large`` entries is smaller than dense counts."""
    return n_nodes + ENTRY_BYTES * n_large < count_dtype(total_mass).itemsize * n_nodes


def _empty() -> np.ndarray:
    return _EMPTY.copy()


def narrow_counts(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Dense counts (any integer dtype; the root first) in the stored layout: (stored, table nodes, table counts)."""
    counts = np.asarray(counts)
    total = int(counts[0]) if counts.shape[0] else 0
    large = np.flatnonzero(counts >= SATURATED)
    if not narrow_pays(counts.shape[0], large.shape[0], total):
        return counts.astype(count_dtype(total), copy=False), _empty(), _empty()
    stored = np.empty(counts.shape[0], dtype=np.uint8)
    np.minimum(counts, SATURATED, out=stored, casting="unsafe")
    return stored, large.astype(np.int64), counts[large].astype(np.int64)


def canonical_counts(stored: np.ndarray, at: np.ndarray, big: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A narrow layout (uint8 and its table) as :func:`narrow_counts` would store the same counts."""
    at, big = np.asarray(at, dtype=np.int64), np.asarray(big, dtype=np.int64)
    n = stored.shape[0]
    total = (int(big[0]) if at.shape[0] and at[0] == 0 else int(stored[0])) if n else 0
    if narrow_pays(n, at.shape[0], total):
        return stored, at, big
    return wide_slice(stored, at, big, 0, n).astype(count_dtype(total)), _empty(), _empty()


def wide_slice(stored: np.ndarray, at: np.ndarray, big: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """The counts of nodes ``lo:hi`` as int64 (a new array)."""
    out = np.asarray(stored[lo:hi]).astype(np.int64)
    if at.shape[0]:
        a, b = np.searchsorted(at, [lo, hi])
        out[at[a:b] - lo] = big[a:b]
    return out


def count_at(stored: np.ndarray, at: np.ndarray, big: np.ndarray, node: int) -> int:
    """The count of one node."""
    c = int(stored[node])
    if c == SATURATED and at.shape[0] and stored.dtype == np.uint8:
        return int(big[int(np.searchsorted(at, node))])
    return c
