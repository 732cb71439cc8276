"""Theorem 4.2: the Hooke identity, R(l), l*, the controls, and precision (docs/theory.md §5)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from tests.strategies import probability_vectors
from tokentree import InputError, build_tree
from tokentree.compression import (
    disjoint_closed_form,
    finite_step_identity,
    l_star_disjoint,
    perturbation_setting,
    rate_derivatives,
    ratio_disjoint,
    simulate_perturbation,
)
from tokentree.compression.symbolic import derive_identity, derive_l_star, derive_ratio
from tokentree.data.scenario import sample_scenario, scenario_sources
from tokentree.data.synthetic import markov_corpus
from tokentree.data.text import builtin_texts, encode_texts, gpt2_tokenizer
from tokentree.trees.combine import align_symbols

BETAS = (0.5, 0.3, 0.2)


def disjoint_setting(k, betas=BETAS, sizes=(3, 4, 5), seed=0):
    """D_1, D_2, D_3 on disjoint symbol blocks; D_a = D_2, D_t = D_3 exactly."""
    rng = np.random.default_rng(seed)
    n = sum(sizes)
    parts = []
    at = 0
    for s in sizes:
        v = np.zeros(n)
        v[at : at + s] = rng.random(s) + 0.1
        parts.append(v / v.sum())
        at += s
    return perturbation_setting(parts, parts[1], parts[2], k=k, betas=betas, depth=2), parts


@given(probability_vectors(3, 40), probability_vectors(3, 40), probability_vectors(3, 40),
       st.floats(1.0, 1e9), st.floats(0.0, 10.0, allow_subnormal=False))
def test_identity_holds_for_random_distributions(p, a, t, k, l):
    n = min(len(p), len(a), len(t))
    normalised = [np.asarray(x[:n]) / sum(x[:n]) for x in (p, a, t)]
    assume(not (np.array_equal(normalised[0], normalised[1]) and np.array_equal(normalised[1], normalised[2])))
    s = perturbation_setting(p[:n], a[:n], t[:n], k=k)
    r = simulate_perturbation(s, [l])
    assert r.identity_residual[0] < 1e-9


@pytest.mark.parametrize("k", [10.0, 1e2, 1e3, 1e4, 1e5, 1e6])
def test_ratio_at_l0_is_minus_k(k):
    s, _ = disjoint_setting(k)
    r = simulate_perturbation(s, [0.0])
    assert r.ratio[0] == pytest.approx(-k, rel=1e-6)
    assert r.d_rate_pretrain_bits[0] < 0 < r.d_rate_align_bits[0]


@pytest.mark.parametrize("k", [10.0, 1e3, 1e6, 1e9])
def test_precision_for_huge_k_and_tiny_masses(k):
    """Relative 1e-9 for k up to 1e9 with masses down to 1e-300 (generic, overlapping supports)."""
    rng = np.random.default_rng(1)
    p, a, t = (rng.random(60) for _ in range(3))
    p[:20] = 1e-300
    a[20:25] = 1e-300
    r = simulate_perturbation(perturbation_setting(p, a, t, k=k), [0.0, 1e-6, 0.3, 5.0])
    assert np.all(np.isfinite(r.ratio))
    assert r.identity_residual.max() < 1e-9
    assert r.ratio[0] == pytest.approx(-k, rel=1e-9)


def test_ratio_and_l_star_match_the_closed_form():
    k = 1000.0
    s, parts = disjoint_setting(k)
    ls = np.array([0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0, 3.0])
    r = simulate_perturbation(s, ls)
    np.testing.assert_allclose(r.ratio, ratio_disjoint(k, BETAS, ls), rtol=1e-9)
    assert r.l_star == pytest.approx(l_star_disjoint(BETAS), rel=1e-9)
    entropies = [float(-(p[p > 0] * np.log2(p[p > 0])).sum()) for p in parts]  # bits
    cf = disjoint_closed_form(k, BETAS, entropies, ls, depth=2)
    np.testing.assert_allclose(r.rate_align_bits, cf.rate_align_bits, rtol=1e-10)
    np.testing.assert_allclose(r.rate_pretrain_bits, cf.rate_pretrain_bits, rtol=1e-10)
    np.testing.assert_allclose(r.d_rate_pretrain_bits, cf.d_rate_pretrain_bits, rtol=1e-9, atol=1e-18)
    # signs flip at l*: gamma_p falls before it and rises after
    before, after = ls < r.l_star, ls > r.l_star
    assert np.all(r.d_rate_pretrain_bits[before] < 0) and np.all(r.d_rate_pretrain_bits[after] > 0)
    assert np.all(r.ratio[before] < 0) and np.all(r.ratio[after] > 0)


def test_closed_form_matches_sympy():
    ratio, l_star = derive_ratio(), derive_l_star()
    for k, l, b2, b3 in [(10.0, 0.0, 0.3, 0.2), (1e4, 0.1, 0.2, 0.5), (50.0, 2.0, 0.6, 0.1)]:
        assert ratio.function(k, l, b2, b3) == pytest.approx(
            float(ratio_disjoint(k, (1 - b2 - b3, b2, b3), l)), rel=1e-12)
        assert l_star.function(b3) == pytest.approx(l_star_disjoint((1 - b2 - b3, b2, b3)), rel=1e-12)


def test_sympy_derives_the_identity_as_zero():
    d = derive_identity(3)
    assert d.expression == 0


def test_novel_perturbation_gives_ratio_plus_one():
    """Control 4: D_t on symbols absent from D_p and D_a -> both rates rise together, R = +1."""
    p = np.array([0.5, 0.5, 0, 0])
    a = np.array([0.2, 0.8, 0, 0])
    t = np.array([0, 0, 0.3, 0.7])
    r = simulate_perturbation(perturbation_setting(p, a, t, k=100.0, depth=2), [0.0, 0.01, 1.0])
    np.testing.assert_allclose(r.ratio, 1.0, rtol=1e-12)
    assert np.all(r.d_rate_pretrain_bits > 0) and np.all(r.d_rate_align_bits > 0)


def test_perturbation_overlapping_alignment_can_lower_gamma_a():
    """Control 5: D_t concentrated on D_a's symbols -> d gamma_a/dl < 0."""
    p = np.array([0.7, 0.2, 0.1])
    a = np.array([0.1, 0.8, 0.1])
    t = np.array([0.0, 1.0, 0.0])
    d = rate_derivatives(perturbation_setting(p, a, t, k=10.0), 0.5)
    assert d[1] < 0


def test_finite_step_identity_and_its_sign():
    s, _ = disjoint_setting(200.0)
    for l0, l1 in [(0.0, 0.1), (0.1, 2.0), (1.0, 0.5)]:
        left, right = finite_step_identity(s, l0, l1)
        assert right >= 0
        assert left == pytest.approx(right, rel=1e-9, abs=1e-12)


def test_ratio_is_independent_of_depth_with_ideal_codes():
    """Consequence 6: R(0) does not depend on d; magnitudes scale as 1/d."""
    _, parts = disjoint_setting(100.0)
    r1 = simulate_perturbation(perturbation_setting(parts, parts[1], parts[2], k=100.0, betas=BETAS, depth=1), [0.0])
    r4 = simulate_perturbation(perturbation_setting(parts, parts[1], parts[2], k=100.0, betas=BETAS, depth=4), [0.0])
    assert r1.ratio[0] == pytest.approx(r4.ratio[0], rel=1e-12)
    assert r1.d_rate_align_bits[0] == pytest.approx(4 * r4.d_rate_align_bits[0], rel=1e-12)


def test_huffman_rates_are_piecewise_constant():
    """Consequence 7: a small step in l changes ideal rates but often not Huffman ones."""
    s, _ = disjoint_setting(1000.0)
    r = simulate_perturbation(s, [0.0, 1e-4])
    assert r.rate_align_bits[0] != r.rate_align_bits[1]
    assert r.huffman_rate_align_bits[0] == r.huffman_rate_align_bits[1]


def _empirical_setting(depth, seed=0):
    d1, d2, d3 = (markov_corpus(3000, vocab_size=32, concentration=0.5, rng=seed + i) for i in range(3))
    da = markov_corpus(300, vocab_size=32, concentration=0.5, rng=seed + 1)  # like D_2 (same chain)
    dt = markov_corpus(300, vocab_size=32, concentration=0.5, rng=seed + 2)  # like D_3
    trees = [build_tree(x, depth=depth, mode="prefix", vocab_size=32) for x in (d1, d2, d3, da, dt)]
    al = align_symbols(trees)
    lengths = al.symbols.length
    return perturbation_setting(al.masses[:3], al.masses[3], al.masses[4], k=30.0, betas=(1 / 3,) * 3,
                                symbol_lengths=lengths, depth=depth)


def test_very_deep_sparse_empirical_trees_break_the_effect():
    """Consequence 8: at depth 1 the signs hold; at depth 12 D_t's leaves are unseen in D_3, so
    the perturbation looks novel and gamma_p rises instead of falling."""
    shallow = simulate_perturbation(_empirical_setting(1), [0.01])
    deep = simulate_perturbation(_empirical_setting(12), [0.01])
    assert shallow.d_rate_pretrain_bits[0] < 0 < shallow.d_rate_align_bits[0]
    assert deep.d_rate_pretrain_bits[0] > 0 and deep.ratio[0] > 0
    assert deep.identity_residual[0] < 1e-9  # the identity itself still holds


def test_identity_on_trees_from_real_text():
    texts = builtin_texts("pydoc")
    seqs = encode_texts(texts, gpt2_tokenizer())
    parts = [seqs.select(range(i, seqs.n_sequences, 4)) for i in range(3)]
    rest = seqs.select(range(3, seqs.n_sequences, 4))
    align = rest
    perturb = parts[2].select(range(0, parts[2].n_sequences, 3))  # drawn from D_3, so D_p covers it
    trees = [build_tree(x, depth=3, mode="chunk", vocab_size=50257) for x in (*parts, align, perturb)]
    al = align_symbols(trees)
    s = perturbation_setting(al.masses[:3], al.masses[3], al.masses[4], k=1e4, betas=BETAS,
                             symbol_lengths=al.symbols.length, depth=3)
    r = simulate_perturbation(s, [0.0, 0.05, 1.0])
    assert r.identity_residual.max() < 1e-9
    assert r.ratio[0] == pytest.approx(r.minus_k_scaled, rel=1e-9)


def test_scenario_sources_reproduce_minus_k_in_disjoint_case():
    src = scenario_sources(depth=3, n_leaves=50, rng=0)
    sample = sample_scenario(src, n_pretrain=2000, n_align=200, n_perturb=50, rng=1)
    trees = [build_tree(x, depth=3, mode="prefix") for x in (*sample.parts, sample.align, sample.perturb)]
    al = align_symbols(trees)
    s = perturbation_setting(al.masses[:3], al.masses[3], al.masses[4], k=10.0, betas=BETAS, depth=3)
    r = simulate_perturbation(s, [0.0])
    assert r.ratio[0] == pytest.approx(-10.0, rel=1e-9)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"k": -1.0}, "k must be"), ({"k": float("nan")}, "k must be"),
     ({"k": 1.0, "align": [1.0, -1.0, 0.0]}, "negative masses"),
     ({"k": 1.0, "align": [1.0, 1.0]}, "share one symbol set"),
     ({"k": 1.0, "perturb": [np.nan, 1.0, 1.0]}, "NaN or infinite")],
)
def test_bad_settings_are_rejected(kwargs, match):
    base = {"pretrain": [1.0, 1.0, 1.0], "align": [1.0, 0.0, 0.0], "perturb": [0.0, 0.0, 1.0]}
    base.update(kwargs)
    k = base.pop("k")
    with pytest.raises(InputError, match=match):
        perturbation_setting(base["pretrain"], base["align"], base["perturb"], k=k)


def test_bad_l_values_are_rejected():
    s, _ = disjoint_setting(10.0)
    with pytest.raises(InputError, match="l_values"):
        simulate_perturbation(s, [-0.1])


def test_result_converts_to_plain_json():
    import json

    s, _ = disjoint_setting(10.0)
    d = simulate_perturbation(s, [0.0, 0.25, 1.0]).to_dict()
    text = json.dumps(d)
    assert "NaN" not in text and d["k"] == 10.0 and len(d["ratio"]) == 3
