"""rebound: more alignment, faster collapse? The paper's Table 3 and the count-model null (docs/experiments.md §E4r).

Per seed: pre-train theta_0; for every amount n_pos of aligned examples, fine-tune theta_0
on them (stage 1), then on misaligned examples in one pass measured at every n_neg of the
grid (stage 2; :mod:`tokentree.lab.rebound_protocol`). Every checkpoint is measured by the
behaviour probe (:mod:`tokentree.lab.probe`): the sampled behaviour score, the smooth
log-odds of the aligned vs the misaligned reference response, the KL to theta_0 over
response tokens, and bits per token of pre-training text. Beside it, the same protocol in
the count model of docs/theory.md §7, where fine-tuning adds counts
(:mod:`tokentree.compression.count_rebound`), and the paper's Table 3.

    tokentree run rebound                        # synthetic sentiment, tiny Llama, 5 seeds
    tokentree run rebound --data tweets          # positive / negative tweets, VADER
    tokentree run rebound --data files --positive good.jsonl --negative bad.jsonl
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from tokentree.compression.count_rebound import (
    count_model_initial_slope,
    count_model_minimum,
    count_model_negatives_to_kl,
    count_model_rebound,
    count_model_return_count,
)
from tokentree.data.language import AXES
from tokentree.data.sources import check_source
from tokentree.experiments._training import SeededTraining
from tokentree.framework.report import ExperimentReport, verdict_lines, verdict_table
from tokentree.framework.verdicts import Verdict, VerdictStatus
from tokentree.infra.checks import check_choice, check_float, check_int
from tokentree.infra.progress import progress
from tokentree.infra.results import Record
from tokentree.lab.rebound_protocol import scaled_amounts, scaled_grid
from tokentree.verification import claims, curves, paper

__all__ = ["NAME", "Config", "PointRecord", "CurveRecord", "CountModelRecord", "Result", "run"]

NAME = "rebound"
SECTION = "docs/experiments.md §E4r"


@dataclass(frozen=True)
class Config(SeededTraining):
    """Options of ``tokentree run rebound``; every field can be set in a TOML file.

    data, axis, positive, negative
        "synthetic" (the behaviour language's ``axis``), "tweets", or "files" (the JSONL files
        ``positive`` and ``negative`` of prompt/response pairs or chats).
    model, device, threads
        "tiny" (trained here), "smollm2", a model folder or a hub name; where it runs; CPU threads.
    n_pos_values, n_neg_values, scale
        The paper's grid (aligned examples; negatives after them), multiplied by ``scale``.
    n_pretrain_docs, pretrain_tokens, vocab_size, n_layers, d_model, n_heads, context
        theta_0 for the tiny model: documents of pre-training data, the token budget, the shape.
    lr_align, lr_negative, align_epochs, batch_size
        The two fine-tuning stages.
    n_eval, max_new_tokens, temperature
        Evaluation prompts (each with an aligned and a misaligned reference) and sampling.
    epsilon_share
        The KL threshold of the Table 3 analogue, as a share of the KL right after stage 1:
        the paper's 0.01 against its 0.21-0.27 is about 0.042.
    """

    data: str = "synthetic"
    axis: str = "sentiment"
    positive: str = ""
    negative: str = ""
    model: str = "tiny"
    device: str = "auto"
    threads: int = 1
    seed: int = 0
    n_seeds: int = 5
    n_pos_values: tuple[int, ...] = paper.TABLE_3_N_POSITIVE
    n_neg_values: tuple[int, ...] = paper.REBOUND_NEGATIVES
    scale: float = 0.2
    n_pretrain_docs: int = 4000
    pretrain_tokens: int = 150_000
    vocab_size: int = 1000
    n_layers: int = 2
    d_model: int = 64
    n_heads: int = 4
    context: int = 128
    lr_align: float = 1e-3
    lr_negative: float = 1e-3
    align_epochs: int = 1
    batch_size: int = 16
    n_eval: int = 64
    max_new_tokens: int = 40
    temperature: float = 1.0
    epsilon_share: float = paper.TABLE_3_KL_THRESHOLD / 0.24

    def __post_init__(self) -> None:
        check_source(self.data, self.positive, self.negative)
        check_choice(self.axis, "axis", AXES)
        self.check_training_settings()
        scaled_grid(self.n_pos_values, self.n_neg_values, self.scale)
        for name in ("n_pretrain_docs", "pretrain_tokens", "n_eval", "max_new_tokens", "align_epochs", "batch_size"):
            check_int(getattr(self, name), name, minimum=1)
        check_float(self.lr_align, "lr_align", minimum=0.0, exclusive=True)
        check_float(self.lr_negative, "lr_negative", minimum=0.0, exclusive=True)
        check_float(self.temperature, "temperature", minimum=0.0, exclusive=True)
        check_float(self.epsilon_share, "epsilon_share", minimum=0.0, maximum=1.0, exclusive=True)

    def scaled(self, values: Sequence[int]) -> list[int]:
        """``values`` (n_pos_values or n_neg_values) times ``scale``, rounded."""
        return scaled_amounts(values, self.scale)

    @classmethod
    def quick(cls) -> Config:
        """Two seeds, a tenth of the default grid and a small model: about half a minute."""
        return cls(n_seeds=2, scale=0.02, n_pretrain_docs=1000, pretrain_tokens=30_000, d_model=32, n_heads=2,
                   vocab_size=600, n_eval=24, max_new_tokens=24)


# ----------------------------------------------------------------------------- records
@dataclass(frozen=True)
class PointRecord(Record):
    """One checkpoint: seed, n_pos, n_neg (stage "base" is theta_0 itself), and its measurements."""

    NONFINITE_REASONS: ClassVar[dict[str, str]] = {"score": "no sampled response could be read by the scorer"}

    seed: int
    stage: str
    n_pos: int
    n_neg: int
    score: float
    unreadable: int
    log_odds_nats: float
    kl_to_base_nats: float
    pretrain_bits: float


@dataclass(frozen=True)
class CurveRecord(Record):
    """One rebound curve (seed, n_pos) read off: see docs/experiments.md §E4r for every column."""

    NONFINITE_REASONS: ClassVar[dict[str, str]] = {
        "drop_share_quarter": "the log-odds did not drop over the negatives",
        "knee": "the log-odds did not drop over the negatives",
        "negatives_to_epsilon": "the KL to theta_0 never came within epsilon",
        "negatives_to_base_behaviour": "the log-odds never came back to theta_0's",
        "initial_slope_normalised": "stage 1 did not raise the log-odds",
    }

    seed: int
    n_pos: int
    base_log_odds_nats: float
    stage1_log_odds_nats: float
    stage1_gain_nats: float
    stage1_score: float
    initial_slope: float
    initial_slope_normalised: float
    drop_share_quarter: float
    knee: float
    kl_after_stage1_nats: float
    epsilon_nats: float
    negatives_to_epsilon: float
    min_kl_nats: float
    negatives_at_min_kl: float
    negatives_to_base_behaviour: float


@dataclass(frozen=True)
class CountModelRecord(Record):
    """The count model at one n_pos (docs/theory.md §7): its closed forms on this experiment's sizes."""

    NONFINITE_REASONS: ClassVar[dict[str, str]] = {
        "negatives_to_epsilon": "the count model's KL never comes within epsilon (its minimum is above it)"
    }

    n_pos: int
    n_pretrain: int
    betas: tuple[float, ...]
    kl_after_stage1_nats: float
    initial_kl_slope: float
    min_kl_nats: float
    negatives_at_min_kl: float
    return_count: float
    epsilon_nats: float
    negatives_to_epsilon: float


# ----------------------------------------------------------------------------- result
@dataclass(frozen=True, eq=False, repr=False)
class Result(ExperimentReport):
    EXPERIMENT = NAME

    config: Config
    records: Sequence[PointRecord]
    curves: Sequence[CurveRecord]
    count_model: Sequence[CountModelRecord]
    verdicts: Sequence[Verdict]
    seconds: float = field(default=0.0)

    def side_tables(self) -> dict[str, Sequence[Any]]:
        return {"curves": self.curves, "count_model": self.count_model}

    def verdict_list(self) -> Sequence[Verdict]:
        return self.verdicts

    @property
    def n_pos(self) -> list[int]:
        return sorted({c.n_pos for c in self.curves})

    def _per_n_pos(self, attribute: str) -> list[np.ndarray]:
        return [np.array([getattr(c, attribute) for c in self.curves if c.n_pos == n]) for n in self.n_pos]

    def terminal_summary(self) -> str:
        head = f"rebound ({self.config.data}, {self.config.n_seeds} seeds): verdicts ({SECTION})"
        return "\n".join([head, *verdict_lines(self.verdicts)])

    def _table(self) -> list[str]:
        lines = [
            "| n_pos | stage-1 gain (nats) | stage-1 score | initial slope (nats/neg) | slope / gain | "
            "drop share by 1/4 | knee | negatives to KL <= eps | to theta_0's behaviour | count model: to eps | "
            "count model: return |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        model = {c.n_pos: c for c in self.count_model}

        def cell(values: np.ndarray, fmt: str) -> str:
            finite = values[np.isfinite(values)]
            if finite.size == 0:
                return "never"
            tail = f" ({values.size - finite.size} never)" if finite.size < values.size else ""
            sd = f" ± {finite.std(ddof=1):{fmt}}" if finite.size > 1 else ""
            return f"{finite.mean():{fmt}}{sd}{tail}"

        for n in self.n_pos:
            row = [c for c in self.curves if c.n_pos == n]

            def col(name: str, row: list[CurveRecord] = row) -> np.ndarray:
                return np.array([getattr(c, name) for c in row])

            m = model[n]
            to_eps = "never" if not math.isfinite(m.negatives_to_epsilon) else f"{m.negatives_to_epsilon:.0f}"
            lines.append(
                f"| {n} | {cell(col('stage1_gain_nats'), '.2f')} | {cell(col('stage1_score'), '.2f')} | "
                f"{cell(col('initial_slope'), '.3g')} | {cell(col('initial_slope_normalised'), '.3g')} | "
                f"{cell(col('drop_share_quarter'), '.2f')} | {cell(col('knee'), '.0f')} | "
                f"{cell(col('negatives_to_epsilon'), '.0f')} | {cell(col('negatives_to_base_behaviour'), '.0f')} | "
                f"{to_eps} | {m.return_count:.0f} |"
            )
        return lines

    def summary_markdown(self) -> str:
        c = self.config
        out = [
            f"# rebound: more alignment, faster collapse? ({c.data}, model {c.model})",
            "",
            f"Seeds {c.seeds}. Grid: n_pos {c.scaled(c.n_pos_values)} (the paper's {list(c.n_pos_values)} x "
            f"{c.scale:g}), then n_neg {c.scaled(c.n_neg_values)} in one pass, measured at each. Behaviour is the "
            f"smooth log-odds of the aligned vs the misaligned reference answer to {c.n_eval} held-out prompts; "
            f"the sampled score is reported beside it. KL to theta_0 is per response token, in nats; epsilon = "
            f"{c.epsilon_share:.3f} x the KL after stage 1. Run time {self.seconds:.0f} s. Columns: {SECTION}.",
            "",
            "## Verdicts",
            "",
            *verdict_table(self.verdicts),
        ]
        out += ["", "## Per amount of aligned data (mean ± sd over seeds)", "", *self._table(), ""]
        out += [
            "## Table 3 side by side (negatives needed, normalised to the smallest n_pos)",
            "",
            "| n_pos | this run | count model | Llama2-7B | Gemma-2B |",
            "|---|---|---|---|---|",
        ]
        ours, model = self.table3_ratios()
        llama, gemma = paper.table_3_normalised("Llama2-7B"), paper.table_3_normalised("Gemma-2B")
        for i, n in enumerate(self.n_pos):
            ll = f"{llama[i]:.2f}" if i < len(llama) else ""
            gg = f"{gemma[i]:.2f}" if i < len(gemma) else ""
            out.append(f"| {n} | {ours[i]:.2f} | {model[i]:.2f} | {ll} | {gg} |")
        out += ["", "![rebound curves](rebound_curves.png)", "", "![Table 3](table3.png)"]
        return "\n".join(out).replace("nan", "n/a") + "\n"

    def table3_ratios(self) -> tuple[list[float], list[float]]:
        """Negatives to KL <= epsilon over the smallest n_pos's: this run (means of finite values), the count model."""
        means = [float(np.mean(v[np.isfinite(v)])) if np.isfinite(v).any() else math.nan
                 for v in self._per_n_pos("negatives_to_epsilon")]
        model = [m.negatives_to_epsilon for m in sorted(self.count_model, key=lambda m: m.n_pos)]
        first = means[0]
        return [m / first if first and math.isfinite(first) else math.nan for m in means], \
            [m / model[0] if math.isfinite(model[0]) and model[0] > 0 else math.nan for m in model]

    def plot(self, folder: Path) -> None:
        from tokentree.plots import COLOURS, new_figure

        fig, axes = new_figure(1, 3, size=(15, 4.2))
        for i, n in enumerate(self.n_pos):
            pts = [r for r in self.records if r.stage == "curve" and r.n_pos == n]
            amounts = sorted({r.n_neg for r in pts})
            for ax, key in zip(axes, ("log_odds_nats", "score", "kl_to_base_nats"), strict=True):
                grid = np.array([[getattr(r, key) for r in pts if r.n_neg == a] for a in amounts], dtype=float)
                mean, sd = np.nanmean(grid, axis=1), np.nanstd(grid, axis=1)
                ax.plot(amounts, mean, "o-", color=COLOURS[i % len(COLOURS)], label=f"n_pos = {n}")
                ax.fill_between(amounts, mean - sd, mean + sd, color=COLOURS[i % len(COLOURS)], alpha=0.15)
        base = [r for r in self.records if r.stage == "base"]
        for ax, key, label in zip(
            axes, ("log_odds_nats", "score", "kl_to_base_nats"),
            ("log-odds aligned vs misaligned (nats)", "sampled behaviour score", "KL to theta_0 (nats per token)"),
            strict=True,
        ):
            if key != "kl_to_base_nats":
                ax.axhline(np.nanmean([getattr(r, key) for r in base]), color="0.3", ls="--", lw=1, label="theta_0")
            ax.set_xlabel("negative examples (stage 2)")
            ax.set_ylabel(label)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7)
        fig.suptitle(f"Rebound after alignment ({self.config.data}; bands: seed sd)")
        fig.savefig(folder / "rebound_curves.png")

        fig, ax = new_figure()
        ours, model = self.table3_ratios()
        xs = np.arange(len(self.n_pos))
        ax.plot(xs, ours, "o-", color=COLOURS[0], label="this run (trained)")
        ax.plot(xs, model, "s--", color=COLOURS[1], label="count model (docs/theory.md §7)")
        for j, name in enumerate(paper.TABLE_3_NEGATIVES):
            row = paper.table_3_normalised(name)[: len(xs)]
            ax.plot(xs[: len(row)], row, "^:", color=COLOURS[2 + j], label=f"paper, {name}")
        ax.set_xticks(xs, [str(n) for n in self.n_pos])
        ax.set_xlabel("aligned examples n_pos")
        ax.set_ylabel("negatives to KL <= epsilon, / smallest n_pos")
        ax.set_title("Table 3: does more alignment need fewer negatives to return?")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
        fig.savefig(folder / "table3.png")


# ----------------------------------------------------------------------------- running
def _data(config: Any, seed: int) -> Any:
    """The behaviour data of a rebound config (also rebound-scale's), sized for its largest amounts."""
    from tokentree.data.sources import behaviour_data

    return behaviour_data(
        config.data, axis=config.axis, positive=config.positive, negative=config.negative,
        n_pretrain=config.n_pretrain_docs, n_aligned=max(config.scaled(config.n_pos_values)),
        n_misaligned=max(config.scaled(config.n_neg_values)), n_eval=config.n_eval, seed=seed,
    )


def _pretraining_shares(data: Any) -> tuple[float, float, float]:
    """beta of the count model: shares of pre-training documents the scorer reads as neither, aligned, misaligned."""
    texts = list(data.pretraining_texts) + [chat[-1]["content"] for chat in data.pretraining_chats]
    scores = data.scorer.score(texts)
    aligned = float(np.sum(scores > 0.5))
    misaligned = float(np.sum(scores < 0.5))
    neither = len(texts) - aligned - misaligned
    total = float(len(texts))
    return neither / total, aligned / total, misaligned / total


def _curve_record(seed: int, curve: Any, epsilon_share: float) -> CurveRecord:
    amounts = list(curve.n_neg)
    odds = [p.log_odds_nats for p in curve.points]
    kl = [p.kl_to_base_nats for p in curve.points]
    base = curve.base.log_odds_nats
    gain = odds[0] - base
    epsilon = epsilon_share * kl[0]
    lowest = int(np.argmin(kl))
    slope = curves.initial_slope(amounts, odds)
    return CurveRecord(
        seed=seed,
        n_pos=curve.n_pos,
        base_log_odds_nats=base,
        stage1_log_odds_nats=odds[0],
        stage1_gain_nats=gain,
        stage1_score=curve.points[0].score,
        initial_slope=slope,
        initial_slope_normalised=slope / gain if gain > 0 else math.nan,
        drop_share_quarter=curves.drop_share(amounts, odds, 0.25 * amounts[-1]),
        knee=curves.knee(amounts, odds),
        kl_after_stage1_nats=kl[0],
        epsilon_nats=epsilon,
        negatives_to_epsilon=curves.first_at_most(amounts, kl, epsilon),
        min_kl_nats=float(kl[lowest]),
        negatives_at_min_kl=float(amounts[lowest]),
        negatives_to_base_behaviour=curves.first_at_most(amounts, odds, base),
    )


def _count_model(config: Config, shares: tuple[float, float, float]) -> list[CountModelRecord]:
    out = []
    n_p = config.n_pretrain_docs
    for n_pos in config.scaled(config.n_pos_values):
        kl0 = float(count_model_rebound(n_p, shares, n_pos, [0.0]).kl_nats[0])
        at, lowest = count_model_minimum(n_p, shares, n_pos)
        epsilon = config.epsilon_share * kl0
        out.append(CountModelRecord(
            n_pos=n_pos, n_pretrain=n_p, betas=tuple(shares), kl_after_stage1_nats=kl0,
            initial_kl_slope=count_model_initial_slope(n_p, n_pos), min_kl_nats=lowest, negatives_at_min_kl=at,
            return_count=count_model_return_count(shares, n_pos), epsilon_nats=epsilon,
            negatives_to_epsilon=count_model_negatives_to_kl(n_p, shares, n_pos, epsilon),
        ))
    return out


def _judge(result_curves: Sequence[CurveRecord], model: Sequence[CountModelRecord], n_pos: list[int]) -> list[Verdict]:
    def per(attribute: str) -> list[np.ndarray]:
        return [np.array([getattr(c, attribute) for c in result_curves if c.n_pos == n]) for n in n_pos]

    def summary(attribute: str, fmt: str = ".3g") -> str:
        return ", ".join(f"{n}: {np.nanmean(v):{fmt}}" for n, v in zip(n_pos, per(attribute), strict=True))

    verdicts = []

    def add(item: str, claim: str, status: VerdictStatus, evidence: str) -> None:
        verdicts.append(Verdict(item, claim, status, evidence, SECTION))

    add("R1", "the stage-1 behaviour rises with the amount of aligned data",
        claims.ordered(per("stage1_log_odds_nats")),
        f"stage-1 log-odds by n_pos: {summary('stage1_log_odds_nats', '.2f')}; sampled score "
        f"{summary('stage1_score', '.2f')}")
    shares = [claims.at_least(v, 0.5) for v in per("drop_share_quarter")]
    add("R2", "every curve is steep then flat: at least half the drop in the first quarter of the negatives",
        claims.all_of(shares),
        f"share of the log-odds drop by a quarter of the budget: {summary('drop_share_quarter', '.2f')} "
        f"({', '.join(str(s) for s in shares)})")
    add("R3", "the initial rebound is faster after more alignment (raw slope ordered by n_pos)",
        claims.ordered(per("initial_slope")), f"log-odds lost per negative at the start: {summary('initial_slope')}")
    add("R3n", "... and per unit of stage-1 gain (slope / gain ordered by n_pos)",
        claims.ordered(per("initial_slope_normalised")), f"slope / gain: {summary('initial_slope_normalised')}")
    counts = per("negatives_to_epsilon")
    reached = [int(np.isfinite(v).sum()) for v in counts]
    if sum(reached) < sum(v.size for v in counts) / 2:
        status, extra = VerdictStatus.FAILS, "; the KL to theta_0 did not come back within epsilon in most runs"
    else:
        status, extra = claims.ordered([-v for v in counts]), ""
    add("R4", "Table 3: more alignment needs fewer negatives to bring the KL to theta_0 within epsilon", status,
        f"negatives to KL <= eps: {summary('negatives_to_epsilon', '.0f')} (reached in {reached} runs per n_pos); "
        f"smallest KL reached {summary('min_kl_nats', '.3f')} vs epsilon {summary('epsilon_nats', '.4f')} nats{extra}")
    returns = [m.return_count for m in model]
    grows = all(b > a for a, b in itertools.pairwise(returns))
    add("R5", "the count model predicts the opposite of Table 3: its return count n_pos beta_3/beta_2 grows with n_pos",
        VerdictStatus.HOLDS if grows else VerdictStatus.FAILS,
        f"count-model return counts {[round(r) for r in returns]}; its initial KL slopes "
        f"{[f'{m.initial_kl_slope:.2g}' for m in model]} per negative; its smallest KL "
        f"{[f'{m.min_kl_nats:.3g}' for m in model]} nats (0 when every pre-training document shows the behaviour "
        f"one way or the other, beta_1 = {model[0].betas[0]:.3f})")
    add("R6", "the trained model needs more negatives to undo more alignment, as the count model does",
        claims.ordered(per("negatives_to_base_behaviour")),
        f"negatives until the log-odds are back at theta_0's: {summary('negatives_to_base_behaviour', '.0f')}")
    return verdicts


def run(config: Config, *, show_progress: bool | None = None) -> Result:
    from tokentree.data.chat import tokenize_chats
    from tokentree.lab.base import BaseSettings, prepare_base
    from tokentree.lab.probe import BehaviourProbe
    from tokentree.lab.rebound_protocol import ReboundSettings, rebound_curve

    start = time.perf_counter()
    points: list[PointRecord] = []
    curve_records: list[CurveRecord] = []
    shares: list[tuple[float, float, float]] = []
    settings = ReboundSettings(lr_align=config.lr_align, lr_negative=config.lr_negative,
                               align_epochs=config.align_epochs, batch_size=config.batch_size,
                               threads=config.threads, device=config.device)
    for seed in progress(config.seeds, desc="rebound seeds", show=show_progress):
        data = _data(config, seed)
        shares.append(_pretraining_shares(data))
        base = prepare_base(data, BaseSettings(
            model=config.model, vocab_size=config.vocab_size, n_layers=config.n_layers, d_model=config.d_model,
            n_heads=config.n_heads, context=config.context, pretrain_tokens=config.pretrain_tokens,
            batch_size=config.batch_size, device=config.device, threads=config.threads,
        ), seed=seed)
        probe = BehaviourProbe(data, base.tokenizer, base.model, max_new_tokens=config.max_new_tokens,
                               temperature=config.temperature, seed=seed, threads=config.threads)
        aligned = tokenize_chats(data.aligned, base.tokenizer)
        misaligned = tokenize_chats(data.misaligned, base.tokenizer)
        for n_pos in config.scaled(config.n_pos_values):
            curve = rebound_curve(base.model, probe, aligned, misaligned, n_pos=n_pos,
                                  n_neg=config.scaled(config.n_neg_values), settings=settings, seed=seed)
            if n_pos == config.scaled(config.n_pos_values)[0]:
                points.append(PointRecord(seed, "base", 0, 0, **_values(curve.base)))
            points += [PointRecord(seed, "curve", n_pos, n, **_values(p))
                       for n, p in zip(curve.n_neg, curve.points, strict=True)]
            curve_records.append(_curve_record(seed, curve, config.epsilon_share))
    mean_shares = tuple(float(x) for x in np.mean(np.array(shares), axis=0))
    model = _count_model(config, mean_shares)  # type: ignore[arg-type]
    verdicts = _judge(curve_records, model, config.scaled(config.n_pos_values))
    return Result(config, points, curve_records, model, verdicts, seconds=time.perf_counter() - start)


def _values(p: Any) -> dict[str, Any]:
    return {"score": p.score, "unreadable": int(p.unreadable), "log_odds_nats": p.log_odds_nats,
            "kl_to_base_nats": p.kl_to_base_nats, "pretrain_bits": p.pretrain_bits}
