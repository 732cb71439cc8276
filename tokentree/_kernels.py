"""Compiled inner loops of the tree builder (numba, imported lazily by :mod:`tokentree.build`).

The builder works on *marked tokens*: ``marked[p] = 2 * token[p] + is_last[p]`` where
``is_last`` flags the last token of each response. An occurrence starting at ``p`` then
needs no other state: it continues past depth ``j`` unless ``marked[p + j - 1]`` is a
last token, and it ends in EOS at depth ``j`` exactly when it is.

Each kernel is one fused pass over a level's occurrences; they are cached on disk
(``cache=True``), so only the first build on a machine pays the compile time.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def segment_keys(
    marked: np.ndarray,
    pos: np.ndarray,
    seg_start: np.ndarray,
    seg_end: np.ndarray,
    shift: int,
    token_bits: int,
    index_bits: int,
) -> tuple[np.ndarray, np.ndarray]:  # pragma: no cover
    """Sort keys ``(segment, token, index)`` packed in a uint64, and the slot of every index."""
    total = 0
    for s in range(seg_start.shape[0]):
        total += seg_end[s] - seg_start[s]
    keys = np.empty(total, np.uint64)
    slots = np.empty(total, np.int64)
    m = 0
    for s in range(seg_start.shape[0]):
        high = np.uint64(s) << np.uint64(token_bits + index_bits)
        for i in range(seg_start[s], seg_end[s]):
            tok = np.uint64(marked[pos[i] + shift] >> 1)
            keys[m] = high | (tok << np.uint64(index_bits)) | np.uint64(m)
            slots[m] = i
            m += 1
    return keys, slots


@njit(cache=True, nogil=True)
def apply_sorted(
    keys: np.ndarray, index_mask: np.uint64, slots: np.ndarray, pos: np.ndarray, w: np.ndarray, has_w: bool
) -> None:  # pragma: no cover
    """Move the occurrence named by ``keys[a] & index_mask`` into slot ``slots[a]``."""
    m = keys.shape[0]
    tp = np.empty(m, pos.dtype)
    tw = np.empty(m if has_w else 0, w.dtype)
    for a in range(m):
        src = slots[np.int64(keys[a] & index_mask)]
        tp[a] = pos[src]
        if has_w:
            tw[a] = w[src]
    for a in range(m):
        pos[slots[a]] = tp[a]
        if has_w:
            w[slots[a]] = tw[a]


@njit(cache=True, nogil=True)
def emit_level(
    marked: np.ndarray,
    pos: np.ndarray,
    w: np.ndarray,
    has_w: bool,
    group: np.ndarray,
    n: int,
    j: int,
    last_level: bool,
    parent_offset: int,
    node_token: np.ndarray,
    node_parent: np.ndarray,
    node_count: np.ndarray,
    lo: int,
    leaf_eos: np.ndarray,
) -> tuple[int, int, np.ndarray, np.ndarray]:  # pragma: no cover
    """Write the nodes of depth ``j`` and compact the occurrences that go deeper, in place.

    Occurrences arrive sorted by (group, token); a node starts wherever either changes.
    Returns ``(nodes written, occurrences kept, seg_start, seg_end)``; the segments are
    the kept occurrences of every node that keeps two or more: the groups the next
    level must sort.
    """
    seg_start = np.empty(n // 2 + 1, np.int64)
    seg_end = np.empty(n // 2 + 1, np.int64)
    n_seg = 0
    k = lo - 1
    m = 0
    kept_from = 0
    prev_g = -1
    prev_t = -1
    for i in range(n):
        p = pos[i]
        mt = marked[p + j - 1]
        t = mt >> 1
        g = group[i]
        if g != prev_g or t != prev_t:
            if m - kept_from >= 2:
                seg_start[n_seg] = kept_from
                seg_end[n_seg] = m
                n_seg += 1
            kept_from = m
            k += 1
            node_token[k] = t
            node_parent[k] = g + parent_offset
            node_count[k] = 0
            if last_level:
                leaf_eos[k - lo] = 0
            prev_g = g
            prev_t = t
        wi = w[i] if has_w else 1
        node_count[k] += wi
        if last_level:
            if mt & 1:
                leaf_eos[k - lo] += wi
        elif not mt & 1:
            pos[m] = p
            if has_w:
                w[m] = wi
            group[m] = k - lo
            m += 1
    if m - kept_from >= 2:
        seg_start[n_seg] = kept_from
        seg_end[n_seg] = m
        n_seg += 1
    return k + 1 - lo, m, seg_start[:n_seg], seg_end[:n_seg]
