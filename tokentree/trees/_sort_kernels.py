"""Compiled sort of the tree builder: window keys and places, sorted (numba, imported lazily).

The builder sorts the symbol occurrences (windows ``tokens[start : start + length]``)
lexicographically, a shorter window before its extensions (see :mod:`tokentree.trees.build`);
:mod:`tokentree.trees._kernels` then writes the tree in one pass over them.

Windows are compared through *keys*: ``q`` consecutive symbols packed into a uint64,
``b`` bits each, the first symbol in the highest bits. A symbol is ``token + 1``, and 0
stands for "the window has ended", so comparing keys compares windows with shorter
first. Word ``w`` of a window's key holds its symbols ``w * q`` to ``w * q + q - 1``.

The rest of what the passes need about a window is packed in one uint64, its *place*:
``start << info_bits | 2 * length + ends_in_eos``, a uint32 when every place fits in 32
bits (10M tokens at depth 8), else a uint64. The sort moves the key and, beside it, the
place itself (or, when windows carry weights, the window's index, and one gather then
lays out places and weights in sorted order), so every later pass reads in order.

Memory (issue 26): window mode computes keys and places straight from the response
bounds (:func:`window_keys`; no start, length and EOS arrays), and the sort works in
place: the top digit is distributed by swapping (American flag sort), and each thread's
buckets are radix-sorted with scratch space the size of its largest bucket, not of all
keys. Which windows tie exactly (same tokens, same length) is then left in no particular
order, and the tree does not depend on it: such windows open no nodes of their own,
and their weights and EOS ends are summed.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

TOP_BITS = 12  # the most significant digit, sorted first over all keys (4096 buckets)
DIGIT_BITS = 8  # the digits sorted inside a bucket (buckets are mostly cache-sized)
SMALL_RUN = 16  # runs of keys up to this size are insertion-sorted


@njit(cache=True, nogil=True)
def word_key(tokens: np.ndarray, start: int, length: int, word: int, q: int, b: int) -> np.uint64:  # pragma: no cover
    """Key word ``word`` of the window ``tokens[start : start + length]``."""
    key = np.uint64(0)
    for s in range(word * q, word * q + q):
        symbol = np.uint64(tokens[start + s] + 1) if s < length else np.uint64(0)
        key = (key << np.uint64(b)) | symbol
    return key


@njit(cache=True, nogil=True)
def pack(start: int, length: int, ends: bool, info_bits: int) -> np.uint64:  # pragma: no cover
    """The place of a window: ``start << info_bits | 2 * length + ends``."""
    return (np.uint64(start) << np.uint64(info_bits)) | np.uint64(2 * length + (1 if ends else 0))


@njit(cache=True, nogil=True)
def unpack(place: np.uint64, info_bits: int) -> tuple[int, int, bool]:  # pragma: no cover
    """(start, length, ends_in_eos) of a window's place."""
    info = int(np.int64(place & np.uint64((1 << info_bits) - 1)))  # int64, not uint64: uint64 + int64 is a float
    return int(np.int64(place >> np.uint64(info_bits))), info >> 1, bool(info & 1)


@njit(cache=True, nogil=True, parallel=True)
def first_keys(
    tokens: np.ndarray, start: np.ndarray, length: np.ndarray, eos: np.ndarray, q: int, b: int, info_bits: int,
    places_like: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:  # pragma: no cover
    """Key word 0 and the place of every window (places in the dtype of ``places_like``: uint32 when they fit)."""
    n = start.shape[0]
    keys = np.empty(n, np.uint64)
    places = np.empty(n, places_like.dtype)
    for i in prange(n):
        keys[i] = word_key(tokens, start[i], length[i], 0, q, b)
        places[i] = pack(start[i], length[i], eos[i], info_bits)
    return keys, places


@njit(cache=True, nogil=True, parallel=True)
def window_keys(
    tokens: np.ndarray, response_starts: np.ndarray, response_ends: np.ndarray, depth: int, q: int, b: int,
    info_bits: int, first_lo: int, first_hi: int, n_chunks: int, places_like: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:  # pragma: no cover
    """Key word 0 and place of every window whose first token is in [first_lo, first_hi), in position order.

    A window starts at every position of every response (sorted, disjoint
    ``response_starts[r]:response_ends[r]``); with ``left`` tokens to its response's end
    it has length ``min(left, depth)`` and ends in EOS when ``left <= depth``, as
    :func:`tokentree.trees.build.occurrences` cuts them. The positions are split into
    ``n_chunks`` equal slices, counted, then written, each slice on its own thread.
    """
    n_tokens = tokens.shape[0]
    found = np.zeros(n_chunks + 1, np.int64)
    for t in prange(n_chunks):
        lo, hi = n_tokens * t // n_chunks, n_tokens * (t + 1) // n_chunks
        r = np.searchsorted(response_ends, lo, side="right")  # the first response ending after lo
        count = 0
        while r < response_starts.shape[0] and response_starts[r] < hi:
            for pos in range(max(response_starts[r], lo), min(response_ends[r], hi)):
                token = np.int64(tokens[pos])
                if first_lo <= token < first_hi:
                    count += 1
            r += 1
        found[t + 1] = count
    at = np.cumsum(found)
    keys = np.empty(at[-1], np.uint64)
    places = np.empty(at[-1], places_like.dtype)
    for t in prange(n_chunks):
        lo, hi = n_tokens * t // n_chunks, n_tokens * (t + 1) // n_chunks
        r = np.searchsorted(response_ends, lo, side="right")  # the first response ending after lo
        i = at[t]
        while r < response_starts.shape[0] and response_starts[r] < hi:
            end = response_ends[r]
            for pos in range(max(response_starts[r], lo), min(end, hi)):
                token = np.int64(tokens[pos])
                if first_lo <= token < first_hi:
                    length = min(end - pos, depth)
                    keys[i] = word_key(tokens, pos, length, 0, q, b)
                    places[i] = pack(pos, length, end - pos <= depth, info_bits)
                    i += 1
            r += 1
    return keys, places


@njit(cache=True, nogil=True)
def sort_run(
    keys: np.ndarray, order: np.ndarray, key_buffer: np.ndarray, order_buffer: np.ndarray, n_bits: int
) -> None:  # pragma: no cover
    """Sort ``keys`` (their low ``n_bits`` bits) in place, stably, applying the same moves to ``order``.

    Insertion sort for a few keys; otherwise an LSD radix sort on ``DIGIT_BITS``-bit
    digits that skips a digit shared by every key. The buffers are scratch space of
    the same sizes.
    """
    n = keys.shape[0]
    if n <= SMALL_RUN:
        for a in range(1, n):
            k, o = keys[a], order[a]
            c = a - 1
            while c >= 0 and keys[c] > k:
                keys[c + 1] = keys[c]
                order[c + 1] = order[c]
                c -= 1
            keys[c + 1] = k
            order[c + 1] = o
        return
    n_buckets = 1 << DIGIT_BITS
    mask = np.uint64(n_buckets - 1)
    n_passes = (n_bits + DIGIT_BITS - 1) // DIGIT_BITS
    histogram = np.zeros((n_passes, n_buckets), np.int64)
    for i in range(n):
        x = keys[i]
        for p in range(n_passes):
            histogram[p, np.int64((x >> np.uint64(p * DIGIT_BITS)) & mask)] += 1
    src_k, src_o, dst_k, dst_o = keys, order, key_buffer, order_buffer
    in_buffer = False
    for p in range(n_passes):
        slot = histogram[p]
        if slot.max() == n:
            continue
        total = 0
        for d in range(n_buckets):
            size = slot[d]
            slot[d] = total
            total += size
        shift = np.uint64(p * DIGIT_BITS)
        for i in range(n):
            x = src_k[i]
            digit = np.int64((x >> shift) & mask)
            at = slot[digit]
            slot[digit] = at + 1
            dst_k[at] = x
            dst_o[at] = src_o[i]
        src_k, dst_k = dst_k, src_k
        src_o, dst_o = dst_o, src_o
        in_buffer = not in_buffer
    if in_buffer:
        keys[:] = src_k
        order[:] = src_o


@njit(cache=True, nogil=True, parallel=True)
def sort_keys(keys: np.ndarray, order: np.ndarray, n_bits: int, n_chunks: int) -> None:  # pragma: no cover
    """Sort all keys (their low ``n_bits`` bits) in place, applying the same moves to ``order``.

    The keys are distributed in place by their top ``TOP_BITS`` bits (American flag sort:
    each key is swapped straight into its bucket); the buckets, in ``n_chunks`` groups of
    about equal size, are then sorted by the remaining bits in parallel, each with
    :func:`sort_run` and scratch space the size of the group's largest bucket. Equal keys
    end in no particular order (the distribution is not stable).
    """
    n = keys.shape[0]
    low_bits = max(n_bits - TOP_BITS, 0)
    n_top = 1 << (n_bits - low_bits)
    low = np.uint64(low_bits)
    bucket_start = np.zeros(n_top + 1, np.int64)
    for i in range(n):
        bucket_start[np.int64(keys[i] >> low) + 1] += 1
    for d in range(n_top):
        bucket_start[d + 1] += bucket_start[d]
    slot = bucket_start[:-1].copy()  # the next unsettled position of every bucket
    for d in range(n_top):
        while slot[d] < bucket_start[d + 1]:
            i = slot[d]
            x, o = keys[i], order[i]
            top = np.int64(x >> low)
            while top != d:  # put x where it belongs and carry on with the key it displaces
                at = slot[top]
                slot[top] = at + 1
                x, keys[at] = keys[at], x
                o, order[at] = order[at], o
                top = np.int64(x >> low)
            keys[i], order[i] = x, o
            slot[d] = i + 1
    if low_bits == 0:
        return
    group = np.searchsorted(bucket_start[:-1], np.arange(n_chunks + 1) * n // n_chunks)
    group[-1] = n_top
    for t in prange(n_chunks):
        largest = 0
        for d in range(group[t], group[t + 1]):
            largest = max(largest, bucket_start[d + 1] - bucket_start[d])
        key_buffer = np.empty(largest, np.uint64)
        order_buffer = np.empty(largest, order.dtype)
        for d in range(group[t], group[t + 1]):
            lo, hi = bucket_start[d], bucket_start[d + 1]
            if hi - lo >= 2:
                sort_run(keys[lo:hi], order[lo:hi], key_buffer[: hi - lo], order_buffer[: hi - lo], low_bits)


@njit(cache=True, nogil=True)
def push_ties(
    keys: np.ndarray,
    offset: int,
    word: int,
    last_symbol: np.uint64,
    stack_lo: list[int],
    stack_hi: list[int],
    stack_word: list[int],
) -> int:  # pragma: no cover
    """Push every run of two or more equal sorted ``keys`` that goes on past its word; return the longest.

    A run's windows still tie while their last symbol is not 0 (none has ended); it is
    pushed as ``(offset + start, offset + end, word)``, the word to compare next.
    """
    longest = 0
    m = keys.shape[0]
    a = 0
    while a < m:
        c = a + 1
        while c < m and keys[c] == keys[a]:
            c += 1
        if c - a >= 2 and keys[a] & last_symbol:
            stack_lo.append(offset + a)
            stack_hi.append(offset + c)
            stack_word.append(word)
            longest = max(longest, c - a)
        a = c
    return longest


@njit(cache=True, nogil=True)
def refine_ties(
    keys: np.ndarray,
    order: np.ndarray,
    tokens: np.ndarray,
    places: np.ndarray,
    info_bits: int,
    depth: int,
    q: int,
    b: int,
) -> None:  # pragma: no cover
    """Finish the sort: order every run of windows with equal key words by their next word.

    ``keys`` (word 0, sorted, left unchanged) and ``order`` come from :func:`sort_keys`;
    ``order`` holds the windows' places themselves when ``places`` is empty, else their
    indices into ``places``.
    A run needs refining only while its windows go on past the word (its last symbol is
    not 0) and the depth has symbols left. Runs are refined depth-first from a stack.
    """
    last_symbol = np.uint64((1 << b) - 1)
    by_place = places.shape[0] == 0
    stack_lo = [0][:0]
    stack_hi = [0][:0]
    stack_word = [0][:0]
    longest = push_ties(keys, 0, 1, last_symbol, stack_lo, stack_hi, stack_word) if q < depth else 0
    run_keys = np.empty(longest, np.uint64)
    run_order = np.empty(longest, order.dtype)
    key_buffer = np.empty(longest, np.uint64)
    order_buffer = np.empty(longest, order.dtype)
    while len(stack_lo):
        lo = stack_lo.pop()
        word = stack_word.pop()
        m = stack_hi.pop() - lo
        for a in range(m):
            o = order[lo + a]
            start, length, _ = unpack(np.uint64(o) if by_place else np.uint64(places[o]), info_bits)
            run_keys[a] = word_key(tokens, start, length, word, q, b)
            run_order[a] = o
        sort_run(run_keys[:m], run_order[:m], key_buffer[:m], order_buffer[:m], q * b)
        order[lo : lo + m] = run_order[:m]
        if (word + 1) * q >= depth:
            continue
        push_ties(run_keys[:m], lo, word + 1, last_symbol, stack_lo, stack_hi, stack_word)


@njit(cache=True, nogil=True, parallel=True)
def gather(values: np.ndarray, order: np.ndarray) -> np.ndarray:  # pragma: no cover
    """``values[order]``, on all threads."""
    out = np.empty(order.shape[0], values.dtype)
    for i in prange(order.shape[0]):
        out[i] = values[order[i]]
    return out
