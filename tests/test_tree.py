"""TokenTree: queries, statistics, iteration, exports, equality, immutability."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given

from tests.strategies import depths, modes, token_sequences
from tokentree import InputError, TokenTree, build_tree
from tokentree.trees.reference import reference_occurrences


def small_tree():
    return build_tree([[0, 1], [0, 1], [0, 1, 2], [1]], depth=3, mode="prefix")


@given(token_sequences(), depths, modes)
def test_count_of_any_prefix_matches_a_scan(seqs, depth, mode):
    tree = build_tree(seqs, depth=depth, mode=mode)
    occ = reference_occurrences(seqs, depth, mode)
    for path in [*[p.path for p in tree.iter_paths()][:20], (0, 0, 0), (9,)]:
        expected = sum(1 for piece, _, _ in occ if piece[: len(path)] == path)
        assert tree.count(path) == expected


@given(token_sequences(), depths, modes)
def test_iter_paths_visits_every_node_once_in_lexicographic_order(seqs, depth, mode):
    tree = build_tree(seqs, depth=depth, mode=mode)
    paths = [p.path for p in tree.iter_paths()]
    assert len(paths) == tree.n_nodes - 1
    assert paths == sorted(paths)
    assert all(tree.find(p) >= 0 for p in paths)


def test_layer_stats_by_hand():
    stats = small_tree().layer_stats()
    assert stats.nodes.tolist() == [1, 2, 1, 1]
    assert stats.mass.tolist() == [4, 4, 3, 1]
    assert stats.eos_mass.tolist() == [0, 1, 2, 1]
    # depth 1: prefixes a (3) and b (1) -> H(3/4, 1/4)
    h = -(0.75 * np.log2(0.75) + 0.25 * np.log2(0.25))
    assert stats.entropy_bits[1] == pytest.approx(h, rel=1e-12)
    assert stats.entropy_bits[0] == 0.0 and stats.entropy_bits[2] == 0.0


def test_to_networkx_has_every_node_and_edge_with_attributes():
    tree = small_tree()
    g = tree.to_networkx()
    assert g.number_of_nodes() == tree.n_nodes and g.number_of_edges() == tree.n_nodes - 1
    assert g.nodes[1] == {"token": 0, "count": 3, "eos": 0, "depth": 1}


def test_trees_are_immutable_and_compare_exactly():
    tree = small_tree()
    with pytest.raises(AttributeError, match="immutable"):
        tree.foo = 1
    with pytest.raises(ValueError, match="read-only"):
        tree.counts[0] = 7
    with pytest.raises(TypeError, match="build_tree"):
        TokenTree()
    assert tree == small_tree() and hash(tree) == hash(small_tree())
    assert tree != build_tree([[0, 1], [0, 1], [0, 1, 2], [2]], depth=3, mode="prefix")
    assert tree != build_tree([[0, 1], [0, 1], [0, 1, 2], [1]], depth=3, mode="chunk")


def test_prune_rejects_deeper_or_invalid_depths():
    with pytest.raises(InputError, match=r"prune only to depths 1\.\.3"):
        small_tree().prune(4)
    with pytest.raises(InputError, match="depth must be >= 1"):
        small_tree().prune(0)


def test_memory_is_about_4_bytes_per_node_resident():
    """uint16 token + uint8 flags (parent links derived) + uint8 count with a table of the counts of 255 or more, for
    a 32k vocabulary (issue 26; 16 bytes before, then 7); deepest-level EOS counts are stored sparsely."""
    from tokentree.data.synthetic import zipf_corpus

    tree = build_tree(zipf_corpus(200_000, rng=0), depth=8, mode="window")
    assert tree.n_nodes > 1_000_000
    assert tree.nbytes / tree.n_nodes <= 4.05
    stored = tree.stored_arrays
    assert (stored["tokens"].dtype, stored["flags"].dtype, stored["counts"].dtype) == (np.uint16, np.uint8, np.uint8)
    assert "parents" not in stored and tree.parents.dtype == np.int32
    large = np.flatnonzero(tree.counts >= 255)
    assert large.shape[0] > 10 and np.array_equal(stored["count_overflow_at"], large)
    assert np.array_equal(stored["count_overflow"], tree.counts[large]) and tree.count([]) == tree.total_mass


def test_counts_layout_is_canonical():
    """One byte per count while the table of large counts is smaller than dense counts, dense otherwise; however a
    tree's counts arrive (dense, narrow, or narrow where dense pays), equal counts give equal stored arrays."""
    from tokentree.trees.counts_layout import canonical_counts, narrow_counts, narrow_pays

    mostly_small = np.array([1000, 600, 300, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1])
    stored, at, big = narrow_counts(mostly_small)
    assert stored.dtype == np.uint8 and at.tolist() == [0, 1, 2] and big.tolist() == [1000, 600, 300]
    mostly_large = np.array([3000, 1000, 2000, 1])
    assert not narrow_pays(4, 3, 3000) and narrow_counts(mostly_large)[0].dtype == np.uint32
    forced = (np.minimum(mostly_large, 255).astype(np.uint8), np.array([0, 1, 2]), mostly_large[:3])
    dense, at, big = canonical_counts(*forced)
    assert dense.dtype == np.uint32 and dense.tolist() == mostly_large.tolist() and at.shape == big.shape == (0,)
    assert narrow_counts(np.array([2**40, 2**39]))[0].dtype == np.int64
    tree = build_tree([[1, 2, 3]] * 300 + [[4]], depth=3, mode="prefix")  # 4 nodes of 300 or more among 5: dense
    assert tree.stored_arrays["counts"].dtype == np.uint32 and tree.count([1, 2]) == 300
    assert tree.prune(1).count([1]) == 300 and tree.total_mass == 301


@given(token_sequences(), depths, modes)
def test_parent_links_derived_from_flags_equal_the_explicit_ones(seqs, depth, mode):
    """Flags -> parents -> flags round trip; child offsets from the flags equal searchsorted over the parents;
    a tree built with flags equals the same tree given explicit parent links (and has its digest)."""
    from tokentree.trees import _kernels

    tree = build_tree(seqs, depth=depth, mode=mode)
    parents = tree.parents
    assert np.array_equal(_kernels.flags_from_parents(parents), tree.stored_flags)
    assert np.array_equal(tree.child_offsets, np.searchsorted(parents, np.arange(tree.n_nodes + 1)))
    explicit = TokenTree._from_arrays(tokens=tree.tokens, parents=parents, counts=tree.counts,
                                      leaf_eos=tree.leaf_eos, level_offsets=tree.level_offsets, info=tree.info)
    assert explicit == tree and explicit.digest() == tree.digest()
    assert explicit.eos_counts.tolist() == tree.eos_counts.tolist()
    for d in range(1, depth + 1):
        assert explicit.prune(d) == tree.prune(d) and explicit.prune(d).digest() == tree.prune(d).digest()
        assert tree.prune(d).stored_flags is not None


def test_narrow_dtypes_widen_where_the_data_needs_it():
    """Ids of a vocabulary over 65,536 stay int32; counts summing past 2**32 are int64. Same answers either way."""
    from tokentree.trees.combine import scale_tree

    small = build_tree([[1, 2, 3], [1, 2], [4]], depth=2, mode="window")
    big_vocab = build_tree([[1, 2, 3], [1, 2], [4]], depth=2, mode="window", vocab_size=70_000)
    assert small.stored_tokens.dtype == np.uint16 and big_vocab.stored_tokens.dtype == np.int32
    assert big_vocab.tokens.tolist() == small.tokens.tolist() and big_vocab.tokens[0] == -1
    assert big_vocab.count([70_001]) == 0 and small.count([-1]) == 0 and small.count([70_001]) == 0
    huge = scale_tree(small, 2**31)  # total mass 6 * 2**31 > 2**32
    assert huge.stored_arrays["counts"].dtype == np.int64
    assert huge.counts.tolist() == [c * 2**31 for c in small.counts.tolist()]
    assert huge.symbols().mass.tolist() == [m * 2**31 for m in small.symbols().mass.tolist()]
    assert huge.eos_counts.tolist() == [c * 2**31 for c in small.eos_counts.tolist()]
    assert scale_tree(small, 1) == small and scale_tree(small, 1).digest() == small.digest()
