"""The tiny trainable transformer and the hooke-trained experiment (docs/experiments.md §E4h)."""

from __future__ import annotations

import json
import math
from fractions import Fraction

import numpy as np
import pytest
import torch

from tokentree.bridge.coding import decode_tokens, encode_tokens
from tokentree.bridge.scoring import NextTokenModel, measure_rate
from tokentree.bridge.tiny import TinyConfig, Trainer, load_checkpoint, tiny_scorer
from tokentree.compression.elasticity import disjoint_closed_form
from tokentree.errors import InputError
from tokentree.outputs import MARKER
from tokentree.synthetic import markov_corpus

V = 16
DATA = markov_corpus(300, vocab_size=V, rng=5)
SHAPE = TinyConfig(vocab_size=V, n_layers=1, d_model=32, n_heads=2, context=16)


def _weights(trainer: Trainer) -> dict[str, bytes]:
    return {k: v.numpy().tobytes() for k, v in trainer.model.state_dict().items()}


def test_training_learns_the_source_and_is_a_proper_model():
    trainer = Trainer(SHAPE, seed=0, lr=1e-2)
    scorer = tiny_scorer(trainer.model)
    before = measure_rate(scorer, DATA).bits_per_token
    assert before == pytest.approx(math.log2(V), abs=0.05)  # small random init: about uniform
    for _ in range(4):
        trainer.epoch(DATA, batch_size=16)
    after = measure_rate(scorer, DATA).bits_per_token
    assert after < before - 0.5
    assert isinstance(scorer, NextTokenModel) and scorer.vocab_size == V
    seq = DATA[0]
    scored = scorer.token_log_probs([seq])[0]
    for i in range(len(seq)):
        p = scorer.next_token_probs(seq[:i])
        assert p.shape == (V,) and p.sum() == pytest.approx(1.0, abs=1e-12)  # the start token gets nothing
        assert math.log(p[seq[i]]) == pytest.approx(scored[i], abs=1e-5)
    coded = encode_tokens(scorer, DATA.select(np.arange(5)))
    assert all(
        np.array_equal(a, b) for a, b in zip(decode_tokens(scorer, coded), DATA.select(np.arange(5)), strict=True)
    )


def test_same_seed_same_weights_new_seed_different():
    a, b, c = Trainer(SHAPE, seed=1), Trainer(SHAPE, seed=1), Trainer(SHAPE, seed=2)
    for t in (a, b, c):
        t.epoch(DATA, batch_size=32)
    assert _weights(a) == _weights(b)
    assert _weights(a) != _weights(c)


def test_resumed_training_continues_exactly(tmp_path):
    straight = Trainer(SHAPE, seed=3)
    straight.epoch(DATA)
    straight.epoch(DATA)
    first = Trainer(SHAPE, seed=3)
    first.epoch(DATA)
    folder = first.save(tmp_path / "ckpt")
    assert sorted(p.name for p in folder.iterdir()) == [MARKER, "config.json", "model.safetensors", "optimizer.pt"]
    resumed = load_checkpoint(folder)
    assert resumed.epochs_done == 1 and resumed.steps_done == first.steps_done
    resumed.epoch(DATA)
    assert _weights(resumed) == _weights(straight)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_checkpoints_are_read_without_pickle(tmp_path):
    folder = Trainer(SHAPE, seed=0).save(tmp_path / "ckpt")
    torch.save({"state": {}, "param_groups": [], "sneaky": Fraction(1, 3)}, folder / "optimizer.pt")
    with pytest.raises(InputError, match="holds objects other than tensors"):
        load_checkpoint(folder)
    with pytest.raises(InputError, match=r"lacks model\.safetensors"):
        load_checkpoint(tmp_path)


def test_long_texts_are_windowed_and_bad_input_is_named():
    trainer = Trainer(SHAPE, seed=0)
    scorer = tiny_scorer(trainer.model)
    long = markov_corpus(1, vocab_size=V, min_length=50, max_length=50, rng=1)[0]
    assert long.shape[0] > SHAPE.context
    full = scorer.token_log_probs([long])[0]
    assert full.shape == long.shape
    assert np.allclose(full[: SHAPE.context - 1], scorer.token_log_probs([long[: SHAPE.context - 1]])[0], atol=1e-6)
    with pytest.raises(InputError, match="outside the model's vocabulary"):
        measure_rate(scorer, [[1, V]])  # V is the start token, never a data token
    with pytest.raises(InputError, match="sequence 0 is empty"):
        measure_rate(scorer, [[]])
    with pytest.raises(InputError, match="do not fit the context"):
        trainer.model(torch.zeros((1, SHAPE.context + 1), dtype=torch.long))
    with pytest.raises(InputError, match="1-4 layers"):
        TinyConfig(vocab_size=V, n_layers=5)
    with pytest.raises(InputError, match="multiple of n_heads"):
        TinyConfig(vocab_size=V, d_model=30, n_heads=4)


# ----------------------------------------------------------------------------- hooke-trained
SMALL = dict(
    n_seeds=2,
    k_values=(10.0, 40.0),
    l_values=(0.1, 0.5),
    n_pretrain=400,
    n_eval=100,
    d_model=32,
    n_heads=2,
    pretrain_tokens=8000,
    align_epochs=2,
)


@pytest.fixture(scope="module")
def synthetic_run():
    from tokentree.experiments.hooke_trained import Config, run

    return run(Config(data="synthetic", **SMALL), show_progress=False)


def test_hooke_trained_records_and_mixture_comparison(synthetic_run):
    records = synthetic_run.records
    assert len(records) == 2 * 2 * 2 and {r.seed for r in records} == {0, 1}
    for r in records:
        assert r.ratio == pytest.approx(r.delta_align_bits / r.delta_pretrain_bits)
        assert r.delta_align_bits == pytest.approx(r.rate_align_bits - r.rate_align_0_bits)
        assert 0 < r.rate_pretrain_bits < math.log2(24)
        # Theorem 4.2's mixture on the same data: disjoint components and a stratified D_p sample give
        # R(0) = -k, up to the little mass the smoothed components leak onto each other's tokens
        assert r.mixture_ratio_l0 == pytest.approx(-r.k, rel=1e-6)
        # and its finite changes are the closed form's (the entropies cancel in a difference)
        closed = disjoint_closed_form(r.k, (0.6, 0.2, 0.2), (0.0, 0.0, 0.0), [0.0, r.l], depth=4)
        for key, name in (("mixture_delta_align_bits", "rate_align_bits"),
                          ("mixture_delta_pretrain_bits", "rate_pretrain_bits")):
            expected = float(np.diff(getattr(closed, name))[0])
            assert getattr(r, key) == pytest.approx(expected, rel=1e-6)
    assert [r.k for r in synthetic_run.cells] == [10.0, 10.0, 40.0, 40.0]
    mean = np.mean([r.ratio for r in records if r.k_requested == 10.0 and r.step == 0])
    assert synthetic_run.cells[0].ratio_mean == pytest.approx(mean)
    # fine-tuning on D_t teaches D_t: its rate falls in every cell
    assert all(r.delta_perturb_bits < 0 for r in records)


def test_hooke_trained_is_deterministic_and_writes_outputs(synthetic_run, tmp_path):
    from tokentree.experiments.hooke_trained import Config, run
    from tokentree.results import dumps_json
    from tokentree.runs import write_run_outputs

    again = run(Config(data="synthetic", **SMALL), show_progress=False)
    assert dumps_json(again.to_dict()) == dumps_json(synthetic_run.to_dict())
    write_run_outputs(tmp_path, synthetic_run.config, synthetic_run)
    saved = json.loads((tmp_path / "result.json").read_text())
    assert saved["experiment"] == "hooke-trained" and len(saved["tables"]["cells"]) == 4
    assert len(saved["records"]) == 8 and (tmp_path / "records.csv").read_text().count("\n") == 9
    assert "| k | l |" in (tmp_path / "summary.md").read_text()
    for name in ("deltas_vs_l.png", "ratio_vs_k.png"):
        assert (tmp_path / name).stat().st_size > 10_000


def test_hooke_trained_on_real_text_with_a_small_config():
    from tokentree.experiments.hooke_trained import Config, run

    config = Config(data="real", bpe_vocab=300, **{**SMALL, "n_seeds": 1, "k_values": (10.0,), "n_eval": 40})
    result = run(config, show_progress=False)
    assert len(result.records) == 2
    r = result.records[0]
    assert r.n_pretrain == 400 and r.n_align == 40 and r.n_perturb == 4
    assert all(math.isfinite(x.ratio) for x in result.records)
    assert all(x.delta_perturb_bits < 0 for x in result.records)


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(l_values=(0.0, 0.5)), r"l_values\[0\] must be a finite number > 0"),
        (dict(l_values=(0.5, 0.2)), "positive and increasing"),
        (dict(k_values=(1.0,)), r"k_values\[0\] must be a finite number > 1"),
        (dict(lr_finetune=float("nan")), "lr_finetune must be a finite number > 0"),
        (dict(threads=0), "threads must be an integer >= 1"),
        (dict(n_pretrain=100, k_values=(1000.0,)), "less than one response"),
        (dict(data="tweets"), "data must be one of"),
    ],
)
def test_hooke_trained_rejects_bad_configs(change, message):
    from tokentree.experiments.hooke_trained import Config

    with pytest.raises(InputError, match=message):
        Config(**change)


def test_hooke_trained_refuses_perturbation_steps_that_do_not_grow():
    from tokentree.experiments.hooke_trained import Config, run

    config = Config(data="synthetic", **{**SMALL, "k_values": (100.0,), "l_values": (0.25, 0.3)})
    with pytest.raises(InputError, match="which do not grow"):
        run(config, show_progress=False)


@pytest.mark.parametrize(
    ("name", "damage"),
    [
        ("config.json", b"{not json"),
        ("config.json", b'{"model": {"vocab_size": "x"}}'),
        ("model.safetensors", b"\x00" * 40),
        ("optimizer.pt", b"PK\x03\x04 truncated zip"),
    ],
)
def test_corrupt_checkpoint_files_are_named(tmp_path, name, damage):
    trainer = Trainer(SHAPE, seed=0)
    folder = trainer.save(tmp_path / "ckpt")
    (folder / name).write_bytes(damage)
    with pytest.raises(InputError, match=f"{name}.*(corrupt|does not match)"):
        load_checkpoint(folder)


def test_checkpoints_never_replace_a_foreign_folder(tmp_path):
    from tokentree.errors import OutputPathError

    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    with pytest.raises(OutputPathError, match=r"notes\.txt"):
        Trainer(SHAPE, seed=0).save(folder)
    assert (folder / "notes.txt").read_text() == "mine"
    Trainer(SHAPE, seed=0).save(tmp_path / "ckpt")
    Trainer(SHAPE, seed=1).save(tmp_path / "ckpt")  # an earlier checkpoint is replaced


@pytest.mark.parametrize(("option", "value"), [("lr", -1.0), ("lr", float("nan")), ("threads", 0), ("seed", -1)])
def test_trainer_settings_are_validated(option, value):
    with pytest.raises(InputError, match=f"{option} must be"):
        Trainer(SHAPE, **{option: value})
