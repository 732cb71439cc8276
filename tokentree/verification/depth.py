"""Capacity depth on real token trees: the fitted Pareto tail, the lemma and the Theorem 4.2 ratio at one depth
(docs/experiments.md §E1; docs/theory.md §5.6, §5.7 and §6)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from tokentree.compression.elasticity import simulate_perturbation
from tokentree.compression.pareto import fit_pareto
from tokentree.compression.rates import entropy
from tokentree.data.scenario import PoolSample
from tokentree.data.sequences import TokenSequences
from tokentree.data.synthetic import pareto_entropy_gap_nats
from tokentree.infra.results import Record
from tokentree.trees.build import build_tree
from tokentree.verification.inputs import inputs_from_sequences

__all__ = ["DepthRecord", "depth_records"]


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


def depth_records(
    pools: Sequence[TokenSequences], names: Sequence[str], sample: PoolSample, *, depth: int, vocab_size: int,
    k: float, betas: Sequence[float], huffman_step: float,
) -> list[DepthRecord]:
    """One :class:`DepthRecord` per pool (D_1, D_2, D_3 named ``names``) at ``depth``.

    D_a and D_t are ``sample.align`` and ``sample.perturb``; the ideal-code ratio at l = 0 is
    analytic, the Huffman one a finite difference over l = 0 -> ``huffman_step``.
    """
    inputs = inputs_from_sequences(list(pools), sample.align, sample.perturb, sample.perturb, depth=depth,
                                   vocab_size=vocab_size)
    res = simulate_perturbation(inputs.setting(k, betas), [0.0, huffman_step], l_star_search_max=0.0)
    exact = float(res.minus_k_scaled)
    d_huff_a = float(res.huffman_rate_align_bits[1] - res.huffman_rate_align_bits[0])
    d_huff_p = float(res.huffman_rate_pretrain_bits[1] - res.huffman_rate_pretrain_bits[0])
    huff_ratio = d_huff_a / d_huff_p if d_huff_p != 0 else math.copysign(math.inf, d_huff_a or 1.0)
    rows = []
    for name, pool in zip(names, pools, strict=True):
        masses = build_tree(pool, depth=depth, mode="chunk", vocab_size=vocab_size).symbols().mass
        fit = fit_pareto(masses)
        rows.append(DepthRecord(
            depth=int(depth), corpus=name, n_symbols=int(masses.shape[0]), fitted_alpha=fit.alpha,
            ks_statistic=fit.ks_statistic, n_tail=fit.n_tail,
            entropy_minus_log_m_nats=entropy(masses, base=math.e) - math.log(masses.shape[0]),
            lemma_nats=pareto_entropy_gap_nats(fit.alpha) if fit.alpha > 1 else math.nan,
            ratio_normalised=float(res.ratio[0]) / exact, huffman_ratio_normalised=huff_ratio / exact,
            huffman_step_align_bits=d_huff_a, huffman_step_pretrain_bits=d_huff_p,
            depth_times_d_rate_align_bits=depth * float(res.d_rate_align_bits[0]),
        ))
    return rows
