"""The piggyback model in a token tree: stiffness from node counts, equilibrium against the closed form."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tokentree.framework.verdicts import VerdictStatus
from tokentree.infra.errors import InputError
from tokentree.trees.springs import (
    TRUNK,
    Example,
    World,
    carriers_from_trees,
    closed_form,
    equilibrium,
    log_odds_change,
    spill_of,
    world_trees,
)

WORLD = World(n_domains=3, n_queries=4, align_per_query=(5, 10, 20), pretrain_per_query=50)


def test_stiffness_is_read_off_the_trees():
    templated, plain = world_trees(WORLD)
    c = carriers_from_trees(WORLD, templated, plain)
    assert c.trunk == templated.count([TRUNK]) == 4 * (5 + 10 + 20)
    assert c.bias == templated.total_mass + plain.total_mass == 140 + 3 * 4 * 50
    assert c.domain.tolist() == [4 * (5 + 50), 4 * (10 + 50), 4 * (20 + 50)]
    assert c.query[2].tolist() == [70.0] * 4


examples = st.lists(st.tuples(st.booleans(), st.integers(0, 2), st.integers(0, 3),
                              st.floats(-3, 3, allow_nan=False, allow_subnormal=False)), min_size=1, max_size=30)


@given(examples, st.floats(0, 1e4, allow_nan=False, allow_subnormal=False))
def test_the_energy_minimum_is_the_closed_form(cells, lam):
    carriers = carriers_from_trees(WORLD, *world_trees(WORLD)).with_treft(lam)
    xs = [Example(t, d, q, f) for t, d, q, f in cells]
    numeric, exact = equilibrium(carriers, xs), closed_form(carriers, xs)
    assert np.allclose(numeric, exact, rtol=1e-12, atol=1e-15)
    # a change at a node is the sum of the carriers on its path
    t, d, q, _ = cells[0]
    expected = (exact[0] if t else 0.0) + exact[1] + exact[2 + d] + exact[2 + 3 + d * 4 + q]
    assert log_odds_change(carriers, exact, templated=t, domain=d, query=q) == pytest.approx(expected)


def test_treft_scales_the_trunk_and_untemplated_text_never_sees_it():
    carriers = carriers_from_trees(WORLD, *world_trees(WORLD))
    ft = [Example(True, 0, q) for q in (0, 1) for _ in range(30)]
    base = closed_form(carriers, ft)
    stiff = closed_form(carriers.with_treft(3 * carriers.trunk), ft)
    assert stiff[0] == pytest.approx(base[0] / 4) and np.allclose(stiff[1:], base[1:])
    s = spill_of(carriers, base, [0, 1])
    assert s.other_domains_bits == pytest.approx((base[0] + base[1]) / np.log(2))
    assert s.other_untemplated_bits == pytest.approx(base[1] / np.log(2))  # no trunk without the template
    assert sum(s.shares.values()) == pytest.approx(1.0)


def test_a_bad_world_is_refused():
    with pytest.raises(InputError, match="at least two domains"):
        World(n_domains=1)
    with pytest.raises(InputError, match="one count >= 0 or one per domain"):
        World(n_domains=2, align_per_query=(1, 2, 3))
    with pytest.raises(InputError, match="alignment data are empty"):
        world_trees(World(n_domains=2, align_per_query=0))
    with pytest.raises(InputError, match="lambda must be >= 0"):
        carriers_from_trees(WORLD, *world_trees(WORLD)).with_treft(-1.0)


# ----------------------------------------------------------------------------- claims P1-P7 on rows
def _tables(records, carriers, n_finetune=400):
    from tokentree.trees.springs import predicted_shares

    return {"records": records, "predicted_shares": [predicted_shares(carriers, 2)],
            "setting": [{"n_finetune": n_finetune}]}


def _verdicts(tables):
    from tokentree.verification.springs import SPRING_CLAIMS

    return {c.item: c.verdict(tables) for c in SPRING_CLAIMS}


def test_the_spring_claims_hold_on_the_model_and_carry_their_numbers():
    from tokentree.experiments.piggyback_tree import Config, interventions

    records, carriers = interventions(Config.quick())
    v = _verdicts(_tables(records, carriers))
    assert {x.status for x in v.values()} == {VerdictStatus.HOLDS}
    assert v["P1"].values["max_gap"] < v["P1"].values["tolerance"] == 1e-12
    assert v["P3"].values["k_s"] == carriers.trunk and v["P5"].values["steps"] == 2


def test_a_spring_claim_that_the_rows_contradict_is_unexpected():
    """Fabricated rows: the spill no longer falls with the alignment data, the trunk patch leaves too much, and a
    share drifts from c_i / sum c_j by 1e-6."""
    from tokentree.experiments.piggyback_tree import Config, interventions

    records, carriers = interventions(Config.quick())
    bent = []
    for r in records:
        if r.intervention == "alignment data" and r.parameter == 2.0:
            r = dataclasses.replace(r, spill=10.0)
        if r.intervention == "patch trunk":
            r = dataclasses.replace(r, other_domains_bits=r.other_domains_bits * 1.01)
        if r.intervention == "baseline":
            r = dataclasses.replace(r, share_trunk=r.share_trunk + 1e-6)
        bent.append(r)
    v = _verdicts(_tables(bent, carriers))
    assert v["P5"].status == VerdictStatus.UNEXPECTED and v["P5"].values["steps_in_order"] == 1
    assert v["P4"].status == VerdictStatus.UNEXPECTED and v["P4"].values["gap"] > 1e-9
    assert v["P2"].status == VerdictStatus.UNEXPECTED and v["P2"].values["max_gap"] == pytest.approx(1e-6, rel=1e-3)
    assert v["P1"].status == VerdictStatus.HOLDS


def test_the_piggyback_tree_config_refuses_bad_values():
    from tokentree.experiments.piggyback_tree import Config

    with pytest.raises(InputError, match="lambdas must include 0"):
        Config(lambdas=(1.0, 2.0))
    with pytest.raises(InputError, match="finetune_queries must be an integer <= 8"):
        Config(finetune_queries=9)
    with pytest.raises(InputError, match=r"align_scales\[1\] must be a finite number > 0"):
        Config(align_scales=(1.0, 0.0))
