"""rebound-scale: does rebound grow with model size and pre-training volume? (docs/experiments.md §E4x).

Tiny Llamas of ``sizes`` pre-trained on the same tokens, each at its own learning rate, its loss curve checked for
a plateau (:mod:`tokentree.lab.regime`); snapshots of the middle size after warmup, briefly annealed
(:func:`tokentree.lab.base.prepare_base`); from each the rebound protocol (:mod:`tokentree.lab.rebound_protocol`),
on the log-odds. The initial drop over the stage-1 gain, judged by trend tests over seeds
(:mod:`tokentree.verification.trained_scale`), is shown beside the gain ("no elasticity" vs "did not take").

    tokentree run rebound-scale                  # synthetic sentiment, 8 seeds: long on 2 cores
    tokentree run rebound-scale --config experiments/rebound-scale-paper.toml
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tokentree.bridge.hf import DEVICES
from tokentree.data.language import AXES
from tokentree.data.sources import SOURCES, check_source
from tokentree.framework.config import Checked, bounded
from tokentree.framework.report import ExperimentReport, Section
from tokentree.framework.runner import run_cases
from tokentree.framework.tables import Column, Table
from tokentree.framework.verdicts import Verdict
from tokentree.infra.errors import InputError
from tokentree.lab.rebound_protocol import ScaledGrid, scaled_grid
from tokentree.lab.regime import TrainingRegime
from tokentree.lab.seeded import SeededTraining
from tokentree.verification import paper
from tokentree.verification.trained import REGIME_TABLE, premise_problems
from tokentree.verification.trained_scale import ScaleCurve, groups, judge, scale_curve, sweep_table

__all__ = ["NAME", "Config", "ScaleCurve", "SizeRegime", "Result", "run"]

NAME = "rebound-scale"
SECTION = "docs/experiments.md §E4x"
#: TinyLlama's checkpoints as fractions of its 3T tokens.
TINYLLAMA_FRACTIONS = (0.03, 0.17, 0.33, 0.67, 0.83, 1.0)


@dataclass(frozen=True)
class Config(ScaledGrid, SeededTraining, Checked):
    """Options of ``tokentree run rebound-scale`` (flat TOML; the rest as in ``rebound``): docs/experiments.md §E4x.

    sizes: (layers, width, heads), smallest first; the middle one is also the volume sweep's model, kept at
    ``fractions`` of its pre-training (increasing, after the warmup, ending at 1), each annealed for
    ``anneal_share`` of its steps. lr_factors: each size's multiple of pretrain_lr, lr_align and lr_negative
    (empty: smallest width / width). lr_scales: the base-rate sweep, further multiples of every size's pre-training
    lr (a size sweep each). remark_share: the share of untemplated pre-training texts with a sentiment remark.
    """

    data: str = bounded("synthetic", choices=SOURCES)
    axis: str = bounded("sentiment", choices=AXES)
    positive: str = ""
    negative: str = ""
    device: str = bounded("auto", choices=DEVICES)
    threads: int = bounded(1, minimum=1)
    seed: int = bounded(0, minimum=0)
    n_seeds: int = bounded(8, minimum=1)
    sizes: tuple[tuple[int, ...], ...] = bounded(((1, 32, 2), (2, 64, 4), (4, 128, 4)), minimum=1)
    fractions: tuple[float, ...] = bounded(TINYLLAMA_FRACTIONS, minimum=0.0, maximum=1.0, exclusive=True)
    n_pos_values: tuple[int, ...] = (1000, 5000)
    n_neg_values: tuple[int, ...] = paper.REBOUND_NEGATIVES
    scale: float = 0.05
    n_pretrain_docs: int = bounded(12000, minimum=1)
    pretrain_tokens: int = bounded(800_000, minimum=1)
    vocab_size: int = bounded(1000, minimum=1)
    context: int = bounded(128, minimum=1)
    pretrain_lr: float = bounded(3e-3, minimum=0.0, exclusive=True)
    warmup_share: float = bounded(0.02, minimum=0.0, maximum=0.5)
    anneal_share: float = bounded(0.1, minimum=0.0, maximum=1.0)
    lr_factors: tuple[float, ...] = ()
    lr_scales: tuple[float, ...] = ()
    remark_share: float = bounded(0.3, minimum=0.0, maximum=1.0)
    lr_align: float = bounded(1e-4, minimum=0.0, exclusive=True)
    lr_negative: float = bounded(1e-4, minimum=0.0, exclusive=True)
    warmup_steps: int = bounded(5, minimum=0)
    batch_size: int = bounded(16, minimum=1)
    n_eval: int = bounded(64, minimum=1)

    def validate(self) -> None:
        check_source(self.data, self.positive, self.negative)
        if bad := [i for i, size in enumerate(self.sizes) if len(size) != 3]:
            raise InputError(f"sizes[{bad[0]}] must be (layers, width, heads); got {list(self.sizes[bad[0]])}")
        if len(self.sizes) < 2:
            raise InputError("sizes needs at least two models to compare")
        if len(fr := self.fractions) < 2 or list(fr) != sorted(set(fr)) or fr[-1] != 1.0:
            raise InputError(f"fractions must be at least two, increase and end at 1.0; got {list(fr)}")
        if fr[0] <= self.warmup_share:
            raise InputError(f"fractions[0] = {fr[0]} lies inside the warmup (warmup_share {self.warmup_share}): "
                             "a snapshot is taken after it; raise the fraction or lower warmup_share")
        if (self.lr_factors and len(self.lr_factors) != len(self.sizes)) or min(self.lr_factors + self.lr_scales,
                                                                                  default=1) <= 0:
            raise InputError(f"lr_factors needs one positive factor per size ({len(self.sizes)}) and lr_scales "
                             f"positive multiples; got {list(self.lr_factors)}, {list(self.lr_scales)}")
        if self.remark_share < 1 and self.data != "synthetic":
            raise InputError("remark_share < 1 drops remarks of the synthetic language: set it to 1 for this data")
        scaled_grid(self.n_pos_values, self.n_neg_values, self.scale)

    @property
    def factors(self) -> list[float]:
        """Each size's learning-rate factor: ``lr_factors``, or the smallest width over its width."""
        return list(self.lr_factors) or [self.sizes[0][1] / size[1] for size in self.sizes]

    @property
    def lr_levels(self) -> list[float]:
        return sorted({1.0, *self.lr_scales})  # the pre-training lr multiples run; every claim but S1@lr is at 1

    @classmethod
    def quick(cls) -> Config:
        """Two seeds, two small sizes, three fractions, one n_pos: under a minute; outside the premise (k about 27)."""
        return cls(n_seeds=2, sizes=((1, 16, 2), (1, 32, 2)), fractions=(0.2, 0.6, 1.0), n_pos_values=(1000,),
                   scale=0.03, n_pretrain_docs=800, pretrain_tokens=20_000, vocab_size=600, n_eval=16,
                   lr_align=1e-3, lr_negative=1e-3, warmup_steps=1)


@dataclass(frozen=True)
class SizeRegime(TrainingRegime):
    """The regime of one pre-trained size (:class:`~tokentree.lab.regime.TrainingRegime`) and which run it is."""

    seed: int = 0
    size_index: int = 0
    lr_scale: float = 1.0
    pretrain_lr: float = math.nan


SWEEPS = (("size", "parameters"), ("volume", "share of pre-training"))
SIZE_REGIME_TABLE = Table("regime", "Regime per seed and size (docs/experiments.md §regime)", [
    Column("seed"), Column("size_index", "size"), Column("lr_scale", "lr x", "g"),
    Column("pretrain_lr", "pre-training lr", "g"), *REGIME_TABLE.columns])


@dataclass(frozen=True, eq=False, repr=False)
class Result(ExperimentReport):
    EXPERIMENT = NAME
    PLOTS = ("rebound_scale",)
    CLAIMS_SECTION = SECTION

    config: Config
    records: Sequence[ScaleCurve]
    regime: Sequence[SizeRegime]
    verdicts: Sequence[Verdict]
    seconds: float = field(default=0.0)

    def side_tables(self) -> dict[str, Sequence[Any]]:
        return {"regime": self.regime}

    def title(self) -> str:
        return f"rebound-scale: model size and pre-training volume ({self.config.data}, {self.config.n_seeds} seeds)"

    def intro(self) -> str:
        c = self.config
        words = "; ".join(f"size {r.size_index}: {r.words}" for r in self.regime if (r.seed, r.lr_scale) == (c.seed, 1))
        lrs = [" / ".join(f"{lr * f:.2g}" for f in c.factors) for lr in (c.pretrain_lr, c.lr_align)]
        return (f"Seeds {c.seeds}; sizes (layers, width, heads) {[list(s) for s in c.sizes]} at pre-training lr "
                f"{lrs[0]} and fine-tuning lr {lrs[1]} (warmup {c.warmup_steps} steps); pre-training "
                f"{c.pretrain_tokens:,} tokens, {c.remark_share:.0%} of its untemplated texts with a sentiment remark "
                f"(volume sweep: the middle size at {list(c.fractions)} of them, each snapshot annealed for "
                f"{c.anneal_share:.0%} of its steps); n_pos {c.scaled(c.n_pos_values)}, n_neg "
                f"{c.scaled(c.n_neg_values)}. Regime (seed {c.seed}): {words}. Run time {self.seconds:.0f} s. The "
                "paper, as reported by secondary write-ups: larger models (Qwen1.5 0.5B / 4B / 7B) and longer "
                f"pre-training (TinyLlama 2.0 / 2.5 / 3.0T) rebound more; rebound near-absent at 0.1T of 3T. "
                f"Columns: {SECTION}.")

    def grouped(self, sweep: str) -> list[tuple[int, float, list[ScaleCurve]]]:
        """(n_pos, mean parameters or pre-training share, the curves over seeds) along one sweep."""
        return [(n, float(np.mean([r.n_parameters for r in rows])) if sweep == "size" else x, rows)
                for n in self.config.scaled(self.config.n_pos_values) for x, rows in groups(self.records, sweep, n)]

    def sections(self) -> Sequence[Section]:
        return [*((sweep_table(sweep, label), [{"n_pos": n, "x": x, "rows": rows} for n, x, rows in
                                                self.grouped(sweep)]) for sweep, label in SWEEPS),
                (SIZE_REGIME_TABLE, self.regime)]

    def terminal_tables(self) -> Sequence[tuple[Table, Sequence[Any]]]:
        return [(SIZE_REGIME_TABLE, [r for r in self.regime if r.seed == self.config.seed])]

    def plot(self, folder: Path) -> None:
        from tokentree.plots.rebound_scale import plot_rebound_scale

        size, volume = ([(n, x, [r.initial_drop_normalised for r in rows]) for n, x, rows in self.grouped(sweep)]
                        for sweep, _ in SWEEPS)
        plot_rebound_scale(size, volume, path=folder / "rebound_scale.png")


def one_seed(config: Config, seed: int) -> dict[str, list[Any]]:
    """Every size pre-trained at every lr level (the middle at 1 with snapshots): its regime, a curve per n_pos."""
    from tokentree.data.chat import tokenize_chats
    from tokentree.experiments.rebound import rebound_data
    from tokentree.lab.base import BaseSettings, prepare_base
    from tokentree.lab.probe import BehaviourProbe
    from tokentree.lab.rebound_protocol import ReboundSettings, rebound_curve
    from tokentree.lab.regime import training_regime

    n_neg, middle, data = config.scaled(config.n_neg_values), len(config.sizes) // 2, rebound_data(
        config, seed, remark_share=config.remark_share)
    out: dict[str, list[Any]] = {"records": [], "regime": []}
    for lr_scale, (index, (layers, width, heads)) in itertools.product(config.lr_levels, enumerate(config.sizes)):
        factor, snap = config.factors[index], config.fractions[:-1] if (index, lr_scale) == (middle, 1.0) else ()
        settings = ReboundSettings(lr_align=config.lr_align * factor, lr_negative=config.lr_negative * factor,
                                   batch_size=config.batch_size, threads=config.threads, device=config.device,
                                   warmup_steps=config.warmup_steps)
        base = prepare_base(data, BaseSettings(
            vocab_size=config.vocab_size, n_layers=layers, d_model=width, n_heads=heads, context=config.context,
            pretrain_tokens=config.pretrain_tokens, lr=config.pretrain_lr * factor * lr_scale,
            warmup_share=config.warmup_share, batch_size=config.batch_size, device=config.device,
            threads=config.threads), seed=seed, snapshot_fractions=snap, snapshot_anneal_share=config.anneal_share)
        models = [("size", 1.0, base.pretrain_tokens, base.model)]
        models += [("volume", f, base.snapshot_tokens[f], base.snapshots[f]) for f in snap]
        models += [("volume", 1.0, base.pretrain_tokens, base.model)] if snap else []
        aligned, misaligned = (tokenize_chats(c, base.tokenizer) for c in (data.aligned, data.misaligned))
        for sweep, fraction, tokens, model in models:
            probe = BehaviourProbe(data, base.tokenizer, model, seed=seed, sample=False, kl=False,
                                   pretrain_rate=False, threads=config.threads)
            for n_pos in config.scaled(config.n_pos_values):
                curve = rebound_curve(model, probe, aligned, misaligned, n_pos=n_pos, n_neg=n_neg,
                                      settings=settings, seed=seed)
                out["records"].append(scale_curve(
                    n_neg, curve.base.log_odds_nats, [p.log_odds_nats for p in curve.points], seed=seed, sweep=sweep,
                    size_index=index, n_parameters=base.n_parameters, pretrain_tokens=tokens,
                    pretrain_fraction=fraction, n_pos=n_pos, lr_scale=lr_scale))
        regime = training_regime(
            pretrain_tokens=base.pretrain_tokens, behaviour_tokens=aligned.head(n_pos).n_target_tokens,
            transfer_tokens=misaligned.head(n_neg[-1]).n_target_tokens, pretrain_losses=base.convergence_losses,
            fine_tune_lr=max(settings.lr_align, settings.lr_negative), warmup_steps=config.warmup_steps, warn=False)
        out["regime"].append(SizeRegime(**dataclasses.asdict(regime), seed=seed, size_index=index, lr_scale=lr_scale,
                                        pretrain_lr=config.pretrain_lr * factor * lr_scale))
    return out


def run(config: Config, *, show_progress: bool | None = None) -> Result:
    runs = run_cases(config.seeds, lambda seed: one_seed(config, seed), desc="rebound-scale seeds", show=show_progress)
    records, regime = runs.tables["records"], runs.tables["regime"]
    gate = {s: premise_problems([r for r in regime if r.lr_scale == s]) for s in config.lr_levels}
    middle = premise_problems([r for r in regime if r.lr_scale == 1.0 and r.size_index == len(config.sizes) // 2])
    return Result(config, records, regime, judge(records, config.scaled(config.n_pos_values), config.fractions,
                                                 untestable=(gate[1.0], middle), lr_scales=config.lr_scales,
                                                 lr_untestable=gate), seconds=runs.seconds)
