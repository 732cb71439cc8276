"""Building token trees from token-id datasets.

:func:`build_tree` cuts every response into symbol occurrences (THEORY.md section 2)
and counts them in a trie stored breadth-first (:class:`tokentree.TokenTree`).

The modes differ only in where occurrences start and how long they are:

============  ==========================================  =============================
mode          occurrences of a response of n tokens       length of each
============  ==========================================  =============================
``prefix``    one, at its first token                     min(n, d)
``chunk``     ceil(n / d), at tokens 0, d, 2d, ...        d, the last one possibly less
``window``    n, at every token                           min(d, tokens left)
============  ==========================================  =============================

An occurrence that reaches the end of its response ends in EOS.

Algorithm
---------
Exact and level-wise. Every occurrence keeps the index of the node it has reached at
depth j - 1; the nodes of depth j are its distinct (parent, next token) pairs, which in
lexicographic order are exactly the breadth-first order the tree stores. Occurrences
are kept sorted by node, so only groups of two or more occurrences sharing a parent
need re-sorting; a singleton stays where it is. The sort packs (group, token,
position) into one uint64 key and uses ``np.sort`` (a SIMD sort, about 10x faster than
``argsort``); sizes too large for 64 bits fall back to a stable ``argsort``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence

import numpy as np

from tokentree.errors import InputError, MemoryEstimateError
from tokentree.progress import progress
from tokentree.sequences import TokenSequences, as_token_sequences, binary_expand
from tokentree.tree import MODES, WEIGHTINGS, TokenTree, TreeInfo, _check_depth

__all__ = ["build_tree", "estimate_build_bytes", "available_memory_bytes", "occurrences"]

ALPHABETS = ("token", "binary")
BYTES_PER_NODE = 16  # int32 token + int32 parent + int64 count
BYTES_PER_OCCURRENCE = 72  # working arrays per occurrence during the build


def available_memory_bytes() -> int:
    """Memory available to a new allocation (``MemAvailable`` on Linux), in bytes."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))


def estimate_build_bytes(n_occurrences: int, total_length: int) -> int:
    """Upper bound on the peak memory of a build, in bytes.

    The tree has at most one node per occurrence per level (``total_length`` nodes
    plus the root); the working arrays cost about 72 bytes per occurrence.
    """
    return BYTES_PER_NODE * (total_length + 1) + BYTES_PER_OCCURRENCE * n_occurrences


def occurrences(
    seqs: TokenSequences, depth: int, mode: str, weight: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Where each symbol occurrence starts, its length, and its weight.

    Returns ``(start, length, weights)``; ``weights`` is None when every occurrence
    counts 1. An occurrence ends in EOS exactly when it reaches the end of its response.

    >>> s = as_token_sequences([[1, 2, 3, 4, 5]])
    >>> [a.tolist() for a in occurrences(s, 2, "chunk", "sequences")[:2]]
    [[0, 2, 4], [2, 2, 1]]
    """
    lengths = seqs.lengths
    first = seqs.offsets[:-1]
    if mode == "prefix":
        start = first.copy()
        weights = lengths.copy() if weight == "tokens" else None
    elif mode == "chunk":
        n_blocks = -(-lengths // depth)
        block_rank = np.zeros(n_blocks.shape[0] + 1, dtype=np.int64)
        np.cumsum(n_blocks, out=block_rank[1:])
        block_in_seq = np.arange(block_rank[-1], dtype=np.int64) - np.repeat(block_rank[:-1], n_blocks)
        start = np.repeat(first, n_blocks) + block_in_seq * depth
        weights = None
    elif mode == "window":
        start = np.arange(seqs.n_tokens, dtype=np.int64)
        weights = None  # each window stands for exactly one token
    else:  # pragma: no cover - checked by build_tree
        raise InputError(f"unknown mode {mode!r}")
    end = np.repeat(seqs.offsets[1:], np.diff(np.searchsorted(start, seqs.offsets)))
    length = np.minimum(end - start, depth)
    if mode == "chunk" and weight == "tokens":
        weights = length.copy()
    return start, length, weights


def _validate_ids(seqs: TokenSequences, vocab_size: int | None) -> int:
    tokens = seqs.tokens
    if tokens.shape[0] == 0:
        raise InputError("every sequence is empty; there are no tokens to build a tree from")
    lo, hi = int(tokens.min()), int(tokens.max())
    if lo < 0:
        pos = int(np.argmax(tokens < 0))
        seq = int(np.searchsorted(seqs.offsets, pos, side="right") - 1)
        raise InputError(
            f"token ids must be >= 0; sequence {seq} has id {int(tokens[pos])} at position "
            f"{pos - int(seqs.offsets[seq])}. Map special or padding ids to real ids, or drop them."
        )
    if vocab_size is None:
        return hi + 1
    if isinstance(vocab_size, bool) or not isinstance(vocab_size, (int, np.integer)) or vocab_size < 1:
        raise InputError(f"vocab_size must be a positive integer; got {vocab_size!r}")
    if hi >= vocab_size:
        pos = int(np.argmax(tokens >= vocab_size))
        seq = int(np.searchsorted(seqs.offsets, pos, side="right") - 1)
        raise InputError(
            f"token ids must be < vocab_size = {vocab_size}; sequence {seq} has id "
            f"{int(tokens[pos])} at position {pos - int(seqs.offsets[seq])}. Pass the tokenizer's "
            "full vocabulary size, or vocab_size=None to use max id + 1."
        )
    return int(vocab_size)


def build_tree(
    sequences: TokenSequences | np.ndarray | Iterable[Sequence[int] | np.ndarray],
    *,
    depth: int,
    mode: str = "chunk",
    vocab_size: int | None = None,
    weight: str = "sequences",
    alphabet: str = "token",
    offsets: np.ndarray | Sequence[int] | None = None,
    force: bool = False,
    memory_limit_bytes: int | None = None,
    show_progress: bool | None = None,
) -> TokenTree:
    """Build the token tree of a dataset, pruned to ``depth`` (paper Def. 3.1, Assumption 3.2).

    Parameters
    ----------
    sequences : TokenSequences, iterable of int sequences, or flat int array
        The responses, as token ids. A flat array needs ``offsets``.
    depth : int
        Capacity depth d >= 1: tree layers kept (in bits for ``alphabet="binary"``).
    mode : {"chunk", "prefix", "window"}
        How responses are cut into symbols (see the module docstring).
    vocab_size : int, optional
        Alphabet size V; every id must be below it. Default: max id + 1.
    weight : {"sequences", "tokens"}
        Count each occurrence once, or by the number of dataset tokens it stands for.
    alphabet : {"token", "binary"}
        Build on the ids themselves, or on their ceil(log2 V)-bit binary expansion
        (the paper's {0, 1} alphabet).
    offsets : array of int, optional
        Response boundaries when ``sequences`` is one flat array.
    force : bool
        Build even when the memory estimate exceeds the available memory.
    memory_limit_bytes : int, optional
        Memory the build may use; default: the memory available now.
    show_progress : bool, optional
        Show a progress bar; default: only when stderr is a terminal.

    Returns
    -------
    TokenTree

    Raises
    ------
    InputError
        Empty dataset or sequences, negative ids, ids >= ``vocab_size``, bad depth,
        mode, weight or alphabet.
    InputTypeError
        Float, bool or object ids.
    MemoryEstimateError
        The estimated peak memory exceeds the limit and ``force`` is false.

    Examples
    --------
    >>> tree = build_tree([[3, 1, 2], [3, 1]], depth=2, mode="chunk")
    >>> tree.total_mass, tree.count([3, 1]), tree.count([2]), tree.eos_count([2])
    (3, 2, 1, 1)
    >>> build_tree([[0, 1, 1]], depth=2, mode="window").count([1])
    2
    """
    depth = _check_depth(depth)
    if mode not in MODES:
        raise InputError(f"mode must be one of {MODES}; got {mode!r}")
    if weight not in WEIGHTINGS:
        raise InputError(f"weight must be one of {WEIGHTINGS}; got {weight!r}")
    if alphabet not in ALPHABETS:
        raise InputError(f"alphabet must be one of {ALPHABETS}; got {alphabet!r}")
    seqs = as_token_sequences(sequences, offsets=offsets)
    if seqs.n_sequences == 0:
        raise InputError("the dataset is empty (no sequences); pass at least one non-empty response")
    empty = np.flatnonzero(seqs.lengths == 0)
    if empty.shape[0]:
        raise InputError(
            f"{empty.shape[0]} of {seqs.n_sequences} sequences are empty (first: index {int(empty[0])}); "
            "a response needs at least one token. Drop them, e.g. [s for s in seqs if len(s)]."
        )
    vocab = _validate_ids(seqs, vocab_size)
    source_vocab = vocab
    if alphabet == "binary":
        seqs = binary_expand(seqs, max(vocab, 2))
        vocab = 2
    start, length, weights = occurrences(seqs, depth, mode, weight)
    total_length = int(length.sum())
    need = estimate_build_bytes(start.shape[0], total_length)
    limit = available_memory_bytes() if memory_limit_bytes is None else int(memory_limit_bytes)
    if need > limit and not force:
        raise MemoryEstimateError(
            f"building this tree needs an estimated {need / 2**30:.2f} GiB but only "
            f"{limit / 2**30:.2f} GiB is available; lower depth (now {depth}), use mode='prefix' "
            "or 'chunk', split the dataset, or pass force=True (--force) to try anyway"
        )
    info = TreeInfo(
        depth=depth,
        mode=mode,
        vocab_size=vocab,
        weighting=weight,
        alphabet=alphabet,
        source_vocab_size=source_vocab,
        n_sequences=seqs.n_sequences,
        n_tokens=seqs.n_tokens,
    )
    return build_from_occurrences(seqs, start, length, weights, info, show_progress=show_progress)


def build_from_occurrences(
    seqs: TokenSequences,
    start: np.ndarray,
    length: np.ndarray,
    weights: np.ndarray | None,
    info: TreeInfo,
    *,
    show_progress: bool | None = None,
) -> TokenTree:
    """Count the occurrences ``tokens[start[i] : start[i] + length[i]]`` in a trie.

    The low-level entry point behind :func:`build_tree` (no input validation):
    ``start`` is sorted, ``length[i] = min(depth, tokens left in the response)``;
    occurrence ``i`` counts ``weights[i]`` (1 if ``weights`` is None) and ends in EOS
    when it reaches the end of its response.
    """
    from tokentree import _kernels  # numba: compiled once, cached on disk

    depth = info.depth
    upper = int(length.sum()) + 1
    index_dtype = np.int32 if upper < np.iinfo(np.int32).max else np.int64
    node_token = np.empty(upper, dtype=np.int32)
    node_parent = np.empty(upper, dtype=index_dtype)
    node_count = np.empty(upper, dtype=np.int64)
    total = int(start.shape[0]) if weights is None else int(weights.sum())
    node_token[0], node_parent[0], node_count[0] = -1, -1, total
    level_offsets = np.zeros(depth + 2, dtype=np.int64)
    level_offsets[1] = 1
    token_bits = max(int(info.vocab_size - 1).bit_length(), 1)

    marked = _marked_tokens(seqs, info.vocab_size)
    n = int(start.shape[0])
    pos = start.astype(np.int64, copy=True)
    has_w = weights is not None
    w = weights.astype(np.int64, copy=True) if weights is not None else np.zeros(1, dtype=np.int64)
    group = np.zeros(n, dtype=index_dtype)  # level-local index of the node reached at depth j - 1
    leaf_eos = np.zeros(0, dtype=np.int64)
    n_nodes = 1
    seg_start = np.zeros(1 if n >= 2 else 0, dtype=np.int64)  # level 1: one group, the root
    seg_end = np.full(seg_start.shape[0], n, dtype=np.int64)
    for j in progress(range(1, depth + 1), desc="tree levels", show=show_progress):
        if n == 0:
            level_offsets[j + 1 :] = n_nodes
            break
        if seg_start.shape[0]:
            # Sort the occurrences of every group of two or more by their next token.
            keys, mask, slots = _segment_sort_keys(marked, pos, seg_start, seg_end, j - 1, token_bits)
            _kernels.apply_sorted(keys, mask, slots, pos, w, has_w)
            del keys, slots
        if j == depth:
            leaf_eos = np.empty(n, dtype=np.int64)
        n_level, n, seg_start, seg_end = _kernels.emit_level(
            marked, pos, w, has_w, group, n, j, j == depth,
            int(level_offsets[j - 1]), node_token, node_parent, node_count, n_nodes, leaf_eos,
        )
        n_nodes += n_level
        level_offsets[j + 1] = n_nodes
    leaf_eos = leaf_eos[: n_nodes - int(level_offsets[depth])].copy()  # empty if depth d was never reached
    # Shrink the buffers in place (realloc, no copy of the kept part).
    for a in (node_token, node_parent, node_count):
        a.resize((n_nodes,), refcheck=False)
    return TokenTree._from_arrays(
        tokens=node_token,
        parents=node_parent,
        counts=node_count,
        leaf_eos=leaf_eos,
        level_offsets=level_offsets,
        info=info,
    )


def _marked_tokens(seqs: TokenSequences, vocab_size: int) -> np.ndarray:
    """``2 * token + is_last_of_its_response`` for every token (see :mod:`tokentree._kernels`)."""
    dtype = np.int32 if vocab_size < 2**30 else np.int64
    marked = np.left_shift(seqs.tokens.astype(dtype), 1)
    last = seqs.offsets[1:] - 1
    marked[last[seqs.lengths > 0]] |= 1
    return marked


def _segment_sort_keys(
    marked: np.ndarray,
    pos: np.ndarray,
    seg_start: np.ndarray,
    seg_end: np.ndarray,
    shift: int,
    token_bits: int,
) -> tuple[np.ndarray, np.uint64, np.ndarray]:
    """Sorted keys naming, for every slot of the segments, the occurrence that goes there.

    Packs (segment, next token, index) into one uint64 and sorts the keys themselves
    with ``np.sort``, much faster than ``argsort``; when they do not fit in 64 bits,
    falls back to a stable ``argsort`` whose result serves as the keys.
    """
    from tokentree import _kernels

    n_multi = int((seg_end - seg_start).sum())
    index_bits = max(int(n_multi - 1).bit_length(), 1)
    segment_bits = max(int(seg_start.shape[0] - 1).bit_length(), 1)
    if segment_bits + token_bits + index_bits <= 64:
        keys, slots = _kernels.segment_keys(marked, pos, seg_start, seg_end, shift, token_bits, index_bits)
        keys.sort()
        return keys, np.uint64((1 << index_bits) - 1), slots
    sizes = seg_end - seg_start
    slots = np.repeat(seg_start - np.concatenate([[0], np.cumsum(sizes)[:-1]]), sizes) + np.arange(n_multi)
    segment = np.repeat(np.arange(seg_start.shape[0]), sizes)
    tok = marked[pos[slots] + shift] >> 1
    by_token = np.argsort(tok, kind="stable")
    order = by_token[np.argsort(segment[by_token], kind="stable")]
    return order.astype(np.uint64), np.uint64(2**64 - 1), slots
