"""The base model theta_0 of a behaviour experiment: a tiny Llama pre-trained here, or a loaded model.

:func:`prepare_base` either trains a tokenizer and a tiny Llama from scratch on the
data's pre-training text and chats (a warmup + cosine schedule over a token budget,
with snapshots of the model at chosen fractions of the run, for the pre-training volume
experiment, optionally each briefly annealed: a copy of the run, optimiser state included,
continued with its learning rate decayed linearly to 0), or loads SmolLM2, a model folder
or a hub model with its own tokenizer (which may then be trained further on the same text).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from tokentree.data.chat import TokenizedExamples, from_sequences, tokenize_chats, tokenize_texts
from tokentree.data.sources import BehaviourData
from tokentree.infra.checks import check_choice, check_float, check_int
from tokentree.infra.errors import InputError
from tokentree.infra.progress import progress_bar
from tokentree.lab.packing import PACKING, make_windows

__all__ = ["PRETRAIN_SCHEDULES", "BaseSettings", "BaseModel", "prepare_base"]

#: How theta_0's learning rate falls after the warmup (:class:`~tokentree.lab.train.TrainSettings`).
PRETRAIN_SCHEDULES = ("cosine", "wsd")


@dataclass(frozen=True)
class BaseSettings:
    """How theta_0 is made. ``model``: "tiny" (trained here) or what :func:`~tokentree.bridge.hf.load_model` reads.

    For the tiny model: the tokenizer's ``vocab_size``, the shape, and pre-training on about
    ``pretrain_tokens`` tokens of the data's text with ``lr``: warmup over ``warmup_share`` of
    the steps, then ``schedule`` "cosine" (decay to 0) or "wsd" (constant, then a linear decay
    to 0 over the last ``decay_share`` of the steps; the constant part's loss curve is the one
    the convergence check reads, :attr:`BaseModel.convergence_losses`), its windows laid out by
    ``packing`` (:mod:`tokentree.lab.packing`: "off", each text on its own; "confined", texts
    packed into full windows, attention confined to each: the same context per token, fewer
    padded rows, so fewer steps for the same tokens). "off" stays the default because packing did
    not pay here: on the synthetic safety language (texts of 32 tokens on average), width 32,
    600k tokens, confined packing took 16.6 CPU s against 16.4 s unpacked (the block-diagonal
    mask costs what the padding saved) and, with 3.1x fewer steps, ended at 0.397 nats/token
    against 0.233 (2-core VM, 2026-12-04). For a loaded model, ``pretrain_tokens`` > 0 trains it
    further.
    """

    model: str = "tiny"
    vocab_size: int = 1000
    n_layers: int = 2
    d_model: int = 64
    n_heads: int = 4
    context: int = 128
    pretrain_tokens: int = 300_000
    lr: float = 3e-3
    batch_size: int = 16
    warmup_share: float = 0.05
    schedule: str = "cosine"
    decay_share: float = 0.2
    packing: str = "off"
    device: str = "cpu"
    threads: int = 1

    def __post_init__(self) -> None:
        if not isinstance(self.model, str) or not self.model.strip():
            raise InputError(f"model must be 'tiny', 'smollm2', a model folder or a hub name; got {self.model!r}")
        check_int(self.vocab_size, "vocab_size", minimum=300)
        check_int(self.pretrain_tokens, "pretrain_tokens", minimum=0)
        check_float(self.lr, "lr", minimum=0.0, exclusive=True)
        check_int(self.batch_size, "batch_size", minimum=1)
        check_float(self.warmup_share, "warmup_share", minimum=0.0, maximum=0.5)
        check_choice(self.schedule, "schedule", PRETRAIN_SCHEDULES)
        check_float(self.decay_share, "decay_share", minimum=0.0, maximum=0.5, exclusive=True)
        check_choice(self.packing, "packing", PACKING)
        check_int(self.threads, "threads", minimum=1)

    def pretrain_budget(self, data: TokenizedExamples, context: int) -> tuple[int, float]:
        """Steps for about ``pretrain_tokens`` target tokens of ``data`` (whole and partial epochs of windows of
        ``context`` tokens laid out by ``packing``), and the target tokens per step."""
        windows = make_windows(data, context, self.packing).ids
        tokens_per_step = data.n_target_tokens / -(-len(windows) // self.batch_size)
        return max(1, round(self.pretrain_tokens / tokens_per_step)), tokens_per_step

    def train_settings(self, budget: int, *, seed: int) -> Any:
        """The :class:`~tokentree.lab.train.TrainSettings` of a pre-training run of ``budget`` steps."""
        from tokentree.lab.train import TrainSettings

        decay = max(1, round(self.decay_share * budget)) if self.schedule == "wsd" else 0
        return TrainSettings(lr=self.lr, batch_size=self.batch_size, schedule=self.schedule, seed=seed,
                             warmup_steps=int(self.warmup_share * budget), total_steps=budget + 1, decay_steps=decay,
                             weight_decay=0.01, packing=self.packing, threads=self.threads, device=self.device)


@dataclass(eq=False)
class BaseModel:
    """theta_0 and its tokenizer; ``snapshots`` maps a fraction of the pre-training run to the model then;
    ``pretrain_losses`` is the loss of every pre-training step (nats per token; empty for a loaded model);
    ``decay_start`` the step where a wsd schedule's decay began (None for a cosine schedule);
    ``snapshot_tokens`` the pre-training tokens each snapshot saw (its annealing steps included)."""

    model: Any
    tokenizer: Any
    n_parameters: int
    pretrain_tokens: int
    snapshots: dict[float, Any] = field(default_factory=dict)
    pretrain_losses: tuple[float, ...] = ()
    decay_start: int | None = None
    snapshot_tokens: dict[float, int] = field(default_factory=dict)

    @property
    def convergence_losses(self) -> tuple[float, ...]:
        """The part of the loss curve that shows convergence: before a wsd decay, or the whole curve (cosine)."""
        return self.pretrain_losses[:self.decay_start]


def prepare_base(
    data: BehaviourData,
    settings: BaseSettings,
    *,
    seed: int,
    snapshot_fractions: Sequence[float] = (),
    snapshot_anneal_share: float = 0.0,
    show_progress: bool | None = None,
) -> BaseModel:
    """theta_0 for ``data`` (see the module docstring); the same seed gives the same model.

    ``snapshot_anneal_share`` > 0: every snapshot is annealed for that share of its own steps (at least one),
    its learning rate falling linearly from the run's to 0 on the data the run sees next; snapshots must then
    lie after the warmup. At 0 (the default) a snapshot is the run's model at that step.
    """
    from tokentree.bridge.hf import load_model
    from tokentree.bridge.tiny import TinySpec, tiny_llama, train_tiny_tokenizer
    from tokentree.lab.train import LMTrainer

    for f in snapshot_fractions:
        check_float(f, "snapshot fraction", minimum=0.0, maximum=1.0, exclusive=True)
    if settings.model == "tiny":
        chats = [t["content"] for chat in data.aligned[:500] + data.misaligned[:500] for t in chat]
        tokenizer = train_tiny_tokenizer([*data.pretraining_texts, *chats], settings.vocab_size)
        spec = TinySpec(len(tokenizer), settings.n_layers, settings.d_model, settings.n_heads, settings.context)
        model = tiny_llama(spec, seed=seed)
    else:
        model, tokenizer = load_model(settings.model, device=settings.device)
    n_parameters = int(sum(p.numel() for p in model.parameters()))
    if settings.pretrain_tokens == 0:
        if settings.model == "tiny":
            raise InputError("a tiny model trained from scratch needs pretrain_tokens > 0")
        return BaseModel(model, tokenizer, n_parameters, 0)
    texts = tokenize_texts(data.pretraining_texts, tokenizer)
    if data.pretraining_chats:  # chats in the template, every token a target: theta_0 knows the format
        templated = tokenize_chats(data.pretraining_chats, tokenizer)
        texts = TokenizedExamples.concatenate([texts, from_sequences(templated.sequences, prepend=None)])
    budget, tokens_per_step = settings.pretrain_budget(texts, int(model.config.max_position_embeddings))
    trainer = LMTrainer(model, settings.train_settings(budget, seed=seed))
    marks = {max(1, round(f * budget)): f for f in snapshot_fractions}
    check_float(snapshot_anneal_share, "snapshot_anneal_share", minimum=0.0, maximum=1.0)
    if snapshot_anneal_share > 0 and (early := [f for m, f in marks.items() if m <= trainer.settings.warmup_steps]):
        raise InputError(f"snapshot fraction {early[0]} lies inside the warmup ({settings.warmup_share:.0%} of the "
                         "steps): an annealed snapshot must come after it; raise the fraction or lower warmup_share")
    snapshots: dict[float, Any] = {}
    snapshot_steps: dict[float, int] = {}
    with progress_bar(budget, desc=f"pre-training theta_0 (seed {seed})", show=show_progress, unit="step") as bar:
        while trainer.steps_done < budget:
            before = trainer.steps_done
            next_mark = min([m for m in marks if m > before] + [budget])
            trainer.epoch(texts, stop_after=next_mark - before, show_progress=False)
            bar.update(trainer.steps_done - before)
            if trainer.steps_done in marks:
                f = marks[trainer.steps_done]
                twin = _annealed(trainer, texts, snapshot_anneal_share) if snapshot_anneal_share else None
                snapshots[f] = twin.model.eval() if twin else copy.deepcopy(trainer.model).eval()
                snapshot_steps[f] = (twin or trainer).steps_done
    return BaseModel(trainer.model.eval(), tokenizer, n_parameters, round(budget * tokens_per_step), snapshots,
                     tuple(trainer.losses), trainer.settings.decay_start,
                     {f: round(n * tokens_per_step) for f, n in snapshot_steps.items()})


def _annealed(trainer: Any, texts: TokenizedExamples, share: float) -> Any:
    """A copy of ``trainer`` (model and optimiser state) trained on for ``share`` of its steps so far (at least
    one), the learning rate falling linearly from its current value to 0; ``trainer`` is left as it was."""
    from tokentree.infra.optional import torch_module

    twin, steps = copy.deepcopy(trainer), max(1, round(share * trainer.steps_done))
    start, stop = twin.settings.lr_factor(twin.steps_done), twin.steps_done + steps
    twin.scheduler = torch_module().optim.lr_scheduler.LambdaLR(
        twin.optimizer, lambda step: start * (1 - step / steps))
    while twin.steps_done < stop:
        twin.epoch(texts, stop_after=stop - twin.steps_done, show_progress=False)
    return twin
