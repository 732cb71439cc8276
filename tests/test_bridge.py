"""The torch bridge: scorers, the count model of a token tree, entropy coding, SmolLM2 offline."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tokentree.bridge.coding import decode_tokens, encode_tokens
from tokentree.bridge.scoring import NextTokenModel, TokenScorer, UniformScorer, measure_rate
from tokentree.bridge.tree_model import fit_tree_model, tree_conditional_bits
from tokentree.data.synthetic import markov_corpus
from tokentree.infra.errors import InputError

DATA = markov_corpus(400, vocab_size=24, rng=3)
HELD_OUT = markov_corpus(60, vocab_size=24, rng=3).select(np.arange(40, 60))


def test_uniform_logits_cost_exactly_log2_v_bits_per_token():
    r = measure_rate(UniformScorer(50257), DATA, texts=["x" * 10] * DATA.n_sequences)
    assert r.bits_per_token == pytest.approx(math.log2(50257), rel=1e-15)
    assert r.n_tokens == DATA.n_tokens and r.bits_per_byte == pytest.approx(r.total_bits / (10 * DATA.n_sequences))


def test_models_fit_the_protocols():
    model = fit_tree_model(DATA, depth=2, vocab_size=24)
    for m in (UniformScorer(24), model):
        assert isinstance(m, TokenScorer) and isinstance(m, NextTokenModel)


def test_unigram_tree_model_is_the_empirical_token_entropy():
    """d = 1, no smoothing: the code length is N H(token counts), computed here with bincount."""
    model = fit_tree_model(DATA, depth=1, vocab_size=24, discount=0.0)
    counts = np.bincount(DATA.tokens, minlength=24).astype(float)
    p = counts[counts > 0] / counts.sum()
    expected = -float((counts[counts > 0] * np.log2(p)).sum())
    assert measure_rate(model, DATA).total_bits == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("depth", [1, 2, 3, 5])
def test_count_model_reproduces_the_trees_ideal_code_length(depth):
    """Maximum likelihood on its own data: sum of -log2 p equals the tree's conditional entropy."""
    model = fit_tree_model(DATA, depth=depth, vocab_size=24, discount=0.0)
    assert measure_rate(model, DATA).total_bits == pytest.approx(tree_conditional_bits(model), rel=1e-12)


def test_deeper_context_models_fit_training_data_better_and_smoothing_handles_new_text():
    rates = [
        measure_rate(fit_tree_model(DATA, depth=d, vocab_size=24, discount=0.0), DATA).bits_per_token for d in (1, 2, 3)
    ]
    assert rates[0] > rates[1] > rates[2]
    with pytest.raises(InputError, match="discount > 0"):
        measure_rate(fit_tree_model(DATA, depth=4, vocab_size=24, discount=0.0), markov_corpus(5, vocab_size=24, rng=9))
    smooth = measure_rate(fit_tree_model(DATA, depth=4, vocab_size=24), HELD_OUT)
    assert 0 < smooth.bits_per_token < math.log2(24)


def test_next_token_distribution_matches_the_scored_probabilities():
    model = fit_tree_model(DATA, depth=3, vocab_size=24)
    seq = HELD_OUT[0]
    scored = model.token_log_probs([seq])[0]
    for i in range(len(seq)):
        p = model.next_token_probs(seq[:i])
        assert p.sum() == pytest.approx(1.0, abs=1e-12) and np.all(p > 0)
        assert math.log(p[seq[i]]) == pytest.approx(scored[i], abs=1e-12)


def test_range_coding_round_trip_within_a_few_bits_of_ideal():
    model = fit_tree_model(DATA, depth=3, vocab_size=24)
    coded = encode_tokens(model, HELD_OUT)
    decoded = decode_tokens(model, coded)
    assert all(np.array_equal(a, b) for a, b in zip(decoded, HELD_OUT, strict=True))
    ideal = measure_rate(model, HELD_OUT).total_bits
    assert coded.ideal_bits == pytest.approx(ideal, rel=1e-9)
    assert ideal <= coded.n_bits <= ideal + 64 + 1e-3 * ideal


def test_bad_input_is_named():
    with pytest.raises(InputError, match="sequence 1 is empty"):
        measure_rate(UniformScorer(8), [[1], []])
    with pytest.raises(InputError, match=r"outside the model.s vocabulary 0\.\.7"):
        measure_rate(UniformScorer(8), [[1, 9]])


# ----------------------------------------------------------------------------- SmolLM2 (offline)
@pytest.fixture(scope="module")
def smollm2():
    from tokentree.bridge.hf import HFScorer, load_smollm2

    model, tokenizer = load_smollm2()
    return HFScorer(model, bos_token_id=tokenizer.bos_token_id), tokenizer


def test_smollm2_loads_offline_and_knows_paris(smollm2):
    scorer, tok = smollm2
    good = np.array(tok("The capital of France is Paris.")["input_ids"])
    bad = np.array(tok("The capital of France is banana.")["input_ids"])
    lp_good, lp_bad = scorer.token_log_probs([good, bad])
    assert lp_good.shape == good.shape and lp_bad.shape == bad.shape
    assert lp_good.sum() > lp_bad.sum() + 10  # nats
    p = scorer.next_token_probs(good[:-2])
    assert math.log(p[good[-2]]) == pytest.approx(lp_good[-2], abs=1e-4)


def test_long_texts_are_windowed_not_truncated(smollm2):
    from tokentree.bridge.hf import HFScorer

    scorer, tok = smollm2
    ids = np.array(tok("The quick brown fox jumps over the lazy dog. " * 4)["input_ids"])
    full = scorer.token_log_probs([ids])[0]
    narrow = HFScorer(scorer.model, bos_token_id=tok.bos_token_id, max_context=16, stride=8)
    windowed = narrow.token_log_probs([ids])[0]
    assert windowed.shape == full.shape == ids.shape
    assert np.allclose(windowed[:15], full[:15], atol=1e-4)  # the first window sees the same context
    assert not np.allclose(windowed[15:], full[15:], atol=1e-4)  # later tokens see 8-15 tokens, not all


def test_vocabulary_mismatch_and_missing_model_file(smollm2, tmp_path):
    from tokentree.bridge.hf import load_causal_lm

    scorer, _ = smollm2
    gpt2_ids = np.array([15496, 995, 50256])  # GPT-2's "Hello world<|endoftext|>"
    with pytest.raises(InputError, match="outside the model's vocabulary"):
        scorer.token_log_probs([gpt2_ids])
    with pytest.raises(InputError, match="does not exist"):
        load_causal_lm(tmp_path / "missing.gguf")
    with pytest.raises(InputError, match="HF_HUB_OFFLINE"):
        load_causal_lm("someone/some-model")


def test_measured_vs_theory_quick_run(quick_runs):
    """E3 in miniature: SmolLM2 and the tree models score the same held-out text; coding round-trips."""
    import json

    folder = quick_runs["measured-vs-theory"]
    saved = json.loads((folder / "result.json").read_text())
    rows = saved["records"]
    assert [(r["dataset"], r["depth"]) for r in rows] == [(d, n) for d in ("D_p", "D_a", "D_t") for n in (1, 2, 3)]
    for r in rows:
        assert 0 < r["model_bits_per_token"] < r["raw_bits_per_token"]
        if r["depth"] == 1:
            assert r["tree_bits_per_token"] > r["model_bits_per_token"]  # a unigram model is far worse
    assert all(
        c["decoded_exactly"] and 0 <= c["n_bits"] - c["ideal_bits"] <= 64 + 0.01 * c["ideal_bits"]
        for c in saved["tables"]["coding"]
    )
    assert (folder / "bits_vs_depth.png").stat().st_size > 10_000
