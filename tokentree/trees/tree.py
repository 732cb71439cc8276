"""The token tree (paper Def. 3.1), immutable and array-backed.

A :class:`TokenTree` stores one node per distinct prefix, in breadth-first order:
level ``j`` (prefixes of ``j`` tokens) occupies ``level_offsets[j]:level_offsets[j+1]``,
and inside a level nodes are sorted by ``(parent, token)``, which is the
lexicographic order of their prefixes. So every node's children are contiguous and
sorted by token, the ``parents`` array is non-decreasing, and pruning to depth ``d``
(Assumption 3.2) is a slice.

Per node the tree holds its token id, its parent index and its count (the number of
symbol occurrences passing through it, i.e. the unnormalised weight of the paper).
Depth and the EOS count (occurrences ending exactly at the node: the weight of its
EOS leaf) are derived: ``eos = count - sum(children's counts)`` except on the deepest
level, whose EOS counts are stored because a depth-``d`` node can both end there and
continue beyond the pruning depth.

Stored layout (issue 26): the narrowest dtypes that hold the data. Tokens are uint16 when
the vocabulary has at most 65,536 ids (else int32), the root's slot holding 0; counts are
one byte per node with a sparse table of the counts of 255 or more
(:mod:`tokentree.trees.counts_layout`), or dense (uint32 when the total mass is below
2**32, else int64) where that table would cost more.
Parent links are derived where the order allows: in breadth-first order the children
blocks follow one another in the order of their parents, so one byte of flags per node
(:data:`~tokentree.trees._kernels.FIRST_CHILD`: the node starts its parent's children;
:data:`~tokentree.trees._kernels.HAS_CHILDREN`) determines every parent. Built and
stitched trees store those flags (4 bytes per node for a 32k vocabulary instead of 16);
trees made from explicit parent links (unions, older files) keep the int32 links. The
public arrays (:attr:`TokenTree.tokens`, :attr:`TokenTree.parents`,
:attr:`TokenTree.counts`) keep their documented dtypes (int32 with root -1, int32 or
int64, int64): they are derived or widened on first use and cached, while the tree's own
queries (counts, lookups, symbols, pruning, statistics, saving) work on the stored arrays.

Build trees with :func:`tokentree.build_tree`; never call the constructor directly.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from functools import cached_property
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from tokentree.infra.errors import InputError
from tokentree.infra.results import ArrayResult
from tokentree.trees.counts_layout import (
    SATURATED,
    canonical_counts,
    count_at,
    count_dtype,
    narrow_counts,
    wide_slice,
)

if TYPE_CHECKING:
    import networkx

__all__ = ["TokenTree", "TreeInfo", "Symbols", "LayerStats", "PathCount", "MODES", "WEIGHTINGS"]

MODES = ("prefix", "chunk", "window")
WEIGHTINGS = ("sequences", "tokens")
ALPHABETS = ("token", "binary")
#: Node tokens are int32: ids and vocabularies up to 2**31.
MAX_VOCAB = 2**31
#: The deepest tree the builder makes. Levels below the longest response are empty, so a
#: larger depth only costs memory (the builder keeps per-level tables).
MAX_DEPTH = 2**16
#: Node flag bits (the same as tokentree.trees._kernels'; that module is compiled lazily).
FIRST_CHILD, HAS_CHILDREN = 1, 2
#: Largest vocabulary whose ids the tree stores as uint16.
MAX_U16_VOCAB = 2**16
Mode = Literal["prefix", "chunk", "window"]


@dataclass(frozen=True)
class TreeInfo:
    """What a tree was built from and how.

    Attributes
    ----------
    depth : int
        Capacity depth d (Assumption 3.2): the deepest level kept.
    mode : {"prefix", "chunk", "window"}
        How responses were cut into symbols (docs/theory.md §2).
    vocab_size : int
        Size of the token alphabet the ids come from (2 for the binary alphabet).
    weighting : {"sequences", "tokens"}
        Each symbol occurrence counts 1 ("sequences"), or the number of dataset
        tokens it stands for ("tokens": the whole response in prefix mode, the
        block's length in chunk mode, 1 in window mode), so masses sum to |D| in
        tokens.
    alphabet : {"token", "binary"}
        V-ary ids, or the paper's binary expansion of each id into ceil(log2 V) bits.
    source_vocab_size : int
        Vocabulary of the original ids (equals ``vocab_size`` for the token alphabet).
    n_sequences : int
        Responses in the dataset.
    n_tokens : int
        Tokens in the dataset (in the tree's alphabet).
    """

    depth: int
    mode: str
    vocab_size: int
    weighting: str = "sequences"
    alphabet: str = "token"
    source_vocab_size: int = 0
    n_sequences: int = 0
    n_tokens: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class PathCount:
    """One node of the tree reached by iteration: its prefix and its counts."""

    path: tuple[int, ...]
    count: int
    eos_count: int


@dataclass(frozen=True, eq=False, repr=False)
class Symbols(ArrayResult):
    """The symbols of a pruned tree (docs/theory.md §2) with their masses.

    Symbol ``i`` is the prefix ending at node ``node[i]``, followed by EOS when
    ``ends[i]`` is true, or continuing beyond the pruning depth otherwise (only
    possible at the deepest level). Masses are integer counts; they sum exactly to the
    tree's total mass (number of responses, blocks or windows; tokens when weighted
    by tokens). Ordered by node, an EOS symbol before the continuing one.
    """

    node: np.ndarray
    ends: np.ndarray
    length: np.ndarray
    mass: np.ndarray

    def __len__(self) -> int:
        return int(self.node.shape[0])

    @property
    def total_mass(self) -> int:
        return int(self.mass.sum())

    def probabilities(self) -> np.ndarray:
        """Masses normalised to sum to 1 (float64): the distribution P of the paper."""
        total = self.mass.sum()
        if total <= 0:
            raise InputError("the tree has zero total mass; it has no distribution")
        return self.mass / total


@dataclass(frozen=True, eq=False, repr=False)
class LayerStats(ArrayResult):
    """Per-layer statistics of a tree; index ``j`` is depth ``j`` (0 = root).

    Attributes
    ----------
    nodes : int64 array
        Distinct prefixes of length j.
    mass : int64 array
        Total count at depth j (occurrences at least j tokens long).
    eos_mass : int64 array
        Count ending exactly at depth j.
    entropy_bits : float64 array
        Entropy (bits) of the distribution over length-j prefixes among the
        occurrences that reach depth j.
    """

    nodes: np.ndarray
    mass: np.ndarray
    eos_mass: np.ndarray
    entropy_bits: np.ndarray

    def to_dict(self) -> dict[str, list[Any]]:
        return {k: getattr(self, k).tolist() for k in ("nodes", "mass", "eos_mass", "entropy_bits")}


def _readonly(a: np.ndarray) -> np.ndarray:
    a.flags.writeable = False
    return a


def token_dtype(vocab_size: int) -> np.dtype:
    """Dtype of stored node tokens: uint16 for vocabularies up to 65,536 ids, else int32."""
    return np.dtype(np.uint16 if int(vocab_size) <= MAX_U16_VOCAB else np.int32)


def compact_tokens(tokens: np.ndarray, vocab_size: int) -> np.ndarray:
    """``tokens`` in the stored dtype (unchanged when they already are)."""
    want = token_dtype(vocab_size)
    if tokens.dtype != want:
        tokens = tokens.astype(want)
        if tokens.shape[0]:
            tokens[0] = 0 if want == np.uint16 else -1
    return tokens


def _update_int64(h: Any, a: np.ndarray, chunk: int = 1 << 22) -> None:
    """Feed ``a`` to the hash ``h`` as int64 bytes, a chunk at a time (the same bytes as all at once)."""
    for i in range(0, a.shape[0], chunk):
        h.update(np.ascontiguousarray(a[i : i + chunk], dtype=np.int64).tobytes())


def entropy_bits_of_counts(counts: np.ndarray) -> float:
    """Entropy in bits of the distribution proportional to ``counts`` (0 for an empty layer)."""
    from tokentree.compression.rates import entropy  # scipy, only when statistics are asked for

    return entropy(counts) if counts.sum() > 0 else 0.0


class TokenTree:
    """An immutable token tree (paper Def. 3.1) pruned to a capacity depth.

    Do not construct directly: use :func:`tokentree.build_tree`, :meth:`prune`,
    :func:`tokentree.load_tree` or the combinators in :mod:`tokentree.trees.combine`.

    Examples
    --------
    >>> from tokentree import build_tree
    >>> tree = build_tree([[1, 2], [1, 3], [1, 2, 4]], depth=2, mode="prefix")
    >>> tree.n_nodes, tree.total_mass
    (4, 3)
    >>> tree.count([1, 2]), tree.eos_count([1, 2])
    (2, 1)
    >>> [(tree.symbol_path(i), m) for i, m in enumerate(tree.symbols().mass.tolist())]
    [((1, 2, 'EOS'), 1), ((1, 2), 1), ((1, 3, 'EOS'), 1)]
    """

    __slots__ = (
        "_tokens", "_parents", "_flags", "_counts", "_over_at", "_over_count", "_leaf_eos_at", "_leaf_eos_count",
        "_level_offsets", "_info", "__dict__",
    )

    _tokens: np.ndarray
    _parents: np.ndarray | None  # explicit parent links, or
    _flags: np.ndarray | None  # uint8 node flags they derive from (exactly one of the two is set)
    _counts: np.ndarray  # uint8 with the table below, or dense (uint32, int64) with an empty table
    _over_at: np.ndarray  # int64 nodes whose count is 255 or more (sorted), and
    _over_count: np.ndarray  # their counts (counts_layout.py)
    _leaf_eos_at: np.ndarray
    _leaf_eos_count: np.ndarray
    _level_offsets: np.ndarray
    _info: TreeInfo

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError("build trees with tokentree.build_tree(...) or tokentree.load_tree(...)")

    @classmethod
    def _from_arrays(
        cls,
        *,
        tokens: np.ndarray,
        counts: np.ndarray,
        leaf_eos: np.ndarray | tuple[np.ndarray, np.ndarray],
        level_offsets: np.ndarray,
        info: TreeInfo,
        parents: np.ndarray | None = None,
        flags: np.ndarray | None = None,
        count_overflow_at: np.ndarray | None = None,
        count_overflow: np.ndarray | None = None,
    ) -> TokenTree:
        """``counts`` dense (any integer dtype), or stored (uint8 or dense) with its table ``count_overflow_at``,
        ``count_overflow`` (:mod:`tokentree.trees.counts_layout`); either way stored canonically."""
        if (parents is None) == (flags is None):
            raise TypeError("pass exactly one of parents= and flags=")
        if (count_overflow_at is None) != (count_overflow is None):
            raise TypeError("pass both or neither of count_overflow_at= and count_overflow=")
        self = object.__new__(cls)
        tokens = compact_tokens(tokens, info.vocab_size)
        if count_overflow_at is None or count_overflow is None:
            counts, over_at, over_count = narrow_counts(counts)
        elif counts.dtype == np.uint8:
            counts, over_at, over_count = canonical_counts(counts, count_overflow_at, count_overflow)
        else:  # stored dense: canonical already when it came from a tree; narrow it if it is not
            counts, over_at, over_count = narrow_counts(counts)
        if isinstance(leaf_eos, tuple):  # already sparse: (index in the deepest level, count), by index
            at, at_count = leaf_eos
        else:  # dense; mostly zero: keep it sparse
            dense = np.asarray(leaf_eos)
            at = np.flatnonzero(dense)
            at_count = dense[at]
        object.__setattr__(self, "_tokens", _readonly(tokens))
        object.__setattr__(self, "_parents", None if parents is None else _readonly(parents))
        object.__setattr__(self, "_flags", None if flags is None else _readonly(flags))
        object.__setattr__(self, "_counts", _readonly(counts))
        object.__setattr__(self, "_over_at", _readonly(np.asarray(over_at)))
        object.__setattr__(self, "_over_count", _readonly(np.asarray(over_count)))
        object.__setattr__(self, "_leaf_eos_at", _readonly(np.asarray(at).astype(np.int64)))
        object.__setattr__(self, "_leaf_eos_count", _readonly(np.asarray(at_count).astype(np.int64)))
        object.__setattr__(self, "_level_offsets", _readonly(level_offsets))
        object.__setattr__(self, "_info", info)
        return self

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("TokenTree is immutable; build a new tree instead")

    def __delattr__(self, name: str) -> None:
        raise AttributeError("TokenTree is immutable")

    # ----------------------------------------------------------------- arrays
    @cached_property
    def tokens(self) -> np.ndarray:
        """Token id of every node (int32, root = -1), widened from the stored ids on first use."""
        if self._tokens.dtype == np.int32 and (self.n_nodes == 0 or self._tokens[0] == -1):
            return self._tokens
        wide = self._tokens.astype(np.int32)
        wide[0] = -1
        return _readonly(wide)

    @cached_property
    def parents(self) -> np.ndarray:
        """Parent index of every node (int32, int64 past 2**31 nodes; non-decreasing, root = -1).

        Derived from the node flags on first use when the tree stores flags.
        """
        return self._parents if self._parents is not None else _readonly(self._derive_parents())

    def _derive_parents(self) -> np.ndarray:
        from tokentree.trees import _kernels

        assert self._flags is not None
        out = np.empty(self.n_nodes, dtype=np.int32 if self.n_nodes < 2**31 else np.int64)
        if not _kernels.parents_from_flags(self._flags, out):  # pragma: no cover - flags are checked on loading
            raise InputError("the tree's node flags are inconsistent; rebuild it")
        return out

    @cached_property
    def counts(self) -> np.ndarray:
        """Occurrences passing through every node (int64); the root holds the total mass.

        Widened from the stored counts (one byte per node and a table of the large ones) on first use.
        """
        if self._counts.dtype == np.int64:
            return self._counts
        return _readonly(self._wide_counts(0, self.n_nodes))

    def _wide_counts(self, lo: int, hi: int) -> np.ndarray:
        """The counts of nodes ``lo:hi`` as a new int64 array (the cached :attr:`counts` when it is there)."""
        cached = self.__dict__.get("counts")
        if cached is not None:
            return np.array(cached[lo:hi])
        return wide_slice(self._counts, self._over_at, self._over_count, lo, hi)

    def _count_of(self, node: int) -> int:
        return count_at(self._counts, self._over_at, self._over_count, node)

    @property
    def stored_tokens(self) -> np.ndarray:
        """Token ids as stored (uint16 for a vocabulary that fits; the root's slot holds no id)."""
        return self._tokens

    @property
    def stored_flags(self) -> np.ndarray | None:
        """The stored node flags (None when the tree stores explicit parent links instead)."""
        return self._flags

    @property
    def stored_arrays(self) -> dict[str, np.ndarray]:
        """The arrays as stored (narrow dtypes, root token slot 0 when uint16, ``flags`` or ``parents``, the counts'
        table, leaf EOS counts dense): what :func:`~tokentree.trees.storage.save_tree` writes."""
        return {**self.stored_node_arrays, "leaf_eos": self._dense_leaf_eos(count_dtype(self.total_mass)),
                "level_offsets": self._level_offsets}

    @property
    def file_arrays(self) -> dict[str, np.ndarray]:
        """What :func:`~tokentree.trees.storage.save_tree` writes: :attr:`stored_arrays`, and a compressed tree's
        tails (:mod:`tokentree.trees.paths`)."""
        return self.stored_arrays

    @property
    def is_compressed(self) -> bool:
        """Whether the tree stores its tails as runs of tokens (:meth:`compressed`)."""
        return False

    def compressed(self) -> TokenTree:
        """The same tree with its tails (chains of one child with the parent's count, down to a childless end)
        stored as runs in one token array (:mod:`tokentree.trees.paths`); equal to this one."""
        from tokentree.trees.paths import compress

        return compress(self)

    def expanded(self) -> TokenTree:
        """The same tree in the full layout, one node per prefix (itself when it is not compressed)."""
        return self

    @property
    def stored_node_arrays(self) -> dict[str, np.ndarray]:
        """The per-node arrays of :attr:`stored_arrays` and the counts' table (no dense leaf EOS array is made)."""
        return {"tokens": self._tokens, **self._links, "counts": self._counts, **self._count_table}

    @property
    def sparse_leaf_eos(self) -> tuple[np.ndarray, np.ndarray]:
        """The deepest level's EOS counts as stored: (index in the level, count), by index, counts nonzero."""
        return self._leaf_eos_at, self._leaf_eos_count

    @property
    def _count_table(self) -> dict[str, np.ndarray]:
        """The table of large counts as keyword arguments of :meth:`_from_arrays`."""
        return {"count_overflow_at": self._over_at, "count_overflow": self._over_count}

    def level_counts(self, level: int) -> np.ndarray:
        """The counts of the nodes of depth ``level`` (a new int64 array)."""
        lo = self._level_offsets
        return self._wide_counts(int(lo[level]), int(lo[level + 1]))

    @property
    def _links(self) -> dict[str, np.ndarray]:
        """The stored parent links as keyword arguments of :meth:`_from_arrays`."""
        return {"parents": self._parents} if self._parents is not None else {"flags": self._flags}  # type: ignore[dict-item]

    @property
    def level_offsets(self) -> np.ndarray:
        """Nodes of depth j are ``level_offsets[j]:level_offsets[j + 1]`` (int64, length depth + 2)."""
        return self._level_offsets

    @cached_property
    def depths(self) -> np.ndarray:
        """Depth of every node (int16), derived from the level offsets."""
        return _readonly(
            np.repeat(np.arange(self.depth + 1, dtype=np.int16), np.diff(self._level_offsets))
        )

    @cached_property
    def child_offsets(self) -> np.ndarray:
        """Children of node u are ``child_offsets[u]:child_offsets[u + 1]`` (int64, length n + 1)."""
        if self._flags is not None:
            from tokentree.trees import _kernels

            return _readonly(_kernels.child_offsets_from_flags(self._flags))
        return _readonly(
            np.searchsorted(self.parents, np.arange(self.n_nodes + 1), side="left").astype(np.int64)
        )

    @property
    def leaf_eos(self) -> np.ndarray:
        """EOS counts of the deepest level's nodes (dense int64, one per node of depth ``depth``)."""
        return self._dense_leaf_eos(np.dtype(np.int64))

    def _dense_leaf_eos(self, dtype: np.dtype) -> np.ndarray:
        dense = np.zeros(int(self._level_offsets[-1] - self._level_offsets[-2]), dtype=dtype)
        dense[self._leaf_eos_at] = self._leaf_eos_count
        return dense

    @cached_property
    def eos_counts(self) -> np.ndarray:
        """Occurrences ending exactly at every node: the weight of its EOS leaf (int64)."""
        eos = self._wide_counts(0, self.n_nodes)
        cumulative = np.zeros(self.n_nodes + 1, dtype=np.int64)
        np.cumsum(eos, out=cumulative[1:])
        co = self.child_offsets
        eos -= cumulative[co[1:]] - cumulative[co[:-1]]
        eos[self._level_offsets[-2] :] = self.leaf_eos
        return _readonly(eos)

    # ------------------------------------------------------------- metadata
    @property
    def info(self) -> TreeInfo:
        return self._info

    @property
    def depth(self) -> int:
        return self._info.depth

    @property
    def mode(self) -> str:
        return self._info.mode

    @property
    def vocab_size(self) -> int:
        return self._info.vocab_size

    @property
    def n_nodes(self) -> int:
        """Number of nodes including the root."""
        return int(self._tokens.shape[0])

    @property
    def total_mass(self) -> int:
        """Total count: responses (prefix), blocks (chunk) or windows (window); tokens if so weighted."""
        return self._count_of(0) if self.n_nodes else 0

    @property
    def nbytes(self) -> int:
        """Bytes held by the stored arrays (derived caches excluded)."""
        return sum(
            a.nbytes
            for a in (
                self._tokens, *self._links.values(), self._counts, self._over_at, self._over_count,
                self._leaf_eos_at, self._leaf_eos_count, self._level_offsets,
            )
        )

    def __repr__(self) -> str:
        i = self._info
        return (
            f"TokenTree(mode={i.mode!r}, depth={i.depth}, nodes={self.n_nodes}, "
            f"mass={self.total_mass}, vocab_size={i.vocab_size}, weighting={i.weighting!r}, "
            f"alphabet={i.alphabet!r})"
        )

    # ------------------------------------------------------------ equality
    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TokenTree):
            return NotImplemented
        return (
            self._info == other._info
            and np.array_equal(self._level_offsets, other._level_offsets)
            and np.array_equal(self._tokens[1:], other._tokens[1:])  # the root's slot holds no id
            and self._same_links(other)
            and self._same_counts(other)
            and np.array_equal(self._leaf_eos_at, other._leaf_eos_at)
            and np.array_equal(self._leaf_eos_count, other._leaf_eos_count)
        )

    def _same_counts(self, other: TokenTree) -> bool:
        if self._counts.dtype == other._counts.dtype:  # both stored canonically: equal counts, equal arrays
            return (np.array_equal(self._counts, other._counts) and np.array_equal(self._over_at, other._over_at)
                    and np.array_equal(self._over_count, other._over_count))
        return self.n_nodes == other.n_nodes and np.array_equal(self.counts, other.counts)

    def _same_links(self, other: TokenTree) -> bool:
        if self._flags is not None and other._flags is not None:
            return np.array_equal(self._flags, other._flags)
        if self._parents is not None and other._parents is not None:
            return np.array_equal(self._parents, other._parents)
        return np.array_equal(self._node_flags(), other._node_flags())

    def _node_flags(self) -> np.ndarray:
        """The node flags (stored, or derived from the parent links)."""
        if self._flags is not None:
            return self._flags
        from tokentree.trees import _kernels

        assert self._parents is not None
        return _kernels.flags_from_parents(np.asarray(self._parents))

    def __hash__(self) -> int:
        return hash(self.digest())

    def digest(self) -> str:
        """SHA-256 of the tree's content (arrays and metadata): equal trees, equal digests."""
        h = hashlib.sha256(repr(sorted(self._info.to_dict().items())).encode())
        _update_int64(h, self._level_offsets)
        if self.n_nodes:  # the root's token as -1, whatever its stored slot holds
            h.update(np.int64(-1).tobytes())
        parents = self._parents if self._parents is not None else self.__dict__.get("parents", None)
        parents = self._derive_parents() if parents is None else parents
        _update_int64(h, self._tokens[1:])
        _update_int64(h, parents)
        for i in range(0, self.n_nodes, 1 << 22):  # the counts as int64, a chunk at a time
            h.update(self._wide_counts(i, min(i + (1 << 22), self.n_nodes)).tobytes())
        _update_int64(h, self._leaf_eos_at)
        _update_int64(h, self._leaf_eos_count)
        return h.hexdigest()

    # ------------------------------------------------------------- pruning
    def prune(self, depth: int) -> TokenTree:
        """Keep layers 1..depth (Assumption 3.2: a model of capacity ``depth``).

        A slice of the node arrays plus the EOS counts of the new deepest level.
        In chunk mode this keeps the first ``depth`` tokens of every block; to cut
        responses into blocks of the new depth, rebuild with that depth instead.

        >>> from tokentree import build_tree
        >>> t = build_tree([[1, 2, 3], [1, 2]], depth=3, mode="prefix")
        >>> t.prune(1).symbols().mass.tolist()  # one continuing symbol "1..."
        [2]
        """
        depth = _check_depth(depth)
        if depth > self.depth:
            raise InputError(
                f"cannot prune a depth-{self.depth} tree to depth {depth}; "
                f"prune only to depths 1..{self.depth}, or rebuild with depth={depth}"
            )
        if depth == self.depth:
            return self
        end = int(self._level_offsets[depth + 1])
        start = int(self._level_offsets[depth])
        if self._flags is not None:  # the new deepest level has no children
            flags = self._flags[:end].copy()
            flags[start:end] &= np.uint8(0xFF ^ HAS_CHILDREN)
            links = {"flags": flags}
        else:
            links = {"parents": self._parents[:end]}  # type: ignore[index]
        kept = int(np.searchsorted(self._over_at, end))
        return TokenTree._from_arrays(
            tokens=self._tokens[:end],
            **links,
            counts=self._counts[:end],
            count_overflow_at=self._over_at[:kept],
            count_overflow=self._over_count[:kept],
            leaf_eos=np.array(self.eos_counts[start:end]),
            level_offsets=np.array(self._level_offsets[: depth + 2]),
            info=replace(self._info, depth=depth),
        )

    # ------------------------------------------------------------- symbols
    def symbols(self) -> Symbols:
        """The symbols of the tree with their masses (they sum to :attr:`total_mass`)."""
        eos = self.eos_counts
        deepest = int(self._level_offsets[-2])
        ending = np.flatnonzero(eos[1:] > 0) + 1
        continuing = np.flatnonzero(self._wide_counts(deepest, self.n_nodes) - eos[deepest:] > 0) + deepest
        node = np.concatenate([ending, continuing])
        ends = np.concatenate([np.ones(ending.shape[0], bool), np.zeros(continuing.shape[0], bool)])
        order = np.argsort(node * 2 + (~ends), kind="stable")
        node, ends = node[order], ends[order]
        counts = self._counts[node].astype(np.int64)
        large = np.flatnonzero(counts == SATURATED) if self._counts.dtype == np.uint8 else np.zeros(0, np.int64)
        counts[large] = self._over_count[np.searchsorted(self._over_at, node[large])]
        mass = np.where(ends, eos[node], counts - eos[node])
        return Symbols(
            node=_readonly(node.astype(np.int64)),
            ends=_readonly(ends),
            length=_readonly(self.depths[node].astype(np.int64)),
            mass=_readonly(mass.astype(np.int64)),
        )

    def path(self, node: int) -> tuple[int, ...]:
        """Token ids from the root to ``node``."""
        out = []
        node = int(node)
        while node > 0:
            out.append(int(self._tokens[node]))
            node = int(self.parents[node])
        return tuple(reversed(out))

    def symbol_path(self, index: int, symbols: Symbols | None = None) -> tuple[Any, ...]:
        """The tokens of symbol ``index``, with a trailing ``"EOS"`` when it ends the response."""
        s = self.symbols() if symbols is None else symbols
        p = self.path(int(s.node[index]))
        return (*p, "EOS") if s.ends[index] else p

    # ---------------------------------------------------------- statistics
    def layer_stats(self) -> LayerStats:
        """Node count, mass, EOS mass and entropy (bits) of every layer 0..depth."""
        lo = self._level_offsets
        eos = self.eos_counts
        mass = np.zeros(self.depth + 1, np.int64)
        ent = np.zeros(self.depth + 1)
        for j in range(self.depth + 1):  # one level's counts widened at a time
            level = self.level_counts(j)
            mass[j], ent[j] = level.sum(), entropy_bits_of_counts(level)
        eos_mass = np.array([eos[lo[j] : lo[j + 1]].sum() for j in range(self.depth + 1)], np.int64)
        return LayerStats(nodes=np.diff(lo), mass=mass, eos_mass=eos_mass, entropy_bits=ent)

    def find(self, prefix: Any) -> int:
        """Index of the node for ``prefix``, or -1 if no occurrence starts with it."""
        node = 0
        co = self.child_offsets
        for tok in prefix:
            tok = int(tok)
            if not 0 <= tok < self.vocab_size:
                return -1
            lo, hi = int(co[node]), int(co[node + 1])
            j = lo + int(np.searchsorted(self._tokens[lo:hi], tok))
            if j >= hi or self._tokens[j] != tok:
                return -1
            node = j
        return node

    def count(self, prefix: Any) -> int:
        """Occurrences that start with ``prefix``: token ids, or text when the tree records its tokenizer."""
        node = self.find(self.ids_of(prefix))
        return 0 if node < 0 else self._count_of(node)

    def eos_count(self, prefix: Any) -> int:
        """Occurrences that are exactly ``prefix`` (ids or text) followed by EOS."""
        node = self.find(self.ids_of(prefix))
        return 0 if node < 0 else int(self.eos_counts[node])

    # ------------------------------------------------------------ provenance and text
    @property
    def provenance(self) -> dict[str, Any] | None:
        """How the tree was made, when it was built from text or ids by tokentree: tokenizer (name,
        sha256, vocab_size), inputs (paths and sizes), options and tokentree version."""
        return self.__dict__.get("_provenance")

    def with_provenance(self, provenance: dict[str, Any], tokenizer_json: str | None = None) -> TokenTree:
        """The same tree, recording how it was made and (as ``tokenizer.json`` text) the tokenizer that made it."""
        out = TokenTree._from_arrays(
            tokens=self._tokens, **self._links, counts=self._counts, **self._count_table,
            leaf_eos=(self._leaf_eos_at, self._leaf_eos_count),
            level_offsets=self._level_offsets, info=self._info,
        )
        out.__dict__["_provenance"] = dict(provenance)
        out.__dict__["_tokenizer_json"] = tokenizer_json
        return out

    @property
    def tokenizer_json(self) -> str | None:
        """The recorded tokenizer as ``tokenizer.json`` text (None: not recorded)."""
        return self.__dict__.get("_tokenizer_json")

    @cached_property
    def tokenizer(self) -> Any:
        """The recorded ``tokenizers.Tokenizer`` (None when the tree records none)."""
        text = self.tokenizer_json
        if text is None:
            return None
        from tokenizers import Tokenizer

        return Tokenizer.from_str(text)

    def ids_of(self, prefix: Any) -> Any:
        """``prefix`` as token ids: text is encoded with the recorded tokenizer; ids pass through."""
        if not isinstance(prefix, str):
            return prefix
        if self._info.alphabet != "token":
            raise InputError("text lookups need a tree over token ids (alphabet 'token'); pass bits instead")
        if self.tokenizer is None:
            raise InputError(
                "this tree records no tokenizer, so text cannot be looked up; pass token ids, or rebuild it with "
                "`tokentree build` (which records the tokenizer)"
            )
        return self.tokenizer.encode(prefix).ids

    def decode(self, ids: Any) -> str:
        """Token ids as text with the recorded tokenizer (the ids themselves when there is none)."""
        ids = [int(i) for i in ids]
        if self.tokenizer is None or self._info.alphabet != "token":
            return " ".join(map(str, ids))
        return str(self.tokenizer.decode(ids, skip_special_tokens=False))

    def top_symbols(self, k: int = 10) -> list[tuple[str, int, float]]:
        """The ``k`` heaviest symbols: (text, mass, probability), heaviest first; "<EOS>" marks an ending."""
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise InputError(f"k must be a positive integer; got {k!r}")
        sym = self.symbols()
        order = np.argsort(-sym.mass, kind="stable")[: int(k)]
        total = float(sym.mass.sum())
        out = []
        for i in order.tolist():
            path = self.symbol_path(i)
            ends = path[-1] == "EOS"
            text = self.decode(path[:-1] if ends else path) + (" <EOS>" if ends else "")
            out.append((text, int(sym.mass[i]), float(sym.mass[i]) / total))
        return out

    def iter_paths(self) -> Iterator[PathCount]:
        """Every non-root node in depth-first lexicographic order with its counts."""
        co = self.child_offsets
        eos = self.eos_counts
        counts = self.counts
        stack: list[tuple[int, tuple[int, ...]]] = [
            (c, (int(self._tokens[c]),)) for c in range(int(co[1]) - 1, int(co[0]) - 1, -1)
        ]
        while stack:
            node, path = stack.pop()
            yield PathCount(path, int(counts[node]), int(eos[node]))
            for c in range(int(co[node + 1]) - 1, int(co[node]) - 1, -1):
                stack.append((c, (*path, int(self._tokens[c]))))

    def to_networkx(self) -> networkx.DiGraph:
        """A ``networkx.DiGraph`` of the tree: node i has attributes token, count, eos, depth."""
        import networkx as nx

        g = nx.DiGraph()
        eos, counts = self.eos_counts, self.counts
        for i in range(self.n_nodes):
            g.add_node(
                i,
                token=None if i == 0 else int(self._tokens[i]),
                count=int(counts[i]),
                eos=int(eos[i]),
                depth=int(self.depths[i]),
            )
        g.add_edges_from(zip(self.parents[1:].tolist(), range(1, self.n_nodes), strict=False))
        return g


def _check_depth(depth: Any) -> int:
    if isinstance(depth, bool) or not isinstance(depth, (int, np.integer)):
        raise InputError(f"depth must be an integer >= 1; got {depth!r}")
    if depth < 1:
        raise InputError(f"depth must be >= 1 (the number of tree layers kept); got {depth}")
    if depth > MAX_DEPTH:
        raise InputError(
            f"depth must be <= {MAX_DEPTH}; got {depth}. Levels below the longest response are empty, so use a "
            "depth no larger than the longest response"
        )
    return int(depth)
