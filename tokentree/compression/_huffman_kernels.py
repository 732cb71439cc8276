"""Compiled Huffman loops (numba; imported lazily by :mod:`tokentree.compression.huffman`)."""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def minimum_redundancy_lengths(a: np.ndarray) -> None:  # pragma: no cover
    """Moffat & Katajainen (1995) in-place Huffman code lengths.

    ``a`` holds n >= 2 weights sorted in *non-decreasing* order; on return ``a[i]`` is the
    code length of the symbol with the i-th smallest weight. O(n) time, O(1) extra
    space. Ties between a leaf and an internal node of equal weight take the leaf
    first, which keeps the longest codeword as short as possible.
    """
    n = a.shape[0]
    # Phase 1: build the tree; a[] holds weights, then parent pointers.
    a[0] += a[1]
    root = 0
    leaf = 2
    for nxt in range(1, n - 1):
        # first child
        if leaf >= n or a[root] < a[leaf]:
            a[nxt] = a[root]
            a[root] = nxt
            root += 1
        else:
            a[nxt] = a[leaf]
            leaf += 1
        # second child
        if leaf >= n or (root < nxt and a[root] < a[leaf]):
            a[nxt] += a[root]
            a[root] = nxt
            root += 1
        else:
            a[nxt] += a[leaf]
            leaf += 1
    # Phase 2: parent pointers -> internal node depths.
    a[n - 2] = 0
    for nxt in range(n - 3, -1, -1):
        a[nxt] = a[int(a[nxt])] + 1
    # Phase 3: internal node depths -> leaf depths.
    avbl = 1
    used = 0
    dpth = 0
    root = n - 2
    nxt = n - 1
    while avbl > 0:
        while root >= 0 and a[root] == dpth:
            used += 1
            root -= 1
        while avbl > used:
            a[nxt] = dpth
            nxt -= 1
            avbl -= 1
        avbl = 2 * used
        dpth += 1
        used = 0


@njit(cache=True, nogil=True)
def encode_bits(  # pragma: no cover
    codes: np.ndarray, lengths: np.ndarray, symbols: np.ndarray, total_bits: int
) -> np.ndarray:
    """Pack the codewords of ``symbols`` MSB-first into bytes."""
    out = np.zeros((total_bits + 7) // 8, np.uint8)
    bit = 0
    for i in range(symbols.shape[0]):
        s = symbols[i]
        c = codes[s]
        ln = lengths[s]
        for b in range(ln - 1, -1, -1):
            if (c >> np.uint64(b)) & np.uint64(1):
                out[bit >> 3] |= np.uint8(1 << (7 - (bit & 7)))
            bit += 1
    return out


@njit(cache=True, nogil=True)
def decode_bits(
    data: np.ndarray,
    n_bits: int,
    first_code: np.ndarray,
    first_index: np.ndarray,
    count: np.ndarray,
    sorted_symbols: np.ndarray,
    n_symbols: int,
) -> tuple[np.ndarray, int]:  # pragma: no cover
    """Canonical decoding: read bits until the code value falls in a length's range.

    Returns the decoded symbols and how many were decoded before the stream ended
    (a truncated final codeword is reported as -1 via the count).
    """
    out = np.empty(n_symbols, np.int64)
    bit = 0
    k = 0
    max_len = first_code.shape[0] - 1
    while k < n_symbols:
        code = np.uint64(0)
        ln = 0
        found = False
        while ln < max_len:
            if bit >= n_bits:
                return out[:k], -1
            code = (code << np.uint64(1)) | np.uint64((data[bit >> 3] >> (7 - (bit & 7))) & 1)
            bit += 1
            ln += 1
            if count[ln] > 0 and code - first_code[ln] < np.uint64(count[ln]) and code >= first_code[ln]:
                out[k] = sorted_symbols[first_index[ln] + np.int64(code - first_code[ln])]
                k += 1
                found = True
                break
        if not found:
            return out[:k], -2
    return out, bit
