"""Token trees built in parts: by ranges of first tokens, each part a subtree, stitched level by level.

Every occurrence that counts toward a node, or toward anything below it, starts with that
node's first token. So the occurrences whose first token lies in a range [a, b) build
exactly the subtrees of the root's children a..b-1, and since every level is stored in
lexicographic order, the parts' levels laid end to end, ranges in increasing order, are
the levels of the whole tree: the stitched tree equals :func:`tokentree.build_tree`'s
array for array. A build in parts needs the working memory of one part at a time (and
the finished tree), so a corpus whose occurrences would not fit at once still builds.

:func:`plan_partitions` chooses range boundaries that balance the occurrences; a first
token heavier than a part's share gets a part of its own (it cannot be split further by
first token).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from tokentree.errors import InputError
from tokentree.tree import TokenTree, TreeInfo

__all__ = ["plan_partitions", "first_token_mass", "stitch_trees"]


def first_token_mass(first_tokens: np.ndarray, vocab_size: int) -> np.ndarray:
    """How many occurrences start with each token id (int64, length ``vocab_size``)."""
    return np.bincount(np.asarray(first_tokens), minlength=int(vocab_size)).astype(np.int64)


def plan_partitions(mass: np.ndarray, n_partitions: int) -> np.ndarray:
    """Boundaries 0 = b_0 < b_1 < ... < b_P = V of first-token ranges with about equal occurrences each.

    Fewer than ``n_partitions`` ranges come back when a few tokens hold most of the mass.

    >>> plan_partitions(np.array([5, 5, 5, 5]), 2).tolist()
    [0, 2, 4]
    >>> plan_partitions(np.array([100, 1, 1, 1]), 3).tolist()
    [0, 1, 4]
    """
    if isinstance(n_partitions, bool) or not isinstance(n_partitions, (int, np.integer)) or n_partitions < 1:
        raise InputError(f"the number of partitions must be a positive integer; got {n_partitions!r}")
    mass = np.asarray(mass, dtype=np.int64)
    vocab = int(mass.shape[0])
    cumulative = np.cumsum(mass)
    total = int(cumulative[-1]) if vocab else 0
    if total == 0 or n_partitions == 1:
        return np.array([0, vocab], dtype=np.int64)
    targets = total * np.arange(1, n_partitions, dtype=np.float64) / n_partitions
    cuts = np.searchsorted(cumulative, targets, side="left") + 1  # the range ends after the token reaching the target
    bounds = np.unique(np.concatenate([[0], np.minimum(cuts, vocab), [vocab]]))
    return bounds.astype(np.int64)


def stitch_trees(parts: Sequence[TokenTree] | list[TokenTree], info: TreeInfo, *, consume: bool = False) -> TokenTree:
    """The tree whose root's subtrees are those of ``parts``, built on disjoint increasing first-token ranges.

    With ``consume`` (``parts`` a list), each part is dropped from the list once copied, so
    the memory held stays about one tree: the stitched arrays are allocated untouched and
    fill as the parts they replace are freed.

    >>> from tokentree.build import build_tree
    >>> whole = build_tree([[1, 2], [3, 1], [1]], depth=2)
    >>> parts = [build_tree([[1, 2], [1]], depth=2, vocab_size=4), build_tree([[3, 1]], depth=2, vocab_size=4)]
    >>> stitch_trees(parts, whole.info) == whole
    True
    """
    if consume and not isinstance(parts, list):
        raise InputError("consume=True needs the parts as a list (it empties it)")
    kept = [p for p in parts if p.n_nodes > 1]
    if consume:
        parts.clear()  # type: ignore[union-attr]
    parts = kept
    if not parts:
        raise InputError("no part holds an occurrence; nothing to stitch")
    depth = info.depth
    for p in parts:
        if p.depth != depth:
            raise InputError(f"every part must have depth {depth}; got {p.depth}")
    sizes = np.array([np.diff(p.level_offsets) for p in parts], dtype=np.int64)  # (parts, depth + 1)
    level_size = sizes.sum(axis=0)
    level_size[0] = 1
    level_offsets = np.zeros(depth + 2, dtype=np.int64)
    np.cumsum(level_size, out=level_offsets[1:])
    n_nodes = int(level_offsets[-1])
    tokens = np.empty(n_nodes, dtype=np.int32)
    parents = np.empty(n_nodes, dtype=np.int32 if n_nodes < 2**31 else np.int64)
    counts = np.empty(n_nodes, dtype=np.int64)
    tokens[0], parents[0] = -1, -1
    counts[0] = sum(int(p.counts[0]) for p in parts)
    leaf_eos = np.zeros(int(level_size[-1]), dtype=np.int64)
    before = np.vstack([np.zeros(depth + 1, dtype=np.int64), np.cumsum(sizes, axis=0)[:-1]])  # nodes of earlier parts
    for i in range(len(parts)):
        p = parts[i]
        for j in range(1, depth + 1):
            lo, hi = int(p.level_offsets[j]), int(p.level_offsets[j + 1])
            if hi == lo:
                continue
            at = int(level_offsets[j] + before[i, j])
            tokens[at : at + hi - lo] = p.tokens[lo:hi]
            counts[at : at + hi - lo] = p.counts[lo:hi]
            if j == 1:
                parents[at : at + hi - lo] = 0
            else:  # a parent's place in its part's level j - 1, moved to the whole tree's level j - 1
                shift = int(level_offsets[j - 1] + before[i, j - 1] - p.level_offsets[j - 1])
                parents[at : at + hi - lo] = p.parents[lo:hi] + shift
        deepest = p.leaf_eos
        at = int(before[i, depth])
        leaf_eos[at : at + deepest.shape[0]] = deepest
        if consume:
            del p, deepest
            parts[i] = None  # type: ignore[call-overload]  # this part's arrays are free from here on
    return TokenTree._from_arrays(
        tokens=tokens, parents=parents, counts=counts, leaf_eos=leaf_eos, level_offsets=level_offsets, info=info
    )
