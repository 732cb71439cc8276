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
from tokentree.framework.verdicts import VerdictStatus
from tokentree.infra.errors import InputError
from tokentree.verification import claims, curves, paper

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


# ----------------------------------------------------------------------------- judging claims
def test_an_ordering_holds_only_when_every_step_stands_out_of_the_noise():
    rng = np.random.default_rng(0)
    seeds = rng.normal(0, 1, size=5)  # a seed effect shared by every group: pairing removes it
    rising = [seeds + level + rng.normal(0, 0.01, 5) for level in (0.0, 0.5, 1.0)]
    assert claims.ordered(rising) == VerdictStatus.HOLDS
    assert claims.ordered(rising[::-1]) == VerdictStatus.FAILS
    assert claims.ordered([rising[0], rising[1], rising[1] + rng.normal(0, 0.3, 5)]) == VerdictStatus.WITHIN_NOISE
    # unpaired, the same means would be lost in the seed spread
    assert claims.direction(rising[1] - rng.permutation(rising[0])) == VerdictStatus.WITHIN_NOISE
    assert claims.direction([0.1]) == VerdictStatus.WITHIN_NOISE  # one seed never decides


def test_threshold_and_sign_test():
    assert claims.at_least([0.8, 0.7, 0.75], 0.5) == VerdictStatus.HOLDS
    assert claims.at_least([0.2, 0.3, 0.25], 0.5) == VerdictStatus.FAILS
    assert claims.sign_test(27, 27) == pytest.approx(2 * 0.5**27)
    assert claims.sign_test(5, 10) == pytest.approx(1.0)
    assert math.isnan(claims.sign_test(0, 0))
