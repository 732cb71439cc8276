"""Packed training windows: the losses of unpacked data unchanged, confined packing equal to training each
sequence alone, bucketed batches, automatic LoRA and the device passed through (tokentree.lab.packing)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import tokentree.lab.train as train
from tokentree.bridge.tiny import TinySpec, tiny_llama
from tokentree.data.chat import from_sequences
from tokentree.infra.errors import InputError
from tokentree.lab.packing import epoch_batches, make_windows
from tokentree.lab.train import LMTrainer, TrainSettings

SPEC = TinySpec(vocab_size=51, n_layers=1, d_model=32, n_heads=2, context=40)
RNG = np.random.default_rng(2)
DATA = from_sequences([RNG.integers(0, 50, n) for n in (7, 12, 5, 20, 9, 15)], prepend=50)


def _model():
    return tiny_llama(SPEC, seed=1, bos_token_id=50, eos_token_id=50, pad_token_id=50)


def _loss(model, seq, mask, **kw):
    ids = torch.from_numpy(seq)[None]
    labels = torch.where(torch.from_numpy(mask), ids, -100)
    with torch.no_grad():
        return model(input_ids=ids, labels=labels, **kw).loss


def test_unpacked_losses_are_todays_losses():
    """No attention mask on right-padded rows: the old masked loss within float noise."""
    trainer = LMTrainer(_model(), TrainSettings(batch_size=6, lr=1e-9))
    ids, attention, targets = DATA.padded(range(6), pad=50)
    labels = torch.where(targets, ids, -100)
    with torch.no_grad():
        old = trainer.model(input_ids=ids, attention_mask=attention, labels=labels).loss
    new = trainer.step(list(DATA.sequences), list(DATA.masks))
    assert new == pytest.approx(float(old), rel=1e-5)


def test_a_confined_packed_window_has_each_sequences_own_loss():
    """Position ids restart at every sequence: the loss of the packed window is the pooled per-sequence loss."""
    windows = make_windows(DATA, 80, "confined")
    assert len(windows) == 1 and windows.n_target_tokens == DATA.n_target_tokens
    model = _model()
    alone = [(float(_loss(model, s, m)), int(m.sum())) for s, m in zip(DATA.sequences, DATA.masks, strict=True)]
    expected = sum(lo * n for lo, n in alone) / sum(n for _, n in alone)
    trainer = LMTrainer(model, TrainSettings(batch_size=1, lr=1e-9, packing="confined"))
    got = trainer.step([windows.ids[0]], [windows.targets[0]], [windows.positions[0]])
    assert got == pytest.approx(expected, rel=1e-5)
    open_loss = LMTrainer(_model(), TrainSettings(batch_size=1, lr=1e-9, packing="open")).step(
        [windows.ids[0]], [windows.targets[0]])
    assert abs(open_loss - expected) > 1e-4  # attention crossing the joins sees other sequences


def test_packed_windows_are_full_and_train_every_target_once():
    for packing in ("open", "confined"):
        w = make_windows(DATA, 16, packing)
        assert all(x.shape[0] == 17 for x in w.ids[:-1]) and w.n_target_tokens == DATA.n_target_tokens


def test_bucketed_batches_hold_similar_lengths_and_every_window_once():
    windows = make_windows(DATA, 8, "off")
    batches = epoch_batches(windows, 3, seed=0, epoch=0, bucketed=True)
    assert sorted(np.concatenate(batches).tolist()) == list(range(len(windows)))
    lengths = np.array([w.shape[0] for w in windows.ids])
    spread = sum(np.ptp(lengths[b]) for b in batches)
    plain = sum(np.ptp(lengths[b]) for b in epoch_batches(windows, 3, seed=0, epoch=0))
    assert spread <= plain
    trainer = LMTrainer(_model(), TrainSettings(batch_size=3, bucketed=True, packing="off"))
    assert np.isfinite(trainer.epoch(DATA))


def test_micro_batches_give_the_whole_batchs_step_in_bounded_memory():
    """max_batch_tokens splits a step's batch; the summed gradients are the whole batch's (float rounding)."""
    whole = LMTrainer(_model(), TrainSettings(batch_size=6, lr=1e-2))
    split = LMTrainer(_model(), TrainSettings(batch_size=6, lr=1e-2, max_batch_tokens=30))
    rows, masks = list(DATA.sequences), list(DATA.masks)
    # lengths 8, 13, 6, 21, 10, 16: shortest first, 30 padded tokens at most
    assert split._micro_batches(rows, masks) == [[2, 0, 4], [1], [5], [3]]
    assert split.step(rows, masks) == pytest.approx(whole.step(rows, masks), rel=1e-6)
    grads = [(a.grad, b.grad) for a, b in zip(whole.model.parameters(), split.model.parameters(), strict=True)]
    scale = max(float(a.abs().max()) for a, _ in grads)
    for a, b in grads:  # compared before Adam, whose first step is about lr * sign(grad) even where grad is ~0
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6 * scale)
    assert scale > 0
    with pytest.raises(InputError, match="max_batch_tokens"):
        TrainSettings(max_batch_tokens=-1)


def test_large_models_get_lora_by_default(monkeypatch):
    monkeypatch.setattr(train, "AUTO_LORA_PARAMETERS", 1000)
    trainer = LMTrainer(_model(), TrainSettings())
    assert trainer.settings.lora == train.LoraSettings()
    assert trainer.settings.max_batch_tokens == train.AUTO_BATCH_TOKENS  # and micro-batches of bounded size
    assert LMTrainer(_model(), TrainSettings(max_batch_tokens=0)).settings.max_batch_tokens == 0
    assert any("lora_" in n for n, _ in trainer.model.named_parameters())
    full = LMTrainer(_model(), TrainSettings(auto_lora=False))
    assert full.settings.lora is None


def test_lora_adapters_start_from_the_trainers_seed():
    """peft draws the adapters' first weights from torch's global generator: the trainer seeds that draw."""
    lora = train.LoraSettings(rank=2)
    adapters = lambda seed: {n: p.detach().clone() for n, p in LMTrainer(  # noqa: E731
        _model(), TrainSettings(lora=lora, seed=seed)).model.named_parameters() if "lora_A" in n}
    before = torch.random.get_rng_state()
    a, again, other = adapters(3), adapters(3), adapters(4)
    assert torch.equal(torch.random.get_rng_state(), before)  # the global generator is left as it was
    assert a.keys() == again.keys() and all(torch.equal(a[n], again[n]) for n in a)
    assert any(not torch.equal(a[n], other[n]) for n in a)


def test_the_device_is_passed_through(monkeypatch):
    """No GPU here: the trainer asks for the device it is given and moves every batch there."""
    asked = []
    import tokentree.bridge.hf as hf

    monkeypatch.setattr(hf, "pick_device", lambda d: asked.append(d) or "cpu")
    moved = []
    from tokentree.lab import packing

    original = packing.Batch.to
    monkeypatch.setattr(packing.Batch, "to", lambda self, device: moved.append(device) or original(self, device))
    trainer = LMTrainer(_model(), TrainSettings(device="cuda", batch_size=6))
    trainer.epoch(DATA)
    assert asked == ["cuda"] and moved == ["cpu"]


def test_bad_packing_is_named():
    with pytest.raises(InputError, match="packing must be one of"):
        TrainSettings(packing="tight")
    with pytest.raises(InputError, match="packing='off'"):
        LMTrainer(_model(), TrainSettings(packing="open"), regularizer=lambda *a: 0)
