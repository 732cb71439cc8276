"""Figures (matplotlib, imported only here) and where to save them.

Every function takes plain numbers, draws one figure with matplotlib's object API (no
pyplot state, no backend switch, so it works in scripts, tests and notebooks alike),
saves it as PNG when ``path`` is given, and returns the ``Figure``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "COLOURS",
    "new_figure",
    "plot_rates_vs_l",
    "plot_ratio_vs_k",
    "plot_ratio_vs_closed_form",
    "plot_rates_vs_depth",
    "plot_split_control",
    "plot_pareto_normalisation",
    "figure_folder",
]

COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf"]


def new_figure(
    nrows: int = 1, ncols: int = 1, *, size: tuple[float, float] = (6.4, 4.4), **kw: Any
) -> tuple[Figure, Any]:
    """A Figure with constrained layout and its axes (matplotlib's object API, no pyplot state)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, dpi=110, layout="constrained")
    return fig, fig.subplots(nrows, ncols, **kw)


def _finish(fig: Figure, path: str | os.PathLike[str] | None) -> Figure:
    if path is not None:
        fig.savefig(path)
    return fig


def plot_rates_vs_l(
    l: Sequence[float],
    rate_align: Sequence[float],
    rate_pretrain: Sequence[float],
    *,
    l_star: float,
    title: str,
    path: str | os.PathLike[str] | None = None,
) -> Figure:
    """gamma_a (top) and gamma_p (bottom) in bits per token against l, with l* marked."""
    fig, (top, bottom) = new_figure(2, 1, size=(6.4, 6.0), sharex=True)
    top.plot(l, rate_align, "o-", ms=3, color=COLOURS[1], label="gamma_a: alignment data D_a")
    bottom.plot(l, rate_pretrain, "o-", ms=3, color=COLOURS[0], label="gamma_p: pre-training data D_p")
    for ax in (top, bottom):
        ax.axvline(l_star, color="0.3", ls="--", lw=1, label=f"l* = {l_star:.4g} (gamma_p smallest)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        ax.ticklabel_format(axis="y", useOffset=True, style="plain")
    top.set_ylabel("gamma_a (bits/token)")
    bottom.set_ylabel("gamma_p (bits/token)")
    bottom.set_xlabel("l = |D_t| / |D_a|  (perturbation size in units of the alignment set)")
    top.set_title(title)
    return _finish(fig, path)


def plot_ratio_vs_k(
    groups: Sequence[dict[str, Any]], *, slope: float, path: str | os.PathLike[str] | None = None
) -> Figure:
    """|R(l -> 0)| against k on log-log axes with the line y = k; each group: ``label``, ``k``, ``ratio``."""
    fig, ax = new_figure()
    all_k = np.concatenate([np.asarray(g["k"], dtype=float) for g in groups])
    line = np.geomspace(all_k.min(), all_k.max(), 50)
    ax.plot(line, line, color="0.3", lw=1, label="y = k (theory: R(0) = -k)")
    markers = "osD^v<>"
    for i, g in enumerate(groups):
        ax.plot(
            g["k"],
            np.abs(g["ratio"]),
            markers[i % len(markers)],
            ms=6,
            mfc="none",
            color=COLOURS[i % len(COLOURS)],
            label=g["label"],
        )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("k = |D_p| / |D_a|")
    ax.set_ylabel("|R(0)| = |d gamma_a/dl| / |d gamma_p/dl| at l = 0")
    ax.set_title(f"Elasticity ratio against k (fitted log-log slope {slope:.9f})")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    return _finish(fig, path)


def plot_ratio_vs_closed_form(
    series: Sequence[dict[str, Any]],
    *,
    l_star: float,
    title: str = "R(l): negative (elastic) below l*, positive beyond",
    path: str | os.PathLike[str] | None = None,
) -> Figure:
    """R(l) measured (markers) against the closed form (lines); each: ``label``, ``l``, ``ratio``,
    ``l_dense``, ``ratio_dense``."""
    fig, ax = new_figure()
    for i, s in enumerate(series):
        colour = COLOURS[i % len(COLOURS)]
        ax.plot(s["l_dense"], s["ratio_dense"], "-", lw=1, color=colour, label=f"closed form, {s['label']}")
        ax.plot(s["l"], s["ratio"], "o", ms=5, mfc="none", color=colour, label=f"measured, {s['label']}")
    ax.axvline(l_star, color="0.3", ls="--", lw=1, label=f"closed-form l* = {l_star:.3g}")
    ax.axhline(0, color="0.7", lw=0.8)
    ax.set_yscale("symlog", linthresh=1.0)
    ax.set_xlabel("l = |D_t| / |D_a|")
    ax.set_ylabel("R(l) = (d gamma_a/dl) / (d gamma_p/dl)")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    return _finish(fig, path)


def plot_rates_vs_depth(
    depth: Sequence[int],
    ideal: Sequence[float],
    huffman: Sequence[float],
    theorem_3_4: Sequence[float],
    *,
    title: str,
    path: str | os.PathLike[str] | None = None,
) -> Figure:
    """Rate of D_p per token against capacity depth: ideal, Huffman and the Theorem 3.4 estimate."""
    fig, ax = new_figure()
    ax.plot(depth, ideal, "o-", color=COLOURS[0], label="ideal (cross-entropy / symbol length)")
    ax.plot(depth, huffman, "s--", color=COLOURS[1], label="exact Huffman code")
    ax.plot(depth, theorem_3_4, "^:", color=COLOURS[2], label="Theorem 3.4: ceil(|x|/d) ceil(H) / |x|")
    ax.set_xlabel("capacity depth d (tokens per symbol)")
    ax.set_ylabel("compression rate of D_p (bits/token)")
    ax.set_title(title)
    ax.set_xticks(list(depth))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _finish(fig, path)


def plot_split_control(
    depth: Sequence[int],
    shared_mass: dict[str, Sequence[float]],
    normalised_ratio: dict[str, Sequence[float]],
    *,
    title: str,
    path: str | os.PathLike[str] | None = None,
) -> Figure:
    """Finite samples (docs/theory.md §5.8): shared leaf mass and R(0)/(-k L_p/L_a) against depth.

    ``shared_mass`` and ``normalised_ratio`` map a kind of D_t ("independent", "resampled")
    to one value per depth.
    """
    fig, (left, right) = new_figure(1, 2, size=(9.6, 4.0))
    for i, name in enumerate(shared_mass):
        colour = COLOURS[i % len(COLOURS)]
        left.plot(depth, shared_mass[name], "o-", color=colour, label=f"D_t {name}")
        right.plot(depth, normalised_ratio[name], "o-", color=colour, label=f"D_t {name}")
    left.set_xlabel("depth d")
    left.set_ylabel("share of D_t's mass on leaves D_3 has")
    left.set_ylim(-0.03, 1.03)
    right.axhline(1, color="0.3", lw=1, ls="--", label="theory: R(0) = -k L_p/L_a")
    right.axhline(0, color="0.7", lw=0.8)
    right.set_xlabel("depth d")
    right.set_ylabel("R(0) / (-k L_p / L_a)")
    for ax in (left, right):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title)
    return _finish(fig, path)


def plot_pareto_normalisation(
    series: Sequence[dict[str, Any]], *, path: str | os.PathLike[str] | None = None
) -> Figure:
    """H - ln M of Pareto leaf masses against M, with the lemma's constant for each alpha.

    Each series: ``alpha``, ``n_leaves``, ``gap_nats`` and ``spread_nats`` (one per M), ``lemma_nats``.
    """
    fig, ax = new_figure()
    for i, sel in enumerate(series):
        colour = COLOURS[i % len(COLOURS)]
        ax.errorbar(
            sel["n_leaves"],
            sel["gap_nats"],
            yerr=sel["spread_nats"],
            fmt="o-",
            ms=4,
            capsize=3,
            color=colour,
            label=f"alpha = {sel['alpha']:g}",
        )
        ax.axhline(sel["lemma_nats"], color=colour, ls=":", lw=1)
    ax.set_xscale("log")
    ax.set_xlabel("number of leaves M")
    ax.set_ylabel("H(P) - ln M  (nats)")
    ax.set_title("Pareto lemma: H - ln M -> ln(a/(a-1)) - 1/(a-1) (dotted)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    return _finish(fig, path)


def figure_folder(name: str = "notebooks") -> Path:
    """Where notebooks and scripts save figures: ``$TOKENTREE_FIGURES``, else ``~/.cache/tokentree/figures/NAME``.

    Never inside the source tree. The folder is created if needed.
    """
    env = os.environ.get("TOKENTREE_FIGURES")
    folder = Path(env) if env else Path.home() / ".cache" / "tokentree" / "figures" / name
    folder.mkdir(parents=True, exist_ok=True)
    return folder
