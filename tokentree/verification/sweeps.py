"""Sweeps of l = |D_t| / |D_a| with the closed form beside every number (docs/theory.md §5).

:func:`sweep_records` runs :func:`~tokentree.compression.elasticity.simulate_perturbation`
over a grid of l at one k and puts the disjoint-component closed form
(docs/theory.md §5.cf) and the paper's Theorem 3.4 estimate (docs/theory.md §3) next to
the simulated values, one :class:`~tokentree.verification.records.SweepRecord` per l.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from tokentree.compression.elasticity import disjoint_closed_form, simulate_perturbation
from tokentree.compression.mixture import Shares
from tokentree.compression.rates import theorem_3_4_rate
from tokentree.verification.inputs import HookeInputs
from tokentree.verification.records import SweepRecord

__all__ = ["sweep_records"]

_DATASETS = ("pretrain", "align", "perturb")


def sweep_records(
    inputs: HookeInputs, *, k: float, betas: Sequence[float] | Shares, l_values: Sequence[float]
) -> list[SweepRecord]:
    """One record per l: rates (ideal, Huffman, Theorem 3.4), derivatives, ratio, closed form.

    >>> from tokentree.data.scenario import scenario_sources
    >>> from tokentree.verification.inputs import inputs_from_sources
    >>> inputs = inputs_from_sources(scenario_sources(depth=3, n_leaves=20, rng=0))
    >>> [round(r.ratio, 9) for r in sweep_records(inputs, k=100.0, betas=(0.5, 0.3, 0.2), l_values=[0.0, 0.1])]
    [-100.0, -167.5]
    """
    shares = Shares.of(betas)
    setting = inputs.setting(k, shares)
    result = simulate_perturbation(setting, l_values)
    closed = disjoint_closed_form(k, shares, inputs.entropies_bits, result.l, depth=inputs.depth)
    mean_len = setting.mean_symbol_tokens
    records = []
    for i, l in enumerate(result.l.tolist()):
        t34 = theorem_3_4_rate(mean_len, inputs.depth, float(result.mixture_entropy_bits[i]))
        values = {}
        for j, name in enumerate(_DATASETS):
            values[f"mean_symbol_tokens_{name}"] = float(mean_len[j])
            values[f"rate_{name}_bits"] = float(getattr(result, f"rate_{name}_bits")[i])
            values[f"huffman_rate_{name}_bits"] = float(getattr(result, f"huffman_rate_{name}_bits")[i])
            values[f"theorem_3_4_rate_{name}_bits"] = float(t34[j])
            values[f"d_rate_{name}_bits"] = float(getattr(result, f"d_rate_{name}_bits")[i])
            values[f"rate_{name}_closed_form_bits"] = float(getattr(closed, f"rate_{name}_bits")[i])
            values[f"d_rate_{name}_closed_form_bits"] = float(getattr(closed, f"d_rate_{name}_bits")[i])
        records.append(
            SweepRecord(
                data=inputs.data,
                alpha=inputs.alpha,
                depth=inputs.depth,
                k=float(k),
                betas=shares.values,
                l=l,
                disjoint=inputs.disjoint,
                n_symbols=int(setting.pretrain.shape[0]),
                ratio=float(result.ratio[i]),
                ratio_l0_exact=float(result.minus_k_scaled),
                ratio_closed_form=float(closed.ratio[i]),
                l_star=float(result.l_star),
                l_star_closed_form=float(closed.l_star),
                identity_residual=float(result.identity_residual[i]),
                kl_pretrained_to_current_bits=float(result.kl_pretrained_to_current_bits[i]),
                behaviour_proxy=float(result.behaviour_proxy[i]) if result.behaviour_proxy is not None else math.nan,
                **values,
            )
        )
    return records
