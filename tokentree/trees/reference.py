"""Naive pure-Python reference implementations, used as test oracles and benchmark baselines.

Deliberately simple and slow (a dict-of-dicts trie, about 0.3M tokens/s): every line
can be checked by eye against docs/theory.md §2. Never used by the fast paths.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["reference_occurrences", "reference_tree_arrays"]


def reference_occurrences(
    sequences: Sequence[Sequence[int]], depth: int, mode: str, weight: str = "sequences"
) -> list[tuple[tuple[int, ...], bool, int]]:
    """Every symbol occurrence as ``(tokens, ends_in_eos, weight)``, by slicing each response.

    >>> reference_occurrences([[1, 2, 3]], 2, "chunk")
    [((1, 2), False, 1), ((3,), True, 1)]
    """
    out = []
    for seq in sequences:
        seq = [int(t) for t in seq]
        n = len(seq)
        if mode == "prefix":
            starts = [0]
        elif mode == "chunk":
            starts = list(range(0, n, depth))
        elif mode == "window":
            starts = list(range(n))
        else:
            raise ValueError(mode)
        for s in starts:
            piece = tuple(seq[s : s + depth])
            ends = s + depth >= n
            if weight == "sequences" or mode == "window":
                w = 1
            elif mode == "prefix":
                w = n
            else:
                w = len(piece)
            out.append((piece, ends, w))
    return out


def reference_tree_arrays(
    sequences: Sequence[Sequence[int]], depth: int, mode: str, weight: str = "sequences"
) -> dict[str, Any]:
    """Build the trie with nested dicts and return its arrays in breadth-first sorted order.

    Returns a dict with ``tokens``, ``parents``, ``counts``, ``eos_counts`` (numpy
    arrays, root first) and ``level_sizes`` (nodes per depth 0..depth).
    """
    root: dict[str, Any] = {"count": 0, "eos": 0, "children": {}}
    for piece, ends, w in reference_occurrences(sequences, depth, mode, weight):
        node = root
        node["count"] += w
        for tok in piece:
            node = node["children"].setdefault(tok, {"count": 0, "eos": 0, "children": {}})
            node["count"] += w
        if ends:
            node["eos"] += w
    tokens, parents, counts, eos, level_sizes = [-1], [-1], [root["count"]], [root["eos"]], [1]
    level = [(0, root)]
    while level:
        nxt = []
        for index, node in level:
            for tok in sorted(node["children"]):
                child = node["children"][tok]
                nxt.append((len(tokens), child))
                tokens.append(tok)
                parents.append(index)
                counts.append(child["count"])
                eos.append(child["eos"])
        if nxt:
            level_sizes.append(len(nxt))
        level = nxt
    level_sizes += [0] * (depth + 1 - len(level_sizes))
    return {
        "tokens": np.array(tokens, dtype=np.int64),
        "parents": np.array(parents, dtype=np.int64),
        "counts": np.array(counts, dtype=np.int64),
        "eos_counts": np.array(eos, dtype=np.int64),
        "level_sizes": np.array(level_sizes, dtype=np.int64),
    }


def heapq_huffman_lengths(weights: Sequence[float]) -> list[int]:
    """Huffman code lengths with a binary heap (the textbook algorithm; benchmark baseline).

    >>> heapq_huffman_lengths([0.4, 0.3, 0.2, 0.1])
    [1, 2, 3, 3]
    """
    import heapq

    if len(weights) == 1:
        return [1]
    heap: list[tuple[float, int, tuple[int, ...]]] = [(float(w), i, (i,)) for i, w in enumerate(weights)]
    heapq.heapify(heap)
    lengths = [0] * len(weights)
    counter = len(weights)
    while len(heap) > 1:
        w1, _, s1 = heapq.heappop(heap)
        w2, _, s2 = heapq.heappop(heap)
        for s in s1 + s2:
            lengths[s] += 1
        heapq.heappush(heap, (w1 + w2, counter, s1 + s2))
        counter += 1
    return lengths
