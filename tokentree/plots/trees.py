"""Figures of one token tree: its layers by depth (``tokentree info --plot``) and a query's counts along the text
(``tokentree query --plot``)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from tokentree.plots import COLOURS, finish, new_figure

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["plot_tree_layers", "plot_query_counts"]


def plot_tree_layers(layers: Mapping[str, Sequence[float]], *, title: str,
                     path: str | os.PathLike[str] | None = None) -> Figure:
    """Nodes, mass and end-of-response mass by depth (log scale), and each layer's entropy in bits.

    ``layers`` is :meth:`TokenTree.layer_stats` as a dict (``nodes``, ``mass``, ``eos_mass``,
    ``entropy_bits``, one value per depth from 0, the root).
    """
    fig, (counts, entropy) = new_figure(1, 2, size=(11, 4.2))
    depths = list(range(len(layers["nodes"])))
    for i, (key, label) in enumerate((("nodes", "nodes"), ("mass", "mass"), ("eos_mass", "mass ending here"))):
        counts.plot(depths, [max(v, 0.5) for v in layers[key]], "o-", color=COLOURS[i], label=label)
    counts.set_yscale("log")
    counts.set_ylabel("count (log; 0 drawn at 0.5)")
    entropy.plot(depths, layers["entropy_bits"], "o-", color=COLOURS[3])
    entropy.set_ylabel("entropy of the layer (bits)")
    for ax in (counts, entropy):
        ax.set_xlabel("depth")
        ax.set_xticks(depths)
        ax.grid(alpha=0.3)
    counts.legend(fontsize=8)
    fig.suptitle(title)
    return finish(fig, path)


def plot_query_counts(rows: Sequence[Mapping[str, Any]], *, title: str,
                      path: str | os.PathLike[str] | None = None) -> Figure:
    """A query's prefix count at each depth (log scale) and P(token | the tokens before), token by token.

    ``rows`` are those of ``tokentree query --json``'s ``query``: ``position``, ``token``,
    ``count`` and ``probability`` (None past the tree's depth: not drawn).
    """
    fig, (counts, probs) = new_figure(1, 2, size=(11, 4.2))
    inside = [r for r in rows if r["count"] is not None]
    positions = [r["position"] for r in inside]
    counts.plot(positions, [max(r["count"], 0.5) for r in inside], "o-", color=COLOURS[0])
    counts.set_yscale("log")
    counts.set_ylabel("count of the prefix (log; 0 drawn at 0.5)")
    probs.plot(positions, [r["probability"] or 0.0 for r in inside], "s-", color=COLOURS[1])
    probs.set_ylim(0, 1.05)
    probs.set_ylabel("P(token | the tokens before)")
    for ax in (counts, probs):
        ax.set_xlabel("depth (token of the query)")
        ax.set_xticks(positions, [f"{r['position']}\n{r['token']!r}" for r in inside], fontsize=7)
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    return finish(fig, path)
