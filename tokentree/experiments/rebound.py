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
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from tokentree.data.language import AXES
from tokentree.data.sources import SOURCES, check_source
from tokentree.framework.aggregate import mean_sd_text
from tokentree.framework.config import Checked, bounded, group
from tokentree.framework.report import ExperimentReport, Section
from tokentree.framework.runner import run_cases, seed_list
from tokentree.framework.tables import Column, Table
from tokentree.framework.verdicts import Verdict, VerdictStatus
from tokentree.infra.results import Record
from tokentree.lab.base import BaseSettings
from tokentree.lab.rebound_protocol import CountModelRecord, count_model_records, scaled_amounts, scaled_grid
from tokentree.verification import claims, paper
from tokentree.verification.curves import CurveRecord, read_curve

__all__ = ["NAME", "Config", "PointRecord", "CurveRecord", "CountModelRecord", "Result", "run"]

NAME = "rebound"
SECTION = "docs/experiments.md §E4r"


@dataclass(frozen=True)
class Config(Checked):
    """Options of ``tokentree run rebound``; every field can be set in a TOML file (``[base]`` for theta_0).

    data, axis, positive, negative
        "synthetic" (the behaviour language's ``axis``), "tweets", or "files" (the JSONL files
        ``positive`` and ``negative`` of prompt/response pairs or chats).
    base, n_pretrain_docs
        theta_0 (:class:`~tokentree.lab.base.BaseSettings`: model, shape, pre-training tokens, device,
        threads) and its pre-training documents.
    n_pos_values, n_neg_values, scale
        The paper's grid (aligned examples; negatives after them), multiplied by ``scale``.
    lr_align, lr_negative, align_epochs, batch_size
        The two fine-tuning stages.
    n_eval, max_new_tokens, temperature
        Evaluation prompts (each with an aligned and a misaligned reference) and sampling.
    epsilon_share
        The KL threshold of the Table 3 analogue, as a share of the KL right after stage 1:
        the paper's 0.01 against its 0.21-0.27 is about 0.042.
    """

    data: str = bounded("synthetic", choices=SOURCES)
    axis: str = bounded("sentiment", choices=AXES)
    positive: str = ""
    negative: str = ""
    seed: int = bounded(0, minimum=0)
    n_seeds: int = bounded(5, minimum=1)
    base: BaseSettings = group(lambda: BaseSettings(pretrain_tokens=150_000, device="auto"))  # noqa: RUF009
    n_pretrain_docs: int = bounded(4000, minimum=1)
    n_pos_values: tuple[int, ...] = paper.TABLE_3_N_POSITIVE
    n_neg_values: tuple[int, ...] = paper.REBOUND_NEGATIVES
    scale: float = 0.2
    lr_align: float = bounded(1e-3, minimum=0.0, exclusive=True)
    lr_negative: float = bounded(1e-3, minimum=0.0, exclusive=True)
    align_epochs: int = bounded(1, minimum=1)
    batch_size: int = bounded(16, minimum=1)
    n_eval: int = bounded(64, minimum=1)
    max_new_tokens: int = bounded(40, minimum=1)
    temperature: float = bounded(1.0, minimum=0.0, exclusive=True)
    epsilon_share: float = bounded(paper.TABLE_3_KL_THRESHOLD / 0.24, minimum=0.0, maximum=1.0, exclusive=True)

    def validate(self) -> None:
        check_source(self.data, self.positive, self.negative)
        scaled_grid(self.n_pos_values, self.n_neg_values, self.scale)

    @property
    def seeds(self) -> list[int]:
        return seed_list(self.seed, self.n_seeds)

    def scaled(self, values: Sequence[int]) -> list[int]:
        """``values`` (n_pos_values or n_neg_values) times ``scale``, rounded."""
        return scaled_amounts(values, self.scale)

    @classmethod
    def quick(cls) -> Config:
        """Two seeds, a tenth of the default grid and a small model: about half a minute."""
        return cls(n_seeds=2, scale=0.02, n_pretrain_docs=1000, n_eval=24, max_new_tokens=24,
                   base=BaseSettings(pretrain_tokens=30_000, d_model=32, n_heads=2, vocab_size=600, device="auto"))


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


# ----------------------------------------------------------------------------- wiring
def _data(config: Any, seed: int) -> Any:
    """The behaviour data of a rebound config (also rebound-scale's), sized for its largest amounts."""
    from tokentree.data.sources import behaviour_data

    return behaviour_data(
        config.data, axis=config.axis, positive=config.positive, negative=config.negative,
        n_pretrain=config.n_pretrain_docs, n_aligned=max(config.scaled(config.n_pos_values)),
        n_misaligned=max(config.scaled(config.n_neg_values)), n_eval=config.n_eval, seed=seed,
    )


def _point(seed: int, stage: str, n_pos: int, n_neg: int, p: Any) -> PointRecord:
    return PointRecord(seed, stage, n_pos, n_neg, p.score, int(p.unreadable), p.log_odds_nats, p.kl_to_base_nats,
                       p.pretrain_bits)


def one_seed(config: Config, seed: int) -> dict[str, list[Any]]:
    """theta_0 of one seed and a rebound curve for every n_pos; the pre-training shares for the count model."""
    from tokentree.data.chat import tokenize_chats
    from tokentree.lab.base import prepare_base
    from tokentree.lab.probe import BehaviourProbe
    from tokentree.lab.rebound_protocol import ReboundSettings, pretraining_shares, rebound_curve

    settings = ReboundSettings(lr_align=config.lr_align, lr_negative=config.lr_negative,
                               align_epochs=config.align_epochs, batch_size=config.batch_size,
                               threads=config.base.threads, device=config.base.device)
    data = _data(config, seed)
    base = prepare_base(data, config.base, seed=seed)
    probe = BehaviourProbe(data, base.tokenizer, base.model, max_new_tokens=config.max_new_tokens,
                           temperature=config.temperature, seed=seed, threads=config.base.threads)
    aligned, misaligned = tokenize_chats(data.aligned, base.tokenizer), tokenize_chats(data.misaligned, base.tokenizer)
    points: list[PointRecord] = []
    read: list[CurveRecord] = []
    for i, n_pos in enumerate(config.scaled(config.n_pos_values)):
        curve = rebound_curve(base.model, probe, aligned, misaligned, n_pos=n_pos,
                              n_neg=config.scaled(config.n_neg_values), settings=settings, seed=seed)
        points += [_point(seed, "base", 0, 0, curve.base)] if i == 0 else []
        points += [_point(seed, "curve", n_pos, n, p) for n, p in zip(curve.n_neg, curve.points, strict=True)]
        read.append(read_curve(seed, curve, config.epsilon_share))
    return {"records": points, "curves": read, "shares": [pretraining_shares(data)]}


# ----------------------------------------------------------------------------- claims
def judge(curves: Sequence[CurveRecord], model: Sequence[CountModelRecord], n_pos: list[int]) -> list[Verdict]:
    """R1-R6 (docs/experiments.md §E4r)."""
    def per(attribute: str) -> list[np.ndarray]:
        return [np.array([getattr(c, attribute) for c in curves if c.n_pos == n]) for n in n_pos]

    def means(attribute: str) -> dict[str, float]:
        return {f"n_pos_{n}": float(np.nanmean(v)) for n, v in zip(n_pos, per(attribute), strict=True)}

    def summary(attribute: str, fmt: str = ".3g") -> str:
        return ", ".join(f"{n}: {np.nanmean(v):{fmt}}" for n, v in zip(n_pos, per(attribute), strict=True))

    out = []

    def add(item: str, claim: str, status: VerdictStatus, evidence: str, values: dict[str, float]) -> None:
        out.append(Verdict(item, claim, status, evidence, SECTION, values))

    add("R1", "the stage-1 behaviour rises with the amount of aligned data",
        claims.ordered(per("stage1_log_odds_nats")),
        f"stage-1 log-odds by n_pos: {summary('stage1_log_odds_nats', '.2f')}; sampled score "
        f"{summary('stage1_score', '.2f')}", means("stage1_log_odds_nats"))
    shares = [claims.at_least(v, 0.5) for v in per("drop_share_quarter")]
    add("R2", "every curve is steep then flat: at least half the drop in the first quarter of the negatives",
        claims.all_of(shares), f"share of the log-odds drop by a quarter of the budget: "
        f"{summary('drop_share_quarter', '.2f')} ({', '.join(str(s) for s in shares)})",
        {**means("drop_share_quarter"), "threshold": 0.5})
    add("R3", "the initial rebound is faster after more alignment (raw slope ordered by n_pos)",
        claims.ordered(per("initial_slope")), f"log-odds lost per negative at the start: {summary('initial_slope')}",
        means("initial_slope"))
    add("R3n", "... and per unit of stage-1 gain (slope / gain ordered by n_pos)",
        claims.ordered(per("initial_slope_normalised")), f"slope / gain: {summary('initial_slope_normalised')}",
        means("initial_slope_normalised"))
    counts = per("negatives_to_epsilon")
    reached = [int(np.isfinite(v).sum()) for v in counts]
    if sum(reached) < sum(v.size for v in counts) / 2:
        status, extra = VerdictStatus.FAILS, "; the KL to theta_0 did not come back within epsilon in most runs"
    else:
        status, extra = claims.ordered([-v for v in counts]), ""
    add("R4", "Table 3: more alignment needs fewer negatives to bring the KL to theta_0 within epsilon", status,
        f"negatives to KL <= eps: {summary('negatives_to_epsilon', '.0f')} (reached in {reached} runs per n_pos); "
        f"smallest KL reached {summary('min_kl_nats', '.3f')} vs epsilon {summary('epsilon_nats', '.4f')} nats{extra}",
        {**{f"reached_{n}": float(r) for n, r in zip(n_pos, reached, strict=True)}, **means("min_kl_nats")})
    returns = [m.return_count for m in model]
    grows = all(b > a for a, b in itertools.pairwise(returns))
    add("R5", "the count model predicts the opposite of Table 3: its return count n_pos beta_3/beta_2 grows with n_pos",
        VerdictStatus.HOLDS if grows else VerdictStatus.FAILS,
        f"count-model return counts {[round(r) for r in returns]}; its initial KL slopes "
        f"{[f'{m.initial_kl_slope:.2g}' for m in model]} per negative; its smallest KL "
        f"{[f'{m.min_kl_nats:.3g}' for m in model]} nats (0 when every pre-training document shows the behaviour "
        f"one way or the other, beta_1 = {model[0].betas[0]:.3f})",
        {f"return_count_{m.n_pos}": m.return_count for m in model})
    add("R6", "the trained model needs more negatives to undo more alignment, as the count model does",
        claims.ordered(per("negatives_to_base_behaviour")),
        f"negatives until the log-odds are back at theta_0's: {summary('negatives_to_base_behaviour', '.0f')}",
        means("negatives_to_base_behaviour"))
    return out


# ----------------------------------------------------------------------------- report
def _cell(key: str, fmt: str) -> Any:
    def text(row: dict[str, Any]) -> str:
        values = np.array([getattr(c, key) for c in row["curves"]])
        finite = values[np.isfinite(values)]
        never = f" ({values.size - finite.size} never)" if 0 < finite.size < values.size else ""
        return mean_sd_text(finite, fmt, missing="never") + never
    return text


CURVE_TABLE = Table("per_n_pos", "Per amount of aligned data (mean ± sd over seeds)", [
    Column("n_pos"), Column("gain", "stage-1 gain (nats)", value=_cell("stage1_gain_nats", ".2f")),
    Column("score", "stage-1 score", value=_cell("stage1_score", ".2f")),
    Column("slope", "initial slope (nats/neg)", value=_cell("initial_slope", ".3g")),
    Column("slope_gain", "slope / gain", value=_cell("initial_slope_normalised", ".3g")),
    Column("drop", "drop share by 1/4", value=_cell("drop_share_quarter", ".2f")),
    Column("knee", value=_cell("knee", ".0f")),
    Column("to_eps", "negatives to KL <= eps", value=_cell("negatives_to_epsilon", ".0f")),
    Column("to_base", "to theta_0's behaviour", value=_cell("negatives_to_base_behaviour", ".0f")),
    Column("model_eps", "count model: to eps", value=lambda row: "never" if not math.isfinite(
        row["model"].negatives_to_epsilon) else f"{row['model'].negatives_to_epsilon:.0f}"),
    Column("model_return", "count model: return", value=lambda row: f"{row['model'].return_count:.0f}"),
])
TABLE3 = Table("table3", "Table 3 side by side (negatives needed, normalised to the smallest n_pos)", [
    Column("n_pos"), Column("ours", "this run", ".2f"), Column("model", "count model", ".2f"),
    Column("llama", "Llama2-7B"), Column("gemma", "Gemma-2B"),
])


@dataclass(frozen=True, eq=False, repr=False)
class Result(ExperimentReport):
    EXPERIMENT = NAME
    PLOTS = ("rebound_curves", "table3")
    CLAIMS_SECTION = SECTION

    config: Config
    records: Sequence[PointRecord]
    curves: Sequence[CurveRecord]
    count_model: Sequence[CountModelRecord]
    verdicts: Sequence[Verdict]
    seconds: float = field(default=0.0)

    def side_tables(self) -> dict[str, Sequence[Any]]:
        return {"curves": self.curves, "count_model": self.count_model}

    @property
    def n_pos(self) -> list[int]:
        return sorted({c.n_pos for c in self.curves})

    def table3_ratios(self) -> tuple[list[float], list[float]]:
        """Negatives to KL <= epsilon over the smallest n_pos's: this run (means of finite values), the count model."""
        means = []
        for n in self.n_pos:
            v = np.array([c.negatives_to_epsilon for c in self.curves if c.n_pos == n])
            means.append(float(np.mean(v[np.isfinite(v)])) if np.isfinite(v).any() else math.nan)
        model = [m.negatives_to_epsilon for m in sorted(self.count_model, key=lambda m: m.n_pos)]
        first = means[0]
        return [m / first if first and math.isfinite(first) else math.nan for m in means], \
            [m / model[0] if math.isfinite(model[0]) and model[0] > 0 else math.nan for m in model]

    def title(self) -> str:
        return f"rebound: more alignment, faster collapse? ({self.config.data}, model {self.config.base.model})"

    def intro(self) -> str:
        c = self.config
        return (f"Seeds {c.seeds}. Grid: n_pos {c.scaled(c.n_pos_values)} (the paper's {list(c.n_pos_values)} x "
                f"{c.scale:g}), then n_neg {c.scaled(c.n_neg_values)} in one pass, measured at each. Behaviour is the "
                f"smooth log-odds of the aligned vs the misaligned reference answer to {c.n_eval} held-out prompts; "
                f"the sampled score is reported beside it. KL to theta_0 is per response token, in nats; epsilon = "
                f"{c.epsilon_share:.3f} x the KL after stage 1. Run time {self.seconds:.0f} s. Columns: {SECTION}.")

    def sections(self) -> Sequence[Section]:
        model = {m.n_pos: m for m in self.count_model}
        rows = [{"n_pos": n, "curves": [c for c in self.curves if c.n_pos == n], "model": model[n]}
                for n in self.n_pos]
        ours, counted = self.table3_ratios()
        llama, gemma = paper.table_3_normalised("Llama2-7B"), paper.table_3_normalised("Gemma-2B")
        table3 = [{"n_pos": n, "ours": ours[i], "model": counted[i],
                   "llama": f"{llama[i]:.2f}" if i < len(llama) else "",
                   "gemma": f"{gemma[i]:.2f}" if i < len(gemma) else ""} for i, n in enumerate(self.n_pos)]
        return [(CURVE_TABLE, rows), (TABLE3, table3)]

    def plot(self, folder: Path) -> None:
        from tokentree.plots.rebound import plot_rebound_curves, plot_table3

        panels = (("log_odds_nats", "log-odds aligned vs misaligned (nats)"), ("score", "sampled behaviour score"),
                  ("kl_to_base_nats", "KL to theta_0 (nats per token)"))
        plot_rebound_curves(self.records, self.n_pos, panels, base_line=("log_odds_nats", "score"),
                            title=f"Rebound after alignment ({self.config.data}; bands: seed sd)",
                            path=folder / "rebound_curves.png")
        ours, counted = self.table3_ratios()
        plot_table3(self.n_pos, ours, counted, {name: paper.table_3_normalised(name) for name in
                                                paper.TABLE_3_NEGATIVES},
                    ylabel="negatives to KL <= epsilon, / smallest n_pos", path=folder / "table3.png")


def run(config: Config, *, show_progress: bool | None = None) -> Result:
    runs = run_cases(config.seeds, lambda seed: one_seed(config, seed), desc="rebound seeds", show=show_progress)
    shares = tuple(float(x) for x in np.mean(np.array(runs.tables["shares"]), axis=0))
    model = count_model_records(config.n_pretrain_docs, shares, config.scaled(config.n_pos_values),  # type: ignore[arg-type]
                                config.epsilon_share)
    curves = runs.tables["curves"]
    return Result(config, runs.tables["records"], curves, model,
                  judge(curves, model, config.scaled(config.n_pos_values)), seconds=runs.seconds)
