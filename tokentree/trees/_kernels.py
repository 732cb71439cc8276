"""Compiled loops of the tree builder that write the tree (numba, imported lazily by :mod:`tokentree.trees.build`).

The windows come sorted lexicographically, a shorter window before its extensions, as
places (start, length, EOS: see :mod:`tokentree.trees._sort_kernels`, which sorts them);
the passes here count the nodes of every level and then write the whole tree in one
pass over them (see :mod:`tokentree.trees.build`), in batches of chunks in window order,
so that the builder can hand back each batch's windows once they are written. How many
tokens a window shares with the one before it is computed where it is needed, from the
keys in the counting pass and from the tokens in the writing pass, not stored (it would
be a byte per window beside the finished tree).

The passes over all windows run on ``n_chunks`` threads (numba ``prange``): each
chunk owns a disjoint slice of every array it writes, so the result does not depend
on the number of threads. Every kernel is cached on disk (``cache=True``), so only the
first build on a machine pays the compile time.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from tokentree.trees._sort_kernels import unpack


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
    n_chunks: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # pragma: no cover
    """Cut the sorted windows into chunks for :func:`emit_nodes` and count the nodes each opens.

    Chunks start where a window shares no token with the one before (see
    :func:`shared_prefix`), so no node spans two chunks. Returns the chunk bounds
    (``n_chunks + 1`` indices), the nodes every chunk opens at every depth (row t, column
    j): window i opens one node at each depth from its shared prefix + 1 to its length,
    and how many windows of every chunk end in EOS at the deepest level (room for its
    sparse leaf EOS counts).
    """
    n = keys.shape[0]
    bounds = np.empty(n_chunks + 1, np.int64)
    bounds[0], bounds[n_chunks] = 0, n
    for t in range(1, n_chunks):
        i = max(n * t // n_chunks, bounds[t - 1])
        while i < n and shared_prefix(keys, sorted_places, info_bits, tokens, i, q, b) != 0:
            i += 1
        bounds[t] = i
    nodes = np.zeros((n_chunks, depth + 2), np.int64)
    deep_ends = np.zeros(n_chunks, np.int64)
    for t in prange(n_chunks):
        row = nodes[t]
        for i in range(bounds[t], bounds[t + 1]):
            _, length, ends = unpack(sorted_places[i], info_bits)
            row[shared_prefix(keys, sorted_places, info_bits, tokens, i, q, b) + 1] += 1
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
    passes through. Window i keeps the open nodes of depths 1..c (the tokens it shares
    with window i - 1), closes the deeper ones, and opens new ones at depths c + 1..length, each the child of
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
    prev_start = 0
    for i in range(lo, hi):
        start, length, ends = unpack(sorted_places[i], info_bits)
        c = 0  # tokens shared with the window before (none for a chunk's first: see common_prefixes)
        if i > lo:
            most = min(length, prev_length)
            while c < most and tokens[start + c] == tokens[prev_start + c]:
                c += 1
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
        prev_start, prev_length = start, length
    for j in range(1, prev_length + 1):
        n_big = set_count(current[j], total - opened_at[j], node_count, big_at, big_count, n_big)
    return used, n_big


@njit(cache=True, nogil=True)
def emit_plan(
    n_windows: int,
    sorted_weights: np.ndarray,
    has_weights: bool,
    depth: int,
    level_offsets: np.ndarray,
    bounds: np.ndarray,
    chunk_nodes: np.ndarray,
    deep_ends: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:  # pragma: no cover
    """Where every chunk of :func:`common_prefixes` writes: for :func:`emit_nodes`.

    Returns the first node of every chunk at every depth (row t, column j; row
    ``n_chunks`` holds the level ends), the offsets of the chunks' room for deepest-level
    EOS entries and for large counts (the root's entry first), and the total weight.
    """
    n_chunks = bounds.shape[0] - 1
    first_node = np.empty((n_chunks + 1, depth + 2), np.int64)
    first_node[0] = level_offsets
    for t in range(n_chunks):
        first_node[t + 1] = first_node[t] + chunk_nodes[t]
    room = np.zeros(n_chunks + 1, np.int64)
    room[1:] = np.cumsum(deep_ends)
    big_room = np.zeros(n_chunks + 1, np.int64)
    big_room[0] = 1  # the root's entry
    for t in range(n_chunks):
        weight = bounds[t + 1] - bounds[t]
        if has_weights:
            weight = sorted_weights[bounds[t] : bounds[t + 1]].sum()
        big_room[t + 1] = big_room[t] + min(depth * (weight // SATURATED), chunk_nodes[t].sum())
    total = sorted_weights.sum() if has_weights else n_windows
    return first_node, room, big_room, total


@njit(cache=True, nogil=True, parallel=True)
def emit_nodes(
    chunk_lo: int,
    chunk_hi: int,
    first_node: np.ndarray,
    room: np.ndarray,
    big_room: np.ndarray,
    sorted_places: np.ndarray,
    info_bits: int,
    sorted_weights: np.ndarray,
    has_weights: bool,
    tokens: np.ndarray,
    depth: int,
    bounds: np.ndarray,
    node_token: np.ndarray,
    node_flags: np.ndarray,
    node_count: np.ndarray,
    eos_at: np.ndarray,
    eos_count: np.ndarray,
    big_at: np.ndarray,
    big_count: np.ndarray,
    used: np.ndarray,
    n_big: np.ndarray,
) -> None:  # pragma: no cover
    """Write the nodes of chunks ``chunk_lo:chunk_hi`` (every node but the root's), the chunks in parallel.

    Each chunk first zeroes the node ranges it will write, level by level in order, then
    writes them: first-touching the pages from the emit pass's depth + 1 interleaved
    write streams measured 2-3x slower on this VM. Every chunk's EOS entries and large
    counts go to its room (see :func:`emit_plan`); how many, to ``used`` and ``n_big``.
    """
    for t in prange(chunk_lo, chunk_hi):
        for j in range(1, depth + 1):
            lo, hi = first_node[t, j], first_node[t + 1, j]
            node_token[lo:hi] = 0
            node_flags[lo:hi] = 0
            node_count[lo:hi] = 0
        used[t], n_big[t] = emit_chunk(
            bounds[t], bounds[t + 1], first_node[t], bounds[t] > 0, sorted_places, info_bits, sorted_weights,
            has_weights, tokens, depth, first_node[0, depth], node_token, node_flags, node_count,
            eos_at[room[t] : room[t + 1]], eos_count[room[t] : room[t + 1]],
            big_at[big_room[t] : big_room[t + 1]], big_count[big_room[t] : big_room[t + 1]],
        )


@njit(cache=True, nogil=True)
def finish_emit(
    total: int,
    room: np.ndarray,
    big_room: np.ndarray,
    used: np.ndarray,
    n_big: np.ndarray,
    eos_at: np.ndarray,
    eos_count: np.ndarray,
    big_at: np.ndarray,
    big_count: np.ndarray,
    node_count: np.ndarray,
    node_flags: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:  # pragma: no cover
    """The root's count and flags; the chunks' entries laid end to end.

    Returns the deepest level's EOS counts, sparse: (index in the level, count), sorted by
    index, and the table of counts of :data:`SATURATED` or more, (node, count) in the
    order the chunks closed them (not sorted), the root's first.
    """
    n_chunks = used.shape[0]
    n_eos = used.sum()
    at = 0
    for t in range(n_chunks):  # close the gaps between the chunks' entries
        for e in range(used[t]):
            eos_at[at] = eos_at[room[t] + e]
            eos_count[at] = eos_count[room[t] + e]
            at += 1
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
