"""Builders against a naive reference, hand-worked golden trees and networkx."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tokentree.trees.assemble
from tests.strategies import depths, modes, token_sequences, weights
from tokentree import InputError, InputTypeError, MemoryEstimateError, build_tree
from tokentree.data.synthetic import zipf_corpus
from tokentree.trees.reference import reference_occurrences, reference_tree_arrays


def assert_matches_reference(seqs, depth, mode, weight="sequences", vocab_size=None):
    tree = build_tree(seqs, depth=depth, mode=mode, weight=weight, vocab_size=vocab_size)
    ref = reference_tree_arrays(seqs, depth, mode, weight)
    np.testing.assert_array_equal(tree.tokens, ref["tokens"])
    np.testing.assert_array_equal(tree.parents, ref["parents"])
    np.testing.assert_array_equal(tree.counts, ref["counts"])
    np.testing.assert_array_equal(tree.eos_counts, ref["eos_counts"])
    np.testing.assert_array_equal(np.diff(tree.level_offsets), ref["level_sizes"])
    return tree


@given(token_sequences(), depths, modes, weights)
def test_every_mode_equals_the_naive_reference(seqs, depth, mode, weight):
    assert_matches_reference(seqs, depth, mode, weight)


@given(token_sequences(), st.integers(1, 9), modes, weights)
def test_windows_longer_than_one_sort_key_equal_the_reference(seqs, depth, mode, weight):
    """A 2**31-token alphabet packs two tokens per 64-bit key, so deep windows span five keys."""
    assert_matches_reference(seqs, depth, mode, weight, vocab_size=2**31)


def test_long_runs_of_equal_keys_equal_the_reference():
    """Three ids under a 2**31 vocabulary: runs of hundreds of windows share each key word,
    so the tie-breaking sort recurses through every word of a depth-12 window."""
    rng = np.random.default_rng(5)
    seqs = [rng.integers(0, 3, size=int(n)).tolist() for n in rng.integers(1, 60, size=100)]
    for mode in ("prefix", "chunk", "window"):
        assert_matches_reference(seqs, 12, mode, vocab_size=2**31)
    assert_matches_reference([[1] * 40] * 30, 12, "window", vocab_size=2**31)  # one run of 1200


def test_64_bit_window_places_equal_the_reference():
    """Places (start, length, EOS) are uint32 while they fit; at depth 2**15 (17 bits of length and EOS) more
    than 2**15 tokens need the uint64 places. Both give the reference tree."""
    rng = np.random.default_rng(3)
    seqs = [rng.integers(0, 4, size=int(n)).tolist() for n in rng.integers(1, 120, size=700)]
    assert sum(map(len, seqs)) > 2**15
    for mode in ("prefix", "chunk"):
        assert_matches_reference(seqs, 2**15, mode)
    assert_matches_reference(seqs, 6, "window")  # uint32 places


@given(token_sequences(), depths, modes, weights, st.integers(2, 9), st.integers(1, 4))
def test_a_build_cut_into_parallel_chunks_equals_the_reference(seqs, depth, mode, weight, n_chunks, n_batches):
    """The sort and the emit pass split the windows into chunks (one per thread on big builds),
    and the emit pass writes them in batches of chunks, handing back each batch's windows;
    forcing up to 9 chunks and 4 batches on small inputs also covers chunks left empty."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(tokentree.trees.assemble, "_n_chunks", lambda n: n_chunks)
        mp.setattr(tokentree.trees.assemble, "_n_batches", lambda n: n_batches)
        assert_matches_reference(seqs, depth, mode, weight)


def test_chunked_and_single_chunk_builds_are_identical():
    corpus = zipf_corpus(200_000, vocab_size=5_000, rng=4)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(tokentree.trees.assemble, "_n_chunks", lambda n: 1)
        single = build_tree(corpus, depth=6, mode="window")
        mp.setattr(tokentree.trees.assemble, "_n_chunks", lambda n: 7)
        chunked = build_tree(corpus, depth=6, mode="window")
    assert chunked == single and chunked.digest() == single.digest()


def test_batches_that_hand_back_their_windows_build_the_one_batch_tree():
    """Big builds emit in batches and hand each batch's sorted places (and weights) back to the
    system once written: the tree equals the one written in a single batch by one thread."""
    corpus = zipf_corpus(300_000, vocab_size=3_000, rng=6)
    for mode, weight in (("window", "sequences"), ("chunk", "tokens"), ("prefix", "tokens")):
        batched = build_tree(corpus, depth=3, mode=mode, weight=weight)
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(tokentree.trees.assemble, "_n_chunks", lambda n: 1)
            mp.setattr(tokentree.trees.assemble, "_n_batches", lambda n: 1)
            single = build_tree(corpus, depth=3, mode=mode, weight=weight)
        assert batched == single and batched.digest() == single.digest(), (mode, weight)


def test_large_random_corpus_equals_reference():
    """Many sort groups, deep singletons and long responses: 20k Zipf tokens at depth 6."""
    corpus = zipf_corpus(20_000, vocab_size=300, min_length=1, max_length=40, rng=3)
    seqs = [s.tolist() for s in corpus]
    for mode in ("prefix", "chunk", "window"):
        assert_matches_reference(seqs, 6, mode)


@given(token_sequences(), depths, modes, weights)
def test_node_count_is_children_plus_eos(seqs, depth, mode, weight):
    tree = build_tree(seqs, depth=depth, mode=mode, weight=weight)
    child_sum = np.bincount(tree.parents[1:], weights=tree.counts[1:], minlength=tree.n_nodes)
    deepest = tree.level_offsets[-2]
    inner = slice(0, deepest)
    np.testing.assert_array_equal(tree.counts[inner], child_sum[inner] + tree.eos_counts[inner])
    assert np.all(tree.eos_counts[deepest:] <= tree.counts[deepest:])


@given(token_sequences(), depths, modes, weights)
def test_symbol_masses_sum_to_the_dataset_size(seqs, depth, mode, weight):
    tree = build_tree(seqs, depth=depth, mode=mode, weight=weight)
    n_occurrences = len(reference_occurrences(seqs, depth, mode))
    n_tokens = sum(len(s) for s in seqs)
    expected = {
        ("prefix", "sequences"): len(seqs),
        ("chunk", "sequences"): n_occurrences,
        ("window", "sequences"): n_tokens,
    }.get((mode, weight), n_tokens)
    assert tree.symbols().total_mass == tree.total_mass == expected


@given(token_sequences(), depths, modes)
def test_pruning_is_idempotent(seqs, depth, mode):
    tree = build_tree(seqs, depth=depth + 2, mode=mode)
    once = tree.prune(depth)
    assert once.prune(depth) == once
    assert tree.prune(depth + 2) is tree


@given(token_sequences(), depths, modes.filter(lambda m: m != "chunk"))
def test_pruning_commutes_with_building_at_the_smaller_depth(seqs, depth, mode):
    assert build_tree(seqs, depth=depth + 2, mode=mode).prune(depth) == build_tree(seqs, depth=depth, mode=mode)


@given(token_sequences(), depths)
def test_pruned_chunk_tree_keeps_the_first_tokens_of_each_block(seqs, depth):
    """Chunk mode cuts blocks at the build depth; pruning keeps each block's first tokens."""
    big = depth + 2
    blocks = [s[i : i + big] for s in seqs for i in range(0, len(s), big)]
    ends = [i + big >= len(s) for s in seqs for i in range(0, len(s), big)]
    pruned = build_tree(seqs, depth=big, mode="chunk").prune(depth)
    # A block that continues its response must not end in EOS: give it a marker tail.
    marker = 99
    as_prefix = [b if e else b + [marker] * (depth + 1) for b, e in zip(blocks, ends, strict=False)]
    expected = build_tree(as_prefix, depth=depth, mode="prefix")
    assert pruned.symbols().total_mass == expected.total_mass
    np.testing.assert_array_equal(pruned.counts, expected.counts)
    np.testing.assert_array_equal(pruned.eos_counts, expected.eos_counts)


@given(token_sequences(), depths)
def test_node_count_matches_networkx_prefix_tree(seqs, depth):
    tree = build_tree(seqs, depth=depth, mode="window")
    windows = sorted({tuple(s[i : i + depth]) for s in seqs for i in range(len(s))})
    oracle = nx.prefix_tree(windows)
    assert tree.n_nodes == oracle.number_of_nodes() - 1  # networkx adds a NIL sink


def test_golden_prefix_tree_written_by_hand():
    """Responses ab, ab, abc, b with a=0, b=1, c=2, depth 2 (docs/theory.md §2)."""
    tree = build_tree([[0, 1], [0, 1], [0, 1, 2], [1]], depth=2, mode="prefix")
    # root; depth 1: a(3) b(1); depth 2: ab(3)
    assert tree.tokens.tolist() == [-1, 0, 1, 1]
    assert tree.parents.tolist() == [-1, 0, 0, 1]
    assert tree.counts.tolist() == [4, 3, 1, 3]
    assert tree.eos_counts.tolist() == [0, 0, 1, 2]
    s = tree.symbols()
    got = sorted((tree.symbol_path(i, s), int(m)) for i, m in enumerate(s.mass))
    assert got == [((0, 1), 1), ((0, 1, "EOS"), 2), ((1, "EOS"), 1)]


def test_golden_chunk_and_window_trees_written_by_hand():
    """Response abcab (a=0, b=1, c=2) at depth 2."""
    chunk = build_tree([[0, 1, 2, 0, 1]], depth=2, mode="chunk")
    # blocks: ab (continues), ca (continues), b+EOS
    assert chunk.total_mass == 3
    assert (chunk.count([0, 1]), chunk.eos_count([0, 1])) == (1, 0)
    assert (chunk.count([2, 0]), chunk.eos_count([2, 0])) == (1, 0)
    assert (chunk.count([1]), chunk.eos_count([1])) == (1, 1)
    window = build_tree([[0, 1, 2, 0, 1]], depth=2, mode="window")
    # windows: ab, bc, ca, ab+EOS, b+EOS
    assert window.total_mass == 5
    assert (window.count([0, 1]), window.eos_count([0, 1])) == (2, 1)
    assert (window.count([1]), window.eos_count([1])) == (2, 1)
    assert window.count([1, 2]) == 1 and window.count([2, 0]) == 1


def test_a_response_of_exactly_d_tokens_is_not_a_longer_one():
    tree = build_tree([[0, 1], [0, 1, 2]], depth=2, mode="prefix")
    s = tree.symbols()
    assert len(s) == 2 and s.ends.tolist() == [True, False]


def test_token_weighting_counts_dataset_tokens():
    tree = build_tree([[0, 1, 2], [0]], depth=2, mode="prefix", weight="tokens")
    assert tree.total_mass == 4 and tree.count([0, 1]) == 3


def test_binary_alphabet_expands_ids_msb_first():
    tree = build_tree([[5], [4]], depth=3, mode="prefix", alphabet="binary", vocab_size=8)
    assert tree.vocab_size == 2 and tree.info.source_vocab_size == 8
    assert tree.count([1, 0]) == 2 and tree.count([1, 0, 1]) == 1 and tree.count([1, 0, 0]) == 1


def test_flat_array_with_offsets_and_list_of_arrays_agree():
    flat = np.array([1, 2, 3, 4, 5], dtype=np.int64)
    a = build_tree(flat, offsets=[0, 2, 5], depth=3)
    b = build_tree([np.array([1, 2]), np.array([3, 4, 5])], depth=3)
    c = build_tree([[1, 2], [3, 4, 5]], depth=3)
    assert a == b == c


@pytest.mark.parametrize(
    ("data", "kwargs", "error", "match"),
    [
        ([], {}, InputError, "dataset is empty"),
        ([[1], []], {}, InputError, "1 of 2 sequences are empty"),
        ([[1, -2]], {}, InputError, "must be >= 0; sequence 0 has id -2 at position 1"),
        ([[1, 7]], {"vocab_size": 5}, InputError, "must be < vocab_size = 5; sequence 0 has id 7"),
        ([[1, 2**33]], {}, InputError, r"must be < 2\*\*31 .* sequence 0 has id 8589934592 at position 1"),
        ([[1]], {"vocab_size": 2**31 + 1}, InputError, r"vocab_size must be an integer from 1 to 2\*\*31"),
        ([np.array([1.0, 2.0])], {}, InputTypeError, "dtype float64; token ids must be an integer"),
        ([np.array([1, "a"], dtype=object)], {}, InputTypeError, "dtype object"),
        ([[1, 2]], {"depth": 0}, InputError, "depth must be >= 1"),
        ([[1, 2]], {"mode": "suffix"}, InputError, "mode must be one of"),
        (np.array([1, 2]), {}, InputError, "needs offsets="),
        ("hello", {}, InputTypeError, "tokenize it first"),
    ],
)
def test_bad_input_gets_a_clear_error(data, kwargs, error, match):
    kwargs = {"depth": 2, **kwargs}
    with pytest.raises(error, match=match):
        build_tree(data, **kwargs)


def test_a_build_over_the_memory_estimate_is_refused_unless_forced():
    seqs = [[1, 2, 3, 4]] * 100
    with pytest.raises(MemoryEstimateError, match=r"needs an estimated .* GiB .*force=True"):
        build_tree(seqs, depth=4, mode="window", memory_limit_bytes=1000)
    forced = build_tree(seqs, depth=4, mode="window", memory_limit_bytes=1000, force=True)
    assert forced.total_mass == 400
    from tokentree.trees.build import estimate_build_bytes

    # window mode makes no occurrence arrays: 32 bytes a window instead of 48 an occurrence
    assert estimate_build_bytes(10**6, 0, 1, "prefix") - estimate_build_bytes(10**6, 0, 1, "window") == 16 * 10**6


def test_progress_bar_is_drawn_only_when_asked(capsys):
    build_tree([[1, 2, 3]], depth=2, mode="window", show_progress=False)
    assert capsys.readouterr().err == ""
    build_tree([[1, 2, 3]], depth=2, mode="window", show_progress=True)
    assert "building tree" in capsys.readouterr().err
