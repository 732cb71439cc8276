"""Token trees built in parts: by ranges of first tokens, each part a subtree, stitched level by level.

Every occurrence that counts toward a node, or toward anything below it, starts with that
node's first token. So the occurrences whose first token lies in a range [a, b) build
exactly the subtrees of the root's children a..b-1, and since every level is stored in
lexicographic order, the parts' levels laid end to end, ranges in increasing order, are
the levels of the whole tree: the stitched tree equals :func:`tokentree.build_tree`'s
array for array. A build in parts needs the working memory of one part at a time (and
the finished tree), so a corpus whose occurrences would not fit at once still builds.

:func:`plan_partitions` chooses range boundaries that balance the occurrences; a first
token heavier than a part's share gets a part of its own, and :func:`split_heavy` cuts
such a token further by its second token (a chat-template token in prefix mode, a very
frequent word). The slices of one first token share only their level-1 node, which
:func:`stitch_trees` merges (counts summed); below it their subtrees are disjoint and in
order, since (first, second) ranges increase lexicographically.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from tokentree.infra.errors import InputError
from tokentree.infra.pages import release_pages
from tokentree.trees.counts_layout import SATURATED
from tokentree.trees.tree import FIRST_CHILD, HAS_CHILDREN, TokenTree, TreeInfo, token_dtype

__all__ = ["plan_partitions", "first_token_mass", "PartKey", "split_heavy", "stitch_trees"]

#: A first token holding more than this many parts' shares of the occurrences is cut by its second token.
HEAVY_SHARES = 1.5


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


@dataclass(frozen=True)
class PartKey:
    """The occurrences of one part: first token in ``first_tokens`` [a, b) and, when ``second_tokens`` is set
    (then b = a + 1), second token in [c, d), where -1 stands for none (an occurrence of one token)."""

    first_tokens: tuple[int, int]
    second_tokens: tuple[int, int] | None = None

    def holds(self, ids: Sequence[int]) -> bool:
        """Whether occurrences starting with ``ids`` (one token or more) can lie in this part."""
        a, b = self.first_tokens
        if not ids or not a <= int(ids[0]) < b:
            return False
        if self.second_tokens is None or len(ids) < 2:
            return True
        return self.second_tokens[0] <= int(ids[1]) < self.second_tokens[1]


def _merge_empty(cuts: Sequence[int], mass_between: Callable[[int, int], int],
                 fixed: Callable[[int, int], bool] = lambda a, b: False) -> list[tuple[int, int]]:
    """The ranges between ``cuts``, each empty one merged into a neighbour unless that neighbour is ``fixed``:
    they still cover the same span, and only a range whose neighbours are all fixed stays empty."""
    out: list[tuple[int, int]] = []
    for a, b in itertools.pairwise(cuts):
        if out and mass_between(a, b) == 0 and not fixed(*out[-1]):  # empty: joins the range before
            out[-1] = (out[-1][0], b)
        elif out and mass_between(*out[-1]) == 0 and not fixed(a, b):  # the range before was empty: it joins this
            out[-1] = (out[-1][0], b)
        else:
            out.append((a, b))
    return out


def _slices(by_second: np.ndarray, n: int) -> list[tuple[int, int]]:
    """About ``n`` balanced ranges of second-token keys (shifted by one: index 0 is none), none of them empty."""
    total = np.concatenate([[0], np.cumsum(by_second)])
    return _merge_empty(plan_partitions(by_second, n).tolist(), lambda c, d: int(total[d] - total[c]))


def split_heavy(bounds: np.ndarray, mass: np.ndarray, n_partitions: int,
                second_mass: Callable[[int], np.ndarray] | None) -> list[PartKey]:
    """The parts of first-token ``bounds``; with ``second_mass``, a first token holding over ``HEAVY_SHARES`` parts'
    shares gets its own range and is cut by its second token.

    ``second_mass(a)`` gives the occurrences starting with ``a`` per second token key
    (index 0 for none, t + 1 for token t). Empty ranges and slices are merged into a
    neighbour, so the parts cover every first token (and every second token of a cut one):
    the plan of one corpus builds any other completely.

    >>> heavy = {0: np.array([1, 2, 2, 2, 2, 1])}  # token 0: 10 occurrences, by second token
    >>> [(k.first_tokens, k.second_tokens) for k in split_heavy(np.array([0, 1, 5]), np.array([10, 1, 1, 0, 0]), 4,
    ...                                                       heavy.__getitem__)]
    [((0, 1), (-1, 1)), ((0, 1), (1, 2)), ((0, 1), (2, 4)), ((0, 1), (4, 5)), ((1, 5), None)]
    """
    mass = np.asarray(mass, dtype=np.int64)
    share = float(mass.sum()) / max(int(n_partitions), 1)
    heavy = set() if second_mass is None else {int(t) for t in np.flatnonzero(mass > HEAVY_SHARES * share)}
    cuts = sorted({int(b) for b in bounds} | {t for h in heavy for t in (h, h + 1)})
    keys = []
    for a, b in _merge_empty(cuts, lambda a, b: int(mass[a:b].sum()), lambda a, b: b - a == 1 and a in heavy):
        if a not in heavy or b - a > 1 or second_mass is None:
            keys.append(PartKey((a, b)))
            continue
        keys += [PartKey((a, a + 1), (c - 1, d - 1)) for c, d in _slices(np.asarray(second_mass(a), dtype=np.int64),
                                                                          math.ceil(mass[a] / share))]
    return keys


def stitch_trees(parts: Sequence[TokenTree] | list[TokenTree], info: TreeInfo, *, consume: bool = False,
                 release: bool = False) -> TokenTree:
    """The tree whose root's subtrees are those of ``parts``, built on increasing :class:`PartKey` ranges.

    Consecutive parts holding the same single first token (slices by second token) share
    that level-1 node: it is merged, its counts summed.

    With ``consume`` (``parts`` a list), each part is dropped from the list once copied, so
    the memory held stays about one tree: the stitched arrays are allocated untouched and
    fill as the parts they replace are freed. With ``release`` too (the parts' arrays are
    this call's alone, as in :func:`tokentree.build_tree`'s parts), a part's pages go back to
    the system level by level as they are copied (:func:`tokentree.infra.pages.release_pages`),
    not when the allocator frees the part (glibc kept freed parts in its heap): 10M Zipf
    tokens at d = 8 in 4 parts peaked at 461 MiB above the corpus (429 MiB while stitching:
    the parts 248 MiB, the tree 231 MiB), and now at 281 MiB (the rest above the parts is the
    stitched arrays' 2 MiB huge pages, first touched at every level's start).

    >>> from tokentree.trees.build import build_tree
    >>> whole = build_tree([[1, 2], [3, 1], [1]], depth=2)
    >>> parts = [build_tree([[1, 2], [1]], depth=2, vocab_size=4), build_tree([[3, 1]], depth=2, vocab_size=4)]
    >>> stitch_trees(parts, whole.info) == whole
    True
    """
    if consume and not isinstance(parts, list):
        raise InputError("consume=True needs the parts as a list (it empties it)")
    if release and not consume:
        raise InputError("release=True gives the parts' memory away: it needs consume=True")
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
    first_of = [(int(p.stored_tokens[p.level_offsets[1]]), int(p.stored_tokens[p.level_offsets[2] - 1])) for p in parts]
    merges = np.array([i > 0 and first_of[i][0] == first_of[i - 1][1] for i in range(len(parts))], dtype=np.int64)
    level_size = sizes.sum(axis=0)
    level_size[0] = 1
    level_size[1] -= int(merges.sum())
    level_offsets = np.zeros(depth + 2, dtype=np.int64)
    np.cumsum(level_size, out=level_offsets[1:])
    n_nodes = int(level_offsets[-1])
    total_mass = sum(p.total_mass for p in parts)
    tokens = np.empty(n_nodes, dtype=token_dtype(info.vocab_size))  # the tree's stored dtypes (tree.py)
    use_flags = all(p.stored_flags is not None for p in parts)  # else explicit parent links
    if use_flags:
        links = np.zeros(n_nodes, dtype=np.uint8)
        links[0] = HAS_CHILDREN if n_nodes > 1 else 0
    else:
        links = np.empty(n_nodes, dtype=np.int32 if n_nodes < 2**31 else np.int64)
        links[0] = -1
    counts = np.empty(n_nodes, dtype=np.uint8)  # one byte per node and a table of the large counts (counts_layout.py)
    level_1 = np.zeros(int(level_size[1]), dtype=np.int64)  # level 1, where parts merge, held wide
    big_at: list[np.ndarray] = []
    big_count: list[np.ndarray] = []
    tokens[0] = 0 if tokens.dtype == np.uint16 else -1
    eos_at: list[np.ndarray] = []  # the deepest level's EOS counts, sparse: (index, count) by index
    eos_count: list[np.ndarray] = []
    before = np.vstack([np.zeros(depth + 1, dtype=np.int64), np.cumsum(sizes, axis=0)[:-1]])  # nodes of earlier parts
    before[:, 1] -= np.cumsum(merges)  # a merged part's first level-1 node is its predecessor's last
    for i in range(len(parts)):
        p = parts[i]
        part = p.stored_node_arrays
        part_links = part["flags"] if use_flags else p.parents
        merged_had_children = False
        first_has_children = use_flags and bool(part_links[p.level_offsets[1]] & HAS_CHILDREN)  # read before release
        for j in range(1, depth + 1):
            lo, hi = int(p.level_offsets[j]), int(p.level_offsets[j + 1])
            if hi == lo:
                continue
            at = int(level_offsets[j] + before[i, j])
            if j == 1:
                level_1[at - 1 : at - 1 + hi - lo] += p.level_counts(1)  # a merged node adds both halves
            if j == 1 and merges[i]:
                if use_flags:  # the merged node has children if either half has
                    merged_had_children = bool(links[at] & HAS_CHILDREN)
                    links[at] |= part_links[lo] & HAS_CHILDREN
                at, lo = at + 1, lo + 1
            tokens[at : at + hi - lo] = part["tokens"][lo:hi]
            if j > 1:
                _copy_counts(part, lo, hi, at, counts, big_at, big_count)
            if use_flags:
                links[at : at + hi - lo] = part_links[lo:hi]
                if j == 2 and merged_had_children and first_has_children:
                    links[at] &= np.uint8(0xFF ^ FIRST_CHILD)  # continues the predecessor's children of that node
            elif j == 1:
                links[at : at + hi - lo] = 0
            else:  # a parent's place in its part's level j - 1, moved to the whole tree's level j - 1
                shift = int(level_offsets[j - 1] + before[i, j - 1] - p.level_offsets[j - 1])
                links[at : at + hi - lo] = part_links[lo:hi] + shift
            if release:  # levels are copied in order: nodes 0:hi of the part are done
                for name in ("tokens", "flags", "parents", "counts"):
                    if name in part:
                        release_pages(part[name], hi)
        part_at, part_count = p.sparse_leaf_eos
        eos_at.append(part_at + int(before[i, depth]))  # a merged level-1 node (depth 1) repeats its predecessor's
        eos_count.append(part_count)
        if consume:
            del p, part, part_links, part_at, part_count
            parts[i] = None  # type: ignore[call-overload]  # this part's arrays are free from here on
    counts[0] = min(total_mass, SATURATED)
    counts[1 : level_offsets[2]] = np.minimum(level_1, SATURATED)
    wide = np.concatenate([[total_mass], level_1])
    large = np.flatnonzero(wide >= SATURATED)
    big_at.insert(0, large)
    big_count.insert(0, wide[large])
    table_at, table_count = np.concatenate(big_at), np.concatenate(big_count)
    order = np.argsort(table_at, kind="stable")
    if use_flags:  # level 1 is the root's one block of children
        links[1 : level_offsets[2]] &= np.uint8(0xFF ^ FIRST_CHILD)
        if n_nodes > 1:
            links[1] |= FIRST_CHILD
    link_arg = {"flags": links} if use_flags else {"parents": links}
    return TokenTree._from_arrays(
        tokens=tokens, **link_arg, counts=counts, count_overflow_at=table_at[order], count_overflow=table_count[order],
        leaf_eos=_merged_sparse(eos_at, eos_count), level_offsets=level_offsets, info=info,
    )


def _merged_sparse(at: list[np.ndarray], count: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Sparse (index, count) lists laid end to end, entries of one index (a merged node) summed, zeros dropped."""
    all_at = np.concatenate(at).astype(np.int64) if at else np.zeros(0, np.int64)
    all_count = np.concatenate(count).astype(np.int64) if count else np.zeros(0, np.int64)
    if all_at.shape[0] > 1 and not np.all(np.diff(all_at) > 0):  # equal indices are adjacent: sum them
        first = np.flatnonzero(np.diff(all_at, prepend=-1) != 0)
        all_at, all_count = all_at[first], np.add.reduceat(all_count, first)
    keep = all_count != 0
    return all_at[keep], all_count[keep]


def _copy_counts(part: dict[str, np.ndarray], lo: int, hi: int, at: int, counts: np.ndarray,
                 big_at: list[np.ndarray], big_count: list[np.ndarray]) -> None:
    """Nodes ``lo:hi`` of a part's stored counts into ``counts[at:]`` (one byte each), their large counts appended."""
    stored = part["counts"]
    if stored.dtype == np.uint8:  # narrow: bytes as they are, the table's entries in the range moved
        counts[at : at + hi - lo] = stored[lo:hi]
        a, b = np.searchsorted(part["count_overflow_at"], [lo, hi])
        big_at.append(part["count_overflow_at"][a:b] + (at - lo))
        big_count.append(np.asarray(part["count_overflow"][a:b]))
        return
    dense = np.asarray(stored[lo:hi])
    np.minimum(dense, SATURATED, out=counts[at : at + hi - lo], casting="unsafe")
    large = np.flatnonzero(dense >= SATURATED)
    big_at.append(large + at)
    big_count.append(dense[large].astype(np.int64))
