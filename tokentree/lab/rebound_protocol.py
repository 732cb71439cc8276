"""The rebound protocol: align on positives, then fine-tune on negatives, measuring all the way.

Stage 1 fine-tunes theta_0 on the first ``n_pos`` aligned examples (a fresh optimiser,
``align_epochs`` epochs). Stage 2 continues with a fresh optimiser on misaligned examples
in *one pass*, measured after the first n_neg examples for every amount in the grid: the
model after 500 negatives is the model after 200 plus 300 more, not a separate run.
Every checkpoint is measured by a :class:`~tokentree.lab.probe.BehaviourProbe`.

:func:`count_model_records` gives the count model's
closed forms (docs/theory.md §7) on an experiment's sizes; :func:`pretraining_shares` the
count model's beta from the data's scorer.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, ClassVar

import numpy as np

from tokentree.compression.count_rebound import (
    count_model_initial_slope,
    count_model_minimum,
    count_model_negatives_to_kl,
    count_model_rebound,
    count_model_return_count,
)
from tokentree.data.chat import TokenizedExamples
from tokentree.data.sources import BehaviourData
from tokentree.infra.checks import check_float, check_int, check_list
from tokentree.infra.errors import InputError
from tokentree.infra.results import Record
from tokentree.lab.probe import BehaviourProbe, ProbeResult
from tokentree.lab.protocol import Stage, run_stages
from tokentree.lab.transfer import merge_adapters

__all__ = ["ReboundSettings", "ReboundCurve", "PointRecord", "point_record", "CountModelRecord", "rebound_curve",
           "stage_one", "count_model_records",
           "pretraining_shares", "scaled_amounts", "scaled_grid", "initial_drop_rho", "check_pretrain_scales",
           "seed_floor", "ScaledGrid"]


def scaled_amounts(values: Sequence[int], scale: float) -> list[int]:
    """``values`` times ``scale``, rounded: the amounts a grid scaled down (or up) trains on."""
    return [round(v * scale) for v in values]


class ScaledGrid:
    """A config's rebound grid: ``n_pos_values`` and ``n_neg_values`` trained on ``scale`` times over."""

    scale: float

    def scaled(self, values: Sequence[int]) -> list[int]:
        """``values`` (n_pos_values or n_neg_values) times ``scale``, rounded."""
        return scaled_amounts(values, self.scale)


def scaled_grid(n_pos: Sequence[int], n_neg: Sequence[int], scale: float) -> tuple[list[int], list[int]]:
    """The amounts of aligned and of misaligned examples, times ``scale`` and rounded, checked.

    >>> scaled_grid((1000, 2000), (0, 100, 200, 500), 0.2)
    ([200, 400], [0, 20, 40, 100])
    """
    pos = check_list(n_pos, "n_pos_values", lambda v, n: check_int(v, n, minimum=1))
    neg = check_list(n_neg, "n_neg_values", lambda v, n: check_int(v, n, minimum=0), min_length=3)
    if list(pos) != sorted(set(pos)) or neg[0] != 0 or list(neg) != sorted(set(neg)):
        raise InputError("n_pos_values must increase, and n_neg_values must start at 0 and increase")
    check_float(scale, "scale", minimum=0.0, exclusive=True, maximum=10.0)
    out = scaled_amounts(pos, scale), scaled_amounts(neg, scale)
    if len(set(out[1])) != len(neg) or len(set(out[0])) != len(pos) or min(out[0]) < 1:
        raise InputError(f"scale = {scale} makes amounts of the grid coincide; raise the scale")
    return out


def check_pretrain_scales(scales: Sequence[float], levels: Sequence[int], model: str) -> None:
    """Refuse a sweep of theta_0's pre-training (``scales`` of the budget, giving the token ``levels``) that has
    fewer than 4 distinct levels, lacks 1 (where the claims are judged), or is asked of a loaded ``model``."""
    if scales and model != "tiny":
        raise InputError("pretrain_scales sweeps theta_0's pre-training, which happens here only for model = 'tiny'; "
                         f"{model!r} is used as pre-trained elsewhere: drop pretrain_scales")
    if scales and (1.0 not in scales or len(set(scales)) < 4 or min(scales) <= 0 or len(set(levels)) < 4):
        raise InputError(f"pretrain_scales sweeps k: give at least 4 positive multiples of base.pretrain_tokens, "
                         f"including 1 (where the R-claims are judged); got {list(scales)}")


@dataclass(frozen=True)
class ReboundSettings:
    """Learning rates of the two stages, epochs of stage 1, batch size, threads, device, and the linear warmup
    steps of each stage's fresh optimiser."""

    #: The fields an experiment's config of the same names sets.
    OPTIONS: ClassVar[tuple[str, ...]] = ("lr_align", "lr_negative", "align_epochs", "batch_size", "warmup_steps")

    lr_align: float = 1e-3
    lr_negative: float = 1e-3
    align_epochs: int = 1
    batch_size: int = 16
    threads: int = 1
    device: str = "cpu"
    warmup_steps: int = 0

    def __post_init__(self) -> None:
        check_float(self.lr_align, "lr_align", minimum=0.0, exclusive=True)
        check_float(self.lr_negative, "lr_negative", minimum=0.0, exclusive=True)
        check_int(self.align_epochs, "align_epochs", minimum=1)
        check_int(self.batch_size, "batch_size", minimum=1)
        check_int(self.warmup_steps, "warmup_steps", minimum=0)


@dataclass(frozen=True)
class ReboundCurve:
    """theta_0's measurement, then one per amount of negatives (the first at 0: right after stage 1)."""

    n_pos: int
    n_neg: tuple[int, ...]
    base: ProbeResult
    points: tuple[ProbeResult, ...]


def rebound_curve(
    base_model: Any,
    probe: BehaviourProbe,
    aligned: TokenizedExamples,
    misaligned: TokenizedExamples,
    *,
    n_pos: int,
    n_neg: Sequence[int],
    settings: ReboundSettings,
    seed: int,
) -> ReboundCurve:
    """One rebound curve from ``base_model`` (left unchanged; see the module docstring)."""
    from tokentree.lab.train import LMTrainer, TrainSettings

    amounts = [int(n) for n in n_neg]
    if not amounts or amounts[0] != 0 or any(b <= a for a, b in itertools.pairwise(amounts)):
        raise InputError(f"n_neg must start at 0 and increase; got {list(n_neg)}")
    if n_pos > len(aligned) or amounts[-1] > len(misaligned):
        raise InputError(
            f"the curve needs {n_pos} aligned and {amounts[-1]} misaligned examples; the data has {len(aligned)} "
            f"and {len(misaligned)}"
        )
    increments = tuple(misaligned.select(range(a, b)) for a, b in itertools.pairwise(amounts))
    stages = [Stage("align", (aligned.head(n_pos),), lr=settings.lr_align, seed=seed, epochs=settings.align_epochs)]
    if increments:
        stages.append(Stage("negative", increments, lr=settings.lr_negative, seed=seed + 1))

    def new_trainer(model: Any, stage: Stage) -> LMTrainer:  # the last stage's adapters merged, fresh ones here
        return LMTrainer(merge_adapters(model), TrainSettings(
            lr=stage.lr, batch_size=settings.batch_size, seed=stage.seed, warmup_steps=settings.warmup_steps,
            threads=settings.threads, device=settings.device))

    measured = run_stages(base_model, stages, new_trainer=new_trainer, measure=lambda m: asdict(probe(m)))
    results = [ProbeResult(**{k: v for k, v in m.values.items()}) for m in measured]  # type: ignore[arg-type]
    return ReboundCurve(n_pos, tuple(amounts), results[0], tuple(results[1:]))


@dataclass(frozen=True)
class PointRecord(Record):
    """One checkpoint: seed, n_pos, n_neg (stage "base" is theta_0 itself), and its measurements."""

    NONFINITE_REASONS: ClassVar[dict[str, str]] = {"score": "no sampled response could be read by the scorer",
                                                   "decision_kl_nats": "no reference pair differs in a token"}

    seed: int
    stage: str
    n_pos: int
    n_neg: int
    score: float
    unreadable: int
    log_odds_nats: float
    kl_to_base_nats: float
    pretrain_bits: float
    decision_kl_nats: float = float("nan")
    pretrain_tokens: int = 0


def point_record(seed: int, stage: str, n_pos: int, n_neg: int, p: ProbeResult, tokens: int) -> PointRecord:
    """The record of one measured checkpoint (``tokens``: its base's pre-training tokens)."""
    return PointRecord(seed, stage, n_pos, n_neg, p.score, int(p.unreadable), p.log_odds_nats, p.kl_to_base_nats,
                       p.pretrain_bits, p.decision_kl_nats, tokens)


def stage_one(base_model: Any, aligned: TokenizedExamples, *, n_pos: int, settings: ReboundSettings, seed: int) -> Any:
    """A copy of ``base_model`` after stage 1 alone (the first ``n_pos`` aligned examples, data order ``seed``):
    two of them with different seeds give the seed-to-seed KL floor of a rebound run."""
    from tokentree.lab.train import LMTrainer, TrainSettings

    trainer = LMTrainer(copy.deepcopy(base_model), TrainSettings(
        lr=settings.lr_align, batch_size=settings.batch_size, seed=seed, warmup_steps=settings.warmup_steps,
        threads=settings.threads, device=settings.device))
    for _ in range(settings.align_epochs):
        trainer.epoch(aligned.head(n_pos))
    return merge_adapters(trainer.model).eval()


def seed_floor(base_model: Any, probe: BehaviourProbe, aligned: TokenizedExamples, *, n_pos: int,
               settings: ReboundSettings, seed: int) -> float:
    """The seed-to-seed floor of the decision KL: between two stage-1 runs on the first ``n_pos`` aligned examples
    that differ only in data order (seeds ``seed + 1000`` and ``seed + 2000``)."""
    twins = [stage_one(base_model, aligned, n_pos=n_pos, settings=settings, seed=seed + s) for s in (1000, 2000)]
    return probe.decision_kl(twins[0], twins[1])


@dataclass(frozen=True)
class CountModelRecord(Record):
    """The count model at one n_pos (docs/theory.md §7): its closed forms on this experiment's sizes."""

    NONFINITE_REASONS: ClassVar[dict[str, str]] = {
        "negatives_to_epsilon": "the count model's KL never comes within epsilon (its minimum is above it)"
    }

    n_pos: int
    n_pretrain: int
    betas: tuple[float, ...]
    kl_after_stage1_nats: float
    initial_kl_slope: float
    min_kl_nats: float
    negatives_at_min_kl: float
    return_count: float
    epsilon_nats: float
    negatives_to_epsilon: float


def count_model_records(n_pretrain: int, shares: tuple[float, float, float], n_pos_values: Sequence[int],
                        epsilon_share: float) -> list[CountModelRecord]:
    """The count model's closed forms at every n_pos, epsilon a share of its own KL after stage 1."""
    out = []
    for n_pos in n_pos_values:
        kl0 = float(count_model_rebound(n_pretrain, shares, n_pos, [0.0]).kl_nats[0])
        at, lowest = count_model_minimum(n_pretrain, shares, n_pos)
        epsilon = epsilon_share * kl0
        out.append(CountModelRecord(
            n_pos=n_pos, n_pretrain=n_pretrain, betas=tuple(shares), kl_after_stage1_nats=kl0,
            initial_kl_slope=count_model_initial_slope(n_pretrain, n_pos), min_kl_nats=lowest, negatives_at_min_kl=at,
            return_count=count_model_return_count(shares, n_pos), epsilon_nats=epsilon,
            negatives_to_epsilon=count_model_negatives_to_kl(n_pretrain, shares, n_pos, epsilon),
        ))
    return out


def pretraining_shares(data: BehaviourData) -> tuple[float, float, float]:
    """beta of the count model: shares of pre-training documents the scorer reads as neither, aligned, misaligned."""
    texts = list(data.pretraining_texts) + [chat[-1]["content"] for chat in data.pretraining_chats]
    scores = data.scorer.score(texts)
    aligned, misaligned = float(np.sum(scores > 0.5)), float(np.sum(scores < 0.5))
    total = float(len(texts))
    return (total - aligned - misaligned) / total, aligned / total, misaligned / total


def initial_drop_rho(curves: Sequence[Any], seeds: Sequence[int], levels: Sequence[int],
                     n_pos: Sequence[int]) -> np.ndarray:
    """Per seed (rows) and pre-training budget (columns): Spearman's rho of the initial score drop
    (``score_initial_slope`` of the curve records) on n_pos, 0 where undefined (a constant drop)."""
    from scipy import stats

    def slope(s: int, n: int, t: int) -> float:
        return next(c.score_initial_slope for c in curves if (c.seed, c.n_pos, c.pretrain_tokens) == (s, n, t))

    def rho(values: list[float]) -> float:
        return float(np.nan_to_num(stats.spearmanr(n_pos, values).statistic)) if np.ptp(values) > 0 else 0.0

    return np.array([[rho([slope(s, n, t) for n in n_pos]) for t in levels] for s in seeds])
