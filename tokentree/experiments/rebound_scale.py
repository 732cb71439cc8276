"""rebound-scale: does rebound grow with model size and pre-training volume? (docs/experiments.md §E4x).

Tiny Llamas of ``sizes`` (about 20x in parameters) pre-trained on the same tokens, and snapshots of the middle
size at the TinyLlama fractions of its pre-training; from each the rebound protocol
(:mod:`tokentree.lab.rebound_protocol`) per n_pos over the n_neg grid, on the smooth log-odds. Reported: the
initial drop over the stage-1 gain and the knee, beside the stage-1 gain ("no elasticity" vs "did not take").

    tokentree run rebound-scale                  # synthetic sentiment, 5 seeds
"""

from __future__ import annotations

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
from tokentree.framework.verdicts import Verdict
from tokentree.infra.errors import InputError
from tokentree.lab.rebound_protocol import scaled_amounts, scaled_grid
from tokentree.lab.seeded import SeededTraining
from tokentree.verification import curves, paper
from tokentree.verification.trained_scale import ScaleCurve, groups, judge, sweep_table

__all__ = ["NAME", "Config", "ScaleCurve", "Result", "run"]

NAME = "rebound-scale"
SECTION = "docs/experiments.md §E4x"
#: TinyLlama's checkpoints as fractions of its 3T tokens.
TINYLLAMA_FRACTIONS = (0.03, 0.17, 0.33, 0.67, 0.83, 1.0)


@dataclass(frozen=True)
class Config(SeededTraining, Checked):
    """Options of ``tokentree run rebound-scale`` (flat TOML; the rest as in ``rebound``): docs/experiments.md §E4x.

    sizes: (layers, width, heads), smallest first; the middle one is also the volume sweep's model, kept at
    ``fractions`` of its pre-training (increasing, ending at 1). The grid is n_pos/n_neg_values x ``scale``.
    """

    data: str = bounded("synthetic", choices=SOURCES)
    axis: str = bounded("sentiment", choices=AXES)
    positive: str = ""
    negative: str = ""
    device: str = bounded("auto", choices=DEVICES)
    threads: int = bounded(1, minimum=1)
    seed: int = bounded(0, minimum=0)
    n_seeds: int = bounded(5, minimum=1)
    sizes: tuple[tuple[int, ...], ...] = bounded(((1, 32, 2), (2, 64, 4), (4, 128, 4)), minimum=1)
    fractions: tuple[float, ...] = bounded(TINYLLAMA_FRACTIONS, minimum=0.0, maximum=1.0, exclusive=True)
    n_pos_values: tuple[int, ...] = (1000, 5000)
    n_neg_values: tuple[int, ...] = paper.REBOUND_NEGATIVES
    scale: float = 0.1
    n_pretrain_docs: int = bounded(4000, minimum=1)
    pretrain_tokens: int = bounded(150_000, minimum=1)
    vocab_size: int = bounded(1000, minimum=1)
    context: int = bounded(128, minimum=1)
    lr_align: float = bounded(1e-3, minimum=0.0, exclusive=True)
    lr_negative: float = bounded(1e-3, minimum=0.0, exclusive=True)
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
        scaled_grid(self.n_pos_values, self.n_neg_values, self.scale)

    def scaled(self, values: Sequence[int]) -> list[int]:
        """``values`` (n_pos_values or n_neg_values) times ``scale``, rounded."""
        return scaled_amounts(values, self.scale)

    @classmethod
    def quick(cls) -> Config:
        """Two seeds, two small sizes, three fractions, one n_pos: under a minute."""
        return cls(n_seeds=2, sizes=((1, 16, 2), (1, 32, 2)), fractions=(0.2, 0.6, 1.0), n_pos_values=(1000,),
                   scale=0.03, n_pretrain_docs=800, pretrain_tokens=20_000, vocab_size=600, n_eval=16)


SWEEPS = (("size", "parameters"), ("volume", "share of pre-training"))


@dataclass(frozen=True, eq=False, repr=False)
class Result(ExperimentReport):
    EXPERIMENT = NAME
    PLOTS = ("rebound_scale",)
    CLAIMS_SECTION = SECTION

    config: Config
    records: Sequence[ScaleCurve]
    verdicts: Sequence[Verdict]
    seconds: float = field(default=0.0)

    def title(self) -> str:
        return f"rebound-scale: model size and pre-training volume ({self.config.data}, {self.config.n_seeds} seeds)"

    def intro(self) -> str:
        c = self.config
        return (f"Seeds {c.seeds}; sizes (layers, width, heads) {[list(s) for s in c.sizes]}; pre-training "
                f"{c.pretrain_tokens:,} tokens (volume sweep: the middle size at {list(c.fractions)} of them); n_pos "
                f"{c.scaled(c.n_pos_values)}, n_neg {c.scaled(c.n_neg_values)}. Run time {self.seconds:.0f} s. The "
                "paper: larger models (Qwen1.5 0.5B / 4B / 7B) and longer pre-training (TinyLlama 2.0 / 2.5 / 3.0T) "
                f"rebound more; rebound near-absent at 0.1T of 3T. Columns: {SECTION}.")

    def grouped(self, sweep: str) -> list[tuple[int, float, list[ScaleCurve]]]:
        """(n_pos, mean parameters or pre-training share, the curves over seeds) along one sweep."""
        return [(n, float(np.mean([r.n_parameters for r in rows])) if sweep == "size" else x, rows)
                for n in self.config.scaled(self.config.n_pos_values) for x, rows in groups(self.records, sweep, n)]

    def sections(self) -> Sequence[Section]:
        return [(sweep_table(sweep, label), [{"n_pos": n, "x": x, "rows": rows} for n, x, rows in self.grouped(sweep)])
                for sweep, label in SWEEPS]

    def plot(self, folder: Path) -> None:
        from tokentree.plots.rebound_scale import plot_rebound_scale

        size, volume = ([(n, x, [r.initial_drop_normalised for r in rows]) for n, x, rows in self.grouped(sweep)]
                        for sweep, _ in SWEEPS)
        plot_rebound_scale(size, volume, path=folder / "rebound_scale.png")


def one_seed(config: Config, seed: int) -> dict[str, list[Any]]:
    """Every size pre-trained (the middle one with snapshots), a rebound curve per model and n_pos."""
    from tokentree.data.chat import tokenize_chats
    from tokentree.experiments.rebound import _data
    from tokentree.lab.base import BaseSettings, prepare_base
    from tokentree.lab.probe import BehaviourProbe
    from tokentree.lab.rebound_protocol import ReboundSettings, rebound_curve

    settings = ReboundSettings(lr_align=config.lr_align, lr_negative=config.lr_negative,
                               batch_size=config.batch_size, threads=config.threads, device=config.device)
    n_neg, middle, data = config.scaled(config.n_neg_values), len(config.sizes) // 2, _data(config, seed)
    records: list[ScaleCurve] = []
    for index, (layers, width, heads) in enumerate(config.sizes):
        base = prepare_base(data, BaseSettings(
            vocab_size=config.vocab_size, n_layers=layers, d_model=width, n_heads=heads, context=config.context,
            pretrain_tokens=config.pretrain_tokens, batch_size=config.batch_size, device=config.device,
            threads=config.threads), seed=seed, snapshot_fractions=config.fractions[:-1] if index == middle else ())
        models = [("size", 1.0, base.model)]
        if index == middle:
            models += [("volume", f, base.snapshots[f]) for f in config.fractions[:-1]] + [("volume", 1.0, base.model)]
        aligned, misaligned = (tokenize_chats(c, base.tokenizer) for c in (data.aligned, data.misaligned))
        for sweep, fraction, model in models:
            probe = BehaviourProbe(data, base.tokenizer, model, seed=seed, sample=False, kl=False,
                                   pretrain_rate=False, threads=config.threads)
            for n_pos in config.scaled(config.n_pos_values):
                curve = rebound_curve(model, probe, aligned, misaligned, n_pos=n_pos, n_neg=n_neg,
                                      settings=settings, seed=seed)
                odds = [p.log_odds_nats for p in curve.points]
                gain, drop = odds[0] - curve.base.log_odds_nats, curves.initial_slope(n_neg, odds)
                records.append(ScaleCurve(
                    seed=seed, sweep=sweep, size_index=index, n_parameters=base.n_parameters,
                    pretrain_tokens=round(fraction * base.pretrain_tokens), pretrain_fraction=fraction,
                    n_pos=n_pos, stage1_gain_nats=gain, initial_drop=drop,
                    initial_drop_normalised=drop / gain if gain > 0 else math.nan, knee=curves.knee(n_neg, odds),
                    total_drop_nats=odds[0] - odds[-1]))
    return {"records": records}


def run(config: Config, *, show_progress: bool | None = None) -> Result:
    runs = run_cases(config.seeds, lambda seed: one_seed(config, seed), desc="rebound-scale seeds",
                     show=show_progress)
    records = runs.tables["records"]
    return Result(config, records, judge(records, config.scaled(config.n_pos_values), config.fractions),
                  seconds=runs.seconds)
