"""Compiled inner loops of the tree builder (numba, imported lazily by :mod:`tokentree.trees.build`).

The builder sorts the symbol occurrences (windows ``tokens[start : start + length]``)
lexicographically, a shorter window before its extensions, and then writes the whole
tree in one pass over them (see :mod:`tokentree.trees.build`).

Windows are compared through *keys*: ``q`` consecutive symbols packed into a uint64,
``b`` bits each, the first symbol in the highest bits. A symbol is ``token + 1``, and 0
stands for "the window has ended", so comparing keys compares windows with shorter
first. Word ``w`` of a window's key holds its symbols ``w * q`` to ``w * q + q - 1``.

The rest of what the passes need about a window is packed in one uint64, its *place*:
``start << info_bits | 2 * length + ends_in_eos``, a uint32 when every place fits in 32
bits (10M tokens at depth 8), else a uint64. Sorting moves only the key and the
window's index; one gather then lays the places out in sorted order, so every later
pass reads in order.

The passes over all windows run on ``n_chunks`` threads (numba ``prange``): each
chunk owns a disjoint slice of every array it writes, so the result does not depend
on the number of threads. Every kernel is cached on disk (``cache=True``), so only the
first build on a machine pays the compile time.
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
        places[i] = (np.uint64(start[i]) << np.uint64(info_bits)) | np.uint64(2 * length[i] + eos[i])
    return keys, places


@njit(cache=True, nogil=True)
def unpack(place: np.uint64, info_bits: int) -> tuple[int, int, bool]:  # pragma: no cover
    """(start, length, ends_in_eos) of a window's place."""
    info = int(np.int64(place & np.uint64((1 << info_bits) - 1)))  # int64, not uint64: uint64 + int64 is a float
    return int(np.int64(place >> np.uint64(info_bits))), info >> 1, bool(info & 1)


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
    """Sort all keys (their low ``n_bits`` bits) stably in place, applying the same moves to ``order``.

    One pass distributes the keys by their top ``TOP_BITS`` bits; the buckets, in
    ``n_chunks`` groups of about equal size, are then sorted by the remaining bits in
    parallel, each with :func:`sort_run`.
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
    slot = bucket_start[:-1].copy()
    key_buffer = np.empty_like(keys)
    order_buffer = np.empty_like(order)
    for i in range(n):
        x = keys[i]
        top = np.int64(x >> low)
        at = slot[top]
        slot[top] = at + 1
        key_buffer[at] = x
        order_buffer[at] = order[i]
    group = np.searchsorted(bucket_start[:-1], np.arange(n_chunks + 1) * n // n_chunks)
    group[-1] = n_top
    for t in prange(n_chunks):
        for d in range(group[t], group[t + 1]):
            lo, hi = bucket_start[d], bucket_start[d + 1]
            if hi - lo >= 2 and low_bits > 0:
                sort_run(key_buffer[lo:hi], order_buffer[lo:hi], keys[lo:hi], order[lo:hi], low_bits)
    for i in prange(n):
        keys[i] = key_buffer[i]
        order[i] = order_buffer[i]


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

    ``keys`` (word 0, sorted, left unchanged) and ``order`` come from :func:`sort_keys`.
    A run needs refining only while its windows go on past the word (its last symbol is
    not 0) and the depth has symbols left. Runs are refined depth-first from a stack.
    """
    last_symbol = np.uint64((1 << b) - 1)
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
            start, length, _ = unpack(places[o], info_bits)
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


@njit(cache=True, nogil=True, parallel=True)
def zero(a: np.ndarray, n_chunks: int) -> None:  # pragma: no cover
    """Fill ``a`` with zeros in ``n_chunks`` contiguous parts at once."""
    n = a.shape[0]
    for t in prange(n_chunks):
        a[n * t // n_chunks : n * (t + 1) // n_chunks] = 0


@njit(cache=True, nogil=True)
def shared_prefix(
    keys: np.ndarray, sorted_places: np.ndarray, info_bits: int, tokens: np.ndarray, i: int, q: int, b: int
) -> int:  # pragma: no cover
    """Tokens that sorted window ``i`` has in common with window ``i - 1`` (0 for the first)."""
    if i == 0:
        return 0
    start, length, _ = unpack(sorted_places[i], info_bits)
    prev_start, prev_length, _ = unpack(sorted_places[i - 1], info_bits)
    x = keys[i - 1] ^ keys[i]
    c = 0
    if x == 0:  # equal first words: compare tokens from there on
        c = q
        while c < length and c < prev_length and tokens[start + c] == tokens[prev_start + c]:
            c += 1
    else:
        symbol_mask = np.uint64((1 << b) - 1)
        while ((x >> np.uint64(b * (q - 1 - c))) & symbol_mask) == 0:
            c += 1
    return min(c, length, prev_length)


@njit(cache=True, nogil=True, parallel=True)
def common_prefixes(
    keys: np.ndarray,
    sorted_places: np.ndarray,
    info_bits: int,
    tokens: np.ndarray,
    depth: int,
    q: int,
    b: int,
    shared: np.ndarray,
    n_chunks: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # pragma: no cover
    """Fill ``shared`` (see :func:`shared_prefix`) and cut the windows into chunks for :func:`emit_nodes`.

    Chunks start where a window shares no token with the one before, so no node spans
    two chunks. Returns the chunk bounds (``n_chunks + 1`` indices), the nodes every
    chunk opens at every depth (row t, column j): window i opens one node at each depth
    from ``shared[i] + 1`` to its length, and how many windows of every chunk end in EOS
    at the deepest level (room for its sparse leaf EOS counts).
    """
    n = keys.shape[0]
    for t in prange(n_chunks):
        for i in range(n * t // n_chunks, n * (t + 1) // n_chunks):
            shared[i] = shared_prefix(keys, sorted_places, info_bits, tokens, i, q, b)
    bounds = np.empty(n_chunks + 1, np.int64)
    bounds[0], bounds[n_chunks] = 0, n
    for t in range(1, n_chunks):
        i = max(n * t // n_chunks, bounds[t - 1])
        while i < n and shared[i] != 0:
            i += 1
        bounds[t] = i
    nodes = np.zeros((n_chunks, depth + 2), np.int64)
    deep_ends = np.zeros(n_chunks, np.int64)
    for t in prange(n_chunks):
        row = nodes[t]
        for i in range(bounds[t], bounds[t + 1]):
            _, length, ends = unpack(sorted_places[i], info_bits)
            row[shared[i] + 1] += 1
            row[length + 1] -= 1
            if ends and length == depth:
                deep_ends[t] += 1
        for j in range(1, depth + 2):
            row[j] += row[j - 1]
    return bounds, nodes, deep_ends


FIRST_CHILD = 1  # node flag: the node is its parent's first child (its children block starts here)
HAS_CHILDREN = 2  # node flag: the node has at least one child
SATURATED = 255  # a uint8 count of this value: the count is in the table (tokentree.trees.counts_layout)


@njit(cache=True, nogil=True)
def set_count(node: int, count: int, node_count: np.ndarray, big_at: np.ndarray, big_count: np.ndarray,
              n_big: int) -> int:  # pragma: no cover
    """Store ``count`` as node ``node``'s byte, and in the table when it does not fit; returns the table's size."""
    if count < SATURATED:
        node_count[node] = count
        return n_big
    node_count[node] = SATURATED
    big_at[n_big] = node
    big_count[n_big] = count
    return n_big + 1


@njit(cache=True, nogil=True)
def emit_chunk(
    lo: int,
    hi: int,
    first_node: np.ndarray,
    root_has_child: bool,
    shared: np.ndarray,
    sorted_places: np.ndarray,
    info_bits: int,
    sorted_weights: np.ndarray,
    has_weights: bool,
    tokens: np.ndarray,
    depth: int,
    deepest: int,
    node_token: np.ndarray,
    node_flags: np.ndarray,
    node_count: np.ndarray,
    eos_at: np.ndarray,
    eos_count: np.ndarray,
    big_at: np.ndarray,
    big_count: np.ndarray,
) -> tuple[int, int]:  # pragma: no cover
    """Write the nodes of sorted windows ``lo:hi``; the chunk's first node of depth j goes to ``first_node[j]``.

    Each level keeps one open node: the prefix of that length that the current window
    passes through. Window i keeps the open nodes of depths 1..shared[i], closes the
    deeper ones, and opens new ones at depths shared[i] + 1..length, each the child of
    the open node one level up. Sorted order is lexicographic order, so every level's
    nodes come out sorted by (parent, token), the order the tree stores. A node's count
    is the weight of the windows passed while it was open. Parent links are not written:
    a node's flags say whether it is its parent's first child and whether it has
    children, which is enough to derive them (:func:`parents_from_flags`). EOS counts of
    deepest nodes are written sparsely, (node - ``deepest``, count) pairs in ``eos_at`` and
    ``eos_count`` (room for one per window ending there). Counts are one byte per node, those
    of :data:`SATURATED` or more also (node, count) pairs in ``big_at`` and ``big_count``, in
    the order the nodes close (room for ``depth * weight // 255`` of them: the counts of one
    level sum to at most the chunk's weight). Returns how many of each. The root's
    flags are the caller's (every chunk adds children to it); ``root_has_child``: an earlier chunk
    holds windows (so gave the root its first child).
    """
    current = first_node[: depth + 1] - 1
    current[0] = 0
    opened_at = np.zeros(depth + 1, np.int64)  # weight before the open node's first window
    has_child = np.zeros(depth + 1, np.bool_)  # whether the open node of each depth has a child yet
    has_child[0] = root_has_child
    total = 0
    prev_length = 0
    used = 0
    n_big = 0
    for i in range(lo, hi):
        start, length, ends = unpack(sorted_places[i], info_bits)
        c = shared[i]
        for j in range(c + 1, prev_length + 1):
            n_big = set_count(current[j], total - opened_at[j], node_count, big_at, big_count, n_big)
        parent = current[c]
        for j in range(c + 1, length + 1):
            k = current[j] + 1
            current[j] = k
            node_token[k] = tokens[start + j - 1]
            if has_child[j - 1]:
                node_flags[k] = 0
            else:
                node_flags[k] = FIRST_CHILD
                has_child[j - 1] = True
                if j > 1:
                    node_flags[parent] |= HAS_CHILDREN
            has_child[j] = False
            parent = k
            opened_at[j] = total
        w = sorted_weights[i] if has_weights else 1
        if length == depth and ends:
            at = current[depth] - deepest
            if used > 0 and eos_at[used - 1] == at:  # windows ending at one node are consecutive
                eos_count[used - 1] += w
            else:
                eos_at[used] = at
                eos_count[used] = w
                used += 1
        total += w
        prev_length = length
    for j in range(1, prev_length + 1):
        n_big = set_count(current[j], total - opened_at[j], node_count, big_at, big_count, n_big)
    return used, n_big


@njit(cache=True, nogil=True, parallel=True)
def emit_nodes(
    n_windows: int,
    shared: np.ndarray,
    sorted_places: np.ndarray,
    info_bits: int,
    sorted_weights: np.ndarray,
    has_weights: bool,
    tokens: np.ndarray,
    depth: int,
    level_offsets: np.ndarray,
    bounds: np.ndarray,
    chunk_nodes: np.ndarray,
    node_token: np.ndarray,
    node_flags: np.ndarray,
    node_count: np.ndarray,
    deep_ends: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:  # pragma: no cover
    """Write every node but the root's token, the chunks from :func:`common_prefixes` in parallel.

    Returns the deepest level's EOS counts, sparse: (index in the level, count), sorted by
    index, and the table of counts of :data:`SATURATED` or more, (node, count) in the
    order the chunks closed them (not sorted), the root's first.
    """
    n_chunks = bounds.shape[0] - 1
    first_node = np.empty((n_chunks, depth + 2), np.int64)
    first_node[0] = level_offsets
    for t in range(1, n_chunks):
        first_node[t] = first_node[t - 1] + chunk_nodes[t - 1]
    room = np.zeros(n_chunks + 1, np.int64)
    room[1:] = np.cumsum(deep_ends)
    eos_at = np.empty(room[-1], np.int64)
    eos_count = np.empty(room[-1], np.int64)
    big_room = np.zeros(n_chunks + 1, np.int64)
    big_room[0] = 1  # the root's entry
    for t in range(n_chunks):
        weight = bounds[t + 1] - bounds[t]
        if has_weights:
            weight = sorted_weights[bounds[t] : bounds[t + 1]].sum()
        big_room[t + 1] = big_room[t] + min(depth * (weight // SATURATED), chunk_nodes[t].sum())
    big_at = np.empty(big_room[-1], np.int64)
    big_count = np.empty(big_room[-1], np.int64)
    used = np.zeros(n_chunks, np.int64)
    n_big = np.zeros(n_chunks, np.int64)
    for t in prange(n_chunks):
        used[t], n_big[t] = emit_chunk(
            bounds[t], bounds[t + 1], first_node[t], bounds[t] > 0, shared, sorted_places, info_bits, sorted_weights,
            has_weights, tokens, depth, level_offsets[depth], node_token, node_flags, node_count,
            eos_at[room[t] : room[t + 1]], eos_count[room[t] : room[t + 1]],
            big_at[big_room[t] : big_room[t + 1]], big_count[big_room[t] : big_room[t + 1]],
        )
    n_eos = used.sum()
    at = 0
    for t in range(n_chunks):  # close the gaps between the chunks' entries
        for e in range(used[t]):
            eos_at[at] = eos_at[room[t] + e]
            eos_count[at] = eos_count[room[t] + e]
            at += 1
    total = sorted_weights.sum() if has_weights else n_windows
    at = set_count(0, total, node_count, big_at, big_count, 0)
    for t in range(n_chunks):  # close the gaps in the table likewise
        for e in range(n_big[t]):
            big_at[at] = big_at[big_room[t] + e]
            big_count[at] = big_count[big_room[t] + e]
            at += 1
    node_flags[0] = HAS_CHILDREN if node_flags.shape[0] > 1 else 0
    return eos_at[:n_eos].copy(), eos_count[:n_eos].copy(), big_at[:at].copy(), big_count[:at].copy()


@njit(cache=True, nogil=True)
def parents_from_flags(flags: np.ndarray, parents: np.ndarray) -> bool:  # pragma: no cover
    """Fill ``parents`` from node flags (see :func:`emit_chunk`); False if the flags are inconsistent.

    Children blocks appear in the order of their parents (breadth-first order), so the
    k-th node flagged FIRST_CHILD starts the children of the k-th node flagged HAS_CHILDREN.
    """
    n = flags.shape[0]
    if n == 0:
        return True
    parents[0] = -1
    parent = -1
    u = 0
    for i in range(1, n):
        if flags[i] & FIRST_CHILD:
            while u < i and not flags[u] & HAS_CHILDREN:
                u += 1
            if u >= i:
                return False
            parent = u
            u += 1
        if parent < 0:
            return False
        parents[i] = parent
    while u < n:  # no node flagged HAS_CHILDREN may be left without children
        if flags[u] & HAS_CHILDREN:
            return False
        u += 1
    return True


@njit(cache=True, nogil=True)
def child_offsets_from_flags(flags: np.ndarray) -> np.ndarray:  # pragma: no cover
    """``searchsorted(parents, arange(n + 1))`` from node flags: node u's children are ``out[u]:out[u + 1]``."""
    n = flags.shape[0]
    out = np.empty(n + 1, np.int64)
    out[n] = n
    i = 1
    for u in range(n):
        out[u] = -1
        if flags[u] & HAS_CHILDREN:
            while not flags[i] & FIRST_CHILD:
                i += 1
            out[u] = i
            i += 1
    for u in range(n - 1, -1, -1):
        if out[u] < 0:
            out[u] = out[u + 1]
    return out


@njit(cache=True, nogil=True)
def flags_from_parents(parents: np.ndarray) -> np.ndarray:  # pragma: no cover
    """Node flags of a breadth-first tree given by its parent links (the inverse of :func:`parents_from_flags`)."""
    n = parents.shape[0]
    flags = np.zeros(n, np.uint8)
    for i in range(1, n):
        if parents[i] != parents[i - 1]:
            flags[i] = FIRST_CHILD
            flags[parents[i]] |= HAS_CHILDREN
    return flags


@njit(cache=True, nogil=True)
def _occurrence_part(tokens: np.ndarray, pos: int, length: int, part_starts: np.ndarray,
                     vocab_plus_one: int) -> int:  # pragma: no cover
    """The part an occurrence belongs to: where (first token, second token + 1 or 0) falls in ``part_starts``."""
    second = np.int64(tokens[pos + 1]) + 1 if length >= 2 else 0
    key = np.int64(tokens[pos]) * vocab_plus_one + second
    return int(np.searchsorted(part_starts, key, side="right")) - 1


@njit(cache=True, nogil=True)
def cut_by_part(
    tokens: np.ndarray,
    response_starts: np.ndarray,
    response_ends: np.ndarray,
    depth: int,
    mode: int,
    token_weights: bool,
    part_starts: np.ndarray,
    vocab_plus_one: int,
    position_offset: int,
    length_like: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:  # pragma: no cover
    """A shard's occurrences, grouped by part: starts (+ ``position_offset``), lengths, EOS flags, weights, bounds.

    ``mode`` 0 is prefix (one occurrence per response), 1 chunk (every ``depth`` tokens),
    2 window (every token), as :func:`tokentree.trees.build.occurrences` cuts them; an
    occurrence of ``left`` tokens to its response's end has length ``min(left, depth)``
    and ends in EOS when ``left <= depth``. With ``token_weights`` (prefix and chunk
    modes) an occurrence weighs the tokens it stands for, else weights is empty. Lengths
    take the dtype of ``length_like`` (the smallest that holds ``depth``). Part ``p`` is
    entries ``bounds[p]:bounds[p + 1]``, in position order.
    """
    n_parts = part_starts.shape[0]
    step = 1 if mode == 2 else depth
    counts = np.zeros(n_parts + 1, np.int64)
    for r in range(response_starts.shape[0]):
        a, e = response_starts[r], response_ends[r]
        pos = a
        while pos < e:
            counts[_occurrence_part(tokens, pos, min(e - pos, depth), part_starts, vocab_plus_one) + 1] += 1
            pos = e if mode == 0 else pos + step
    bounds = np.cumsum(counts)
    n = bounds[-1]
    start = np.empty(n, np.int64)
    length = np.empty(n, length_like.dtype)
    eos = np.empty(n, np.bool_)
    weights = np.empty(n if token_weights else 0, np.int64)
    slot = bounds[:-1].copy()
    for r in range(response_starts.shape[0]):
        a, e = response_starts[r], response_ends[r]
        pos = a
        while pos < e:
            left = e - pos
            size = min(left, depth)
            p = _occurrence_part(tokens, pos, size, part_starts, vocab_plus_one)
            at = slot[p]
            slot[p] = at + 1
            start[at] = pos + position_offset
            length[at] = size
            eos[at] = left <= depth
            if token_weights:
                weights[at] = e - a if mode == 0 else size
            pos = e if mode == 0 else pos + step
    return start, length, eos, weights, bounds
