"""The piggyback experiment on trained models: prompt parts, patched scoring, TReFT, and a SmolLM2 smoke test."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch

from tokentree.data.chat import tokenize_chats
from tokentree.data.language import BehaviourLanguage
from tokentree.lab.template_prefix import (
    NO_SYSTEM_TEMPLATE,
    PromptParts,
    RetainKL,
    TokenSwap,
    TReFT,
    nearest_tokens,
    part_masks,
    prompt_parts,
    response_log_probs,
)

LANG = BehaviourLanguage(seed=0, n_domains=3)
RNG = np.random.default_rng(0)
PAIRS = [LANG.pair(RNG, axis="sentiment", domain=d) for d in LANG.domains for _ in range(3)]
CHATS = [c.messages for pair in PAIRS for c in pair]


@pytest.fixture(scope="module")
def tiny():
    from tokentree.bridge.tiny import TinySpec, tiny_llama, train_tiny_tokenizer

    tokenizer = train_tiny_tokenizer(LANG.pretraining_text(300, seed=0), 400)
    return tokenizer, tiny_llama(TinySpec(len(tokenizer), 2, 32, 2, 64), seed=0).eval(), \
        tiny_llama(TinySpec(len(tokenizer), 2, 32, 2, 64), seed=1).eval()


def test_the_template_parts_are_found_without_knowing_the_template(tiny):
    tokenizer, _, _ = tiny
    parts = prompt_parts(tokenizer, [c[:-1] for c in CHATS])
    prompt = tokenizer.apply_chat_template(list(CHATS[0][:-1]), tokenize=True, add_generation_prompt=True)["input_ids"]
    assert tokenizer.decode(prompt[: parts.prefix]).endswith("<|im_start|>user\n")
    assert tokenizer.decode(prompt[-parts.postfix :]) == "<|im_end|>\n<|im_start|>assistant\n"
    tokenizer_no_system = copy.deepcopy(tokenizer)  # the template without a system turn
    tokenizer_no_system.chat_template = NO_SYSTEM_TEMPLATE
    shorter = prompt_parts(tokenizer_no_system, [c[:-1] for c in CHATS])
    assert shorter.prefix < parts.prefix and shorter.postfix == parts.postfix


def test_response_log_probs_are_the_full_logits_sums_over_the_response(tiny):
    """Logits are computed at the response's positions only; the sums equal the full forward pass's."""
    import torch

    from tokentree.data.chat import tokenize_chats

    tokenizer, a, _ = tiny
    parts = prompt_parts(tokenizer, [c[:-1] for c in CHATS])
    tokenized = tokenize_chats(CHATS, tokenizer, responses="last")
    want = []
    with torch.no_grad():
        for ids, mask in zip(tokenized.sequences, tokenized.masks, strict=True):
            row = torch.as_tensor(np.asarray(ids, dtype=np.int64))[None]
            logp = torch.log_softmax(a(input_ids=row).logits[0, :-1], -1).gather(-1, row[0, 1:, None])[:, 0]
            want.append(float(logp[torch.as_tensor(np.asarray(mask[1:], dtype=bool))].sum()))
    assert np.allclose(response_log_probs(a, tokenizer, CHATS, parts, batch_size=4), want, atol=1e-4)


def test_patching_from_the_model_itself_changes_no_score_and_from_another_does(tiny):
    tokenizer, a, b = tiny
    parts = prompt_parts(tokenizer, [c[:-1] for c in CHATS])
    plain = response_log_probs(a, tokenizer, CHATS, parts)
    assert np.allclose(response_log_probs(a, tokenizer, CHATS, parts, patch=(a, "all")), plain, atol=1e-5)
    moved = response_log_probs(a, tokenizer, CHATS, parts, patch=(b, "prefix"))
    assert not np.allclose(moved, plain, atol=1e-3)


def test_treft_finds_the_same_parts_as_the_scorer(tiny):
    """The regulariser finds the parts from the ids (end-of-turn token); the scorer from the response mask."""
    tokenizer, a, _ = tiny
    parts = prompt_parts(tokenizer, [c[:-1] for c in CHATS])
    ids, attention, masks = part_masks(tokenizer, CHATS, parts)
    treft = TReFT(a, 1.0, "prefix", parts, end_of_turn=int(tokenizer.convert_tokens_to_ids("<|im_end|>")))
    for part in ("prefix", "query", "postfix"):
        treft.part = part
        assert torch.equal(treft.mask(ids, attention), masks.part(part)), part
    with pytest.raises(Exception, match="prefix, query, postfix or all"):
        TReFT(a, 1.0, "response", parts, end_of_turn=3)


def test_nearest_tokens_are_the_most_cosine_similar_ordinary_tokens(tiny):
    tokenizer, a, _ = tiny
    ids = [7, 30, 3, 1]  # two ordinary tokens, <|im_start|> and EOS
    table = nearest_tokens(a, tokenizer, ids)
    weight = a.get_input_embeddings().weight.detach().numpy().astype(np.float64)
    unit = weight / np.maximum(np.linalg.norm(weight, axis=1, keepdims=True), 1e-12)  # the pad row is zero
    for i in (7, 30):  # by hand: the best cosine among ordinary tokens other than itself
        cosine = unit @ unit[i]
        cosine[[i, *tokenizer.all_special_ids]] = -np.inf
        assert table[i] == int(np.argmax(cosine)) and table[i] not in tokenizer.all_special_ids
    assert table[3] == 3 and table[1] == 1 and table[100] == 100  # specials and ids not asked for stay


def test_a_token_swap_changes_only_its_part_and_as_many_tokens_as_asked(tiny):
    tokenizer, a, _ = tiny
    parts = prompt_parts(tokenizer, [c[:-1] for c in CHATS])
    ids, _, masks = part_masks(tokenizer, CHATS, parts)
    table = nearest_tokens(a, tokenizer, ids.flatten().tolist())
    for part in ("prefix", "query"):
        swapped, count = TokenSwap(part, table, 2, seed=3).apply(ids, masks, 0)
        changed = swapped != ids
        assert not (changed & ~masks.part(part)).any()  # nothing outside the part
        assert count == int(changed.sum()) and 0 < count <= 2 * ids.shape[0]
        again, _ = TokenSwap(part, table, 2, seed=3).apply(ids, masks, 0)
        assert torch.equal(again, swapped)  # seeded
    plain = response_log_probs(a, tokenizer, CHATS, parts)
    assert not np.allclose(response_log_probs(a, tokenizer, CHATS, parts, swap=TokenSwap("query", table, 2)), plain)


def test_the_retain_kl_is_zero_at_the_original_and_a_hand_computed_kl_elsewhere(tiny):
    tokenizer, a, b = tiny
    retain = tokenize_chats(CHATS[:4], tokenizer, responses="last")
    ids = torch.zeros((1, 2), dtype=torch.long)
    assert float(RetainKL(a, 5.0, retain, batch_size=4)(a, None, ids, ids).detach()) == pytest.approx(0.0, abs=1e-6)
    value = float(RetainKL(a, 2.0, retain, batch_size=4)(b, None, ids, ids).detach())
    total = tokens = 0.0
    for seq, mask in zip(retain.sequences, retain.masks, strict=True):  # one chat at a time, no padding
        x = torch.from_numpy(seq)[None]
        with torch.no_grad():
            p = torch.log_softmax(a(input_ids=x).logits[0, :-1].double(), -1)
            q = torch.log_softmax(b(input_ids=x).logits[0, :-1].double(), -1)
        kl = (p.exp() * (p - q)).sum(-1)[torch.from_numpy(mask[1:])]
        total, tokens = total + float(kl.sum()), tokens + kl.numel()
    assert value == pytest.approx(2.0 * total / tokens, rel=1e-4)


def test_the_quick_run_reports_every_variant_and_verdict(quick_runs):
    result = json.loads((quick_runs["piggyback"] / "result.json").read_text())
    variants = {r["variant"] for r in result["records"]}
    assert {"fine-tune", "TReFT prefix", "TReFT query", "TReFT all", "interleave", "trainable attention",
            "KL retain", "more queries", "less alignment", "no system prompt"} <= variants
    plain = [r for r in result["records"] if r["variant"] == "fine-tune"]
    assert all(r["in_domain_bits"] > 0 for r in plain)  # the narrow fine-tune took
    assert all(r["patch_prefix_removed"] is not None and r["drift_prefix"] > 0 for r in plain)
    assert all(r["swap_query_removed"] is not None and r["alt_system_removed"] is not None for r in plain)
    assert {v["item"] for v in result["verdicts"]} == {"s", "i", "ii", "s-attn", "i-attn", "ii-attn", "s-attn+mlp",
                                                       "i-attn+mlp", "ii-attn+mlp", "iii", "iii-kl", "iv", "v", "vi",
                                                       "vii"}
    assert result["config"]["domain_remarks"] and result["config"]["persona_share"] > 0  # the redesigned data
    assert {row["part"] for row in result["tables"]["drift"]} == {"prefix", "query", "postfix"}
    # two seeds, k far below 100, lr 1e-3: every claim is "not detectable at this regime", with its numbers
    assert {v["status"] for v in result["verdicts"]} == {"not detectable at this regime"}
    assert all(v["values"] and all(isinstance(x, float | None) for x in v["values"].values())
               for v in result["verdicts"])
    regime = result["tables"]["regime"]
    assert len(regime) == 2 and all(not r["premise_met"] and r["k"] < 100 for r in regime)
    assert "Regime (first seed): k = " in (quick_runs["piggyback"] / "summary.md").read_text()


def test_smollm2_smoke_lora_treft_and_patching():
    """The real path on SmolLM2-135M-Instruct (offline): its own template, LoRA, TReFT, a patched score; on the
    pretend device of tests/device_guard.py, as on a GPU."""
    from tests.device_guard import PretendAccelerator
    from tokentree.bridge.hf import load_smollm2
    from tokentree.lab.train import LMTrainer, LoraSettings, TrainSettings

    with PretendAccelerator() as guard:
        model, tokenizer = load_smollm2()
        model.to("cpu")  # the pretend device
        chats = CHATS[:6]
        parts = prompt_parts(tokenizer, [c[:-1] for c in CHATS])
        assert isinstance(parts, PromptParts) and parts.prefix > 5  # SmolLM2's default system prompt
        treft = TReFT(model, 10.0, "prefix", parts, end_of_turn=int(tokenizer.convert_tokens_to_ids("<|im_end|>")))
        trainer = LMTrainer(copy.deepcopy(model), TrainSettings(lr=1e-3, batch_size=3, lora=LoraSettings()),
                            regularizer=treft)
        trainer.epoch(tokenize_chats(chats, tokenizer, responses="last"), stop_after=1)
        assert len(trainer.penalties) == 1 and trainer.penalties[0] == pytest.approx(0.0, abs=1e-9)  # at the start
        scores = response_log_probs(trainer.model, tokenizer, chats[:2], parts, patch=(model, "prefix"))
    assert np.all(np.isfinite(scores)) and np.all(scores < 0) and guard.transfers > 100
