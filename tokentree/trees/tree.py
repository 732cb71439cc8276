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
continue beyond the pruning depth. That keeps the resident cost at 16 bytes per node
(int32 token, int32 parent, int64 count).

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
        "_tokens", "_parents", "_counts", "_leaf_eos_at", "_leaf_eos_count", "_level_offsets", "_info",
        "__dict__",
    )

    _tokens: np.ndarray
    _parents: np.ndarray
    _counts: np.ndarray
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
        parents: np.ndarray,
        counts: np.ndarray,
        leaf_eos: np.ndarray,
        level_offsets: np.ndarray,
        info: TreeInfo,
    ) -> TokenTree:
        self = object.__new__(cls)
        object.__setattr__(self, "_tokens", _readonly(tokens))
        object.__setattr__(self, "_parents", _readonly(parents))
        object.__setattr__(self, "_counts", _readonly(counts))
        # Deepest-level EOS counts are mostly zero: keep them sparse (index, count).
        at = np.flatnonzero(leaf_eos)
        object.__setattr__(self, "_leaf_eos_at", _readonly(at.astype(np.int64)))
        object.__setattr__(self, "_leaf_eos_count", _readonly(np.asarray(leaf_eos)[at].astype(np.int64)))
        object.__setattr__(self, "_level_offsets", _readonly(level_offsets))
        object.__setattr__(self, "_info", info)
        return self

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("TokenTree is immutable; build a new tree instead")

    def __delattr__(self, name: str) -> None:
        raise AttributeError("TokenTree is immutable")

    # ----------------------------------------------------------------- arrays
    @property
    def tokens(self) -> np.ndarray:
        """Token id of every node (int32, root = -1)."""
        return self._tokens

    @property
    def parents(self) -> np.ndarray:
        """Parent index of every node (non-decreasing, root = -1)."""
        return self._parents

    @property
    def counts(self) -> np.ndarray:
        """Occurrences passing through every node (int64); the root holds the total mass."""
        return self._counts

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
        return _readonly(
            np.searchsorted(self._parents, np.arange(self.n_nodes + 1), side="left").astype(np.int64)
        )

    @property
    def leaf_eos(self) -> np.ndarray:
        """EOS counts of the deepest level's nodes (dense int64, one per node of depth ``depth``)."""
        dense = np.zeros(int(self._level_offsets[-1] - self._level_offsets[-2]), dtype=np.int64)
        dense[self._leaf_eos_at] = self._leaf_eos_count
        return dense

    @cached_property
    def eos_counts(self) -> np.ndarray:
        """Occurrences ending exactly at every node: the weight of its EOS leaf (int64)."""
        cumulative = np.zeros(self.n_nodes + 1, dtype=np.int64)
        np.cumsum(self._counts, out=cumulative[1:])
        co = self.child_offsets
        eos = self._counts - (cumulative[co[1:]] - cumulative[co[:-1]])
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
        return int(self._counts[0])

    @property
    def nbytes(self) -> int:
        """Bytes held by the stored arrays (derived caches excluded)."""
        return sum(
            a.nbytes
            for a in (
                self._tokens, self._parents, self._counts, self._leaf_eos_at, self._leaf_eos_count,
                self._level_offsets,
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
            and np.array_equal(self._tokens, other._tokens)
            and np.array_equal(self._parents, other._parents)
            and np.array_equal(self._counts, other._counts)
            and np.array_equal(self._leaf_eos_at, other._leaf_eos_at)
            and np.array_equal(self._leaf_eos_count, other._leaf_eos_count)
        )

    def __hash__(self) -> int:
        return hash(self.digest())

    def digest(self) -> str:
        """SHA-256 of the tree's content (arrays and metadata): equal trees, equal digests."""
        h = hashlib.sha256(repr(sorted(self._info.to_dict().items())).encode())
        for a in (
            self._level_offsets, self._tokens, self._parents, self._counts, self._leaf_eos_at,
            self._leaf_eos_count,
        ):
            h.update(np.ascontiguousarray(a, dtype=np.int64).tobytes())
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
        return TokenTree._from_arrays(
            tokens=self._tokens[:end],
            parents=self._parents[:end],
            counts=self._counts[:end],
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
        continuing = np.flatnonzero(self._counts[deepest:] - eos[deepest:] > 0) + deepest
        node = np.concatenate([ending, continuing])
        ends = np.concatenate([np.ones(ending.shape[0], bool), np.zeros(continuing.shape[0], bool)])
        order = np.argsort(node * 2 + (~ends), kind="stable")
        node, ends = node[order], ends[order]
        mass = np.where(ends, eos[node], self._counts[node] - eos[node])
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
            node = int(self._parents[node])
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
        mass = np.array([self._counts[lo[j] : lo[j + 1]].sum() for j in range(self.depth + 1)], np.int64)
        eos_mass = np.array([eos[lo[j] : lo[j + 1]].sum() for j in range(self.depth + 1)], np.int64)
        ent = np.array(
            [entropy_bits_of_counts(self._counts[lo[j] : lo[j + 1]]) for j in range(self.depth + 1)]
        )
        return LayerStats(nodes=np.diff(lo), mass=mass, eos_mass=eos_mass, entropy_bits=ent)

    def find(self, prefix: Any) -> int:
        """Index of the node for ``prefix``, or -1 if no occurrence starts with it."""
        node = 0
        co = self.child_offsets
        for tok in prefix:
            lo, hi = int(co[node]), int(co[node + 1])
            j = lo + int(np.searchsorted(self._tokens[lo:hi], int(tok)))
            if j >= hi or self._tokens[j] != tok:
                return -1
            node = j
        return node

    def count(self, prefix: Any) -> int:
        """Occurrences that start with ``prefix``: token ids, or text when the tree records its tokenizer."""
        node = self.find(self.ids_of(prefix))
        return 0 if node < 0 else int(self._counts[node])

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
            tokens=self._tokens, parents=self._parents, counts=self._counts, leaf_eos=self.leaf_eos,
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
        stack: list[tuple[int, tuple[int, ...]]] = [
            (c, (int(self._tokens[c]),)) for c in range(int(co[1]) - 1, int(co[0]) - 1, -1)
        ]
        while stack:
            node, path = stack.pop()
            yield PathCount(path, int(self._counts[node]), int(eos[node]))
            for c in range(int(co[node + 1]) - 1, int(co[node]) - 1, -1):
                stack.append((c, (*path, int(self._tokens[c]))))

    def to_networkx(self) -> networkx.DiGraph:
        """A ``networkx.DiGraph`` of the tree: node i has attributes token, count, eos, depth."""
        import networkx as nx

        g = nx.DiGraph()
        eos = self.eos_counts
        for i in range(self.n_nodes):
            g.add_node(
                i,
                token=None if i == 0 else int(self._tokens[i]),
                count=int(self._counts[i]),
                eos=int(eos[i]),
                depth=int(self.depths[i]),
            )
        g.add_edges_from(zip(self._parents[1:].tolist(), range(1, self.n_nodes), strict=False))
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
