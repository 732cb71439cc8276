"""The figure of ``tokentree run measured-vs-theory``: held-out bits per token of the tree models against depth,
with the real model's as a line (docs/experiments.md §E3)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from tokentree.plots import COLOURS, finish, new_figure

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["plot_bits_vs_depth"]


def plot_bits_vs_depth(records: Sequence[Any], *, model: str, path: str | os.PathLike[str] | None = None) -> Figure:
    """Per dataset: ``tree_bits_per_token`` against ``depth`` and ``model_bits_per_token`` as a dashed line."""
    by_dataset: dict[str, list[Any]] = {}
    for r in records:
        by_dataset.setdefault(r.dataset, []).append(r)
    fig, ax = new_figure()
    for i, (name, rows) in enumerate(by_dataset.items()):
        ax.plot([r.depth for r in rows], [r.tree_bits_per_token for r in rows], "o-", color=COLOURS[i],
                label=f"{name}: token tree (order d-1 context model)")
        ax.axhline(rows[0].model_bits_per_token, color=COLOURS[i], ls="--", lw=1.2, label=f"{name}: {model} (measured)")
    ax.set_xlabel("tree depth d (context of d - 1 tokens)")
    ax.set_ylabel("bits per token on held-out text")
    ax.set_title("A pretrained model against token-tree context models")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return finish(fig, path)
