"""The figures of ``tokentree run resistance`` (docs/experiments.md §E4s)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from tokentree.plots import COLOURS, finish, new_figure

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["plot_forward_vs_inverse"]


def _mean_sd(rows: Sequence[Any], key: str) -> tuple[float, float]:
    values = [getattr(r, key) for r in rows]
    return float(np.mean(values)), float(np.std(values, ddof=1)) if len(values) > 1 else 0.0


def plot_forward_vs_inverse(cells: Mapping[str, Sequence[tuple[str, str, Sequence[Any]]]], *,
                            path: str | os.PathLike[str] | None = None) -> Figure:
    """Inverse and forward final loss per cell (dataset, pair) with seed sd, one panel per base.

    ``cells`` maps a base ("full", "barely") to its cells: (dataset, pair, rows), each row with
    ``inverse_loss`` and ``forward_loss``.
    """
    fig, axes = new_figure(1, len(cells), size=(6 * len(cells), 4.4))
    for ax, (base, rows_of) in zip(np.atleast_1d(axes), cells.items(), strict=True):
        xs = np.arange(len(rows_of))
        for j, (key, label) in enumerate((("inverse_loss", "inverse (theta_l on D_k)"),
                                          ("forward_loss", "forward (theta_k on D_l)"))):
            stats = [_mean_sd(rows, key) for _, _, rows in rows_of]
            ax.errorbar(xs + (j - 0.5) * 0.2, [m for m, _ in stats], yerr=[s for _, s in stats], fmt="o", capsize=3,
                        color=COLOURS[j], label=label)
        ax.set_xticks(xs, [f"{d}\n{p}" for d, p, _ in rows_of], fontsize=7)
        ax.set_ylabel("final training loss (nats per token)")
        ax.set_title(f"{base} pre-trained base")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle("Forward vs inverse alignment (error bars: seed sd)")
    return finish(fig, path)
