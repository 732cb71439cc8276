"""rebound-scale's rows and claims: rebound against model size and pre-training volume (docs/experiments.md §E4x).

One :class:`ScaleCurve` per seed, base model and n_pos. The claims are orderings over seeds:
S1 and S2 "the initial drop / stage-1 gain grows along the sweep", judged by Page's L with
seeds as blocks (3 or more levels; only ranks within a seed count) or by a per-seed slope on
log x (2 levels), Holm over the n_pos cells; S3 a paired test of the last against the first
share of pre-training (:mod:`tokentree.framework.stats`, :mod:`tokentree.framework.decisions`).
A seed whose stage 1 did not raise the log-odds (no ratio) is left out of that cell.

>>> rows = [ScaleCurve(s, "size", i, 1000 * 10**i, 100, 1.0, 30, 1.0, d, d, 50.0, 1.0)
...         for s in range(8) for i, d in enumerate((0.01 + 0.001 * s, 0.02, 0.03))]
>>> v = judge(rows, [30], [1.0])[0]
>>> v.item, v.status.value, v.values["n"]
('S1', 'holds', 8.0)
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from tokentree.framework.aggregate import mean_sd_text
from tokentree.framework.decisions import decide, decide_cells
from tokentree.framework.stats import SeedTest, page_test, paired_test, slope_test
from tokentree.framework.tables import Column, Table
from tokentree.framework.verdicts import Verdict, VerdictStatus
from tokentree.infra.results import Record
from tokentree.verification import curves
from tokentree.verification.trained import gated_verdict

__all__ = ["ScaleCurve", "scale_curve", "groups", "sweep_table", "judge"]

SECTION = "docs/experiments.md §E4x"


@dataclass(frozen=True)
class ScaleCurve(Record):
    """One rebound curve from one base model (``size_index``: its place in ``sizes``; parameters vary a little
    with each seed's tokenizer). ``initial_drop_normalised``: log-odds lost per negative at the start / the
    stage-1 gain; ``knee``: the negatives at half the total drop; ``lr_scale``: the base's pre-training lr as a
    multiple of its size's (the base-rate sweep; 1 for every claim but S1@lr)."""

    NONFINITE_REASONS: ClassVar[dict[str, str]] = {"initial_drop_normalised": "stage 1 did not raise the log-odds",
                                                   "knee": "the log-odds did not drop over the negatives"}

    seed: int
    sweep: str
    size_index: int
    n_parameters: int
    pretrain_tokens: int
    pretrain_fraction: float
    n_pos: int
    stage1_gain_nats: float
    initial_drop: float
    initial_drop_normalised: float
    knee: float
    total_drop_nats: float
    lr_scale: float = 1.0


def scale_curve(n_neg: Sequence[int], base_log_odds: float, log_odds: Sequence[float], **where: Any) -> ScaleCurve:
    """The row of one rebound curve: theta_0's log-odds, then after 0, n_neg[1], ... negatives; ``where``: the
    fields that say which run it is (seed, sweep, size_index, n_parameters, ..., n_pos, lr_scale)."""
    gain, drop = log_odds[0] - base_log_odds, curves.initial_slope(n_neg, log_odds)
    return ScaleCurve(**where, stage1_gain_nats=gain, initial_drop=drop,
                      initial_drop_normalised=drop / gain if gain > 0 else math.nan, knee=curves.knee(n_neg, log_odds),
                      total_drop_nats=log_odds[0] - log_odds[-1])


def groups(records: Sequence[ScaleCurve], sweep: str, n_pos: int, lr_scale: float = 1.0) -> list[
        tuple[float, list[ScaleCurve]]]:
    """(size index or pre-training fraction, its curves over seeds sorted by seed), in increasing order."""
    key = "size_index" if sweep == "size" else "pretrain_fraction"
    rows = sorted((r for r in records if r.sweep == sweep and r.n_pos == n_pos and r.lr_scale == lr_scale),
                  key=lambda r: r.seed)
    return [(x, [r for r in rows if getattr(r, key) == x]) for x in sorted({getattr(r, key) for r in rows})]


def sweep_table(sweep: str, label: str) -> Table:
    """The table of one sweep: rows {"n_pos", "x", "rows"}, each measure as mean ± sd over seeds."""
    def ms(key: str, fmt: str = ".3g") -> Column:
        return Column(key, value=lambda g: mean_sd_text([getattr(r, key) for r in g["rows"]], fmt))
    shown = ",.0f" if sweep == "size" else ".0%"
    return Table(f"against_{sweep}", f"Against {label} (mean ± sd over seeds)", [
        Column("n_pos"), Column(label, value=lambda g: format(g["x"], shown)),
        ms("stage1_gain_nats", ".2f"), ms("initial_drop_normalised"), ms("knee", ".0f"),
        ms("total_drop_nats", ".2f")])


def _matrix(found: Sequence[tuple[float, list[ScaleCurve]]]) -> np.ndarray:
    """Initial drop / gain, seeds x levels, over the seeds with a finite value at every level."""
    at = [{r.seed: r.initial_drop_normalised for r in rows} for _, rows in found]
    if not at:
        return np.empty((0, 0))
    seeds = sorted(s for s in set.intersection(*(set(a) for a in at)) if all(np.isfinite(a[s]) for a in at))
    return np.array([[a[s] for a in at] for s in seeds], dtype=float).reshape(len(seeds), len(at))


def _verdict(item: str, claim: str, tests: list[SeedTest], labels: list[str], note: str, untestable: str) -> Verdict:
    if not tests:
        why = "; ".join(p for p in (untestable, "fewer than two seeds with a finite initial drop / gain at every level")
                        if p)
        return Verdict(item, claim, VerdictStatus.NOT_DETECTABLE, f"not detectable at this regime: {why}", SECTION,
                       {"cells": 0.0})
    decision = decide_cells(tests, labels=labels) if len(tests) > 1 else decide(tests[0])
    v = gated_verdict(item, claim, decision, SECTION, untestable=untestable)
    return dataclasses.replace(v, evidence=f"{v.evidence}{note}")


def _trend(records: Sequence[ScaleCurve], sweep: str, n_pos_values: Sequence[int], lr_scale: float = 1.0) -> tuple[
        list[SeedTest], list[str], str]:
    """One trend test per n_pos along ``sweep`` (Page's L for 3+ levels, else a slope on log x), and the gains."""
    tests, labels, gains = [], [], []
    for n_pos in n_pos_values:
        found = groups(records, sweep, n_pos, lr_scale)
        x = [float(np.mean([r.n_parameters if sweep == "size" else r.pretrain_tokens for r in rows]))
             for _, rows in found]
        gains.append(f"n_pos {n_pos}: " + ", ".join(f"{np.nanmean([r.stage1_gain_nats for r in rows]):.2f}"
                                                    for _, rows in found))
        if (m := _matrix(found)).shape[0] >= 2 and len(x) >= 2:
            tests.append(page_test(m) if len(x) >= 3 else slope_test(x, m))
            labels.append(f"n_pos {n_pos}")
    return tests, labels, f"; stage-1 gains {'; '.join(gains)}"


def judge(records: Sequence[ScaleCurve], n_pos_values: Sequence[int], fractions: Sequence[float], *,
          untestable: Sequence[str] = ("", ""), lr_scales: Sequence[float] = (),
          lr_untestable: Mapping[float, str] | None = None) -> list[Verdict]:
    """S1-S3 (see the module docstring); ``untestable``: what the size and the volume sweep miss of the premise.

    With ``lr_scales`` (the base-rate sweep), S1@lr xS: the size claim again with every size pre-trained at S
    times its learning rate (``lr_untestable[S]``: that sweep's premise problems).
    """
    def trend(item: str, claim: str, sweep: str, gate: str, lr_scale: float = 1.0) -> Verdict:
        return _verdict(item, claim, *_trend(records, sweep, n_pos_values, lr_scale), gate)

    s1 = trend("S1", "more parameters, faster rebound (initial drop / stage-1 gain grows with size)", "size",
               untestable[0])
    s2 = trend("S2", "more pre-training, faster rebound (initial drop / stage-1 gain grows with pre-training)",
               "volume", untestable[1])
    first, tests, labels = min(fractions), [], []
    for n_pos in n_pos_values:
        found = [(x, rows) for x, rows in groups(records, "volume", n_pos) if x in (first, 1.0)]
        if len(found) == 2 and (m := _matrix(found)).shape[0] >= 2:
            tests.append(paired_test(m[:, 1], m[:, 0]))
            labels.append(f"n_pos {n_pos}")
    s3 = _verdict("S3", f"rebound is weaker early in pre-training ({first:.0%}) than at its end", tests, labels, "",
                  untestable[1])
    sweep = [trend(f"S1@lr x{s:g}", f"S1 with every size pre-trained at {s:g} x its learning rate", "size",
                   (lr_untestable or {}).get(s, ""), s) for s in sorted(set(lr_scales) - {1.0})]
    return [s1, s2, s3, *sweep]
