"""The paper's empirical claims on trained models: rebound, resistance (docs/experiments.md §E4r, §E4s).

The `--quick` runs come from the session fixture `quick_runs` (the command line, as a user
runs them); these tests check that what they report is consistent with what they measured,
that the count model in them is its closed form, and that a run is reproducible.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math

import numpy as np
import pytest

from tokentree.cli import main
from tokentree.compression.count_rebound import count_model_rebound
from tokentree.infra.errors import InputError
from tokentree.infra.results import dumps_json
from tokentree.verification import curves

EMPIRICAL = {"holds", "fails", "within noise"}


def _result(quick_runs, name):
    return json.loads((quick_runs[name] / "result.json").read_text())


def _null(value):
    return math.inf if value is None else value


# ----------------------------------------------------------------------------- rebound
def test_rebound_curves_are_read_off_the_measured_points(quick_runs):
    r = _result(quick_runs, "rebound")
    config = r["config"]
    amounts = [round(v * config["scale"]) for v in config["n_neg_values"]]
    assert [v["item"] for v in r["verdicts"]] == ["R1", "R2", "R3", "R4", "R6"]
    assert {v["status"] for v in r["verdicts"]} <= EMPIRICAL | {"not detectable at this regime"}
    assert r["config"]["axis"] == "safety" and all(v["values"] for v in r["verdicts"])
    budgets = [p["pretrain_tokens"] for p in r["records"] if p["stage"] == "base"]  # one base per seed
    assert [x["pretrain_tokens"] for x in r["tables"]["regime"]] == pytest.approx(budgets, rel=0.05)
    for curve in r["tables"]["curves"]:
        seed, n_pos = curve["seed"], curve["n_pos"]
        points = sorted((p for p in r["records"] if (p["seed"], p["n_pos"], p["stage"]) == (seed, n_pos, "curve")),
                        key=lambda p: p["n_neg"])
        base = next(p for p in r["records"] if (p["seed"], p["stage"]) == (seed, "base"))
        assert [p["n_neg"] for p in points] == amounts
        odds = [p["log_odds_nats"] for p in points]
        kl = [p["kl_to_base_nats"] for p in points]
        assert base["kl_to_base_nats"] == pytest.approx(0.0, abs=1e-6) and all(k > 0 for k in kl)
        assert curve["stage1_gain_nats"] == pytest.approx(odds[0] - base["log_odds_nats"])
        assert curve["initial_slope"] == pytest.approx((odds[0] - odds[1]) / amounts[1])
        assert curve["epsilon_nats"] == pytest.approx(config["epsilon_share"] * kl[0])
        assert _null(curve["negatives_to_epsilon"]) == curves.first_at_most(amounts, kl, curve["epsilon_nats"])
        assert curve["min_kl_nats"] == pytest.approx(min(kl))
        decision = [p["decision_kl_nats"] for p in points]
        assert curve["decision_kl_after_stage1_nats"] == pytest.approx(decision[0]) and curve["kl_floor_nats"] >= 0
        assert _null(curve["negatives_to_floor"]) == curves.first_at_most(amounts, decision, curve["kl_floor_nats"])
        # the log-odds and the KL both move: stage 2 changed the model at every step
        assert len(set(odds)) == len(odds) and len(set(kl)) == len(kl)


def test_the_count_model_in_the_rebound_run_is_its_closed_form(quick_runs):
    r = _result(quick_runs, "rebound")
    rows = r["tables"]["count_model"]
    assert [m["n_pos"] for m in rows] == sorted(m["n_pos"] for m in rows)
    for m in rows:
        b = (m["beta_1"], m["beta_2"], m["beta_3"])
        n_p, n_pos = m["n_pretrain"], m["n_pos"]
        assert sum(b) == pytest.approx(1.0) and n_p == r["config"]["n_pretrain_docs"]
        assert m["initial_kl_slope"] == pytest.approx(-n_pos / (n_p * (n_p + n_pos)))
        assert m["return_count"] == pytest.approx(n_pos * b[2] / b[1])
        assert m["negatives_at_min_kl"] == pytest.approx(n_pos * b[2] / (1 - b[2]))
        kl = count_model_rebound(n_p, b, n_pos, [0.0]).kl_nats
        assert kl[0] == pytest.approx(m["kl_after_stage1_nats"])
        if m["negatives_to_epsilon"] is None:  # its minimum is above epsilon (beta_1 > 0 on the safety axis)
            assert m["min_kl_nats"] > m["epsilon_nats"]
        else:
            at = count_model_rebound(n_p, b, n_pos, [m["negatives_to_epsilon"]]).kl_nats
            assert at[0] == pytest.approx(m["epsilon_nats"], rel=1e-6)
    returns = [m["return_count"] for m in rows]  # R5 is a reference line: it grows with n_pos by construction
    assert all(b > a for a, b in itertools.pairwise(returns))
    assert "R5" not in {v["item"] for v in r["verdicts"]}


SMALL_REBOUND = dict(n_seeds=1, n_pos_values=(1000, 2000), scale=0.02)


def test_rebound_is_deterministic():
    from tokentree.experiments.rebound import Config, run

    config = dataclasses.replace(Config.quick(), **SMALL_REBOUND)
    first, second = (dumps_json(run(config, show_progress=False).to_dict()) for _ in range(2))
    assert first == second


def _write_jsonl(path, chats, as_pairs):
    with open(path, "w") as f:
        for chat in chats:
            record = ({"prompt": chat[0]["content"], "response": chat[-1]["content"]} if as_pairs
                      else {"messages": list(chat)})
            f.write(json.dumps(record) + "\n")


def test_rebound_on_the_users_own_files(tmp_path):
    """--data files: the user's JSONL (prompt/response pairs or chat messages), scored by VADER."""
    import numpy as np

    from tokentree.data.language import BehaviourLanguage
    from tokentree.experiments.rebound import Config, run

    language, rng = BehaviourLanguage(seed=0), np.random.default_rng(0)
    pairs = [language.pair(rng, axis="sentiment") for _ in range(80)]
    _write_jsonl(tmp_path / "good.jsonl", [a.messages for a, _ in pairs], as_pairs=False)
    _write_jsonl(tmp_path / "bad.jsonl", [b.messages for _, b in pairs], as_pairs=True)
    files = dict(data="files", positive=str(tmp_path / "good.jsonl"), negative=str(tmp_path / "bad.jsonl"))
    result = run(dataclasses.replace(Config.quick(), **SMALL_REBOUND, **files), show_progress=False)
    assert {p.n_pos for p in result.records if p.stage == "curve"} == {20, 40}
    assert all(math.isfinite(p.log_odds_nats) for p in result.records)
    # pre-training is generic text (mostly neither behaviour for VADER) plus half of each file: all three
    # components are there, so the count model's KL cannot come back to zero
    model = result.count_model[0]
    assert all(b > 0.05 for b in model.betas) and model.min_kl_nats > 0

    missing = ["run", "rebound", "--quick", "--data", "files", "--positive", files["positive"],
               "--out", str(tmp_path / "out")]
    assert main(missing) == 2
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(("changes", "message"), [
    (dict(data="files"), "needs positive and negative JSONL files"),
    (dict(positive="x.jsonl"), "read only with data = 'files'"),
    (dict(n_neg_values=(100, 200, 500)), "must start at 0"),
    (dict(n_pos_values=(2000, 1000)), "n_pos_values must increase"),
    (dict(scale=0.001), "makes amounts of the grid coincide"),
    (dict(axis="politeness"), "axis"),
    (dict(epsilon_share=1.5), "epsilon_share"),
    (dict(pretrain_scales=(0.1, 0.5, 2.0, 3.0)), "including 1"),
    (dict(pretrain_scales=(0.1, 1.0)), "at least 4"),
])
def test_bad_rebound_configs_are_refused_with_the_fix(changes, message):
    from tokentree.experiments.rebound import Config

    with pytest.raises(InputError, match=message):
        Config(**changes)


# ----------------------------------------------------------------------------- resistance
def test_resistance_records_the_2x2_design_on_both_bases(quick_runs):
    r = _result(quick_runs, "resistance")
    rows = r["records"]
    assert {(x["base"], x["pair"]) for x in rows} == {(b, p) for b in ("full", "barely") for p in ("1-2", "1-3", "2-3")}
    assert len(rows) == r["config"]["n_seeds"] * len(r["config"]["axes"]) * 6
    for x in rows:
        assert x["gap"] == pytest.approx(x["forward_loss"] - x["inverse_loss"])
        assert x["contrast_nats"] == pytest.approx((x["heldout_forward_nats"] - x["heldout_stay_late_nats"])
                                                   - (x["heldout_inverse_nats"] - x["heldout_stay_early_nats"]))
        assert x["kl_return_excess_nats"] == pytest.approx(-x["inverse_delta_kl_nats"] - x["forward_delta_kl_nats"])
        assert 0 < x["inverse_loss"] < 20 and 0 < x["heldout_forward_nats"] < 20
    assert [v["item"] for v in r["verdicts"]] == ["T0", "T1", "T2", "T3", "T4"]
    assert {v["status"] for v in r["verdicts"]} == {"not detectable at this regime"}  # 2 seeds, k about 20
    assert all(v["values"] for v in r["verdicts"])
    slices, regime = r["tables"]["slices"], r["tables"]["regime"]
    assert len(slices) == len(rows) // 3 and all(0 < s["n_heldout"] < s["n_prompts"] for s in slices)
    assert len(regime) == r["config"]["n_seeds"] and all(not g["premise_met"] and g["k"] < 100 for g in regime)


def test_resistance_is_deterministic_and_checks_its_config():
    from tokentree.experiments.resistance import Config, run

    config = dataclasses.replace(Config.quick(), n_seeds=1, n_align=48, n_samples=16, barely=False)
    first, second = (dumps_json(run(config, show_progress=False).to_dict()) for _ in range(2))
    assert first == second
    with pytest.raises(InputError, match="n_align must be an integer >= 3"):
        Config(n_align=2)
    with pytest.raises(InputError, match="axes"):
        Config(axes=("style", "nonsense"))
    with pytest.raises(InputError, match="including n_align"):
        Config(align_values=(300, 60, 12, 3), n_align=100)


def _transfer(seed, pair, contrast, *, base="full", gap=0.01, kl=0.001):
    from tokentree.lab.transfer import TransferRecord

    return TransferRecord(seed, "safety", base, 96, pair, 1.0 + gap, 1.0, gap, 1.0 + contrast, 1.0, 1.0, 1.0, contrast,
                          0.0, kl, -2 * kl, kl)


def _slices(seed, share_1=0.6, share_3=0.9):
    from tokentree.lab.transfer import SliceRecord

    return SliceRecord(seed, "safety", "full", 96, share_1, 0.75, share_3, 32, 8)


def _resistance_statuses(contrast, *, shares=(0.6, 0.9), regime_k=1000.0, noise=0.002, barely=0.0):
    from tokentree.experiments.resistance import judge
    from tokentree.lab.regime import training_regime

    rng = np.random.default_rng(1)
    records = [_transfer(s, p, contrast + rng.normal(0, noise), gap=contrast + rng.normal(0, noise))
               for s in range(8) for p in ("1-2", "1-3", "2-3")]
    records += [_transfer(s, p, barely + rng.normal(0, noise), base="barely") for s in range(8) for p in ("1-2", "1-3",
                                                                                                          "2-3")]
    slices = [_slices(s, shares[0] + rng.normal(0, 0.01), shares[1] + rng.normal(0, 0.01)) for s in range(8)]
    regime = training_regime(pretrain_tokens=int(regime_k * 1000), behaviour_tokens=1000, transfer_tokens=500,
                             pretrain_losses=[2.0] * 100, fine_tune_lr=1e-4, warmup_steps=5, warn=False)
    verdicts = judge(records, slices, [regime] * 8, n_align=96)
    assert all(v.values for v in verdicts)
    return {v.item: str(v.status) for v in verdicts}


def test_resistance_claims_on_fabricated_cells():
    """Claims judged over seeds with Holm over the cells: one that holds, one that fails, one within noise."""
    assert _resistance_statuses(0.01) == {"T0": "holds", "T1": "holds", "T2": "holds", "T3": "holds", "T4": "holds"}
    assert _resistance_statuses(-0.01)["T2"] == "fails" and _resistance_statuses(-0.01)["T4"] == "fails"
    noisy = _resistance_statuses(0.0, noise=0.01)
    assert noisy["T2"] == "within noise" and noisy["T1"] == "within noise"
    # slices that do not differ, or a run outside the premise: nothing is detectable, whatever the cells say
    flat = _resistance_statuses(0.01, shares=(0.9, 0.9))
    assert flat["T0"] == "within noise" and {flat[t] for t in ("T1", "T2", "T3", "T4")} == {
        "not detectable at this regime"}
    assert set(_resistance_statuses(0.01, regime_k=20.0).values()) == {"not detectable at this regime"}


def test_a_sweep_level_whose_slices_do_not_differ_is_not_detectable_and_neither_is_the_trend():
    """Alignment sets too small to move the model leave D_1 = D_3: no level claim there, no trend across it."""
    from tokentree.experiments.resistance import judge_sweep
    from tokentree.lab.regime import training_regime

    rng = np.random.default_rng(2)
    levels, moved = [96, 24, 6, 3], {96: (0.6, 0.9), 24: (0.6, 0.8), 6: (0.7, 0.7), 3: (0.7, 0.7)}
    records = [dataclasses.replace(_transfer(s, p, 0.0, kl=0.002), n_align=n, kl_return_excess_nats=(
        0.004 if moved[n][0] < moved[n][1] else -5e-5) + rng.normal(0, 5e-4))
        for s in range(8) for n in levels for p in ("1-2", "1-3", "2-3")]
    slices = [dataclasses.replace(_slices(s, moved[n][0] + rng.normal(0, 0.01), moved[n][1] + rng.normal(0, 0.01)),
                                  n_align=n) for s in range(8) for n in levels]
    regimes = [training_regime(pretrain_tokens=10**7, behaviour_tokens=100 * n, transfer_tokens=500,
                               pretrain_losses=[2.0] * 100, fine_tune_lr=1e-4, warmup_steps=5, warn=False)
               for _ in range(8) for n in levels]
    status = {v.item: str(v.status) for v in judge_sweep(records, slices, regimes, levels)}
    assert status["K3@1"] == status["K3@2"] == "holds"
    assert status["K3@3"] == status["K3@4"] == status["K3-trend"] == "not detectable at this regime"
    assert status["K1@1"] == "within noise"  # contrast 0 where the slices do differ


def test_the_sweep_plot_marks_the_levels_that_were_not_detectable():
    from tokentree.plots.resistance import plot_effect_vs_k

    k, effects = np.array([[10.0, 100.0, 1000.0]] * 3), np.arange(9.0).reshape(3, 3)
    fig = plot_effect_vs_k(k, effects, ylabel="effect", testable=[True, False, False])
    hollow = [ln for ln in fig.axes[0].lines if ln.get_label() == "not detectable at this regime"]
    assert len(hollow) == 1 and hollow[0].get_xdata().tolist() == [100.0, 1000.0]
    plain = plot_effect_vs_k(k, effects, ylabel="effect")
    assert not [ln for ln in plain.axes[0].lines if ln.get_label() == "not detectable at this regime"]


def test_the_k_sweeps_run_quick_with_a_verdict_per_k_and_on_the_trend(tmp_path):
    """experiments/resistance-k-sweep.toml and rebound-k-sweep.toml with --quick, as a user runs them."""
    for name in ("resistance", "rebound"):
        out = tmp_path / name
        assert main(["run", name, "--quick", "--config", f"experiments/{name}-k-sweep.toml", "--out", str(out)]) == 0
        r = json.loads((out / "result.json").read_text())
        sweep = [v for v in r["verdicts"] if v["item"].startswith("K")]
        measures = ("K1", "K3") if name == "resistance" else ("K2",)  # resistance: the 2x2 and the KL measure
        assert [v["item"] for v in sweep] == [f"{m}{at}" for m in measures for at in ("@1", "@2", "@3", "@4",
                                                                                          "-trend")]
        assert all(v["values"] for v in sweep)
        k = sorted({round(g["k"], 6) for g in r["tables"]["regime"]})
        assert len(k) >= 4 and k[-1] / k[0] > 20  # quick: 30k pre-training tokens quantise the smallest budgets
        plots = ("contrast_vs_k", "kl_vs_k") if name == "resistance" else ("rebound_vs_k",)
        assert all((out / f"{plot}.png").stat().st_size > 0 for plot in plots)


# rebound-scale: tests/test_rebound_scale.py (its own quick run and claims on fabricated rows)
