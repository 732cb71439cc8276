"""hooke-trained: the Hooke test on a trained transformer instead of a mixture (docs/experiments.md §E4h).

The Theorem 4.2 scenario with a real model: theta_0 (a tiny Llama pre-trained here on
D_p = D_1 u D_2 u D_3 to a plateau, or a loaded model trained further on it) is fine-tuned
with D_a (drawn like D_2, k = |D_p|/|D_a|) and growing amounts of D_t (drawn like D_3,
l = |D_t|/|D_a|): pooled, every model trained from theta_0 on D_p u D_a u D_t(l), the
theorem's setting; or in sequence, the labelled variant (:mod:`tokentree.lab.hooke_protocol`).
The changes of D_p's, D_a's and D_t's bits per token are set against Theorem 4.2's mixture
on the same data (:mod:`tokentree.lab.mixture_reference`) and judged over seeds, where the
regime meets the premise (:mod:`tokentree.lab.regime`, :mod:`tokentree.verification.trained_hooke`).

    tokentree run hooke-trained                     # synthetic, 8 seeds: long on 2 cores
    tokentree run hooke-trained --quick             # about a minute; its claims are not detectable
    tokentree run hooke-trained --data real --model smollm2 --device auto   # SmolLM2 (slow on a CPU)
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from tokentree.bridge.hf import DEVICES
from tokentree.compression.mixture import Shares
from tokentree.data.sequences import TokenSequences
from tokentree.framework.claims import judge_claims
from tokentree.framework.config import Checked, bounded, group
from tokentree.framework.report import ExperimentReport, Section
from tokentree.framework.runner import run_cases
from tokentree.framework.stats import p_text
from tokentree.framework.tables import Column, Table
from tokentree.framework.verdicts import Verdict
from tokentree.infra.checks import check_choice
from tokentree.infra.errors import InputError
from tokentree.lab import hooke_data, hooke_protocol
from tokentree.lab.base import BaseSettings
from tokentree.lab.hooke_protocol import FineTuneSettings
from tokentree.lab.mixture_reference import mixture_changes
from tokentree.lab.regime import training_regime
from tokentree.lab.seeded import SeededTraining
from tokentree.verification import trained_hooke
from tokentree.verification.trained_hooke import CellSummary, SlopeRecord, TrainedRecord

__all__ = ["NAME", "Config", "TrainedRecord", "CellSummary", "SlopeRecord", "Result", "run"]

NAME = "hooke-trained"
DATA_SOURCES = ("real", "synthetic")


@dataclass(frozen=True)
class Config(SeededTraining, Checked):
    """Options of ``tokentree run hooke-trained``; every field can be set in a TOML file (groups as tables).

    k_values, l_values
        k = |D_p|/|D_a| (responses) and the amounts of D_t, l = |D_t|/|D_a|, after which the
        rates are measured (increasing; l = 0 is always measured).
    n_pretrain, betas, n_seeds, n_eval
        Responses in D_p, the shares of D_1, D_2, D_3 in it; seeds ``seed``, ``seed + 1``, ...;
        responses of D_p scored for gamma_p, drawn in D_p's shares (the l -> 0 ratio is a
        cancellation inside gamma_p, so a sample whose shares drift would swamp it).
    base
        theta_0 (:class:`~tokentree.lab.base.BaseSettings`): "tiny" (a tiny Llama, ``vocab_size`` the BPE
        trained on D_p for real data), or "smollm2", a folder or a hub name (real data only), trained further
        for ``pretrain_tokens`` (warmup, then cosine decay), device and threads.
    finetune
        :class:`~tokentree.lab.hooke_protocol.FineTuneSettings`: "pooled" (the theorem's setting) or
        "sequential" (the labelled variant), lr and warmup.
    theory_depth, theory_discount
        The mixture on the same data: depth and absolute discount of each dataset's tree model.
    synthetic
        :class:`~tokentree.lab.hooke_data.SyntheticSettings` of the synthetic sources.
    """

    data: str = bounded("synthetic", choices=DATA_SOURCES)
    seed: int = bounded(0, minimum=0)
    n_seeds: int = bounded(8, minimum=1)
    k_values: tuple[float, ...] = bounded((100.0, 300.0, 1000.0), minimum=1.0, exclusive=True)
    l_values: tuple[float, ...] = bounded((0.2, 0.5, 1.0), minimum=0.0, exclusive=True)
    n_pretrain: int = bounded(5000, minimum=3)
    betas: tuple[float, ...] = (0.6, 0.2, 0.2)
    n_eval: int = bounded(600, minimum=1)
    theory_depth: int = bounded(3, minimum=1)
    theory_discount: float = bounded(0.75, minimum=0.0, maximum=0.999999)
    # group() is dataclasses.field(default_factory=...): one instance per config, nothing shared
    base: BaseSettings = group(lambda: BaseSettings(vocab_size=2048, pretrain_tokens=400_000, device="auto"))
    finetune: FineTuneSettings = group(FineTuneSettings)
    synthetic: hooke_data.SyntheticSettings = group(hooke_data.SyntheticSettings)
    #: --quick with a loaded model: real data, a short further pre-training, one k, in sequence (minutes on a CPU)
    QUICK_LOADED: ClassVar[dict[str, Any]] = {"data": "real", "n_pretrain": 200, "n_eval": 40, "k_values": (10.0,),
                                              "l_values": (0.5, 1.0), "pretrain_tokens": 3000, "protocol": "sequential"}

    def validate(self) -> None:
        if any(b <= a for a, b in itertools.pairwise(self.l_values)):
            raise InputError(f"l_values must be positive and increasing (l = 0 is always measured); got "
                             f"{list(self.l_values)}")
        Shares.of(self.betas, positive=True)
        check_choice(self.base.device, "base.device", DEVICES)
        if self.base.d_model % self.base.n_heads:
            raise InputError(f"base.d_model ({self.base.d_model}) must be a multiple of base.n_heads "
                             f"({self.base.n_heads})")
        if self.base.model != "tiny" and self.data != "real":
            raise InputError(f"model {self.base.model!r} needs data = 'real': synthetic data are token ids, not text")
        if self.n_pretrain / max(self.k_values) * self.l_values[0] < 1:
            raise InputError(f"n_pretrain = {self.n_pretrain} leaves |D_a| = {self.n_pretrain / max(self.k_values):g} "
                             f"at k = {max(self.k_values):g}, and l = {self.l_values[0]} of it is less than one "
                             "response; raise n_pretrain or the smallest of l_values, or lower the largest of k_values")

    @classmethod
    def quick(cls) -> Config:
        """A small synthetic run (about a minute; 2 seeds and k = 10: its claims are not detectable)."""
        return cls(n_seeds=2, k_values=(10.0, 100.0), l_values=(0.2, 1.0), n_pretrain=1000, n_eval=200,
                   base=BaseSettings(vocab_size=512, d_model=32, n_heads=2, pretrain_tokens=50_000, device="auto"),
                   finetune=FineTuneSettings(align_epochs=2))


# ----------------------------------------------------------------------------- wiring
def _model_and_data(config: Config, seed: int) -> tuple[Any, hooke_data.HookeData]:
    """The model to pre-train (a seeded tiny Llama, or a loaded one) and this seed's data."""
    from tokentree.bridge.hf import load_model
    from tokentree.bridge.tiny import TinySpec, tiny_llama

    b, sizes = config.base, hooke_data.hooke_sizes(config.n_pretrain, config.betas, config.k_values, config.l_values)
    if b.model != "tiny":
        model, tokenizer = load_model(b.model, device=b.device)
        return model, hooke_data.real_hooke_data(sizes, seed=seed, bpe_vocab=b.vocab_size, tokenizer=tokenizer,
                                                 source=b.model)
    data = (hooke_data.real_hooke_data(sizes, seed=seed, bpe_vocab=b.vocab_size) if config.data == "real" else
            hooke_data.synthetic_hooke_data(sizes, config.synthetic, seed=seed, n_pretrain=config.n_pretrain,
                                            betas=config.betas))
    spec = TinySpec(data.vocab_size, b.n_layers, b.d_model, b.n_heads, b.context)
    return tiny_llama(spec, seed=seed, bos_token_id=data.bos, eos_token_id=data.bos, pad_token_id=data.bos), data


def one_seed(config: Config, seed: int) -> dict[str, list[Any]]:
    """Pre-train theta_0 on D_p, then for every k fine-tune (pooled or sequential) and measure every l."""
    from tokentree.bridge.factory import model_scorer
    from tokentree.bridge.scoring import measure_rate
    from tokentree.data.chat import from_sequences

    model, data = _model_and_data(config, seed)
    ft, b, pretrain = config.finetune, config.base, data.pretrain
    examples = lambda seqs: from_sequences(seqs, prepend=data.bos)  # noqa: E731
    model, losses = hooke_protocol.pretrain(model, examples(pretrain), b, seed=seed)
    shares = np.array([p.n_sequences for p in data.parts]) / pretrain.n_sequences
    eval_p = TokenSequences.concatenate(hooke_data.head(p, min(p.n_sequences, max(1, round(w * config.n_eval))))
                                        for p, w in zip(data.parts, shares, strict=True))
    records, regimes = [], []
    for k in config.k_values:
        n_align = max(1, round(pretrain.n_sequences / k))
        align = hooke_data.head(data.align, n_align)
        sizes = [max(1, round(l * n_align)) for l in config.l_values]
        if any(y <= x for x, y in itertools.pairwise(sizes)):
            raise InputError(f"at k = {k:g}, |D_a| = {n_align} responses and l_values {list(config.l_values)} round "
                             f"to the D_t sizes {sizes}, which do not grow; spread the l values or raise n_pretrain")
        evals = {"pretrain": eval_p, "align": align, "perturb": hooke_data.head(data.perturb, sizes[-1])}

        def measure(model: Any, evals: dict[str, TokenSequences] = evals) -> dict[str, float]:
            scorer = model_scorer(model, bos_token_id=int(model.config.bos_token_id), n_scored_tokens=data.scored,
                                  threads=b.threads)
            return {name: measure_rate(scorer, seqs).bits_per_token for name, seqs in evals.items()}

        where: dict[str, Any] = dict(measure=measure, settings=ft, seed=seed, threads=b.threads, device=b.device)
        if ft.protocol == "pooled":
            unions = [TokenSequences.concatenate([pretrain, align, hooke_data.head(data.perturb, n)])
                      for n in [0, *sizes]]
            runs = hooke_protocol.pooled_runs(model, [examples(u) for u in unions], **where)
        else:
            pieces = [data.perturb.select(np.arange(a, c)) for a, c in itertools.pairwise([0, *sizes])]
            runs = hooke_protocol.sequential_runs(model, examples(align), [examples(p) for p in pieces], **where)
        regime = training_regime(pretrain_tokens=pretrain.n_tokens, behaviour_tokens=align.n_tokens,
                                 transfer_tokens=evals["perturb"].n_tokens, pretrain_losses=losses,
                                 fine_tune_lr=ft.lr, warmup_steps=ft.warmup_steps,
                                 pretrained_elsewhere=b.model == "smollm2", warn=False)
        regimes.append({"seed": seed, "k_requested": float(k), **regime.to_row()})
        k_actual = pretrain.n_sequences / n_align
        theory = mixture_changes(data.parts, evals, vocab_size=data.vocab_size, k=k_actual,
                                 ls=[n / n_align for n in sizes], shares=Shares.of(shares), depth=config.theory_depth,
                                 discount=config.theory_discount)
        records += trained_hooke.trained_records(
            runs, theory, seed=seed, k=k_actual, k_requested=float(k), n_align=n_align, sizes=sizes,
            n_pretrain=pretrain.n_sequences, pretrain_epochs=round(b.pretrain_tokens / pretrain.n_tokens))
    return {"records": records, "regime": regimes}


# ----------------------------------------------------------------------------- report
def _change(key: str) -> Any:
    def text(r: CellSummary) -> str:
        mean, sd, p = (getattr(r, f"{key}{suffix}") for suffix in ("_bits_mean", "_bits_std", "_p"))
        return f"{mean:+.4f} ± {sd:.4f} (p {p_text(p)})"
    return text


CELLS = Table("cells", "Changes after l |D_a| responses of D_t (mean ± sd over seeds)", [
    Column("k", fmt=".4g"), Column("l", fmt=".3g"),
    Column("d_align", "d gamma_a trained", value=_change("delta_align")),
    Column("mixture_delta_align_bits_mean", "d gamma_a mixture", "+.4f"),
    Column("d_pretrain", "d gamma_p trained", value=_change("delta_pretrain")),
    Column("mixture_delta_pretrain_bits_mean", "d gamma_p mixture", "+.5f"),
    Column("ratio", "ratio trained", value=lambda r: f"{r.ratio_mean:+.3g} ± {r.ratio_std:.2g}"),
    Column("mixture_ratio_mean", "ratio mixture", "+.4g"),
    Column("rose", "gamma_a rose", value=lambda r: f"{r.gamma_a_rose}/{r.n_seeds}"),
    Column("fell", "gamma_p fell", value=lambda r: f"{r.gamma_p_fell}/{r.n_seeds}"),
    Column("alignment_change_pretrain_bits", "alignment's own d gamma_p", "+.4f"),
], note="p: two-sided paired t over seeds, unadjusted (the verdicts use Holm); last column: aligned minus pre-trained.")
SLOPE_TABLE = Table("slopes", "Log-log slopes against k", [
    Column("quantity"), Column("theory", "theory (l -> 0)", "g"), Column("l", fmt=".3g"),
    Column("trained", fmt=".2f"), Column("mixture", fmt=".2f")])


REGIME = Table("regime", "Regime per k (first seed; docs/experiments.md §regime)", [
    Column("k_requested", "k", ".3g"), Column("k", "k (tokens)", ".3g"), Column("pretrain_tokens", "D_p tokens"),
    Column("behaviour_tokens", "D_a tokens"), Column("transfer_tokens", "D_t tokens"),
    Column("plateau_slope", "plateau slope", "+.3g"), Column("fine_tune_lr", "lr", "g"),
    Column("warmup_steps", "warmup"), Column("problems", value=lambda r: r["problems"] or "premise met")])


@dataclass(frozen=True, eq=False, repr=False)
class Result(ExperimentReport):
    EXPERIMENT = NAME
    PLOTS = ("deltas_vs_l", "ratio_vs_k")
    CLAIMS_SECTION = "docs/experiments.md §E4h, judged per docs/experiments.md §noise"

    config: Config
    records: Sequence[TrainedRecord]
    cells: Sequence[CellSummary]
    slopes: Sequence[SlopeRecord]
    regime: Sequence[dict[str, Any]]
    verdicts: Sequence[Verdict]
    seconds: float = field(default=0.0)

    def side_tables(self) -> dict[str, Sequence[Any]]:
        return {"cells": self.cells, "slopes": self.slopes, "regime": self.regime}

    def title(self) -> str:
        return f"hooke-trained: Theorem 4.2 on a trained transformer ({self.config.finetune.protocol} training)"

    def intro(self) -> str:
        c, b, ft = self.config, self.config.base, self.config.finetune
        name = f"tiny Llama {b.n_layers} layers x {b.d_model}" if b.model == "tiny" else b.model
        how = ("pooled: every model starts from theta_0 and is trained on D_p u D_a (l = 0) or D_p u D_a u D_t(l), "
               f"{ft.pooled_epochs} epoch(s), the theorem's setting" if ft.protocol == "pooled" else
               f"sequential (a labelled variant): D_a alone for {ft.align_epochs} epochs, then D_t alone in pieces")
        met, problems = trained_hooke.premise_cells({"regime": self.regime})
        regime = (f"Premise met at k = {', '.join(f'{k:g}' for k in met) or 'none'}" + (
            " (theta_0 pre-trained elsewhere: the premise's k is its pre-training's)" if b.model == "smollm2" else "")
                  + (f"; not met: {problems}" if problems else "") + ".")
        return (f"Data: {c.data}; D_p = {c.n_pretrain} responses (shares {list(c.betas)}); seeds {c.seeds}; model "
                f"{name}, context {b.context}; pre-training about {b.pretrain_tokens:,} tokens (lr {b.lr:g}, warmup "
                f"then cosine); fine-tuning {how}, lr {ft.lr:g} after {ft.warmup_steps} warmup steps. {regime} Run "
                f"time {self.seconds:.0f} s. d gamma_X = gamma_X(l) - gamma_X(0), D_X's bits per token against the "
                "model at l = 0. Theorem 4.2's mixture on the same data, q = (k b1 P_1 + (k b2 + 1) P_2 + (k b3 + l) "
                f"P_3)/(k + 1 + l) with P_i the depth-{c.theory_depth} tree model of D_p's part i, is the reference: "
                "gamma_a rises, gamma_p falls, ratio -> -k as l -> 0. Columns: docs/experiments.md §E4h.")

    def sections(self) -> Sequence[Section]:
        first = [r for r in self.regime if r["seed"] == self.config.seed]
        return [(CELLS, self.cells), (SLOPE_TABLE, self.slopes), (REGIME, first)]

    def terminal_tables(self) -> Sequence[tuple[Table, Sequence[Any]]]:
        return self.sections()  # type: ignore[return-value]

    def plot(self, folder: Path) -> None:
        from tokentree.plots.hooke_trained import plot_deltas_vs_l, plot_ratio_vs_k

        plot_deltas_vs_l(self.cells, folder / "deltas_vs_l.png")
        plot_ratio_vs_k(self.cells, folder / "ratio_vs_k.png")


def run(config: Config, *, show_progress: bool | None = None) -> Result:
    """Every seed (see the module docstring), the summaries over seeds, the slopes against k, the verdicts."""
    start = time.perf_counter()
    runs = run_cases(config.seeds, lambda seed: one_seed(config, seed), desc="hooke-trained seeds", show=show_progress)
    t = runs.tables
    cells = trained_hooke.summarise(t["records"])
    verdicts = judge_claims(trained_hooke.HOOKE_TRAINED_CLAIMS, t)
    return Result(config, t["records"], cells, trained_hooke.loglog_slopes(cells), t["regime"], verdicts,
                  seconds=time.perf_counter() - start)
