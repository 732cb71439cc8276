"""The model stack: the tiny Llama and its tokenizer as a Hugging Face model folder, loading, scoring
with contexts, and range coding from the KV cache."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from tokentree.bridge.coding import decode_tokens, encode_tokens
from tokentree.bridge.hf import HFScorer, load_causal_lm, load_model
from tokentree.bridge.scoring import cursor, measure_rate
from tokentree.bridge.tiny import (
    DEFAULT_SYSTEM_PROMPT,
    SPECIAL_TOKENS,
    TinySpec,
    save_model,
    tiny_llama,
    tiny_scorer,
    train_tiny_tokenizer,
)
from tokentree.data.language import BehaviourLanguage
from tokentree.infra.errors import InputError, OutputPathError

LANG = BehaviourLanguage(seed=0)
TEXTS = LANG.pretraining_text(300, seed=0)
SPEC = TinySpec(vocab_size=400, n_layers=1, d_model=32, n_heads=2, context=24)


@pytest.fixture(scope="module")
def tokenizer():
    return train_tiny_tokenizer(TEXTS, 400)


def _bytes(model) -> dict[str, bytes]:
    return {k: v.numpy().tobytes() for k, v in model.state_dict().items()}


def test_same_seed_same_weights_and_the_class_the_field_uses():
    a, b, c = tiny_llama(SPEC, seed=3), tiny_llama(SPEC, seed=3), tiny_llama(SPEC, seed=4)
    assert type(a).__name__ == "LlamaForCausalLM" and a.config.tie_word_embeddings
    assert _bytes(a) == _bytes(b) and _bytes(a) != _bytes(c)
    assert a.config.intermediate_size == 88  # 8/3 of 32, rounded up to a multiple of 8
    with pytest.raises(InputError, match="even head width"):
        TinySpec(vocab_size=10, d_model=30, n_heads=2)


def test_the_tokenizer_has_special_tokens_and_a_chat_template(tokenizer):
    assert [tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS] == [0, 1, 2, 3, 4]
    assert (tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id) == (0, 1, 2)
    chat = [{"role": "user", "content": "how do i bake my bread ?"}]
    text = tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)
    assert text == (f"<|im_start|>system\n{DEFAULT_SYSTEM_PROMPT}<|im_end|>\n<|im_start|>user\nhow do i bake my "
                    "bread ?<|im_end|>\n<|im_start|>assistant\n")
    ids = tokenizer(TEXTS[0], add_special_tokens=False)["input_ids"]
    assert tokenizer.decode(ids) == TEXTS[0]


def test_the_model_folder_round_trips_with_identical_logits(tmp_path, tokenizer):
    model = tiny_llama(SPEC, seed=1)
    folder = save_model(model, tokenizer, tmp_path / "tiny")
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= {p.name for p in folder.iterdir()}
    loaded, loaded_tok = load_causal_lm(folder)
    ids = torch.tensor([tokenizer(TEXTS[1], add_special_tokens=False)["input_ids"][:20]])
    with torch.inference_mode():
        assert torch.equal(model(input_ids=ids).logits, loaded(input_ids=ids).logits)
    assert loaded_tok.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False).startswith(
        "<|im_start|>system"
    )
    again, _ = load_model(str(folder), device="cpu")
    assert _bytes(again) == _bytes(model)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    with pytest.raises(OutputPathError, match="notes"):
        save_model(model, tokenizer, tmp_path / "mine")


def test_what_is_not_a_causal_lm_is_named(tmp_path, monkeypatch):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match=r"no config\.json"):
        load_causal_lm(empty)
    bad = tmp_path / "vision"
    bad.mkdir()
    (bad / "config.json").write_text(json.dumps({"model_type": "resnet"}))
    with pytest.raises(InputError, match="not a causal language model"):
        load_causal_lm(bad)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(InputError, match="HF_HUB_OFFLINE=1"):
        load_causal_lm("someone/some-model")
    with pytest.raises(InputError, match="device must be one of"):
        load_model("smollm2", device="tpu")


def test_a_response_is_scored_given_its_context(tokenizer):
    model = tiny_llama(SPEC, seed=2)
    scorer = HFScorer(model, bos_token_id=0, max_context=24, stride=12)
    full = np.asarray(tokenizer(" ".join(TEXTS[2:5]), add_special_tokens=False)["input_ids"][:22])
    context, response = full[:10], full[10:]
    whole = scorer.token_log_probs([full])[0]
    given = scorer.token_log_probs([response], [context])[0]
    np.testing.assert_allclose(given, whole[10:], rtol=1e-10)  # one window either way: the same numbers
    long = np.asarray(tokenizer(" ".join(TEXTS[:8]), add_special_tokens=False)["input_ids"][:70])
    scored = scorer.token_log_probs([long[30:]], [long[:30]])[0]
    assert scored.shape == (40,) and np.all(np.isfinite(scored)) and np.all(scored < 0)
    assert measure_rate(scorer, [response], contexts=[context]).n_tokens == response.shape[0]
    with pytest.raises(InputError, match="one context per sequence"):
        scorer.token_log_probs([response, response], [context])


def test_restricted_vocabularies_are_proper_distributions():
    model = tiny_llama(TinySpec(vocab_size=9), seed=0, bos_token_id=8, eos_token_id=8, pad_token_id=8)
    scorer = tiny_scorer(model, n_scored_tokens=8)
    probs = scorer.next_token_probs(np.array([1, 2, 3]))
    assert probs.shape == (8,) and probs.sum() == pytest.approx(1.0, abs=1e-12)
    logp = scorer.token_log_probs([np.arange(8)])[0]
    for i in range(8):
        step = scorer.next_token_probs(np.arange(i))
        assert logp[i] == pytest.approx(np.log(step[i]), rel=1e-5)


def test_the_kv_cursor_gives_the_re_forward_distributions_and_codes_exactly(tokenizer):
    model = tiny_llama(SPEC, seed=5)
    scorer = HFScorer(model, bos_token_id=0, max_context=24, stride=12)
    seq = np.asarray(tokenizer(" ".join(TEXTS[:3]), add_special_tokens=False)["input_ids"][:60])
    reader = cursor(scorer)
    for i, token in enumerate(seq.tolist()):
        got = reader.probs()
        if i < 23:  # inside the first window the cache sees exactly what a re-forward sees
            np.testing.assert_allclose(got, scorer.next_token_probs(seq[:i]), rtol=1e-5, atol=1e-9)
        reader.push(token)
    coded = encode_tokens(scorer, [seq, seq[:7]])  # 60 tokens: the cache is rebuilt past the context
    assert [s.tolist() for s in decode_tokens(scorer, coded)] == [seq.tolist(), seq[:7].tolist()]
    ideal = -float(sum(lp.sum() for lp in scorer.token_log_probs([seq[:23]]))) / np.log(2)
    assert encode_tokens(scorer, [seq[:23]]).ideal_bits == pytest.approx(ideal, rel=1e-5)
