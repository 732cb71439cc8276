"""Codes and rates: Huffman codes, ideal and paper lengths, joint compression, elasticity.

``tokentree.compression.symbolic`` (sympy) is imported only when used.
"""

from __future__ import annotations

from tokentree.compression.dataset_codes import decode_dataset, encode_dataset, symbol_indices
from tokentree.compression.elasticity import (
    DisjointClosedForm,
    JointCompression,
    PerturbationResult,
    PerturbationSetting,
    disjoint_closed_form,
    finite_step_identity,
    joint_compression,
    l_star_disjoint,
    perturbation_setting,
    rate_derivatives,
    ratio_disjoint,
    simulate_perturbation,
)
from tokentree.compression.huffman import EncodedBits, HuffmanCode, huffman_code, huffman_lengths
from tokentree.compression.pareto import ParetoFit, fit_pareto
from tokentree.compression.rates import (
    CodeLengths,
    CompressionRate,
    ZeroModelMassWarning,
    code_lengths,
    compression_rate,
    cross_entropy,
    entropy,
    ideal_code_lengths,
    kl_divergence,
    theorem_3_4_length,
)

__all__ = [
    "CodeLengths",
    "CompressionRate",
    "DisjointClosedForm",
    "EncodedBits",
    "HuffmanCode",
    "JointCompression",
    "ParetoFit",
    "PerturbationResult",
    "PerturbationSetting",
    "ZeroModelMassWarning",
    "code_lengths",
    "compression_rate",
    "cross_entropy",
    "decode_dataset",
    "disjoint_closed_form",
    "encode_dataset",
    "entropy",
    "finite_step_identity",
    "fit_pareto",
    "huffman_code",
    "huffman_lengths",
    "ideal_code_lengths",
    "joint_compression",
    "kl_divergence",
    "l_star_disjoint",
    "perturbation_setting",
    "rate_derivatives",
    "ratio_disjoint",
    "simulate_perturbation",
    "symbol_indices",
    "theorem_3_4_length",
]
