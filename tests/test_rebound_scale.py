"""rebound-scale (docs/experiments.md §E4x): its claims on fabricated rows, and what its `--quick` run reports."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math

import pytest

from tokentree.cli import main
from tokentree.infra.errors import InputError
from tokentree.verification.trained_scale import ScaleCurve, judge

EMPIRICAL = {"holds", "fails", "within noise", "not detectable at this regime"}


def _rows(table, sweep="size", n_pos=30):
    """ScaleCurve rows from ``table[seed][level]`` = initial drop / gain (levels: sizes or shares of pre-training)."""
    shares = [0.2, 0.6, 1.0][-len(table[0]):]
    out = []
    for seed, values in enumerate(table):
        for i, v in enumerate(values):
            share = shares[i] if sweep == "volume" else 1.0
            out.append(ScaleCurve(seed, sweep, i if sweep == "size" else 1, 1000 * 10**i if sweep == "size" else 10_000,
                                  round(share * 100_000), share, n_pos, 1.0, v, v, 50.0, 1.0))
    return out


RISING = [[0.01 + 0.002 * s, 0.02 + 0.001 * (s % 3), 0.03 + 0.001 * s] for s in range(8)]
MIXED = [[0.01, 0.02, 0.03] if s % 2 else [0.03, 0.02, 0.01] for s in range(8)]


@pytest.mark.parametrize(("table", "status"), [
    (RISING, "holds"),  # every seed increases with size
    ([v[::-1] for v in RISING], "fails"),  # every seed decreases: significant the other way
    (MIXED, "within noise"),  # half the seeds each way
    (RISING[:5], "not detectable at this regime"),  # 5 seeds < MIN_SEEDS = 8
])
def test_the_size_claim_is_a_trend_test_over_seeds(table, status):
    """S1 is Page's L over seeds as blocks (3 sizes): holds / fails / within noise / not detectable."""
    s1 = judge(_rows(table), [30], [1.0])[0]
    assert (s1.item, s1.status.value) == ("S1", status)
    assert s1.values["n"] == len(table) and "Page's L" in s1.evidence and "stage-1 gains" in s1.evidence


def test_two_sizes_use_a_slope_on_log_parameters_and_n_pos_cells_are_holm_corrected():
    two = [[0.01 + 0.001 * s, 0.02 + 0.002 * (s % 3)] for s in range(8)]
    rows = _rows(two, n_pos=30) + _rows(two, n_pos=60)
    s1 = judge(rows, [30, 60], [1.0])[0]
    assert s1.status.value == "holds" and s1.values["n_pos 30.cells"] == 2
    # the slope per log parameter of each seed: (v1 - v0) / ln 10, averaged
    slopes = [(v[1] - v[0]) / math.log(10) for v in two]
    assert s1.values["n_pos 30.effect"] == pytest.approx(sum(slopes) / len(slopes))
    assert s1.values["n_pos 60.p_adjusted"] >= s1.values["n_pos 60.p_value"]


def test_volume_claims_and_the_premise_gate():
    rows = _rows(RISING, sweep="volume")
    s1, s2, s3 = judge(rows, [30], [0.2, 0.6, 1.0])
    assert s1.status.value == "not detectable at this regime" and s1.values == {"cells": 0.0}  # no size rows
    assert (s2.status.value, s3.status.value) == ("holds", "holds")
    assert s3.values["effect"] == pytest.approx(sum(v[2] - v[0] for v in RISING) / 8)
    # outside the premise the same numbers are "not detectable at this regime", with the reason and the values
    gated = judge(rows, [30], [0.2, 0.6, 1.0], untestable=("", "k = 12 < 100"))
    assert [v.status.value for v in gated[1:]] == ["not detectable at this regime"] * 2
    assert "k = 12 < 100" in gated[2].evidence and gated[2].values["effect"] == s3.values["effect"]


def test_seeds_whose_stage_1_did_not_take_are_left_out():
    table = [list(v) for v in RISING] + [[math.nan, 0.02, 0.03]]
    s1 = judge(_rows(table), [30], [1.0])[0]
    assert s1.status.value == "holds" and s1.values["n"] == 8


def test_the_base_rate_sweep_judges_the_size_claim_again_at_each_learning_rate():
    rows = _rows(RISING) + [dataclasses.replace(r, lr_scale=0.5) for r in _rows([v[::-1] for v in RISING])]
    verdicts = judge(rows, [30], [1.0], lr_scales=(0.5, 1.0), lr_untestable={0.5: "", 1.0: ""})
    assert [(v.item, v.status.value) for v in verdicts] == [
        ("S1", "holds"), ("S2", "not detectable at this regime"), ("S3", "not detectable at this regime"),
        ("S1@lr x0.5", "fails")]


# ----------------------------------------------------------------------------- the data and the base
def test_remark_share_keeps_the_documents_and_drops_only_remarks():
    from tokentree.data.language import BehaviourLanguage

    lang = BehaviourLanguage(seed=0)
    full = lang.pretraining_text(2000, seed=3)
    # the default is byte for byte the text of the versions before the option (digest taken on main, 2026-12-04)
    assert hashlib.sha256("\n".join(full).encode()).hexdigest()[:16] == "ec6602084f7e696f"
    cut = lang.pretraining_text(2000, seed=3, remark_share=0.25)
    kept = [f == c for f, c in zip(full, cut, strict=True)]
    assert all(f.startswith(c) for f, c in zip(full, cut, strict=True))
    assert 0.2 < sum(kept) / len(kept) < 0.3
    assert all(lang.label(c.split(" answer : ")[1], "sentiment") is None for c, k in zip(cut, kept, strict=True)
               if not k)  # no remark left to read
    with pytest.raises(InputError, match="remark_share"):
        lang.pretraining_text(10, seed=0, remark_share=1.5)


@pytest.fixture(scope="module")
def behaviour():
    from tokentree.data.sources import behaviour_data

    return behaviour_data("synthetic", axis="sentiment", positive="", negative="", n_pretrain=300, n_aligned=10,
                          n_misaligned=10, n_eval=8, seed=0)


def test_annealed_snapshots_leave_the_run_alone(behaviour):
    """A snapshot annealed on a copy of the run (optimiser state included) sees more steps; the run is unchanged."""
    import torch

    from tokentree.lab.base import BaseSettings, prepare_base

    settings = BaseSettings(vocab_size=300, n_layers=1, d_model=16, n_heads=2, pretrain_tokens=12_000)
    plain = prepare_base(behaviour, settings, seed=0, snapshot_fractions=(0.3, 0.6))
    annealed = prepare_base(behaviour, settings, seed=0, snapshot_fractions=(0.3, 0.6), snapshot_anneal_share=0.5)
    assert plain.pretrain_losses == annealed.pretrain_losses
    assert all(torch.equal(p, q) for p, q in zip(plain.model.parameters(), annealed.model.parameters(), strict=True))
    for f in (0.3, 0.6):
        assert annealed.snapshot_tokens[f] > plain.snapshot_tokens[f] > 0
        assert not all(torch.equal(p, q) for p, q in zip(plain.snapshots[f].parameters(),
                                                         annealed.snapshots[f].parameters(), strict=True))
    with pytest.raises(InputError, match="inside the warmup"):
        prepare_base(behaviour, dataclasses.replace(settings, warmup_share=0.5), seed=0, snapshot_fractions=(0.3,),
                     snapshot_anneal_share=0.1)


# ----------------------------------------------------------------------------- the quick run
@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    out = tmp_path_factory.mktemp("rebound-scale") / "quick"
    assert main(["run", "rebound-scale", "--quick", "--out", str(out)]) == 0
    return json.loads((out / "result.json").read_text()), out


def test_rebound_scale_sweeps_size_and_pre_training(quick):
    r, out = quick
    config, rows = r["config"], r["records"]
    for seed in range(config["n_seeds"]):
        size = sorted((x for x in rows if x["seed"] == seed and x["sweep"] == "size"), key=lambda x: x["size_index"])
        volume = sorted((x for x in rows if x["seed"] == seed and x["sweep"] == "volume"),
                        key=lambda x: x["pretrain_fraction"])
        assert [x["size_index"] for x in size] == list(range(len(config["sizes"])))
        assert [x["n_parameters"] for x in size] == sorted({x["n_parameters"] for x in size})
        assert [x["pretrain_fraction"] for x in volume] == config["fractions"]
        assert [x["pretrain_tokens"] for x in volume] == sorted({x["pretrain_tokens"] for x in volume})
        # the end of the volume sweep is the middle model of the size sweep: the same model, the same curve
        middle = size[len(size) // 2]
        same = [k for k in middle if k != "sweep"]
        assert [volume[-1][k] for k in same] == [middle[k] for k in same]
        for x in rows:
            if x["initial_drop_normalised"] is not None:
                assert x["initial_drop_normalised"] == pytest.approx(x["initial_drop"] / x["stage1_gain_nats"])
    assert [v["item"] for v in r["verdicts"]] == ["S1", "S2", "S3"]
    assert {v["status"] for v in r["verdicts"]} <= EMPIRICAL and all(v["values"] for v in r["verdicts"])
    # two seeds, k below 100 and lr 1e-3: no claim can be decided, and the verdicts say why
    assert {v["status"] for v in r["verdicts"]} == {"not detectable at this regime"}
    assert all("k = " in v["evidence"] and "fine-tuning lr" in v["evidence"] for v in r["verdicts"])
    regime = r["tables"]["regime"]
    assert [(g["seed"], g["size_index"]) for g in regime] == [(s, i) for s in range(config["n_seeds"])
                                                              for i in range(len(config["sizes"]))]
    widths = [w for _, w, _ in config["sizes"]]
    for g in regime:
        size = next(x for x in rows if (x["seed"], x["sweep"], x["size_index"]) == (g["seed"], "size", g["size_index"]))
        assert g["pretrain_tokens"] == size["pretrain_tokens"] and not g["premise_met"] and g["k"] < 100
        assert g["pretrain_lr"] == pytest.approx(config["pretrain_lr"] * widths[0] / widths[g["size_index"]])
        assert g["fine_tune_lr"] == pytest.approx(config["lr_align"] * widths[0] / widths[g["size_index"]])
    assert "Regime (seed 0): size 0: k = " in (out / "summary.md").read_text()
    assert (out / "rebound_scale.png").stat().st_size > 0


@pytest.mark.parametrize(("changes", "message"), [
    (dict(sizes=((1, 32, 2),)), "at least two models"),
    (dict(sizes=((1, 32),)), "layers, width, heads"),
    (dict(fractions=(0.5, 0.9)), "end at 1.0"),
    (dict(negative="bad.jsonl"), "read only with data = 'files'"),
    (dict(warmup_share=0.05), "inside the warmup"),
    (dict(lr_factors=(1.0, 0.5)), "one positive factor per size"),
    (dict(lr_scales=(0.0,)), "positive multiples"),
    (dict(data="tweets"), "remark_share < 1"),
])
def test_bad_rebound_scale_configs_are_refused(changes, message):
    from tokentree.experiments.rebound_scale import Config

    with pytest.raises(InputError, match=message):
        Config(**changes)
