"""Theorem 4.2's mixture on the same data a model is trained on: the reference a trained model is held against
(docs/experiments.md §E4h).

Each part D_1, D_2, D_3 of D_p is a smoothed context model P_i (its token tree used as in
:mod:`tokentree.bridge.tree_model`). As in the theorem, D_a is distributed like D_2 and D_t
like D_3, so the model after l is the mixture of whole-sequence probabilities

    q = (k b1 P_1 + (k b2 + 1) P_2 + (k b3 + l) P_3) / (k + 1 + l),

and gamma_X is D_X's bits per token under q (a :class:`~tokentree.bridge.mixture.SequenceMixture`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from tokentree.compression.mixture import Shares, theorem_4_2_sizes
from tokentree.data.sequences import TokenSequences

__all__ = ["MixtureChanges", "mixture_changes"]


@dataclass(frozen=True)
class MixtureChanges:
    """The mixture's changes from l = 0 at every l (bits per token), their ratios, and the analytic l -> 0 ratio."""

    ratio_l0: float
    ratio: np.ndarray
    delta_align_bits: np.ndarray
    delta_pretrain_bits: np.ndarray


def mixture_changes(
    parts: Sequence[TokenSequences], evals: Mapping[str, TokenSequences], *, vocab_size: int, k: float,
    ls: Sequence[float], shares: Shares, depth: int, discount: float,
) -> MixtureChanges:
    """The mixture of the depth-``depth`` tree models of ``parts`` (absolute ``discount``) with Theorem 4.2's weights
    at ``k`` and every l of ``ls``, scored on ``evals["pretrain"]`` and ``evals["align"]``.

    The l -> 0 ratio is the derivative with respect to the size of the D_3 component.
    """
    from tokentree.bridge.mixture import SequenceMixture
    from tokentree.bridge.scoring import measure_rate
    from tokentree.bridge.tree_model import fit_tree_model

    components = [fit_tree_model(p, depth=depth, vocab_size=vocab_size, discount=discount) for p in parts]
    base = SequenceMixture(components, theorem_4_2_sizes(k, 0.0, shares))
    rates = {name: [measure_rate(base.with_sizes(theorem_4_2_sizes(k, l, shares)), evals[name]).bits_per_token
                    for l in [0.0, *ls]] for name in ("align", "pretrain")}
    d_a = np.array(rates["align"][1:]) - rates["align"][0]
    d_p = np.array(rates["pretrain"][1:]) - rates["pretrain"][0]
    slope_a = base.rate_derivative(list(evals["align"]), component=2)
    slope_p = base.rate_derivative(list(evals["pretrain"]), component=2)
    return MixtureChanges(slope_a / slope_p, d_a / d_p, d_a, d_p)
