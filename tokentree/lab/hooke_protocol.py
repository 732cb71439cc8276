"""The Hooke test's training protocols on a real model: theta_0 pre-trained to a plateau, then pooled or sequential
fine-tuning (docs/experiments.md §E4h).

Theorem 4.2 is about a model of the pooled data: after D_t joins, the model is the one that
compresses D_p u D_a u D_t. :func:`pooled_runs` is that setting on a trained network: every
model starts from theta_0 and is trained (gently, with warmup) on the union D_p u D_a (l = 0)
or D_p u D_a u D_t(l), so D_p stays in the data and alignment does not make the model forget
it. :func:`sequential_runs` is the labelled variant that fine-tunes in sequence (D_a alone,
then D_t alone in growing pieces, :func:`~tokentree.lab.run_stages`), where alignment itself
moves gamma_p. Both return the measurements of theta_0, of the model at l = 0 and at every l.
:func:`pretrain` trains theta_0 over a token budget with warmup and cosine decay and keeps
its loss curve, for the plateau check of :mod:`tokentree.lab.regime`.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tokentree.data.chat import TokenizedExamples
from tokentree.framework.config import Checked, bounded
from tokentree.lab.base import BaseSettings
from tokentree.lab.protocol import Stage, run_stages

__all__ = ["PROTOCOLS", "FineTuneSettings", "HookeRuns", "pretrain", "pooled_runs", "sequential_runs"]

#: "pooled": the theorem's setting (the union of the data); "sequential": D_a, then D_t, alone.
PROTOCOLS = ("pooled", "sequential")

Measure = Callable[[Any], Mapping[str, float]]


@dataclass(frozen=True)
class FineTuneSettings(Checked):
    """How theta_0 is fine-tuned: the protocol, AdamW at ``lr`` after ``warmup_steps`` of linear warmup (then
    constant), batches of ``batch_size`` sequences; ``pooled_epochs`` over the union (pooled) or ``align_epochs``
    over D_a then one pass over every new piece of D_t (sequential)."""

    protocol: str = bounded("pooled", choices=PROTOCOLS)
    lr: float = bounded(1e-4, minimum=0.0, exclusive=True)
    warmup_steps: int = bounded(10, minimum=0)
    batch_size: int = bounded(16, minimum=1)
    weight_decay: float = bounded(0.01, minimum=0.0)
    pooled_epochs: int = bounded(1, minimum=1)
    align_epochs: int = bounded(3, minimum=1)


@dataclass(frozen=True)
class HookeRuns:
    """The measurements of theta_0 (``base``), of the model at l = 0 (``aligned``) and after every l (``after``)."""

    base: Mapping[str, float]
    aligned: Mapping[str, float]
    after: Sequence[Mapping[str, float]]


def _train_settings(lr: float, batch_size: int, seed: int, threads: int, device: str, **kw: Any) -> Any:
    from tokentree.lab.train import TrainSettings

    return TrainSettings(lr=lr, batch_size=batch_size, weight_decay=kw.pop("weight_decay", 0.01), seed=seed,
                         threads=threads, device=device, **kw)


def pretrain(model: Any, data: TokenizedExamples, settings: BaseSettings, *, seed: int) -> tuple[Any, list[float]]:
    """theta_0: ``model`` trained on ``data`` for about ``settings.pretrain_tokens`` target tokens (whole and partial
    epochs) with the base's schedule; returns it and the loss curve its convergence is judged on (every step's loss,
    up to a wsd schedule's decay: :attr:`tokentree.lab.base.BaseModel.convergence_losses`)."""
    from tokentree.lab.train import LMTrainer
    from tokentree.lab.transfer import merge_adapters

    if settings.pretrain_tokens == 0:
        return model, []
    budget, _ = settings.pretrain_budget(data, int(model.config.max_position_embeddings))
    trainer = LMTrainer(model, settings.train_settings(budget, seed=seed))
    while trainer.steps_done < budget:
        trainer.epoch(data, stop_after=budget - trainer.steps_done, show_progress=False)
    # LoRA (a loaded model) merged, so that fine-tuning adds fresh adapters to a plain model, not a second set
    return merge_adapters(trainer.model).eval(), list(trainer.losses[:trainer.settings.decay_start])


def _trainer(settings: FineTuneSettings, *, seed: int, threads: int, device: str) -> Callable[[Any, float, int], Any]:
    from tokentree.lab.train import LMTrainer

    def make(model: Any, lr: float, stage_seed: int) -> Any:
        return LMTrainer(model, _train_settings(lr, settings.batch_size, stage_seed, threads, device,
                                                weight_decay=settings.weight_decay,
                                                warmup_steps=settings.warmup_steps))
    return make


def pooled_runs(model: Any, unions: Sequence[TokenizedExamples], *, measure: Measure, settings: FineTuneSettings,
                seed: int, threads: int = 1, device: str = "cpu") -> HookeRuns:
    """A copy of ``model`` trained on each union (the first: D_p u D_a, l = 0; then D_p u D_a u D_t(l) for every l),
    ``settings.pooled_epochs`` each with the same seed and settings, and measured."""
    make = _trainer(settings, seed=seed, threads=threads, device=device)
    found = []
    for union in unions:
        trainer = make(copy.deepcopy(model), settings.lr, seed)
        for _ in range(settings.pooled_epochs):
            trainer.epoch(union, show_progress=False)
        found.append(dict(measure(trainer.model)))
    return HookeRuns(dict(measure(model)), found[0], found[1:])


def sequential_runs(model: Any, align: TokenizedExamples, increments: Sequence[TokenizedExamples], *,
                    measure: Measure, settings: FineTuneSettings, seed: int, threads: int = 1, device: str = "cpu"
                    ) -> HookeRuns:
    """The labelled variant: ``settings.align_epochs`` on D_a alone (a fresh AdamW), then the pieces of D_t in turn
    (another), measured after alignment and after every piece."""
    make = _trainer(settings, seed=seed, threads=threads, device=device)
    stages = [Stage("align", (align,), lr=settings.lr, seed=seed, epochs=settings.align_epochs),
              Stage("perturb", tuple(increments), lr=settings.lr, seed=seed + 10_000)]
    from tokentree.lab.transfer import merge_adapters

    before, start, *after = run_stages(model, stages, new_trainer=lambda m, s: make(merge_adapters(m), s.lr, s.seed),
                                       measure=measure, show_progress=False)  # each stage's adapters fresh
    return HookeRuns(before.values, start.values, [m.values for m in after])
