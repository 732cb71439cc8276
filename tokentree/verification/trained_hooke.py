"""hooke-trained's rows, their summaries over seeds and its claims (docs/experiments.md §E4h).

One :class:`TrainedRecord` per seed, k and step of D_t; one :class:`CellSummary` per (k, step);
log-log slopes against k. The claims (:data:`HOOKE_TRAINED_CLAIMS`) are judged at the smallest
l, per k, by the calibrated rule of :mod:`tokentree.framework.decisions` (paired t over seeds,
Holm over the k cells), only on the cells whose regime meets the premise: the judges read the
tables ``records`` and ``regime`` (rows with ``k_requested``, ``premise_met``, ``problems``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from tokentree.framework.aggregate import loglog_slope, seed_stats
from tokentree.framework.claims import Claim, Finding, Tables
from tokentree.framework.decisions import decide, decide_cells
from tokentree.framework.stats import paired_test, slope_test
from tokentree.framework.verdicts import VerdictStatus
from tokentree.infra.results import Record

__all__ = ["TrainedRecord", "CellSummary", "SlopeRecord", "SLOPES", "HOOKE_TRAINED_CLAIMS", "trained_records",
           "summarise", "loglog_slopes", "premise_cells"]

SECTION = "docs/experiments.md §E4h"


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

    ``delta_*_p``: the two-sided paired t p-value of the mean change over seeds (nan for one seed).
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
    delta_align_p: float
    delta_pretrain_p: float
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


def trained_records(runs: Any, theory: Any, *, seed: int, k: float, k_requested: float, n_align: int,
                    sizes: Sequence[int], n_pretrain: int, pretrain_epochs: int) -> list[TrainedRecord]:
    """One row per step of D_t from ``runs`` (``base``, ``aligned`` and ``after``: rates by dataset, as
    :class:`tokentree.lab.hooke_protocol.HookeRuns`) and ``theory`` (the mixture's changes, as
    :class:`tokentree.lab.mixture_reference.MixtureChanges`)."""
    before, start, rows = runs.base, runs.aligned, []
    for j, (n, now) in enumerate(zip(sizes, runs.after, strict=True)):
        delta = {name: now[name] - start[name] for name in ("pretrain", "align", "perturb")}
        rows.append(TrainedRecord(
            seed=seed, step=j, k=float(k), k_requested=float(k_requested), l=n / n_align, n_pretrain=n_pretrain,
            pretrain_epochs=pretrain_epochs, n_align=n_align, n_perturb=n, rate_pretrain_base_bits=before["pretrain"],
            rate_align_base_bits=before["align"], rate_pretrain_0_bits=start["pretrain"],
            rate_align_0_bits=start["align"], rate_perturb_0_bits=start["perturb"], rate_pretrain_bits=now["pretrain"],
            rate_align_bits=now["align"], rate_perturb_bits=now["perturb"], delta_pretrain_bits=delta["pretrain"],
            delta_align_bits=delta["align"], delta_perturb_bits=delta["perturb"],
            ratio=delta["align"] / delta["pretrain"] if delta["pretrain"] != 0 else math.nan,
            mixture_ratio_l0=float(theory.ratio_l0), mixture_ratio=float(theory.ratio[j]),
            mixture_delta_align_bits=float(theory.delta_align_bits[j]),
            mixture_delta_pretrain_bits=float(theory.delta_pretrain_bits[j]),
        ))
    return rows


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
                delta_align_p=paired_test([r.delta_align_bits for r in cell]).p_two_sided,
                delta_pretrain_p=paired_test([r.delta_pretrain_bits for r in cell]).p_two_sided,
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


# ----------------------------------------------------------------------------- claims
def premise_cells(tables: Tables) -> tuple[list[float], str]:
    """The k cells (``k_requested``) whose every regime row meets the premise, and the problems of the others."""
    ks = sorted({float(r["k_requested"]) for r in tables["regime"]})
    problems = {k: sorted({p for r in tables["regime"] if float(r["k_requested"]) == k and not r["premise_met"]
                           for p in r["problems"].split("; ")}) for k in ks}
    met = [k for k in ks if not problems[k]]
    return met, "; ".join(f"k = {k:g}: {', '.join(p)}" for k, p in problems.items() if p)


def _first_step(tables: Tables, k: float) -> list[Any]:
    return sorted((r for r in tables["records"] if r.step == 0 and r.k_requested == k), key=lambda r: r.seed)


def _not_detectable(problems: str, **values: float) -> Finding:
    return Finding(VerdictStatus.NOT_DETECTABLE, f"not detectable at this regime: {problems}", dict(values))


def _direction(key: str, alternative: Any) -> Any:
    """Judge: per k cell in the premise, the per-seed change ``key`` at the smallest l, against 0, Holm over k."""
    def judge(tables: Tables) -> Finding:
        met, problems = premise_cells(tables)
        if not met:
            return _not_detectable(problems, cells=0.0)
        tests = [paired_test([getattr(r, key) for r in _first_step(tables, k)], alternative=alternative, unit="bits")
                 for k in met]
        d = decide_cells(tests, labels=[f"k={k:g}" for k in met]) if len(tests) > 1 else decide(tests[0])
        mixture = ", ".join(f"k = {k:g}: {np.mean([getattr(r, f'mixture_{key}') for r in _first_step(tables, k)]):+.3g}"
                            for k in met)
        left_out = f"; left out, outside the premise: {problems}" if problems else ""
        values = d.values() if len(tests) > 1 else {f"k={met[0]:g}.{n}": v for n, v in d.values().items()}
        return Finding(d.status, f"{d.evidence}; the mixture on the same data: {mixture} bits{left_out}", values)
    return judge


def _shrinks(tables: Tables) -> Finding:
    met, problems = premise_cells(tables)
    if len(met) < 2:
        return _not_detectable(problems or "fewer than two values of k", cells=float(len(met)))
    per_seed = np.array([[abs(r.delta_align_bits) for r in _first_step(tables, k)] for k in met]).T
    with np.errstate(divide="ignore"):
        logs = np.log(np.maximum(per_seed, 1e-300))
    d = decide(slope_test(met, logs, alternative="less", unit="log bits"))
    mixture = loglog_slope(met, [np.mean([r.mixture_delta_align_bits for r in _first_step(tables, k)]) for k in met])
    left_out = f"; left out, outside the premise: {problems}" if problems else ""
    return Finding(d.status, f"{d.evidence}; slope of log |d gamma_a| on log k, the mixture's {mixture:.2f}{left_out}",
                   {**d.values(), "mixture_slope": mixture})


HOOKE_TRAINED_CLAIMS = (
    Claim("H1", "gamma_a rises when D_t joins the training data (d gamma_a > 0 at the smallest l, every k)", SECTION,
          _direction("delta_align_bits", "greater")),
    Claim("H2", "gamma_p falls when D_t joins the training data (d gamma_p < 0 at the smallest l, every k)", SECTION,
          _direction("delta_pretrain_bits", "less")),
    Claim("H3", "|d gamma_a| shrinks as k grows (the mixture: about k^-1)", SECTION, _shrinks),
)
