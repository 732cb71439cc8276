"""Theorem 4.2 on a user's own trees: D_p, D_a and D_t as token trees, in one call.

:func:`hooke_on_trees` puts the three trees on their shared symbol set, takes k = |D_p| /
|D_a| from their masses and the symbol lengths from the symbols themselves, sweeps l, and
says which regime the data are in (docs/theory.md §5):

* ``elastic``: D_t lies inside what the model already gives mass to, gamma_p falls and
  gamma_a rises at small l, and R(0) = -k L_p / L_a exactly;
* ``novel perturbation`` (§5.4, and §5.8 for deep trees of finite samples): some of D_t's
  mass is on symbols neither D_p nor D_a has, so gamma_t is infinite at l = 0 and R(0)
  leaves -k L_p / L_a (+L_p / L_a when all of it is novel);
* ``overlapping perturbation`` (§5.5): D_t shares D_a's symbols enough that adding it
  lowers gamma_a instead of raising it;
* ``no pull on D_p``: adding D_t does not make gamma_p fall at l = 0.

Outside the elastic regime a :class:`RegimeWarning` names the regime and what it means.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from tokentree.compression.elasticity import perturbation_setting, simulate_perturbation
from tokentree.compression.mixture import check_sizes
from tokentree.framework.verdicts import Verdict, VerdictStatus
from tokentree.infra.errors import InputError
from tokentree.infra.results import Record
from tokentree.trees.combine import align_symbols
from tokentree.trees.tree import TokenTree
from tokentree.verification.tolerances import IDENTITY, RATIO

__all__ = ["RegimeWarning", "TreeSweepRecord", "RegimeRecord", "TreesHooke", "hooke_on_trees", "REGIMES"]

REGIMES = ("elastic", "novel perturbation", "overlapping perturbation", "no pull on D_p")
DEFAULT_L = (0.0, 0.001, 0.01, 0.03, 0.1, 0.2, 0.3, 0.5, 1.0, 2.0)


class RegimeWarning(UserWarning):
    """The data are outside the regime where Theorem 4.2's conclusions hold (the message says which)."""


@dataclass(frozen=True)
class TreeSweepRecord(Record):
    """Rates and their analytic derivatives at one l (bits per token; derivatives per unit of l)."""

    NONFINITE_REASONS: ClassVar[dict[str, str]] = {
        "rate_perturb_bits": "D_t has mass on symbols the model gives none at l = 0 (a novel perturbation)",
        "d_rate_perturb_bits": "D_t has mass on symbols the model gives none at l = 0 (a novel perturbation)",
        "ratio": "d gamma_p/dl = 0 here (l = l*), or both derivatives are 0",
    }

    depth: int
    l: float
    k: float
    rate_pretrain_bits: float
    rate_align_bits: float
    rate_perturb_bits: float
    d_rate_pretrain_bits: float
    d_rate_align_bits: float
    d_rate_perturb_bits: float
    identity_residual: float
    ratio: float
    minus_k_scaled: float


@dataclass(frozen=True)
class RegimeRecord(Record):
    """Which regime the three trees are in, and the numbers that decide it."""

    NONFINITE_REASONS: ClassVar[dict[str, str]] = {
        "l_star": "gamma_p does not turn within l <= 1e6",
        "ratio_l0": "d gamma_p/dl = 0 at l = 0",
    }

    depth: int
    k: float
    n_symbols: int
    unseen_share: float
    novel_share: float
    overlap_with_align: float
    minus_k_scaled: float
    ratio_l0: float
    l_star: float
    d_rate_pretrain_l0_bits: float
    d_rate_align_l0_bits: float
    regime: str
    conditions_hold: bool
    explanation: str


@dataclass(frozen=True, eq=False, repr=False)
class TreesHooke:
    """What :func:`hooke_on_trees` found: the sweep, the regime and a verdict per claim."""

    sweep: Sequence[TreeSweepRecord]
    regime: RegimeRecord
    verdicts: Sequence[Verdict]

    def to_pandas(self) -> Any:
        from tokentree.infra.results import rows_of, to_pandas

        return to_pandas(rows_of(self.sweep))


def _check_trees(trees: Sequence[Any]) -> None:
    names = ("pretrain", "align", "perturb")
    for name, tree in zip(names, trees, strict=True):
        if not isinstance(tree, TokenTree):
            raise InputError(
                f"{name} is a {type(tree).__name__}; hooke_on_trees takes three TokenTree objects "
                "(tokentree.build_tree or tokentree.load_tree); for distributions use perturbation_setting"
            )
    first = trees[0].info
    for name, tree in zip(names[1:], trees[1:], strict=True):
        i = tree.info
        if (i.depth, i.mode, i.alphabet, i.weighting) != (first.depth, first.mode, first.alphabet, first.weighting):
            raise InputError(
                f"the trees must be built alike; {name} is ({i.depth}, {i.mode}, {i.alphabet}, {i.weighting}) "
                f"(depth, mode, alphabet, weighting) but pretrain is ({first.depth}, {first.mode}, "
                f"{first.alphabet}, {first.weighting}); rebuild them with the same options"
            )


def _classify(unseen: float, novel: float, overlap: float, d_p: float, d_a: float, r0: float, mk: float,
              l_star: float) -> tuple[str, str]:
    if novel > 0:
        return "novel perturbation", (
            f"{novel:.1%} of D_t's mass is on symbols neither D_p nor D_a has ({unseen:.1%} unseen by D_p): the "
            f"model gives them nothing at l = 0, so R(0) = {r0:.4g} instead of -k L_p/L_a = {mk:.4g} "
            "(docs/theory.md §5.4; with deep trees of finite samples, §5.8: lower the depth or use more data)"
        )
    if not d_a > 0 and overlap > 0:
        return "overlapping perturbation", (
            f"D_t overlaps D_a ({overlap:.1%} of its mass on D_a's symbols), and adding it lowers gamma_a "
            f"(d gamma_a/dl = {d_a:.3g} at l = 0): it helps the alignment data instead of pulling them back "
            "(docs/theory.md §5.5)"
        )
    if not (d_p < 0 < d_a):
        return "no pull on D_p", (
            f"at l = 0, d gamma_p/dl = {d_p:.3g} and d gamma_a/dl = {d_a:.3g}: adding D_t does not pull D_p's rate "
            "down and D_a's up, so there is no spring to stretch"
        )
    turn = f"gamma_p turns at l* = {l_star:.4g}" if math.isfinite(l_star) else "gamma_p does not turn for l <= 1e6"
    return "elastic", f"R(0) = {r0:.6g} = -k L_p/L_a = {mk:.6g}; {turn} (docs/theory.md §5.2-§5.3)"


def hooke_on_trees(
    pretrain: TokenTree,
    align: TokenTree,
    perturb: TokenTree,
    *,
    l_values: Sequence[float] = DEFAULT_L,
    k: float | None = None,
    warn: bool = True,
) -> TreesHooke:
    """Theorem 4.2 on three token trees (see the module docstring); k defaults to their mass ratio.

    >>> from tokentree import build_tree
    >>> p = build_tree([[1, 2], [3, 4], [5, 6]] * 30, depth=2)
    >>> a = build_tree([[3, 4]], depth=2); t = build_tree([[5, 6]], depth=2)
    >>> r = hooke_on_trees(p, a, t)
    >>> r.regime.regime, r.regime.k, round(r.regime.ratio_l0, 6)
    ('elastic', 90.0, -90.0)
    """
    trees = (pretrain, align, perturb)
    _check_trees(trees)
    ls = check_sizes(l_values, "l_values")
    if 0.0 not in ls:
        raise InputError("l_values must include 0 (the l -> 0 ratio is the theorem's claim)")
    aligned = align_symbols(list(trees))
    masses = aligned.masses.astype(np.float64)
    if np.any(masses.sum(axis=1) <= 0):
        raise InputError("every tree needs some mass; one of them is empty")
    k_value = float(masses[0].sum() / masses[1].sum()) if k is None else float(k)
    lengths = aligned.symbols.length.astype(np.float64)
    setting = perturbation_setting(masses[0], masses[1], masses[2], k=k_value, symbol_lengths=lengths,
                                   depth=pretrain.depth)
    result = simulate_perturbation(setting, ls)
    depth = pretrain.depth
    sweep = [
        TreeSweepRecord(
            depth=depth, l=float(ls[i]), k=k_value, rate_pretrain_bits=float(result.rate_pretrain_bits[i]),
            rate_align_bits=float(result.rate_align_bits[i]), rate_perturb_bits=float(result.rate_perturb_bits[i]),
            d_rate_pretrain_bits=float(result.d_rate_pretrain_bits[i]),
            d_rate_align_bits=float(result.d_rate_align_bits[i]),
            d_rate_perturb_bits=float(result.d_rate_perturb_bits[i]),
            identity_residual=float(result.identity_residual[i]), ratio=float(result.ratio[i]),
            minus_k_scaled=float(result.minus_k_scaled),
        )
        for i in range(ls.shape[0])
    ]
    p_t = masses[2] / masses[2].sum()
    unseen = float(p_t[masses[0] == 0].sum())
    novel = float(p_t[(masses[0] == 0) & (masses[1] == 0)].sum())
    overlap = float(p_t[masses[1] > 0].sum())
    at0 = int(np.flatnonzero(ls == 0.0)[0])
    d_p, d_a = float(result.d_rate_pretrain_bits[at0]), float(result.d_rate_align_bits[at0])
    r0, mk = float(result.ratio[at0]), float(result.minus_k_scaled)
    regime, explanation = _classify(unseen, novel, overlap, d_p, d_a, r0, mk, float(result.l_star))
    record = RegimeRecord(
        depth=depth, k=k_value, n_symbols=int(masses.shape[1]), unseen_share=unseen, novel_share=novel,
        overlap_with_align=overlap, minus_k_scaled=mk, ratio_l0=r0, l_star=float(result.l_star),
        d_rate_pretrain_l0_bits=d_p, d_rate_align_l0_bits=d_a, regime=regime,
        conditions_hold=regime == "elastic", explanation=explanation,
    )
    if warn and regime != "elastic":
        warnings.warn(RegimeWarning(f"depth {depth}: {regime}: {explanation}"), stacklevel=2)
    return TreesHooke(sweep, record, _verdicts(sweep, record))


def _verdicts(sweep: Sequence[TreeSweepRecord], regime: RegimeRecord) -> list[Verdict]:
    d = f"depth {regime.depth}"
    worst = max(r.identity_residual for r in sweep)
    out = [Verdict(
        "5.1", "sum_X |D_X| L_X d gamma_X/dl = 0 exactly", VerdictStatus.judge(worst < float(IDENTITY)),
        f"{d}: max relative residual {worst:.2g} over {len(sweep)} values of l", "docs/theory.md §5.1",
        {"depth": regime.depth, "max_relative_residual": worst, "tolerance": float(IDENTITY)},
    )]
    gap = abs(regime.ratio_l0 / regime.minus_k_scaled - 1) if math.isfinite(regime.ratio_l0) else math.inf
    if regime.novel_share > 0:
        status = VerdictStatus.judge(gap > float(RATIO), control=True)
    else:
        status = VerdictStatus.judge(gap < float(RATIO))
    out.append(Verdict(
        "5.2", "R(0) = -k L_p / L_a (when D_t lies inside what the model gives mass to)", status,
        f"{d}: R(0) = {regime.ratio_l0:.6g}, -k L_p/L_a = {regime.minus_k_scaled:.6g} (k = {regime.k:.4g}); "
        f"regime: {regime.regime}", "docs/theory.md §5.2",
        {"depth": regime.depth, "ratio_l0": regime.ratio_l0, "minus_k_scaled": regime.minus_k_scaled, "k": regime.k,
         "relative_gap": gap, "tolerance": float(RATIO)},
    ))
    if regime.regime == "novel perturbation":
        status = VerdictStatus.NOT_APPLICABLE
    elif regime.regime == "overlapping perturbation":
        status = VerdictStatus.FAILS_AS_PREDICTED
    else:
        status = VerdictStatus.judge(regime.d_rate_pretrain_l0_bits < 0 < regime.d_rate_align_l0_bits)
    out.append(Verdict(
        "5.3", "at small l, gamma_p falls and gamma_a rises", status,
        f"{d}: d gamma_p/dl = {regime.d_rate_pretrain_l0_bits:.3g}, d gamma_a/dl = "
        f"{regime.d_rate_align_l0_bits:.3g} bits per token at l = 0; l* = {regime.l_star:.4g}", "docs/theory.md §5.3",
        {"depth": regime.depth, "d_rate_pretrain_l0_bits": regime.d_rate_pretrain_l0_bits,
         "d_rate_align_l0_bits": regime.d_rate_align_l0_bits, "l_star": regime.l_star},
    ))
    return out
