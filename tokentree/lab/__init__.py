"""The training lab shared by trained-model experiments (statistics over seeds: :mod:`tokentree.aggregate`).

==================  ===============================================================
``protocol``        train through stages (a fresh optimiser each), measure after every piece
``chat``            text, prompt/response pairs and chats tokenized with a chat template; loss masks
``train``           :class:`LMTrainer`: full fine-tuning or LoRA, parameter groups, schedules, exact resume
``measure``         rates given prompts, KL to a reference model, seeded sampling
``language``        the synthetic behaviour language (four axes, exact labels)
``behaviour``       behaviour scorers: exact rules, VADER, any callable
``sources``         a behaviour experiment's data: synthetic, tweets, or the user's JSONL files
``base``            theta_0: a tiny Llama pre-trained here (cosine schedule, snapshots), or a loaded model
``probe``           what a behaviour experiment measures: sampled score, log-odds, KL to theta_0, forgetting
``rebound``         the rebound protocol: aligned examples, then misaligned ones in one measured pass
==================  ===============================================================

``import tokentree.lab`` does not import torch: ``train`` and ``measure`` import it when
they are imported.
"""

from __future__ import annotations

from tokentree.aggregate import RESOLVED_STANDARD_ERRORS, SeedStats, loglog_slope, seed_stats
from tokentree.lab.behaviour import BehaviourScorer, CallableScorer, RuleScorer, VaderScorer, aligned_share
from tokentree.lab.chat import TokenizedExamples, as_messages, from_sequences, tokenize_chats, tokenize_texts
from tokentree.lab.language import AXES, DEFAULT_BASE_RATES, BehaviourLanguage, Example
from tokentree.lab.protocol import Stage, StageMeasurement, Trainer, run_stages

__all__ = [
    "AXES",
    "DEFAULT_BASE_RATES",
    "RESOLVED_STANDARD_ERRORS",
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
