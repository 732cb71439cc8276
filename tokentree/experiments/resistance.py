"""resistance: is inverse alignment easier than forward alignment? The paper's Table 1 (docs/experiments.md §E4s).

Per seed: theta_0 (and a barely pre-trained copy); per dataset, a gentle alignment run keeps theta_1..3 whose
sampled answers are the slices D_1..3 (aligned shares measured, prompts split into training and held-out parts);
every theta_s is trained on every D_t (:mod:`tokentree.lab.transfer`). For a pair k < l, the 2x2 contrast on
held-out loss [L(k->l) - L(l->l)] - [L(l->k) - L(k->k)] removes target difficulty and the start's own fit; beside
it the paper's raw comparison (final training loss) and a KL measure (Table 2). Decided over seeds, Holm over cells.

    tokentree run resistance                         # synthetic, tiny Llama, 8 seeds
    tokentree run resistance --config experiments/resistance-k-sweep.toml
    tokentree run resistance --model smollm2         # tweets, LoRA, no continued pre-training (resistance-smollm2.toml)
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tokentree.data.sources import DATA_CHOICES, check_source, source_for
from tokentree.framework.config import Checked, bounded, group
from tokentree.framework.report import ExperimentReport, Section
from tokentree.framework.runner import run_cases
from tokentree.framework.tables import Column, Table
from tokentree.framework.verdicts import Verdict
from tokentree.infra.errors import InputError
from tokentree.lab.base import BaseSettings
from tokentree.lab.regime import TrainingRegime
from tokentree.lab.seeded import SeededTraining
from tokentree.lab.transfer import SliceRecord, TransferRecord, TransferSettings
from tokentree.verification import paper, trained

__all__ = ["NAME", "Config", "TransferRecord", "SliceRecord", "Result", "run"]

NAME = "resistance"
SECTION = "docs/experiments.md §E4s"
#: What each synthetic axis stands for in the paper's Table 1.
STANDS_FOR = {"style": "Alpaca", "truth": "TruthfulQA", "safety": "BeaverTails", "sentiment": "tweets"}


@dataclass(frozen=True)
class Config(SeededTraining, Checked):
    """Options of ``tokentree run resistance`` (``[base]``: theta_0, :class:`~tokentree.lab.base.BaseSettings`).

    data/axes/positive: the alignment datasets ("auto": synthetic for tiny, tweets for a loaded model, §E4smol);
    barely/barely_share: the control base (the tiny model's only); n_align/lr_align/align_epochs:
    the alignment run (theta_1..3 at its thirds); align_values: a sweep of the alignment set size, hence of k
    (T-claims judged at n_align); n_samples/heldout_share/max_new_tokens/temperature: the slices;
    lr_transfer/warmup_steps/transfer_epochs/batch_size: every fine-tune; tail_share: the raw "final loss".
    """

    data: str = bounded("auto", choices=DATA_CHOICES)
    axes: tuple[str, ...] = bounded(("style", "truth", "safety"), choices=tuple(STANDS_FOR))
    positive: str = ""
    seed: int = bounded(0, minimum=0)
    n_seeds: int = bounded(8, minimum=1)
    base: BaseSettings = group(lambda: BaseSettings(pretrain_tokens=1_500_000, device="auto"))
    n_pretrain_docs: int = bounded(12000, minimum=1)
    barely: bool = True
    barely_share: float = bounded(0.05, minimum=0.0, maximum=0.5, exclusive=True)
    n_align: int = bounded(400, minimum=3)
    align_values: tuple[int, ...] = ()
    lr_align: float = bounded(1e-4, minimum=0.0, exclusive=True)
    align_epochs: int = bounded(3, minimum=1)
    n_samples: int = bounded(128, minimum=4)
    heldout_share: float = bounded(0.25, minimum=0.0, maximum=0.75, exclusive=True)
    max_new_tokens: int = bounded(40, minimum=1)
    temperature: float = bounded(1.0, minimum=0.0, exclusive=True)
    lr_transfer: float = bounded(1e-4, minimum=0.0, exclusive=True)
    warmup_steps: int = bounded(10, minimum=0)
    transfer_epochs: int = bounded(2, minimum=1)
    batch_size: int = bounded(16, minimum=1)
    tail_share: float = bounded(0.1, minimum=0.0, maximum=1.0, exclusive=True)

    def validate(self) -> None:
        check_source(self.source, self.positive, negative=None)
        if self.align_values and (self.n_align not in self.align_values or len(set(self.align_values)) < 4
                                  or min(self.align_values) < 3):
            raise InputError(f"align_values sweeps k: give at least 4 sizes >= 3, including n_align ({self.n_align}) "
                             f"where the T-claims are judged; got {list(self.align_values)}")

    @property
    def source(self) -> str:  # "auto" resolved for base.model
        return source_for(self.data, self.base.model)

    @property
    def datasets(self) -> tuple[str, ...]:
        return self.axes if self.source == "synthetic" else ("sentiment",)

    @property
    def levels(self) -> list[int]:
        """Alignment set sizes run, largest first (smallest k first)."""
        return sorted(self.align_values or (self.n_align,), reverse=True)

    def fine_tune(self, lr: float, epochs: int) -> TransferSettings:
        return TransferSettings(lr=lr, warmup_steps=self.warmup_steps, batch_size=self.batch_size, epochs=epochs,
                                tail_share=self.tail_share, threads=self.base.threads, device=self.base.device)

    @classmethod
    def quick(cls) -> Config:
        """Two seeds, one dataset, a small model: seconds, minutes with ``--model smollm2``; outside the premise."""
        return cls(n_seeds=2, axes=("safety",), n_pretrain_docs=1000, n_align=48, n_samples=16, max_new_tokens=16,
                   align_epochs=1, transfer_epochs=1, lr_align=1e-3, lr_transfer=1e-3, warmup_steps=2,
                   base=BaseSettings(pretrain_tokens=30_000, d_model=32, n_heads=2, vocab_size=600, device="auto"))


# ----------------------------------------------------------------------------- wiring
def one_seed(config: Config, seed: int) -> dict[str, list[Any]]:
    """Both bases of one seed; for every dataset and alignment size: checkpoints, slices and the transfer grid."""
    from tokentree.bridge.hf import pretraining_elsewhere
    from tokentree.data.chat import tokenize_chats
    from tokentree.data.sources import behaviour_data
    from tokentree.lab.base import prepare_base
    from tokentree.lab.regime import training_regime
    from tokentree.lab.transfer import transfer_run

    # one misaligned example is drawn (none is trained on); with files, the alignment set stands in for it
    datasets = {name: behaviour_data(config.source, axis=name, positive=config.positive, negative=config.positive,
                                     n_pretrain=config.n_pretrain_docs, n_aligned=max(config.levels), n_misaligned=1,
                                     n_eval=config.n_samples, seed=seed) for name in config.datasets}
    here = config.base.model == "tiny"  # else a loaded model, used as pre-trained elsewhere
    barely = config.barely and here
    base = prepare_base(datasets[config.datasets[0]], config.base if here else dataclasses.replace(
        config.base, pretrain_tokens=0), seed=seed, snapshot_fractions=(config.barely_share,) if barely else ())
    bases = {"full": base.model, **({"barely": base.snapshots[config.barely_share]} if barely else {})}
    elsewhere = pretraining_elsewhere(config.base.model)  # tokens; 0 for a model pre-trained here (or unknown)
    align, transfer = config.fine_tune(config.lr_align, config.align_epochs), config.fine_tune(
        config.lr_transfer, config.transfer_epochs)
    out: dict[str, list[Any]] = {"records": [], "slices": [], "regime": []}
    for n_align, (name, data), (label, model) in itertools.product(config.levels, datasets.items(), bases.items()):
        aligned = tokenize_chats(data.aligned[:n_align], base.tokenizer)
        done = transfer_run(model, base.tokenizer, data, aligned, align=align, transfer=transfer, seed=seed,
                            max_new_tokens=config.max_new_tokens, temperature=config.temperature,
                            heldout_share=config.heldout_share, labels=(name, label, n_align))
        out["records"] += done.records
        out["slices"].append(done.slices)
        if label == "full" and name == config.datasets[0]:
            out["regime"].append(training_regime(
                pretrain_tokens=elsewhere or base.pretrain_tokens, pretrained_elsewhere=elsewhere > 0,
                behaviour_tokens=aligned.n_target_tokens,
                transfer_tokens=done.transfer_tokens, pretrain_losses=base.convergence_losses,
                fine_tune_lr=max(config.lr_align, config.lr_transfer), warmup_steps=config.warmup_steps,
                alignment_kl_nats=done.alignment_kl_nats, warn=False))
    return out


# ----------------------------------------------------------------------------- claims
CLAIMS = (("T1", "the paper's raw comparison: inverse reaches a lower final training loss than forward, in every "
           "cell", "gap"),
          ("T2", "2x2 on held-out loss: moving forward costs more than moving back, in every cell (target difficulty "
           "and the start's fit removed)", "contrast_nats"),
          ("T3", "KL measure (Table 2 analogue): inverse training takes back more KL to theta_0 than forward training "
           "adds, in every cell", "kl_return_excess_nats"),
          ("T4", "the 2x2 contrast is larger on the full base than on the barely pre-trained one (resistance comes "
           "from pre-training), in every cell", "contrast_nats"))


def judge(records: Sequence[TransferRecord], slices: Sequence[SliceRecord], regimes: Sequence[TrainingRegime], *,
          n_align: int) -> list[Verdict]:
    """T0-T4 at alignment size ``n_align`` (docs/experiments.md §E4s), cells = dataset x pair, seeds the unit."""
    records = [r for r in records if r.n_align == n_align]
    t0, untestable = _slices_differ(slices, n_align, trained.premise_problems(regimes))
    barely = {(r.seed, r.dataset, r.pair): r.contrast_nats for r in records if r.base == "barely"}
    rows = {item: [r for r in records if r.base == "full"] for item in ("T1", "T2", "T3")}
    if barely:
        rows["T4"] = [dataclasses.replace(r, contrast_nats=r.contrast_nats - barely[(r.seed, r.dataset, r.pair)])
                      for r in rows["T1"]]
    return [t0, *(trained.gated_verdict(item, claim, trained.cells_decision(trained.cells_of(
        rows[item], key, lambda r: f"{r.dataset} {r.pair}")), SECTION, untestable=untestable)
        for item, claim, key in CLAIMS if item in rows)]


#: The k sweep's measures: (item, record field, plot file, what it is); K1 is T2's measure, K3 is T3's.
SWEPT = (("K1", "contrast_nats", "contrast_vs_k", "2x2 resistance contrast"),
         ("K3", "kl_return_excess_nats", "kl_vs_k", "KL return excess"))


def _slices_differ(slices: Sequence[SliceRecord], n_align: int, regime: str) -> tuple[Verdict, str]:
    """T0 at alignment size ``n_align``, and why the claims there are untestable ("" when they are testable)."""
    full = [s for s in slices if s.base == "full" and s.n_align == n_align]
    t0, differs = trained.precondition_verdict(
        "T0", "the slices differ: D_3 is more aligned than D_1 (the design's premise)", [s.seed for s in full],
        [s.share_3 for s in full], [s.share_1 for s in full], SECTION, untestable=regime)
    return t0, "; ".join(p for p in (regime, "" if differs else "the slices do not measurably differ (T0)") if p)


def _effects(records: Sequence[TransferRecord], seeds: Sequence[int], sizes: Sequence[int], key: str) -> np.ndarray:
    """The mean of ``key`` over cells (full base), one row per seed, one column per alignment size."""
    return np.array([[np.mean([getattr(r, key) for r in records if (r.base, r.seed, r.n_align) == ("full", s, n)])
                      for n in sizes] for s in seeds])


def judge_sweep(records: Sequence[TransferRecord], slices: Sequence[SliceRecord], regimes: Sequence[TrainingRegime],
                levels: Sequence[int]) -> list[Verdict]:
    """K1 and K3 per alignment size (``levels`` largest first, so k increases; each gated like T0 gates the
    T-claims: a size whose slices do not differ cannot show resistance), and their trends in k."""
    (k, premise), seeds = trained.level_regimes(regimes, len(levels)), sorted({r.seed for r in records})
    untestable = [_slices_differ(slices, n, problems)[1] for n, problems in zip(levels, premise, strict=True)]
    alike = [n for n, why, problems in zip(levels, untestable, premise, strict=True) if why != problems]  # T0 added
    trend = f"the slices do not measurably differ at sizes {alike}" if alike else ""
    return [v for item, key, _, what in SWEPT for v in trained.sweep_verdicts(
        item, f"the mean {what} over cells is positive", k, _effects(records, seeds, levels, key), SECTION,
        untestable=untestable, trend_untestable=trend)]


# ----------------------------------------------------------------------------- report
_ms = trained.mean_sd_cell
CELL_TABLE = Table("cells", "Cells (mean ± sd over seeds, nats per token)", [
    Column("dataset", "dataset (stands for)", value=lambda row: f"{row['dataset']} ({STANDS_FOR[row['dataset']]})"),
    Column("pair"), Column("gap", "raw gap forward - inverse", value=_ms("gap", ".4f")),
    Column("contrast", "2x2 contrast (held-out)", value=_ms("contrast_nats", ".4f")),
    Column("difficulty", "target difficulty D_l - D_k", value=_ms("target_difficulty_nats", ".4f")),
    Column("kl", "KL return excess", value=_ms("kl_return_excess_nats", ".4f")),
])
SLICE_TABLE = Table("slices", "Aligned share of each slice (mean ± sd over seeds)", [
    Column("dataset"), Column("base"), Column("n_align"),
    *(Column(f"share_{k}", f"D_{k}", value=_ms(f"share_{k}", ".2f")) for k in (1, 2, 3)),
])
@dataclass(frozen=True, eq=False, repr=False)
class Result(ExperimentReport):
    EXPERIMENT = NAME
    PLOTS = ("forward_vs_inverse", *(plot for _, _, plot, _ in SWEPT))
    CLAIMS_SECTION = SECTION

    config: Config
    records: Sequence[TransferRecord]
    slices: Sequence[SliceRecord]
    regime: Sequence[TrainingRegime]
    verdicts: Sequence[Verdict]
    seconds: float = field(default=0.0)

    def side_tables(self) -> dict[str, Sequence[Any]]:
        return {"slices": self.slices, "regime": self.regime}

    def cells(self, base: str = "full") -> list[tuple[str, str, list[TransferRecord]]]:
        at = [r for r in self.records if r.base == base and r.n_align == self.config.n_align]
        keys = sorted({(r.dataset, r.pair) for r in at})
        return [(d, p, [r for r in at if (r.dataset, r.pair) == (d, p)]) for d, p in keys]

    def title(self) -> str:
        return f"resistance: forward vs inverse alignment ({self.config.source}, model {self.config.base.model})"

    def intro(self) -> str:
        from tokentree.bridge.hf import loaded_model_words

        c = self.config
        words = self.regime[0].words if self.regime else ""
        return (f"{loaded_model_words(c.base.model, 'no barely pre-trained control')}Seeds {c.seeds}; alignment sets "
                f"of {c.levels} examples ({c.align_epochs} epoch(s) at lr {c.lr_align:g}), D_k sampled from theta_k "
                f"on {c.n_samples} prompts, {c.heldout_share:.0%} held out; every transfer: {c.transfer_epochs} "
                f"epoch(s) at lr {c.lr_transfer:g}, {c.warmup_steps} warmup steps, batch {c.batch_size}. Regime "
                f"(first seed): {words}. Run time {self.seconds:.0f} s. Columns: {SECTION}.")

    def sections(self) -> Sequence[Section]:
        out: list[Section] = [(Table(CELL_TABLE.name, f"Cells, {base} pre-trained base, n_align {self.config.n_align} "
                                     "(mean ± sd over seeds, nats per token)", CELL_TABLE.columns),
                               [{"dataset": d, "pair": p, "rows": rows} for d, p, rows in self.cells(base)])
                              for base in sorted({r.base for r in self.records})]
        keys = sorted({(s.dataset, s.base, s.n_align) for s in self.slices})
        out.append((SLICE_TABLE, [{"dataset": d, "base": b, "n_align": n, "rows": [
            s for s in self.slices if (s.dataset, s.base, s.n_align) == (d, b, n)]} for d, b, n in keys]))
        beside = "style" if "style" in self.config.datasets else self.config.datasets[0]  # Alpaca, else ours
        ours = {p: ([r.inverse_loss for r in rows], [r.forward_loss for r in rows]) for d, p, rows in self.cells()
                if d == beside}
        return [*out, (trained.REGIME_TABLE, self.regime), (paper.TABLE_1_SIDE_BY_SIDE, paper.table_1_rows(ours))]

    def terminal_tables(self) -> Sequence[tuple[Table, Sequence[Any]]]:
        return [(trained.REGIME_TABLE, self.regime)]

    def plot(self, folder: Path) -> None:
        from tokentree.plots.resistance import plot_effect_vs_k, plot_forward_vs_inverse

        plot_forward_vs_inverse({base: self.cells(base) for base in sorted({r.base for r in self.records})},
                                path=folder / "forward_vs_inverse.png")
        c = self.config
        k = np.array([r.k for r in self.regime]).reshape(len(c.seeds), len(c.levels))
        for item, key, plot, what in SWEPT:
            plot_effect_vs_k(k, _effects(self.records, c.seeds, c.levels, key), ylabel=f"{what} (nats per token)",
                             testable=trained.level_testable(self.verdicts, item), path=folder / f"{plot}.png")


def run(config: Config, *, show_progress: bool | None = None) -> Result:
    runs = run_cases(config.seeds, lambda seed: one_seed(config, seed), desc="resistance seeds", show=show_progress)
    t = runs.tables
    verdicts = judge(t["records"], t["slices"], [r for i, r in enumerate(t["regime"]) if config.levels[
        i % len(config.levels)] == config.n_align], n_align=config.n_align)
    if len(config.levels) > 1:
        verdicts += judge_sweep(t["records"], t["slices"], t["regime"], config.levels)
    return Result(config, t["records"], t["slices"], t["regime"], verdicts, seconds=runs.seconds)
