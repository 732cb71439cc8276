"""The figures of ``tokentree run hooke-trained``: the changes against l and the ratio against k, trained model and
Theorem 4.2's mixture on the same data (docs/experiments.md §E4h)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tokentree.plots import COLOURS, new_figure

__all__ = ["plot_deltas_vs_l", "plot_ratio_vs_k"]


def plot_deltas_vs_l(cells: Sequence[Any], path: Path) -> None:
    """Mean changes of gamma_a (left) and gamma_p (right) against l, one line per k, sd as error bars."""
    fig, axes = new_figure(ncols=2, size=(11, 4.2))
    for i, k in enumerate(sorted({r.k for r in cells})):
        cell = [r for r in cells if r.k == k]
        ls = [r.l for r in cell]
        for ax, key in zip(axes, ("delta_align", "delta_pretrain"), strict=True):
            ax.errorbar([0.0, *ls], [0.0, *(getattr(r, f"{key}_bits_mean") for r in cell)],
                        yerr=[0.0, *(getattr(r, f"{key}_bits_std") for r in cell)], fmt="o-", color=COLOURS[i],
                        capsize=3, label=f"k = {k:.3g}")
    for ax, name in zip(axes, ("gamma_a (D_a)", "gamma_p (D_p)"), strict=True):
        ax.axhline(0, color="grey", lw=0.8)
        ax.set_xlabel("l = |D_t| / |D_a|")
        ax.set_ylabel(f"change of {name}, bits per token")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    axes[0].set_title("alignment data D_a")
    axes[1].set_title("pre-training data D_p")
    fig.savefig(path)


def plot_ratio_vs_k(cells: Sequence[Any], path: Path) -> None:
    """|ratio| against k on log-log axes per step of D_t, the mixture's beside it and |-k| as a line."""
    fig, ax = new_figure()
    ks = sorted({r.k for r in cells})
    for step in sorted({r.step for r in cells}):
        cell = [r for r in cells if r.step == step]
        colour = COLOURS[step % len(COLOURS)]
        x, y = np.array([r.k for r in cell]), np.array([r.ratio_mean for r in cell])
        ax.errorbar(x, np.abs(y), yerr=np.array([r.ratio_std for r in cell]), fmt="o-", color=colour, capsize=3,
                    label=f"trained, l = {np.mean([r.l for r in cell]):.2g}")
        ax.plot(x, np.abs([r.mixture_ratio_mean for r in cell]), "x:", color=colour)
        for xi, yi in zip(x, y, strict=True):
            if yi > 0:
                ax.plot(xi, abs(yi), "o", mfc="white", color=colour)
    ax.plot(ks, ks, "k--", lw=1, label="|-k| (mixture theory, l -> 0)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("k = |D_p| / |D_a|")
    ax.set_ylabel("|d gamma_a / d gamma_p|")
    ax.plot([], [], "x:", color="grey", label="Theorem 4.2 mixture, same data")
    ax.plot([], [], "o", mfc="white", color="grey", label="open marker: ratio > 0")
    ax.set_title("Ratio of the changes against k")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7)
    fig.savefig(path)
