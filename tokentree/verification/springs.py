"""The claims of the token-tree piggyback model (docs/theory.md §9; docs/experiments.md §E5t), judged on rows.

Each judge reads the table ``records`` of one fine-tune per intervention (rows with the
fields of ``piggyback_tree.InterventionRecord``: ``intervention``, ``parameter``,
``trunk_stiffness``, ``spill``, ``share_*``, ``trunk_shift``, ``other_domains_bits``,
``equilibrium_vs_closed_form``), ``predicted_shares`` (one row:
:func:`tokentree.trees.springs.predicted_shares`) and ``setting`` (one row with
``n_finetune``). They are exact claims: holds or unexpected.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

from tokentree.framework.claims import Claim, Finding, Tables

__all__ = ["SECTION", "EXACT", "PATCH_TOLERANCE", "SPRING_CLAIMS"]

SECTION = "docs/experiments.md §E5t"
#: Float precision for the numerical equilibrium against the closed form (P1, P2, P3).
EXACT = 1e-12
#: The share left on other domains after patching the trunk, against c_b / (c_s + c_b) (P4: one ratio of sums).
PATCH_TOLERANCE = 1e-9


def _rows(tables: Tables, name: str) -> list[Any]:
    return [r for r in tables["records"] if r.intervention == name]


def _exact(t: Tables) -> Finding:
    worst = max(r.equilibrium_vs_closed_form for r in t["records"])
    return Finding.of(worst < EXACT, f"largest relative gap over {len(t['records'])} fine-tunes: {worst:.1e}",
                      max_gap=worst, tolerance=EXACT, n_finetunes=len(t["records"]))


def _shares(t: Tables) -> Finding:
    base, shares, n = _rows(t, "baseline")[0], t["predicted_shares"][0], t["setting"][0]["n_finetune"]
    gap = max(abs(shares[k] - getattr(base, f"share_{k}")) for k in shares)
    return Finding.of(gap < EXACT, f"predicted {', '.join(f'{k} {v:.4f}' for k, v in shares.items())}; largest gap "
                      f"{gap:.1e} (n = {n})", max_gap=gap, tolerance=EXACT, n_finetune=n,
                      **{f"predicted_{k}": v for k, v in shares.items()})


def _treft(t: Tables) -> Finding:
    treft, k_s = _rows(t, "TReFT"), _rows(t, "baseline")[0].trunk_stiffness
    ratios = [r.trunk_shift / treft[0].trunk_shift for r in treft]
    expected = [k_s / r.trunk_stiffness for r in treft]
    falls = all(b.spill < a.spill for a, b in itertools.pairwise(treft))
    error = float(np.max(np.abs(np.subtract(ratios, expected)) / np.abs(expected)))
    return Finding.of(
        bool(np.allclose(ratios, expected, rtol=EXACT, atol=0)) and falls,
        f"k_s = {k_s:g}; shift ratios {', '.join(f'{x:.4f}' for x in ratios)} vs "
        f"{', '.join(f'{x:.4f}' for x in expected)}; spill {', '.join(f'{r.spill:.4f}' for r in treft)}",
        k_s=k_s, max_relative_error=error, tolerance=EXACT, spill_falls=float(falls), n_lambdas=len(treft),
        spill_lambda_0=treft[0].spill, spill_largest_lambda=treft[-1].spill)


def _patch(t: Tables) -> Finding:
    base, patched = _rows(t, "baseline")[0], _rows(t, "patch trunk")[0]
    left = base.share_bias / (base.share_trunk + base.share_bias)
    measured = patched.other_domains_bits / base.other_domains_bits
    return Finding.of(
        abs(measured - left) < PATCH_TOLERANCE,
        f"other domains {base.other_domains_bits:.4f} -> {patched.other_domains_bits:.4f} bits ({measured:.1%} left; "
        f"predicted c_b / (c_s + c_b) = {left:.1%}); the paper's prefix patching: 39.7 -> 86.5 general alignment "
        "(Qwen-2.5-7B)", share_left=measured, predicted_share_left=left, gap=abs(measured - left),
        tolerance=PATCH_TOLERANCE)


def _ordered(name: str, falls: bool, words: str) -> Any:
    """The spill moves one way along ``name``'s rows (falls as the parameter grows when ``falls``)."""
    def judge(t: Tables) -> Finding:
        rows = _rows(t, name)
        steps = [b.spill < a.spill if falls else b.spill > a.spill for a, b in itertools.pairwise(rows)]
        return Finding.of(all(steps), f"{words} " + ", ".join(f"{r.parameter:g}: {r.spill:.4f}" for r in rows),
                          steps_in_order=sum(steps), steps=len(steps), spill_first=rows[0].spill,
                          spill_last=rows[-1].spill)
    return judge


def _interleave(t: Tables) -> Finding:
    base, inter = _rows(t, "baseline")[0], _rows(t, "interleave")[0]
    return Finding.of(inter.spill < base.spill, f"spill {base.spill:.4f} -> {inter.spill:.4f} with "
                      f"{inter.parameter:.0%} interleaved; the paper: 20% interleaving 73.0 EM-F1 against TReFT's 78.4 "
                      "(Llama legal)", spill_baseline=base.spill, spill_interleaved=inter.spill,
                      interleave_share=inter.parameter)


SPRING_CLAIMS = (
    Claim("P1", "the energy's minimum is the closed form delta_i = m_i f / k_i", SECTION, _exact),
    Claim("P2", "carrier i's share of the in-domain change is c_i / sum_j c_j, c_i = (m_i / n) / k_i", SECTION,
          _shares),
    Claim("P3", "TReFT: the trunk's shift falls as k_s / (k_s + lambda), and the spill with it", SECTION, _treft),
    Claim("P4", "patching the trunk undoes its part of what spilled and leaves the bias's (other domains move by "
          "delta_b alone)", SECTION, _patch),
    Claim("P5", "spill grows as the template alignment data shrink (a softer trunk)", SECTION,
          _ordered("alignment data", True, "spill by alignment data x")),
    Claim("P6", "spill grows with more distinct fine-tuning queries (less for the query carriers to absorb)", SECTION,
          _ordered("fine-tuning queries", False, "spill by distinct queries")),
    Claim("P7", "interleaving aligned chats of other domains lowers the spill", SECTION, _interleave),
)
