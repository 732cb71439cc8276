"""Keys and values of Llama-style models: capture, patch (checked against an independent computation), TReFT."""

from __future__ import annotations

import math

import pytest
import torch

from tokentree.bridge.kv import KV, capture_kv, kv_drift, patch_kv, projections, treft_penalty
from tokentree.infra.errors import InputError


def _llama(seed: int, kv_heads: int = 2):
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(vocab_size=50, hidden_size=32, intermediate_size=64, num_hidden_layers=3,
                         num_attention_heads=4, num_key_value_heads=kv_heads, max_position_embeddings=32)
    torch.manual_seed(seed)
    return LlamaForCausalLM(config).float().eval()


IDS = torch.tensor([[3, 7, 9, 11, 2, 5, 8, 13, 4, 6]])


def test_patching_a_model_with_its_own_keys_and_values_changes_nothing():
    model = _llama(0)
    with torch.no_grad(), capture_kv(model) as kv:
        before = model(IDS).logits
    assert kv.n_layers == 3 and tuple(kv.keys[0].shape) == (1, 10, 16)  # 2 kv heads x head dim 8 (GQA)
    with torch.no_grad(), patch_kv(model, kv, slice(0, 6)):
        after = model(IDS).logits
    assert torch.equal(before, after)


def test_patching_every_position_of_a_layer_is_running_the_other_models_keys_and_values_there():
    """Model A's attention at layer L with model B's keys and values, computed by hand from the parts."""
    from transformers.models.llama.modeling_llama import apply_rotary_pos_emb, repeat_kv

    a, b = _llama(0), _llama(1)
    layer = 1
    with torch.no_grad():
        with capture_kv(b) as kv_b:
            b(IDS)
        hidden = a(IDS, output_hidden_states=True).hidden_states[layer]  # what enters layer L (unpatched below it)
        seen = {}
        def keep(module, inputs, output):
            seen["out"] = output[0]  # returns None: the output is left as it is

        hook = a.model.layers[layer].self_attn.register_forward_hook(keep)
        with patch_kv(a, kv_b, slice(None), layers=[layer]):
            a(IDS)
        hook.remove()
        attn = a.model.layers[layer].self_attn
        x = a.model.layers[layer].input_layernorm(hidden)
        n, d = IDS.shape[1], attn.head_dim
        q = attn.q_proj(x).view(1, n, -1, d).transpose(1, 2)
        k = kv_b.keys[layer].view(1, n, -1, d).transpose(1, 2)
        v = kv_b.values[layer].view(1, n, -1, d).transpose(1, 2)
        cos, sin = a.model.rotary_emb(x, torch.arange(n)[None])
        q, k = apply_rotary_pos_emb(q, k, cos, sin)
        k, v = repeat_kv(k, q.shape[1] // k.shape[1]), repeat_kv(v, q.shape[1] // v.shape[1])
        scores = q @ k.transpose(-1, -2) / math.sqrt(d)
        scores = scores.masked_fill(torch.triu(torch.ones(n, n, dtype=torch.bool), 1), float("-inf"))
        by_hand = attn.o_proj((scores.softmax(-1) @ v).transpose(1, 2).reshape(1, n, -1))
    assert torch.allclose(seen["out"], by_hand, atol=1e-5)


def test_the_treft_penalty_is_zero_at_the_reference_and_a_hand_computation_elsewhere():
    model = _llama(0)
    with torch.no_grad(), capture_kv(model) as ref:
        model(IDS)
    assert float(treft_penalty(ref, ref, slice(0, 4))) == 0.0
    moved = KV([k + 0.1 for k in ref.keys], [v * 2 for v in ref.values])
    prefix = slice(0, 4)
    expected = sum(
        float((((0.1) ** 2 * k.shape[-1]) / (k[:, prefix] ** 2).sum(-1)).mean() + 1.0)  # ||v||^2 / ||v||^2 = 1
        for k in ref.keys
    ) / 3
    assert float(treft_penalty(moved, ref, prefix)) == pytest.approx(expected, rel=1e-5)
    drift = kv_drift(moved, ref, prefix)
    assert len(drift) == 3 and all(v == pytest.approx(1.0) for _, v in drift)
    # differentiable: the penalty pulls the captured keys back towards the reference
    with capture_kv(model, detach=False) as live:
        model(IDS)
    loss = treft_penalty(KV([k + 0.5 for k in live.keys], live.values), ref, prefix)
    loss.backward()
    assert model.model.layers[0].self_attn.k_proj.weight.grad is not None


def test_other_architectures_are_refused_clearly():
    with pytest.raises(InputError, match="not a Llama-style decoder"):
        projections(torch.nn.Linear(2, 2))


def test_a_mask_patches_positions_that_differ_from_row_to_row():
    a, b = _llama(0), _llama(1)
    ids = torch.cat([IDS, IDS.flip(1)])
    with torch.no_grad():
        with capture_kv(b) as kv_b:
            b(ids)
        mask = torch.zeros(ids.shape, dtype=torch.bool)
        mask[0, :6] = True
        mask[1, 3:5] = True
        with patch_kv(a, kv_b, mask):
            both = a(ids).logits
        with capture_kv(b) as first:
            b(ids[:1])
        with patch_kv(a, first, slice(0, 6)):
            row0 = a(ids[:1]).logits
        with capture_kv(b) as second:
            b(ids[1:])
        with patch_kv(a, second, [3, 4]):
            row1 = a(ids[1:]).logits
    assert torch.allclose(both[0], row0[0], atol=1e-6) and torch.allclose(both[1], row1[0], atol=1e-6)
