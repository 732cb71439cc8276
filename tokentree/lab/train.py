"""Training a causal LM: full fine-tuning or LoRA, chosen parameter groups, schedules, exact resume.

:class:`LMTrainer` trains any ``transformers`` causal LM (the tiny Llama, SmolLM2, a
model from the hub) on :class:`~tokentree.data.chat.TokenizedExamples`:

* **what moves**: everything (``trainable="all"``, embeddings included), the attention
  projections only (``"attention"``: q/k/v/o), or attention and MLP (``"attention+mlp"``);
  or LoRA adapters through ``peft`` (:class:`LoraSettings`: rank, alpha, target modules),
  with every base weight frozen;
* **how**: AdamW, a fresh optimiser per trainer (one per stage of an experiment), gradient
  clipping, a constant learning rate or a warmup followed by cosine decay
  (``schedule="cosine"``, for pre-training);
* **in what order**: sequences longer than the model's context are cut into windows that
  overlap by one token (every target trained once), or all sequences are packed into full
  windows, attention confined to each sequence or not (``packing``, see
  :mod:`tokentree.lab.packing`); each epoch visits them in an order drawn from
  ``(seed, epoch)`` (``bucketed``: batches of similar length), so the same seed gives the
  same weights, byte for byte;
* **at what cost**: no attention mask is given to the model (right padding never reaches a
  real token under causal attention) and no KV cache is built, so ``transformers`` takes
  its causal fast path; models of :data:`AUTO_LORA_PARAMETERS` parameters or more get
  LoRA adapters by default (``auto_lora``) and run each step as micro-batches of at most
  :data:`AUTO_BATCH_TOKENS` padded tokens, rows of similar length together
  (``max_batch_tokens``: the same step in bounded memory, with less padding), and ``dtype`` is
  float32 (the default) or bfloat16.
  Measured (benchmarks/bench_models.py, SmolLM2-135M LoRA, one thread, CPU time on the 2-core
  AMD EPYC VM with avx512_bf16, load about 5): bfloat16 is 1.36x faster on packed 256-token
  windows (117 vs 86 tokens/s) and 1.28x on batches of 16 short chats (118 vs 92 tokens/s).
  float32 stays the default all the same: bfloat16 rounds the frozen base weights (SmolLM2
  rounded so is 1.2e-4 nats per response token away from itself in KL, the size of the
  resistance effects measured), and a change merged from an earlier stage that is 1e-3 of a
  weight keeps only 0.48 of its direction through that rounding (cosine; 0.15 at 1e-4), so the
  multi-stage protocols (:mod:`tokentree.lab.transfer`, :mod:`tokentree.lab.rebound_protocol`)
  would lose what the stage before did. Ask for ``dtype="bfloat16"`` for one LoRA stage whose
  results are compared with the base in bfloat16 too;
* **checkpoints**: :meth:`LMTrainer.save` writes the model (or the adapter) with
  ``save_pretrained`` and the optimiser, schedule and position in the epoch; training
  resumed with :meth:`LMTrainer.resume` continues exactly as if it had never stopped.
  Nothing is unpickled on loading (``torch.load(weights_only=True)``, safetensors), and
  every file is checked against the sha256 recorded when it was saved.
"""

from __future__ import annotations

import json
import math
import os
import pickle
import warnings
import zipfile
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from tokentree.data.chat import TokenizedExamples
from tokentree.infra.checks import check_choice, check_float, check_int
from tokentree.infra.errors import InputError
from tokentree.infra.outputs import damaged_files, write_output_folder
from tokentree.infra.progress import progress_bar
from tokentree.lab.packing import PACKING, TrainingWindows, collate, cut_windows, epoch_batches, make_windows

__all__ = [
    "TRAINABLE",
    "SCHEDULES",
    "ATTENTION_MODULES",
    "MLP_MODULES",
    "CHECKPOINT_KIND",
    "LoraSettings",
    "TrainSettings",
    "LMTrainer",
    "training_windows",
    "DTYPES",
    "AUTO_LORA_PARAMETERS",
    "AUTO_BATCH_TOKENS",
]

TRAINABLE = ("all", "attention", "attention+mlp")
SCHEDULES = ("constant", "cosine", "wsd")
ATTENTION_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj")
MLP_MODULES = ("gate_proj", "up_proj", "down_proj")
#: The kind of output folder a trainer checkpoint is (see tokentree.infra.outputs).
CHECKPOINT_KIND = "checkpoint"
_STATE, _SETTINGS = "trainer_state.pt", "trainer.json"
_WEIGHTS, _ADAPTER = "model.safetensors", "adapter_model.safetensors"
DTYPES = ("float32", "bfloat16")
#: Models with at least this many parameters are fine-tuned with LoRA unless told otherwise.
AUTO_LORA_PARAMETERS = 100_000_000
#: Padded tokens per micro-batch for such a model: SmolLM2-135M with LoRA held 9.3 GB above its
#: weights for a batch of 16 x 185 tokens (about 3 MB per token), and a padded batch of long
#: texts (16 x 756) did not fit in 24 GB; with 1,024 tokens those steps held 2.4 GB above the weights.
AUTO_BATCH_TOKENS = 1024
#: Mixed with the trainer's seed to draw the initial LoRA weights (so they differ from the batch order's draws).
LORA_SEED_SALT = 0x10AA


@dataclass(frozen=True)
class LoraSettings:
    """LoRA adapters (peft): rank r, scale alpha / r, dropout, and the linear modules they wrap."""

    rank: int = 8
    alpha: float = 16.0
    dropout: float = 0.0
    target_modules: tuple[str, ...] = ATTENTION_MODULES + MLP_MODULES

    def __post_init__(self) -> None:
        check_int(self.rank, "lora rank", minimum=1)
        check_float(self.alpha, "lora alpha", minimum=0.0, exclusive=True)
        check_float(self.dropout, "lora dropout", minimum=0.0, maximum=0.99)
        if not self.target_modules or not all(isinstance(m, str) and m for m in self.target_modules):
            raise InputError(f"lora target_modules must be module names such as q_proj; got {self.target_modules!r}")


@dataclass(frozen=True)
class TrainSettings:
    """How a :class:`LMTrainer` trains (see the module docstring).

    ``total_steps`` is the length of a decaying schedule (needed for ``schedule="cosine"`` and ``"wsd"``);
    ``"wsd"`` (warmup, stable, decay) holds ``lr`` after the warmup and decays it linearly to 0
    over the last ``decay_steps`` of ``total_steps``: the curve before the decay shows whether
    the model has converged at that learning rate, which a cosine's falling rate hides;
    ``device`` is "cpu", "cuda", "mps" or "auto"; ``threads`` is torch's CPU thread count;
    ``packing`` is "off", "confined" or "open" and ``bucketed`` groups windows of similar
    length (:mod:`tokentree.lab.packing`); ``auto_lora``: a model of
    :data:`AUTO_LORA_PARAMETERS` parameters or more with ``trainable="all"`` and no
    ``lora`` gets :class:`LoraSettings` () (the checkpoint records the adapters chosen);
    ``dtype``: the weights' float type; ``window``: the longest training window in tokens
    (0: the model's context; SmolLM2's 8,192 is more than CPU training needs);
    ``max_batch_tokens``: a step's batch is run as micro-batches of at most that many padded
    tokens (rows x width), their gradients summed with weights by target tokens, so the step is
    the one of the whole batch (up to float rounding) in bounded memory; None: no split, except
    :data:`AUTO_BATCH_TOKENS` for a model that gets LoRA by default (``auto_lora``); 0: no split.
    """

    lr: float = 1e-3
    batch_size: int = 16
    weight_decay: float = 0.0
    schedule: str = "constant"
    warmup_steps: int = 0
    total_steps: int = 0
    decay_steps: int = 0
    trainable: str = "all"
    lora: LoraSettings | None = None
    grad_clip: float = 1.0
    seed: int = 0
    threads: int = 1
    device: str = "cpu"
    betas: tuple[float, float] = field(default=(0.9, 0.98))
    packing: str = "off"
    bucketed: bool = False
    auto_lora: bool = True
    dtype: str = "float32"
    window: int = 0
    max_batch_tokens: int | None = None

    def __post_init__(self) -> None:
        check_float(self.lr, "lr", minimum=0.0, exclusive=True)
        check_int(self.batch_size, "batch_size", minimum=1)
        check_float(self.weight_decay, "weight_decay", minimum=0.0)
        check_choice(self.schedule, "schedule", SCHEDULES)
        check_int(self.warmup_steps, "warmup_steps", minimum=0)
        check_int(self.total_steps, "total_steps", minimum=0)
        if self.schedule == "cosine" and self.total_steps <= self.warmup_steps:
            raise InputError(
                f"a cosine schedule needs total_steps ({self.total_steps}) above warmup_steps ({self.warmup_steps})"
            )
        check_int(self.decay_steps, "decay_steps", minimum=0)
        if self.schedule == "wsd" and not 0 < self.decay_steps <= self.total_steps - self.warmup_steps:
            raise InputError(f"a wsd schedule needs 0 < decay_steps ({self.decay_steps}) <= total_steps - "
                             f"warmup_steps ({self.total_steps} - {self.warmup_steps})")
        check_choice(self.trainable, "trainable", TRAINABLE)
        check_float(self.grad_clip, "grad_clip", minimum=0.0, exclusive=True)
        check_int(self.seed, "seed", minimum=0)
        check_int(self.threads, "threads", minimum=1)
        check_choice(self.packing, "packing", PACKING)
        check_choice(self.dtype, "dtype", DTYPES)
        check_int(self.window, "window", minimum=0)
        if self.max_batch_tokens is not None:
            check_int(self.max_batch_tokens, "max_batch_tokens", minimum=0)

    @property
    def decay_start(self) -> int | None:
        """The step where a wsd schedule's decay begins (None for the other schedules)."""
        return self.total_steps - self.decay_steps if self.schedule == "wsd" else None

    def lr_factor(self, step: int) -> float:
        """The learning rate at ``step`` as a fraction of ``lr``: linear warmup, then constant, cosine to 0, or
        constant and a linear decay to 0 over the last ``decay_steps`` (wsd)."""
        if step < self.warmup_steps:
            return (step + 1) / self.warmup_steps
        if self.schedule == "constant":
            return 1.0
        if self.schedule == "wsd":
            return min(1.0, max(0.0, (self.total_steps - step) / self.decay_steps))
        done = min(1.0, (step - self.warmup_steps) / (self.total_steps - self.warmup_steps))
        return 0.5 * (1.0 + math.cos(math.pi * done))


def training_windows(data: TokenizedExamples, context: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Sequences longer than ``context`` tokens cut into windows that overlap by one token.

    The overlap token is the input for the next window's first target, so every target of
    the data is trained exactly once, with as much context as a window allows
    (:func:`tokentree.lab.packing.cut_windows`; :meth:`LMTrainer.windows` for packed ones).
    """
    cut = cut_windows(data, context)
    return list(cut.ids), list(cut.targets)


def _torch() -> Any:
    from tokentree.infra.optional import torch_module

    return torch_module()


class LMTrainer:
    """Trains ``model`` with ``settings``; one trainer is one optimiser (one stage of an experiment)."""

    def __init__(self, model: Any, settings: TrainSettings, *, regularizer: Any = None) -> None:
        """``regularizer(model, kv, ids, attention)``, if given, returns a term added to every step's loss.

        ``model`` is the model being trained, ``kv`` holds the keys and values of the step's
        forward pass (differentiable, :func:`tokentree.bridge.kv.capture_kv`), ``ids`` and
        ``attention`` the padded batch: TReFT's penalty and the KL to the original model on
        retain data are two (:mod:`tokentree.lab.template_prefix`).
        """
        from tokentree.bridge.hf import pick_device

        torch = _torch()
        if not isinstance(settings, TrainSettings):
            raise InputError(f"settings must be a TrainSettings; got {type(settings).__name__}")
        torch.set_num_threads(settings.threads)
        if regularizer is not None and settings.packing != "off":
            raise InputError("a regularizer reads the positions of one sequence per row; use packing='off' with it")
        if settings.auto_lora and settings.trainable == "all" \
                and sum(p.numel() for p in model.parameters()) >= AUTO_LORA_PARAMETERS:
            settings = replace(settings, lora=settings.lora or LoraSettings(),
                               max_batch_tokens=AUTO_BATCH_TOKENS if settings.max_batch_tokens is None
                               else settings.max_batch_tokens)
        self.settings = settings
        self.device = pick_device(settings.device)
        model = model.to(device=self.device, dtype=getattr(torch, settings.dtype))
        if settings.lora is not None:
            model = _with_lora(model, settings.lora, settings.seed)
        else:
            _choose_trainable(model, settings.trainable)
        self.model = model
        self._trainable = [p for p in model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(
            self._trainable, lr=settings.lr, weight_decay=settings.weight_decay, betas=settings.betas
        )
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, settings.lr_factor)
        self.steps_done = 0
        self.epochs_done = 0
        self.batches_done = 0  # in the current epoch
        self.losses: list[float] = []  # the data loss of every step of this trainer, in order
        self.regularizer = regularizer
        self.penalties: list[float] = []  # the regularizer's value at every step (when there is one)

    @property
    def context(self) -> int:
        """The longest training window: ``settings.window`` if set (and shorter), else the model's context."""
        context = int(self.model.config.max_position_embeddings)
        return min(context, self.settings.window) if self.settings.window else context

    @property
    def pad_token_id(self) -> int:
        pad = getattr(self.model.config, "pad_token_id", None)
        return int(pad) if pad is not None else 0

    def windows(self, data: TokenizedExamples) -> TrainingWindows:
        """The training windows of ``data`` under this trainer's ``packing`` and the model's context."""
        return make_windows(data, self.context, self.settings.packing)

    def batches_per_epoch(self, data: TokenizedExamples) -> int:
        """Optimiser steps in one epoch over ``data`` (for sizing schedules)."""
        return -(-len(self.windows(data)) // self.settings.batch_size)

    def step(self, windows: list[np.ndarray], masks: list[np.ndarray],
             positions: list[np.ndarray] | None = None) -> float:
        """One optimiser step on a batch; returns its mean loss per target token (nats).

        ``positions`` (one array per window) are position ids, for packed windows whose
        sequences must not see each other.
        """
        torch = _torch()
        self.model.train()
        parts = self._micro_batches(windows, masks)
        if len(parts) > 1:
            loss = self._accumulated_step(parts, windows, masks, positions)
            torch.nn.utils.clip_grad_norm_(self._trainable, self.settings.grad_clip)
            return self._optimizer_step(loss)
        batch = collate(windows, masks, positions, pad=self.pad_token_id).to(self.device)
        if self.regularizer is None:
            out = self.model(**batch.model_inputs())
            total = out.loss
        else:
            from tokentree.bridge.kv import capture_kv

            with capture_kv(self.model, detach=False) as kv:
                out = self.model(**batch.model_inputs())
            penalty = self.regularizer(self.model, kv, batch.input_ids, batch.attention)
            self.penalties.append(float(penalty.detach()))
            total = out.loss + penalty
        self.optimizer.zero_grad(set_to_none=True)
        total.backward()
        torch.nn.utils.clip_grad_norm_(self._trainable, self.settings.grad_clip)
        return self._optimizer_step(float(out.loss.detach()))

    def _optimizer_step(self, loss: float) -> float:
        self.optimizer.step()
        self.scheduler.step()
        self.steps_done += 1
        self.losses.append(loss)
        return loss

    def _micro_batches(self, windows: list[np.ndarray], masks: list[np.ndarray]) -> list[list[int]]:
        """The batch's rows, shortest first, in groups of at most ``max_batch_tokens`` padded tokens (one group
        when there is no limit, a regularizer, or no target token). A step's gradient is a sum over its rows, so
        grouping rows of similar length changes only float rounding, and saves the padding."""
        limit = self.settings.max_batch_tokens
        if not limit or self.regularizer is not None or not sum(int(m[1:].sum()) for m in masks):
            return [list(range(len(windows)))]
        parts: list[list[int]] = [[]]
        width = 0
        for i in sorted(range(len(windows)), key=lambda i: windows[i].shape[0]):
            w = windows[i]
            if parts[-1] and (len(parts[-1]) + 1) * max(width, w.shape[0]) > limit:
                parts.append([])
                width = 0
            parts[-1].append(i)
            width = max(width, w.shape[0])
        return parts

    def _accumulated_step(self, parts: list[list[int]], windows: list[np.ndarray], masks: list[np.ndarray],
                          positions: list[np.ndarray] | None) -> float:
        """Gradients of the whole batch's mean loss summed over its micro-batches; returns that mean loss."""
        n = [sum(int(masks[i][1:].sum()) for i in part) for part in parts]  # the model's targets: labels shifted
        total, loss = sum(n), 0.0
        self.optimizer.zero_grad(set_to_none=True)
        for part, n_part in zip(parts, n, strict=True):
            if not n_part:
                continue
            batch = collate([windows[i] for i in part], [masks[i] for i in part],
                            None if positions is None else [positions[i] for i in part], pad=self.pad_token_id)
            out = self.model(**batch.to(self.device).model_inputs())
            (out.loss * (n_part / total)).backward()
            loss += float(out.loss.detach()) * n_part / total
        return loss

    def epoch(
        self, data: TokenizedExamples | TrainingWindows, *, show_progress: bool | None = None,
        desc: str = "training", stop_after: int | None = None,
    ) -> float:
        """One pass over ``data`` in this epoch's seeded order; returns the mean loss per target token (nats).

        ``data`` may also be windows made once with :meth:`windows` (saves re-cutting them
        every epoch). ``stop_after`` ends the call after that many batches (to save a
        checkpoint mid-epoch); the next call continues the same epoch where it stopped.
        """
        windows = data if isinstance(data, TrainingWindows) else self.windows(data)
        batches = epoch_batches(windows, self.settings.batch_size, seed=self.settings.seed,
                                epoch=self.epochs_done, bucketed=self.settings.bucketed)
        total = tokens = 0.0
        with progress_bar(len(batches), desc=desc, show=show_progress, unit="batch") as bar:
            bar.update(self.batches_done)
            for done, batch in enumerate(batches[self.batches_done :]):
                if stop_after is not None and done >= stop_after:
                    return total / tokens if tokens else math.nan
                n = float(sum(int(windows.targets[i].sum()) for i in batch))
                positions = None if windows.positions is None else [windows.positions[i] for i in batch]
                loss = self.step([windows.ids[i] for i in batch], [windows.targets[i] for i in batch], positions)
                total, tokens = total + loss * n, tokens + n
                self.batches_done += 1
                bar.update(1, loss=loss)
        self.epochs_done += 1
        self.batches_done = 0
        return total / tokens if tokens else math.nan

    # ----------------------------------------------------------------- checkpoints
    def save(self, folder: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
        """A checkpoint folder: the model (or its adapter) by ``save_pretrained``, and the trainer's state."""
        torch = _torch()

        from tokentree.bridge.hf import quiet_transformers

        def write(tmp: Path) -> None:
            with quiet_transformers():
                self.model.save_pretrained(tmp, safe_serialization=True)
            state = {
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(),
                "torch_rng": torch.get_rng_state(),
                **({"cuda_rng": torch.cuda.get_rng_state_all()} if torch.device(self.device).type == "cuda" else {}),
            }
            torch.save(state, tmp / _STATE)
            info = {
                "settings": asdict(self.settings),
                "steps_done": self.steps_done,
                "epochs_done": self.epochs_done,
                "batches_done": self.batches_done,
            }
            (tmp / _SETTINGS).write_text(json.dumps(info, indent=1, sort_keys=True) + "\n", encoding="utf-8")

        return write_output_folder(folder, write, kind=CHECKPOINT_KIND, overwrite=overwrite, checksums=True)

    @classmethod
    def resume(cls, folder: str | os.PathLike[str], model: Any) -> LMTrainer:
        """The trainer of checkpoint ``folder``, continuing on ``model`` (the model it started from).

        With LoRA, ``model`` is the base model and the adapter is read from the folder; for
        full training the folder's weights replace ``model``'s.
        """
        torch = _torch()
        from safetensors.torch import load_file

        folder = Path(folder)
        if not (folder / _SETTINGS).is_file() or not (folder / _STATE).is_file():
            raise InputError(f"{os.fspath(folder)!r} is not a trainer checkpoint: it lacks {_SETTINGS} or {_STATE}")

        def corrupt(name: str, exc: BaseException) -> InputError:
            first = (str(exc).splitlines() or [type(exc).__name__])[0]
            return InputError(f"{os.fspath(folder / name)!r} is corrupt or does not match ({first}); restore it")

        damaged = damaged_files(folder)
        if damaged:
            raise corrupt(damaged[0], ValueError(
                "it is missing or differs from the sha256 recorded when the checkpoint was saved: truncated, "
                "overwritten or damaged on disk"))

        try:
            info = json.loads((folder / _SETTINGS).read_text(encoding="utf-8"))
            raw = info["settings"]
            lora = LoraSettings(**{**raw["lora"], "target_modules": tuple(raw["lora"]["target_modules"])}) \
                if raw.get("lora") else None
            settings = TrainSettings(**{**raw, "lora": lora, "betas": tuple(raw["betas"])})
            counters = int(info["steps_done"]), int(info["epochs_done"]), int(info["batches_done"])
        except (ValueError, TypeError, KeyError) as exc:
            raise corrupt(_SETTINGS, exc) from None
        trainer = cls(model, settings)
        weights_name = _ADAPTER if lora is not None else _WEIGHTS
        try:
            weights = load_file(folder / weights_name)
        except Exception as exc:  # safetensors raises its own error type for every kind of damage
            raise corrupt(weights_name, exc) from None
        _load_weights(trainer.model, weights, lora is not None, lambda exc: corrupt(weights_name, exc))
        if not zipfile.is_zipfile(folder / _STATE):
            raise corrupt(_STATE, ValueError("not a torch.save archive: truncated or replaced"))
        try:
            state = torch.load(folder / _STATE, weights_only=True, map_location="cpu")  # saved on a GPU or not
            trainer.optimizer.load_state_dict(state["optimizer"])  # (moves the state to the parameters' device)
            trainer.scheduler.load_state_dict(state["scheduler"])
            torch.set_rng_state(state["torch_rng"])
            if "cuda_rng" in state and torch.device(trainer.device).type == "cuda":  # dropout on a GPU draws there
                torch.cuda.set_rng_state_all(state["cuda_rng"])
        except pickle.UnpicklingError as exc:
            raise InputError(
                f"{os.fspath(folder / _STATE)!r} holds objects other than tensors and plain containers; it is not "
                f"loaded, since unpickling them could run code ({str(exc).splitlines()[0]})"
            ) from None
        except (RuntimeError, EOFError, OSError, KeyError, ValueError, TypeError) as exc:
            raise corrupt(_STATE, exc) from None
        trainer.steps_done, trainer.epochs_done, trainer.batches_done = counters
        return trainer


def _load_weights(model: Any, weights: dict[str, Any], adapter: bool, corrupt: Any) -> None:
    if adapter:
        from peft import set_peft_model_state_dict

        try:
            result = set_peft_model_state_dict(model, weights)
        except (RuntimeError, KeyError, ValueError) as exc:
            raise corrupt(exc) from None
        unexpected = getattr(result, "unexpected_keys", None)
        if unexpected:
            raise corrupt(ValueError(f"unexpected adapter weights {list(unexpected)[:3]}"))
        return
    tied = {"lm_head.weight"} if getattr(model.config, "tie_word_embeddings", False) else set()
    try:
        got = model.load_state_dict(weights, strict=False)
    except RuntimeError as exc:  # a tensor of the wrong shape
        raise corrupt(exc) from None
    if got.unexpected_keys or set(got.missing_keys) - tied:
        raise corrupt(ValueError(f"the weights do not fit the model (missing {sorted(got.missing_keys)[:3]})"))
    if tied:
        model.tie_weights()


def _with_lora(model: Any, lora: LoraSettings, seed: int) -> Any:
    """``model`` wrapped in fresh adapters; peft draws their initial weights from torch's global generator, so
    they are drawn here under a generator seeded from ``seed`` (the global one is left as it was)."""
    from peft import LoraConfig, get_peft_model

    names = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    missing = [m for m in lora.target_modules if m not in names]
    if missing:
        linear = sorted(n for n in names if n.endswith("proj"))
        raise InputError(f"LoRA target modules {missing} are not in this model; its projections are {linear}")
    config = LoraConfig(
        r=lora.rank, lora_alpha=lora.alpha,  # type: ignore[arg-type]  # peft types it int; any positive number works
        lora_dropout=lora.dropout, target_modules=list(lora.target_modules),
        task_type="CAUSAL_LM",
    )
    torch = _torch()
    with warnings.catch_warnings(), torch.random.fork_rng(devices=list(range(torch.cuda.device_count()))):
        # peft 0.21 reads a property that transformers 5 has deprecated
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        torch.manual_seed(int(np.random.SeedSequence([seed, LORA_SEED_SALT]).generate_state(1)[0]))
        return get_peft_model(model, config)


def _choose_trainable(model: Any, trainable: str) -> None:
    groups = {"all": None, "attention": ATTENTION_MODULES, "attention+mlp": ATTENTION_MODULES + MLP_MODULES}[trainable]
    for name, param in model.named_parameters():
        parts = name.split(".")
        param.requires_grad = groups is None or any(g in parts for g in groups)
    if not any(p.requires_grad for p in model.parameters()):
        raise InputError(f"trainable={trainable!r} leaves no parameter of this model to train")
