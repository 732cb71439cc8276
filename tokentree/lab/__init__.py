"""The training lab shared by trained-model experiments (tests over seeds: :mod:`tokentree.framework.stats`;
the data it trains on: :mod:`tokentree.data`).

==================  ===============================================================
``protocol``        train through stages (a fresh optimiser each), measure after every piece
``train``           :class:`LMTrainer`: full fine-tuning or LoRA, parameter groups, schedules, exact resume
``measure``         rates given prompts, KL to a reference model, seeded sampling
``base``            theta_0: a tiny Llama pre-trained here (cosine schedule, snapshots), or a loaded model
``probe``           what a behaviour experiment measures: sampled score, log-odds, KL to theta_0, forgetting
``rebound_protocol`` the rebound protocol: aligned examples, then misaligned ones in one measured pass
``transfer``        resistance: checkpoints of one alignment epoch, their sampled slices, forward/inverse training
``template_prefix`` where a narrow fine-tune stores its shift: the template prefix, the query, the postfix
``seeded``          what every seeded training config shares (its list of seeds)
==================  ===============================================================

``import tokentree.lab`` does not import torch: ``train`` and ``measure`` import it when
they are imported.
"""

from __future__ import annotations

from tokentree.data.behaviour import BehaviourScorer, CallableScorer, RuleScorer, VaderScorer, aligned_share
from tokentree.data.chat import TokenizedExamples, as_messages, from_sequences, tokenize_chats, tokenize_texts
from tokentree.data.language import AXES, DEFAULT_BASE_RATES, BehaviourLanguage, Example
from tokentree.framework.aggregate import SeedStats, loglog_slope, seed_stats
from tokentree.lab.protocol import Stage, StageMeasurement, Trainer, run_stages

__all__ = [
    "AXES",
    "DEFAULT_BASE_RATES",
    "BehaviourLanguage",
    "BehaviourScorer",
    "CallableScorer",
    "Example",
    "RuleScorer",
    "SeedStats",
    "Stage",
    "StageMeasurement",
    "TokenizedExamples",
    "Trainer",
    "VaderScorer",
    "aligned_share",
    "as_messages",
    "from_sequences",
    "loglog_slope",
    "run_stages",
    "seed_stats",
    "tokenize_chats",
    "tokenize_texts",
]
