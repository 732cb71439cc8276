"""The controls: cases where the theory says elasticity must fail, and the side checks.

* :func:`novel_control` (docs/theory.md §5.4): D_t's content absent from D_p; R(0) = +1.
* :func:`overlap_control` (§5.5): D_t drawn like D_2, so it overlaps D_a; d gamma_a/dl < 0.
* :func:`huffman_step_control` (§5.7): Huffman lengths are piecewise constant in q.
* :func:`finite_step_control` (§5.1): the identity for a finite step of l.
* :func:`split_sample_control` (§5.8): deep trees of finite samples break the effect.
* :func:`pareto_normalisation` (§6): the Pareto entropy lemma against M.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from tokentree.compression.elasticity import finite_step_identity, perturbation_setting, simulate_perturbation
from tokentree.compression.mixture import Shares
from tokentree.compression.pareto import fit_pareto
from tokentree.compression.rates import entropy
from tokentree.data.sequences import TokenSequences
from tokentree.data.synthetic import as_generator, pareto_entropy_gap_nats, pareto_masses
from tokentree.infra.errors import InputError
from tokentree.verification.inputs import HookeInputs, inputs_from_sequences
from tokentree.verification.records import (
    FiniteStepControl,
    HuffmanStepControl,
    NovelControl,
    OverlapControl,
    ParetoCheck,
    SplitControl,
)

__all__ = [
    "novel_control",
    "overlap_control",
    "huffman_step_control",
    "finite_step_control",
    "split_sample_control",
    "pareto_normalisation",
]

LN2 = math.log(2.0)


def _case(inputs: HookeInputs, k: float) -> dict[str, Any]:
    """The columns that say which case a control row belongs to."""
    return {"data": inputs.data, "alpha": inputs.alpha, "depth": inputs.depth, "k": float(k)}


def novel_control(inputs: HookeInputs, *, k: float, betas: Sequence[float] | Shares) -> NovelControl:
    """D_t's content moved onto fresh symbols that no other dataset has (docs/theory.md §5.4).

    Prediction: d gamma_p/dl = 1/(N L_p ln 2) and d gamma_a/dl = 1/(N L_a ln 2) at l = 0,
    so the ratio is +L_p / L_a (+1 with full blocks): no elasticity.
    """
    zeros = np.zeros_like(inputs.perturb)
    lengths = np.concatenate([inputs.symbol_lengths, inputs.symbol_lengths])
    padded = [np.concatenate([p, zeros]) for p in inputs.parts]
    setting = perturbation_setting(
        padded,
        np.concatenate([inputs.align, zeros]),
        np.concatenate([zeros, inputs.perturb]),
        k=k,
        betas=betas,
        symbol_lengths=lengths,
        depth=inputs.depth,
    )
    res = simulate_perturbation(setting, [0.0], l_star_search_max=0.0)
    mean_len = setting.mean_symbol_tokens
    return NovelControl(
        **_case(inputs, k),
        ratio_l0=float(res.ratio[0]),
        predicted_ratio_l0=float(mean_len[0] / mean_len[1]),
        identity_residual=float(res.identity_residual[0]),
    )


def overlap_control(inputs: HookeInputs, *, k: float, betas: Sequence[float] | Shares) -> OverlapControl:
    """D_t drawn like D_2 (it overlaps D_a); d gamma_a/dl can turn negative (docs/theory.md §5.5).

    For disjoint parts with P_a = P_t = P_2 the closed form is
    d gamma_a/dl(0) = [1 - (k + 1)/(beta_2 k + 1)] / ((k + 1) d ln 2) < 0.
    """
    res = simulate_perturbation(inputs.setting(k, betas, inputs.perturb_like_align), [0.0], l_star_search_max=0.0)
    b2 = Shares.of(betas)[1]
    predicted = (1 - (k + 1) / (b2 * k + 1)) / ((k + 1) * inputs.depth * LN2) if inputs.disjoint else math.nan
    return OverlapControl(
        **_case(inputs, k),
        d_rate_align_l0_bits=float(res.d_rate_align_bits[0]),
        d_rate_align_l0_closed_form_bits=predicted,
        identity_residual=float(res.identity_residual[0]),
    )


def huffman_step_control(
    inputs: HookeInputs, *, k: float, betas: Sequence[float] | Shares, l_max: float, n_steps: int = 40
) -> HuffmanStepControl:
    """On a fine grid of l, how often do the ideal and the Huffman rate of D_a move? (docs/theory.md §5.7)"""
    ls = np.linspace(0.0, l_max, n_steps + 1)
    res = simulate_perturbation(inputs.setting(k, betas), ls, l_star_search_max=0.0)
    return HuffmanStepControl(
        **_case(inputs, k),
        l_max=float(l_max),
        n_steps=n_steps,
        ideal_steps_changed=int(np.count_nonzero(np.diff(res.rate_align_bits))),
        huffman_steps_changed=int(np.count_nonzero(np.diff(res.huffman_rate_align_bits))),
    )


def finite_step_control(
    inputs: HookeInputs, *, k: float, betas: Sequence[float] | Shares, steps: Sequence[tuple[float, float]]
) -> list[FiniteStepControl]:
    """Both sides of sum_X n_X(l0) L_X [gamma_X(l1) - gamma_X(l0)] = N0 KL(q0 || q1) >= 0 (docs/theory.md §5.1)."""
    setting = inputs.setting(k, betas)
    out = []
    for l0, l1 in steps:
        left, right = finite_step_identity(setting, l0, l1)
        out.append(
            FiniteStepControl(
                **_case(inputs, k),
                l0=float(l0),
                l1=float(l1),
                left_bits=left,
                right_bits=right,
            )
        )
    return out


def split_sample_control(
    pools: Sequence[TokenSequences],
    *,
    depths: Sequence[int],
    k: float,
    betas: Sequence[float] | Shares,
    n_align: int,
    n_perturb: int,
    vocab_size: int,
    rng: int | np.random.Generator | None = None,
    mode: str = "chunk",
) -> list[SplitControl]:
    """Finite samples: D_t drawn from held-out D_3 text vs resampled from D_3 itself (docs/theory.md §5.8).

    The pool of D_3 is split in halves: one is the pre-training part D_3, the other is
    where the independent D_t comes from. Deep trees give the two samples disjoint
    leaves, so D_t looks novel (§5.4) and the ratio leaves -k. Resampling D_t from
    the pre-training part keeps its leaves inside D_3, and the exact -k L_p/L_a returns.
    """
    gen = as_generator(rng)
    pool1, pool2, pool3 = pools
    order = gen.permutation(pool3.n_sequences)
    half = pool3.n_sequences // 2
    part3, held_out = pool3.select(order[:half]), pool3.select(order[half:])
    if min(half, pool3.n_sequences - half, pool2.n_sequences) < 1:
        raise InputError("the D_2 and D_3 pools need at least two responses each for the split control")
    align = pool2.select(gen.integers(0, pool2.n_sequences, size=n_align))
    independent = held_out.select(gen.integers(0, held_out.n_sequences, size=n_perturb))
    resampled = part3.select(gen.integers(0, part3.n_sequences, size=n_perturb))
    out = []
    for d in depths:
        inp = inputs_from_sequences(
            (pool1, pool2, part3), align, independent, resampled, depth=d, vocab_size=vocab_size, mode=mode
        )
        measured = {}
        for name, p_t in (("independent", inp.perturb), ("resampled", inp.perturb_like_align)):
            res = simulate_perturbation(inp.setting(k, betas, p_t), [0.0], l_star_search_max=0.0)
            measured[f"shared_mass_{name}"] = float(p_t[inp.parts[2] > 0].sum())
            measured[f"ratio_l0_{name}"] = float(res.ratio[0])
            measured[f"ratio_l0_exact_{name}"] = float(res.minus_k_scaled)
        out.append(SplitControl(depth=int(d), k=float(k), n_symbols=int(inp.parts.shape[1]), **measured))
    return out


def pareto_normalisation(
    alphas: Sequence[float], sizes: Sequence[int], *, n_seeds: int = 5, rng: int | np.random.Generator | None = None
) -> list[ParetoCheck]:
    """H(P) - ln M of Pareto(alpha) leaf masses against ln(alpha/(alpha-1)) - 1/(alpha-1) (docs/theory.md §6).

    One row per (alpha, M): mean and standard deviation over seeds, the lemma's value,
    and the maximum-likelihood alpha fitted on the largest draw's tail.
    """
    gen = as_generator(rng)
    rows = []
    for a in alphas:
        predicted = pareto_entropy_gap_nats(a) if a > 1 else math.nan
        for m in sizes:
            draws = [pareto_masses(int(m), a, rng=gen) for _ in range(n_seeds)]
            gaps = np.array([entropy(p, base=math.e) - math.log(m) for p in draws])
            fit = fit_pareto(draws[0] * m) if m >= 1000 else None
            rows.append(
                ParetoCheck(
                    alpha=float(a),
                    n_leaves=int(m),
                    entropy_minus_log_m_nats=float(gaps.mean()),
                    spread_nats=float(gaps.std(ddof=1)),
                    lemma_nats=predicted,
                    error_nats=float(gaps.mean() - predicted),
                    fitted_alpha=math.nan if fit is None else fit.alpha,
                )
            )
    return rows
