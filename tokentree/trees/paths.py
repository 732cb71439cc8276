"""Path compression of token trees: chains of one child stored as runs of tokens (issue 26).

Most nodes of a window tree lie on *tails*: below some node (the tail's *head*) every node
has exactly one child with the same count, down to a childless end. 97.9% of the nodes of
a 10M-token Zipf window tree at depth 8 have count 1, and nearly all of them lie on tails.
The suffix-tree idea stores such a chain as a run of tokens instead of one node per
token: :func:`compress` keeps the *explicit* nodes (everything not inside a tail, heads
included and flagged :data:`HEAD`) as a token tree of their own, in the usual stored
layout, and per tail its length (a byte) and its tokens, one tail after another in one
token array (where a tail starts is the sum of the lengths before it), and the EOS count
at its end when the end is on the deepest level (elsewhere a childless node's
occurrences all end there). An implicit node costs its token (2 bytes for a 32k
vocabulary) instead of 4 bytes; a window tree of Zipf text comes to about 2.5 bytes a node.

A :class:`PathCompressedTree` is a :class:`~tokentree.trees.tree.TokenTree`: lookups by
prefix (:meth:`~TokenTree.count`, :meth:`~TokenTree.eos_count`), the node and mass
totals, the level offsets, saving and loading (format version 4) work on the compressed
arrays; every other query (node arrays, symbols, rates, Huffman codes, statistics,
pruning, stitching, equality and digests) reads the full tree, expanded once on first use
and kept, so every answer is the full tree's. ``tree.compressed()`` and
``tree.expanded()`` convert; equal trees compare equal whichever layout they are in.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from tokentree.trees.tree import HAS_CHILDREN, TokenTree, _readonly

__all__ = ["Tails", "PathCompressedTree", "compress", "TAIL_ARRAYS"]

#: The arrays of a compressed tree beside its explicit nodes' (what a version-4 file adds).
TAIL_ARRAYS = ("tail_length", "tail_text", "tail_end_eos_at", "tail_end_eos")
#: The explicit node flag (beside FIRST_CHILD and HAS_CHILDREN) that marks a tail's head.
HEAD = 4


@dataclass(frozen=True, eq=False)
class Tails:
    """The tails of a compressed tree, in the order of their heads (the explicit nodes flagged :data:`HEAD`).

    ``length`` (uint8, uint16 or int64): nodes below the head; ``text`` (the stored token
    dtype): their tokens, one tail after another, so that tail ``t`` starts at the sum of
    the lengths before it; ``end_eos_at``, ``end_eos`` (int64): the tails that end on the
    deepest level with a nonzero EOS count there, and that count.
    """

    length: np.ndarray
    text: np.ndarray
    end_eos_at: np.ndarray
    end_eos: np.ndarray

    def arrays(self) -> dict[str, np.ndarray]:
        return dict(zip(TAIL_ARRAYS, (self.length, self.text, self.end_eos_at, self.end_eos), strict=True))

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in self.arrays().values())

    @cached_property
    def start(self) -> np.ndarray:
        """Where each tail's tokens start in ``text`` (int64)."""
        out = np.zeros(self.length.shape[0], np.int64)
        np.cumsum(self.length[:-1], out=out[1:])
        return out

    def end_eos_dense(self) -> np.ndarray:
        dense = np.zeros(self.length.shape[0], np.int64)
        dense[self.end_eos_at] = self.end_eos
        return dense


def _length_dtype(longest: int) -> np.dtype:
    return np.dtype(np.uint8 if longest < 2**8 else np.uint16 if longest < 2**16 else np.int64)


def compress(tree: TokenTree) -> PathCompressedTree:
    """``tree`` with its tails stored as runs of tokens (the same tree; see the module)."""
    if isinstance(tree, PathCompressedTree):
        return tree
    from tokentree.trees import _path_kernels

    stored, over_at, over_count = tree._counts, tree._over_at, tree._over_count
    flags = tree._node_flags()
    only_child = np.full(tree.n_nodes, -1, np.int32 if tree.n_nodes < 2**31 else np.int64)
    implicit, head = _path_kernels.find_tails(flags, stored, over_at, over_count, only_child)
    heads = np.flatnonzero(head)
    length, text, end = _path_kernels.tail_labels(heads, only_child, tree.stored_tokens, int(implicit.sum()))
    del only_child
    keep = ~implicit
    lo = tree.level_offsets
    deepest = int(lo[-2])
    leaf_eos = tree.leaf_eos
    ends_deep = np.flatnonzero(end >= deepest)
    end_eos = leaf_eos[end[ends_deep] - deepest]
    head_at, level_ends = _path_kernels.ranks(keep, heads), _path_kernels.ranks(keep, lo[1:])
    flags = flags[keep]  # an explicit node's children are all explicit, but a head's are not
    flags[head_at] = (flags[head_at] & np.uint8(0xFF ^ HAS_CHILDREN)) | np.uint8(HEAD)
    big = keep[over_at]  # the table of large counts, of the explicit nodes (a tail's are its head's)
    explicit = TokenTree._from_arrays(
        tokens=tree.stored_tokens[keep], flags=flags, counts=stored[keep],
        count_overflow_at=_path_kernels.ranks(keep, over_at[big]), count_overflow=over_count[big],
        leaf_eos=leaf_eos[keep[deepest:]], level_offsets=np.concatenate([[0], level_ends]).astype(np.int64),
        info=tree.info,
    )
    tails = Tails(length=length.astype(_length_dtype(int(length.max(initial=0)))), text=text,
                  end_eos_at=ends_deep[end_eos > 0].astype(np.int64), end_eos=end_eos[end_eos > 0].astype(np.int64))
    out = PathCompressedTree._of(explicit, tails)
    if tree.provenance is not None or tree.tokenizer_json is not None:
        out.__dict__["_provenance"] = tree.provenance
        out.__dict__["_tokenizer_json"] = tree.tokenizer_json
    return out


def _full_array(name: str) -> property:
    """A stored array of the full tree, read from the expansion (so every inherited query sees the full tree)."""
    return property(lambda self: getattr(self._full, name))


class PathCompressedTree(TokenTree):
    """A token tree whose tails are stored as runs of tokens (see the module).

    Make one with ``tree.compressed()`` or :func:`tokentree.load_tree` of a compressed file;
    ``expanded()`` gives the full layout. The inherited queries read the full tree, expanded
    on first use.
    """

    _tokens = _full_array("_tokens")
    _parents = _full_array("_parents")
    _flags = _full_array("_flags")
    _counts = _full_array("_counts")
    _over_at = _full_array("_over_at")
    _over_count = _full_array("_over_count")
    _leaf_eos_at = _full_array("_leaf_eos_at")
    _leaf_eos_count = _full_array("_leaf_eos_count")

    @classmethod
    def _of(cls, explicit: TokenTree, tails: Tails) -> PathCompressedTree:
        """The tree of ``explicit`` nodes and their ``tails`` (checked for consistency by the loader, not here)."""
        self = object.__new__(cls)
        self.__dict__["explicit"] = explicit
        self.__dict__["tails"] = tails
        return self

    @property
    def explicit(self) -> TokenTree:
        """The explicit nodes (heads included, childless there) as a token tree of their own."""
        return self.__dict__["explicit"]

    @property
    def tails(self) -> Tails:
        return self.__dict__["tails"]

    @cached_property
    def _heads(self) -> np.ndarray:
        """The explicit node every tail hangs from (int64, sorted)."""
        return heads_of(self.explicit)

    @property
    def _info(self) -> Any:  # type: ignore[override]
        return self.explicit.info

    @cached_property
    def _level_offsets(self) -> np.ndarray:  # type: ignore[override]
        """The full tree's level offsets: explicit nodes plus the tails crossing each level."""
        depth = self.depth
        heads_depth = self.explicit.depths[self._heads].astype(np.int64)
        crossing = np.zeros(depth + 2, np.int64)
        np.add.at(crossing, heads_depth + 1, 1)
        np.add.at(crossing, heads_depth + 1 + self.tails.length.astype(np.int64), -1)
        per_level = np.diff(self.explicit.level_offsets) + np.cumsum(crossing)[: depth + 1]
        return _readonly(np.concatenate([[0], np.cumsum(per_level)]).astype(np.int64))

    @cached_property
    def _full(self) -> TokenTree:
        """The tree in the full layout (expanded once, kept)."""
        from tokentree.trees import _path_kernels
        from tokentree.trees.counts_layout import count_dtype

        ex, tails = self.explicit, self.tails
        lo = self._level_offsets
        n = int(lo[-1])
        tail_of = np.full(ex.n_nodes, -1, np.int64)
        tail_of[self._heads] = np.arange(self._heads.shape[0])
        tokens = np.empty(n, ex.stored_tokens.dtype)
        flags = np.empty(n, np.uint8)
        counts = np.empty(n, np.int64)
        leaf_eos = np.empty(int(lo[-1] - lo[-2]), np.int64)
        ex_deepest = int(ex.level_offsets[-2])
        _path_kernels.expand(
            ex.stored_tokens, ex.child_offsets, ex._wide_counts(0, ex.n_nodes), ex_deepest, ex.leaf_eos, tail_of,
            tails.length.astype(np.int64), tails.start, tails.text, tails.end_eos_dense(), lo,
            tokens, flags, counts, leaf_eos,
        )
        return TokenTree._from_arrays(tokens=tokens, flags=flags, counts=counts,
                                      leaf_eos=leaf_eos.astype(count_dtype(self.total_mass)), level_offsets=lo,
                                      info=self._info)

    # ---------------------------------------------------------------- native
    @property
    def n_nodes(self) -> int:
        return int(self._level_offsets[-1])

    @property
    def total_mass(self) -> int:
        return self.explicit.total_mass

    @property
    def nbytes(self) -> int:
        """Bytes of the compressed arrays (explicit nodes and tails; the expansion, when made, excluded)."""
        return self.explicit.nbytes + self.tails.nbytes

    @property
    def is_compressed(self) -> bool:
        return True

    def compressed(self) -> PathCompressedTree:
        return self

    def expanded(self) -> TokenTree:
        full = self._full
        if self.provenance is None and self.tokenizer_json is None:
            return full
        return full.with_provenance(self.provenance or {}, self.tokenizer_json)

    @property
    def file_arrays(self) -> dict[str, np.ndarray]:
        return {**self.explicit.file_arrays, **self.tails.arrays()}

    def with_provenance(self, provenance: dict[str, Any], tokenizer_json: str | None = None) -> PathCompressedTree:
        out = PathCompressedTree._of(self.explicit, self.tails)
        out.__dict__["_provenance"] = dict(provenance)
        out.__dict__["_tokenizer_json"] = tokenizer_json
        return out

    def _locate(self, ids: Any) -> tuple[int, int, int] | None:
        """(explicit node, tail or -1, tokens taken from the tail) reached by ``ids``, or None when none is."""
        ex, tails, heads = self.explicit, self.tails, self._heads
        co = ex.child_offsets
        stored = ex.stored_tokens
        ids = [int(t) for t in ids]
        node = 0
        for i, tok in enumerate(ids):
            t = int(np.searchsorted(heads, node))
            if t < heads.shape[0] and heads[t] == node:  # the rest must run along this tail
                rest = ids[i:]
                s = int(tails.start[t])
                if len(rest) > int(tails.length[t]) or tails.text[s : s + len(rest)].tolist() != rest:
                    return None
                return node, t, len(rest)
            if not 0 <= tok < self.vocab_size:
                return None
            lo, hi = int(co[node]), int(co[node + 1])
            j = lo + int(np.searchsorted(stored[lo:hi], tok))
            if j >= hi or stored[j] != tok:
                return None
            node = j
        return node, -1, 0

    def find(self, prefix: Any) -> int:
        return self._full.find(prefix)

    def count(self, prefix: Any) -> int:
        where = self._locate(self.ids_of(prefix))
        return 0 if where is None else self.explicit._count_of(where[0])

    def eos_count(self, prefix: Any) -> int:
        where = self._locate(self.ids_of(prefix))
        if where is None:
            return 0
        node, t, taken = where
        tails = self.tails
        if t < 0:
            is_head = bool(self.explicit.stored_flags[node] & HEAD)  # type: ignore[index]
            return 0 if is_head else int(self.explicit.eos_counts[node])
        if taken == 0 or taken < int(tails.length[t]):
            return 0
        if int(self.explicit.depths[node]) + taken < self.depth:  # a childless node short of the deepest level
            return self.explicit._count_of(node)
        i = int(np.searchsorted(tails.end_eos_at, t))
        return int(tails.end_eos[i]) if i < tails.end_eos_at.shape[0] and tails.end_eos_at[i] == t else 0


def heads_of(explicit: TokenTree) -> np.ndarray:
    """The explicit nodes flagged :data:`HEAD` (int64, sorted)."""
    flags = explicit.stored_flags
    assert flags is not None
    return np.flatnonzero(flags & np.uint8(HEAD)).astype(np.int64)


def from_file_arrays(explicit: TokenTree, arrays: dict[str, np.ndarray], bad: Any) -> PathCompressedTree:
    """The compressed tree of a version-4 file's arrays, its tails checked against ``explicit`` (``bad(why)``
    makes the error raised)."""
    length, text, end_at, end_eos = (arrays[k] for k in TAIL_ARRAYS)
    if explicit.stored_flags is None:
        raise bad("tails without node flags")
    head = heads_of(explicit)
    k = head.shape[0]
    if length.shape[0] != k or end_at.shape != end_eos.shape:
        raise bad("tail arrays of different lengths, or not one tail per head")
    if k and (head[0] == 0 or np.any(explicit.stored_flags[head] & HAS_CHILDREN)):
        raise bad("a tail hanging from the root or from a node with explicit children")
    wide = length.astype(np.int64)
    if np.any(wide < 1) or np.any(explicit.depths[head].astype(np.int64) + wide > explicit.depth):
        raise bad("a tail that is empty or runs below the tree's depth")
    if text.shape[0] != int(wide.sum()) or text.dtype != explicit.stored_tokens.dtype:
        raise bad("a tail token array that does not hold the tails' tokens")
    if text.shape[0] and (int(text.min()) < 0 or int(text.max()) >= explicit.vocab_size):
        raise bad("tail tokens out of range")
    if np.any(np.diff(end_at) <= 0) or (end_at.shape[0] and (end_at[0] < 0 or end_at[-1] >= k)):
        raise bad("tail EOS counts not sorted by tail or pointing outside the tails")
    counts = explicit._wide_counts(0, explicit.n_nodes)
    ends_deep = explicit.depths[head[end_at]].astype(np.int64) + wide[end_at] == explicit.depth
    if np.any(end_eos <= 0) or np.any(end_eos > counts[head[end_at]]) or not np.all(ends_deep):
        raise bad("a tail EOS count that is not positive, exceeds the tail's count, or is not on the deepest level")
    return PathCompressedTree._of(explicit, Tails(length=length, text=text, end_eos_at=end_at.astype(np.int64),
                                                  end_eos=end_eos.astype(np.int64)))
