"""Forward and inverse alignment between checkpoints of one alignment run (the paper's Table 1 protocol).

From a base model, one epoch on an alignment set keeps theta_1, theta_2, theta_3 at 1/3,
2/3 and 3/3 of it (:func:`alignment_checkpoints`); each theta_k answers the same held-out
prompts, giving the slice D_k (:func:`sample_slices`). Then a start checkpoint is trained
on a target slice with one set of :class:`TransferSettings` (:func:`train_on`): *forward*
is theta_k on D_l (k < l), *inverse* theta_l on D_k.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tokentree.data.chat import TokenizedExamples
from tokentree.infra.checks import check_float, check_int
from tokentree.infra.errors import InputError

__all__ = ["PAIRS", "TransferSettings", "Slices", "alignment_checkpoints", "sample_slices", "train_on"]

#: The checkpoint pairs k < l of Table 1.
PAIRS = ((1, 2), (1, 3), (2, 3))


@dataclass(frozen=True)
class TransferSettings:
    """One fine-tune (the alignment epoch or a transfer): lr, warmup steps, batch, epochs, and the tail share
    of the steps whose mean training loss is the paper's "final loss"."""

    lr: float = 1e-3
    warmup_steps: int = 0
    batch_size: int = 16
    epochs: int = 1
    tail_share: float = 0.1
    threads: int = 1
    device: str = "cpu"

    def __post_init__(self) -> None:
        check_float(self.lr, "lr", minimum=0.0, exclusive=True)
        check_int(self.warmup_steps, "warmup_steps", minimum=0)
        check_int(self.batch_size, "batch_size", minimum=1)
        check_int(self.epochs, "epochs", minimum=1)
        check_float(self.tail_share, "tail_share", minimum=0.0, maximum=1.0, exclusive=True)

    def trainer(self, model: Any, seed: int) -> Any:
        """An :class:`~tokentree.lab.train.LMTrainer` on a copy of ``model`` with these settings."""
        from tokentree.lab.train import LMTrainer, TrainSettings

        return LMTrainer(copy.deepcopy(model), TrainSettings(
            lr=self.lr, warmup_steps=self.warmup_steps, batch_size=self.batch_size, seed=seed, threads=self.threads,
            device=self.device))


def train_on(model: Any, data: TokenizedExamples, settings: TransferSettings, seed: int) -> tuple[Any, float]:
    """A copy of ``model`` trained on ``data``; (the model, the mean loss of the last ``tail_share`` of the steps)."""
    trainer = settings.trainer(model, seed)
    for _ in range(settings.epochs):
        trainer.epoch(data)
    tail = max(1, math.ceil(settings.tail_share * len(trainer.losses)))
    return trainer.model, float(np.mean(trainer.losses[-tail:]))


def alignment_checkpoints(base: Any, aligned: TokenizedExamples, settings: TransferSettings, seed: int) -> list[Any]:
    """theta_1, theta_2, theta_3: a copy of ``base`` at 1/3, 2/3 and 3/3 of one epoch on ``aligned``."""
    from tokentree.lab.train import training_windows

    trainer = settings.trainer(base, seed)
    steps = -(-len(training_windows(aligned, trainer.context)[0]) // settings.batch_size)
    out = []
    for mark in [max(1, round(steps * k / 3)) for k in (1, 2, 3)]:
        trainer.epoch(aligned, stop_after=mark - trainer.steps_done)
        out.append(copy.deepcopy(trainer.model).eval())
    return out


@dataclass(frozen=True)
class Slices:
    """What each checkpoint answered to the same prompts (empty answers dropped from all): the prompts kept,
    the texts (one tuple per checkpoint) and each slice tokenized as chats."""

    prompts: tuple[Any, ...]
    texts: tuple[tuple[str, ...], ...]
    data: tuple[TokenizedExamples, ...]


def sample_slices(thetas: Sequence[Any], tokenizer: Any, prompts: Sequence[Any], *, max_new_tokens: int,
                  temperature: float, seed: int, what: str) -> Slices:
    """D_k for every theta_k: its sampled answers to ``prompts`` (seed ``seed + k``), as chats."""
    from tokentree.data.chat import tokenize_chats
    from tokentree.lab.measure import sample_responses

    sampled = [sample_responses(t, tokenizer, list(prompts), max_new_tokens=max_new_tokens, temperature=temperature,
                                seed=seed + k).texts for k, t in enumerate(thetas)]
    keep = [i for i in range(len(prompts)) if all(s[i].strip() for s in sampled)]
    if len(keep) < 2:
        raise InputError(f"{what}: the aligned models sampled empty answers to almost every prompt; "
                         "train longer (pretrain_tokens, n_align) or raise max_new_tokens")
    texts = tuple(tuple(s[i] for i in keep) for s in sampled)
    kept = tuple(prompts[i] for i in keep)
    data = tuple(tokenize_chats([(*p, {"role": "assistant", "content": t}) for p, t in zip(kept, slice_, strict=True)],
                                tokenizer) for slice_ in texts)
    return Slices(kept, texts, data)
