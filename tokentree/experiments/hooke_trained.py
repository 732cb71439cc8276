"""hooke-trained: the Hooke test on a trained transformer instead of a mixture (docs/experiments.md §E4h).

The Theorem 4.2 scenario with a real model: a tiny Llama (:mod:`tokentree.bridge.tiny`,
``model = "tiny"``) is pre-trained from scratch on D_p = D_1 u D_2 u D_3 (a loaded model,
``model = "smollm2"``, a folder or a hub name, is trained further on it), fine-tuned on the
alignment set D_a (drawn like D_2, k = |D_p|/|D_a| responses), then fine-tuned further on
growing amounts of the perturbation set D_t (drawn like D_3, l = |D_t|/|D_a|). After
every step the bits per token of D_p, D_a and D_t under the current model are measured,
and the measured ratio of the changes,

    R_trained(l) = (gamma_a(l) - gamma_a(0)) / (gamma_p(l) - gamma_p(0)),

is set against -k, the mixture theory's l -> 0 value, and against Theorem 4.2's mixture
computed on the very same datasets (:mod:`tokentree.lab.mixture_reference`). The data are
:mod:`tokentree.lab.hooke_data`; the staged protocol is :func:`tokentree.lab.run_stages`;
rows and summaries over seeds are :mod:`tokentree.verification.trained_hooke`.

    tokentree run hooke-trained                     # synthetic, about a minute on 2 cores
    tokentree run hooke-trained --data real         # real text, a few minutes
    tokentree run hooke-trained --data real --model smollm2 --device auto   # SmolLM2 (slow on a CPU)
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tokentree.bridge.hf import DEVICES
from tokentree.compression.mixture import Shares
from tokentree.data.sequences import TokenSequences
from tokentree.framework.config import Checked, bounded
from tokentree.framework.report import ExperimentReport, Section
from tokentree.framework.runner import run_cases, seed_list
from tokentree.framework.tables import Column, Table
from tokentree.infra.errors import InputError
from tokentree.infra.progress import progress
from tokentree.lab import Stage, run_stages
from tokentree.lab.hooke_data import HookeData, head, hooke_sizes, real_hooke_data, synthetic_hooke_data
from tokentree.lab.mixture_reference import mixture_changes
from tokentree.verification.trained_hooke import CellSummary, SlopeRecord, TrainedRecord, loglog_slopes, summarise

__all__ = ["NAME", "Config", "TrainedRecord", "CellSummary", "SlopeRecord", "Result", "run"]

NAME = "hooke-trained"
DATA_SOURCES = ("real", "synthetic")
_DATASETS = ("pretrain", "align", "perturb")


@dataclass(frozen=True)
class Config(Checked):
    """Options of ``tokentree run hooke-trained``; every field can be set in a TOML file.

    k_values, l_values
        k = |D_p|/|D_a| (responses) and the amounts of D_t, l = |D_t|/|D_a|, after which the
        rates are measured (increasing; l = 0, the aligned model, is always measured).
    n_pretrain, betas
        Responses in D_p and the shares of D_1, D_2, D_3 in it.
    n_seeds
        Repeats with seeds ``seed``, ``seed + 1``, ...
    n_eval
        Responses of D_p scored for gamma_p, drawn from D_1, D_2, D_3 in the shares of D_p
        (D_a and D_t are scored whole). The l -> 0 ratio is a cancellation inside gamma_p,
        so a sample whose shares drift from D_p's would swamp it.
    bpe_vocab
        Size of the BPE trained on D_p (real data).
    model, device, threads
        "tiny" (a tiny Llama trained from scratch), "smollm2", a model folder or a hub name
        (real data only: synthetic data are token ids without a tokenizer); "auto" picks a
        GPU when there is one; torch's CPU threads.
    n_layers, d_model, n_heads, context
        Shape of the tiny Llama.
    pretrain_tokens, align_epochs, batch_size, lr_pretrain, lr_finetune
        Training: whole epochs of D_p adding up to about ``pretrain_tokens`` tokens (the
        same budget for either data source); D_a for ``align_epochs`` (a fresh AdamW); then
        every new piece of D_t once (a fresh AdamW, the same learning rate).
    theory_depth, theory_discount
        The mixture on the same data: depth and absolute discount of each dataset's tree model.
    synthetic_depth, synthetic_alpha, synthetic_leaves, synthetic_vocab
        The synthetic sources: tokens per response, Pareto shape, leaves and token ids per component.
    """

    data: str = bounded("synthetic", choices=DATA_SOURCES)
    seed: int = bounded(0, minimum=0)
    model: str = "tiny"
    device: str = bounded("auto", choices=DEVICES)
    n_seeds: int = bounded(3, minimum=1)
    k_values: tuple[float, ...] = bounded((10.0, 30.0, 100.0), minimum=1.0, exclusive=True)
    l_values: tuple[float, ...] = bounded((0.1, 0.2, 0.5, 1.0), minimum=0.0, exclusive=True)
    n_pretrain: int = bounded(3000, minimum=3)
    betas: tuple[float, ...] = (0.6, 0.2, 0.2)
    n_eval: int = bounded(600, minimum=1)
    bpe_vocab: int = bounded(2048, minimum=257)  # a byte-level BPE holds the 256 bytes
    n_layers: int = bounded(2, minimum=1)
    d_model: int = bounded(64, minimum=1)
    n_heads: int = bounded(4, minimum=1)
    context: int = bounded(128, minimum=2)
    pretrain_tokens: int = bounded(400_000, minimum=1)
    align_epochs: int = bounded(3, minimum=1)
    batch_size: int = bounded(16, minimum=1)
    lr_pretrain: float = bounded(3e-3, minimum=0.0, exclusive=True)
    lr_finetune: float = bounded(1e-3, minimum=0.0, exclusive=True)
    theory_depth: int = bounded(3, minimum=1)
    theory_discount: float = bounded(0.75, minimum=0.0, maximum=0.999999)
    threads: int = bounded(1, minimum=1)
    synthetic_depth: int = bounded(4, minimum=1, maximum=64)
    synthetic_alpha: float = bounded(2.0, minimum=1.0, exclusive=True)
    synthetic_leaves: int = bounded(200, minimum=1)
    synthetic_vocab: int = bounded(8, minimum=1, maximum=2**20)

    def validate(self) -> None:
        if any(b <= a for a, b in itertools.pairwise(self.l_values)):
            raise InputError(f"l_values must be positive and increasing (l = 0 is always measured); got "
                             f"{list(self.l_values)}")
        Shares.of(self.betas, positive=True)
        if self.d_model % self.n_heads:
            raise InputError(f"d_model ({self.d_model}) must be a multiple of n_heads ({self.n_heads})")
        if not isinstance(self.model, str) or not self.model.strip():
            raise InputError(f"model must be 'tiny', 'smollm2', a model folder or a hub name; got {self.model!r}")
        if self.model != "tiny" and self.data != "real":
            raise InputError(f"model {self.model!r} needs data = 'real': synthetic data are token ids, not text")
        if self.synthetic_vocab ** self.synthetic_depth < self.synthetic_leaves:
            raise InputError(f"synthetic_leaves = {self.synthetic_leaves} distinct leaves do not fit in "
                             f"{self.synthetic_vocab}^{self.synthetic_depth} paths; raise synthetic_vocab or "
                             "synthetic_depth")
        if self.n_pretrain / max(self.k_values) * self.l_values[0] < 1:
            raise InputError(f"n_pretrain = {self.n_pretrain} leaves |D_a| = {self.n_pretrain / max(self.k_values):g} "
                             f"at k = {max(self.k_values):g}, and l = {self.l_values[0]} of it is less than one "
                             "response; raise n_pretrain or the smallest of l_values, or lower the largest of k_values")

    @property
    def seeds(self) -> list[int]:
        return seed_list(self.seed, self.n_seeds)

    @classmethod
    def quick(cls) -> Config:
        """Small real-text run (about a minute)."""
        return cls(n_seeds=2, k_values=(10.0, 100.0), l_values=(0.2, 1.0), n_pretrain=1000, n_eval=200, bpe_vocab=512,
                   d_model=32, n_heads=2, pretrain_tokens=50_000, align_epochs=2)


# ----------------------------------------------------------------------------- wiring
def _model_and_data(config: Config, seed: int) -> tuple[Any, HookeData]:
    """The model to pre-train (a seeded tiny Llama, or a loaded one) and this seed's data."""
    from tokentree.bridge.hf import load_model
    from tokentree.bridge.tiny import TinySpec, tiny_llama

    sizes = hooke_sizes(config.n_pretrain, config.betas, config.k_values, config.l_values)
    if config.model != "tiny":
        model, tokenizer = load_model(config.model, device=config.device)
        return model, real_hooke_data(sizes, seed=seed, bpe_vocab=config.bpe_vocab, tokenizer=tokenizer,
                                      source=config.model)
    data = (real_hooke_data(sizes, seed=seed, bpe_vocab=config.bpe_vocab) if config.data == "real" else
            synthetic_hooke_data(sizes, seed=seed, n_pretrain=config.n_pretrain, betas=config.betas,
                                 depth=config.synthetic_depth, alpha=config.synthetic_alpha,
                                 n_leaves=config.synthetic_leaves, vocab_size=config.synthetic_vocab))
    spec = TinySpec(data.vocab_size, config.n_layers, config.d_model, config.n_heads, config.context)
    return tiny_llama(spec, seed=seed, bos_token_id=data.bos, eos_token_id=data.bos, pad_token_id=data.bos), data


def one_seed(config: Config, seed: int, show_progress: bool | None = None) -> dict[str, list[Any]]:
    """Pre-train theta_0 on D_p, then for every k align on D_a and fine-tune on growing D_t, measuring each step."""
    from tokentree.bridge.factory import model_scorer
    from tokentree.bridge.scoring import measure_rate
    from tokentree.data.chat import from_sequences
    from tokentree.lab.train import LMTrainer, TrainSettings

    model, data = _model_and_data(config, seed)
    pretrain = data.pretrain

    def trainer(model: Any, lr: float, stage_seed: int) -> LMTrainer:
        return LMTrainer(model, TrainSettings(lr=lr, batch_size=config.batch_size, weight_decay=0.01, seed=stage_seed,
                                              threads=config.threads, device=config.device))

    def examples(seqs: TokenSequences) -> Any:
        return from_sequences(seqs, prepend=data.bos)

    base = trainer(model, config.lr_pretrain, seed)
    epochs = round(config.pretrain_tokens / pretrain.n_tokens)
    epochs = max(1, epochs) if config.model == "tiny" else epochs
    pretrain_examples = examples(pretrain)
    for _ in progress(range(epochs), desc=f"pre-training (seed {seed})", show=show_progress):
        base.epoch(pretrain_examples, show_progress=False)
    shares = np.array([p.n_sequences for p in data.parts]) / pretrain.n_sequences
    eval_p = TokenSequences.concatenate(head(p, min(p.n_sequences, max(1, round(b * config.n_eval))))
                                        for p, b in zip(data.parts, shares, strict=True))
    records = []
    for k in config.k_values:
        n_align = max(1, round(pretrain.n_sequences / k))
        align = head(data.align, n_align)
        sizes = [max(1, round(l * n_align)) for l in config.l_values]
        if any(b <= a for a, b in itertools.pairwise(sizes)):
            raise InputError(f"at k = {k:g}, |D_a| = {n_align} responses and l_values {list(config.l_values)} round "
                             f"to the D_t sizes {sizes}, which do not grow; spread the l values or raise n_pretrain")
        evals = {"pretrain": eval_p, "align": align, "perturb": head(data.perturb, sizes[-1])}

        def measure(model: Any, evals: dict[str, TokenSequences] = evals) -> dict[str, float]:
            scorer = model_scorer(model, bos_token_id=int(model.config.bos_token_id), n_scored_tokens=data.scored,
                                  threads=config.threads)
            return {name: measure_rate(scorer, seqs).bits_per_token for name, seqs in evals.items()}

        increments = tuple(examples(data.perturb.select(np.arange(a, b))) for a, b in itertools.pairwise([0, *sizes]))
        stages = [Stage("align", (examples(align),), lr=config.lr_finetune, seed=seed, epochs=config.align_epochs),
                  Stage("perturb", increments, lr=config.lr_finetune, seed=seed + 10_000)]
        before, start, *after = run_stages(base.model, stages, new_trainer=lambda m, s: trainer(m, s.lr, s.seed),
                                           measure=measure, show_progress=False)
        k_actual = pretrain.n_sequences / n_align
        theory = mixture_changes(data.parts, evals, vocab_size=data.vocab_size, k=k_actual,
                                 ls=[n / n_align for n in sizes], shares=Shares.of(shares), depth=config.theory_depth,
                                 discount=config.theory_discount)
        for j, (n, now) in enumerate(zip(sizes, after, strict=True)):
            delta = {name: now.values[name] - start.values[name] for name in _DATASETS}
            records.append(TrainedRecord(
                seed=seed, step=j, k=float(k_actual), k_requested=float(k), l=n / n_align,
                n_pretrain=pretrain.n_sequences, pretrain_epochs=epochs, n_align=n_align, n_perturb=n,
                rate_pretrain_base_bits=before.values["pretrain"], rate_align_base_bits=before.values["align"],
                rate_pretrain_0_bits=start.values["pretrain"], rate_align_0_bits=start.values["align"],
                rate_perturb_0_bits=start.values["perturb"], rate_pretrain_bits=now.values["pretrain"],
                rate_align_bits=now.values["align"], rate_perturb_bits=now.values["perturb"],
                delta_pretrain_bits=delta["pretrain"], delta_align_bits=delta["align"],
                delta_perturb_bits=delta["perturb"],
                ratio=delta["align"] / delta["pretrain"] if delta["pretrain"] != 0 else math.nan,
                mixture_ratio_l0=theory.ratio_l0, mixture_ratio=float(theory.ratio[j]),
                mixture_delta_align_bits=float(theory.delta_align_bits[j]),
                mixture_delta_pretrain_bits=float(theory.delta_pretrain_bits[j]),
            ))
    return {"records": records}


# ----------------------------------------------------------------------------- report
def _change(key: str) -> Any:
    def text(r: CellSummary) -> str:
        flag = "" if getattr(r, f"{key}_resolved") else " (noise)"
        return f"{getattr(r, f'{key}_bits_mean'):+.4f} ± {getattr(r, f'{key}_bits_std'):.4f}{flag}"
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
], note='"noise": the mean is under two standard errors from 0.')
SLOPE_TABLE = Table("slopes", "Log-log slopes against k", [
    Column("quantity"), Column("theory", "theory (l -> 0)", "g"), Column("l", fmt=".3g"),
    Column("trained", fmt=".2f"), Column("mixture", fmt=".2f")])
ALIGNMENT = Table("alignment", "Alignment itself (aligned minus pre-trained model), bits per token", [
    Column("k", fmt=".3g"), Column("alignment_change_align_bits", "gamma_a", "+.3f"),
    Column("alignment_change_pretrain_bits", "gamma_p", "+.3f")])


@dataclass(frozen=True, eq=False, repr=False)
class Result(ExperimentReport):
    EXPERIMENT = NAME
    PLOTS = ("deltas_vs_l", "ratio_vs_k")

    config: Config
    records: Sequence[TrainedRecord]
    cells: Sequence[CellSummary]
    slopes: Sequence[SlopeRecord]
    seconds: float = field(default=0.0)

    def side_tables(self) -> dict[str, Sequence[Any]]:
        return {"cells": self.cells, "slopes": self.slopes}

    def title(self) -> str:
        return "hooke-trained: Theorem 4.2 on a trained transformer"

    def intro(self) -> str:
        c = self.config
        name = f"tiny Llama {c.n_layers} layers x {c.d_model}" if c.model == "tiny" else c.model
        return (f"Data: {c.data}; D_p = {c.n_pretrain} responses (shares {list(c.betas)}); seeds {c.seeds}; model "
                f"{name}, context {c.context}; pre-training about {c.pretrain_tokens:,} tokens (lr {c.lr_pretrain:g}), "
                f"alignment {c.align_epochs} epochs and perturbation one pass (lr {c.lr_finetune:g}). Run time "
                f"{self.seconds:.0f} s. Columns of every table: docs/experiments.md §E4h. d gamma_X = gamma_X(l) - "
                "gamma_X(0): change of D_X's bits per token under the model fine-tuned on l |D_a| responses of D_t, "
                "against the aligned model. The mixture theory says ratio -> -k as l -> 0 (gamma_a rises, gamma_p "
                "falls). The mixture columns are Theorem 4.2's model on the same datasets: q = (k b1 P_1 + (k b2 + 1) "
                f"P_2 + (k b3 + l) P_3)/(k + 1 + l), P_i the depth-{c.theory_depth} tree model of D_p's part i "
                f"(absolute discount {c.theory_discount:g}).")

    def alignment_rows(self) -> list[CellSummary]:
        return [r for r in self.cells if r.step == 0]

    def sections(self) -> Sequence[Section]:
        return [(CELLS, self.cells), (SLOPE_TABLE, self.slopes), (ALIGNMENT, self.alignment_rows())]

    def terminal_tables(self) -> Sequence[tuple[Table, Sequence[Any]]]:
        return self.sections()  # type: ignore[return-value]

    def plot(self, folder: Path) -> None:
        from tokentree.plots.hooke_trained import plot_deltas_vs_l, plot_ratio_vs_k

        plot_deltas_vs_l(self.cells, folder / "deltas_vs_l.png")
        plot_ratio_vs_k(self.cells, folder / "ratio_vs_k.png")


def run(config: Config, *, show_progress: bool | None = None) -> Result:
    """Every seed (see the module docstring), then the summaries over seeds and the slopes against k."""
    start = time.perf_counter()
    runs = run_cases(config.seeds, lambda seed: one_seed(config, seed, show_progress), desc="hooke-trained seeds",
                     show=show_progress)
    cells = summarise(runs.tables["records"])
    return Result(config, runs.tables["records"], cells, loglog_slopes(cells), seconds=time.perf_counter() - start)

