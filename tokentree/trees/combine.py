"""Combining trees: sums, integer scaling, and mixtures on a shared symbol set (docs/theory.md §4).

Datasets are compared symbol by symbol, so trees must share depth and mode. The
union of several trees (every prefix any of them has) gives the shared symbol set;
each dataset's masses are then read off on that set, with zeros where it lacks a
symbol.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from tokentree.compression.mixture import mix
from tokentree.infra.errors import InputError
from tokentree.infra.results import ArrayResult
from tokentree.trees.tree import Symbols, TokenTree

__all__ = ["union_tree", "sum_trees", "scale_tree", "AlignedSymbols", "align_symbols", "Mixture", "mixture"]


def _check_compatible(trees: Sequence[TokenTree]) -> None:
    if not trees:
        raise InputError("need at least one tree; got none")
    for t in trees:
        if not isinstance(t, TokenTree):
            raise InputError(f"expected TokenTree objects; got {type(t).__name__}")
    first = trees[0].info
    for i, t in enumerate(trees[1:], 1):
        for field in ("depth", "mode", "weighting", "alphabet"):
            if getattr(t.info, field) != getattr(first, field):
                raise InputError(
                    f"tree {i} has {field}={getattr(t.info, field)!r} but tree 0 has "
                    f"{getattr(first, field)!r}; build (or prune) every tree with the same {field}"
                )


_MAX_COUNT = int(np.iinfo(np.int64).max)


def union_tree(trees: Sequence[TokenTree]) -> tuple[TokenTree, list[np.ndarray]]:
    """The tree of all datasets together, and for each input tree its node -> union node map.

    >>> from tokentree import build_tree
    >>> a = build_tree([[1, 2]], depth=2, mode="prefix"); b = build_tree([[1, 3]], depth=2, mode="prefix")
    >>> u, maps = union_tree([a, b])
    >>> u.count([1]), [m.tolist() for m in maps]
    (2, [[0, 1, 2], [0, 1, 3]])
    """
    _check_compatible(trees)
    for what, sizes in (("total masses", [t.total_mass for t in trees]),
                        ("token counts", [t.info.n_tokens for t in trees]),
                        ("sequence counts", [t.info.n_sequences for t in trees])):
        if sum(sizes) > _MAX_COUNT:
            raise InputError(
                f"the trees' {what} add up to {sum(sizes)}, past the int64 counts' limit {_MAX_COUNT}; combine "
                "fewer or smaller trees, or use mixture(trees, sizes=...) for relative sizes"
            )
    depth = trees[0].depth
    vocab = max(t.vocab_size for t in trees)
    radix = vocab + 1
    maps = [np.zeros(t.n_nodes, dtype=np.int64) for t in trees]
    tokens = [np.array([-1], dtype=np.int32)]
    parents = [np.array([-1], dtype=np.int64)]
    counts = [np.array([sum(t.total_mass for t in trees)], dtype=np.int64)]
    level_offsets = np.zeros(depth + 2, dtype=np.int64)
    level_offsets[1] = 1
    leaf_eos = np.zeros(0, dtype=np.int64)
    for j in range(1, depth + 1):
        keys, sizes = [], []
        for t, m in zip(trees, maps, strict=True):
            lo, hi = int(t.level_offsets[j]), int(t.level_offsets[j + 1])
            union_parent = m[t.parents[lo:hi].astype(np.int64)] - level_offsets[j - 1]
            keys.append(union_parent * radix + t.tokens[lo:hi].astype(np.int64))
            sizes.append(hi - lo)
        unique, inverse = np.unique(np.concatenate(keys), return_inverse=True)
        level_counts = np.zeros(unique.shape[0], dtype=np.int64)
        level = [t.counts[t.level_offsets[j] : t.level_offsets[j + 1]] for t in trees]
        np.add.at(level_counts, inverse, np.concatenate(level))
        tokens.append((unique % radix).astype(np.int32))
        parents.append(unique // radix + level_offsets[j - 1])
        counts.append(level_counts)
        level_offsets[j + 1] = level_offsets[j] + unique.shape[0]
        at = 0
        for t, m, size in zip(trees, maps, sizes, strict=True):
            m[int(t.level_offsets[j]) : int(t.level_offsets[j + 1])] = inverse[at : at + size] + level_offsets[j]
            at += size
        if j == depth:
            leaf_eos = np.zeros(unique.shape[0], dtype=np.int64)
            np.add.at(leaf_eos, inverse, np.concatenate([t.leaf_eos for t in trees]))
    n = int(level_offsets[-1])
    index_dtype = np.int32 if n < np.iinfo(np.int32).max else np.int64
    info = replace(
        trees[0].info,
        vocab_size=vocab,
        source_vocab_size=max(t.info.source_vocab_size for t in trees),
        n_sequences=sum(t.info.n_sequences for t in trees),
        n_tokens=sum(t.info.n_tokens for t in trees),
    )
    union = TokenTree._from_arrays(
        tokens=np.concatenate(tokens),
        parents=np.concatenate(parents).astype(index_dtype),
        counts=np.concatenate(counts),
        leaf_eos=leaf_eos,
        level_offsets=level_offsets,
        info=info,
    )
    return union, maps


def sum_trees(trees: Sequence[TokenTree]) -> TokenTree:
    """The tree of the concatenated datasets: counts add node by node.

    >>> from tokentree import build_tree
    >>> a = build_tree([[1, 2]], depth=2); b = build_tree([[1, 2], [3]], depth=2)
    >>> sum_trees([a, b]) == build_tree([[1, 2], [1, 2], [3]], depth=2)
    True
    """
    return union_tree(trees)[0]



def scale_tree(tree: TokenTree, factor: int) -> TokenTree:
    """Multiply every count by a non-negative integer (the dataset repeated ``factor`` times).

    >>> from tokentree import build_tree
    >>> scale_tree(build_tree([[1]], depth=1), 3).total_mass
    3
    """
    if isinstance(factor, bool) or not isinstance(factor, (int, np.integer)) or factor < 0:
        raise InputError(
            f"factor must be a non-negative integer; got {factor!r}. For real-valued dataset "
            "sizes use mixture(trees, sizes=...)"
        )
    largest = max(int(tree.counts[0]) if tree.n_nodes else 0, tree.info.n_tokens, tree.info.n_sequences)
    if largest * int(factor) > _MAX_COUNT:
        raise InputError(
            f"scaling by {factor} would overflow the int64 counts (the largest, {largest}, would exceed "
            f"{_MAX_COUNT}); use a smaller factor, or mixture(trees, sizes=...) for relative sizes"
        )
    info = replace(
        tree.info, n_sequences=tree.info.n_sequences * int(factor), n_tokens=tree.info.n_tokens * int(factor)
    )
    links = {name: a.copy() for name, a in tree.stored_arrays.items() if name in ("parents", "flags")}
    return TokenTree._from_arrays(
        tokens=tree.stored_tokens.copy(),
        **links,
        counts=tree.counts * int(factor),
        leaf_eos=tree.leaf_eos * int(factor),
        level_offsets=tree.level_offsets.copy(),
        info=info,
    )


@dataclass(frozen=True, eq=False, repr=False)
class AlignedSymbols(ArrayResult):
    """Several datasets' symbol masses on one shared symbol set.

    Attributes
    ----------
    union : TokenTree
        The tree of all datasets together; ``symbols`` are its symbols.
    symbols : Symbols
        The shared symbol set (masses of the union).
    masses : int64 array, shape (n_datasets, n_symbols)
        Row i: dataset i's mass on every shared symbol (zero where it lacks it).
    """

    union: TokenTree
    symbols: Symbols
    masses: np.ndarray

    def distributions(self) -> np.ndarray:
        """Row-normalised masses: each dataset's distribution P_i on the shared symbols."""
        totals = self.masses.sum(axis=1, keepdims=True)
        return self.masses / totals


def align_symbols(trees: Sequence[TokenTree]) -> AlignedSymbols:
    """Every tree's symbol masses on the union's symbol set.

    >>> from tokentree import build_tree
    >>> a = build_tree([[1, 2]], depth=2); b = build_tree([[3]], depth=2)
    >>> al = align_symbols([a, b])
    >>> [al.union.symbol_path(i, al.symbols) for i in range(len(al.symbols))], al.masses.tolist()
    ([(3, 'EOS'), (1, 2, 'EOS')], [[0, 1], [1, 0]])
    """
    union, maps = union_tree(trees)
    symbols = union.symbols()
    masses = np.zeros((len(trees), len(symbols)), dtype=np.int64)
    for i, (t, m) in enumerate(zip(trees, maps, strict=True)):
        counts = np.zeros(union.n_nodes, dtype=np.int64)
        eos = np.zeros(union.n_nodes, dtype=np.int64)
        counts[m] = t.counts
        eos[m] = t.eos_counts
        masses[i] = np.where(symbols.ends, eos[symbols.node], counts[symbols.node] - eos[symbols.node])
    return AlignedSymbols(union=union, symbols=symbols, masses=masses)


@dataclass(frozen=True, eq=False, repr=False)
class Mixture(ArrayResult):
    """The size-weighted mixture q = sum_i |D_i| P_i / sum_i |D_i| (docs/theory.md §4).

    Attributes
    ----------
    aligned : AlignedSymbols
        The datasets on their shared symbol set.
    sizes : float64 array
        Dataset sizes |D_i| used as weights.
    components : float64 array, shape (n_datasets, n_symbols)
        Each dataset's distribution P_i.
    probabilities : float64 array
        The mixture q on the shared symbols (sums to 1).
    """

    aligned: AlignedSymbols
    sizes: np.ndarray
    components: np.ndarray
    probabilities: np.ndarray


def mixture(trees: Sequence[TokenTree], sizes: Sequence[float] | np.ndarray | None = None) -> Mixture:
    """The model jointly trained on several datasets: their size-weighted mixture.

    Parameters
    ----------
    trees : sequence of TokenTree
        Datasets, all built with the same depth and mode.
    sizes : sequence of float, optional
        Dataset sizes |D_i| (default: each tree's total mass, so q is the
        normalised sum tree).

    >>> from tokentree import build_tree
    >>> a = build_tree([[1]], depth=1); b = build_tree([[2]], depth=1)
    >>> mixture([a, b], sizes=[3, 1]).probabilities.tolist()
    [0.75, 0.25]
    """
    aligned = align_symbols(trees)
    if sizes is None:
        size_arr = aligned.masses.sum(axis=1).astype(np.float64)
    else:
        size_arr = np.asarray(sizes, dtype=np.float64)
        if size_arr.shape != (len(trees),):
            raise InputError(f"sizes must have one entry per tree ({len(trees)}); got shape {size_arr.shape}")
        if not np.all(np.isfinite(size_arr)) or np.any(size_arr < 0) or size_arr.sum() <= 0:
            raise InputError(f"sizes must be finite, non-negative and not all zero; got {size_arr.tolist()}")
    components = aligned.distributions()
    q = mix(components, size_arr)
    return Mixture(aligned=aligned, sizes=size_arr, components=components, probabilities=q)
