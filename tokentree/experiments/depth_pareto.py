"""E1 depth-pareto: capacity depth and the Pareto normalisation on real token trees (docs/experiments.md §E1).

For real corpora (GPT-2 tokens of pydoc paragraphs, positive and negative tweets) at
every capacity depth d: the Pareto exponent alpha fitted by maximum likelihood on each
pruned tree's symbol masses, H - ln M against the lemma's ln(alpha/(alpha-1)) -
1/(alpha-1) at the fitted alpha, and the Theorem 4.2 ratio and magnitudes against d
with ideal codes and with Huffman codes (whose rates move in steps, so their
"derivative" is a finite difference over a step in l). The synthetic lemma check
(H - ln M against M) is in ``tokentree run hooke``; the measuring is
:func:`tokentree.verification.depth.depth_records`.

    tokentree run depth-pareto           # about a minute on 2 cores
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tokentree.compression.mixture import Shares, check_size
from tokentree.data.scenario import sample_from_pools
from tokentree.data.text import BUILTIN_CORPORA, encode_builtin_corpora, load_tokenizer
from tokentree.framework.config import Checked, bounded
from tokentree.framework.report import ExperimentReport, Section
from tokentree.framework.runner import run_cases
from tokentree.framework.tables import Column, Table
from tokentree.infra.errors import InputError
from tokentree.verification.depth import DepthRecord, depth_records

__all__ = ["NAME", "Config", "DepthRecord", "Result", "run"]

NAME = "depth-pareto"


@dataclass(frozen=True)
class Config(Checked):
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

    seed: int = bounded(0, minimum=0)
    corpora: tuple[str, ...] = bounded(("pydoc-paragraphs", "tweets-positive", "tweets-negative"),
                                       choices=sorted(BUILTIN_CORPORA))
    tokenizer: str = "gpt2"
    max_responses: int = bounded(0, minimum=0)
    depths: tuple[int, ...] = bounded((1, 2, 3, 4, 5, 6, 8), minimum=1, maximum=64)
    k: float = 1000.0
    betas: tuple[float, ...] = (0.5, 0.3, 0.2)
    n_align: int = bounded(500, minimum=1)
    n_perturb: int = bounded(500, minimum=1)
    huffman_step: float = 0.5

    def validate(self) -> None:
        if len(self.corpora) != 3:
            raise InputError(f"corpora names D_1, D_2, D_3: three corpora; got {list(self.corpora)}")
        check_size(self.k, "k")
        Shares.of(self.betas, positive=True)
        check_size(self.huffman_step, "huffman_step")

    @classmethod
    def quick(cls) -> Config:
        return cls(max_responses=800, depths=(1, 2, 4), n_align=200, n_perturb=200)


MAIN = Table("records", "Fitted tails, the lemma and the ratio against depth", [
    Column("depth", "d"), Column("corpus"), Column("n_symbols", "symbols M"), Column("fitted_alpha", "alpha", ".3f"),
    Column("ks_statistic", "KS", ".3f"), Column("entropy_minus_log_m_nats", "H - ln M", ".3f", "nats"),
    Column("lemma_nats", "lemma", ".3f", "nats"), Column("ratio_normalised", "ideal R(0)/(-k L_p/L_a)", ".12f"),
    Column("huffman_ratio_normalised", "Huffman ratio/(-k L_p/L_a)", ".4g"),
    Column("depth_times_d_rate_align_bits", "d * d gamma_a/dl", ".4g", "bits"),
])


@dataclass(frozen=True, eq=False, repr=False)
class Result(ExperimentReport):
    EXPERIMENT = NAME
    PLOTS = ("alpha_vs_depth", "ratio_vs_depth")

    config: Config
    records: Sequence[DepthRecord]
    seconds: float = field(default=0.0)

    def title(self) -> str:
        return "depth-pareto: capacity depth and the Pareto normalisation (real text)"

    def intro(self) -> str:
        c = self.config
        return (f"Corpora {list(c.corpora)} ({c.tokenizer} tokens), k = {c.k:g}, betas {list(c.betas)}, seed "
                f"{c.seed}. Run time {self.seconds:.1f} s. No verdicts: the table is the result (docs/theory.md §5.6, "
                "§5.7 and §6 on real text).\n\nalpha: maximum-likelihood Pareto exponent of the pruned tree's symbol "
                "masses (tail chosen by KS distance). Lemma: ln(alpha/(alpha-1)) - 1/(alpha-1) at that alpha. Ratios "
                "are normalised by the exact ideal-code value -k L_p/L_a; the Huffman ratio is a finite difference "
                f"over l = 0 -> {c.huffman_step:g}, infinite where D_p's Huffman rate did not move at all (its code "
                "lengths are piecewise constant in l).")

    def sections(self) -> Sequence[Section]:
        return [(MAIN, self.records)]

    def terminal_tables(self) -> Sequence[tuple[Table, Sequence[Any]]]:
        return [(MAIN, self.records)]

    def plot(self, folder: Path) -> None:
        from tokentree.plots.depth_pareto import plot_alpha_vs_depth, plot_ratio_vs_depth

        c = self.config
        plot_alpha_vs_depth(self.records, c.corpora, folder / "alpha_vs_depth.png")
        plot_ratio_vs_depth([r for r in self.records if r.corpus == c.corpora[0]], huffman_step=c.huffman_step,
                            k=c.k, path=folder / "ratio_vs_depth.png")


def run(config: Config, *, show_progress: bool | None = None) -> Result:
    """Encode the corpora, draw D_a and D_t, and measure every corpus at every depth."""
    start = time.perf_counter()
    tokenizer = load_tokenizer(config.tokenizer)
    pools = encode_builtin_corpora(config.corpora, tokenizer, max_responses=config.max_responses, seed=config.seed,
                                   show_progress=show_progress)
    sample = sample_from_pools(pools, n_align=config.n_align, n_perturb=config.n_perturb,
                               rng=np.random.default_rng([config.seed, 300]))
    runs = run_cases(config.depths, lambda d: {"records": depth_records(
        pools, config.corpora, sample, depth=d, vocab_size=tokenizer.get_vocab_size(), k=config.k, betas=config.betas,
        huffman_step=config.huffman_step)}, desc="depths", show=show_progress)
    return Result(config, runs.tables["records"], seconds=time.perf_counter() - start)
