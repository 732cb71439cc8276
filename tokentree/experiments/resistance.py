"""resistance: is inverse alignment easier than forward alignment? The paper's Table 1 (docs/experiments.md §E4s).

Per seed: pre-train theta_0 (and keep the barely pre-trained model at ``barely_share`` of
the run). For every alignment dataset, fine-tune theta_0 for one epoch, keeping theta_1,
theta_2, theta_3 at 1/3, 2/3 and 3/3 of it, and sample each one's responses to the same
held-out prompts: D_1, D_2, D_3. For every pair k < l, *forward* alignment trains theta_k
on D_l and *inverse* alignment trains theta_l on D_k, with the same optimiser, learning
rate, batch and number of steps; the final training loss is the mean of the last 10% of
the steps. Controls: target difficulty (theta_0 itself trained on D_k and on D_l), and
the whole grid again from the barely pre-trained model (if resistance comes from
pre-training, the asymmetry must shrink there).

The synthetic datasets stand for the paper's: answer style for Alpaca (helpful), truth for
TruthfulQA (honest), safety for BeaverTails (harmless).

    tokentree run resistance                     # synthetic, tiny Llama, 5 seeds
    tokentree run resistance --data tweets       # one dataset: positive tweets
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from tokentree.data.sources import check_source
from tokentree.experiments._training import SeededTraining
from tokentree.framework.aggregate import mean_sd_text
from tokentree.framework.report import ExperimentReport, verdict_lines, verdict_table
from tokentree.framework.verdicts import Verdict, VerdictStatus
from tokentree.infra.checks import check_choice, check_float, check_int, check_list
from tokentree.infra.errors import InputError
from tokentree.infra.progress import progress
from tokentree.infra.results import Record
from tokentree.verification import claims, paper

__all__ = ["NAME", "Config", "TransferRecord", "Result", "run"]

NAME = "resistance"
SECTION = "docs/experiments.md §E4s"
PAIRS = ((1, 2), (1, 3), (2, 3))
#: What each synthetic axis stands for in the paper's Table 1.
STANDS_FOR = {"style": "Alpaca", "truth": "TruthfulQA", "safety": "BeaverTails", "sentiment": "tweets"}


@dataclass(frozen=True)
class Config(SeededTraining):
    """Options of ``tokentree run resistance``; every field can be set in a TOML file.

    data, axes, positive
        "synthetic" (one alignment dataset per behaviour axis in ``axes``), "tweets" (positive
        tweets), or "files" (the JSONL ``positive`` as the alignment set).
    model, device, threads
        "tiny" (trained here), "smollm2", a model folder or a hub name; where it runs; CPU threads.
    n_pretrain_docs, pretrain_tokens, barely_share, vocab_size, n_layers, d_model, n_heads, context
        theta_0 (tiny model), and the share of its pre-training at which the barely pre-trained base is kept.
    n_align, lr_align
        The alignment set (one epoch; theta_1..3 at thirds of it) and its learning rate.
    n_samples, max_new_tokens, temperature
        Prompts sampled from each theta_k to make D_k, and the sampling.
    lr_transfer, transfer_epochs, batch_size, tail_share
        Forward and inverse training (identical settings), and the share of final steps averaged.
    """

    data: str = "synthetic"
    axes: tuple[str, ...] = ("style", "truth", "safety")
    positive: str = ""
    model: str = "tiny"
    device: str = "auto"
    threads: int = 1
    seed: int = 0
    n_seeds: int = 5
    n_pretrain_docs: int = 4000
    pretrain_tokens: int = 150_000
    barely_share: float = 0.05
    vocab_size: int = 1000
    n_layers: int = 2
    d_model: int = 64
    n_heads: int = 4
    context: int = 128
    n_align: int = 600
    lr_align: float = 1e-3
    n_samples: int = 128
    max_new_tokens: int = 40
    temperature: float = 1.0
    lr_transfer: float = 1e-3
    transfer_epochs: int = 1
    batch_size: int = 16
    tail_share: float = 0.1

    def __post_init__(self) -> None:
        check_source(self.data, self.positive, negative=None)
        check_list(self.axes, "axes", lambda v, n: check_choice(v, n, tuple(STANDS_FOR)))
        self.check_training_settings()
        for name in ("n_pretrain_docs", "pretrain_tokens", "n_align", "n_samples",
                     "max_new_tokens", "transfer_epochs", "batch_size"):
            check_int(getattr(self, name), name, minimum=1)
        check_float(self.barely_share, "barely_share", minimum=0.0, maximum=0.5, exclusive=True)
        check_float(self.lr_align, "lr_align", minimum=0.0, exclusive=True)
        check_float(self.lr_transfer, "lr_transfer", minimum=0.0, exclusive=True)
        check_float(self.temperature, "temperature", minimum=0.0, exclusive=True)
        check_float(self.tail_share, "tail_share", minimum=0.0, maximum=1.0, exclusive=True)
        if self.n_align < 3:
            raise InputError(f"n_align must be at least 3 (three checkpoints in one epoch); got {self.n_align}")

    @property
    def datasets(self) -> tuple[str, ...]:
        return self.axes if self.data == "synthetic" else ("sentiment",)

    @classmethod
    def quick(cls) -> Config:
        """Two seeds, one dataset, a small model: under a minute."""
        return cls(n_seeds=2, axes=("safety",), n_pretrain_docs=1000, pretrain_tokens=30_000, d_model=32,
                   n_heads=2, vocab_size=600, n_align=96, n_samples=32, max_new_tokens=24)


@dataclass(frozen=True)
class TransferRecord(Record):
    """One cell (dataset, pair k-l) of one seed from one base: forward and inverse losses, and the controls.

    Losses are nats per target token, the mean of the last ``tail_share`` of the steps;
    ``*_delta_kl_nats`` is the change of the KL to theta_0 the training caused; the
    ``difficulty_*`` columns are theta_0's own final loss on the forward target D_l and
    the inverse target D_k.
    """

    NONFINITE_REASONS: ClassVar[dict[str, str]] = {}

    seed: int
    dataset: str
    base: str
    pair: str
    forward_loss: float
    inverse_loss: float
    gap: float
    forward_delta_kl_nats: float
    inverse_delta_kl_nats: float
    difficulty_forward_target: float
    difficulty_inverse_target: float


@dataclass(frozen=True, eq=False, repr=False)
class Result(ExperimentReport):
    EXPERIMENT = NAME

    config: Config
    records: Sequence[TransferRecord]
    verdicts: Sequence[Verdict]
    seconds: float = field(default=0.0)

    def verdict_list(self) -> Sequence[Verdict]:
        return self.verdicts

    def cells(self, base: str = "full") -> list[tuple[str, str, list[TransferRecord]]]:
        keys = sorted({(r.dataset, r.pair) for r in self.records if r.base == base})
        return [(d, p, [r for r in self.records if (r.dataset, r.pair, r.base) == (d, p, base)]) for d, p in keys]

    def terminal_summary(self) -> str:
        head = f"resistance ({self.config.data}, {self.config.n_seeds} seeds): verdicts ({SECTION})"
        return "\n".join([head, *verdict_lines(self.verdicts)])

    def summary_markdown(self) -> str:
        c = self.config

        def ms(values: Sequence[float]) -> str:
            return mean_sd_text(values, ".3f")

        out = [
            f"# resistance: forward vs inverse alignment ({c.data}, model {c.model})",
            "",
            f"Seeds {c.seeds}; alignment sets of {c.n_align} examples, D_k sampled from theta_k on {c.n_samples} "
            f"held-out prompts; forward and inverse training: {c.transfer_epochs} epoch(s) at lr {c.lr_transfer:g}, "
            f"batch {c.batch_size}; final loss = mean of the last {c.tail_share:.0%} of the steps (nats per token). "
            f"Run time {self.seconds:.0f} s. Columns: {SECTION}.",
            "",
            "## Verdicts",
            "",
            *verdict_table(self.verdicts),
        ]
        for base in ("full", "barely"):
            out += ["", f"## Cells, {base} pre-trained base (mean ± sd over seeds)", "",
                    "| dataset (stands for) | pair | inverse loss | forward loss | gap | verdict | "
                    "difficulty: D_l vs D_k for theta_0 |", "|---|---|---|---|---|---|---|"]
            for dataset, pair, rows in self.cells(base):
                gaps = [r.gap for r in rows]
                out.append(
                    f"| {dataset} ({STANDS_FOR[dataset]}) | {pair} | {ms([r.inverse_loss for r in rows])} | "
                    f"{ms([r.forward_loss for r in rows])} | {ms(gaps)} | {claims.direction(gaps)} | "
                    f"{ms([r.difficulty_forward_target - r.difficulty_inverse_target for r in rows])} |"
                )
        out += ["", "## The paper's Alpaca rows (Llama2-7B) beside this run's answer-style (Alpaca) rows", "",
                "| pair | paper inverse | paper forward | this run inverse | this run forward |",
                "|---|---|---|---|---|"]
        ours = {p: rows for d, p, rows in self.cells("full") if d == "style"}
        for pair, inverse, forward in paper.TABLE_1_ALPACA_LLAMA2_7B:
            rows = ours.get(pair, [])
            mine = (ms([r.inverse_loss for r in rows]), ms([r.forward_loss for r in rows])) if rows else ("", "")
            out.append(f"| {pair} | {inverse} | {forward} | {mine[0]} | {mine[1]} |")
        out += ["", "![forward vs inverse](forward_vs_inverse.png)"]
        return "\n".join(out) + "\n"

    def plot(self, folder: Path) -> None:
        from tokentree.plots import COLOURS, new_figure

        fig, axes = new_figure(1, 2, size=(12, 4.4))
        for ax, base in zip(axes, ("full", "barely"), strict=True):
            cells = self.cells(base)
            xs = np.arange(len(cells))
            for j, (key, label) in enumerate((("inverse_loss", "inverse (theta_l on D_k)"),
                                              ("forward_loss", "forward (theta_k on D_l)"))):
                means = [np.mean([getattr(r, key) for r in rows]) for _, _, rows in cells]
                sds = [np.std([getattr(r, key) for r in rows], ddof=1) if len(rows) > 1 else 0 for _, _, rows in cells]
                ax.errorbar(xs + (j - 0.5) * 0.2, means, yerr=sds, fmt="o", capsize=3, color=COLOURS[j], label=label)
            ax.set_xticks(xs, [f"{d}\n{p}" for d, p, _ in cells], fontsize=7)
            ax.set_ylabel("final training loss (nats per token)")
            ax.set_title(f"{base} pre-trained base")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7)
        fig.suptitle("Forward vs inverse alignment (error bars: seed sd)")
        fig.savefig(folder / "forward_vs_inverse.png")


# ----------------------------------------------------------------------------- running
def _data(config: Config, dataset: str, seed: int) -> Any:
    from tokentree.data.sources import behaviour_data

    # one misaligned example is drawn (none is trained on); with files, the alignment set stands in for it
    return behaviour_data(
        config.data, axis=dataset, positive=config.positive, negative=config.positive,
        n_pretrain=config.n_pretrain_docs, n_aligned=config.n_align, n_misaligned=1, n_eval=config.n_samples,
        seed=seed,
    )


def _train(model: Any, data: Any, config: Config, seed: int) -> tuple[Any, float]:
    """Train a copy of ``model`` on ``data`` with the transfer settings; (the model, mean loss of the last steps)."""
    from tokentree.lab.train import LMTrainer, TrainSettings

    trainer = LMTrainer(copy.deepcopy(model), TrainSettings(lr=config.lr_transfer, batch_size=config.batch_size,
                                                            seed=seed, threads=config.threads, device=config.device))
    for _ in range(config.transfer_epochs):
        trainer.epoch(data)
    tail = max(1, math.ceil(config.tail_share * len(trainer.losses)))
    return trainer.model, float(np.mean(trainer.losses[-tail:]))


def _checkpoints(base: Any, aligned: Any, config: Config, seed: int) -> list[Any]:
    """theta_1, theta_2, theta_3: the model at 1/3, 2/3 and 3/3 of one epoch on ``aligned``."""
    from tokentree.lab.train import LMTrainer, TrainSettings, training_windows

    trainer = LMTrainer(copy.deepcopy(base), TrainSettings(lr=config.lr_align, batch_size=config.batch_size,
                                                           seed=seed, threads=config.threads, device=config.device))
    steps = -(-len(training_windows(aligned, trainer.context)[0]) // config.batch_size)
    marks = [max(1, round(steps * k / 3)) for k in (1, 2, 3)]
    out = []
    for mark in marks:
        trainer.epoch(aligned, stop_after=mark - trainer.steps_done)
        out.append(copy.deepcopy(trainer.model).eval())
    return out


def _grid(base: Any, tokenizer: Any, data: Any, config: Config, seed: int, label: str, dataset: str) -> list[
        TransferRecord]:
    from tokentree.data.chat import tokenize_chats
    from tokentree.lab.measure import kl_to_reference, sample_responses

    thetas = _checkpoints(base, tokenize_chats(data.aligned, tokenizer), config, seed)
    prompts = list(data.eval_prompts)
    sampled = [sample_responses(t, tokenizer, prompts, max_new_tokens=config.max_new_tokens,
                                temperature=config.temperature, seed=seed + 100 + k).texts
               for k, t in enumerate(thetas)]
    keep = [i for i in range(len(prompts)) if all(s[i].strip() for s in sampled)]
    if len(keep) < 2:
        raise InputError(f"{dataset}: the aligned models sampled empty answers to almost every prompt; "
                         "train longer (pretrain_tokens, n_align) or raise max_new_tokens")
    d = {k + 1: tokenize_chats([(*prompts[i], {"role": "assistant", "content": sampled[k][i]}) for i in keep],
                               tokenizer) for k in range(3)}
    reference = tokenize_chats(data.eval_aligned, tokenizer)

    def kl(model: Any) -> float:
        return kl_to_reference(model, base, reference).mean_kl_nats

    kls = {k: kl(thetas[k - 1]) for k in (1, 2, 3)}
    difficulty = {k: _train(base, d[k], config, seed + 300)[1] for k in (1, 2, 3)}
    out = []
    for k, l in PAIRS:
        forward_model, forward = _train(thetas[k - 1], d[l], config, seed + 200)
        inverse_model, inverse = _train(thetas[l - 1], d[k], config, seed + 200)
        out.append(TransferRecord(
            seed=seed, dataset=dataset, base=label, pair=f"{k}-{l}", forward_loss=forward, inverse_loss=inverse,
            gap=forward - inverse, forward_delta_kl_nats=kl(forward_model) - kls[k],
            inverse_delta_kl_nats=kl(inverse_model) - kls[l], difficulty_forward_target=difficulty[l],
            difficulty_inverse_target=difficulty[k],
        ))
    return out


def _judge(records: Sequence[TransferRecord], n_cells_paper: int) -> list[Verdict]:
    full = [r for r in records if r.base == "full"]
    keys = sorted({(r.dataset, r.pair) for r in full})
    statuses = [claims.direction([r.gap for r in full if (r.dataset, r.pair) == key]) for key in keys]
    wins = sum(np.mean([r.gap for r in full if (r.dataset, r.pair) == key]) > 0 for key in keys)
    resolved = statuses.count(VerdictStatus.HOLDS)
    status = claims.all_of(statuses)
    seed_wins, total = sum(r.gap > 0 for r in full), len(full)
    p = claims.sign_test(seed_wins, total)
    verdicts = [Verdict(
        "T1", "inverse alignment reaches a lower loss than forward alignment in every cell", status,
        f"{wins}/{len(keys)} cells with inverse < forward on average ({resolved} beyond the seed noise, "
        f"{statuses.count(VerdictStatus.FAILS)} the other way); the paper: {paper.TABLE_1_INVERSE_WINS}/"
        f"{n_cells_paper}", SECTION,
    )]
    sign = (VerdictStatus.WITHIN_NOISE if not p < 0.05 else
            VerdictStatus.HOLDS if seed_wins > total / 2 else VerdictStatus.FAILS)
    verdicts.append(Verdict("T2", "sign test over cells x seeds: inverse < forward more often than chance", sign,
                            f"{seed_wins} of {total} runs, two-sided p = {p:.3g}", SECTION))
    residual = [r.gap - (r.difficulty_forward_target - r.difficulty_inverse_target) for r in full]
    verdicts.append(Verdict(
        "T3", "the asymmetry is not just target difficulty (gap minus theta_0's own difficulty gap stays > 0)",
        claims.direction(residual),
        f"mean gap {np.mean([r.gap for r in full]):.4f}, theta_0's difficulty gap "
        f"{np.mean([r.difficulty_forward_target - r.difficulty_inverse_target for r in full]):.4f}, residual "
        f"{np.mean(residual):.4f} nats", SECTION,
    ))
    barely = {(r.seed, r.dataset, r.pair): r.gap for r in records if r.base == "barely"}
    shrink = [r.gap - barely[(r.seed, r.dataset, r.pair)] for r in full if (r.seed, r.dataset, r.pair) in barely]
    verdicts.append(Verdict(
        "T4", "the asymmetry shrinks on a barely pre-trained base (resistance comes from pre-training)",
        claims.direction(shrink),
        f"mean gap {np.mean([r.gap for r in full]):.4f} (full) vs {np.mean(list(barely.values())):.4f} "
        f"(barely pre-trained) nats", SECTION,
    ))
    return verdicts


def run(config: Config, *, show_progress: bool | None = None) -> Result:
    from tokentree.lab.base import BaseSettings, prepare_base

    start = time.perf_counter()
    records: list[TransferRecord] = []
    for seed in progress(config.seeds, desc="resistance seeds", show=show_progress):
        datasets = {name: _data(config, name, seed) for name in config.datasets}
        first = datasets[config.datasets[0]]
        base = prepare_base(first, BaseSettings(
            model=config.model, vocab_size=config.vocab_size, n_layers=config.n_layers, d_model=config.d_model,
            n_heads=config.n_heads, context=config.context, pretrain_tokens=config.pretrain_tokens,
            batch_size=config.batch_size, device=config.device, threads=config.threads,
        ), seed=seed, snapshot_fractions=(config.barely_share,))
        bases = {"full": base.model, "barely": base.snapshots.get(config.barely_share, base.model)}
        for name, data in datasets.items():
            for label, model in bases.items():
                records += _grid(model, base.tokenizer, data, config, seed, label, name)
    verdicts = _judge(records, paper.TABLE_1_CELLS)
    return Result(config, records, verdicts, seconds=time.perf_counter() - start)
