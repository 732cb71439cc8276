"""Verdicts of trained-model claims from calibrated decisions, gated by the regime (docs/experiments.md §regime).

A claim on trained models is decided over seeds (:mod:`tokentree.framework.decisions`);
when the run is outside the theory's premise, or the design's own precondition (slices
that differ, a stage 1 that took) does not hold, the verdict is "not detectable at this
regime" with the reason, and keeps the measured numbers in ``values``.

>>> from tokentree.framework.stats import paired_test
>>> from tokentree.framework.decisions import decide
>>> d = decide(paired_test([0.3, 0.5, 0.2, 0.4, 0.6, 0.3, 0.5, 0.4]))
>>> gated_verdict("X1", "positive", d, "docs/experiments.md §noise").status.value
'holds'
>>> v = gated_verdict("X1", "positive", d, "docs/experiments.md §noise", untestable="k = 10 < 100")
>>> v.status.value, v.evidence.split(";")[0], v.values["effect"]
('not detectable at this regime', 'not detectable at this regime: k = 10 < 100', 0.4)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from tokentree.framework.decisions import Decision, decide, decide_cells
from tokentree.framework.stats import paired_test, slope_test
from tokentree.framework.tables import Column, Table
from tokentree.framework.verdicts import Verdict, VerdictStatus

MIN_K = 100.0  # tokentree.lab.regime.MIN_K (lab is a sibling layer: not imported here)

__all__ = ["REGIME_TABLE", "premise_problems", "gated_verdict", "cells_of", "cells_decision", "cells_verdict",
           "order_verdict", "precondition_verdict", "sweep_verdicts", "mean_sd_cell"]

#: The regime side table of a trained experiment, one row per seed (and level of a sweep).
REGIME_TABLE = Table("regime", "Regime (per seed; docs/experiments.md §regime)", [
    Column("k", fmt=".3g"), Column("pretrain_tokens", "pre-training tokens"),
    Column("behaviour_tokens", "aligned tokens"), Column("plateau_slope", "plateau slope", ".3g"),
    Column("fine_tune_lr", "lr", "g"), Column("warmup_steps", "warmup"),
    Column("alignment_kl_nats", "alignment KL to theta_0", ".4f"), Column("problems", "premise problems"),
])


def mean_sd_cell(key: str, fmt: str, *, rows: str = "rows") -> Callable[[Mapping[str, Any]], str]:
    """A table cell: "mean ± sd" of ``key`` over the finite values of ``row[rows]`` ("never" if none; how many
    were not finite, if some)."""
    from tokentree.framework.aggregate import mean_sd_text

    def text(row: Mapping[str, Any]) -> str:
        values = np.array([getattr(r, key) for r in row[rows]], dtype=float)
        finite = values[np.isfinite(values)]
        never = f" ({values.size - finite.size} never)" if 0 < finite.size < values.size else ""
        return mean_sd_text(finite, fmt, missing="never") + never
    return text


def premise_problems(regimes: Sequence[Any]) -> str:
    """What the runs' regimes (:class:`~tokentree.lab.regime.TrainingRegime`) miss, each problem once ("" if none);
    k below the premise is said once, as the range over the runs (never for a model pre-trained elsewhere, whose k
    comes from its own pre-training)."""
    missing = [r for r in regimes if not r.premise_met]
    low = [r.k for r in missing if r.k < MIN_K and not getattr(r, "pretrained_elsewhere", False)]
    problems = [p for r in missing for p in r.problems.split("; ") if not p.startswith("k = ")]
    span = f"{min(low):.3g}" if low and min(low) == max(low) else f"{min(low, default=0):.3g}-{max(low, default=0):.3g}"
    return "; ".join([*([f"k = {span} < {MIN_K:g}"] if low else []), *dict.fromkeys(problems)])


def cells_of(rows: Sequence[Any], key: str, label: Callable[[Any], str]) -> dict[str, tuple[list[int], list[float]]]:
    """(seeds, values of ``key``) per cell ``label(row)``, in the order rows come."""
    cells: dict[str, tuple[list[int], list[float]]] = {}
    for r in rows:
        seeds, values = cells.setdefault(label(r), ([], []))
        seeds.append(r.seed)
        values.append(float(getattr(r, key)))
    return cells


def gated_verdict(item: str, claim: str, decision: Decision, reference: str, *, untestable: str = "") -> Verdict:
    """The decision as a verdict; NOT_DETECTABLE naming ``untestable`` when that is not empty."""
    status, evidence = decision.status, decision.evidence
    if untestable:
        status = VerdictStatus.NOT_DETECTABLE
        evidence = f"not detectable at this regime: {untestable}; measured: {evidence}"
    return Verdict(item, claim, status, evidence, reference, decision.values())


def cells_decision(cells: Mapping[str, tuple[Sequence[int], Sequence[float]]], *, unit: str = "nats",
                   null: float = 0.0) -> Decision:
    """"Above ``null`` in every cell": a one-sided paired test per cell (seeds as the unit), Holm over the cells.

    ``cells`` maps a label to (seeds, per-run values); runs sharing a seed are averaged first.
    """
    labels = sorted(cells)
    tests = [paired_test(cells[c][1], seeds=cells[c][0], unit=unit, null=null) for c in labels]
    return decide_cells(tests, labels=labels) if len(tests) > 1 else decide(tests[0])


def _not_detectable(item: str, claim: str, why: str, reference: str, **values: float) -> Verdict:
    return Verdict(item, claim, VerdictStatus.NOT_DETECTABLE, f"not detectable at this regime: {why}", reference,
                   {k: float(v) for k, v in values.items()})


def cells_verdict(item: str, claim: str, cells: Mapping[str, tuple[Sequence[int], Sequence[float]]], reference: str,
                  *, untestable: str = "", unit: str = "", null: float = 0.0) -> Verdict:
    """:func:`cells_decision` as a gated verdict, over the finite values (a cell with none is left out)."""
    finite = {c: ([s for s, v in zip(*cells[c], strict=True) if np.isfinite(v)],
                  [v for v in cells[c][1] if np.isfinite(v)]) for c in cells}
    finite = {c: sv for c, sv in finite.items() if len(set(sv[0])) >= 2}
    if not finite:
        return _not_detectable(item, claim, "no cell has a finite measurement in two seeds", reference,
                               cells=len(cells))
    return gated_verdict(item, claim, cells_decision(finite, unit=unit, null=null), reference, untestable=untestable)


def order_verdict(item: str, claim: str, levels: Sequence[float], values: np.ndarray, reference: str, *,
                  alternative: str = "greater", untestable: str = "") -> Verdict:
    """"The quantity increases (``alternative="less"``: decreases) along ``levels``": Page's L over seeds as blocks
    for 3 or more levels (infinities allowed: only ranks count), a per-seed slope on log level for 2.

    ``values`` has one row per seed, one column per level; rows with a nan are left out.
    """
    from tokentree.framework.stats import page_test

    m = np.asarray(values, dtype=np.float64)
    m = m[~np.isnan(m).any(axis=1)]
    if m.shape[0] < 2 or (m.shape[1] < 3 and not np.isfinite(m).all()):
        return _not_detectable(item, claim, "fewer than two seeds with a measurement at every level (or a level "
                               "never reached with only two levels)", reference, seeds=m.shape[0])
    test = page_test(m, alternative=alternative) if m.shape[1] >= 3 else slope_test(  # type: ignore[arg-type]
        levels, m, alternative=alternative)  # type: ignore[arg-type]
    return gated_verdict(item, claim, decide(test), reference, untestable=untestable)


def precondition_verdict(item: str, claim: str, seeds: Sequence[int], treatment: Sequence[float],
                         control: Sequence[float], reference: str, *, untestable: str = "") -> tuple[Verdict, bool]:
    """A design's precondition (treatment > control over seeds, e.g. the slices differ): the verdict, and whether
    it holds. Runs with a non-finite value are dropped; with fewer than two seeds left it is not detectable."""
    keep = [i for i in range(len(seeds)) if np.isfinite(treatment[i]) and np.isfinite(control[i])]
    if len({seeds[i] for i in keep}) < 2:
        return Verdict(item, claim, VerdictStatus.NOT_DETECTABLE, "not detectable at this regime: fewer than two "
                       "seeds have a finite measurement", reference, {"seeds": len({seeds[i] for i in keep})}), False
    decision = decide(paired_test([treatment[i] for i in keep], [control[i] for i in keep],
                                  seeds=[seeds[i] for i in keep]))
    verdict = gated_verdict(item, claim, decision, reference, untestable=untestable)
    return verdict, decision.status == VerdictStatus.HOLDS


def level_regimes(regimes: Sequence[Any], n_levels: int) -> tuple[list[float], list[str]]:
    """The mean k and the premise problems ("" when met) of each level of a sweep, from regime rows ordered by
    seed, then level."""
    per_level = [regimes[i::n_levels] for i in range(n_levels)]
    return [float(np.mean([r.k for r in lv])) for lv in per_level], [premise_problems(lv) for lv in per_level]


def level_testable(verdicts: Sequence[Verdict], item: str) -> list[bool]:
    """Per level of the sweep ``item`` (its ``item@i`` verdicts in order): whether the level was testable."""
    return [v.status != VerdictStatus.NOT_DETECTABLE for v in verdicts if v.item.startswith(f"{item}@")]


def sweep_verdicts(item: str, claim: str, k: Sequence[float], effects: np.ndarray, reference: str, *,
                   untestable: Sequence[str], unit: str = "nats", trend_untestable: str = "") -> list[Verdict]:
    """One verdict per level of a k sweep (the effect > 0 over seeds there), then "the effect grows with k".

    ``effects`` has one row per seed and one column per level of ``k`` (increasing);
    ``untestable[i]`` is what level i misses of the premise ("" when met). The trend is a per-seed
    slope on log k (:func:`~tokentree.framework.stats.slope_test`), judged whatever the levels' premise
    (low k outside it is what the sweep is for) unless ``trend_untestable`` says why it cannot be
    (levels where the design itself has no signal, whatever k).
    """
    out = [gated_verdict(f"{item}@{i + 1}", f"{claim} (level {i + 1}, k = {k_i:.3g})",
                         decide(paired_test(effects[:, i], unit=unit)), reference, untestable=untestable[i])
           for i, k_i in enumerate(k)]
    trend = decide(slope_test(k, effects, unit=unit))
    out.append(gated_verdict(f"{item}-trend", f"the effect appears as k grows: {claim} grows with log k", trend,
                             reference, untestable=trend_untestable))
    return out
