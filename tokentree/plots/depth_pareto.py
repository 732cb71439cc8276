"""The figures of ``tokentree run depth-pareto``: fitted Pareto shapes and the l -> 0 ratio against depth
(docs/experiments.md §E1)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tokentree.plots import COLOURS, new_figure

__all__ = ["plot_alpha_vs_depth", "plot_ratio_vs_depth"]


def plot_alpha_vs_depth(records: Sequence[Any], corpora: Sequence[str], path: Path) -> None:
    """Fitted alpha (left) and H - ln M against the lemma at the fitted alpha (right), per corpus, against depth."""
    fig, (left, right) = new_figure(1, 2, size=(10.0, 4.2))
    for i, name in enumerate(corpora):
        rows = [r for r in records if r.corpus == name]
        d = [r.depth for r in rows]
        left.plot(d, [r.fitted_alpha for r in rows], "o-", color=COLOURS[i], label=name)
        right.plot(d, [r.entropy_minus_log_m_nats for r in rows], "o-", color=COLOURS[i], label=f"{name}: H - ln M")
        right.plot(d, [r.lemma_nats for r in rows], "x:", color=COLOURS[i], label=f"{name}: lemma at fitted alpha")
    left.axhline(1, color="0.3", lw=1, ls="--", label="alpha = 1: the lemma's normalisation breaks")
    right.set_ylim(-6, 0.5)
    left.set_xlabel("capacity depth d")
    left.set_ylabel("fitted Pareto alpha of symbol masses")
    right.set_xlabel("capacity depth d")
    right.set_ylabel("nats per symbol")
    for ax in (left, right):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle("Pareto shape of real pruned trees against depth")
    fig.savefig(path)


def plot_ratio_vs_depth(records: Sequence[Any], *, huffman_step: float, k: float, path: Path) -> None:
    """The normalised ratio with ideal and Huffman codes (left) and d * d gamma_a/dl (right) against depth."""
    fig, (left, right) = new_figure(1, 2, size=(10.0, 4.2))
    d = [r.depth for r in records]
    left.plot(d, [r.ratio_normalised for r in records], "o-", color=COLOURS[0], label="ideal codes (analytic)")
    left.plot(d, [r.huffman_ratio_normalised for r in records], "s--", color=COLOURS[1],
              label=f"Huffman codes (finite difference, l = 0 -> {huffman_step:g})")
    left.axhline(1, color="0.3", lw=1, ls=":", label="theory: 1")
    left.set_ylabel("ratio / (-k L_p / L_a)")
    right.plot(d, [r.depth_times_d_rate_align_bits for r in records], "o-", color=COLOURS[0])
    right.set_ylabel("d * d gamma_a/dl at l = 0 (bits)")
    for ax in (left, right):
        ax.set_xlabel("capacity depth d")
        ax.grid(alpha=0.3)
    left.legend(fontsize=7)
    fig.suptitle(f"The l -> 0 ratio and its magnitude against depth (real text, k = {k:g})")
    fig.savefig(path)
