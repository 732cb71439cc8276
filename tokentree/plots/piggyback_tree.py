"""The figure of ``tokentree run piggyback-tree``: the spill under every intervention (docs/experiments.md §E5t)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from tokentree.plots import COLOURS, finish, new_figure

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["plot_spill"]


def plot_spill(records: Sequence[Any], path: str | os.PathLike[str] | None = None) -> Figure:
    """Spill against TReFT's lambda (patching and interleaving as lines), the alignment data and the number of
    fine-tuning queries; ``records`` have ``intervention``, ``parameter`` and ``spill``."""

    def rows(name: str) -> list[Any]:
        return [r for r in records if r.intervention == name]

    fig, axes = new_figure(1, 3, size=(15, 4.2))
    treft = rows("TReFT")
    axes[0].plot([r.parameter for r in treft], [r.spill for r in treft], "o-", color=COLOURS[0], label="TReFT")
    for name, colour in (("patch trunk", COLOURS[1]), ("interleave", COLOURS[2])):
        if rows(name):
            axes[0].axhline(rows(name)[0].spill, color=colour, ls="--", label=name)
    axes[0].set_xscale("symlog", linthresh=10)
    axes[0].set_xlabel("TReFT lambda (examples of stiffness)")
    axes[0].set_ylabel("spill (bits elsewhere per bit in-domain)")
    align = rows("alignment data")
    axes[1].plot([r.parameter for r in align], [r.spill for r in align], "o-", color=COLOURS[3])
    axes[1].set_xscale("log")
    axes[1].set_xlabel("template alignment data (x the default)")
    queries = rows("fine-tuning queries")
    axes[2].plot([r.parameter for r in queries], [r.spill for r in queries], "o-", color=COLOURS[4])
    axes[2].set_xlabel("distinct fine-tuning queries")
    for ax in axes:
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    fig.suptitle("Piggyback in the token tree: what spills onto other domains")
    return finish(fig, path)
