"""Real Huffman codes: optimal lengths, canonical codewords, bit-exact encode and decode.

The paper's compressor (Def. 3.3) Huffman-codes the pruned tree's symbols with their
weights as probabilities. This module builds that code for real.

Tie-break (deterministic, documented)
-------------------------------------
1. Symbols are ordered by weight, ties by symbol index (a stable sort).
2. Code lengths come from the Moffat-Katajainen in-place algorithm over that order;
   when a leaf and an internal node weigh the same, the leaf is merged first (this
   keeps the longest codeword as short as possible).
3. Codewords are canonical: ordered by (length, symbol index), each the previous one
   plus one, shifted left when the length grows.

Special cases
-------------
* Zero-weight symbols get no codeword (length 0): a code for symbols that never occur
  would only lengthen the others. Encoding one raises :class:`InputError`.
* A single symbol with positive weight gets the one-bit codeword ``0`` (a zero-bit
  code cannot be decoded: the stream length would be unknown). Its Kraft sum is 1/2.
* With two or more positive weights the Kraft sum is exactly 1.

References
----------
1. D. A. Huffman, "A method for the construction of minimum-redundancy codes", 1952.
2. A. Moffat and J. Katajainen, "In-place calculation of minimum-redundancy codes", 1995.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from tokentree.infra.errors import InputError
from tokentree.infra.results import ArrayResult

__all__ = ["HuffmanCode", "EncodedBits", "huffman_code", "huffman_lengths", "check_weights"]

MAX_CODEWORD_BITS = 64


def check_weights(weights: np.ndarray | list[float], name: str = "weights") -> np.ndarray:
    """Validate non-negative finite weights (not all zero) and return them as float64."""
    try:
        w = np.asarray(weights, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be numbers (a 1-D array of non-negative weights); got {weights!r:.80}") from None
    if w.ndim != 1 or w.shape[0] == 0:
        raise InputError(f"{name} must be a non-empty 1-D array; got shape {w.shape}")
    low, high = float(w.min()), float(w.max())
    if low > 0 and high < math.inf:  # the common case, in two passes: all positive and finite
        return w
    bad = ~np.isfinite(w)
    if bad.any():
        i = int(np.argmax(bad))
        raise InputError(f"{name} must be finite; entry {i} is {w[i]}")
    if (w < 0).any():
        i = int(np.argmax(w < 0))
        raise InputError(f"{name} must be >= 0; entry {i} is {w[i]}")
    if not (w > 0).any():
        raise InputError(f"{name} are all zero; at least one symbol needs positive weight")
    return w


def huffman_lengths(weights: np.ndarray | list[float]) -> np.ndarray:
    """Optimal (Huffman) code lengths in bits, one per symbol; 0 for zero-weight symbols.

    Weights need not be normalised. O(n log n) for the sort, O(n) for the lengths.

    >>> huffman_lengths([0.4, 0.3, 0.2, 0.1]).tolist()
    [1, 2, 3, 3]
    """
    w = check_weights(weights)
    raw = weights if isinstance(weights, np.ndarray) and weights.dtype.kind in "iu" else None
    lengths = np.zeros(w.shape[0], dtype=np.int64)
    if w.min() > 0 and w.shape[0] > 1:  # the common case: no need to pick out the positive weights
        order, work = _order_by_weight_then_index(w, raw)
    else:
        positive = np.flatnonzero(w > 0)
        if positive.shape[0] == 1:
            lengths[positive] = 1
            return lengths
        order, work = _order_by_weight_then_index(w[positive], None if raw is None else raw[positive])
        order = positive[order]
    from tokentree.compression import _huffman_kernels

    _huffman_kernels.minimum_redundancy_lengths(work)  # in place: sorted weights become lengths
    lengths[order] = work
    return lengths


def _order_by_weight_then_index(w: np.ndarray, raw: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Indices sorting ``w`` ascending, ties by index, and the sorted weights.

    The order is ``np.argsort(w, kind="stable")``'s. Integer weights (``raw``, the caller's
    integer array, usually counts with many ties) are sorted stably as integers: numpy's
    radix sort or timsort there beats a SIMD quicksort followed by a re-sort of the ties.
    Float weights take the SIMD quicksort first and re-sort stably only when two weights tie.
    """
    if raw is not None:
        order = np.argsort(raw, kind="stable")
        return order, w[order]
    order = np.argsort(w)
    ws = w[order]
    if not (ws[1:] == ws[:-1]).any():  # no ties: the quicksort's order is the stable one
        return order, ws
    order = np.argsort(w, kind="stable")
    return order, w[order]


def _canonical_order(lengths: np.ndarray) -> np.ndarray:
    """Symbols with a codeword, ordered by (length, index)."""
    narrow = lengths.astype(np.uint8) if int(lengths.max()) < 256 else lengths
    order = np.argsort(narrow, kind="stable")  # a radix sort on small integers; ties stay by index
    return order[lengths[order] > 0]


@dataclass(frozen=True, eq=False, repr=False)
class EncodedBits(ArrayResult):
    """A packed bitstream: ``data`` bytes, MSB first, of which ``n_bits`` are used."""

    data: bytes
    n_bits: int
    n_symbols: int


@dataclass(frozen=True, eq=False, repr=False)
class HuffmanCode(ArrayResult):
    """A canonical Huffman code over symbols 0..n-1.

    Attributes
    ----------
    lengths : int64 array
        Codeword length of every symbol in bits (0: zero weight, no codeword).
    codes : uint64 array, or object array of Python ints
        Codeword of every symbol, right-aligned (0 for symbols without one). When a
        codeword is longer than 64 bits (probabilities below about 2^-64) the codes are
        exact Python integers instead; :meth:`encode` and :meth:`decode` then refuse.
    """

    lengths: np.ndarray
    codes: np.ndarray

    @property
    def n_symbols(self) -> int:
        return int(self.lengths.shape[0])

    @property
    def max_length(self) -> int:
        return int(self.lengths.max())

    def codeword(self, symbol: int) -> str:
        """The codeword of ``symbol`` as a string of '0'/'1'."""
        ln = int(self.lengths[symbol])
        if ln == 0:
            raise InputError(f"symbol {symbol} has zero weight and no codeword")
        return format(int(self.codes[symbol]), f"0{ln}b")

    def kraft_sum(self) -> Fraction:
        """Exact sum of 2^-length over symbols with a codeword."""
        used = self.lengths[self.lengths > 0]
        top = int(used.max())
        per_length = np.bincount(used, minlength=top + 1)
        return Fraction(sum(int(c) << (top - ln) for ln, c in enumerate(per_length) if c), 1 << top)

    def is_prefix_free(self) -> bool:
        """Check by brute force that no codeword is a prefix of another (for tests; O(n log n))."""
        words = sorted(self.codeword(int(i)) for i in np.flatnonzero(self.lengths > 0))
        return all(not b.startswith(a) for a, b in itertools.pairwise(words))

    def expected_length(self, weights: np.ndarray | list[float]) -> float:
        """Mean codeword length in bits under the distribution proportional to ``weights``."""
        w = check_weights(weights)
        if w.shape != self.lengths.shape:
            raise InputError(f"weights have {w.shape[0]} entries but the code has {self.n_symbols} symbols")
        if np.any((w > 0) & (self.lengths == 0)):
            return float("inf")
        return float(w @ self.lengths / w.sum())

    def _check_encodable(self, symbols: np.ndarray) -> None:
        if self.max_length > MAX_CODEWORD_BITS:
            raise InputError(
                f"the longest codeword has {self.max_length} bits; encoding supports up to "
                f"{MAX_CODEWORD_BITS}. Smooth the weights (no probability below ~2^-60) to shorten it"
            )
        if symbols.size and (symbols.min() < 0 or symbols.max() >= self.n_symbols):
            raise InputError(f"symbols must be in 0..{self.n_symbols - 1}")
        if symbols.size and np.any(self.lengths[symbols] == 0):
            bad = int(symbols[np.argmax(self.lengths[symbols] == 0)])
            raise InputError(f"symbol {bad} has zero weight in this code and cannot be encoded")

    def encode(self, symbols: np.ndarray | list[int]) -> EncodedBits:
        """Encode a sequence of symbol indices into a packed bitstream.

        >>> code = huffman_code([5, 2, 1, 1])
        >>> bits = code.encode([0, 3, 1])
        >>> bits.n_bits, code.decode(bits).tolist()
        (6, [0, 3, 1])
        """
        s = np.asarray(symbols, dtype=np.int64)
        self._check_encodable(s)
        total = int(self.lengths[s].sum())
        from tokentree.compression import _huffman_kernels

        data = _huffman_kernels.encode_bits(self.codes, self.lengths, s, total)
        return EncodedBits(data=data.tobytes(), n_bits=total, n_symbols=int(s.shape[0]))

    def decode(self, encoded: EncodedBits) -> np.ndarray:
        """Decode a bitstream back into symbol indices (bit-exact inverse of :meth:`encode`)."""
        if self.max_length > MAX_CODEWORD_BITS:
            raise InputError(f"cannot decode codewords longer than {MAX_CODEWORD_BITS} bits")
        order = _canonical_order(self.lengths)
        count, first_index, first_code = _canonical_tables(self.lengths)
        data = np.frombuffer(encoded.data, dtype=np.uint8)
        if encoded.n_bits > data.shape[0] * 8:
            raise InputError(f"bitstream claims {encoded.n_bits} bits but holds only {data.shape[0] * 8}")
        from tokentree.compression import _huffman_kernels

        out, status = _huffman_kernels.decode_bits(
            data, encoded.n_bits, first_code, first_index, count, order.astype(np.int64), encoded.n_symbols
        )
        if status < 0 or out.shape[0] != encoded.n_symbols:
            raise InputError(
                f"bitstream ended or held an invalid codeword after {out.shape[0]} of "
                f"{encoded.n_symbols} symbols; it is truncated or was made by another code"
            )
        return out


def huffman_code(weights: np.ndarray | list[float]) -> HuffmanCode:
    """Build the canonical Huffman code for non-negative, unnormalised ``weights``.

    Examples
    --------
    A textbook example (Cover & Thomas, Example 5.6.1): probabilities
    0.25, 0.25, 0.2, 0.15, 0.15 give lengths 2, 2, 2, 3, 3 and mean length 2.3 bits.

    >>> code = huffman_code([0.25, 0.25, 0.2, 0.15, 0.15])
    >>> code.lengths.tolist(), round(code.expected_length([0.25, 0.25, 0.2, 0.15, 0.15]), 10)
    ([2, 2, 2, 3, 3], 2.3)
    >>> [code.codeword(i) for i in range(5)], code.kraft_sum()
    (['00', '01', '10', '110', '111'], Fraction(1, 1))
    """
    lengths = huffman_lengths(weights)
    order = _canonical_order(lengths)
    if int(lengths.max()) > MAX_CODEWORD_BITS:
        return HuffmanCode(lengths=lengths, codes=_long_canonical_codes(lengths, order))
    # Canonical codes: the r-th codeword of length L is first_code[L] + r.
    codes = np.zeros(lengths.shape[0], dtype=np.uint64)
    _count, first_index, first_code = _canonical_tables(lengths)
    ls = lengths[order]
    rank = np.arange(order.shape[0], dtype=np.int64) - first_index[ls]
    codes[order] = first_code[ls] + rank.astype(np.uint64)
    return HuffmanCode(lengths=lengths, codes=codes)


def _long_canonical_codes(lengths: np.ndarray, order: np.ndarray) -> np.ndarray:
    """The same canonical codewords as exact Python integers, for codes longer than 64 bits."""
    codes = np.zeros(lengths.shape[0], dtype=object)
    code, previous = -1, 0
    for symbol in order.tolist():
        length = int(lengths[symbol])
        if length == 0:
            continue
        code = (code + 1) << (length - previous) if code >= 0 else 0
        previous = length
        codes[symbol] = code
    return codes


def _canonical_tables(lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per length L: codeword count, index of its first symbol in canonical order, first codeword."""
    top = int(lengths.max())
    count = np.bincount(lengths, minlength=top + 1).astype(np.int64)
    count[0] = 0
    first_index = np.concatenate([[0], np.cumsum(count)[:-1]]).astype(np.int64)
    first_code = np.zeros(top + 1, dtype=np.uint64)
    code = 0
    for ln in range(1, top + 1):
        first_code[ln] = code
        code = (code + int(count[ln])) << 1
    return count, first_index, first_code
