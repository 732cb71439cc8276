"""Sums, scaling, shared symbol sets and mixtures (docs/theory.md §4)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given

from tests.strategies import depths, modes, token_sequences
from tokentree import InputError, build_tree
from tokentree.trees.combine import align_symbols, mixture, scale_tree, sum_trees


@given(token_sequences(), token_sequences(), depths, modes)
def test_sum_of_trees_is_the_tree_of_the_concatenation(a, b, depth, mode):
    assert sum_trees([build_tree(a, depth=depth, mode=mode), build_tree(b, depth=depth, mode=mode)]) == (
        build_tree(a + b, depth=depth, mode=mode)
    )


@given(token_sequences(), depths, modes)
def test_scaling_is_repetition(a, depth, mode):
    assert scale_tree(build_tree(a, depth=depth, mode=mode), 3) == build_tree(a * 3, depth=depth, mode=mode)


@given(token_sequences(), token_sequences(), depths, modes)
def test_aligned_masses_keep_each_dataset_and_sum_to_the_union(a, b, depth, mode):
    ta, tb = build_tree(a, depth=depth, mode=mode), build_tree(b, depth=depth, mode=mode)
    aligned = align_symbols([ta, tb])
    assert aligned.masses[0].sum() == ta.total_mass and aligned.masses[1].sum() == tb.total_mass
    np.testing.assert_array_equal(aligned.masses.sum(axis=0), aligned.symbols.mass)
    assert sorted(aligned.masses[0][aligned.masses[0] > 0].tolist()) == sorted(ta.symbols().mass.tolist())


@given(token_sequences(), token_sequences(), depths)
def test_mixture_is_normalised_and_size_weighted(a, b, depth):
    ta, tb = build_tree(a, depth=depth), build_tree(b, depth=depth)
    m = mixture([ta, tb], sizes=[2.0, 5.0])
    assert m.probabilities.sum() == pytest.approx(1.0, abs=1e-12)
    np.testing.assert_allclose(m.probabilities, (2 * m.components[0] + 5 * m.components[1]) / 7, rtol=1e-12)
    default = mixture([ta, tb])
    union = sum_trees([ta, tb])
    np.testing.assert_allclose(default.probabilities, union.symbols().probabilities(), rtol=1e-12)


def test_incompatible_trees_are_rejected():
    with pytest.raises(InputError, match="tree 1 has depth=3 but tree 0 has 2"):
        sum_trees([build_tree([[1]], depth=2), build_tree([[1]], depth=3)])
    with pytest.raises(InputError, match="mode='window'"):
        mixture([build_tree([[1]], depth=2), build_tree([[1]], depth=2, mode="window")])
    with pytest.raises(InputError, match="non-negative integer"):
        scale_tree(build_tree([[1]], depth=2), 0.5)
    with pytest.raises(InputError, match="one entry per tree"):
        mixture([build_tree([[1]], depth=2)], sizes=[1, 2])
