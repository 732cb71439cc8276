"""rebound: more alignment, faster collapse? The paper's Table 3, on the safety axis (docs/experiments.md §E4r).

Per seed: theta_0; per n_pos, a gentle stage 1 on aligned examples, then misaligned ones in one measured pass
(:mod:`tokentree.lab.rebound_protocol`). The claims read the bounded sampled score and the KL to theta_0 at the
decision positions (:mod:`tokentree.lab.probe`); Table 3's threshold is the seed-to-seed KL floor (two stage-1
runs that differ only in data order). The count model (docs/theory.md §7) is a reference line, not a claim.

    tokentree run rebound                        # synthetic safety, tiny Llama, 8 seeds
    tokentree run rebound --config experiments/rebound-k-sweep.toml
    tokentree run rebound --model smollm2          # tweets, LoRA, no continued pre-training (rebound-smollm2.toml)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tokentree.data.language import AXES
from tokentree.data.sources import DATA_CHOICES, check_source, source_for
from tokentree.framework.config import Checked, bounded, group
from tokentree.framework.report import ExperimentReport, Section
from tokentree.framework.runner import run_cases
from tokentree.framework.tables import Table
from tokentree.framework.verdicts import Verdict
from tokentree.lab.base import BaseSettings
from tokentree.lab.rebound_protocol import (
    CountModelRecord,
    PointRecord,
    ScaledGrid,
    check_pretrain_scales,
    count_model_records,
    initial_drop_rho,
    point_record,
    scaled_grid,
)
from tokentree.lab.regime import TrainingRegime
from tokentree.lab.seeded import SeededTraining
from tokentree.verification import paper, trained
from tokentree.verification.curves import CURVE_TABLE, CurveRecord, normalised_counts, read_curve

__all__ = ["NAME", "Config", "PointRecord", "CurveRecord", "CountModelRecord", "Result", "run"]

NAME = "rebound"
SECTION = "docs/experiments.md §E4r"


@dataclass(frozen=True)
class Config(ScaledGrid, SeededTraining, Checked):
    """Options of ``tokentree run rebound`` (``[base]``: theta_0); every field: docs/experiments.md §E4r.

    pretrain_scales sweeps theta_0's pre-training tokens (multiples of base.pretrain_tokens), hence k; the
    R-claims are judged at 1. epsilon_share: the old log-odds-KL threshold, a share of the KL after stage 1.
    data "auto": synthetic for the tiny model, tweets for a loaded one (used as pre-trained elsewhere: no
    continued pre-training, so base.pretrain_tokens and pretrain_scales do not apply to it).
    """

    data: str = bounded("auto", choices=DATA_CHOICES)
    axis: str = bounded("safety", choices=AXES)
    positive: str = ""
    negative: str = ""
    seed: int = bounded(0, minimum=0)
    n_seeds: int = bounded(8, minimum=1)
    base: BaseSettings = group(lambda: BaseSettings(pretrain_tokens=1_500_000, device="auto"))
    n_pretrain_docs: int = bounded(12000, minimum=1)
    n_pos_values: tuple[int, ...] = paper.TABLE_3_N_POSITIVE
    n_neg_values: tuple[int, ...] = paper.REBOUND_NEGATIVES
    scale: float = 0.05
    pretrain_scales: tuple[float, ...] = ()
    lr_align: float = bounded(1e-4, minimum=0.0, exclusive=True)
    lr_negative: float = bounded(1e-4, minimum=0.0, exclusive=True)
    warmup_steps: int = bounded(5, minimum=0)
    align_epochs: int = bounded(1, minimum=1)
    batch_size: int = bounded(16, minimum=1)
    n_eval: int = bounded(64, minimum=1)
    max_new_tokens: int = bounded(40, minimum=1)
    temperature: float = bounded(1.0, minimum=0.0, exclusive=True)
    epsilon_share: float = bounded(paper.TABLE_3_KL_THRESHOLD / 0.24, minimum=0.0, maximum=1.0, exclusive=True)

    def validate(self) -> None:
        check_source(self.source, self.positive, self.negative)
        scaled_grid(self.n_pos_values, self.n_neg_values, self.scale)
        check_pretrain_scales(self.pretrain_scales, self.levels, self.base.model)

    @property
    def source(self) -> str:  # "auto" resolved for base.model
        return source_for(self.data, self.base.model)

    @property
    def judged(self) -> int:  # the pre-training budget the R-claims are judged at (0: a loaded model, none here)
        return self.base.pretrain_tokens if self.base.model == "tiny" else 0

    @property
    def levels(self) -> list[int]:
        """theta_0's pre-training token budgets run (``pretrain_scales`` x base.pretrain_tokens), increasing."""
        return sorted({max(1, round(s * self.judged)) if self.judged else 0 for s in self.pretrain_scales or (1.0,)})

    @classmethod
    def quick(cls) -> Config:
        """Two seeds, a small grid and model: seconds, minutes with ``--model smollm2``; outside the premise."""
        return cls(n_seeds=2, scale=0.02, n_pos_values=(1000, 2000), n_neg_values=(0, 100, 200),
                   n_pretrain_docs=1000, n_eval=8, max_new_tokens=16, lr_align=1e-3, lr_negative=1e-3, warmup_steps=1,
                   base=BaseSettings(pretrain_tokens=30_000, d_model=32, n_heads=2, vocab_size=600, device="auto"))


# ----------------------------------------------------------------------------- wiring
def rebound_data(config: Any, seed: int, source: str = "", **options: Any) -> Any:
    """The behaviour data of a rebound config (also rebound-scale's), sized for its largest amounts."""
    from tokentree.data.sources import behaviour_data

    return behaviour_data(source or config.data, axis=config.axis, positive=config.positive, negative=config.negative,
                          n_pretrain=config.n_pretrain_docs, n_aligned=max(config.scaled(config.n_pos_values)),
                          n_misaligned=max(config.scaled(config.n_neg_values)), n_eval=config.n_eval, seed=seed,
                          **options)


def one_seed(config: Config, seed: int) -> dict[str, list[Any]]:
    """For every pre-training budget: theta_0, the KL floor, a rebound curve per n_pos; the count model's shares."""
    from tokentree.bridge.hf import pretraining_elsewhere
    from tokentree.data.chat import tokenize_chats
    from tokentree.lab.base import prepare_base
    from tokentree.lab.probe import BehaviourProbe
    from tokentree.lab.rebound_protocol import ReboundSettings, pretraining_shares, rebound_curve, seed_floor
    from tokentree.lab.regime import training_regime

    settings = ReboundSettings(**{k: getattr(config, k) for k in ReboundSettings.OPTIONS},
                               threads=config.base.threads, device=config.base.device)
    data, n_pos_values = rebound_data(config, seed, config.source), config.scaled(config.n_pos_values)
    elsewhere = pretraining_elsewhere(config.base.model)  # tokens; 0 for a model pre-trained here (or unknown)
    out: dict[str, list[Any]] = {"records": [], "curves": [], "regime": [], "shares": [pretraining_shares(data)]}
    for tokens in config.levels:
        base = prepare_base(data, dataclasses.replace(config.base, pretrain_tokens=tokens), seed=seed)
        probe = BehaviourProbe(data, base.tokenizer, base.model, max_new_tokens=config.max_new_tokens, seed=seed,
                               temperature=config.temperature, threads=config.base.threads,
                               n_pretrain_eval=config.n_eval)
        aligned = tokenize_chats(data.aligned, base.tokenizer)
        misaligned = tokenize_chats(data.misaligned, base.tokenizer)
        floor = seed_floor(base.model, probe, aligned, n_pos=n_pos_values[0], settings=settings, seed=seed)
        for i, n_pos in enumerate(n_pos_values):
            curve = rebound_curve(base.model, probe, aligned, misaligned, n_pos=n_pos,
                                  n_neg=config.scaled(config.n_neg_values), settings=settings, seed=seed)
            out["records"] += [point_record(seed, "base", 0, 0, curve.base, tokens)] if i == 0 else []
            out["records"] += [point_record(seed, "curve", n_pos, n, p, tokens)
                               for n, p in zip(curve.n_neg, curve.points, strict=True)]
            out["curves"].append(read_curve(seed, curve, config.epsilon_share, floor=floor, pretrain_tokens=tokens))
        out["regime"].append(training_regime(
            pretrain_tokens=elsewhere or base.pretrain_tokens, pretrained_elsewhere=elsewhere > 0,
            behaviour_tokens=aligned.head(n_pos_values[-1]).n_target_tokens,
            transfer_tokens=misaligned.head(config.scaled(config.n_neg_values)[-1]).n_target_tokens,
            pretrain_losses=base.convergence_losses, fine_tune_lr=max(config.lr_align, config.lr_negative),
            warmup_steps=config.warmup_steps, alignment_kl_nats=out["curves"][-1].kl_after_stage1_nats, warn=False))
    return out


# ----------------------------------------------------------------------------- claims
#: (item, claim, CurveRecord column, direction along n_pos, gated on reaching the floor) of R2-R6 (R5 is a line).
ORDERINGS = (
    ("R2", "every curve is steep then flat: more than a quarter of the score's drop (a straight line's share) in the "
     "first quarter of the negatives", "", "", False),
    ("R3", "the initial rebound is faster after more alignment (score lost per negative at the start increases with "
     "n_pos)", "score_initial_slope", "greater", False),
    ("R4", "Table 3: more alignment needs fewer negatives to bring the decision KL back within the seed-to-seed floor",
     "negatives_to_floor", "less", True),
    ("R6", "the trained model needs more negatives to undo more alignment, as the count model does (negatives until "
     "the score is back at theta_0's increase with n_pos)", "negatives_to_base_score", "greater", False),
)


def judge(curves: Sequence[CurveRecord], regimes: Sequence[TrainingRegime], n_pos: list[int]) -> list[Verdict]:
    """R1-R4 and R6 on the sampled score and the decision KL (docs/experiments.md §E4r); seeds are the unit."""
    seeds = sorted({c.seed for c in curves})

    def matrix(key: str) -> np.ndarray:
        return np.array([[next(getattr(c, key) for c in curves if (c.seed, c.n_pos) == (s, n)) for n in n_pos]
                         for s in seeds], dtype=float)

    regime, by_n = trained.premise_problems(regimes), lambda c: f"n_pos {c.n_pos}"
    r1 = trained.cells_verdict("R1", "stage 1 took: the sampled score after stage 1 is above theta_0's, at every n_pos",
                               trained.cells_of(curves, "stage1_score_gain", by_n), SECTION, untestable=regime)
    untestable = "; ".join(p for p in (regime, "" if r1.status == "holds" else "stage 1 did not measurably take "
                                       "(R1)") if p)
    never = "" if np.isfinite(matrix("negatives_to_floor")).any() else "the decision KL never came within the floor"
    r2 = trained.cells_verdict("R2", ORDERINGS[0][1], trained.cells_of(curves, "score_drop_share_quarter", by_n),
                               SECTION, untestable=untestable, null=0.25)
    return [r1, r2, *(trained.order_verdict(item, claim, n_pos, matrix(key), SECTION, alternative=alternative,
                                            untestable="; ".join(p for p in (untestable, extra and never) if p))
                      for item, claim, key, alternative, extra in ORDERINGS[1:])]


def judge_sweep(curves: Sequence[CurveRecord], regimes: Sequence[TrainingRegime], levels: Sequence[int],
                n_pos: list[int]) -> list[Verdict]:
    """K2 per pre-training budget (rho > 0 over seeds) and K2-trend: rho grows with log k."""
    k, untestable = trained.level_regimes(regimes, len(levels))
    return trained.sweep_verdicts("K2", "more alignment, faster initial rebound (Spearman rho of the score drop on "
                                  "n_pos > 0)", k, initial_drop_rho(curves, sorted({c.seed for c in curves}), levels,
                                                                    n_pos), SECTION, untestable=untestable, unit="")


# ----------------------------------------------------------------------------- report
@dataclass(frozen=True, eq=False, repr=False)
class Result(ExperimentReport):
    EXPERIMENT = NAME
    PLOTS = ("rebound_curves", "table3", "rebound_vs_k")
    CLAIMS_SECTION = SECTION

    config: Config
    records: Sequence[PointRecord]
    curves: Sequence[CurveRecord]
    count_model: Sequence[CountModelRecord]
    regime: Sequence[TrainingRegime]
    verdicts: Sequence[Verdict]
    seconds: float = field(default=0.0)

    def side_tables(self) -> dict[str, Sequence[Any]]:
        return {"curves": self.curves, "count_model": self.count_model, "regime": self.regime}

    @property
    def n_pos(self) -> list[int]:
        return sorted({c.n_pos for c in self.curves})

    def _at(self) -> list[CurveRecord]:
        return [c for c in self.curves if c.pretrain_tokens == self.config.judged]

    def table3_ratios(self) -> tuple[list[float], list[float]]:
        """Negatives to the KL floor over the smallest n_pos's (means of finite values); the count model's to its
        epsilon (:func:`~tokentree.verification.curves.normalised_counts`)."""
        return normalised_counts([[c.negatives_to_floor for c in self._at() if c.n_pos == n] for n in self.n_pos]), \
            normalised_counts([[m.negatives_to_epsilon] for m in sorted(self.count_model, key=lambda m: m.n_pos)])

    def title(self) -> str:
        return f"rebound: more alignment, faster collapse? ({self.config.source}, model {self.config.base.model})"

    def intro(self) -> str:
        from tokentree.bridge.hf import loaded_model_words

        c = self.config
        words = self.regime[-1].words if self.regime else ""
        axis = c.axis if c.source == "synthetic" else "sentiment"
        return (f"{loaded_model_words(c.base.model)}Seeds {c.seeds}; axis {axis}. Grid: n_pos "
                f"{c.scaled(c.n_pos_values)} (the paper's {list(c.n_pos_values)} x {c.scale:g}), then n_neg "
                f"{c.scaled(c.n_neg_values)} in one pass; lr {c.lr_align:g} / {c.lr_negative:g} with {c.warmup_steps} "
                f"warmup steps. The claims read the sampled score on {c.n_eval} held-out prompts and the KL to "
                f"theta_0 at the decision positions; the threshold is the seed-to-seed floor. Regime: {words}. Run "
                f"time {self.seconds:.0f} s. Columns: {SECTION}.")

    def sections(self) -> Sequence[Section]:
        model = {m.n_pos: m for m in self.count_model}
        rows = [{"n_pos": n, "curves": [c for c in self._at() if c.n_pos == n], "model": model[n]}
                for n in self.n_pos]
        table3 = paper.table_3_rows(self.n_pos, *self.table3_ratios())
        return [(CURVE_TABLE, rows), (paper.TABLE_3_SIDE_BY_SIDE, table3), (trained.REGIME_TABLE, self.regime)]

    def terminal_tables(self) -> Sequence[tuple[Table, Sequence[Any]]]:
        return [(trained.REGIME_TABLE, self.regime)]

    def plot(self, folder: Path) -> None:
        from tokentree.plots.rebound import plot_rebound_curves, plot_table3
        from tokentree.plots.resistance import plot_effect_vs_k

        c = self.config
        panels = (("score", "sampled behaviour score"), ("decision_kl_nats", "KL to theta_0 at decision positions"),
                  ("log_odds_nats", "log-odds aligned vs misaligned (nats)"))
        plot_rebound_curves([r for r in self.records if r.pretrain_tokens == c.judged], self.n_pos,
                            panels, base_line=("log_odds_nats", "score"),
                            title=f"Rebound after alignment ({c.source}, {c.axis}; bands: seed sd)",
                            path=folder / "rebound_curves.png")
        ours, counted = self.table3_ratios()
        plot_table3(self.n_pos, ours, counted, {name: paper.table_3_normalised(name) for name in
                                                paper.TABLE_3_NEGATIVES},
                    ylabel="negatives to the KL floor, / smallest n_pos", path=folder / "table3.png")
        plot_effect_vs_k(np.array([r.k for r in self.regime]).reshape(len(c.seeds), len(c.levels)),
                         initial_drop_rho(self.curves, c.seeds, c.levels, self.n_pos),
                         ylabel="Spearman rho: initial score drop on n_pos",
                         testable=trained.level_testable(self.verdicts, "K2"), path=folder / "rebound_vs_k.png")


def run(config: Config, *, show_progress: bool | None = None) -> Result:
    runs = run_cases(config.seeds, lambda seed: one_seed(config, seed), desc="rebound seeds", show=show_progress)
    t, n_pos = runs.tables, config.scaled(config.n_pos_values)
    shares = tuple(float(x) for x in np.mean(np.array(t["shares"]), axis=0))
    model = count_model_records(config.n_pretrain_docs, shares, n_pos, config.epsilon_share)  # type: ignore[arg-type]
    at = config.levels.index(config.judged)
    judged = [c for c in t["curves"] if c.pretrain_tokens == config.judged]
    verdicts = judge(judged, t["regime"][at::len(config.levels)], n_pos)
    if len(config.levels) > 1:
        verdicts += judge_sweep(t["curves"], t["regime"], config.levels, n_pos)
    return Result(config, t["records"], t["curves"], model, t["regime"], verdicts, seconds=runs.seconds)
