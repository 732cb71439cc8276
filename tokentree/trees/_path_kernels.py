"""Compiled loops of path compression (numba, imported lazily by :mod:`tokentree.trees.paths`).

A *tail* is a maximal chain of nodes below a *head*: every node of it has exactly one
child, with the same count, down to a childless end. :func:`find_tails` marks them on a
full breadth-first tree; :func:`expand` rebuilds the full tree from the explicit nodes
and the tails, one level at a time: the children of full level ``j - 1`` in order are
the explicit children of its explicit nodes, and one implicit child of every head or
implicit node whose tail goes on.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from tokentree.trees._kernels import FIRST_CHILD, HAS_CHILDREN, SATURATED


@njit(cache=True, nogil=True)
def _count(stored: np.ndarray, over_at: np.ndarray, over_count: np.ndarray, v: int) -> int:  # pragma: no cover
    """The count of node ``v`` in the stored layout (tokentree.trees.counts_layout)."""
    c = int(stored[v])
    if c == SATURATED and over_at.shape[0]:
        return int(over_count[np.searchsorted(over_at, v)])
    return c


@njit(cache=True, nogil=True)
def find_tails(flags: np.ndarray, stored: np.ndarray, over_at: np.ndarray, over_count: np.ndarray,
               only_child: np.ndarray) -> tuple[np.ndarray, np.ndarray]:  # pragma: no cover
    """(implicit, head) over the nodes of a full tree given by its flags and stored counts: the nodes inside a
    tail, and the explicit node at the top of each; ``only_child`` (filled with -1) gets every node's only child.

    One pass from the last node back: the k-th node with children, counted from the end, owns the k-th
    children block from the end (breadth-first order), so no offsets array is made.
    """
    n = flags.shape[0]
    chain = np.zeros(n, np.bool_)  # the node and everything below it form one chain of constant count
    implicit = np.zeros(n, np.bool_)
    block_end = n
    i = n - 1
    for v in range(n - 1, -1, -1):
        if not flags[v] & HAS_CHILDREN:
            chain[v] = v > 0
            continue
        while not flags[i] & FIRST_CHILD:
            i -= 1
        if block_end - i == 1:
            only_child[v] = i
            chain[v] = v > 0 and chain[i] and _count(stored, over_at, over_count, i) == _count(
                stored, over_at, over_count, v)
            implicit[i] = chain[v]
        block_end = i
        i -= 1
    head = np.zeros(n, np.bool_)
    for v in range(1, n):
        head[v] = chain[v] and only_child[v] >= 0 and not implicit[v]
    return implicit, head


@njit(cache=True, nogil=True)
def tail_labels(heads: np.ndarray, only_child: np.ndarray, tokens: np.ndarray, n_implicit: int,
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # pragma: no cover
    """(length, text, end): each head's chain walked down, its tokens packed one tail after another."""
    k = heads.shape[0]
    length = np.empty(k, np.int64)
    end = np.empty(k, np.int64)
    text = np.empty(n_implicit, tokens.dtype)
    w = 0
    for t in range(k):
        begin = w
        v = heads[t]
        while only_child[v] >= 0:
            v = only_child[v]
            text[w] = tokens[v]
            w += 1
        length[t] = w - begin
        end[t] = v
    return length, text, end


@njit(cache=True, nogil=True)
def expand(
    ex_tokens: np.ndarray, ex_child_offsets: np.ndarray, ex_counts: np.ndarray, ex_deepest: int,
    ex_leaf_eos: np.ndarray, tail_of: np.ndarray, tail_length: np.ndarray, tail_start: np.ndarray,
    tail_text: np.ndarray, tail_end_eos: np.ndarray, level_offsets: np.ndarray,
    tokens: np.ndarray, flags: np.ndarray, counts: np.ndarray, leaf_eos: np.ndarray,
) -> None:  # pragma: no cover
    """Write the full tree (tokens, flags, int64 counts, the deepest level's EOS counts) from its compressed form.

    ``tail_of[e]`` is the tail whose head is explicit node ``e`` (-1 for the others);
    ``ex_leaf_eos`` holds the EOS counts of the explicit nodes from ``ex_deepest`` on.
    """
    depth = level_offsets.shape[0] - 2
    widest = 1
    for j in range(depth + 1):
        widest = max(widest, level_offsets[j + 1] - level_offsets[j])
    cur_node = np.empty(widest, np.int64)  # an explicit node, or -1 for a node inside tail cur_tail at cur_pos
    cur_tail = np.empty(widest, np.int64)
    cur_pos = np.empty(widest, np.int64)
    nxt_node = np.empty(widest, np.int64)
    nxt_tail = np.empty(widest, np.int64)
    nxt_pos = np.empty(widest, np.int64)
    tokens[0] = ex_tokens[0]
    counts[0] = ex_counts[0]
    flags[0] = 0
    cur_node[0] = 0
    size = 1
    w = 1
    for j in range(1, depth + 1):
        m = 0
        for i in range(size):
            parent = level_offsets[j - 1] + i
            e = cur_node[i]
            if e >= 0 and tail_of[e] < 0:  # explicit children, in order
                for c in range(ex_child_offsets[e], ex_child_offsets[e + 1]):
                    tokens[w] = ex_tokens[c]
                    counts[w] = ex_counts[c]
                    flags[w] = FIRST_CHILD if c == ex_child_offsets[e] else 0
                    nxt_node[m] = c
                    w += 1
                    m += 1
                if ex_child_offsets[e + 1] > ex_child_offsets[e]:
                    flags[parent] |= HAS_CHILDREN
                continue
            t = tail_of[e] if e >= 0 else cur_tail[i]
            p = 0 if e >= 0 else cur_pos[i]
            if p < tail_length[t]:  # the tail goes on: one child
                tokens[w] = tail_text[tail_start[t] + p]
                counts[w] = counts[parent]
                flags[w] = FIRST_CHILD
                flags[parent] |= HAS_CHILDREN
                nxt_node[m] = -1
                nxt_tail[m] = t
                nxt_pos[m] = p + 1
                w += 1
                m += 1
        cur_node, nxt_node = nxt_node, cur_node
        cur_tail, nxt_tail = nxt_tail, cur_tail
        cur_pos, nxt_pos = nxt_pos, cur_pos
        size = m
    for i in range(size):  # the deepest level's EOS counts
        e = cur_node[i]
        leaf_eos[i] = ex_leaf_eos[e - ex_deepest] if e >= 0 else tail_end_eos[cur_tail[i]]


@njit(cache=True, nogil=True)
def ranks(mask: np.ndarray, positions: np.ndarray) -> np.ndarray:  # pragma: no cover
    """For every one of the sorted ``positions``: how many entries of ``mask`` before it are set."""
    out = np.empty(positions.shape[0], np.int64)
    seen = 0
    i = 0
    for k in range(positions.shape[0]):
        while i < positions[k]:
            seen += mask[i]
            i += 1
        out[k] = seen
    return out
