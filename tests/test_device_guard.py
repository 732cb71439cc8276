"""The GPU path checked on the CPU: the guard itself, every trained quick run, and LoRA, sampling and KL on the
pretend device giving the host's numbers."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import numpy as np
import pytest
import torch

import tokentree
from tests.device_guard import DEVICE, HOST, DeviceMixError, PretendAccelerator, side
from tokentree.bridge.hf import HFScorer
from tokentree.bridge.tiny import TinySpec, tiny_llama, train_tiny_tokenizer
from tokentree.data.chat import tokenize_chats
from tokentree.data.language import BehaviourLanguage
from tokentree.lab.measure import kl_to_reference, sample_responses
from tokentree.lab.train import LMTrainer, LoraSettings, TrainSettings

TRAINED = ("measured-vs-theory", "hooke-trained", "rebound", "resistance", "rebound-scale", "piggyback")


def test_the_guard_refuses_what_a_gpu_refuses():
    with PretendAccelerator() as guard:
        layer = torch.nn.Linear(3, 2)
        assert side(layer.weight) == HOST
        layer.to("cpu")  # the pretend device
        assert side(layer.weight) == DEVICE and guard.transfers == 2
        x = torch.zeros(4, 3)
        with pytest.raises(DeviceMixError, match="linear"):
            layer(x)  # inputs left on the host
        y = layer(x.to("cpu"))
        assert side(y) == DEVICE and side(x) == HOST  # a transfer copies
        with pytest.raises(DeviceMixError, match="numpy"):
            y.numpy()
        with pytest.raises(DeviceMixError, match="numpy"):
            np.asarray(y.detach())
        assert y.detach().cpu().numpy().shape == (4, 2)
        with pytest.raises(DeviceMixError, match="add"):
            y + torch.arange(2)  # a factory without device= makes a host tensor
        assert side(y * torch.tensor(2.0)) == DEVICE  # a host scalar is allowed, as CUDA allows it
        assert side(y + torch.arange(2, device="cpu")) == DEVICE
        with pytest.raises(DeviceMixError, match="indexed"):
            torch.zeros(5)[torch.arange(2, device="cpu")]
        assert side(y[torch.arange(2)]) == DEVICE  # device data, host indices: allowed
        assert side(copy.deepcopy(layer).weight) == DEVICE
        with pytest.raises(DeviceMixError, match="stack"):
            torch.stack([y[0, 0], torch.tensor(1.0)])  # a host scalar only in element-wise operations
        with pytest.raises(DeviceMixError, match="values assigned"):
            y.detach()[torch.tensor([0])] = torch.ones(1, 2)
        host = torch.zeros(4, 2)
        host.copy_(y.detach())  # a copy between the sides; the target stays on the host
        assert side(host) == HOST
        y.sum().backward()
        assert side(layer.weight.grad) == DEVICE


def test_the_package_names_no_device_by_a_literal():
    """The pretend device is the CPU: a literal "cpu" device would pass the guard as the device though on a GPU it
    is the host, so the package names devices only by variables."""
    literal = re.compile(r"""\.to\(\s*["']cpu["']|device\s*=\s*["']cpu["']|\.cuda\(""")
    found = [f"{path}:{n}" for path in Path(tokentree.__file__).parent.rglob("*.py")
             for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if literal.search(line)]
    assert not found


def test_a_tensor_moved_in_inference_mode_is_an_inference_tensor_as_on_a_gpu():
    """The trap the decoder fell into: a GPU copy made in inference mode cannot be updated outside it."""
    with PretendAccelerator():
        length = torch.tensor(0)
        with torch.inference_mode():
            moved = length.to("cpu")
        with pytest.raises(RuntimeError, match="inference tensor"):
            moved.fill_(3)
        length.fill_(3)  # without the guard (or on the host) the same tensor is a normal one


def test_every_trained_quick_run_ran_on_the_pretend_device(quick_runs, device_guards):
    """The session's quick runs ran in the guard (tests/conftest.py); the trained ones moved their models there."""
    assert set(device_guards) == set(quick_runs)
    assert all(device_guards[name].transfers > 10 for name in TRAINED), {n: g.transfers
                                                                        for n, g in device_guards.items()}


def lora_flow(folder, device: str = "cpu") -> dict:
    """LoRA fine-tuning with a resumed checkpoint, sampling, the KL to the reference and scoring on a tiny model,
    on ``device``: the numbers a device must agree on (benchmarks/device_check.py compares them on a GPU)."""
    lang = BehaviourLanguage(seed=0, n_domains=2)
    tokenizer = train_tiny_tokenizer(lang.pretraining_text(200, seed=0), 300)
    rng = np.random.default_rng(0)
    chats = [c.messages for _ in range(6) for c in lang.pair(rng, axis="sentiment", domain=lang.domains[0])]
    data = tokenize_chats(chats, tokenizer, responses="last")
    reference = tiny_llama(TinySpec(len(tokenizer), 2, 32, 2, 128), seed=0)
    trainer = LMTrainer(copy.deepcopy(reference), TrainSettings(lr=1e-2, batch_size=4, device=device,
                                                                lora=LoraSettings(rank=4)))
    trainer.epoch(data, stop_after=2)
    trainer = LMTrainer.resume(trainer.save(folder), copy.deepcopy(reference))
    trainer.epoch(data)
    reference.to(trainer.device)
    samples = sample_responses(trainer.model, tokenizer, [c[:-1] for c in chats[:4]], max_new_tokens=6, seed=3)
    scorer = HFScorer(trainer.model, bos_token_id=tokenizer.bos_token_id, max_context=128, stride=96)
    cursor = scorer.start(data.sequences[0][:5])
    stepped = [cursor.probs()]
    cursor.push(int(data.sequences[0][5]))
    stepped.append(cursor.probs())
    return {"losses": np.array(trainer.losses), "samples": samples.token_ids,
            "kl": kl_to_reference(trainer.model, reference, data).mean_kl_nats,
            "log_probs": scorer.token_log_probs(data.sequences[:3]), "stepped": stepped,
            "next": scorer.next_token_probs(data.sequences[0][:6])}


def test_lora_sampling_kl_and_scoring_on_the_pretend_device_give_the_host_numbers(tmp_path):
    on_host = lora_flow(tmp_path / "host")
    with PretendAccelerator() as guard:
        on_device = lora_flow(tmp_path / "device")
    assert guard.transfers > 10
    for name, here in on_host.items():
        there = on_device[name]
        assert all(np.array_equal(a, b) for a, b in zip(there, here, strict=True)) if isinstance(here, list) \
            else np.array_equal(there, here), name
