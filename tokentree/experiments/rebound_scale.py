"""rebound-scale: does rebound grow with model size and pre-training volume? (docs/experiments.md §E4x).

Model size: tiny Llamas of ``sizes`` (layers, width, heads; spanning about 20x in
parameters), each pre-trained from scratch on the same tokens. Pre-training volume: one
warmup + cosine pre-training run of the middle size, with snapshots at the TinyLlama
fractions of its tokens (3%, 17%, 33%, 67%, 83%, 100%). From every base model the rebound
protocol runs (:mod:`tokentree.lab.rebound_protocol`) for each n_pos with the whole n_neg grid,
measuring the smooth log-odds of the aligned vs the misaligned reference. Reported
against parameters and against pre-training tokens: the initial drop rate divided by the
stage-1 gain, and the knee (the negatives at half the total drop), always beside the
stage-1 gain, so that "no elasticity" is told apart from "alignment did not take".

    tokentree run rebound-scale                  # synthetic sentiment, 5 seeds
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np

from tokentree.data.language import AXES
from tokentree.data.sources import check_source
from tokentree.experiments._training import SeededTraining
from tokentree.framework.aggregate import mean_sd_text
from tokentree.framework.report import ExperimentReport, verdict_lines, verdict_table
from tokentree.framework.verdicts import Verdict
from tokentree.infra.checks import check_choice, check_float, check_int, check_list
from tokentree.infra.errors import InputError
from tokentree.infra.progress import progress
from tokentree.infra.results import Record
from tokentree.lab.rebound_protocol import scaled_amounts, scaled_grid
from tokentree.verification import claims, curves, paper

__all__ = ["NAME", "Config", "ScaleCurve", "Result", "run"]

NAME = "rebound-scale"
SECTION = "docs/experiments.md §E4x"
#: TinyLlama's checkpoints as fractions of its 3T tokens.
TINYLLAMA_FRACTIONS = (0.03, 0.17, 0.33, 0.67, 0.83, 1.0)


@dataclass(frozen=True)
class Config(SeededTraining):
    """Options of ``tokentree run rebound-scale``; every field can be set in a TOML file.

    data, axis, positive, negative
        As in ``tokentree run rebound``.
    device, threads
        Where the tiny models run, and CPU threads.
    sizes
        (layers, width, heads) of each model in the size sweep, smallest first; the middle one
        is also the model of the pre-training volume sweep.
    fractions
        Shares of the pre-training run kept for the volume sweep (the last must be 1).
    n_pos_values, n_neg_values, scale
        The rebound grid, multiplied by ``scale``.
    n_pretrain_docs, pretrain_tokens, vocab_size, context, lr_align, lr_negative, batch_size, n_eval
        As in ``tokentree run rebound``.
    """

    data: str = "synthetic"
    axis: str = "sentiment"
    positive: str = ""
    negative: str = ""
    device: str = "auto"
    threads: int = 1
    seed: int = 0
    n_seeds: int = 5
    sizes: tuple[tuple[int, ...], ...] = ((1, 32, 2), (2, 64, 4), (4, 128, 4))
    fractions: tuple[float, ...] = TINYLLAMA_FRACTIONS
    n_pos_values: tuple[int, ...] = (1000, 5000)
    n_neg_values: tuple[int, ...] = paper.REBOUND_NEGATIVES
    scale: float = 0.1
    n_pretrain_docs: int = 4000
    pretrain_tokens: int = 150_000
    vocab_size: int = 1000
    context: int = 128
    lr_align: float = 1e-3
    lr_negative: float = 1e-3
    batch_size: int = 16
    n_eval: int = 64

    def __post_init__(self) -> None:
        check_source(self.data, self.positive, self.negative)
        check_choice(self.axis, "axis", AXES)
        self.check_training_settings()
        for i, size in enumerate(self.sizes):
            if len(size) != 3:
                raise InputError(f"sizes[{i}] must be (layers, width, heads); got {list(size)}")
        if len(self.sizes) < 2:
            raise InputError("sizes needs at least two models to compare")
        fr = check_list(self.fractions, "fractions", lambda v, n: check_float(v, n, minimum=0.0, maximum=1.0,
                                                                              exclusive=True), min_length=2)
        if list(fr) != sorted(set(fr)) or fr[-1] != 1.0:
            raise InputError(f"fractions must increase and end at 1.0; got {list(fr)}")
        scaled_grid(self.n_pos_values, self.n_neg_values, self.scale)
        for name in ("n_pretrain_docs", "pretrain_tokens", "vocab_size", "context", "batch_size", "n_eval"):
            check_int(getattr(self, name), name, minimum=1)
        check_float(self.lr_align, "lr_align", minimum=0.0, exclusive=True)
        check_float(self.lr_negative, "lr_negative", minimum=0.0, exclusive=True)

    def scaled(self, values: Sequence[int]) -> list[int]:
        """``values`` (n_pos_values or n_neg_values) times ``scale``, rounded."""
        return scaled_amounts(values, self.scale)

    @classmethod
    def quick(cls) -> Config:
        """Two seeds, two small sizes, three fractions, one n_pos: under a minute."""
        return cls(n_seeds=2, sizes=((1, 16, 2), (1, 32, 2)), fractions=(0.2, 0.6, 1.0), n_pos_values=(1000,),
                   scale=0.03, n_pretrain_docs=800, pretrain_tokens=20_000, vocab_size=600, n_eval=16)


@dataclass(frozen=True)
class ScaleCurve(Record):
    """One rebound curve from one base model: which sweep, how big and how pre-trained, and its reading.

    ``size_index`` is the model's place in ``sizes``; its parameter count varies a little
    from seed to seed with the size of the tokenizer trained for that seed.

    ``initial_drop_normalised`` is the log-odds lost per negative at the start divided by
    the stage-1 gain; ``knee`` the negatives at half the total drop.
    """

    NONFINITE_REASONS: ClassVar[dict[str, str]] = {
        "initial_drop_normalised": "stage 1 did not raise the log-odds",
        "knee": "the log-odds did not drop over the negatives",
    }

    seed: int
    sweep: str
    size_index: int
    n_parameters: int
    pretrain_tokens: int
    pretrain_fraction: float
    n_pos: int
    stage1_gain_nats: float
    initial_drop: float
    initial_drop_normalised: float
    knee: float
    total_drop_nats: float


@dataclass(frozen=True, eq=False, repr=False)
class Result(ExperimentReport):
    EXPERIMENT = NAME

    config: Config
    records: Sequence[ScaleCurve]
    verdicts: Sequence[Verdict]
    seconds: float = field(default=0.0)

    def verdict_list(self) -> Sequence[Verdict]:
        return self.verdicts

    def groups(self, sweep: str, n_pos: int) -> list[tuple[float, list[ScaleCurve]]]:
        """(size index or pre-training fraction, its curves over seeds), in increasing order."""
        key = "size_index" if sweep == "size" else "pretrain_fraction"
        rows = [r for r in self.records if r.sweep == sweep and r.n_pos == n_pos]
        return [(x, [r for r in rows if getattr(r, key) == x]) for x in sorted({getattr(r, key) for r in rows})]

    def terminal_summary(self) -> str:
        head = f"rebound-scale ({self.config.data}, {self.config.n_seeds} seeds): verdicts ({SECTION})"
        return "\n".join([head, *verdict_lines(self.verdicts)])

    def summary_markdown(self) -> str:
        c = self.config

        out = [
            f"# rebound-scale: model size and pre-training volume ({c.data})",
            "",
            f"Seeds {c.seeds}; sizes (layers, width, heads) {[list(s) for s in c.sizes]}; pre-training "
            f"{c.pretrain_tokens:,} tokens (volume sweep: the middle size at {list(c.fractions)} of them); n_pos "
            f"{c.scaled(c.n_pos_values)}, n_neg {c.scaled(c.n_neg_values)}. Run time {self.seconds:.0f} s. The paper: "
            "larger models (Qwen1.5 0.5B / 4B / 7B) and longer pre-training (TinyLlama 2.0 / 2.5 / 3.0T) rebound "
            f"more; rebound near-absent at 0.1T of 3T. Columns: {SECTION}.",
            "",
            "## Verdicts",
            "",
            *verdict_table(self.verdicts),
        ]
        for sweep, label in (("size", "parameters"), ("volume", "share of pre-training")):
            out += ["", f"## Against {label} (mean ± sd over seeds)", "",
                    f"| n_pos | {label} | stage-1 gain (nats) | initial drop / gain (per negative) | knee | "
                    "total drop |",
                    "|---|---|---|---|---|---|"]
            for n_pos in c.scaled(c.n_pos_values):
                for x, rows in self.groups(sweep, n_pos):
                    shown = f"{np.mean([r.n_parameters for r in rows]):,.0f}" if sweep == "size" else f"{x:.0%}"
                    out.append(f"| {n_pos} | {shown} | {mean_sd_text([r.stage1_gain_nats for r in rows], '.2f')} | "
                               f"{mean_sd_text([r.initial_drop_normalised for r in rows])} | "
                               f"{mean_sd_text([r.knee for r in rows], '.0f')} | "
                               f"{mean_sd_text([r.total_drop_nats for r in rows], '.2f')} |")
        out += ["", "![rebound against size and pre-training](rebound_scale.png)"]
        return "\n".join(out) + "\n"

    def plot(self, folder: Path) -> None:
        from tokentree.plots import COLOURS, new_figure

        fig, axes = new_figure(1, 2, size=(12, 4.4))
        for ax, sweep, label in zip(axes, ("size", "volume"), ("parameters", "share of pre-training tokens"),
                                    strict=True):
            for i, n_pos in enumerate(self.config.scaled(self.config.n_pos_values)):
                groups = self.groups(sweep, n_pos)
                xs = [np.mean([r.n_parameters for r in rows]) if sweep == "size" else x for x, rows in groups]
                means = [np.nanmean([r.initial_drop_normalised for r in rows]) for _, rows in groups]
                sds = [np.nanstd([r.initial_drop_normalised for r in rows]) for _, rows in groups]
                ax.errorbar(xs, means, yerr=sds, fmt="o-", capsize=3, color=COLOURS[i], label=f"n_pos = {n_pos}")
            if sweep == "size":
                ax.set_xscale("log")
            ax.set_xlabel(label)
            ax.set_ylabel("initial drop / stage-1 gain (per negative)")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7)
        fig.suptitle("Rebound speed against model size and pre-training (error bars: seed sd)")
        fig.savefig(folder / "rebound_scale.png")


def _judge(result: Result) -> list[Verdict]:
    c = result.config
    verdicts = []
    for item, sweep, claim in (
        ("S1", "size", "more parameters, faster rebound (initial drop / stage-1 gain grows with size)"),
        ("S2", "volume", "more pre-training, faster rebound (initial drop / stage-1 gain grows with pre-training)"),
    ):
        statuses, evidence = [], []
        for n_pos in c.scaled(c.n_pos_values):
            groups = result.groups(sweep, n_pos)
            per = [np.array([r.initial_drop_normalised for r in sorted(rows, key=lambda r: r.seed)])
                   for _, rows in groups]
            statuses.append(claims.ordered(per))
            gains = [np.nanmean([r.stage1_gain_nats for r in rows]) for _, rows in groups]
            evidence.append(f"n_pos {n_pos}: " + ", ".join(f"{np.nanmean(v):.3g}" for v in per)
                            + f" (stage-1 gains {', '.join(f'{g:.2f}' for g in gains)})")
        verdicts.append(Verdict(item, claim, claims.all_of(statuses), "; ".join(evidence), SECTION))
    first, last = min(c.fractions), 1.0
    diffs = []
    for n_pos in c.scaled(c.n_pos_values):
        rows = [r for r in result.records if r.sweep == "volume" and r.n_pos == n_pos]
        by_seed: dict[int, dict[float, float]] = {r.seed: {} for r in rows}
        for r in rows:
            by_seed[r.seed][r.pretrain_fraction] = r.initial_drop_normalised
        diffs += [v[last] - v[first] for v in by_seed.values() if first in v and last in v]
    verdicts.append(Verdict(
        "S3", f"rebound is weaker early in pre-training ({first:.0%}) than at its end", claims.direction(diffs),
        f"initial drop / gain at 100% minus at {first:.0%}: mean {np.nanmean(diffs):.3g} over {len(diffs)} runs",
        SECTION,
    ))
    return verdicts


def run(config: Config, *, show_progress: bool | None = None) -> Result:
    from tokentree.data.chat import tokenize_chats
    from tokentree.experiments.rebound import _data
    from tokentree.lab.base import BaseSettings, prepare_base
    from tokentree.lab.probe import BehaviourProbe
    from tokentree.lab.rebound_protocol import ReboundSettings, rebound_curve

    start = time.perf_counter()
    records: list[ScaleCurve] = []
    settings = ReboundSettings(lr_align=config.lr_align, lr_negative=config.lr_negative,
                               batch_size=config.batch_size, threads=config.threads, device=config.device)
    n_neg = config.scaled(config.n_neg_values)
    middle = len(config.sizes) // 2
    for seed in progress(config.seeds, desc="rebound-scale seeds", show=show_progress):
        data = _data(config, seed)
        for index, (layers, width, heads) in enumerate(config.sizes):
            base = prepare_base(data, BaseSettings(
                vocab_size=config.vocab_size, n_layers=layers, d_model=width, n_heads=heads, context=config.context,
                pretrain_tokens=config.pretrain_tokens, batch_size=config.batch_size, device=config.device,
                threads=config.threads,
            ), seed=seed, snapshot_fractions=config.fractions[:-1] if index == middle else ())
            models = [("size", 1.0, base.model)]
            if index == middle:
                models += [("volume", f, base.snapshots[f]) for f in config.fractions[:-1]]
                models.append(("volume", 1.0, base.model))
            aligned = tokenize_chats(data.aligned, base.tokenizer)
            misaligned = tokenize_chats(data.misaligned, base.tokenizer)
            for sweep, fraction, model in models:
                probe = BehaviourProbe(data, base.tokenizer, model, seed=seed, sample=False, kl=False,
                                       pretrain_rate=False, threads=config.threads)
                for n_pos in config.scaled(config.n_pos_values):
                    curve = rebound_curve(model, probe, aligned, misaligned, n_pos=n_pos, n_neg=n_neg,
                                          settings=settings, seed=seed)
                    odds = [p.log_odds_nats for p in curve.points]
                    gain = odds[0] - curve.base.log_odds_nats
                    drop = curves.initial_slope(n_neg, odds)
                    records.append(ScaleCurve(
                        seed=seed, sweep=sweep, size_index=index, n_parameters=base.n_parameters,
                        pretrain_tokens=round(fraction * base.pretrain_tokens), pretrain_fraction=fraction,
                        n_pos=n_pos, stage1_gain_nats=gain, initial_drop=drop,
                        initial_drop_normalised=drop / gain if gain > 0 else math.nan, knee=curves.knee(n_neg, odds),
                        total_drop_nats=odds[0] - odds[-1],
                    ))
    result = Result(config, records, [], seconds=0.0)
    return Result(config, records, _judge(result), seconds=time.perf_counter() - start)
