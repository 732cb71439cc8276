"""rebound with a loaded pre-trained model (``--model smollm2``): tweets, LoRA, no continued pre-training.

The SmolLM2 code path runs on a tiny Llama folder served in its place (the ``stand_in`` fixture).
"""

from __future__ import annotations

import pytest

from tests.device_guard import PretendAccelerator
from tests.test_resistance_loaded import _weights_digest, stand_in  # noqa: F401  (a fixture)
from tokentree.infra.errors import InputError
from tokentree.lab.base import BaseSettings

SMALL = dict(n_seeds=1, n_pos_values=(1000, 2000), n_neg_values=(0, 100, 200), scale=0.01, n_eval=6,
             max_new_tokens=8, batch_size=5, warmup_steps=1, n_pretrain_docs=20)


def test_rebound_from_a_loaded_model_uses_tweets_and_lora_and_records_the_regime(stand_in):  # noqa: F811
    from tokentree.bridge.hf import SMOLLM2_NOTE, SMOLLM2_PRETRAIN_TOKENS
    from tokentree.experiments.rebound import Config, run

    config = Config(**SMALL, base=BaseSettings(model="smollm2", device="cpu", pretrain_tokens=300_000))
    assert config.source == "tweets" and config.levels == [0] and config.judged == 0
    with PretendAccelerator():  # as on a GPU (tests/device_guard.py)
        result = run(config, show_progress=False)
    (model,), (digest,) = stand_in["loaded"]["models"], stand_in["loaded"]["digests"]
    assert _weights_digest(model) == digest  # theta_0 never trained: no continued pre-training
    # two stage-1 twins for the floor, and per n_pos a stage 1 and a stage 2 whose LoRA is merged before the next
    assert stand_in["merges"]["peft"] == 2 + 2
    assert {c.n_pos for c in result.curves} == {10, 20} and {r.pretrain_tokens for r in result.records} == {0}
    (regime,) = result.regime
    assert regime.pretrained_elsewhere and regime.pretrain_tokens == SMOLLM2_PRETRAIN_TOKENS
    assert "k = " not in regime.problems and regime.k > 1e8
    assert [v.item for v in result.verdicts] == ["R1", "R2", "R3", "R4", "R6"]
    assert all(v.status == "not detectable at this regime" for v in result.verdicts)  # one seed
    assert SMOLLM2_NOTE in result.intro() and "axis sentiment" in result.intro()


def test_a_loaded_model_refuses_the_synthetic_language_and_a_pre_training_sweep():
    from tokentree.experiments.rebound import Config

    with pytest.raises(InputError, match=r"no continued pre-training.*use --data tweets"):
        Config(data="synthetic", base=BaseSettings(model="smollm2"))
    with pytest.raises(InputError, match="used as pre-trained elsewhere: drop pretrain_scales"):
        Config(base=BaseSettings(model="smollm2"), pretrain_scales=(0.1, 0.3, 1.0, 3.0))
    assert Config().source == "synthetic" and Config(base=BaseSettings(model="smollm2")).source == "tweets"
