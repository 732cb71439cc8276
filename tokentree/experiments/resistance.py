"""resistance: is inverse alignment easier than forward alignment? The paper's Table 1 (docs/experiments.md §E4s).

Per seed: pre-train theta_0 (and keep the barely pre-trained model at ``barely_share`` of
the run). For every alignment dataset, fine-tune theta_0 for one epoch, keeping theta_1,
theta_2, theta_3 at 1/3, 2/3 and 3/3 of it, and sample each one's responses to the same
held-out prompts: D_1, D_2, D_3 (:mod:`tokentree.lab.transfer`). For every pair k < l,
*forward* alignment trains theta_k on D_l and *inverse* alignment trains theta_l on D_k,
with the same optimiser, learning rate, batch and number of steps; the final training
loss is the mean of the last 10% of the steps. Controls: target difficulty (theta_0
itself trained on D_k and on D_l), and the whole grid again from the barely pre-trained
model (if resistance comes from pre-training, the asymmetry must shrink there).

The synthetic datasets stand for the paper's: answer style for Alpaca (helpful), truth for
TruthfulQA (honest), safety for BeaverTails (harmless).

    tokentree run resistance                     # synthetic, tiny Llama, 5 seeds
    tokentree run resistance --data tweets       # one dataset: positive tweets
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from tokentree.data.sources import SOURCES, check_source
from tokentree.framework.aggregate import mean_sd_text
from tokentree.framework.config import Checked, bounded, group
from tokentree.framework.report import ExperimentReport, Section
from tokentree.framework.runner import run_cases, seed_list
from tokentree.framework.tables import Column, Table
from tokentree.framework.verdicts import Verdict, VerdictStatus
from tokentree.infra.errors import InputError
from tokentree.infra.results import Record
from tokentree.lab.base import BaseSettings
from tokentree.lab.transfer import PAIRS, TransferSettings
from tokentree.verification import claims, paper

__all__ = ["NAME", "Config", "TransferRecord", "Result", "run"]

NAME = "resistance"
SECTION = "docs/experiments.md §E4s"
#: What each synthetic axis stands for in the paper's Table 1.
STANDS_FOR = {"style": "Alpaca", "truth": "TruthfulQA", "safety": "BeaverTails", "sentiment": "tweets"}


@dataclass(frozen=True)
class Config(Checked):
    """Options of ``tokentree run resistance``; every field can be set in a TOML file (``[base]`` for theta_0).

    data, axes, positive
        "synthetic" (one alignment dataset per behaviour axis in ``axes``), "tweets" (positive
        tweets), or "files" (the JSONL ``positive`` as the alignment set).
    base, n_pretrain_docs, barely_share
        theta_0 (:class:`~tokentree.lab.base.BaseSettings`: model, shape, pre-training tokens, device,
        threads), its pre-training documents, and the share of its pre-training at which the barely
        pre-trained base is kept.
    n_align, lr_align
        The alignment set (one epoch; theta_1..3 at thirds of it) and its learning rate.
    n_samples, max_new_tokens, temperature
        Prompts sampled from each theta_k to make D_k, and the sampling.
    lr_transfer, transfer_epochs, batch_size, tail_share
        Forward and inverse training (identical settings), and the share of final steps averaged.
    """

    data: str = bounded("synthetic", choices=SOURCES)
    axes: tuple[str, ...] = bounded(("style", "truth", "safety"), choices=tuple(STANDS_FOR))
    positive: str = ""
    seed: int = bounded(0, minimum=0)
    n_seeds: int = bounded(5, minimum=1)
    base: BaseSettings = group(lambda: BaseSettings(pretrain_tokens=150_000, device="auto"))  # noqa: RUF009
    n_pretrain_docs: int = bounded(4000, minimum=1)
    barely_share: float = bounded(0.05, minimum=0.0, maximum=0.5, exclusive=True)
    n_align: int = bounded(600, minimum=1)
    lr_align: float = bounded(1e-3, minimum=0.0, exclusive=True)
    n_samples: int = bounded(128, minimum=1)
    max_new_tokens: int = bounded(40, minimum=1)
    temperature: float = bounded(1.0, minimum=0.0, exclusive=True)
    lr_transfer: float = bounded(1e-3, minimum=0.0, exclusive=True)
    transfer_epochs: int = bounded(1, minimum=1)
    batch_size: int = bounded(16, minimum=1)
    tail_share: float = bounded(0.1, minimum=0.0, maximum=1.0, exclusive=True)

    def validate(self) -> None:
        check_source(self.data, self.positive, negative=None)
        if self.n_align < 3:
            raise InputError(f"n_align must be at least 3 (three checkpoints in one epoch); got {self.n_align}")

    @property
    def seeds(self) -> list[int]:
        return seed_list(self.seed, self.n_seeds)

    @property
    def datasets(self) -> tuple[str, ...]:
        return self.axes if self.data == "synthetic" else ("sentiment",)

    def fine_tune(self, lr: float) -> TransferSettings:
        return TransferSettings(lr=lr, batch_size=self.batch_size, epochs=self.transfer_epochs,
                                tail_share=self.tail_share, threads=self.base.threads, device=self.base.device)

    @classmethod
    def quick(cls) -> Config:
        """Two seeds, one dataset, a small model: under a minute."""
        return cls(n_seeds=2, axes=("safety",), n_pretrain_docs=1000, n_align=96, n_samples=32, max_new_tokens=24,
                   base=BaseSettings(pretrain_tokens=30_000, d_model=32, n_heads=2, vocab_size=600, device="auto"))


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


# ----------------------------------------------------------------------------- wiring
def one_seed(config: Config, seed: int) -> dict[str, list[Any]]:
    """Both bases of one seed, every dataset's checkpoints, slices and transfer grid."""
    from tokentree.data.chat import tokenize_chats
    from tokentree.data.sources import behaviour_data
    from tokentree.lab.base import prepare_base
    from tokentree.lab.measure import kl_to_reference
    from tokentree.lab.transfer import alignment_checkpoints, sample_slices, train_on

    # one misaligned example is drawn (none is trained on); with files, the alignment set stands in for it
    datasets = {name: behaviour_data(config.data, axis=name, positive=config.positive, negative=config.positive,
                                     n_pretrain=config.n_pretrain_docs, n_aligned=config.n_align, n_misaligned=1,
                                     n_eval=config.n_samples, seed=seed) for name in config.datasets}
    base = prepare_base(datasets[config.datasets[0]], config.base, seed=seed,
                        snapshot_fractions=(config.barely_share,))
    bases = {"full": base.model, "barely": base.snapshots.get(config.barely_share, base.model)}
    align, transfer = config.fine_tune(config.lr_align), config.fine_tune(config.lr_transfer)
    out: list[TransferRecord] = []
    for name, data in datasets.items():
        for label, model in bases.items():
            thetas = alignment_checkpoints(model, tokenize_chats(data.aligned, base.tokenizer), align, seed)
            slices = sample_slices(thetas, base.tokenizer, data.eval_prompts, max_new_tokens=config.max_new_tokens,
                                   temperature=config.temperature, seed=seed + 100, what=name)
            d = dict(zip((1, 2, 3), slices.data, strict=True))
            reference = tokenize_chats(data.eval_aligned, base.tokenizer)

            def kl(m: Any, base_model: Any = model, ref: Any = reference) -> float:
                return kl_to_reference(m, base_model, ref).mean_kl_nats

            kls = {k: kl(thetas[k - 1]) for k in (1, 2, 3)}
            difficulty = {k: train_on(model, d[k], transfer, seed + 300)[1] for k in (1, 2, 3)}
            for k, l in PAIRS:
                forward_model, forward = train_on(thetas[k - 1], d[l], transfer, seed + 200)
                inverse_model, inverse = train_on(thetas[l - 1], d[k], transfer, seed + 200)
                out.append(TransferRecord(
                    seed=seed, dataset=name, base=label, pair=f"{k}-{l}", forward_loss=forward, inverse_loss=inverse,
                    gap=forward - inverse, forward_delta_kl_nats=kl(forward_model) - kls[k],
                    inverse_delta_kl_nats=kl(inverse_model) - kls[l], difficulty_forward_target=difficulty[l],
                    difficulty_inverse_target=difficulty[k]))
    return {"records": out}


# ----------------------------------------------------------------------------- claims
def _cells(records: Sequence[TransferRecord], base: str = "full") -> list[tuple[str, str, list[TransferRecord]]]:
    keys = sorted({(r.dataset, r.pair) for r in records if r.base == base})
    return [(d, p, [r for r in records if (r.dataset, r.pair, r.base) == (d, p, base)]) for d, p in keys]


def judge(records: Sequence[TransferRecord]) -> list[Verdict]:
    """T1-T4 (docs/experiments.md §E4s)."""
    full = [r for r in records if r.base == "full"]
    cells = _cells(records)
    statuses = [claims.direction([r.gap for r in rows]) for _, _, rows in cells]
    wins = sum(np.mean([r.gap for r in rows]) > 0 for _, _, rows in cells)
    resolved, against = statuses.count(VerdictStatus.HOLDS), statuses.count(VerdictStatus.FAILS)
    seed_wins, total = sum(r.gap > 0 for r in full), len(full)
    p = claims.sign_test(seed_wins, total)
    mean_gap = float(np.mean([r.gap for r in full]))
    difficulty = [r.difficulty_forward_target - r.difficulty_inverse_target for r in full]
    residual = [r.gap - d for r, d in zip(full, difficulty, strict=True)]
    barely = {(r.seed, r.dataset, r.pair): r.gap for r in records if r.base == "barely"}
    shrink = [r.gap - barely[(r.seed, r.dataset, r.pair)] for r in full if (r.seed, r.dataset, r.pair) in barely]
    sign = (VerdictStatus.WITHIN_NOISE if not p < 0.05 else
            VerdictStatus.HOLDS if seed_wins > total / 2 else VerdictStatus.FAILS)
    return [
        Verdict("T1", "inverse alignment reaches a lower loss than forward alignment in every cell",
                claims.all_of(statuses),
                f"{wins}/{len(cells)} cells with inverse < forward on average ({resolved} beyond the seed noise, "
                f"{against} the other way); the paper: {paper.TABLE_1_INVERSE_WINS}/{paper.TABLE_1_CELLS}", SECTION,
                {"cells": len(cells), "cells_inverse_lower": int(wins), "cells_resolved": resolved,
                 "cells_other_way": against, "paper_cells": paper.TABLE_1_CELLS}),
        Verdict("T2", "sign test over cells x seeds: inverse < forward more often than chance", sign,
                f"{seed_wins} of {total} runs, two-sided p = {p:.3g}", SECTION,
                {"wins": seed_wins, "runs": total, "p_value": p}),
        Verdict("T3", "the asymmetry is not just target difficulty (gap minus theta_0's own difficulty gap stays > 0)",
                claims.direction(residual),
                f"mean gap {mean_gap:.4f}, theta_0's difficulty gap {np.mean(difficulty):.4f}, residual "
                f"{np.mean(residual):.4f} nats", SECTION,
                {"mean_gap_nats": mean_gap, "difficulty_gap_nats": float(np.mean(difficulty)),
                 "residual_nats": float(np.mean(residual))}),
        Verdict("T4", "the asymmetry shrinks on a barely pre-trained base (resistance comes from pre-training)",
                claims.direction(shrink),
                f"mean gap {mean_gap:.4f} (full) vs {np.mean(list(barely.values())):.4f} (barely pre-trained) nats",
                SECTION, {"mean_gap_nats": mean_gap, "mean_gap_barely_nats": float(np.mean(list(barely.values())))}),
    ]


# ----------------------------------------------------------------------------- report
def _ms(key: str) -> Any:
    return lambda row: mean_sd_text([getattr(r, key) for r in row["rows"]], ".3f")


CELL_TABLE = Table("cells", "Cells (mean ± sd over seeds)", [
    Column("dataset", "dataset (stands for)", value=lambda row: f"{row['dataset']} ({STANDS_FOR[row['dataset']]})"),
    Column("pair"), Column("inverse", "inverse loss", value=_ms("inverse_loss")),
    Column("forward", "forward loss", value=_ms("forward_loss")), Column("gap", value=_ms("gap")),
    Column("verdict", value=lambda row: str(claims.direction([r.gap for r in row["rows"]]))),
    Column("difficulty", "difficulty: D_l vs D_k for theta_0", value=lambda row: mean_sd_text(
        [r.difficulty_forward_target - r.difficulty_inverse_target for r in row["rows"]], ".3f")),
])
PAPER_TABLE = Table("paper", "The paper's Alpaca rows (Llama2-7B) beside this run's answer-style (Alpaca) rows", [
    Column("pair"), Column("paper_inverse", "paper inverse"), Column("paper_forward", "paper forward"),
    Column("inverse", "this run inverse"), Column("forward", "this run forward"),
])


@dataclass(frozen=True, eq=False, repr=False)
class Result(ExperimentReport):
    EXPERIMENT = NAME
    PLOTS = ("forward_vs_inverse",)
    CLAIMS_SECTION = SECTION

    config: Config
    records: Sequence[TransferRecord]
    verdicts: Sequence[Verdict]
    seconds: float = field(default=0.0)

    def cells(self, base: str = "full") -> list[tuple[str, str, list[TransferRecord]]]:
        return _cells(self.records, base)

    def title(self) -> str:
        return f"resistance: forward vs inverse alignment ({self.config.data}, model {self.config.base.model})"

    def intro(self) -> str:
        c = self.config
        return (f"Seeds {c.seeds}; alignment sets of {c.n_align} examples, D_k sampled from theta_k on {c.n_samples} "
                f"held-out prompts; forward and inverse training: {c.transfer_epochs} epoch(s) at lr "
                f"{c.lr_transfer:g}, batch {c.batch_size}; final loss = mean of the last {c.tail_share:.0%} of the "
                f"steps (nats per token). Run time {self.seconds:.0f} s. Columns: {SECTION}.")

    def sections(self) -> Sequence[Section]:
        out: list[Section] = []
        for base in ("full", "barely"):
            table = Table(CELL_TABLE.name, f"Cells, {base} pre-trained base (mean ± sd over seeds)",
                          CELL_TABLE.columns)
            out.append((table, [{"dataset": d, "pair": p, "rows": rows} for d, p, rows in self.cells(base)]))
        ours = {p: rows for d, p, rows in self.cells("full") if d == "style"}
        rows = [{"pair": pair, "paper_inverse": inverse, "paper_forward": forward,
                 "inverse": mean_sd_text([r.inverse_loss for r in ours.get(pair, [])], ".3f", missing=""),
                 "forward": mean_sd_text([r.forward_loss for r in ours.get(pair, [])], ".3f", missing="")}
                for pair, inverse, forward in paper.TABLE_1_ALPACA_LLAMA2_7B]
        return [*out, (PAPER_TABLE, rows)]

    def plot(self, folder: Path) -> None:
        from tokentree.plots.resistance import plot_forward_vs_inverse

        plot_forward_vs_inverse({base: self.cells(base) for base in ("full", "barely")},
                                path=folder / "forward_vs_inverse.png")


def run(config: Config, *, show_progress: bool | None = None) -> Result:
    runs = run_cases(config.seeds, lambda seed: one_seed(config, seed), desc="resistance seeds", show=show_progress)
    records = runs.tables["records"]
    return Result(config, records, judge(records), seconds=runs.seconds)
