"""E0 hooke: Theorem 4.2 verified end to end (docs/experiments.md §E0; docs/theory.md §5-§6).

The Theorem 4.2 scenario (D_p = D_1 u D_2 u D_3, D_a like D_2, D_t like D_3) on the
built-in synthetic sources (exact Pareto leaf masses, disjoint symbol sets) or on real
text (``data = "real"``: Python's pydoc paragraphs, positive and negative tweets, GPT-2
tokens; D_a and D_t sampled from the D_2 and D_3 corpora). Sweeps k, depth, Pareto shape,
shares beta and l; runs the controls where elasticity must fail; checks the Pareto
lemma; and judges every claim (:mod:`tokentree.verification`). Your own three datasets
(``--pretrain/--align/--perturb``): :mod:`tokentree.experiments.hooke_files`.

    tokentree run hooke                  # synthetic, about 20 s on 2 cores; --data real: real text
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tokentree.compression.elasticity import l_star_disjoint
from tokentree.compression.mixture import Shares, check_size
from tokentree.data.scenario import sample_from_pools, scenario_sources
from tokentree.data.sequences import TokenSequences
from tokentree.data.synthetic import markov_corpus
from tokentree.data.text import BUILTIN_CORPORA, encode_builtin_corpora, load_tokenizer
from tokentree.experiments.hooke_files import OwnData, run_files
from tokentree.framework.config import Checked, bounded, group
from tokentree.framework.report import ExperimentReport, Section
from tokentree.framework.runner import run_cases
from tokentree.framework.tables import Column, Table
from tokentree.infra.checks import check_list
from tokentree.infra.errors import InputError
from tokentree.verification import (
    HookeControls,
    HookeInputs,
    ParetoCheck,
    SweepRecord,
    Verdict,
    finite_step_control,
    huffman_step_control,
    inputs_from_sequences,
    inputs_from_sources,
    judge,
    novel_control,
    overlap_control,
    pareto_normalisation,
    split_sample_control,
    sweep_records,
)

__all__ = ["NAME", "DATA_SOURCES", "Config", "Result", "run"]

NAME = "hooke"
DATA_SOURCES = ("synthetic", "real", "files")
#: The deepest capacity depth a config may ask for (synthetic sources have vocab^depth paths).
MAX_DEPTH = 64
L_VALUES = (0.0, 0.001, 0.01, 0.03, 0.06, 0.09, 0.12, 0.16, 0.2, 0.24, 0.27, 0.35, 0.5, 0.75, 1.0, 1.5, 2.0)


@dataclass(frozen=True)
class Config(Checked):
    """What ``tokentree run hooke`` sweeps; every field can be set in a TOML file.

    k_values, l_values, depths, alphas, betas
        The grid: k = |D_p|/|D_a| (at least two, for the slope in k), l = |D_t|/|D_a| (must
        include 0 and a positive value), capacity depths d, Pareto shapes of the synthetic
        leaf masses (> 1), and pre-training shares of D_1, D_2, D_3.
    data
        "synthetic" (exact sources), "real" (corpora tokenized with ``tokenizer``) or "files".
    n_leaves, vocab_per_component
        Size of each synthetic source: leaves, and token ids per component.
    control_k, finite_step_k
        k of the control cases, and of the finite-step identity (whose left side
        cancels to about 1e-16 k relative, so it is checked at moderate k).
    n_align, n_perturb, split_depths, split_pool_size
        Sample sizes and depths of the finite-sample control (docs/theory.md §5.8; on synthetic data
        its pools are three Markov sources of ``split_pool_size`` responses).
    pareto_alphas, pareto_sizes, pareto_seeds
        The Pareto lemma check (docs/theory.md §6; the lemma needs alpha > 1).
    corpora, tokenizer, max_responses
        The real-text variant: D_1, D_2, D_3 corpora (``tokentree.data.text.BUILTIN_CORPORA``),
        the tokenizer, and a cap on responses per corpus (0: all).
    files
        Your own data (``data = "files"``, set by ``--pretrain``): :class:`~tokentree.experiments.hooke_files.OwnData`.
    """

    data: str = bounded("synthetic", choices=DATA_SOURCES)
    seed: int = bounded(0, minimum=0)
    k_values: tuple[float, ...] = (10.0, 100.0, 1e3, 1e4, 1e5, 1e6)
    l_values: tuple[float, ...] = L_VALUES
    depths: tuple[int, ...] = bounded((3, 4, 6, 8), minimum=1, maximum=MAX_DEPTH)
    alphas: tuple[float, ...] = bounded((1.5, 2.0, 3.0), minimum=1.0, exclusive=True)
    betas: tuple[tuple[float, ...], ...] = ((0.5, 0.3, 0.2), (0.6, 0.3, 0.1))
    n_leaves: int = bounded(200, minimum=1)
    vocab_per_component: int = bounded(8, minimum=1, maximum=2**20)
    control_k: float = 1000.0
    finite_step_k: float = 100.0
    n_align: int = bounded(500, minimum=1)
    n_perturb: int = bounded(500, minimum=1)
    split_depths: tuple[int, ...] = bounded((1, 2, 3, 4, 6, 8), minimum=1, maximum=MAX_DEPTH)
    split_pool_size: int = bounded(3000, minimum=4)
    pareto_alphas: tuple[float, ...] = bounded((1.2, 1.5, 2.0, 3.0, 5.0), minimum=1.0, exclusive=True)
    pareto_sizes: tuple[int, ...] = bounded((100, 1000, 10000, 100000), minimum=2, maximum=10**7)
    pareto_seeds: int = bounded(5, minimum=2)
    corpora: tuple[str, ...] = bounded(("pydoc-paragraphs", "tweets-positive", "tweets-negative"),
                                       choices=sorted(BUILTIN_CORPORA))
    tokenizer: str = "gpt2"
    max_responses: int = bounded(0, minimum=0)
    files: OwnData = group(OwnData)

    def validate(self) -> None:
        self.files.check_used(self.data == "files")
        ks = check_list(self.k_values, "k_values", check_size)
        if len(set(ks)) < 2:
            raise InputError(f"k_values needs at least two different k (the ratio's slope in k); got {list(ks)}")
        ls = check_list(self.l_values, "l_values", lambda v, n: check_size(v, n, allow_zero=True))
        if 0.0 not in ls or max(ls) <= 0.0:
            raise InputError(f"l_values must include 0 (for the l -> 0 ratio) and a positive l; got {list(ls)}")
        check_list(self.betas, "betas", lambda v, n: Shares.of(v, positive=True, name=f"{n} (each betas entry)"))
        check_size(self.control_k, "control_k")
        check_size(self.finite_step_k, "finite_step_k")
        if len(self.corpora) != 3:
            raise InputError(f"corpora names D_1, D_2, D_3: three corpora; got {list(self.corpora)}")
        if self.data == "synthetic" and self.vocab_per_component ** min(self.depths) < self.n_leaves:
            raise InputError(
                f"{self.n_leaves} distinct leaves do not fit in {self.vocab_per_component}^{min(self.depths)} paths; "
                "raise vocab_per_component or the smallest depth, or lower n_leaves"
            )

    @classmethod
    def quick(cls) -> Config:
        """A small grid for tests and a first look (a few seconds)."""
        return cls(k_values=(10.0, 1e3, 1e6), depths=(3, 4), alphas=(2.0,), betas=((0.5, 0.3, 0.2),),
                   l_values=(0.0, 0.01, 0.1, 0.2, 0.3, 0.5, 1.0), n_leaves=100, split_depths=(1, 2, 4, 8),
                   split_pool_size=1000, n_align=200, n_perturb=200, pareto_sizes=(100, 1000, 10000),
                   pareto_seeds=3, max_responses=1500)


RATIO_TABLE = Table("ratio", "The l -> 0 ratio", [
    Column("k", fmt="g"), Column("ratio", "R(0)", ".10g"), Column("normalised", "R(0) / (-k L_p/L_a)", ".12f"),
    Column("l_star", "l*", ".6g"), Column("l_star_closed_form", "l* closed form", ".6g"),
    Column("max_residual", "max identity residual", ".1e"),
])
SPLIT_TABLE = Table("split", "Finite samples (docs/theory.md §5.8)", [
    Column("depth"), Column("n_symbols", "symbols"),
    Column("shared_mass_independent", "D_t mass on D_3 leaves (independent)", ".4f"),
    Column("independent", "R(0)/(-k L_p/L_a) independent", ".4g", value=lambda r: r.normalised("independent")),
    Column("resampled", "resampled", ".9f", value=lambda r: r.normalised("resampled")),
])
PARETO_TABLE = Table("pareto", "Pareto lemma (docs/theory.md §6)", [
    Column("alpha", fmt="g"), Column("n_leaves", "M"), Column("entropy_minus_log_m_nats", "H - ln M (nats)", ".4f"),
    Column("spread_nats", "spread", ".4f"), Column("lemma_nats", "lemma", ".4f"), Column("error_nats", "error", "+.4f"),
])


@dataclass(frozen=True, eq=False, repr=False)
class Result(ExperimentReport):
    """Everything one run measured, and the verdicts (tables: docs/experiments.md §E0)."""

    EXPERIMENT = NAME
    PLOTS = ("rates_vs_l", "ratio_vs_k", "ratio_vs_closed_form", "rates_vs_depth", "split_control", "pareto")
    CLAIMS_SECTION = "docs/theory.md §5.1-§5.8, §5.cf and §6"

    config: Config
    records: Sequence[SweepRecord]
    controls: HookeControls
    pareto: Sequence[ParetoCheck]
    verdicts: Sequence[Verdict]
    seconds: float = field(default=0.0)

    def side_tables(self) -> dict[str, Sequence[Any]]:
        c = self.controls
        return {"novel": c.novel, "overlap": c.overlap, "huffman_steps": c.huffman_steps,
                "finite_step": c.finite_step, "split": c.split, "pareto": self.pareto}

    @property
    def reference(self) -> dict[str, Any]:
        """The case the plots and the summary tables show: middle alpha, first depth and betas."""
        alphas = sorted({r.alpha for r in self.records}, key=lambda a: -1.0 if a is None else a)
        return {"alpha": alphas[len(alphas) // 2], "depth": self.config.depths[0], "betas": tuple(self.config.betas[0])}

    def _select(self, **match: Any) -> list[SweepRecord]:
        return [r for r in self.records if all(getattr(r, k) == v for k, v in match.items())]

    def ratio_table(self) -> list[dict[str, Any]]:
        """R(0) per k in the reference case, with l* and the largest identity residual over l."""
        ref = self.reference
        return [{"k": r.k, "ratio": r.ratio, "normalised": r.ratio / r.ratio_l0_exact, "l_star": r.l_star,
                 "l_star_closed_form": r.l_star_closed_form,
                 "max_residual": max(x.identity_residual for x in self._select(k=r.k, **ref))}
                for r in self._select(l=0.0, **ref)]

    def rate_profile(self, k: float) -> list[SweepRecord]:
        """The reference case at l = 0 and this k, one record per depth (ideal, Huffman, Theorem 3.4 rates)."""
        ref = self.reference
        return sorted(self._select(l=0.0, k=k, alpha=ref["alpha"], betas=ref["betas"]), key=lambda r: r.depth)

    def title(self) -> str:
        return f"hooke: Theorem 4.2 verified ({self.config.data} data)"

    def intro(self) -> str:
        c = self.config
        grid = f", alphas {list(c.alphas)}" if c.data == "synthetic" else f", corpora {list(c.corpora)}"
        return (f"Seed {c.seed}; {len(self.records)} records over k = {', '.join(f'{k:g}' for k in c.k_values)}, "
                f"depths {list(c.depths)}, {len(c.l_values)} values of l{grid}, betas {[list(b) for b in c.betas]}. "
                f"{len(self.unexpected())} unexpected verdicts. Run time {self.seconds:.1f} s. What each claim says "
                "and what counts as holding: docs/theory.md; the tables' columns: docs/experiments.md §E0.")

    def sections(self) -> Sequence[Section]:
        ref = self.reference
        ratio = Table(RATIO_TABLE.name, f"{RATIO_TABLE.title} (alpha {ref['alpha']}, depth {ref['depth']}, betas "
                      f"{list(ref['betas'])}; l* is where gamma_p is smallest)", RATIO_TABLE.columns)
        return [(ratio, self.ratio_table()), (SPLIT_TABLE, self.controls.split), (PARETO_TABLE, self.pareto)]

    def plot(self, folder: Path) -> None:
        from tokentree.plots.hooke import hooke_figures

        c = self.config
        k_reference = c.control_k if c.control_k in c.k_values else c.k_values[len(c.k_values) // 2]
        hooke_figures(self.records, self.controls.split, self.pareto, reference=self.reference, data=c.data,
                      depths=c.depths, k_values=c.k_values, l_values=c.l_values, k_reference=k_reference, folder=folder)


# ----------------------------------------------------------------------------- data
def _rng(seed: int, *path: int) -> np.random.Generator:
    return np.random.default_rng([seed, *path])  # one stream per use, so adding one moves no other


def _pools(config: Config, show_progress: bool | None) -> tuple[list[TokenSequences], int]:
    """The three pools the finite-sample control samples from (and, on real text, D_a and D_t), and the vocabulary."""
    if config.data == "real":
        tokenizer = load_tokenizer(config.tokenizer)
        pools = encode_builtin_corpora(config.corpora, tokenizer, max_responses=config.max_responses,
                                       seed=config.seed, show_progress=show_progress)
        return pools, tokenizer.get_vocab_size()
    return [markov_corpus(config.split_pool_size, vocab_size=32, rng=_rng(config.seed, 200, i)) for i in range(3)], 32


def _inputs(config: Config, pools: list[TokenSequences], vocab: int) -> list[HookeInputs]:
    """The five distributions at every (alpha, depth) of the grid (synthetic) or every depth (real text)."""
    if config.data == "real":
        s = sample_from_pools(pools, n_align=config.n_align, n_perturb=config.n_perturb, rng=_rng(config.seed, 300))
        return [inputs_from_sequences(pools, s.align, s.perturb, s.perturb_like_align, depth=d, vocab_size=vocab)
                for d in config.depths]
    return [inputs_from_sources(scenario_sources(betas=config.betas[0], depth=d, alpha=a, n_leaves=config.n_leaves,
                                                 vocab_size=config.vocab_per_component, disjoint=True,
                                                 rng=_rng(config.seed, 1, i)))
            for i, a in enumerate(config.alphas) for d in config.depths]


# ----------------------------------------------------------------------------- wiring
def _one_job(config: Config, job: tuple[HookeInputs, tuple[float, ...]]) -> dict[str, list[Any]]:
    """The sweep over k and l and the four controls for one (inputs, betas) case."""
    inp, betas = job
    l_star = l_star_disjoint(betas)
    return {
        "records": [r for k in config.k_values for r in sweep_records(inp, k=k, betas=betas, l_values=config.l_values)],
        "novel": [novel_control(inp, k=config.control_k, betas=betas)],
        "overlap": [overlap_control(inp, k=config.control_k, betas=betas)],
        "huffman_steps": [huffman_step_control(inp, k=config.control_k, betas=betas, l_max=0.01 * l_star)],
        "finite_step": finite_step_control(inp, k=config.finite_step_k, betas=betas,
                                           steps=[(0.0, l_star / 2), (l_star / 2, 2 * l_star)]),
    }


def run(config: Config, *, show_progress: bool | None = None) -> ExperimentReport:
    """Sweep, run the controls, check the Pareto lemma, and judge (see the module docstring)."""
    if config.data == "files":
        return run_files(config, show_progress=show_progress)
    start = time.perf_counter()
    pools, vocab = _pools(config, show_progress)
    jobs = [(inp, b) for inp in _inputs(config, pools, vocab) for b in config.betas]
    runs = run_cases(jobs, lambda job: _one_job(config, job), desc="hooke sweeps", show=show_progress)
    split = split_sample_control(pools, depths=config.split_depths, k=config.control_k, betas=config.betas[0],
                                 n_align=config.n_align, n_perturb=config.n_perturb, vocab_size=vocab,
                                 rng=_rng(config.seed, 400))
    t = runs.tables
    controls = HookeControls(novel=t["novel"], overlap=t["overlap"], huffman_steps=t["huffman_steps"],
                             finite_step=t["finite_step"], split=split)
    pareto = pareto_normalisation(config.pareto_alphas, config.pareto_sizes, n_seeds=config.pareto_seeds,
                                  rng=_rng(config.seed, 500))
    return Result(config, t["records"], controls, pareto, judge(t["records"], controls, pareto),
                  seconds=time.perf_counter() - start)
