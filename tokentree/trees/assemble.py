"""A tree assembled from its windows: keys, sort, emit (the core of :func:`tokentree.build_tree`).

The occurrences of a build (windows ``tokens[start : start + length]``) are given as
arrays (:func:`build_from_occurrences`), or, in window mode, by the response bounds alone
(:func:`build_windows`: a window starts at every position, its length and EOS follow from
the distance to its response's end). Either way each window becomes a key (its first
tokens, :mod:`tokentree.trees._sort_kernels`) and a place (start, length, EOS in one
integer); the keys are sorted with the places beside them, and the tree is written in one
pass over the sorted places (:mod:`tokentree.trees._kernels`).

Memory (issue 26), 10M Zipf tokens (vocab 32,000), d = 8, peak above the corpus sampled
per kernel on the 2-core VM (load 3-5): before, the occurrence arrays (start, length, EOS:
17 B per window) sat beside the keys (8 B) and places (4 B) as these were made (277 MiB),
the sort doubled keys and indices (268 MiB), and the emit pass held the sorted places and
a byte per window of shared prefix lengths beside the finished tree (281 MiB). Now window
mode makes keys and places straight from the response bounds (115 MiB); the sort moves
the places themselves (no index array, no gather), in place, with scratch space the size
of the largest top-level bucket (143 MiB); shared prefixes are recomputed where they are
read; and the emit pass writes the windows in :data:`EMIT_BATCHES` batches, each touching
its own nodes and handing back its places (and weights) once written, so it ends at the
tree (231 MiB) plus one batch: 238 MiB, 1.03x the tree. ``bench_infinigram.py``: 281 ->
238 MiB (1.29x -> 1.10x infini-gram's peak), time unchanged within the load's noise
(2.1-2.3 s -> 2.0-2.2 s); 100M tokens: whole process 3.24 -> 2.78 GiB. The in-place sort
lowers only its own phase at 10M Zipf tokens (about 0.1 s slower than the buffered
distribution); where windows share more of the tree it is the peak: 10M GPT-2 tokens of
English text (``--corpus gpt2``, a 21 MiB tree) 277 -> 148 MiB, 1.61x -> 0.81x infini-gram's.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from tokentree.infra.errors import InputError
from tokentree.infra.pages import release_pages
from tokentree.infra.progress import progress_steps
from tokentree.trees.tree import TokenTree, TreeInfo, token_dtype

__all__ = ["Occurrences", "build_from_occurrences", "build_windows", "PARALLEL_FROM"]

PARALLEL_FROM = 2**16  # occurrences from which the build uses all of numba's threads
#: The emit pass writes the windows in this many batches, handing back each batch's sorted
#: places (and weights) once written: the tree plus 1/16 of the places at the end.
EMIT_BATCHES = 16


class Occurrences(NamedTuple):
    """Where each symbol occurrence starts, its length, weight, and whether it ends in EOS."""

    start: np.ndarray
    length: np.ndarray
    weights: np.ndarray | None  # None when every occurrence counts 1
    eos: np.ndarray  # bool: the occurrence reaches the end of its response


def _n_chunks(n_occurrences: int) -> int:
    """Parts the build splits its passes into: one per numba thread, one for a small build."""
    from numba import get_num_threads

    return get_num_threads() if n_occurrences >= PARALLEL_FROM else 1


def _n_batches(n_occurrences: int) -> int:
    """Batches of chunks the emit pass writes one after the other: :data:`EMIT_BATCHES`, one for a small build."""
    return EMIT_BATCHES if n_occurrences >= PARALLEL_FROM else 1


def _layout(n_tokens: int, info: TreeInfo) -> tuple[int, int, int, np.ndarray]:
    """Bits per symbol ``b``, symbols per key word ``q``, the bits of a place's (length, EOS), a place array like."""
    b = max(int(info.vocab_size).bit_length(), 1)  # bits per symbol, token + 1 (0 = ended)
    info_bits = int(2 * info.depth + 1).bit_length()
    if n_tokens >= 2 ** (64 - info_bits):
        raise InputError(
            f"{n_tokens} tokens at depth {info.depth} overflow the builder's 64-bit window records; "
            "lower the depth or split the dataset and add the trees with tokentree.sum_trees"
        )
    place_dtype = np.uint32 if n_tokens < 2 ** (32 - info_bits) else np.uint64  # start, length, EOS
    return b, 64 // b, info_bits, np.zeros(0, place_dtype)


def build_from_occurrences(tokens: np.ndarray, occ: Occurrences, info: TreeInfo, *,
                           show_progress: bool | None = None) -> TokenTree:
    """Count the occurrences ``tokens[start[i] : start[i] + length[i]]`` in a trie.

    The low-level entry point behind :func:`tokentree.build_tree` in prefix and chunk modes
    and behind the parts of a distributed build (no input validation): ``tokens`` is the
    dataset's flat id array (a stream's, EOS ids and all); ``length[i] <= depth``;
    occurrence ``i`` counts ``weights[i]`` (1 if ``weights`` is None) and ends in EOS when
    ``eos[i]``.
    """
    from tokentree.trees import _sort_kernels

    b, q, info_bits, places_like = _layout(tokens.shape[0], info)
    start, length, weights, eos = occ
    del occ  # the caller passed it, not kept it: the places replace it
    keys, places = _sort_kernels.first_keys(tokens, start, length, eos, q, b, info_bits, places_like)
    work = [keys, places, weights]
    del keys, places, weights, start, length, eos
    return _build_sorted(tokens, work, info, (b, q, info_bits), show_progress)


def build_windows(tokens: np.ndarray, response_starts: np.ndarray, response_ends: np.ndarray, info: TreeInfo, *,
                  first_tokens: tuple[int, int] | None = None, show_progress: bool | None = None) -> TokenTree:
    """The window tree of the responses ``tokens[response_starts[r] : response_ends[r]]`` (sorted, disjoint).

    The same tree as :func:`build_from_occurrences` on
    ``occurrences(seqs, depth, "window", ...)``, with no occurrence arrays: keys and places
    come straight from the response bounds. ``first_tokens=(a, b)`` keeps the windows whose
    first token is in [a, b) (one part of a build in parts).
    """
    from tokentree.trees import _sort_kernels

    b, q, info_bits, places_like = _layout(tokens.shape[0], info)
    lo, hi = (0, 2**62) if first_tokens is None else first_tokens
    keys, places = _sort_kernels.window_keys(tokens, response_starts, response_ends, info.depth, q, b, info_bits,
                                             lo, hi, _n_chunks(tokens.shape[0]), places_like)
    work: list[np.ndarray | None] = [keys, places, None]  # a window stands for one token: weight 1
    del keys, places
    return _build_sorted(tokens, work, info, (b, q, info_bits), show_progress)


def _build_sorted(tokens: np.ndarray, work: list[np.ndarray | None], info: TreeInfo, layout: tuple[int, int, int],
                  show_progress: bool | None) -> TokenTree:
    """Sort ``work = [keys, places, weights or None]`` (emptied, so the arrays go once used) and write the tree.

    ``layout``: ``(b, q, info_bits)`` of :func:`_layout`.
    """
    from tokentree.trees import _kernels, _sort_kernels  # numba: compiled once, cached on disk

    keys, places, weights = work
    work.clear()
    assert keys is not None and places is not None
    depth, n = info.depth, int(keys.shape[0])
    b, q, info_bits = layout
    n_chunks = _n_chunks(n)
    with progress_steps(3, desc="building tree", show=show_progress) as step:
        has_weights = weights is not None
        if weights is None:  # the places themselves ride beside the keys: sorted in place, no index, no gather
            _sort_kernels.sort_keys(keys, places, q * b, n_chunks)
            _sort_kernels.refine_ties(keys, places, tokens, places[:0], info_bits, depth, q, b)
            sorted_places, sorted_weights = places, np.zeros(1, dtype=np.int64)
        else:  # weights too: sort indices, then gather both
            order = np.arange(n, dtype=np.int32 if n < 2**31 else np.int64)
            _sort_kernels.sort_keys(keys, order, q * b, n_chunks)
            _sort_kernels.refine_ties(keys, order, tokens, places, info_bits, depth, q, b)
            sorted_places = _sort_kernels.gather(places, order)
            sorted_weights = _sort_kernels.gather(weights, order)
            del order
        del places, weights
        step()
        n_batches = _n_batches(n)
        bounds, chunk_nodes, deep_ends = _kernels.common_prefixes(
            keys, sorted_places, info_bits, tokens, depth, q, b, n_chunks * n_batches
        )
        del keys  # the emit pass reads the tokens themselves: the tree's arrays take the keys' place
        step()
        level_offsets = np.ones(depth + 2, dtype=np.int64)
        level_offsets[0] = 0
        np.cumsum(chunk_nodes.sum(axis=0)[1 : depth + 1], out=level_offsets[2:])
        level_offsets[2:] += 1
        n_nodes = int(level_offsets[-1])
        # The tree's stored dtypes (tokentree.trees.tree): uint16 ids for a vocabulary that fits, one byte per
        # count; allocated untouched: each batch of chunks touches its own nodes as it writes them.
        node_token = np.empty(n_nodes, dtype=token_dtype(info.vocab_size))
        node_flags = np.empty(n_nodes, dtype=np.uint8)  # parent links, derived from these (tree.py)
        node_count = np.empty(n_nodes, dtype=np.uint8)  # and a table of the large counts (counts_layout.py)
        node_token[0] = 0 if node_token.dtype == np.uint16 else -1  # the root's slot (its id is -1)
        first_node, room, big_room, total = _kernels.emit_plan(
            n, sorted_weights, has_weights, depth, level_offsets, bounds, chunk_nodes, deep_ends)
        eos_at, eos_count = np.empty(room[-1], np.int64), np.empty(room[-1], np.int64)  # sparse, by node
        big_at, big_count = np.empty(big_room[-1], np.int64), np.empty(big_room[-1], np.int64)
        used, n_big = np.zeros(bounds.shape[0] - 1, np.int64), np.zeros(bounds.shape[0] - 1, np.int64)
        for k in range(n_batches):  # batches in window order: each hands back its windows' pages once written
            c0, c1 = k * n_chunks, (k + 1) * n_chunks
            _kernels.emit_nodes(c0, c1, first_node, room, big_room, sorted_places, info_bits, sorted_weights,
                                has_weights, tokens, depth, bounds, node_token, node_flags, node_count,
                                eos_at, eos_count, big_at, big_count, used, n_big)
            lo, hi = int(bounds[c0]), int(bounds[c1])
            release_pages(sorted_places[lo:hi], hi - lo)
            if has_weights:
                release_pages(sorted_weights[lo:hi], hi - lo)
        eos_at, eos_count, big_at, big_count = _kernels.finish_emit(
            total, room, big_room, used, n_big, eos_at, eos_count, big_at, big_count, node_count, node_flags)
        step()
        order = np.argsort(big_at, kind="stable")
    return TokenTree._from_arrays(
        tokens=node_token,
        flags=node_flags,
        counts=node_count,
        count_overflow_at=big_at[order],
        count_overflow=big_count[order],
        leaf_eos=(eos_at, eos_count),
        level_offsets=level_offsets,
        info=info,
    )
