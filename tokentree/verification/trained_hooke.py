"""hooke-trained's rows and their summaries over seeds: one row per seed, k and step of D_t, one summary per
(k, step), log-log slopes against k (docs/experiments.md §E4h)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from tokentree.framework.aggregate import loglog_slope, seed_stats
from tokentree.infra.results import Record

__all__ = ["TrainedRecord", "CellSummary", "SlopeRecord", "SLOPES", "summarise", "loglog_slopes"]


@dataclass(frozen=True)
class TrainedRecord(Record):
    """One seed, one k, one amount of D_t: the trained model's rates and the mixture's changes.

    ``rate_*_base_bits``: the pre-trained model; ``rate_*_0_bits``: after alignment (l = 0);
    ``rate_*_bits``: after l |D_a| responses of D_t; ``delta_*_bits`` = rate - rate_0.
    ``mixture_*``: Theorem 4.2's mixture on the same data (``mixture_ratio_l0`` analytic).
    All rates are bits per token.
    """

    NONFINITE_REASONS: ClassVar[dict[str, str]] = {"ratio": "gamma_p did not change (delta_pretrain_bits = 0)"}

    seed: int
    step: int
    k: float
    k_requested: float
    l: float
    n_pretrain: int
    pretrain_epochs: int
    n_align: int
    n_perturb: int
    rate_pretrain_base_bits: float
    rate_align_base_bits: float
    rate_pretrain_0_bits: float
    rate_align_0_bits: float
    rate_perturb_0_bits: float
    rate_pretrain_bits: float
    rate_align_bits: float
    rate_perturb_bits: float
    delta_pretrain_bits: float
    delta_align_bits: float
    delta_perturb_bits: float
    ratio: float
    mixture_ratio_l0: float
    mixture_ratio: float
    mixture_delta_align_bits: float
    mixture_delta_pretrain_bits: float


#: The quantities summarised over seeds in every (k, step) cell.
_SUMMARISED = (
    "delta_align_bits",
    "delta_pretrain_bits",
    "ratio",
    "mixture_delta_align_bits",
    "mixture_delta_pretrain_bits",
    "mixture_ratio",
    "mixture_ratio_l0",
)


@dataclass(frozen=True)
class CellSummary(Record):
    """One (k, step of D_t) cell over seeds: means and sample standard deviations.

    ``delta_*_resolved``: the mean change is at least two standard errors from zero.
    ``gamma_a_rose`` / ``gamma_p_fell``: seeds in which gamma_a rose / gamma_p fell.
    ``alignment_change_*_bits``: the alignment step's own change (aligned minus pre-trained), mean.
    """

    k: float
    step: int
    l: float
    n_seeds: int
    delta_align_bits_mean: float
    delta_align_bits_std: float
    delta_pretrain_bits_mean: float
    delta_pretrain_bits_std: float
    ratio_mean: float
    ratio_std: float
    mixture_delta_align_bits_mean: float
    mixture_delta_align_bits_std: float
    mixture_delta_pretrain_bits_mean: float
    mixture_delta_pretrain_bits_std: float
    mixture_ratio_mean: float
    mixture_ratio_std: float
    mixture_ratio_l0_mean: float
    mixture_ratio_l0_std: float
    delta_align_resolved: bool
    delta_pretrain_resolved: bool
    gamma_a_rose: int
    gamma_p_fell: int
    alignment_change_align_bits: float
    alignment_change_pretrain_bits: float

    NONFINITE_REASONS: ClassVar[dict[str, str]] = {f"{q}_std": "one seed has no spread" for q in _SUMMARISED}


@dataclass(frozen=True)
class SlopeRecord(Record):
    """Log-log slope against k of a mean quantity at one step of D_t, trained and mixture."""

    NONFINITE_REASONS: ClassVar[dict[str, str]] = {
        "trained": "fewer than two k values, or a zero mean",
        "mixture": "fewer than two k values, or a zero mean",
    }

    quantity: str
    theory: float
    step: int
    l: float
    trained: float
    mixture: float


def summarise(records: Sequence[TrainedRecord]) -> list[CellSummary]:
    """One summary per (k, step of D_t): the seeds' mean and spread of the changes and ratios."""
    rows = []
    for k, step in sorted({(r.k_requested, r.step) for r in records}):
        cell = [r for r in records if r.k_requested == k and r.step == step]
        stats = {q: seed_stats([getattr(r, q) for r in cell]) for q in _SUMMARISED}
        values: dict[str, Any] = {}
        for q, st in stats.items():
            values[f"{q}_mean"], values[f"{q}_std"] = st.mean, st.std
        rows.append(
            CellSummary(
                k=float(np.mean([r.k for r in cell])),
                step=step,
                l=float(np.mean([r.l for r in cell])),
                n_seeds=len(cell),
                delta_align_resolved=stats["delta_align_bits"].resolved,
                delta_pretrain_resolved=stats["delta_pretrain_bits"].resolved,
                gamma_a_rose=stats["delta_align_bits"].n_positive,
                gamma_p_fell=stats["delta_pretrain_bits"].n_negative,
                alignment_change_align_bits=float(
                    np.mean([r.rate_align_0_bits - r.rate_align_base_bits for r in cell])
                ),
                alignment_change_pretrain_bits=float(
                    np.mean([r.rate_pretrain_0_bits - r.rate_pretrain_base_bits for r in cell])
                ),
                **values,
            )
        )
    return rows


#: log-log slopes against k reported by the experiment: the mean quantity, and the mixture theory's value at l -> 0.
SLOPES = {
    "ratio_mean": ("|ratio|", 1.0),
    "delta_align_bits_mean": ("|d gamma_a|", -1.0),
    "delta_pretrain_bits_mean": ("|d gamma_p|", -2.0),
}


def loglog_slopes(rows: Sequence[CellSummary]) -> list[SlopeRecord]:
    """Per step of D_t and quantity: the slope of log |mean| against log k, trained and mixture."""
    out = []
    for key, (label, theory) in SLOPES.items():
        for step in sorted({r.step for r in rows}):
            cell = [r for r in rows if r.step == step]
            ks = [r.k for r in cell]
            out.append(
                SlopeRecord(
                    quantity=label,
                    theory=theory,
                    step=step,
                    l=float(np.mean([r.l for r in cell])),
                    trained=loglog_slope(ks, [getattr(r, key) for r in cell]),
                    mixture=loglog_slope(ks, [getattr(r, f"mixture_{key}") for r in cell]),
                )
            )
    return out
