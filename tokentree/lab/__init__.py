"""The training lab shared by trained-model experiments: staged fine-tuning and seed statistics.

``protocol``: train a model through stages with a fresh optimiser each and measure after
every piece of data. ``aggregate``: means, spreads and noise flags over seeds. Neither
imports torch: the model, its trainer and its measurement are passed in.
"""

from __future__ import annotations

from tokentree.lab.aggregate import RESOLVED_STANDARD_ERRORS, SeedStats, loglog_slope, seed_stats
from tokentree.lab.protocol import Stage, StageMeasurement, Trainer, run_stages

__all__ = [
    "RESOLVED_STANDARD_ERRORS",
    "SeedStats",
    "Stage",
    "StageMeasurement",
    "Trainer",
    "loglog_slope",
    "run_stages",
    "seed_stats",
]
