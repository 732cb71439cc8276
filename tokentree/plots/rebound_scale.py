"""The figure of ``tokentree run rebound-scale``: rebound speed against size and pre-training (§E4x)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from tokentree.plots import COLOURS, finish, new_figure

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["plot_rebound_scale"]

#: One panel's points: (n_pos, x, per-seed initial drop / stage-1 gain), x increasing within each n_pos.
Panel = Sequence[tuple[int, float, Sequence[float]]]


def plot_rebound_scale(size: Panel, volume: Panel, *, path: str | os.PathLike[str] | None = None) -> Figure:
    """Initial drop / stage-1 gain against parameters (log x) and share of pre-training; bars: seed sd."""
    fig, axes = new_figure(1, 2, size=(12, 4.4))
    for ax, panel, label in zip(axes, (size, volume), ("parameters", "share of pre-training tokens"), strict=True):
        for i, n_pos in enumerate(dict.fromkeys(n for n, _, _ in panel)):
            points = [(x, v) for n, x, v in panel if n == n_pos]
            ax.errorbar([x for x, _ in points], [np.nanmean(v) for _, v in points],
                        yerr=[np.nanstd(v) for _, v in points], fmt="o-", capsize=3, color=COLOURS[i],
                        label=f"n_pos = {n_pos}")
        if panel is size:
            ax.set_xscale("log")
        ax.set_xlabel(label)
        ax.set_ylabel("initial drop / stage-1 gain (per negative)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle("Rebound speed against model size and pre-training (error bars: seed sd)")
    return finish(fig, path)
