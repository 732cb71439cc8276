"""The figures of ``tokentree run hooke``: rates and the ratio against l and k, code lengths against depth,
the finite-sample control and the Pareto lemma (docs/experiments.md §E0)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from tokentree.plots import COLOURS, finish, new_figure

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "plot_rates_vs_l",
    "plot_ratio_vs_k",
    "plot_ratio_vs_closed_form",
    "plot_rates_vs_depth",
    "plot_split_control",
    "plot_pareto_normalisation",
]


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
    return finish(fig, path)


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
    return finish(fig, path)


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
    return finish(fig, path)


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
    return finish(fig, path)


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
    return finish(fig, path)


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
    return finish(fig, path)


def hooke_figures(
    records: Sequence[Any],
    split: Sequence[Any],
    pareto: Sequence[Any],
    *,
    reference: dict[str, Any],
    data: str,
    depths: Sequence[int],
    k_values: Sequence[float],
    l_values: Sequence[float],
    k_reference: float,
    folder: os.PathLike[str] | str,
) -> None:
    """The six figures of a hooke run from its sweep records, split-control rows and Pareto checks.

    ``reference`` (alpha, depth, betas) picks the case the figures show; ``k_reference`` its k.
    """
    from pathlib import Path

    from tokentree.compression.elasticity import l_star_disjoint, ratio_disjoint

    folder = Path(folder)
    ref = reference

    def select(**match: Any) -> list[Any]:
        return [r for r in records if all(getattr(r, key) == value for key, value in {**ref, **match}.items())]

    sweep = sorted(select(k=k_reference), key=lambda r: r.l)
    l_star = sweep[0].l_star
    alpha = "" if ref["alpha"] is None else f", alpha {ref['alpha']}"
    label = f"{data}{alpha}, d = {ref['depth']}, betas {list(ref['betas'])}, k = {k_reference:g}"
    plot_rates_vs_l([r.l for r in sweep], [r.rate_align_bits for r in sweep], [r.rate_pretrain_bits for r in sweep],
                    l_star=l_star, title=label, path=folder / "rates_vs_l.png")
    groups: list[dict[str, Any]] = []
    for d in depths:
        rows = sorted(select(l=0.0, depth=d), key=lambda r: r.k)
        groups.append({"label": f"d = {d}", "k": [r.k for r in rows], "ratio": [r.ratio for r in rows]})
    slope = float(np.polyfit(np.log(groups[0]["k"]), np.log(np.abs(groups[0]["ratio"])), 1)[0])
    plot_ratio_vs_k(groups, slope=slope, path=folder / "ratio_vs_k.png")
    dense = np.linspace(0, max(l_values), 800)
    l_cf = l_star_disjoint(ref["betas"])
    below, above = dense[dense < l_cf - 1e-3], dense[dense > l_cf + 1e-3]
    dense = np.concatenate([below, [np.nan], above])  # the line breaks at l*, where R diverges
    series = []
    for k in sorted({k_values[0], k_reference, k_values[-1]}):
        rows = sorted(select(k=k), key=lambda r: r.l)
        closed: list[Any] = [ratio_disjoint(k, ref["betas"], below), [np.nan], ratio_disjoint(k, ref["betas"], above)]
        series.append({"label": f"k = {k:g}", "l": [r.l for r in rows], "ratio": [r.ratio for r in rows],
                       "l_dense": dense, "ratio_dense": np.concatenate(closed)})
    title = (
        "R(l) against the closed form: elastic (negative) below l*, positive beyond"
        if all(r.disjoint for r in sweep)
        else f"R(l) against the disjoint closed form, which does not apply here\n(overlapping symbol sets; "
        f"measured l* = {l_star:.3g})"
    )
    plot_ratio_vs_closed_form(series, l_star=l_cf, title=title, path=folder / "ratio_vs_closed_form.png")
    every_depth = (r for r in records if r.l == 0.0 and r.k == k_reference and r.alpha == ref["alpha"]
                   and r.betas == ref["betas"])
    profile = sorted(every_depth, key=lambda r: r.depth)
    plot_rates_vs_depth([r.depth for r in profile], [r.rate_pretrain_bits for r in profile],
                        [r.huffman_rate_pretrain_bits for r in profile],
                        [r.theorem_3_4_rate_pretrain_bits for r in profile],
                        title=f"Code lengths against depth ({data}, k = {k_reference:g}, l = 0)",
                        path=folder / "rates_vs_depth.png")
    kinds = ("independent", "resampled")
    plot_split_control([r.depth for r in split],
                       {kind: [getattr(r, f"shared_mass_{kind}") for r in split] for kind in kinds},
                       {kind: [r.normalised(kind) for r in split] for kind in kinds},
                       title=f"Finite samples: independent vs resampled D_t ({data})",
                       path=folder / "split_control.png")
    pareto_series = []
    for a in sorted({p.alpha for p in pareto}):
        checks = sorted((p for p in pareto if p.alpha == a), key=lambda p: p.n_leaves)
        pareto_series.append({"alpha": a, "n_leaves": [p.n_leaves for p in checks],
                              "gap_nats": [p.entropy_minus_log_m_nats for p in checks],
                              "spread_nats": [p.spread_nats for p in checks], "lemma_nats": checks[0].lemma_nats})
    plot_pareto_normalisation(pareto_series, path=folder / "pareto.png")


def files_figure(records: Sequence[Any], regimes: Sequence[Any], path: os.PathLike[str] | str) -> Figure:
    """Theorem 4.2 on a user's data: the rate changes and R(l) against l, one colour per depth."""
    fig, axes = new_figure(1, 2, size=(12, 4.2))
    for i, r in enumerate(regimes):
        rows = [x for x in records if x.depth == r.depth]
        ls = [x.l for x in rows]
        colour = COLOURS[i % len(COLOURS)]
        axes[0].plot(ls, [x.rate_pretrain_bits - rows[0].rate_pretrain_bits for x in rows], "o-", color=colour,
                     label=f"gamma_p, d = {r.depth}")
        axes[0].plot(ls, [x.rate_align_bits - rows[0].rate_align_bits for x in rows], "s--", color=colour,
                     label=f"gamma_a, d = {r.depth}")
        axes[1].plot(ls, [x.ratio for x in rows], "o-", color=colour, label=f"R(l), d = {r.depth} ({r.regime})")
        axes[1].axhline(r.minus_k_scaled, color=colour, ls=":", lw=1)
    axes[0].set_ylabel("change of the rate since l = 0 (bits per token)")
    axes[1].set_ylabel("R(l) = (d gamma_a/dl) / (d gamma_p/dl); dotted: -k L_p/L_a")
    axes[1].set_yscale("symlog")
    for ax in axes:
        ax.set_xlabel("l = |D_t| / |D_a|")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle("Theorem 4.2 on your data")
    return finish(fig, path)
