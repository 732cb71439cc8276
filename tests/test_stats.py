"""Tests over seeds and the decisions built on them (tokentree.framework.stats, .decisions), on fabricated data.

The calibration tests are the point (issue 25): under no effect a claim must not "fail"
(nor "hold") more than alpha = 5% of the time, per cell and for a Holm family of 9 cells.
Each rate is checked against the 99.9% quantile of Binomial(trials, 0.05), so a correct
rule passes with probability > 0.999 and a rule at 7% or more fails.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from tokentree.framework.decisions import (
    ALPHA,
    MIN_SEEDS,
    decide,
    decide_cells,
    minimum_detectable_effect,
    t_power,
)
from tokentree.framework.stats import (
    PAGE_L,
    WILCOXON,
    cluster_by_seed,
    holm,
    holm_adjust,
    page_test,
    paired_test,
    slope_test,
)
from tokentree.framework.verdicts import VerdictStatus
from tokentree.infra.errors import InputError

HOLDS, FAILS, NOISE, UNSEEN = (VerdictStatus.HOLDS, VerdictStatus.FAILS, VerdictStatus.WITHIN_NOISE,
                               VerdictStatus.NOT_DETECTABLE)


def _upper(trials: int, rate: float = ALPHA) -> float:
    """The largest rate a correct test reaches with probability 0.999 (binomial margin)."""
    return float(stats.binom.ppf(0.999, trials, rate)) / trials


def _rates(statuses) -> dict[VerdictStatus, float]:
    return {s: sum(x == s for x in statuses) / len(statuses) for s in VerdictStatus}


# -- agreement with scipy ----------------------------------------------------------------------------------

A = np.array([0.131, 0.118, 0.142, 0.109, 0.127, 0.135, 0.121, 0.116])
B = np.array([0.120, 0.119, 0.125, 0.101, 0.122, 0.118, 0.124, 0.110])


@pytest.mark.parametrize("alternative", ["greater", "less"])
def test_the_paired_t_test_is_scipys(alternative):
    r = paired_test(A, B, alternative=alternative)
    ref = stats.ttest_rel(A, B, alternative=alternative)
    other = stats.ttest_rel(A, B, alternative="less" if alternative == "greater" else "greater")
    assert (r.n, r.df) == (8, 7) and r.df == ref.df
    assert r.statistic == pytest.approx(ref.statistic, rel=1e-12)
    assert r.p_value == pytest.approx(ref.pvalue, rel=1e-10)
    assert r.p_opposite == pytest.approx(other.pvalue, rel=1e-10)
    low, high = stats.ttest_rel(A, B).confidence_interval(0.9)
    assert (r.effect_low, r.effect_high) == pytest.approx((low, high), rel=1e-10)
    d = A - B
    assert r.effect_size == pytest.approx(d.mean() / d.std(ddof=1), rel=1e-12)  # Cohen's d_z


@pytest.mark.parametrize("alternative", ["greater", "less"])
def test_the_wilcoxon_test_is_scipys_and_exact_for_eight_seeds(alternative):
    r = paired_test(A, B, alternative=alternative, method="wilcoxon")
    ref = stats.wilcoxon(A, B, alternative=alternative, method="exact")
    assert (r.test, r.statistic) == (WILCOXON, ref.statistic)
    assert r.p_value == pytest.approx(ref.pvalue, rel=1e-12)
    assert r.min_p == 1 / 2**8
    # exact: the p-value is a count of the 2^8 sign patterns at least as extreme
    assert (r.p_value * 256) == pytest.approx(round(r.p_value * 256), abs=1e-9)


def test_page_is_scipys_in_both_directions():
    y = np.array([[1.0, 2.5, 2.0, 4.0], [0.5, 1.0, 3.0, 2.0], [1.0, 1.5, 2.0, 2.5]])
    up, down = page_test(y), page_test(y, alternative="less")
    assert up.statistic == stats.page_trend_test(y).statistic
    assert up.p_value == pytest.approx(stats.page_trend_test(y).pvalue, rel=1e-12)
    assert down.p_value == pytest.approx(stats.page_trend_test(y[:, ::-1]).pvalue, rel=1e-12) == up.p_opposite
    assert up.min_p == pytest.approx(1 / 24**3, rel=1e-12)
    rho = [stats.spearmanr(np.arange(4), row).statistic for row in y]
    assert up.effect == pytest.approx(np.mean(rho), rel=1e-12)


def test_page_ranks_infinities_and_the_slope_refuses_them():
    y = np.array([[1.0, 2.0, np.inf]] * 8)
    assert decide(page_test(y)).status == HOLDS
    with pytest.raises(InputError, match=r"must be finite.*use page_test"):
        slope_test([1, 2, 3], y)


def test_holm_matches_its_definition():
    """Holm (1979): the i-th smallest of m p-values times (m - i + 1), running maximum, capped at 1."""
    p = np.array([0.01, 0.04, 0.03, 0.005, 0.5, np.nan])
    order = np.argsort(np.nan_to_num(p, nan=1.0))
    stepped = np.minimum(np.maximum.accumulate([(6 - i) * np.nan_to_num(p, nan=1.0)[j] for i, j in enumerate(order)]),
                         1)
    expected = np.empty(6)
    expected[order] = stepped
    assert holm(p).tolist() == pytest.approx(expected.tolist())
    assert holm(p).tolist() == pytest.approx([0.05, 0.12, 0.12, 0.03, 1.0, 1.0])
    with pytest.raises(InputError, match=r"p-values in \[0, 1\]"):
        holm([0.1, 1.2])


# -- clustering by seed ------------------------------------------------------------------------------------

def test_runs_that_share_a_seed_count_once():
    seeds = [0, 0, 0, 1, 1, 2, 3, 3, 4, 5, 6, 7]
    values = [1.0, 2.0, 3.0, 0.0, 1.0, 0.5, 0.2, 0.4, 0.9, 0.1, 0.7, 0.3]
    means = cluster_by_seed(seeds, values)
    assert means.seeds.tolist() == list(range(8)) and means.runs.tolist() == [3, 2, 1, 2, 1, 1, 1, 1]
    assert means.values.tolist() == pytest.approx([2.0, 0.5, 0.5, 0.3, 0.9, 0.1, 0.7, 0.3])
    r = paired_test(values, seeds=seeds)
    assert r.n == 8 and r.df == 7 and r == paired_test(means.values)
    rows = cluster_by_seed([1, 0, 1], [[1.0, 2.0], [5.0, 5.0], [3.0, 4.0]])
    assert rows.values.tolist() == [[5.0, 5.0], [2.0, 3.0]]


def test_clustering_keeps_a_shared_seed_effect_from_passing_as_evidence():
    """Three runs per seed that share the seed's draw: testing the runs would count 24 units and over-reject."""
    rng = np.random.default_rng(7)
    seed_effect = rng.normal(size=(1000, 8, 1))
    runs = (seed_effect + 0.1 * rng.normal(size=(1000, 8, 3))).reshape(1000, 24)
    seeds = np.repeat(np.arange(8), 3)
    clustered = [decide(paired_test(r, seeds=seeds)).status for r in runs]
    naive = [decide(paired_test(r)).status for r in runs]
    assert _rates(clustered)[HOLDS] <= _upper(1000)
    assert _rates(naive)[HOLDS] > 0.15  # what the old per-run count would have said


# -- decisions on clear cases --------------------------------------------------------------------------------

@pytest.mark.parametrize("method", ["t", "wilcoxon"])
def test_a_clear_effect_holds_its_opposite_fails_and_a_null_is_within_noise(method):
    rng = np.random.default_rng(1)
    noise = rng.normal(scale=0.01, size=8)
    assert decide(paired_test(0.03 + noise, method=method)).status == HOLDS
    assert decide(paired_test(-0.03 + noise, method=method)).status == FAILS
    null = decide(paired_test(noise - noise.mean() + 0.0005, method=method, unit="nats"))
    assert null.status == NOISE and "could not be seen at 8 seeds" in null.reason


def test_too_few_seeds_is_not_detectable_and_never_fails():
    d = decide(paired_test([-1.0, -1.1, -0.9, -1.2, -1.0]))
    assert d.status == UNSEEN and d.reason.startswith("5 seeds, fewer than the 8")
    assert decide(paired_test([-1.0, -1.1, -0.9, -1.2, -1.0]), min_seeds=5).status == FAILS
    assert decide(paired_test([1.0]), min_seeds=2).status == UNSEEN


def test_an_exact_test_that_cannot_reach_alpha_is_not_detectable():
    five = paired_test([0.5, 0.4, 0.6, 0.7, 0.3], method="wilcoxon")
    assert five.min_p == 1 / 32 and decide(five, min_seeds=5).status == HOLDS  # 1/32 < 0.05 alone
    family = decide_cells([five] * 9, min_seeds=5)  # but 9 x 1/32 > 0.05 after Holm
    assert family.status == UNSEEN
    assert "smallest p-value" in decide(holm_adjust([five] * 9)[0], min_seeds=5).reason


def test_no_variation_and_no_effect_is_undefined_not_a_verdict():
    d = decide(paired_test([0.0] * 8))
    assert d.status == NOISE and "undefined" in d.reason
    assert decide(paired_test([0.0] * 8, method="wilcoxon")).status == UNSEEN  # no nonzero difference: 2^0


def test_a_family_fails_only_on_a_cell_significant_the_other_way_after_holm():
    rng = np.random.default_rng(4)
    noise = rng.normal(size=(9, 8))
    clear = [paired_test(1.5 + row) for row in noise]
    assert decide_cells(clear).status == HOLDS
    assert decide_cells([*clear[:8], paired_test(-3.0 + noise[8])]).status == FAILS
    # a cell at one-sided p ~ 0.02 the other way fails alone, but not after Holm over 9 cells
    weak = paired_test(noise[0] - noise[0].mean() - 2.5 * noise[0].std(ddof=1) / math.sqrt(8))
    assert weak.p_opposite < 0.05 and decide(weak).status == FAILS
    family = decide_cells([weak, *clear[1:]], labels=[f"k={k}" for k in range(9)])
    assert family.status == NOISE and family.reason == "Holm over 9 cells at alpha 0.05: 8 holds, 1 within noise"
    assert family.evidence.startswith(family.reason + " (k=0: within noise, mean ")
    assert [p.status for p in family.parts] == [NOISE] + [HOLDS] * 8
    assert family.values()["k=0.p_opposite_adjusted"] == pytest.approx(9 * weak.p_opposite)


def test_the_evidence_says_the_numbers():
    r = holm_adjust([paired_test(A, B, unit="nats")] + [paired_test(A - B - 0.005)] * 8)[0]
    assert r.evidence() == ("mean +0.0075 nats [+0.00254, +0.0125] (90% CI), d_z = 1.01, t(7) = 2.86, 8 seeds, "
                            "p = 0.012 one-sided (greater), Holm over 9 cells p = 0.11")
    d = decide(r)
    assert d.status == NOISE and d.evidence.startswith(r.evidence())
    assert set(d.values()) >= {"p_value", "p_adjusted", "effect", "effect_low", "effect_high", "df", "n", "cells"}
    assert d.values()["cells"] == 9.0 and d.values()["p_adjusted"] == pytest.approx(r.p_adjusted)


def test_a_bootstrap_interval_is_seeded_and_near_the_t_interval():
    t = paired_test(A, B)
    b1, b2 = paired_test(A, B, interval="bootstrap", rng=3), paired_test(A, B, interval="bootstrap", rng=3)
    assert b1 == b2 and b1.p_value == t.p_value
    assert b1.effect_low < t.effect < b1.effect_high
    assert (b1.effect_low, b1.effect_high) == pytest.approx((t.effect_low, t.effect_high), abs=0.3 * t.spread)
    with pytest.raises(InputError, match="pass rng=SEED"):
        paired_test(A, B, interval="bootstrap")


def test_bad_input_is_named():
    with pytest.raises(InputError, match="paired by seed"):
        paired_test([1.0, 2.0], [1.0])
    with pytest.raises(InputError, match="alternative must be 'greater' or 'less'"):
        paired_test([1.0, 2.0], alternative="two-sided")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="nan at"):
        paired_test([1.0, math.nan])
    with pytest.raises(InputError, match="for 2 levels use paired_test"):
        page_test([[1.0, 2.0], [1.0, 3.0]])
    with pytest.raises(InputError, match="all > 0 for log_x"):
        slope_test([0, 1, 2], [[1.0, 2.0, 3.0]] * 3)
    with pytest.raises(InputError, match="one distinct label per cell"):
        decide_cells([paired_test(A)] * 2, labels=["a", "a"])


# -- calibration under no effect --------------------------------------------------------------------------------

@pytest.mark.parametrize("method", ["t", "wilcoxon"])
def test_a_null_cell_holds_and_fails_at_most_alpha_of_the_time(method):
    cells = np.random.default_rng(2025).normal(size=(2000, 8))
    rates = _rates([decide(paired_test(c, method=method)).status for c in cells])
    assert rates[FAILS] <= _upper(2000) and rates[HOLDS] <= _upper(2000)
    if method == "t":  # exact level: not far below alpha either (a too-timid rule would also be wrong)
        assert rates[FAILS] >= stats.binom.ppf(0.001, 2000, ALPHA) / 2000
    else:  # the exact signed-rank test at n = 8 has level P(W+ >= 30) = 10/256
        assert rates[FAILS] >= stats.binom.ppf(0.001, 2000, 10 / 256) / 2000


def test_a_nine_cell_family_under_the_global_null_fails_at_most_alpha_of_the_time():
    families = np.random.default_rng(2026).normal(size=(2000, 9, 8))
    statuses = [decide_cells([paired_test(c) for c in family]).status for family in families]
    rates = _rates(statuses)
    assert rates[FAILS] <= _upper(2000)
    assert rates[HOLDS] == 0.0  # "holds in every cell" needs 9 rejections


@pytest.mark.parametrize("trend", ["page", "slope"])
def test_trend_tests_see_a_monotone_trend_and_not_a_flat_one(trend):
    rng = np.random.default_rng(11)
    x = np.array([10.0, 100.0, 1000.0, 10000.0])
    flat = rng.normal(size=(1000, 8, 4))
    rising = flat + 0.6 * np.log10(x)  # 0.6 noise sd per decade of x

    def judge(y, alternative="greater"):
        test = page_test(y, alternative=alternative) if trend == "page" else slope_test(x, y, alternative=alternative)
        return decide(test).status

    null = _rates([judge(y) for y in flat])
    assert null[HOLDS] <= _upper(1000) and null[FAILS] <= _upper(1000)
    assert _rates([judge(y) for y in rising[:200]])[HOLDS] >= 0.85  # 0.93 measured (8 seeds, 4 levels)
    assert _rates([judge(y, "less") for y in rising[:200]])[FAILS] >= 0.85


def test_the_page_test_with_few_seeds_and_levels_is_exact():
    r = page_test(np.arange(3.0)[None, :].repeat(8, axis=0))
    assert r.test == PAGE_L and r.p_value == pytest.approx(1 / 6**8, rel=1e-9) == r.min_p


# -- power ------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("n", "cells"), [(8, 1), (8, 9), (20, 1)])
def test_the_minimum_detectable_effect_is_seen_80_percent_of_the_time(n, cells):
    mde = minimum_detectable_effect(n, sd=2.0, cells=cells)
    assert t_power(mde, n, sd=2.0, cells=cells) == pytest.approx(0.8, abs=1e-8)
    d = np.random.default_rng(5).normal(loc=mde, scale=2.0, size=(20000, n))
    t = d.mean(axis=1) / (d.std(axis=1, ddof=1) / math.sqrt(n))
    seen = np.mean(t > stats.t.isf(ALPHA / cells, n - 1))
    assert seen == pytest.approx(0.8, abs=0.012)  # 4 binomial standard errors at 20,000 draws


def test_the_minimum_seeds_is_the_issue_25_rule():
    assert MIN_SEEDS == 8 and ALPHA == 0.05
