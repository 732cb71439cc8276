"""The count model of rebound against its closed forms, and the helpers that read curves and judge claims."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tokentree.compression.count_rebound import (
    count_model_initial_slope,
    count_model_minimum,
    count_model_negatives_to_kl,
    count_model_rebound,
    count_model_return_count,
)
from tokentree.infra.errors import InputError
from tokentree.verification import curves, paper

shares = st.tuples(
    st.one_of(st.just(0.0), st.floats(0.01, 0.8)), st.floats(0.05, 1.0), st.floats(0.05, 1.0)
).map(lambda b: tuple(x / sum(b) for x in b))
sizes = st.tuples(st.integers(100, 100_000), st.integers(1, 50_000))


def _kl(n_p, b, n_pos, n_neg):
    return float(count_model_rebound(n_p, b, n_pos, [n_neg]).kl_nats[0])


def _direct_kl(n_p, b, n_pos, n_neg):
    """KL(P_p || q) written out from the counts, without the module's vectorised path."""
    counts = [n_p * b[0], n_p * b[1] + n_pos, n_p * b[2] + n_neg]
    total = sum(counts)
    return sum(bi * math.log(bi / (c / total)) for bi, c in zip(b, counts, strict=True) if bi > 0)


@given(shares, sizes, st.floats(0, 20_000))
def test_the_kl_is_the_divergence_of_the_component_weights(b, size, n_neg):
    n_p, n_pos = size
    assert _kl(n_p, b, n_pos, n_neg) == pytest.approx(_direct_kl(n_p, b, n_pos, n_neg), rel=1e-9, abs=1e-13)


@given(shares, sizes)
def test_the_initial_slope_is_the_derivative_at_zero(b, size):
    n_p, n_pos = size
    h = 1e-6 * n_p
    f = [_direct_kl(n_p, b, n_pos, i * h) for i in range(3)]
    numeric = (-3 * f[0] + 4 * f[1] - f[2]) / (2 * h)  # one-sided, second order (n_neg cannot go below 0)
    closed = count_model_initial_slope(n_p, n_pos)
    assert closed < 0  # the slope does not depend on beta
    assert numeric == pytest.approx(closed, rel=1e-3, abs=1e-12)


@given(shares, sizes)
def test_the_minimum_is_where_the_closed_form_puts_it(b, size):
    n_p, n_pos = size
    at, lowest = count_model_minimum(n_p, b, n_pos)
    assert at == pytest.approx(n_pos * b[2] / (1 - b[2]))
    assert lowest == pytest.approx(_direct_kl(n_p, b, n_pos, at), abs=1e-12)
    for step in (0.9, 1.1):  # a minimum: both sides are at least as far
        assert _direct_kl(n_p, b, n_pos, at * step) >= lowest - 1e-12
    if b[0] == 0:
        assert lowest == pytest.approx(0.0, abs=1e-12)


def test_the_minimum_is_above_zero_exactly_when_some_pre_training_shows_neither_behaviour():
    at, lowest = count_model_minimum(1000, [0.5, 0.25, 0.25], 1000)
    assert lowest > 0.01 and at == pytest.approx(1000 / 3)
    # and it grows with the alignment set: the excess of component 2 stays
    assert count_model_minimum(1000, [0.5, 0.25, 0.25], 2000)[1] > lowest
    assert count_model_minimum(1000, [0.0, 0.5, 0.5], 1000)[1] == pytest.approx(0.0, abs=1e-15)


@given(shares, sizes)
def test_the_behaviour_proxy_is_back_after_the_return_count(b, size):
    n_p, n_pos = size
    back = count_model_return_count(b, n_pos)
    assert back == pytest.approx(n_pos * b[2] / b[1])
    r = count_model_rebound(n_p, b, n_pos, [0.0, back])
    assert r.proxy[0] < r.proxy_pretrained
    assert r.proxy[1] == pytest.approx(r.proxy_pretrained, rel=1e-9)


def test_the_return_count_grows_with_alignment_the_opposite_of_table_3():
    counts = [count_model_return_count([0.2, 0.5, 0.3], n) for n in paper.TABLE_3_N_POSITIVE]
    assert all(b > a for a, b in itertools.pairwise(counts))
    assert all(b < a for a, b in itertools.pairwise(paper.TABLE_3_NEGATIVES["Llama2-7B"]))


@given(shares, sizes, st.floats(0.01, 0.99))
def test_negatives_to_a_kl_level_land_on_that_level(b, size, share):
    n_p, n_pos = size
    start = _kl(n_p, b, n_pos, 0.0)
    _, lowest = count_model_minimum(n_p, b, n_pos)
    level = lowest + share * (start - lowest)
    if not start - lowest > 1e-12:
        return
    n = count_model_negatives_to_kl(n_p, b, n_pos, level)
    assert _kl(n_p, b, n_pos, n) == pytest.approx(level, rel=1e-6, abs=1e-13)
    if lowest > 1e-9:
        assert count_model_negatives_to_kl(n_p, b, n_pos, lowest / 2) == math.inf


def test_bad_count_model_inputs_name_the_problem():
    with pytest.raises(InputError, match="beta_2, beta_3 > 0"):
        count_model_rebound(100, [0.5, 0.5, 0.0], 10, [0])
    with pytest.raises(InputError, match="n_pretrain must be > 0"):
        count_model_rebound(0, [0.2, 0.4, 0.4], 10, [0])
    with pytest.raises(InputError, match="n_neg must be finite"):
        count_model_rebound(100, [0.2, 0.4, 0.4], 10, [-1.0])


# ----------------------------------------------------------------------------- reading curves
def test_curve_readings_interpolate_between_measured_points():
    n, v = [0, 100, 200, 500, 1000], [3.0, 1.0, 0.5, 0.25, 0.0]
    assert curves.initial_slope(n, v) == pytest.approx(0.02)
    assert curves.drop_share(n, v, 250) == pytest.approx((3.0 - (0.5 - 0.25 * 50 / 300)) / 3.0)
    assert curves.knee(n, v) == pytest.approx(75.0)
    assert curves.first_at_most(n, v, 0.0) == 1000.0
    assert curves.first_at_most(n, v, 3.0) == 0.0
    assert curves.first_at_most(n, v, -1.0) == math.inf
    flat = [1.0, 1.0, 1.2, 1.1, 1.3]  # no drop: the readings that need one are undefined
    assert math.isnan(curves.knee(n, flat)) and math.isnan(curves.drop_share(n, flat, 250))
    for bad_n in ([1, 100], [0, 100, 100], [0]):
        with pytest.raises(InputError, match="increasing amounts starting from 0"):
            curves.initial_slope(bad_n, [1.0] * len(bad_n))


# ----------------------------------------------------------------------------- the redesigned claims (issue 25)
from tokentree.experiments import rebound as rebound_experiment  # noqa: E402
from tokentree.lab.probe import decision_positions  # noqa: E402
from tokentree.lab.regime import training_regime  # noqa: E402
from tokentree.verification.curves import CurveRecord, normalised_counts  # noqa: E402
from tokentree.verification.trained import premise_problems, sweep_verdicts  # noqa: E402

N_POS = [20, 40, 100]
_CURVE_DEFAULTS = dict(base_log_odds_nats=0.0, stage1_log_odds_nats=1.0, stage1_gain_nats=1.0, stage1_score=0.9,
                       initial_slope=0.01, initial_slope_normalised=0.01, drop_share_quarter=0.5, knee=10.0,
                       kl_after_stage1_nats=0.1, epsilon_nats=0.004, negatives_to_epsilon=math.inf, min_kl_nats=0.01,
                       negatives_at_min_kl=10.0, negatives_to_base_behaviour=10.0, base_score=0.5)


def _regime(k=1000.0, lr=1e-4):
    return training_regime(pretrain_tokens=int(k * 1000), behaviour_tokens=1000, transfer_tokens=500,
                           pretrain_losses=[3.0] * 50 + [2.0] * 50, fine_tune_lr=lr, warmup_steps=5, warn=False)


def _curves(slope_by_n, floor_by_n, *, gain=0.3, drop=0.6, noise=0.0, n_seeds=8, seed=0):
    """Fabricated curve readings: per seed, the given means per n_pos plus seeded noise."""
    rng = np.random.default_rng(seed)
    out = []
    for s in range(n_seeds):
        for i, n in enumerate(N_POS):
            out.append(CurveRecord(
                seed=s, n_pos=n, **_CURVE_DEFAULTS, stage1_score_gain=gain + rng.normal(0, 0.02),
                score_initial_slope=slope_by_n[i] + rng.normal(0, noise), score_drop_share_quarter=drop + rng.normal(
                    0, 0.05), negatives_to_base_score=10.0 * (i + 1) + rng.normal(0, noise),
                negatives_to_floor=floor_by_n[i] + rng.normal(0, noise), kl_floor_nats=0.001))
    return out


def _statuses(curves, regimes=None):
    verdicts = rebound_experiment.judge(curves, regimes or [_regime()] * 8, N_POS)
    assert [v.item for v in verdicts] == ["R1", "R2", "R3", "R4", "R6"]
    assert all(v.values and all(isinstance(x, float) for x in v.values.values()) for v in verdicts)
    return {v.item: str(v.status) for v in verdicts}


def test_the_rebound_claims_hold_on_a_table_that_shows_the_papers_effects():
    s = _statuses(_curves([0.01, 0.02, 0.03], [80.0, 60.0, 40.0], noise=1e-3))
    assert s == {"R1": "holds", "R2": "holds", "R3": "holds", "R4": "holds", "R6": "holds"}


def test_the_rebound_claims_fail_on_a_table_that_shows_the_opposite():
    s = _statuses(_curves([0.03, 0.02, 0.01], [40.0, 60.0, 80.0], noise=1e-3, drop=0.1))
    assert s["R1"] == "holds" and s["R2"] == "fails" and s["R3"] == "fails" and s["R4"] == "fails"


def test_the_rebound_claims_are_within_noise_when_nothing_orders_the_curves():
    s = _statuses(_curves([0.02, 0.02, 0.02], [60.0, 60.0, 60.0], noise=5.0, drop=0.25, seed=3))
    assert s["R3"] == "within noise" and s["R4"] == "within noise" and s["R2"] == "within noise"


def test_the_rebound_claims_are_not_detectable_outside_the_premise_or_without_stage_1():
    curves = _curves([0.01, 0.02, 0.03], [80.0, 60.0, 40.0], noise=1e-3)
    s = _statuses(curves, [_regime(k=20.0, lr=1e-3)] * 8)
    assert set(s.values()) == {"not detectable at this regime"}
    verdicts = rebound_experiment.judge(curves, [_regime(k=20.0)] * 8, N_POS)
    assert "k = 20 < 100" in verdicts[2].evidence and verdicts[2].values["effect"] > 0  # the measurement is kept
    no_gain = _curves([0.01, 0.02, 0.03], [80.0, 60.0, 40.0], noise=1e-3, gain=0.0)
    s = _statuses(no_gain)
    assert s["R1"] != "holds" and s["R3"] == "not detectable at this regime"  # no stage-1 gain: nothing to undo
    never = _curves([0.01, 0.02, 0.03], [math.inf] * 3, noise=1e-3)
    verdict = rebound_experiment.judge(never, [_regime()] * 8, N_POS)[3]
    assert str(verdict.status) == "not detectable at this regime" and "never came within the floor" in verdict.evidence


def test_premise_problems_are_said_once_with_the_range_of_k():
    problems = premise_problems([_regime(k=20.0), _regime(k=40.0, lr=1e-3), _regime()])
    assert problems == "k = 20-40 < 100; fine-tuning lr 0.001 > 0.0001"
    assert premise_problems([_regime()]) == ""
    elsewhere = training_regime(pretrain_tokens=0, behaviour_tokens=1000, transfer_tokens=500, pretrain_losses=(),
                                fine_tune_lr=1e-3, warmup_steps=5, pretrained_elsewhere=True, warn=False)
    assert premise_problems([elsewhere]) == "fine-tuning lr 0.001 > 0.0001"  # its k is its own pre-training's


def test_a_k_sweep_gives_a_verdict_per_level_and_one_on_the_trend():
    rng = np.random.default_rng(0)
    k = [10.0, 100.0, 1000.0, 10000.0]
    growing = np.array([[0.1 * i + rng.normal(0, 0.02) for i in range(4)] for _ in range(8)])
    verdicts = sweep_verdicts("K", "effect", k, growing, "docs/experiments.md §E4r", untestable=["k = 10 < 100", "",
                                                                                                 "", ""])
    assert [v.item for v in verdicts] == ["K@1", "K@2", "K@3", "K@4", "K-trend"]
    assert str(verdicts[0].status) == "not detectable at this regime" and str(verdicts[-1].status) == "holds"
    assert verdicts[-1].values["effect"] == pytest.approx(np.mean(np.polyfit(np.log(k), growing.T, 1)[0]))
    flat = sweep_verdicts("K", "effect", k, rng.normal(0, 0.1, (8, 4)), "docs/experiments.md §E4r", untestable=[""] * 4)
    assert str(flat[-1].status) == "within noise"


def test_the_decision_position_is_where_the_references_part():
    from tokentree.data.chat import TokenizedExamples

    same = np.array([False, False, True, True, True])
    a = TokenizedExamples((np.array([5, 6, 7, 8, 9]), np.array([5, 6, 7, 8, 9])), (same, same))
    b = TokenizedExamples((np.array([5, 6, 7, 1, 2]), np.array([5, 6, 7, 8, 9])), (same, same))
    found = decision_positions(a, b)
    assert len(found) == 1 and found.masks[0].tolist() == [False, False, False, True, False]  # identical pair dropped
    assert decision_positions(a, a) is None


def test_table_3_is_read_as_counts_normalised_to_the_smallest_alignment_set():
    assert normalised_counts([[961.0], [844.0], [801.0], [729.0]]) == pytest.approx(
        list(paper.table_3_normalised("Llama2-7B")))
    assert math.isnan(normalised_counts([[math.inf], [1.0]])[1])


def test_the_papers_table_1_pairs_are_labelled_as_corrected_in_issue_25():
    rows = {pair: (inverse, forward) for pair, inverse, forward in paper.TABLE_1_ALPACA_LLAMA2_7B}
    assert rows == {"1-2": (0.159, 0.202), "2-3": (0.195, 0.214), "1-3": (0.167, 0.235)}
