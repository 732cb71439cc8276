"""The lab and the sequence-model mixture: staged training with measurements, seed statistics,
and the joint-compression mixture as a scorer (docs/theory.md §4)."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import numpy as np
import pytest

from tokentree.bridge.mixture import SequenceMixture
from tokentree.bridge.scoring import UniformScorer, measure_rate
from tokentree.bridge.tree_model import fit_tree_model
from tokentree.compression import Shares, mix, theorem_4_2_sizes
from tokentree.data.synthetic import markov_corpus
from tokentree.infra.errors import InputError
from tokentree.lab import Stage, loglog_slope, run_stages, seed_stats
from tokentree.verification import tolerances


# ----------------------------------------------------------------------------- the mixture, written once
def test_shares_are_validated_once_with_the_names_and_values():
    assert Shares.of((0.6, 0.2, 0.2)).values == (0.6, 0.2, 0.2)  # float sum 1.0000000000000002 is fine
    for bad in ([0.5, 0.5, 0.5], [0.9, 0.0], [0.5, float("nan"), 0.5], [1.2, -0.1, -0.1]):
        with pytest.raises(InputError, match="shares summing to 1"):
            Shares.of(bad, count=None if len(bad) != 3 else 3)
    with pytest.raises(InputError, match="three positive shares"):
        Shares.of([1.0, 0.0, 0.0], positive=True)


def test_theorem_4_2_sizes_and_the_mixture():
    shares = Shares.of([0.5, 0.3, 0.2])
    sizes = theorem_4_2_sizes(10.0, np.array([0.0, 2.0]), shares)
    np.testing.assert_array_equal(sizes, [[5.0, 4.0, 2.0], [5.0, 4.0, 4.0]])
    np.testing.assert_array_equal(theorem_4_2_sizes(10.0, 2.0), [10.0, 1.0, 2.0])
    rows = np.eye(3)
    np.testing.assert_allclose(mix(rows, sizes[1]), np.array([5.0, 4.0, 4.0]) / 13.0, rtol=1e-15)


# ----------------------------------------------------------------------------- SequenceMixture
V = 12
PARTS = [markov_corpus(150, vocab_size=V, rng=seed) for seed in range(3)]
MODELS = [fit_tree_model(p, depth=2, vocab_size=V) for p in PARTS]
EVAL = list(markov_corpus(30, vocab_size=V, rng=9))


def test_per_token_probabilities_multiply_to_the_sequence_mixture():
    """log q(x) = log sum_i w_i P_i(x), whether summed over tokens or taken whole."""
    q = SequenceMixture(MODELS, sizes=[5.0, 4.0, 2.0])
    per_token = q.token_log_probs(EVAL)
    whole = q.sequence_log_probs(EVAL)
    weights = [5 / 11, 4 / 11, 2 / 11]
    direct = [
        math.log(sum(w * math.exp(m.token_log_probs([x])[0].sum()) for w, m in zip(weights, MODELS, strict=True)))
        for x in EVAL
    ]
    np.testing.assert_allclose([lp.sum() for lp in per_token], direct, rtol=1e-12)
    np.testing.assert_allclose(whole, direct, rtol=1e-12)
    rate = measure_rate(q, EVAL)
    assert rate.total_bits == pytest.approx(-sum(direct) / math.log(2), rel=1e-12)


def test_one_component_is_that_component_and_uniform_mixtures_are_uniform():
    alone = SequenceMixture(MODELS[:1], sizes=[3.0])
    np.testing.assert_allclose(
        np.concatenate(alone.token_log_probs(EVAL)), np.concatenate(MODELS[0].token_log_probs(EVAL)), rtol=1e-12
    )
    uniform = SequenceMixture([UniformScorer(V), UniformScorer(V)], sizes=[1.0, 7.0])
    assert measure_rate(uniform, EVAL).bits_per_token == pytest.approx(math.log2(V), rel=1e-12)


def test_the_rate_derivative_is_the_finite_difference_limit():
    q = SequenceMixture(MODELS, sizes=[5.0, 4.0, 2.0])
    analytic = q.rate_derivative(EVAL, component=2)
    h = 1e-5
    up = measure_rate(q.with_sizes([5.0, 4.0, 2.0 + h]), EVAL).bits_per_token
    down = measure_rate(q.with_sizes([5.0, 4.0, 2.0 - h]), EVAL).bits_per_token
    assert analytic == pytest.approx((up - down) / (2 * h), rel=1e-5)


def test_new_sizes_reuse_the_component_scores():
    @dataclass
    class Counting:
        inner: object
        calls: list = field(default_factory=list)

        @property
        def vocab_size(self):
            return V

        def token_log_probs(self, sequences):
            self.calls.append(len(sequences))
            return self.inner.token_log_probs(sequences)

    counting = [Counting(m) for m in MODELS]
    q = SequenceMixture(counting, sizes=[1.0, 1.0, 1.0])
    for l in (0.0, 0.5, 1.0):
        measure_rate(q.with_sizes([1.0, 1.0, 1.0 + l]), EVAL)
    assert [c.calls for c in counting] == [[len(EVAL)]] * 3


def test_bad_mixtures_are_refused():
    with pytest.raises(InputError, match="share one vocabulary"):
        SequenceMixture([UniformScorer(4), UniformScorer(5)], sizes=[1, 1])
    with pytest.raises(InputError, match="not all 0"):
        SequenceMixture(MODELS, sizes=[0, 0, 0])
    with pytest.raises(InputError, match="one per component"):
        SequenceMixture(MODELS, sizes=[1, 1])


# ----------------------------------------------------------------------------- staged training
@dataclass
class FakeTrainer:
    """Adds the number of sequences it sees to a counter 'model', and logs what it did."""

    model: dict
    stage: Stage
    log: list

    def epoch(self, sequences, *, show_progress=None):
        self.model["seen"] += sequences.n_sequences
        self.log.append((self.stage.name, self.stage.lr, sequences.n_sequences))


def test_run_stages_measures_at_the_start_and_after_every_piece_with_a_fresh_trainer_per_stage():
    data = markov_corpus(10, vocab_size=V, rng=0)
    model = {"seen": 0}
    log: list = []
    stages = [
        Stage("align", (data,), lr=0.1, seed=1, epochs=2),
        Stage("perturb", (data.select(np.arange(3)), data.select(np.arange(3, 5))), lr=0.2, seed=2),
    ]
    made = []

    def new_trainer(m, stage):
        made.append(stage.name)
        return FakeTrainer(m, stage, log)

    out = run_stages(model, stages, new_trainer=new_trainer, measure=lambda m: {"seen": m["seen"]})
    assert [(m.stage, m.step, m.values["seen"]) for m in out] == [
        ("start", 0, 0), ("align", 0, 20), ("perturb", 0, 23), ("perturb", 1, 25)
    ]
    assert made == ["align", "perturb"] and log[0] == ("align", 0.1, 10) and log[-1] == ("perturb", 0.2, 2)
    assert model == {"seen": 0}  # the model passed in is never trained
    with pytest.raises(InputError, match="no data"):
        Stage("empty", (), lr=0.1, seed=0)


def test_seed_statistics():
    s = seed_stats([0.1, 0.12, 0.08, 0.11, 0.09])
    assert s.mean == pytest.approx(0.1) and s.n_positive == 5
    assert s.standard_error == pytest.approx(s.std / math.sqrt(5))
    noisy = seed_stats([0.1, -0.12, 0.05, -0.02])
    assert noisy.n_negative == 2 and noisy.n_positive == 2
    one = seed_stats([3.0])
    assert math.isnan(one.std) and math.isnan(one.standard_error)
    assert loglog_slope([10, 100, 1000], [1e-2, 1e-4, 1e-6]) == pytest.approx(-2.0)
    assert math.isnan(loglog_slope([10, 100], [0.0, 1.0]))


def test_every_tolerance_says_why():
    assert len(tolerances.TOLERANCES) == len({t.name for t in tolerances.TOLERANCES}) >= 8
    for t in tolerances.TOLERANCES:
        assert t.value > 0 and len(t.reason) > 40 and float(t) == t.value


def test_a_wsd_base_keeps_its_decay_out_of_the_convergence_curve():
    from tokentree.data.sources import behaviour_data
    from tokentree.lab.base import BaseSettings, prepare_base

    data = behaviour_data("synthetic", axis="safety", positive="", negative="", n_pretrain=60, n_aligned=4,
                          n_misaligned=1, n_eval=2, seed=0)
    settings = BaseSettings(pretrain_tokens=4000, d_model=16, n_heads=2, vocab_size=300, batch_size=4,
                            schedule="wsd", decay_share=0.25)
    wsd = prepare_base(data, settings, seed=0, show_progress=False)
    steps = len(wsd.pretrain_losses)
    assert wsd.decay_start == steps + 1 - round(0.25 * steps)
    assert wsd.convergence_losses == wsd.pretrain_losses[:wsd.decay_start] and len(wsd.convergence_losses) < steps
    cosine = prepare_base(data, dataclasses.replace(settings, schedule="cosine"), seed=0, show_progress=False)
    assert cosine.decay_start is None and cosine.convergence_losses == cosine.pretrain_losses
    assert cosine.pretrain_losses[0] == wsd.pretrain_losses[0]  # the same model and first batch
    with pytest.raises(InputError, match="schedule"):
        BaseSettings(schedule="linear")


def test_a_packed_base_sees_the_same_tokens_in_fewer_full_steps():
    """[base] packing = "confined": texts packed into full windows, so the same token budget takes fewer steps."""
    from tokentree.data.sources import behaviour_data
    from tokentree.lab.base import BaseSettings, prepare_base

    data = behaviour_data("synthetic", axis="safety", positive="", negative="", n_pretrain=60, n_aligned=4,
                          n_misaligned=1, n_eval=2, seed=0)
    settings = BaseSettings(pretrain_tokens=4000, d_model=16, n_heads=2, vocab_size=300, batch_size=4)
    cut = prepare_base(data, settings, seed=0, show_progress=False)
    packed = prepare_base(data, dataclasses.replace(settings, packing="confined"), seed=0, show_progress=False)
    assert len(packed.pretrain_losses) < len(cut.pretrain_losses)  # full windows: more tokens per step
    assert abs(packed.pretrain_tokens - cut.pretrain_tokens) <= 0.1 * cut.pretrain_tokens  # about the same budget
    assert np.mean(packed.pretrain_losses[-3:]) < packed.pretrain_losses[0]  # and it learns
    with pytest.raises(InputError, match="packing"):
        BaseSettings(packing="tight")
