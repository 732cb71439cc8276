"""Verification of Theorem 4.2 and its consequences, above the math of :mod:`tokentree.compression`.

Split by concern, data flowing one way:

==================  ==============================================================
``inputs``          the five distributions at one depth (the one place that builds trees)
``sweeps``          sweeps of l with the closed form beside every number
``controls``        the cases where elasticity must fail, and the side checks
``records``         typed rows of all of the above
``judges``          one verdict per claim of docs/theory.md §5-§6
``tolerances``      every threshold a judge uses, named, with its reason
``trees``           Theorem 4.2 on a user's own three trees, with the regime they are in
``own_data``        a user's three datasets: how each is read, as token sequences or a tree file
``depth``           the capacity depth and the Pareto normalisation (E1)
``measured``        a real model's bits per token against token-tree rates (E3)
``springs``         the template trunk as a shared spring (piggyback on trees)
``trained``         what every trained-model experiment's verdicts share: regime gating, cells over seeds
``trained_hooke``   hooke-trained's rows, cell summaries and claims
``trained_scale``   rebound-scale's rows, summaries and claims
``curves``          reading rebound curves
``paper``           the papers' own figures
==================  ==============================================================

:class:`Verdict` and :class:`VerdictStatus` live in :mod:`tokentree.framework.verdicts`
(shared by every experiment) and are re-exported here.
"""

from __future__ import annotations

from tokentree.framework.verdicts import Verdict, VerdictStatus
from tokentree.verification.controls import (
    finite_step_control,
    huffman_step_control,
    novel_control,
    overlap_control,
    pareto_normalisation,
    split_sample_control,
)
from tokentree.verification.inputs import HookeInputs, inputs_from_sequences, inputs_from_sources
from tokentree.verification.judges import judge
from tokentree.verification.records import (
    FiniteStepControl,
    HookeControls,
    HuffmanStepControl,
    NovelControl,
    OverlapControl,
    ParetoCheck,
    SplitControl,
    SweepRecord,
)
from tokentree.verification.sweeps import sweep_records
from tokentree.verification.trees import RegimeRecord, RegimeWarning, TreesHooke, TreeSweepRecord, hooke_on_trees

__all__ = [
    "FiniteStepControl",
    "HookeControls",
    "HookeInputs",
    "HuffmanStepControl",
    "NovelControl",
    "OverlapControl",
    "ParetoCheck",
    "RegimeRecord",
    "RegimeWarning",
    "SplitControl",
    "SweepRecord",
    "TreeSweepRecord",
    "TreesHooke",
    "Verdict",
    "VerdictStatus",
    "finite_step_control",
    "hooke_on_trees",
    "huffman_step_control",
    "inputs_from_sequences",
    "inputs_from_sources",
    "judge",
    "novel_control",
    "overlap_control",
    "pareto_normalisation",
    "split_sample_control",
    "sweep_records",
]
