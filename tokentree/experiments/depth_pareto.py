"""E1 depth-pareto: capacity depth and the Pareto normalisation on real token trees (docs/experiments.md §E1).

For real corpora (GPT-2 tokens of pydoc paragraphs, positive and negative tweets) at
every capacity depth d: the Pareto exponent alpha fitted by maximum likelihood on each
pruned tree's symbol masses, H - ln M against the lemma's ln(alpha/(alpha-1)) -
1/(alpha-1) at the fitted alpha, and the Theorem 4.2 ratio and magnitudes against d
with ideal codes and with Huffman codes (whose rates move in steps, so their
"derivative" is a finite difference over a step in l). The synthetic lemma check
(H - ln M against M) is in ``tokentree run hooke``.

    tokentree run depth-pareto           # about a minute on 2 cores
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np

from tokentree.compression.elasticity import simulate_perturbation
from tokentree.compression.mixture import Shares, check_size
from tokentree.compression.pareto import fit_pareto
from tokentree.compression.rates import entropy
from tokentree.data.scenario import sample_from_pools
from tokentree.data.synthetic import pareto_entropy_gap_nats
from tokentree.data.text import BUILTIN_CORPORA, encode_builtin_corpora, load_tokenizer
from tokentree.framework.report import ExperimentReport
from tokentree.infra.checks import check_choice, check_int, check_list
from tokentree.infra.errors import InputError
from tokentree.infra.progress import progress
from tokentree.infra.results import Record
from tokentree.trees.build import build_tree
from tokentree.verification import inputs_from_sequences

__all__ = ["NAME", "Config", "DepthRecord", "Result", "run"]

NAME = "depth-pareto"


@dataclass(frozen=True)
class Config:
    """Options of ``tokentree run depth-pareto`` (all settable in TOML).

    corpora, tokenizer, max_responses
        D_1, D_2, D_3 (``tokentree.data.text.BUILTIN_CORPORA``), the tokenizer, a cap on
        responses per corpus (0: all).
    depths
        Capacity depths d.
    k, betas, n_align, n_perturb, huffman_step
        The Theorem 4.2 setting per depth; the Huffman finite difference uses the step
        l = 0 -> ``huffman_step``.
    """

    seed: int = 0
    corpora: tuple[str, ...] = ("pydoc-paragraphs", "tweets-positive", "tweets-negative")
    tokenizer: str = "gpt2"
    max_responses: int = 0
    depths: tuple[int, ...] = (1, 2, 3, 4, 5, 6, 8)
    k: float = 1000.0
    betas: tuple[float, ...] = (0.5, 0.3, 0.2)
    n_align: int = 500
    n_perturb: int = 500
    huffman_step: float = 0.5

    def __post_init__(self) -> None:
        check_int(self.seed, "seed", minimum=0)
        check_list(self.corpora, "corpora", lambda v, n: check_choice(v, n, sorted(BUILTIN_CORPORA)), min_length=3)
        if len(self.corpora) != 3:
            raise InputError(f"corpora names D_1, D_2, D_3: three corpora; got {list(self.corpora)}")
        check_int(self.max_responses, "max_responses", minimum=0)
        check_list(self.depths, "depths", lambda v, n: check_int(v, n, minimum=1, maximum=64))
        check_size(self.k, "k")
        Shares.of(self.betas, positive=True)
        check_int(self.n_align, "n_align", minimum=1)
        check_int(self.n_perturb, "n_perturb", minimum=1)
        check_size(self.huffman_step, "huffman_step")

    @classmethod
    def quick(cls) -> Config:
        return cls(max_responses=800, depths=(1, 2, 4), n_align=200, n_perturb=200)


@dataclass(frozen=True)
class DepthRecord(Record):
    """One corpus at one depth: the fitted Pareto tail, the lemma, and the Theorem 4.2 ratio.

    ``ratio_normalised`` is the ideal-code R(0) over its exact value -k L_p/L_a (the same
    for the three corpora at one depth); ``huffman_ratio_normalised`` the Huffman-code
    finite difference over l = 0 -> ``huffman_step``, normalised the same way.
    """

    NONFINITE_REASONS: ClassVar[dict[str, str]] = {
        "lemma_nats": "the fitted alpha is <= 1, where the lemma's normalisation breaks",
        "huffman_ratio_normalised": "D_p's Huffman rate did not move over the step (Huffman lengths are "
        "piecewise constant in l)",
    }

    depth: int
    corpus: str
    n_symbols: int
    fitted_alpha: float
    ks_statistic: float
    n_tail: int
    entropy_minus_log_m_nats: float
    lemma_nats: float
    ratio_normalised: float
    huffman_ratio_normalised: float
    huffman_step_align_bits: float
    huffman_step_pretrain_bits: float
    depth_times_d_rate_align_bits: float


@dataclass(frozen=True, eq=False, repr=False)
class Result(ExperimentReport):
    EXPERIMENT = NAME

    config: Config
    records: Sequence[DepthRecord]
    seconds: float = field(default=0.0)

    def terminal_summary(self) -> str:
        lines = [
            "depth-pareto: fitted Pareto alpha, normalised entropy and the l -> 0 ratio against depth",
            f"  {'d':>2} {'corpus':<18} {'M':>8} {'alpha':>7} {'KS':>6} {'H-lnM':>8} {'lemma':>8} "
            f"{'R(0)/-kLp/La':>13} {'Huffman R/-k':>13}",
        ]
        for r in self.records:
            lines.append(
                f"  {r.depth:>2} {r.corpus:<18} {r.n_symbols:>8} {r.fitted_alpha:>7.3f} "
                f"{r.ks_statistic:>6.3f} {r.entropy_minus_log_m_nats:>8.3f} {r.lemma_nats:>8.3f} "
                f"{r.ratio_normalised:>13.9f} {r.huffman_ratio_normalised:>13.4g}"
            )
        return "\n".join(lines)

    def summary_markdown(self) -> str:
        c = self.config
        out = [
            "# depth-pareto: capacity depth and the Pareto normalisation (real text)",
            "",
            f"Corpora {list(c.corpora)} ({c.tokenizer} tokens), k = {c.k:g}, betas {list(c.betas)}, seed {c.seed}. "
            f"Run time {self.seconds:.1f} s.",
            "",
            "alpha: maximum-likelihood Pareto exponent of the pruned tree's symbol masses (tail chosen by KS "
            "distance). Lemma: ln(alpha/(alpha-1)) - 1/(alpha-1) at that alpha. Ratios are normalised by the exact "
            "ideal-code value -k L_p/L_a; the Huffman ratio is a finite difference over l = 0 -> "
            f"{c.huffman_step:g}, infinite where D_p's Huffman rate did not move at all (its code lengths are "
            "piecewise constant in l).",
            "",
            "| d | corpus | symbols M | alpha | KS | H - ln M (nats) | lemma (nats) | ideal R(0)/(-k L_p/L_a) | "
            "Huffman ratio/(-k L_p/L_a) | d * d gamma_a/dl (bits) |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for r in self.records:
            out.append(
                f"| {r.depth} | {r.corpus} | {r.n_symbols} | {r.fitted_alpha:.3f} | "
                f"{r.ks_statistic:.3f} "
                f"| {r.entropy_minus_log_m_nats:.3f} | {r.lemma_nats:.3f} | {r.ratio_normalised:.12f} | "
                f"{r.huffman_ratio_normalised:.4g} | {r.depth_times_d_rate_align_bits:.4g} |"
            )
        out += ["", "![alpha against depth](alpha_vs_depth.png)", "", "![ratio against depth](ratio_vs_depth.png)"]
        return "\n".join(out) + "\n"

    def plot(self, folder: Path) -> None:
        from tokentree.plots import COLOURS, new_figure

        fig, (left, right) = new_figure(1, 2, size=(10.0, 4.2))
        for i, name in enumerate(self.config.corpora):
            rows = [r for r in self.records if r.corpus == name]
            d = [r.depth for r in rows]
            left.plot(d, [r.fitted_alpha for r in rows], "o-", color=COLOURS[i], label=name)
            right.plot(
                d, [r.entropy_minus_log_m_nats for r in rows], "o-", color=COLOURS[i], label=f"{name}: H - ln M"
            )
            right.plot(
                d, [r.lemma_nats for r in rows], "x:", color=COLOURS[i], label=f"{name}: lemma at fitted alpha"
            )
        left.axhline(1, color="0.3", lw=1, ls="--", label="alpha = 1: the lemma's normalisation breaks")
        right.set_ylim(-6, 0.5)
        left.set_xlabel("capacity depth d")
        left.set_ylabel("fitted Pareto alpha of symbol masses")
        right.set_xlabel("capacity depth d")
        right.set_ylabel("nats per symbol")
        for ax in (left, right):
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7)
        fig.suptitle("Pareto shape of real pruned trees against depth")
        fig.savefig(folder / "alpha_vs_depth.png")

        fig, (left, right) = new_figure(1, 2, size=(10.0, 4.2))
        rows = [r for r in self.records if r.corpus == self.config.corpora[0]]
        d = [r.depth for r in rows]
        left.plot(d, [r.ratio_normalised for r in rows], "o-", color=COLOURS[0], label="ideal codes (analytic)")
        left.plot(
            d,
            [r.huffman_ratio_normalised for r in rows],
            "s--",
            color=COLOURS[1],
            label=f"Huffman codes (finite difference, l = 0 -> {self.config.huffman_step:g})",
        )
        left.axhline(1, color="0.3", lw=1, ls=":", label="theory: 1")
        left.set_ylabel("ratio / (-k L_p / L_a)")
        right.plot(d, [r.depth_times_d_rate_align_bits for r in rows], "o-", color=COLOURS[0])
        right.set_ylabel("d * d gamma_a/dl at l = 0 (bits)")
        for ax in (left, right):
            ax.set_xlabel("capacity depth d")
            ax.grid(alpha=0.3)
        left.legend(fontsize=7)
        fig.suptitle(f"The l -> 0 ratio and its magnitude against depth (real text, k = {self.config.k:g})")
        fig.savefig(folder / "ratio_vs_depth.png")


def run(config: Config, *, show_progress: bool | None = None) -> Result:
    start = time.perf_counter()
    tokenizer = load_tokenizer(config.tokenizer)
    pools = encode_builtin_corpora(
        config.corpora, tokenizer, max_responses=config.max_responses, seed=config.seed, show_progress=show_progress
    )
    vocab = tokenizer.get_vocab_size()
    sample = sample_from_pools(
        pools, n_align=config.n_align, n_perturb=config.n_perturb, rng=np.random.default_rng([config.seed, 300])
    )
    rows = []
    for d in progress(config.depths, desc="depths", show=show_progress):
        inputs = inputs_from_sequences(pools, sample.align, sample.perturb, sample.perturb, depth=d, vocab_size=vocab)
        setting = inputs.setting(config.k, config.betas)
        res = simulate_perturbation(setting, [0.0, config.huffman_step], l_star_search_max=0.0)
        exact = float(res.minus_k_scaled)
        d_huff_a = float(res.huffman_rate_align_bits[1] - res.huffman_rate_align_bits[0])
        d_huff_p = float(res.huffman_rate_pretrain_bits[1] - res.huffman_rate_pretrain_bits[0])
        huff_ratio = d_huff_a / d_huff_p if d_huff_p != 0 else math.copysign(math.inf, d_huff_a or 1.0)
        for name, pool in zip(config.corpora, pools, strict=True):
            masses = build_tree(pool, depth=d, mode="chunk", vocab_size=vocab).symbols().mass
            fit = fit_pareto(masses)
            a = fit.alpha
            rows.append(
                DepthRecord(
                    depth=int(d),
                    corpus=name,
                    n_symbols=int(masses.shape[0]),
                    fitted_alpha=a,
                    ks_statistic=fit.ks_statistic,
                    n_tail=fit.n_tail,
                    entropy_minus_log_m_nats=entropy(masses, base=math.e) - math.log(masses.shape[0]),
                    lemma_nats=pareto_entropy_gap_nats(a) if a > 1 else math.nan,
                    ratio_normalised=float(res.ratio[0]) / exact,
                    huffman_ratio_normalised=huff_ratio / exact,
                    huffman_step_align_bits=d_huff_a,
                    huffman_step_pretrain_bits=d_huff_p,
                    depth_times_d_rate_align_bits=d * float(res.d_rate_align_bits[0]),
                )
            )
    return Result(config, rows, seconds=time.perf_counter() - start)
