"""resistance with a loaded pre-trained model (``--model smollm2``): real data, LoRA, no continued pre-training.

SmolLM2 itself takes minutes here, so these tests run its code path on a tiny Llama saved as a model folder
and served in its place (``load_model`` patched), with LoRA switched on for it (``AUTO_LORA_PARAMETERS`` patched).
"""

from __future__ import annotations

import hashlib

import pytest

from tests.device_guard import PretendAccelerator
from tokentree.infra.errors import InputError
from tokentree.lab.base import BaseSettings

torch = pytest.importorskip("torch")


def _weights_digest(model) -> str:
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode() + tensor.detach().float().numpy().tobytes())
    return digest.hexdigest()


@pytest.fixture
def stand_in(tmp_path, monkeypatch):
    """A tiny Llama folder that ``load_model("smollm2")`` returns; LoRA on; every adapter merge counted."""
    import tokentree.bridge.hf as hf
    import tokentree.lab.rebound_protocol as rebound_protocol
    import tokentree.lab.train as train
    import tokentree.lab.transfer as transfer
    from tokentree.bridge.tiny import TinySpec, save_model, tiny_llama, train_tiny_tokenizer
    from tokentree.data.text import builtin_texts

    tokenizer = train_tiny_tokenizer(builtin_texts("tweets-positive")[:300] + builtin_texts("tweets-negative")[:300],
                                     400)
    spec = TinySpec(vocab_size=len(tokenizer), n_layers=1, d_model=32, n_heads=2, context=128)
    folder = save_model(tiny_llama(spec, seed=0), tokenizer, tmp_path / "model")
    loaded = {}

    def load_model(source, **kwargs):
        model, tok = hf.load_causal_lm(folder)
        loaded.setdefault("models", []).append(model)
        loaded["digests"] = [*loaded.get("digests", []), _weights_digest(model)]
        return model, tok

    merges = {"peft": 0}
    real_merge = transfer.merge_adapters

    def counting_merge(model):
        merges["peft"] += type(model).__module__.startswith("peft.")
        return real_merge(model)

    monkeypatch.setattr(hf, "load_model", load_model)
    monkeypatch.setattr(train, "AUTO_LORA_PARAMETERS", 1)
    monkeypatch.setattr(transfer, "merge_adapters", counting_merge)
    monkeypatch.setattr(rebound_protocol, "merge_adapters", counting_merge)
    return {"folder": folder, "loaded": loaded, "merges": merges}


SMALL = dict(n_seeds=1, n_align=24, n_samples=12, max_new_tokens=8, align_epochs=1, transfer_epochs=1, batch_size=8,
             warmup_steps=1, n_pretrain_docs=20)


def test_a_loaded_model_runs_on_tweets_with_lora_and_is_never_pre_trained_further(stand_in):
    from tokentree.bridge.hf import SMOLLM2_NOTE, SMOLLM2_PRETRAIN_TOKENS
    from tokentree.experiments.resistance import Config, run

    config = Config(**SMALL, base=BaseSettings(model="smollm2", device="cpu", pretrain_tokens=300_000))
    assert config.source == "tweets" and config.datasets == ("sentiment",)
    with PretendAccelerator():  # as on a GPU (tests/device_guard.py)
        result = run(config, show_progress=False)
    (model,), (digest,) = stand_in["loaded"]["models"], stand_in["loaded"]["digests"]
    assert _weights_digest(model) == digest  # theta_0 as loaded: no continued pre-training, no adapter leaked in
    assert stand_in["merges"]["peft"] == 3 + 9  # theta_1..3 and the nine transfers, each a LoRA fine-tune merged
    assert {r.base for r in result.records} == {"full"}  # no barely pre-trained control for a loaded model
    assert {r.dataset for r in result.records} == {"sentiment"} and len(result.records) == 3
    (regime,) = result.regime
    assert regime.pretrained_elsewhere and regime.pretrain_tokens == SMOLLM2_PRETRAIN_TOKENS
    assert regime.k == SMOLLM2_PRETRAIN_TOKENS / regime.behaviour_tokens
    assert "k = " not in regime.problems and "loss curve" not in regime.problems  # k and convergence: elsewhere
    assert [v.item for v in result.verdicts] == ["T0", "T1", "T2", "T3"]  # T4 needs the barely control
    assert all(v.status == "not detectable at this regime" for v in result.verdicts)  # one seed
    assert SMOLLM2_NOTE in result.intro() and "tweets" in result.title()


def test_a_model_folder_is_loaded_as_is_but_not_counted_as_pre_trained_elsewhere(stand_in):
    from tokentree.experiments.resistance import Config, run

    with PretendAccelerator():  # as on a GPU (tests/device_guard.py)
        result = run(Config(**SMALL, base=BaseSettings(model=str(stand_in["folder"]), device="cpu")),
                     show_progress=False)
    (regime,) = result.regime
    assert not regime.pretrained_elsewhere and regime.pretrain_tokens == 0 and not regime.premise_met
    assert "k = 0 < 100" in regime.problems


def test_the_synthetic_language_is_refused_for_a_loaded_model_with_the_fix():
    from tokentree.experiments.resistance import Config

    with pytest.raises(InputError, match=r"no continued pre-training.*use --data tweets"):
        Config(data="synthetic", base=BaseSettings(model="smollm2"))
    assert Config().source == "synthetic" and Config(data="files", positive="a.jsonl").source == "files"
    assert Config(base=BaseSettings(model="./my-model")).source == "tweets"
