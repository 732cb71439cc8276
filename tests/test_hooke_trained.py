"""The hooke-trained experiment: Theorem 4.2 on a trained tiny Llama (docs/experiments.md §E4h)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from tokentree.compression.elasticity import disjoint_closed_form
from tokentree.infra.errors import InputError

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
    from tokentree.framework.runs import write_run_outputs
    from tokentree.infra.results import dumps_json

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




def test_hooke_trained_runs_on_a_model_folder(tmp_path):
    """--model PATH: a saved Hugging Face model folder (here a tiny Llama with its tokenizer) trained further."""
    from tokentree.bridge.tiny import TinySpec, save_model, tiny_llama, train_tiny_tokenizer
    from tokentree.data.text import builtin_texts
    from tokentree.experiments.hooke_trained import Config, run

    tokenizer = train_tiny_tokenizer(builtin_texts("pydoc-paragraphs")[:400], 500)
    model = tiny_llama(TinySpec(vocab_size=len(tokenizer), n_layers=1, d_model=32, n_heads=2, context=64), seed=0)
    folder = save_model(model, tokenizer, tmp_path / "model")
    config = Config(data="real", model=str(folder), device="cpu",
                    **{**SMALL, "n_seeds": 1, "k_values": (10.0,), "n_eval": 40, "pretrain_tokens": 4000})
    result = run(config, show_progress=False)
    assert len(result.records) == 2 and all(math.isfinite(r.ratio) for r in result.records)
    assert result.records[0].n_align == 40 and result.records[0].pretrain_epochs >= 0
    with pytest.raises(InputError, match="needs data = 'real'"):
        Config(model=str(folder))
