"""The piggyback claims on small fabricated tables: one that holds, one that fails, one within noise, too few seeds."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from tokentree.experiments.piggyback import Config, judge
from tokentree.lab.piggyback_cells import VariantRecord
from tokentree.lab.regime import training_regime

MET = training_regime(pretrain_tokens=2_000_000, behaviour_tokens=10_000, transfer_tokens=5_000,
                      pretrain_losses=[2.0] * 100, fine_tune_lr=1e-4, warmup_steps=10, warn=False)
LOW_K = dataclasses.replace(MET, k=20.0, premise_met=False, problems="k = 20 < 100")
NAN_FIELDS = {f.name: math.nan for f in dataclasses.fields(VariantRecord)}


def _record(seed: int, variant: str, parameter: float = 0.0, **values: float) -> VariantRecord:
    return VariantRecord(**{**NAN_FIELDS, "seed": seed, "variant": variant, "parameter": parameter,
                            "prefix_tokens": 12, "postfix_tokens": 5, **values})


def _records(effect: float, *, noise: float = 0.0, seeds: int = 8, spread: float = 0.5,
             draw: int = 7) -> list[VariantRecord]:
    """Every variant of ``seeds`` seeds, where each claim's effect is ``effect`` (+ seeded noise of sd ``noise``).

    ``effect`` > 0 makes every claim hold, < 0 makes it fail; 0 with noise leaves it within noise. ``spread``: the
    fine-tunes' change in the other domains (bits; 0 with noise: no measurable spread).
    """
    rng = np.random.default_rng(draw)
    out = []
    for s in range(seeds):
        def e(scale: float = 1.0) -> float:
            return scale * effect + noise * float(rng.standard_normal())

        patches = {"patch_prefix_removed": 0.7 + e(), "patch_query_removed": 0.7 - e(),
                   "patch_postfix_removed": 0.7 - e(), "drift_prefix": 2.0 * math.exp(e()), "drift_query": 1.0,
                   "in_domain_bits": 1.0 + e(0.0), "other_bits": spread + e(0.0), "spill": 0.5}
        out.append(_record(s, "fine-tune", **patches, swap_prefix_removed=0.1 + e(), swap_query_removed=0.1,
                           alt_system_removed=e()))
        out += [_record(s, f"trainable {t}", **patches) for t in ("attention", "attention+mlp")]
        # the TReFT curve: in-domain 0.5 -> 1.0, other domains 0.1 -> 0.5 (the plain fine-tune is its end)
        out.append(_record(s, "TReFT prefix", 10.0, in_domain_bits=0.5, other_bits=0.1))
        for rival in ("interleave", "KL retain"):
            out.append(_record(s, rival, 1.0, in_domain_bits=0.75, other_bits=0.3 + e()))
        out += [_record(s, v, spill=0.5 + e()) for v in ("less alignment", "more queries")]
        out.append(_record(s, "no system prompt", patch_postfix_removed=0.7 + e()))
    return out


def _statuses(records: list[VariantRecord], regime=MET) -> dict[str, str]:
    verdicts = judge(records, [regime] * 8, tiny=True)
    assert all(v.values and all(isinstance(x, float) for x in v.values.values()) for v in verdicts)
    return {v.item: str(v.status) for v in verdicts}


SPREAD = {"s", "s-attn", "s-attn+mlp"}
ITEMS = {"i", "ii", "i-attn", "ii-attn", "i-attn+mlp", "ii-attn+mlp", "iii", "iii-kl", "iv", "v", "vi", "vii"}


def test_every_claim_holds_when_its_effect_is_there_in_eight_seeds():
    assert _statuses(_records(0.2, noise=0.02)) == dict.fromkeys(SPREAD | ITEMS, "holds")


def test_every_claim_fails_when_its_effect_goes_the_other_way():
    assert _statuses(_records(-0.2, noise=0.02)) == {**dict.fromkeys(SPREAD, "holds"), **dict.fromkeys(ITEMS, "fails")}


def test_without_a_measurable_spread_the_shares_of_the_spill_are_not_detectable():
    """s gates the claims that read shares of the other domains' change; the drift (ii) is judged anyway."""
    statuses = _statuses(_records(0.2, noise=0.02, spread=0.0))
    assert {statuses[s] for s in SPREAD} == {"within noise"} and statuses["ii"] == statuses["ii-attn"] == "holds"
    assert {statuses[i] for i in ITEMS - {"ii", "ii-attn", "ii-attn+mlp"}} == {"not detectable at this regime"}
    i = next(v for v in judge(_records(0.2, noise=0.02, spread=0.0), [MET] * 8, tiny=True) if v.item == "i-attn")
    assert "no measurable spread (s-attn)" in i.evidence and i.values["prefix > 70%.n"] == 8


def test_no_effect_under_noise_is_mostly_within_noise_and_rarely_fails():
    """Under no effect, "holds" and "fails" each come about 5% of the time per claim (one-sided tests at 0.05)."""
    draws = [_statuses(_records(0.0, noise=0.05, draw=d)) for d in range(40)]
    assert all(d[s] == "holds" for d in draws for s in SPREAD)  # the fine-tunes do spread (0.5 bits)
    for item in ITEMS:
        statuses = [d[item] for d in draws]
        assert statuses.count("fails") <= 6 and statuses.count("holds") <= 6, (item, statuses)
        assert statuses.count("within noise") >= 28, (item, statuses)


def test_below_eight_seeds_or_outside_the_premise_nothing_is_detectable():
    assert set(_statuses(_records(0.2, noise=0.02, seeds=5)).values()) == {"not detectable at this regime"}
    outside = judge(_records(0.2, noise=0.02), [LOW_K] * 8, tiny=True)
    assert {str(v.status) for v in outside} == {"not detectable at this regime"}
    assert all(v.evidence.startswith("not detectable at this regime: k = 20 < 100") for v in outside)


def test_a_claim_with_no_finite_measurement_is_not_detectable_and_says_which():
    records = [dataclasses.replace(r, swap_prefix_removed=math.nan) for r in _records(0.2, noise=0.02)]
    vi = next(v for v in judge(records, [MET] * 8, tiny=True) if v.item == "vi")
    assert str(vi.status) == "not detectable at this regime" and "prefix swaps - query swaps" in vi.evidence
    assert vi.values == {"cells_missing": 1.0}


def test_treft_out_of_range_seeds_are_left_out():
    """A rival whose in-domain change the TReFT sweep does not reach gives no gap for that seed."""
    records = _records(0.2, noise=0.02)
    far = [dataclasses.replace(r, in_domain_bits=5.0) if (r.variant, r.seed) == ("interleave", 0) else r
           for r in records]
    iii = next(v for v in judge(far, [MET] * 8, tiny=True) if v.item == "iii")
    assert iii.values["n"] == 7


def test_a_loaded_model_is_judged_on_its_variants_only():
    items = {v.item for v in judge(_records(0.2, noise=0.02), [MET] * 8, tiny=False)}
    assert items == {"s", "i", "ii", "iii", "iii-kl", "vi", "vii"}


@pytest.mark.parametrize(("changes", "message"), [
    ({"more_queries": 4}, "more_queries"), ({"alt_system_prompt": " "}, "alt_system_prompt"),
    ({"lambdas": (1.0, 0.0)}, r"lambdas\[1\]"), ({"axis": "truth"}, "axis"),
    ({"interleave_share": 0.0}, "interleave_share"),
])
def test_bad_configs_are_refused_naming_the_field(changes, message):
    with pytest.raises(ValueError, match=message):
        Config(**changes)
