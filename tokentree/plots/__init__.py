"""Figures (matplotlib, imported only here) and where to save them: the shared helpers here, one
module of figures per experiment beside them (``plots.hooke``, ...).

Every function takes plain numbers or rows of records, draws one figure with matplotlib's object API (no
pyplot state, no backend switch, so it works in scripts, tests and notebooks alike),
saves it as PNG when ``path`` is given, and returns the ``Figure``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["COLOURS", "new_figure", "finish", "figure_folder"]

COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf"]


def new_figure(
    nrows: int = 1, ncols: int = 1, *, size: tuple[float, float] = (6.4, 4.4), **kw: Any
) -> tuple[Figure, Any]:
    """A Figure with constrained layout and its axes (matplotlib's object API, no pyplot state)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, dpi=110, layout="constrained")
    return fig, fig.subplots(nrows, ncols, **kw)


def finish(fig: Figure, path: str | os.PathLike[str] | None) -> Figure:
    """Save ``fig`` as PNG at ``path`` (if given) and return it."""
    if path is not None:
        fig.savefig(path)
    return fig


def figure_folder(name: str = "notebooks") -> Path:
    """Where notebooks and scripts save figures: ``$TOKENTREE_FIGURES``, else ``~/.cache/tokentree/figures/NAME``.

    Never inside the source tree. The folder is created if needed.
    """
    env = os.environ.get("TOKENTREE_FIGURES")
    folder = Path(env) if env else Path.home() / ".cache" / "tokentree" / "figures" / name
    folder.mkdir(parents=True, exist_ok=True)
    return folder
