"""Rates, zero-mass handling, joint compression, Pareto fits and whole-dataset coding."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from tokentree import InputError, build_tree
from tokentree.compression import (
    ZeroModelMassWarning,
    code_lengths,
    compression_rate,
    cross_entropy,
    entropy,
    fit_pareto,
    joint_compression,
    kl_divergence,
)
from tokentree.data.synthetic import pareto_masses
from tokentree.data.text import builtin_texts, encode_texts, gpt2_tokenizer
from tokentree.trees.combine import align_symbols
from tokentree.trees.dataset_codes import decode_dataset, encode_dataset


def test_cross_entropy_is_entropy_plus_kl():
    p, q = [0.5, 0.3, 0.2], [0.2, 0.2, 0.6]
    assert cross_entropy(p, q) == pytest.approx(entropy(p) + kl_divergence(p, q), rel=1e-12)
    assert cross_entropy(p, q, base=math.e) == pytest.approx(cross_entropy(p, q) * math.log(2), rel=1e-12)


def test_zero_model_mass_is_an_explicit_infinity_never_nan():
    with pytest.warns(ZeroModelMassWarning, match="zero model mass"):
        assert cross_entropy([0.5, 0.5], [1.0, 0.0]) == math.inf
    with pytest.raises(InputError, match="smoothing=alpha"):
        kl_divergence([0.5, 0.5], [1.0, 0.0], on_zero="raise")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        smoothed = cross_entropy([0.5, 0.5], [1.0, 0.0], smoothing=0.01)
    assert math.isfinite(smoothed) and smoothed > 1


def test_mismatched_symbol_sets_are_rejected():
    with pytest.raises(InputError, match="align them on a shared symbol set"):
        cross_entropy([0.5, 0.5], [0.2, 0.3, 0.5])


def test_compression_rate_side_by_side():
    tree = build_tree(encode_texts(builtin_texts("pydoc")[:30], gpt2_tokenizer()), depth=4, vocab_size=50257)
    s = tree.symbols()
    r = compression_rate(s.mass, s.mass, s.length, depth=4, vocab_size=50257)
    assert r.kl_bits_per_symbol == 0.0
    assert r.rate_bits_per_symbol == pytest.approx(r.entropy_bits_per_symbol, rel=1e-12)
    assert r.entropy_bits_per_symbol <= r.huffman_rate_bits_per_symbol < r.entropy_bits_per_symbol + 1
    assert r.theorem_3_4_rate_bits_per_token >= r.huffman_rate_bits_per_token - 1e-9
    assert 0 < r.ratio_to_raw < 1
    lengths = code_lengths(s.mass, s.length, depth=4)
    assert lengths.huffman_bits.shape == lengths.ideal_bits.shape == (len(s),)
    assert np.all(np.abs(lengths.huffman_bits - lengths.ideal_bits) < lengths.ideal_bits + 1)


def test_joint_compression_matches_the_mixture_definition():
    a = build_tree([[1, 2], [1, 3], [2]], depth=2)
    b = build_tree([[1, 2], [4]], depth=2)
    al = align_symbols([a, b])
    jc = joint_compression(al.masses, sizes=[10, 1], symbol_lengths=al.symbols.length)
    q = (10 * al.distributions()[0] + al.distributions()[1]) / 11
    np.testing.assert_allclose(jc.mixture, q, rtol=1e-12)
    np.testing.assert_allclose(jc.rate_bits_per_symbol, jc.entropy_bits_per_symbol + jc.kl_bits_per_symbol,
                               rtol=1e-12)
    assert jc.kl_bits_per_symbol[0] < jc.kl_bits_per_symbol[1]  # the big dataset is compressed better


def test_pareto_fit_recovers_alpha_from_a_tree():
    """Leaf counts of a large sample from Pareto(1.5) leaf masses: alpha fitted near the truth."""
    rng = np.random.default_rng(0)
    x = rng.pareto(1.5, 50_000) + 1.0
    fit = fit_pareto(x)
    assert fit.alpha == pytest.approx(1.5, abs=0.1) and fit.ks_statistic < 0.05
    masses = pareto_masses(1000, 2.0, rng=0)
    assert fit_pareto(masses / masses.min()).alpha > 1


def test_dataset_encode_decode_round_trip_on_real_text():
    seqs = encode_texts(builtin_texts("pydoc")[:25], gpt2_tokenizer())
    tree = build_tree(seqs, depth=4, mode="chunk", vocab_size=50257)
    bits = encode_dataset(tree, seqs)
    assert decode_dataset(tree, bits) == seqs
    s = tree.symbols()
    ideal = float(-(s.mass * np.log2(s.mass / s.mass.sum())).sum())
    assert ideal <= bits.n_bits < ideal + len(s) + s.total_mass
    with pytest.raises(InputError, match="not in the model tree"):
        encode_dataset(tree, [[50000, 50001]])
