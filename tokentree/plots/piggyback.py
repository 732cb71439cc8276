"""Figures of the piggyback experiment (docs/experiments.md §E5): functions of its records."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["spill_figure"]


def spill_figure(records: Sequence[Any], drift: Sequence[Any], folder: Path) -> None:
    """Patching shares, per-layer drift and the in-domain vs other-domain trade-off -> piggyback.png."""
    from tokentree.plots import COLOURS, new_figure

    def of(variant: str) -> list[Any]:
        return sorted((r for r in records if r.variant == variant), key=lambda r: (r.parameter, r.seed))

    fig, axes = new_figure(1, 3, size=(15, 4.2))
    base = of("fine-tune")
    parts = ("prefix", "query", "postfix")
    for j, variant in enumerate(("fine-tune", "trainable attention", "no system prompt")):
        rows = of(variant)
        if rows:
            means = [np.nanmean([getattr(r, f"patch_{p}_removed") for r in rows]) for p in parts]
            sds = [np.nanstd([getattr(r, f"patch_{p}_removed") for r in rows]) for p in parts]
            axes[0].bar(np.arange(3) + 0.27 * j, means, 0.27, yerr=sds, color=COLOURS[j], label=variant, capsize=3)
    axes[0].set_xticks(np.arange(3) + 0.27, parts)
    axes[0].set_ylabel("share of the spill removed by patching")
    axes[0].axhline(0.7, color="0.4", ls=":", lw=1)
    for i, part in enumerate(parts):
        layers = sorted({d.layer for d in drift})
        values = [np.mean([d.key_drift + d.value_drift for d in drift
                           if (d.part, d.layer, d.variant) == (part, layer, "fine-tune")]) for layer in layers]
        axes[1].plot(layers, values, "o-", color=COLOURS[i], label=part)
    axes[1].set_xlabel("layer")
    axes[1].set_ylabel("key + value drift from the aligned model")
    for name, colour, marker in (("TReFT prefix", COLOURS[0], "o-"), ("interleave", COLOURS[2], "s"),
                                 ("KL retain", COLOURS[3], "D-"), ("fine-tune", COLOURS[1], "^")):
        rows = of(name)
        if rows:
            params = sorted({r.parameter for r in rows})
            xs = [np.mean([r.in_domain_bits for r in rows if r.parameter == p]) for p in params]
            ys = [np.mean([r.other_bits for r in rows if r.parameter == p]) for p in params]
            axes[2].plot(xs, ys, marker, color=colour, label=name)
    axes[2].set_xlabel("in-domain change (bits)")
    axes[2].set_ylabel("other domains' change (bits)")
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(f"Piggyback on a trained model ({len(base)} seeds; error bars: seed sd; lines: seed means)")
    fig.savefig(folder / "piggyback.png")

