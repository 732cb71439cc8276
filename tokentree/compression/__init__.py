"""The math on distributions: codes, rates, joint compression, elasticity, closed forms.

Everything here takes arrays of masses and returns numbers; nothing builds a tree or
reads data (a layers contract in ``make lint`` keeps it so). The submodules load when
first used, so ``from tokentree.compression import entropy`` does not import sympy,
scipy.stats or numba.

========================  ==========================================================
``huffman``               canonical Huffman codes, encode and decode
``rates``                 entropy, cross-entropy, KL, code lengths, compression rates
``mixture``               the shares of D_p and the Theorem 4.2 mixture sizes
``elasticity``            joint compression, perturbation sweeps, closed forms
``pareto``                fitting Pareto tails of symbol masses
``count_rebound``         the count model of rebound: KL to the pre-trained mixture, closed forms
``symbolic``              sympy derivations of the identities (imported only by name)
========================  ==========================================================
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tokentree.compression.count_rebound import (
        CountRebound,
        count_model_initial_slope,
        count_model_minimum,
        count_model_negatives_to_kl,
        count_model_rebound,
        count_model_return_count,
    )
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
    from tokentree.compression.mixture import Shares, mix, mixture_weights, theorem_4_2_sizes
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
        row_entropies,
        theorem_3_4_length,
        theorem_3_4_rate,
    )

_HOME = {
    "elasticity": (
        "DisjointClosedForm", "JointCompression", "PerturbationResult", "PerturbationSetting",
        "disjoint_closed_form", "finite_step_identity", "joint_compression", "l_star_disjoint",
        "perturbation_setting", "rate_derivatives", "ratio_disjoint", "simulate_perturbation",
    ),
    "huffman": ("EncodedBits", "HuffmanCode", "huffman_code", "huffman_lengths"),
    "mixture": ("Shares", "mix", "mixture_weights", "theorem_4_2_sizes"),
    "pareto": ("ParetoFit", "fit_pareto"),
    "count_rebound": (
        "CountRebound", "count_model_rebound", "count_model_initial_slope", "count_model_minimum",
        "count_model_return_count", "count_model_negatives_to_kl",
    ),
    "rates": (
        "CodeLengths", "CompressionRate", "ZeroModelMassWarning", "code_lengths", "compression_rate",
        "cross_entropy", "entropy", "ideal_code_lengths", "kl_divergence", "row_entropies",
        "theorem_3_4_length", "theorem_3_4_rate",
    ),
}
_MODULE_OF = {name: module for module, names in _HOME.items() for name in names}

__all__ = [
    "CodeLengths",
    "CountRebound",
    "CompressionRate",
    "DisjointClosedForm",
    "EncodedBits",
    "HuffmanCode",
    "JointCompression",
    "ParetoFit",
    "PerturbationResult",
    "PerturbationSetting",
    "Shares",
    "ZeroModelMassWarning",
    "code_lengths",
    "compression_rate",
    "count_model_initial_slope",
    "count_model_minimum",
    "count_model_negatives_to_kl",
    "count_model_rebound",
    "count_model_return_count",
    "cross_entropy",
    "disjoint_closed_form",
    "entropy",
    "finite_step_identity",
    "fit_pareto",
    "huffman_code",
    "huffman_lengths",
    "ideal_code_lengths",
    "joint_compression",
    "kl_divergence",
    "l_star_disjoint",
    "mix",
    "mixture_weights",
    "perturbation_setting",
    "rate_derivatives",
    "ratio_disjoint",
    "row_entropies",
    "simulate_perturbation",
    "theorem_3_4_length",
    "theorem_3_4_rate",
    "theorem_4_2_sizes",
]


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'tokentree.compression' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"tokentree.compression.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
