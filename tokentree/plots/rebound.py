"""The figures of ``tokentree run rebound``: the rebound curves and Table 3 side by side (docs/experiments.md §E4r)."""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from tokentree.plots import COLOURS, finish, new_figure

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["plot_rebound_curves", "plot_table3"]


def plot_rebound_curves(points: Sequence[Any], n_pos: Sequence[int], panels: Sequence[tuple[str, str]], *,
                        base_line: Sequence[str] = (), title: str,
                        path: str | os.PathLike[str] | None = None) -> Figure:
    """One panel per (record field, label) against the negatives, one colour per n_pos, seed-sd bands.

    ``points`` are the checkpoint records (``stage`` "base" or "curve", ``n_pos``, ``n_neg``);
    the fields in ``base_line`` get theta_0's mean as a dashed line.
    """
    fig, axes = new_figure(1, len(panels), size=(5 * len(panels), 4.2))
    for i, n in enumerate(n_pos):
        pts = [r for r in points if r.stage == "curve" and r.n_pos == n]
        amounts = sorted({r.n_neg for r in pts})
        colour = COLOURS[i % len(COLOURS)]
        for ax, (key, _) in zip(axes, panels, strict=True):
            grid = np.array([[getattr(r, key) for r in pts if r.n_neg == a] for a in amounts], dtype=float)
            with warnings.catch_warnings():  # a checkpoint whose samples were all unreadable has no score
                warnings.simplefilter("ignore", RuntimeWarning)
                mean, sd = np.nanmean(grid, axis=1), np.nanstd(grid, axis=1)
            ax.plot(amounts, mean, "o-", color=colour, label=f"n_pos = {n}")
            ax.fill_between(amounts, mean - sd, mean + sd, color=colour, alpha=0.15)
    base = [r for r in points if r.stage == "base"]
    for ax, (key, label) in zip(axes, panels, strict=True):
        values = [getattr(r, key) for r in base]
        if key in base_line and np.isfinite(values).any():
            ax.axhline(np.nanmean(values), color="0.3", ls="--", lw=1, label="theta_0")
        ax.set_xlabel("negative examples (stage 2)")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(title)
    return finish(fig, path)


def plot_table3(n_pos: Sequence[int], ours: Sequence[float], count_model: Sequence[float],
                paper: Mapping[str, Sequence[float]], *, ylabel: str,
                path: str | os.PathLike[str] | None = None) -> Figure:
    """Negatives to the KL threshold, normalised to the smallest n_pos: this run, the count model (a reference
    line), and the paper's rows."""
    fig, ax = new_figure()
    xs = np.arange(len(n_pos))
    ax.plot(xs, ours, "o-", color=COLOURS[0], label="this run (trained)")
    ax.plot(xs, count_model, "s--", color=COLOURS[1], label="count model (docs/theory.md §7)")
    for j, (name, row) in enumerate(paper.items()):
        row = list(row)[: len(xs)]
        ax.plot(xs[: len(row)], row, "^:", color=COLOURS[2 + j], label=f"paper, {name}")
    ax.set_xticks(xs, [str(n) for n in n_pos])
    ax.set_xlabel("aligned examples n_pos")
    ax.set_ylabel(ylabel)
    ax.set_title("Table 3: does more alignment need fewer negatives to return?")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return finish(fig, path)
