"""Building token trees from token-id datasets.

:func:`build_tree` cuts every response into symbol occurrences (docs/theory.md §2)
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
Exact, by sorting. The occurrences (windows of the token array) are sorted
lexicographically, a window before its extensions: a radix sort on their first
``64 // b`` tokens packed in a uint64 (``b`` bits per token), then runs of equal keys
refined by the next tokens. In that order the distinct prefixes of depth j, the
nodes of level j, appear sorted by (parent, token), exactly the breadth-first order
the tree stores. One pass then writes every level at once: a window shares its first
``c`` tokens with the window before it, keeps the open nodes of depths 1..c and opens
new ones below; a node's count is the weight of the windows it stayed open for. The
number of nodes per level is counted first, so the arrays are allocated at their
exact sizes and written once. Big builds split the sort and both passes into one
chunk per numba thread (``NUMBA_NUM_THREADS``); the tree does not depend on how
many. See :mod:`tokentree.trees.assemble` (in window mode no occurrence arrays are made: the
windows follow from the response bounds).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterable, Sequence

import numpy as np

from tokentree.data.sequences import TokenSequences, TokenStream, as_token_sequences, binary_expand
from tokentree.infra.errors import InputError, MemoryEstimateError
from tokentree.infra.progress import progress
from tokentree.trees.assemble import Occurrences, build_from_occurrences, build_windows
from tokentree.trees.partition import first_token_mass, plan_partitions, stitch_trees
from tokentree.trees.tree import (
    ALPHABETS,
    MAX_VOCAB,
    MODES,
    WEIGHTINGS,
    TokenTree,
    TreeInfo,
    _check_depth,
)

__all__ = [
    "build_tree", "prepare_build", "estimate_build_bytes", "available_memory_bytes", "occurrences", "Occurrences",
    "occurrence_sizes", "first_token_mass_of", "second_token_mass_of", "second_token_keys", "build_from_occurrences",
]

BYTES_PER_NODE = 6  # at most: int32 token + flags byte + count byte (4 for a 32k vocabulary); large counts are few
BYTES_PER_OCCURRENCE = 48  # working arrays per occurrence while sorting (at most 44 B)
#: Window mode makes no occurrence arrays: a key (8 B) and a place (at most 8 B) per window, and the in-place sort's
#: scratch, the size of the largest top-level bucket (at most all of them: 16 B a window).
BYTES_PER_WINDOW = 32
#: The modes in the order :func:`tokentree.trees._kernels.cut_by_part` numbers them.
CUT_MODES = ("prefix", "chunk", "window")


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


def estimate_build_bytes(n_occurrences: int, total_length: int, depth: int = 1, mode: str = "prefix") -> int:
    """Upper bound on the peak memory of a build, in bytes.

    The tree has at most one node per occurrence per level (``total_length`` nodes
    plus the root); the working arrays cost at most 48 bytes per occurrence (32 per
    window in window mode); and a few int64 tables per numba thread have one entry per level.
    """
    per_level = 8 * (depth + 2) * (4 + 2 * _max_threads())
    per_occurrence = BYTES_PER_WINDOW if mode == "window" else BYTES_PER_OCCURRENCE
    return BYTES_PER_NODE * (total_length + 1) + per_occurrence * n_occurrences + per_level


def _max_threads() -> int:
    return int(os.environ.get("NUMBA_NUM_THREADS", os.cpu_count() or 1))


def occurrence_sizes(lengths: np.ndarray, depth: int, mode: str) -> tuple[int, int]:
    """How many occurrences ``mode`` cuts from responses of ``lengths``, and their total length.

    >>> occurrence_sizes(np.array([5]), 2, "window")  # lengths 2, 2, 2, 2, 1
    (5, 9)
    """
    lengths = lengths.astype(np.int64)
    if mode == "prefix":
        return int(lengths.shape[0]), int(np.minimum(lengths, depth).sum())
    if mode == "chunk":
        return int((-(-lengths // depth)).sum()), int(lengths.sum())
    short = np.minimum(lengths, depth)  # window: lengths min(depth, m) for m = 1..n
    return int(lengths.sum()), int((short * (short + 1) // 2 + (lengths - short) * depth).sum())


def occurrences(
    seqs: TokenSequences | TokenStream, depth: int, mode: str, weight: str, *,
    first_tokens: tuple[int, int] | None = None,
) -> Occurrences:
    """The symbol occurrences of ``mode`` at capacity ``depth`` (see the module docstring).

    ``first_tokens=(a, b)`` keeps only the occurrences whose first token is in [a, b):
    one part of a build in parts (:mod:`tokentree.trees.partition`).

    >>> s = as_token_sequences([[1, 2, 3, 4, 5]])
    >>> occ = occurrences(s, 2, "chunk", "sequences")
    >>> occ.start.tolist(), occ.length.tolist(), occ.eos.tolist()
    ([0, 2, 4], [2, 2, 1], [False, False, True])
    >>> occurrences(s, 2, "window", "sequences", first_tokens=(2, 4)).start.tolist()
    [1, 2]
    """
    if mode not in CUT_MODES:  # pragma: no cover - checked by build_tree
        raise InputError(f"unknown mode {mode!r}")
    if first_tokens is None:  # all of them: one compiled pass, as the map tasks of a Dask build cut theirs
        from tokentree.trees import _kernels

        weighted = weight == "tokens" and mode != "window"
        all_start, all_length, all_eos, all_weights, _ = _kernels.cut_by_part(
            np.asarray(seqs.tokens), seqs.starts, seqs.ends, depth, CUT_MODES.index(mode), weighted,
            np.zeros(1, np.int64), 0, 0, np.zeros(0, np.int64))
        return Occurrences(all_start, all_length, all_weights if weighted else None, all_eos)
    lengths = seqs.lengths
    first = seqs.starts
    weights: np.ndarray | None = None  # each occurrence counts once (a window stands for exactly one token)
    if mode == "prefix":
        start = first.copy()
        weights = lengths.copy() if weight == "tokens" else None
    elif mode == "chunk":
        n_blocks = -(-lengths // depth)
        block_rank = np.zeros(n_blocks.shape[0] + 1, dtype=np.int64)
        np.cumsum(n_blocks, out=block_rank[1:])
        block_in_seq = np.arange(block_rank[-1], dtype=np.int64) - np.repeat(block_rank[:-1], n_blocks)
        start = np.repeat(first, n_blocks) + block_in_seq * depth
    else:  # window: a scan, a chunk at a time, for the positions of the range (never a stream's EOS ids)
        start = _window_starts(seqs.tokens, first_tokens, seqs.eos if isinstance(seqs, TokenStream) else None)
    if mode != "window":
        keep = _in_range(seqs.tokens[start], first_tokens)
        start = start[keep]
        weights = None if weights is None else weights[keep]
    # starts are sorted and lie inside responses: count them per response, repeat each response's end that often
    per_response = np.searchsorted(start, seqs.ends) - np.searchsorted(start, seqs.starts)
    left = np.repeat(seqs.ends, per_response) - start
    length = np.minimum(left, depth)
    if mode == "chunk" and weight == "tokens":
        weights = length.copy()
    return Occurrences(start, length, weights, left <= depth)


def _window_starts(tokens: np.ndarray, bounds: tuple[int, int], eos: int | None, chunk: int = 1 << 24) -> np.ndarray:
    """Positions whose token lies in ``bounds`` and is not ``eos``, scanned a chunk at a time."""
    found = []
    for i in range(0, tokens.shape[0], chunk):
        part = np.asarray(tokens[i : i + chunk])
        keep = _in_range(part, bounds)
        if eos is not None:
            keep &= part != eos
        found.append(np.flatnonzero(keep).astype(np.int64) + i)
    return np.concatenate(found) if found else np.zeros(0, dtype=np.int64)


def _in_range(tokens: np.ndarray, bounds: tuple[int, int]) -> np.ndarray:
    a, b = bounds
    return (tokens >= a) & (tokens < b)


def _first_flagged(seqs: TokenSequences | TokenStream, flagged: np.ndarray) -> tuple[int, int, int]:
    """(sequence, position in it, id) of the first token flagged."""
    pos = int(np.argmax(flagged))
    seq = int(np.searchsorted(seqs.starts, pos, side="right") - 1)
    return seq, pos - int(seqs.starts[seq]), int(seqs.tokens[pos])


def _id_range(seqs: TokenSequences | TokenStream, chunk: int = 1 << 24) -> tuple[int, int]:
    """Smallest and largest id in the responses (a stream is read a chunk at a time, its EOS ids left out)."""
    if not isinstance(seqs, TokenStream):
        return int(seqs.tokens.min()), int(seqs.tokens.max())
    lo, hi = None, None
    for i in range(0, seqs.tokens.shape[0], chunk):
        part = np.asarray(seqs.tokens[i : i + chunk])
        part = part[part != seqs.eos]
        if part.shape[0]:
            lo = int(part.min()) if lo is None else min(lo, int(part.min()))
            hi = int(part.max()) if hi is None else max(hi, int(part.max()))
    assert lo is not None and hi is not None  # a stream with responses has ids
    return lo, hi


def _validate_ids(seqs: TokenSequences | TokenStream, vocab_size: int | None) -> int:
    tokens = seqs.tokens
    if seqs.n_tokens == 0:
        raise InputError("every sequence is empty; there are no tokens to build a tree from")
    lo, hi = _id_range(seqs)
    if lo < 0:
        seq, at, bad = _first_flagged(seqs, tokens < 0)
        raise InputError(
            f"token ids must be >= 0; sequence {seq} has id {bad} at position {at}. "
            "Map special or padding ids to real ids, or drop them."
        )
    if hi >= MAX_VOCAB:
        seq, at, bad = _first_flagged(seqs, tokens >= MAX_VOCAB)
        raise InputError(
            f"token ids must be < 2**31 (trees store them as int32); sequence {seq} has id {bad} "
            f"at position {at}. Renumber the ids densely."
        )
    if vocab_size is None:
        return hi + 1
    is_integer = isinstance(vocab_size, (int, np.integer)) and not isinstance(vocab_size, bool)
    if not is_integer or not 1 <= vocab_size <= MAX_VOCAB:
        raise InputError(f"vocab_size must be an integer from 1 to 2**31 (ids are int32); got {vocab_size!r}")
    if hi >= vocab_size:
        seq, at, bad = _first_flagged(seqs, tokens >= vocab_size)
        raise InputError(
            f"token ids must be < vocab_size = {vocab_size}; sequence {seq} has id {bad} at position "
            f"{at}. Pass the tokenizer's full vocabulary size, or vocab_size=None to use max id + 1."
        )
    return int(vocab_size)


def build_tree(
    sequences: TokenSequences | TokenStream | np.ndarray | Iterable[Sequence[int] | np.ndarray],
    *,
    depth: int,
    mode: str = "chunk",
    vocab_size: int | None = None,
    weight: str = "sequences",
    alphabet: str = "token",
    offsets: np.ndarray | Sequence[int] | None = None,
    force: bool = False,
    memory_limit_bytes: int | None = None,
    partitions: int | None = None,
    show_progress: bool | None = None,
) -> TokenTree:
    """Build the token tree of a dataset, pruned to ``depth`` (paper Def. 3.1, Assumption 3.2).

    Parameters
    ----------
    sequences : TokenSequences, TokenStream, iterable of int sequences, or flat int array
        The responses, as token ids. A flat array needs ``offsets``; a
        :class:`~tokentree.data.sequences.TokenStream` (ids separated by EOS, e.g. a
        memory-mapped ``train.bin``) is read where it lies.
    depth : int
        Capacity depth d >= 1: tree layers kept (in bits for ``alphabet="binary"``).
    mode : {"chunk", "prefix", "window"}
        How responses are cut into symbols (see the module docstring).
    vocab_size : int, optional
        Alphabet size V; every id must be below it. Default: the sequences' own
        ``vocab_size`` (set by :func:`tokentree.data.text.encode_texts` from the tokenizer),
        else max id + 1.
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
    partitions : int, optional
        Build in about this many parts by ranges of first tokens, one part's working
        memory at a time, and stitch them (:mod:`tokentree.trees.partition`): the same tree,
        for datasets whose occurrences do not fit in memory at once. Default: one part.
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
    seqs, info = prepare_build(sequences, depth=depth, mode=mode, weight=weight, alphabet=alphabet,
                               vocab_size=vocab_size, offsets=offsets)
    depth, vocab = info.depth, info.vocab_size
    n_occurrences, total_length = occurrence_sizes(seqs.lengths, depth, mode)
    mass = None
    if partitions is not None and partitions != 1:
        mass = first_token_mass_of(seqs, depth, mode, vocab)
        bounds = plan_partitions(mass, partitions)
        largest = max(int(mass[a:b].sum()) for a, b in itertools.pairwise(bounds))
        # the finished parts (about one tree), and one part's working arrays at a time
        need = BYTES_PER_NODE * (total_length + 1) + estimate_build_bytes(largest, largest * depth, depth, info.mode)
    else:
        need = estimate_build_bytes(n_occurrences, total_length, depth, info.mode)
    limit = available_memory_bytes() if memory_limit_bytes is None else int(memory_limit_bytes)
    if need > limit and not force:
        raise MemoryEstimateError(
            f"building this tree needs an estimated {need / 2**30:.2f} GiB but only "
            f"{limit / 2**30:.2f} GiB is available; lower depth (now {depth}), use mode='prefix' "
            "or 'chunk', split the dataset, or pass force=True (--force) to try anyway"
        )
    if mass is not None:
        parts = [
            _build_part(seqs, info, (a, b), show_progress=False)
            for a, b in progress(list(itertools.pairwise(bounds)), desc="building parts", show=show_progress)
            if mass[a:b].any()
        ]
        return stitch_trees(parts, info, consume=True, release=True)  # the parts are this build's alone
    return _build_part(seqs, info, None, show_progress=show_progress)


def _build_part(seqs: TokenSequences | TokenStream, info: TreeInfo, first_tokens: tuple[int, int] | None, *,
                show_progress: bool | None) -> TokenTree:
    """The tree of the occurrences whose first token is in ``first_tokens`` (all of them for None)."""
    if info.mode == "window":  # no occurrence arrays: the windows follow from the response bounds
        return build_windows(seqs.tokens, seqs.starts, seqs.ends, info, first_tokens=first_tokens,
                             show_progress=show_progress)
    # The occurrences are passed, not kept: the builder frees them once sorted.
    return build_from_occurrences(
        seqs.tokens, occurrences(seqs, info.depth, info.mode, info.weighting, first_tokens=first_tokens), info,
        show_progress=show_progress)


def prepare_build(
    sequences: TokenSequences | TokenStream | np.ndarray | Iterable[Sequence[int] | np.ndarray],
    *,
    depth: int,
    mode: str = "chunk",
    weight: str = "sequences",
    alphabet: str = "token",
    vocab_size: int | None = None,
    offsets: np.ndarray | Sequence[int] | None = None,
) -> tuple[TokenSequences | TokenStream, TreeInfo]:
    """The checked dataset (binary-expanded for ``alphabet="binary"``) and the :class:`TreeInfo` of its tree.

    Every builder starts here (:func:`build_tree`, :mod:`tokentree.trees.distributed`); the
    checks and errors are those of :func:`build_tree`.
    """
    depth = _check_depth(depth)
    if mode not in MODES:
        raise InputError(f"mode must be one of {MODES}; got {mode!r}")
    if weight not in WEIGHTINGS:
        raise InputError(f"weight must be one of {WEIGHTINGS}; got {weight!r}")
    if alphabet not in ALPHABETS:
        raise InputError(f"alphabet must be one of {ALPHABETS}; got {alphabet!r}")
    if isinstance(sequences, TokenStream):
        if offsets is not None:
            raise InputError("offsets= is for a flat token array; a TokenStream is cut at its EOS ids")
        seqs: TokenSequences | TokenStream = sequences.to_sequences() if alphabet == "binary" else sequences
    else:
        seqs = as_token_sequences(sequences, offsets=offsets)
    if seqs.n_sequences == 0:
        raise InputError("the dataset is empty (no sequences); pass at least one non-empty response")
    empty = np.flatnonzero(seqs.lengths == 0)
    if empty.shape[0]:
        raise InputError(
            f"{empty.shape[0]} of {seqs.n_sequences} sequences are empty (first: index {int(empty[0])}); "
            "a response needs at least one token. Drop them, e.g. [s for s in seqs if len(s)]."
        )
    vocab = _validate_ids(seqs, vocab_size if vocab_size is not None else seqs.vocab_size)
    source_vocab = vocab
    if alphabet == "binary":
        assert isinstance(seqs, TokenSequences)  # a stream was made compact above
        seqs = binary_expand(seqs, max(vocab, 2))
        vocab = 2
    info = TreeInfo(depth=depth, mode=mode, vocab_size=vocab, weighting=weight, alphabet=alphabet,
                    source_vocab_size=source_vocab, n_sequences=seqs.n_sequences, n_tokens=seqs.n_tokens)
    return seqs, info


def second_token_keys(tokens: np.ndarray, occ: Occurrences) -> np.ndarray:
    """Each occurrence's second token, or -1 for an occurrence of one token (it ends in EOS)."""
    if not occ.start.shape[0]:
        return np.zeros(0, dtype=np.int64)
    after = np.minimum(occ.start + 1, tokens.shape[0] - 1)
    return np.where(occ.length >= 2, np.asarray(tokens[after]).astype(np.int64), -1)


def second_token_mass_of(seqs: TokenSequences | TokenStream, depth: int, mode: str, first: int,
                         vocab_size: int) -> np.ndarray:
    """Occurrences starting with ``first`` per second token key: index 0 for none (-1), index t + 1 for token t."""
    occ = occurrences(seqs, depth, mode, "sequences", first_tokens=(first, first + 1))
    return np.bincount(second_token_keys(seqs.tokens, occ) + 1, minlength=vocab_size + 1).astype(np.int64)


def first_token_mass_of(seqs: TokenSequences | TokenStream, depth: int, mode: str, vocab_size: int, *,
                        show_progress: bool | None = False) -> np.ndarray:
    """Occurrences per first token (for planning a build in parts); a stream is read a chunk at a time, with a bar."""
    if mode == "window" and isinstance(seqs, TokenStream):
        mass = np.zeros(max(vocab_size, seqs.eos + 1), dtype=np.int64)
        chunks = range(0, seqs.tokens.shape[0], 1 << 24)
        for i in progress(chunks, desc="planning parts", total=len(chunks), show=show_progress, unit="chunk"):
            mass += first_token_mass(np.asarray(seqs.tokens[i : i + (1 << 24)]), mass.shape[0])
        mass[seqs.eos] -= seqs.tokens.shape[0] - seqs.n_tokens  # the separators start no window
        return mass[:vocab_size]
    if mode == "window":
        return first_token_mass(seqs.tokens, vocab_size)
    return first_token_mass(seqs.tokens[occurrences(seqs, depth, mode, "sequences").start], vocab_size)
