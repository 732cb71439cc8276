"""Typed records of the Theorem 4.2 verification: one frozen dataclass per kind of row.

Every record is a :class:`~tokentree.infra.results.Record`, so it flattens to a table row
with stable column names (docs/experiments.md §E0 lists them). Units are in the names:
``_bits`` is bits per token (for a derivative: per unit of l), ``_nats`` nats per symbol.
Infinite or undefined values stay floats here; in a table they are written as null
and the ``nonfinite`` column gives the reason from ``NONFINITE_REASONS``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar

from tokentree.infra.results import Record

__all__ = [
    "SweepRecord",
    "NovelControl",
    "OverlapControl",
    "HuffmanStepControl",
    "FiniteStepControl",
    "SplitControl",
    "ParetoCheck",
    "HookeControls",
]

_AT_L_STAR = "R = (d gamma_a/dl)/(d gamma_p/dl) divides by d gamma_p/dl = 0 (l = l*)"
_UNSEEN = "D_t has symbols that the model gives no mass (possible only at l = 0)"


@dataclass(frozen=True)
class SweepRecord(Record):
    """One point (k, l) of a sweep at one depth: simulated and closed-form rates, derivatives, the ratio.

    ``ratio_l0_exact`` is -k L_p/L_a, the exact l -> 0 ratio (-k when every symbol has d
    tokens); ``*_closed_form*`` columns are the disjoint-component model's values (exact
    only when ``disjoint``). ``theorem_3_4_rate_*_bits`` is the paper's Theorem 3.4 estimate.
    """

    NONFINITE_REASONS: ClassVar[dict[str, str]] = {
        "rate_perturb_bits": _UNSEEN,
        "huffman_rate_perturb_bits": _UNSEEN,
        "d_rate_perturb_bits": _UNSEEN + "; gamma_t falls without bound as l -> 0+",
        "ratio": _AT_L_STAR,
        "ratio_closed_form": "the closed form's denominator beta_3 (1 + l) - l is 0 (l = l*)",
        "l_star": "gamma_p does not turn within the l range searched",
        "kl_pretrained_to_current_bits": "D_p has symbols that the model gives no mass",
    }

    data: str
    alpha: float | None
    depth: int
    k: float
    betas: tuple[float, ...]
    l: float
    disjoint: bool
    n_symbols: int
    mean_symbol_tokens_pretrain: float
    mean_symbol_tokens_align: float
    mean_symbol_tokens_perturb: float
    rate_pretrain_bits: float
    rate_align_bits: float
    rate_perturb_bits: float
    huffman_rate_pretrain_bits: float
    huffman_rate_align_bits: float
    huffman_rate_perturb_bits: float
    theorem_3_4_rate_pretrain_bits: float
    theorem_3_4_rate_align_bits: float
    theorem_3_4_rate_perturb_bits: float
    d_rate_pretrain_bits: float
    d_rate_align_bits: float
    d_rate_perturb_bits: float
    rate_pretrain_closed_form_bits: float
    rate_align_closed_form_bits: float
    rate_perturb_closed_form_bits: float
    d_rate_pretrain_closed_form_bits: float
    d_rate_align_closed_form_bits: float
    d_rate_perturb_closed_form_bits: float
    ratio: float
    ratio_l0_exact: float
    ratio_closed_form: float
    l_star: float
    l_star_closed_form: float
    identity_residual: float
    kl_pretrained_to_current_bits: float
    behaviour_proxy: float


@dataclass(frozen=True)
class NovelControl(Record):
    """Item 5.4: D_t moved onto fresh symbols. Predicted R(0) = +L_p/L_a (+1 with full blocks)."""

    data: str
    alpha: float | None
    depth: int
    k: float
    ratio_l0: float
    predicted_ratio_l0: float
    identity_residual: float


@dataclass(frozen=True)
class OverlapControl(Record):
    """Item 5.5: D_t drawn like D_2. Predicted d gamma_a/dl(0) < 0 (closed form for disjoint parts)."""

    NONFINITE_REASONS: ClassVar[dict[str, str]] = {
        "d_rate_align_l0_closed_form_bits": "the closed form applies only to disjoint symbol sets",
    }

    data: str
    alpha: float | None
    depth: int
    k: float
    d_rate_align_l0_bits: float
    d_rate_align_l0_closed_form_bits: float
    identity_residual: float


@dataclass(frozen=True)
class HuffmanStepControl(Record):
    """Item 5.7: on ``n_steps`` small steps of l up to ``l_max``, how often each rate of D_a moved."""

    data: str
    alpha: float | None
    depth: int
    k: float
    l_max: float
    n_steps: int
    ideal_steps_changed: int
    huffman_steps_changed: int


@dataclass(frozen=True)
class FiniteStepControl(Record):
    """Item 5.1, finite form: sum_X n_X(l0) L_X [gamma_X(l1) - gamma_X(l0)] = N0 KL(q0 || q1) >= 0.

    ``left_bits`` and ``right_bits`` are the two sides, in bits (summed over the datasets).
    """

    data: str
    alpha: float | None
    depth: int
    k: float
    l0: float
    l1: float
    left_bits: float
    right_bits: float


@dataclass(frozen=True)
class SplitControl(Record):
    """Item 5.8 at one depth: D_t drawn from held-out D_3 text (independent) or from D_3 itself (resampled).

    ``shared_mass_*`` is the share of D_t's mass on symbols D_3 has; ``ratio_l0_*`` the
    measured R(0) and ``ratio_l0_exact_*`` its exact value -k L_p/L_a.
    """

    NONFINITE_REASONS: ClassVar[dict[str, str]] = {"ratio_l0_independent": _AT_L_STAR}

    depth: int
    k: float
    n_symbols: int
    shared_mass_independent: float
    ratio_l0_independent: float
    ratio_l0_exact_independent: float
    shared_mass_resampled: float
    ratio_l0_resampled: float
    ratio_l0_exact_resampled: float

    def normalised(self, which: str) -> float:
        """R(0) / (-k L_p/L_a) for the ``"independent"`` or ``"resampled"`` perturbation."""
        ratio: float = getattr(self, f"ratio_l0_{which}")
        exact: float = getattr(self, f"ratio_l0_exact_{which}")
        return ratio / exact


@dataclass(frozen=True)
class ParetoCheck(Record):
    """Section 6 at one (alpha, M): H - ln M of Pareto leaves over seeds against the lemma, in nats."""

    NONFINITE_REASONS: ClassVar[dict[str, str]] = {
        "lemma_nats": "the lemma needs alpha > 1",
        "error_nats": "the lemma needs alpha > 1",
        "fitted_alpha": "alpha is fitted only for M >= 1000 leaves",
    }

    alpha: float
    n_leaves: int
    entropy_minus_log_m_nats: float
    spread_nats: float
    lemma_nats: float
    error_nats: float
    fitted_alpha: float


@dataclass(frozen=True)
class HookeControls:
    """The controls of one verification run, by kind."""

    novel: Sequence[NovelControl] = field(default_factory=tuple)
    overlap: Sequence[OverlapControl] = field(default_factory=tuple)
    huffman_steps: Sequence[HuffmanStepControl] = field(default_factory=tuple)
    finite_step: Sequence[FiniteStepControl] = field(default_factory=tuple)
    split: Sequence[SplitControl] = field(default_factory=tuple)
