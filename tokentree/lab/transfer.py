"""Forward and inverse alignment between checkpoints of one alignment run (the paper's Table 1 protocol).

From a base model, one epoch on an alignment set keeps theta_1, theta_2, theta_3 at 1/3,
2/3 and 3/3 of it (:func:`alignment_checkpoints`); each theta_k answers the same held-out
prompts, giving the slice D_k (:func:`sample_slices`), split by prompt into a training part
and a held-out part (the same prompts in every slice). Then a start checkpoint is trained
on a target slice with one set of :class:`TransferSettings` (:func:`train_on`): *forward*
is theta_k on D_l (k < l), *inverse* theta_l on D_k. :func:`transfer_grid` trains every
start on every target (the 2x2 design of each pair is four of its nine cells) and
measures each result on the target's held-out part and by its KL to the base.

A model of 100M+ parameters (SmolLM2) is fine-tuned with LoRA adapters by default
(:data:`~tokentree.lab.train.AUTO_LORA_PARAMETERS`); :func:`merge_adapters` folds each
fine-tune's adapters into the weights, so every checkpoint is a plain model in float32
that the next fine-tune gives fresh adapters of its own.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from tokentree.data.chat import TokenizedExamples
from tokentree.infra.checks import check_float, check_int
from tokentree.infra.errors import InputError
from tokentree.infra.results import Record

__all__ = ["PAIRS", "TransferSettings", "Slices", "TransferCell", "TransferRecord", "SliceRecord",
           "TransferRun", "alignment_checkpoints", "sample_slices", "train_on", "heldout_loss", "transfer_grid",
           "pair_records", "transfer_run", "merge_adapters"]

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


def merge_adapters(model: Any) -> Any:
    """``model`` with its LoRA adapters (peft) merged into the weights, as a plain model in float32 (in place).

    A model without adapters is only cast to float32, so that checkpoints are measured alike whatever
    dtype they were trained in.
    """
    if type(model).__module__.startswith("peft."):
        model = model.float().merge_and_unload()
    return model.float()


def train_on(model: Any, data: TokenizedExamples, settings: TransferSettings, seed: int) -> tuple[Any, float]:
    """A copy of ``model`` trained on ``data``; (the model, the mean loss of the last ``tail_share`` of the steps)."""
    trainer = settings.trainer(model, seed)
    for _ in range(settings.epochs):
        trainer.epoch(data)
    tail = max(1, math.ceil(settings.tail_share * len(trainer.losses)))
    return merge_adapters(trainer.model), float(np.mean(trainer.losses[-tail:]))


def alignment_checkpoints(base: Any, aligned: TokenizedExamples, settings: TransferSettings, seed: int) -> list[Any]:
    """theta_1, theta_2, theta_3: a copy of ``base`` at 1/3, 2/3 and 3/3 of ``settings.epochs`` epochs on
    ``aligned``."""
    from tokentree.lab.train import training_windows

    trainer = settings.trainer(base, seed)
    steps = settings.epochs * -(-len(training_windows(aligned, trainer.context)[0]) // settings.batch_size)
    out = []
    for mark in [max(1, round(steps * k / 3)) for k in (1, 2, 3)]:
        while trainer.steps_done < mark:
            trainer.epoch(aligned, stop_after=mark - trainer.steps_done)
        out.append(merge_adapters(copy.deepcopy(trainer.model)).eval())
    return out


@dataclass(frozen=True)
class Slices:
    """What each checkpoint answered to the same prompts (empty answers dropped from all): the prompts kept,
    the texts (one tuple per checkpoint), each slice tokenized as chats (``data``), and its training and
    held-out parts (``train``, ``heldout``: the prompts at ``heldout_rows`` are held out, the same in every slice)."""

    prompts: tuple[Any, ...]
    texts: tuple[tuple[str, ...], ...]
    data: tuple[TokenizedExamples, ...]
    heldout_rows: tuple[int, ...] = ()

    @property
    def train(self) -> tuple[TokenizedExamples, ...]:
        keep = [i for i in range(len(self.prompts)) if i not in set(self.heldout_rows)]
        return tuple(d.select(keep) for d in self.data) if self.heldout_rows else self.data

    @property
    def heldout(self) -> tuple[TokenizedExamples, ...]:
        return tuple(d.select(self.heldout_rows) for d in self.data) if self.heldout_rows else self.data


def sample_slices(thetas: Sequence[Any], tokenizer: Any, prompts: Sequence[Any], *, max_new_tokens: int,
                  temperature: float, seed: int, what: str, heldout_share: float = 0.0) -> Slices:
    """D_k for every theta_k: its sampled answers to ``prompts`` (seed ``seed + k``), as chats; a seeded
    ``heldout_share`` of the prompts is held out (at least one prompt on each side)."""
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
    n_out = min(len(kept) - 1, max(1, round(heldout_share * len(kept)))) if heldout_share > 0 else 0
    rows = np.sort(np.random.default_rng([seed, 11]).permutation(len(kept))[:n_out])
    return Slices(kept, texts, data, tuple(int(i) for i in rows))


def heldout_loss(model: Any, data: TokenizedExamples, *, threads: int = 1) -> float:
    """Mean loss per response token of ``data`` under ``model`` (nats): the whole set, not the last batches."""
    from tokentree.lab.measure import response_rates

    return response_rates(model, {"heldout": data}, threads=threads)["heldout"].bits_per_token * math.log(2)


@dataclass(frozen=True)
class TransferCell:
    """Start theta_s trained on target D_t: the mean training loss of the last steps (the paper's "final loss"),
    the loss on D_t's held-out part, and the KL to the base after training (nats)."""

    start: int
    target: int
    tail_loss: float
    heldout_nats: float
    kl_to_base_nats: float


def transfer_grid(thetas: Sequence[Any], slices: Slices, base: Any, reference: TokenizedExamples,
                  settings: TransferSettings, seed: int) -> dict[tuple[int, int], TransferCell]:
    """Every start theta_s (s = 1, 2, 3) trained on every target slice D_t with the same settings and data order."""
    from tokentree.lab.measure import kl_to_reference

    out = {}
    for s in (1, 2, 3):
        for t in (1, 2, 3):
            model, tail = train_on(thetas[s - 1], slices.train[t - 1], settings, seed)
            out[(s, t)] = TransferCell(s, t, tail, heldout_loss(model, slices.heldout[t - 1], threads=settings.threads),
                                       kl_to_reference(model, base, reference).mean_kl_nats)
    return out


@dataclass(frozen=True)
class TransferRecord(Record):
    """One pair k-l of one seed, dataset, base and alignment size: the 2x2 cells on held-out loss, the paper's raw
    comparison and the KL measure (every column: docs/experiments.md §E4s)."""

    NONFINITE_REASONS: ClassVar[dict[str, str]] = {}

    seed: int
    dataset: str
    base: str
    n_align: int
    pair: str
    forward_loss: float
    inverse_loss: float
    gap: float
    heldout_forward_nats: float
    heldout_inverse_nats: float
    heldout_stay_late_nats: float
    heldout_stay_early_nats: float
    contrast_nats: float
    target_difficulty_nats: float
    forward_delta_kl_nats: float
    inverse_delta_kl_nats: float
    kl_return_excess_nats: float


@dataclass(frozen=True)
class SliceRecord(Record):
    """The slices of one seed, dataset, base and alignment size: aligned share of each D_k, prompts kept, held out."""

    NONFINITE_REASONS: ClassVar[dict[str, str]] = {"share_1": "no sample could be read by the scorer"}

    seed: int
    dataset: str
    base: str
    n_align: int
    share_1: float
    share_2: float
    share_3: float
    n_prompts: int
    n_heldout: int


def pair_records(seed: int, dataset: str, base: str, n_align: int, grid: Any, kls: dict[int, float]) -> list[
        TransferRecord]:
    """The records of the three pairs from one :func:`transfer_grid` (``kls``: each theta_k's KL to the base)."""
    out = []
    for k, l in PAIRS:
        f, i, stay_l, stay_k = grid[(k, l)], grid[(l, k)], grid[(l, l)], grid[(k, k)]
        out.append(TransferRecord(
            seed, dataset, base, n_align, f"{k}-{l}", f.tail_loss, i.tail_loss, f.tail_loss - i.tail_loss,
            f.heldout_nats, i.heldout_nats, stay_l.heldout_nats, stay_k.heldout_nats,
            (f.heldout_nats - stay_l.heldout_nats) - (i.heldout_nats - stay_k.heldout_nats),
            (f.heldout_nats + stay_l.heldout_nats - i.heldout_nats - stay_k.heldout_nats) / 2,
            f.kl_to_base_nats - kls[k], i.kl_to_base_nats - kls[l], (kls[l] - i.kl_to_base_nats) - (
                f.kl_to_base_nats - kls[k])))
    return out


@dataclass(frozen=True)
class TransferRun:
    """One alignment run's Table 1 protocol: the pair records, the slice record, theta_3's KL to the base and the
    tokens of one slice's training part."""

    records: list[TransferRecord]
    slices: SliceRecord
    alignment_kl_nats: float
    transfer_tokens: int


def transfer_run(model: Any, tokenizer: Any, data: Any, aligned: TokenizedExamples, *, align: TransferSettings,
                 transfer: TransferSettings, seed: int, max_new_tokens: int, temperature: float, heldout_share: float,
                 labels: tuple[str, str, int]) -> TransferRun:
    """From ``model``: theta_1..3 on ``aligned``, the slices (aligned shares by ``data.scorer``), the whole grid.

    ``data`` is a :class:`~tokentree.data.sources.BehaviourData`; ``labels`` = (dataset, base, n_align).
    """
    from tokentree.data.behaviour import aligned_share
    from tokentree.data.chat import tokenize_chats
    from tokentree.lab.measure import kl_to_reference

    dataset, base, n_align = labels
    thetas = alignment_checkpoints(model, aligned, align, seed)
    slices = sample_slices(thetas, tokenizer, data.eval_prompts, max_new_tokens=max_new_tokens,
                           temperature=temperature, seed=seed + 100, what=dataset, heldout_share=heldout_share)
    prompts = [next(t["content"] for t in reversed(p) if t["role"] == "user") for p in slices.prompts]
    shares = [aligned_share(data.scorer.score(list(t), prompts))[0] for t in slices.texts]
    reference = tokenize_chats(data.eval_aligned, tokenizer)
    kls = {k: kl_to_reference(thetas[k - 1], model, reference).mean_kl_nats for k in (1, 2, 3)}
    grid = transfer_grid(thetas, slices, model, reference, transfer, seed + 200)
    record = SliceRecord(seed, dataset, base, n_align, shares[0], shares[1], shares[2], len(slices.prompts),
                         len(slices.heldout_rows))
    return TransferRun(pair_records(seed, dataset, base, n_align, grid, kls), record, kls[3],
                       slices.train[0].n_target_tokens)
