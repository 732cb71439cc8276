"""The figures of ``tokentree run resistance`` (docs/experiments.md §E4s)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from tokentree.plots import COLOURS, finish, new_figure

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["plot_forward_vs_inverse", "plot_effect_vs_k"]


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


def plot_effect_vs_k(k: np.ndarray, effects: np.ndarray, *, ylabel: str, testable: Sequence[bool] | None = None,
                     path: str | os.PathLike[str] | None = None) -> Figure:
    """A per-seed effect against k = |D_pre| / |D_a| (log axis): every seed's points, the mean and a seed-sd bar.

    ``k`` and ``effects`` have one row per seed and one column per level of the sweep; a level
    whose verdict is "not detectable at this regime" (``testable`` False) gets a hollow marker.
    """
    fig, ax = new_figure()
    k, effects = np.atleast_2d(k), np.atleast_2d(effects)
    for row_k, row in zip(k, effects, strict=True):
        ax.plot(row_k, row, ".", color="0.6", ms=5)
    mean_k, mean = k.mean(axis=0), effects.mean(axis=0)
    sd = effects.std(axis=0, ddof=1) if effects.shape[0] > 1 else np.zeros_like(mean)
    ax.errorbar(mean_k, mean, yerr=sd, fmt="o-", capsize=3, color=COLOURS[0], label="mean ± seed sd")
    hollow = ~np.asarray(testable or [True] * mean.shape[0], dtype=bool)  # none given (no sweep): all testable
    if hollow.any():
        ax.plot(mean_k[hollow], mean[hollow], "o", mfc="white", mec=COLOURS[0], ms=7, zorder=4,
                label="not detectable at this regime")
    ax.axhline(0, color="0.3", lw=0.8)
    ax.axvline(100, color=COLOURS[1], ls=":", lw=1, label="k = 100 (the premise)")
    ax.set_xscale("log")
    if np.nanmin(mean_k) == np.nanmax(mean_k):  # one level: a decade around it
        ax.set_xlim(mean_k[0] / 3, mean_k[0] * 3)
    ax.set_xlabel("k = pre-training tokens / aligned tokens")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7)
    return finish(fig, path)
