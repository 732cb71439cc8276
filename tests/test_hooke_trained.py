"""The hooke-trained experiment: Theorem 4.2 on a trained tiny Llama (docs/experiments.md §E4h)."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest

from tests.device_guard import PretendAccelerator
from tokentree.compression.elasticity import disjoint_closed_form
from tokentree.framework.verdicts import VerdictStatus
from tokentree.infra.errors import InputError
from tokentree.lab.base import BaseSettings
from tokentree.lab.hooke_protocol import FineTuneSettings
from tokentree.verification.trained_hooke import HOOKE_TRAINED_CLAIMS, TrainedRecord

# ----------------------------------------------------------------------------- hooke-trained
BASE = BaseSettings(vocab_size=300, d_model=32, n_heads=2, pretrain_tokens=8000, device="auto")
SMALL = dict(n_seeds=2, k_values=(10.0, 40.0), l_values=(0.1, 0.5), n_pretrain=400, n_eval=100, base=BASE,
             finetune=FineTuneSettings(align_epochs=2))


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
    assert len(saved["tables"]["regime"]) == 2 * 2 and len(saved["verdicts"]) == 3
    # two seeds and k < 100: nothing can be judged, and the verdicts say so (never "fails")
    assert all(v["status"] == "not detectable at this regime" and v["values"] for v in saved["verdicts"])
    for name in ("deltas_vs_l.png", "ratio_vs_k.png"):
        assert (tmp_path / name).stat().st_size > 10_000


def test_hooke_trained_on_real_text_with_a_small_config():
    from tokentree.experiments.hooke_trained import Config, run

    config = Config(data="real", **{**SMALL, "n_seeds": 1, "k_values": (10.0,), "n_eval": 40})
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
        (lambda: dict(finetune=FineTuneSettings(lr=float("nan"))), "lr must be a finite number > 0"),
        (lambda: dict(base=BaseSettings(threads=0)), "threads must be an integer >= 1"),
        (lambda: dict(base=BaseSettings(device="tpu")), "base.device must be one of"),
        (lambda: dict(finetune=FineTuneSettings(protocol="mixed")), "protocol must be one of"),
        (dict(n_pretrain=100, k_values=(1000.0,)), "less than one response"),
        (dict(data="tweets"), "data must be one of"),
    ],
)
def test_hooke_trained_rejects_bad_configs(change, message):
    from tokentree.experiments.hooke_trained import Config

    with pytest.raises(InputError, match=message):
        Config(**(change() if callable(change) else change))


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
    base = BaseSettings(model=str(folder), device="cpu", pretrain_tokens=4000)
    config = Config(data="real", **{**SMALL, "base": base, "n_seeds": 1, "k_values": (10.0,), "n_eval": 40})
    with PretendAccelerator():  # as on a GPU (tests/device_guard.py)
        result = run(config, show_progress=False)
    assert len(result.records) == 2 and all(math.isfinite(r.ratio) for r in result.records)
    assert result.records[0].n_align == 40 and result.records[0].pretrain_epochs >= 0
    assert result.table("regime")[0]["premise_met"] is False  # only SmolLM2 counts as pre-trained elsewhere
    with pytest.raises(InputError, match="needs data = 'real'"):
        Config(base=base)


def test_the_sequential_variant_forgets_more_of_d_p_in_alignment_than_pooled_training():
    """The labelled variant trains D_a alone, so alignment moves gamma_p; pooled training keeps D_p in the data."""
    from tokentree.experiments.hooke_trained import Config, run

    small = {**SMALL, "n_seeds": 1, "k_values": (10.0,)}
    pooled = run(Config(data="synthetic", **small), show_progress=False)
    seq = run(Config(data="synthetic", **{**small, "finetune": FineTuneSettings(protocol="sequential", lr=1e-3,
                                                                                   align_epochs=3)}),
              show_progress=False)
    forget = [abs(r.cells[0].alignment_change_pretrain_bits) for r in (pooled, seq)]
    assert forget[0] < forget[1]
    assert "pooled training" in pooled.title() and "sequential" in seq.intro()


# ----------------------------------------------------------------------------- claims on fabricated rows
def _rows(deltas_align, deltas_pretrain, *, k=100.0):
    return [TrainedRecord(**{f.name: 0.0 for f in dataclasses.fields(TrainedRecord)}
                          | dict(seed=s, step=0, k=k, k_requested=k, l=0.2, n_pretrain=1, pretrain_epochs=1, n_align=1,
                                 n_perturb=1, delta_align_bits=a, delta_pretrain_bits=p,
                                 mixture_delta_align_bits=1e-3 / k, mixture_delta_pretrain_bits=-1e-5 / k))
            for s, (a, p) in enumerate(zip(deltas_align, deltas_pretrain, strict=True))]


def _regime(ks, n=8, problems=""):
    return [{"seed": s, "k_requested": k, "premise_met": not problems, "problems": problems} for k in ks
            for s in range(n)]


def _judge(tables):
    return {c.item: c.verdict(tables) for c in HOOKE_TRAINED_CLAIMS}


UP = [0.011, 0.012, 0.009, 0.013, 0.010, 0.012, 0.011, 0.014]
NOISE = [0.01, -0.012, 0.004, -0.003, 0.008, -0.009, 0.002, -0.001]


def test_h1_h2_hold_when_every_seed_moves_the_claimed_way():
    t = {"records": _rows(UP, [-x / 100 for x in UP]), "regime": _regime([100.0])}
    v = _judge(t)
    assert v["H1"].status == VerdictStatus.HOLDS and v["H2"].status == VerdictStatus.HOLDS
    assert v["H1"].values["k=100.n"] == 8 and v["H1"].values["k=100.p_value"] < 0.05
    assert "mixture on the same data" in v["H1"].evidence


def test_h1_fails_only_when_the_opposite_direction_is_significant():
    v = _judge({"records": _rows([-x for x in UP], NOISE), "regime": _regime([100.0])})
    assert v["H1"].status == VerdictStatus.FAILS
    assert v["H2"].status == VerdictStatus.WITHIN_NOISE and "could not be seen" in v["H2"].evidence


def test_claims_are_not_detectable_outside_the_premise_or_with_few_seeds():
    outside = _judge({"records": _rows(UP, UP), "regime": _regime([100.0], problems="k = 10 < 100")})
    assert all(x.status == VerdictStatus.NOT_DETECTABLE for x in outside.values())
    assert "not detectable at this regime: k = 100: k = 10 < 100" in outside["H1"].evidence
    few = _judge({"records": _rows(UP[:4], UP[:4]), "regime": _regime([100.0], n=4)})
    assert few["H1"].status == VerdictStatus.NOT_DETECTABLE and "fewer than the 8" in few["H1"].evidence


def test_h3_reads_the_slope_of_the_change_against_k():
    rows = _rows(UP, UP, k=100.0) + _rows([x / 10 for x in UP], UP, k=1000.0)
    v = _judge({"records": rows, "regime": _regime([100.0, 1000.0])})
    assert v["H3"].status == VerdictStatus.HOLDS
    assert v["H3"].values["mixture_slope"] == pytest.approx(-1.0)
    assert v["H3"].values["effect"] == pytest.approx(-np.log(10) / np.log(10), rel=0.2)
