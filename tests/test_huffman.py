"""Huffman codes: optimality, Kraft equality, bounds, canonical codewords, round trips."""

from __future__ import annotations

import itertools
import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.strategies import probability_vectors
from tokentree import InputError
from tokentree.compression import EncodedBits, entropy, huffman_code, huffman_lengths
from tokentree.trees.reference import heapq_huffman_lengths


def brute_force_optimal_length(p):
    """Smallest expected length over all length vectors satisfying Kraft (exhaustive)."""
    n = len(p)
    best = math.inf
    for lengths in itertools.product(range(1, n), repeat=n):
        if sum(Fraction(1, 2**ln) for ln in lengths) <= 1:
            best = min(best, sum(pi * li for pi, li in zip(p, lengths, strict=False)))
    return best


@given(probability_vectors(min_size=2, max_size=6))
def test_expected_length_equals_brute_force_optimum(w):
    p = np.asarray(w) / sum(w)
    code = huffman_code(p)
    assert code.expected_length(p) == pytest.approx(brute_force_optimal_length(p.tolist()), rel=1e-12)


@given(probability_vectors(min_size=2, max_size=200))
def test_kraft_sum_is_exactly_one_and_code_is_prefix_free(w):
    code = huffman_code(w)
    assert code.kraft_sum() == 1
    assert code.is_prefix_free()


@given(probability_vectors(min_size=2, max_size=200))
def test_entropy_bound(w):
    """Cover & Thomas Thm 5.4.1 with 5.8.1: H <= L < H + 1."""
    h = entropy(w)
    length = huffman_code(w).expected_length(w)
    assert h - 1e-9 <= length < h + 1


@given(probability_vectors(min_size=2, max_size=60))
def test_same_expected_length_as_the_heapq_reference(w):
    p = np.asarray(w)
    ours = huffman_lengths(p) @ p
    ref = np.asarray(heapq_huffman_lengths(p.tolist())) @ p
    assert ours == pytest.approx(ref, rel=1e-12)


def test_textbook_example():
    """Cover & Thomas, Example 5.6.1: lengths 2, 2, 2, 3, 3; mean 2.3 bits; canonical codewords."""
    code = huffman_code([0.25, 0.25, 0.2, 0.15, 0.15])
    assert code.lengths.tolist() == [2, 2, 2, 3, 3]
    assert [code.codeword(i) for i in range(5)] == ["00", "01", "10", "110", "111"]
    assert code.expected_length([0.25, 0.25, 0.2, 0.15, 0.15]) == pytest.approx(2.3, abs=1e-12)


def test_tie_break_is_by_index_and_deterministic():
    code = huffman_code([1, 1, 1, 1, 1])
    # Equal weights: the lowest indices are merged first, so they get the longer codewords;
    # codewords are then assigned in (length, index) order.
    assert code.lengths.tolist() == [3, 3, 2, 2, 2]
    assert [code.codeword(i) for i in range(5)] == ["110", "111", "00", "01", "10"]
    assert huffman_code([1, 1, 1, 1, 1]).codes.tolist() == code.codes.tolist()


@given(st.lists(st.integers(0, 6), min_size=2, max_size=300))
def test_tied_integer_counts_follow_the_weight_then_index_order(counts):
    """Ties are broken by index (the documented rule): the lengths are those of the
    Moffat-Katajainen pass over ``np.lexsort((index, weight))``, the same for an integer and a
    float array of the same counts."""
    from tokentree.compression import _huffman_kernels

    c = np.asarray(counts, dtype=np.int64)
    positive = np.flatnonzero(c > 0)
    if positive.shape[0] < 2:
        return
    order = positive[np.lexsort((positive, c[positive]))]
    work = c[order].astype(np.float64)
    _huffman_kernels.minimum_redundancy_lengths(work)
    expected = np.zeros(c.shape[0], dtype=np.int64)
    expected[order] = work
    assert huffman_lengths(c).tolist() == expected.tolist()
    assert huffman_lengths(c.astype(np.float64)).tolist() == expected.tolist()
    assert huffman_lengths(c.astype(np.uint16)).tolist() == expected.tolist()


def test_tied_counts_golden():
    """Pinned on a small tie-heavy alphabet (lengths and codewords from the code before the stable
    sort, which re-sorted ties by hand; the stable sort gives the same)."""
    code = huffman_code(np.array([3, 1, 1, 2, 1, 3, 2, 1], dtype=np.int64))
    assert code.lengths.tolist() == [2, 4, 4, 3, 4, 2, 3, 4]
    assert [code.codeword(i) for i in range(8)] == ["00", "1100", "1101", "100", "1110", "01", "101", "1111"]


def test_single_symbol_and_zero_weights():
    one = huffman_code([0.0, 3.0, 0.0])
    assert one.lengths.tolist() == [0, 1, 0] and one.codeword(1) == "0"
    assert one.kraft_sum() == Fraction(1, 2)
    assert one.decode(one.encode([1, 1, 1])).tolist() == [1, 1, 1]
    with pytest.raises(InputError, match="symbol 0 has zero weight"):
        one.encode([0])
    two = huffman_code([5, 0, 5])
    assert two.lengths.tolist() == [1, 0, 1] and two.kraft_sum() == 1


@given(probability_vectors(min_size=1, max_size=100), st.lists(st.integers(0, 10**6), max_size=300))
def test_encode_decode_round_trip_is_bit_exact(w, raw):
    code = huffman_code(w)
    symbols = np.array([r % len(w) for r in raw], dtype=np.int64)
    bits = code.encode(symbols)
    assert bits.n_bits == int(code.lengths[symbols].sum())
    assert len(bits.data) == (bits.n_bits + 7) // 8
    np.testing.assert_array_equal(code.decode(bits), symbols)


def test_golden_bitstream():
    """Symbols 0, 3, 1 under the code of weights 5, 2, 1, 1: 0 + 111 + 10 -> 0111 10(00)."""
    code = huffman_code([5, 2, 1, 1])
    assert [code.codeword(i) for i in range(4)] == ["0", "10", "110", "111"]
    bits = code.encode([0, 3, 1])
    assert bits.data == bytes([0b01111000]) and bits.n_bits == 6


def test_truncated_bitstream_is_rejected():
    code = huffman_code([5, 2, 1, 1])
    bits = code.encode([3, 3, 3])
    with pytest.raises(InputError, match="truncated"):
        code.decode(EncodedBits(bits.data, bits.n_bits - 2, 3))


@pytest.mark.parametrize(
    ("weights", "match"),
    [([1.0, -1.0], "must be >= 0; entry 1"), ([1.0, float("nan")], "must be finite"),
     ([1.0, float("inf")], "must be finite"), ([0.0, 0.0], "all zero"), ([], "non-empty")],
)
def test_bad_weights(weights, match):
    with pytest.raises(InputError, match=match):
        huffman_code(weights)
