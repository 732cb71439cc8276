"""Staged training with a measurement after every stage: the fine-tune-and-measure protocol.

A trained-model experiment starts from a model, trains it through a sequence of
stages (alignment, then perturbation, ...) and measures it after each. A
:class:`Stage` is one optimiser run: a fresh optimiser (its own learning rate and
seed) trains on the stage's pieces of data in order, and the model is measured after
each piece, so a stage that feeds D_t in growing amounts yields one measurement per
amount. :func:`run_stages` is model-agnostic: it needs a way to make a trainer and a
way to measure, and it never modifies the model it is given.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from tokentree.infra.errors import InputError

__all__ = ["Trainer", "Stage", "StageMeasurement", "run_stages"]


class Trainer(Protocol):
    """What :func:`run_stages` needs of a trainer: its model, and one epoch over some data
    (:class:`~tokentree.lab.train.LMTrainer` is one)."""

    @property
    def model(self) -> Any: ...

    def epoch(self, data: Any, *, show_progress: bool | None = None) -> Any: ...


@dataclass(frozen=True)
class Stage:
    """One optimiser run.

    Attributes
    ----------
    name : str
    pieces : tuple
        Data (e.g. :class:`~tokentree.data.chat.TokenizedExamples`) trained in order by one
        optimiser; the model is measured after each piece.
    lr : float
        Learning rate of the stage's fresh optimiser.
    seed : int
        Seed of its data order.
    epochs : int
        Epochs over each piece before it is measured.
    """

    name: str
    pieces: tuple[Any, ...]
    lr: float
    seed: int
    epochs: int = 1

    def __post_init__(self) -> None:
        if not self.pieces:
            raise InputError(f"stage {self.name!r} has no data to train on")
        if self.epochs < 1:
            raise InputError(f"stage {self.name!r}: epochs must be >= 1; got {self.epochs}")


@dataclass(frozen=True)
class StageMeasurement:
    """The measurements after ``step`` pieces of ``stage`` (stage "start": before any training)."""

    stage: str
    step: int
    values: Mapping[str, float]


def run_stages(
    model: Any,
    stages: Sequence[Stage],
    *,
    new_trainer: Callable[[Any, Stage], Trainer],
    measure: Callable[[Any], Mapping[str, float]],
    show_progress: bool | None = None,
) -> list[StageMeasurement]:
    """Train a copy of ``model`` through ``stages``; measure at the start and after every piece.

    ``new_trainer(model, stage)`` makes a trainer with a fresh optimiser for the stage;
    ``measure(model)`` returns named numbers (e.g. bits per token of each dataset).
    """
    current = copy.deepcopy(model)
    measurements = [StageMeasurement("start", 0, dict(measure(model)))]
    for stage in stages:
        trainer = new_trainer(current, stage)
        for step, piece in enumerate(stage.pieces):
            for _ in range(stage.epochs):
                trainer.epoch(piece, show_progress=show_progress)
            measurements.append(StageMeasurement(stage.name, step, dict(measure(trainer.model))))
        current = trainer.model
    return measurements
