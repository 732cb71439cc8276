"""The inputs of the Theorem 4.2 verification: five distributions at one depth, on one symbol set.

The pre-training parts P_1, P_2, P_3, the alignment data P_a (drawn like D_2) and the
perturbation data P_t (drawn like D_3), plus a second perturbation drawn like D_2 for
the overlap control (docs/theory.md §5.5). :func:`inputs_from_sources` reads them
exactly off synthetic sources; :func:`inputs_from_sequences` builds token trees from
finite datasets. This is the one place where the verification touches trees.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from tokentree.compression.elasticity import PerturbationSetting, perturbation_setting
from tokentree.compression.mixture import Shares
from tokentree.compression.rates import row_entropies
from tokentree.data.scenario import ScenarioSources
from tokentree.data.sequences import TokenSequences
from tokentree.infra.errors import InputError
from tokentree.infra.results import ArrayResult
from tokentree.trees.build import build_tree
from tokentree.trees.combine import align_symbols
from tokentree.trees.dataset_codes import symbol_indices

__all__ = ["HookeInputs", "inputs_from_sources", "inputs_from_sequences"]


@dataclass(frozen=True, eq=False, repr=False)
class HookeInputs(ArrayResult):
    """The Theorem 4.2 distributions at one depth, on one shared symbol set.

    Attributes
    ----------
    depth : int
        Capacity depth d.
    parts : float array, shape (3, n_symbols)
        P_1, P_2, P_3 (rows sum to 1).
    align, perturb, perturb_like_align : float arrays
        P_a (like D_2), P_t (like D_3) and the overlap control's perturbation (like D_2).
    symbol_lengths : float array
        Tokens per symbol.
    vocab_size : int
    data : str
        Where the distributions come from ("synthetic", "real", ...): a label for records.
    alpha : float or None
        The Pareto shape of synthetic sources (None for data).
    """

    ROW_FIELD = "align"

    depth: int
    parts: np.ndarray
    align: np.ndarray
    perturb: np.ndarray
    perturb_like_align: np.ndarray
    symbol_lengths: np.ndarray
    vocab_size: int
    data: str = "synthetic"
    alpha: float | None = None

    @cached_property
    def disjoint(self) -> bool:
        """True when no symbol has mass in two of P_1, P_2, P_3 (the closed form applies)."""
        return bool(np.all((self.parts > 0).sum(axis=0) <= 1))

    @cached_property
    def entropies_bits(self) -> np.ndarray:
        """H(P_1), H(P_2), H(P_3) per symbol, in bits."""
        return row_entropies(self.parts)

    def setting(
        self, k: float, betas: Sequence[float] | Shares, perturb: np.ndarray | None = None
    ) -> PerturbationSetting:
        """The Theorem 4.2 setting with weight k on D_p (and another perturbation if given)."""
        return perturbation_setting(
            list(self.parts),
            self.align,
            self.perturb if perturb is None else perturb,
            k=k,
            betas=betas,
            symbol_lengths=self.symbol_lengths,
            depth=self.depth,
        )


def _normalised(rows: np.ndarray) -> np.ndarray:
    rows = np.asarray(rows, dtype=np.float64)
    totals = rows.sum(axis=1, keepdims=True)
    if np.any(totals <= 0):
        raise InputError("every dataset needs some mass at this depth; one is empty")
    result: np.ndarray = rows / totals
    return result


def inputs_from_sources(sources: ScenarioSources, *, data: str = "synthetic") -> HookeInputs:
    """Exact P_1, P_2, P_3 of synthetic sources; P_a = P_2 and P_t = P_3 exactly.

    The sources' paths are put in one chunk-mode token tree of their depth, and every
    source's leaf probabilities are read onto that tree's symbols.

    >>> from tokentree.data.scenario import scenario_sources
    >>> inp = inputs_from_sources(scenario_sources(depth=3, n_leaves=20, rng=0))
    >>> inp.parts.shape, inp.disjoint, float(inp.parts.sum())
    ((3, 60), True, 3.0)
    """
    paths = TokenSequences.concatenate([c.paths for c in sources.components])
    tree = build_tree(paths, depth=sources.depth, mode="chunk", vocab_size=sources.vocab_size)
    n_symbols = len(tree.symbols())
    rows = np.zeros((3, n_symbols))
    for i, comp in enumerate(sources.components):
        idx = symbol_indices(tree, comp.paths)
        rows[i] = np.bincount(idx, weights=comp.probabilities, minlength=n_symbols)
    parts = _normalised(rows)
    return HookeInputs(
        depth=sources.depth,
        parts=parts,
        align=parts[1],
        perturb=parts[2],
        perturb_like_align=parts[1],
        symbol_lengths=tree.symbols().length.astype(np.float64),
        vocab_size=sources.vocab_size,
        data=data,
        alpha=sources.alpha,
    )


def inputs_from_sequences(
    parts: Sequence[TokenSequences],
    align: TokenSequences,
    perturb: TokenSequences,
    perturb_like_align: TokenSequences,
    *,
    depth: int,
    vocab_size: int,
    mode: str = "chunk",
    data: str = "real",
) -> HookeInputs:
    """Empirical distributions of finite datasets: one token tree each, on their union's symbols."""
    if len(parts) != 3:
        raise InputError(f"need the three pre-training parts D_1, D_2, D_3; got {len(parts)}")
    datasets = [*parts, align, perturb, perturb_like_align]
    trees = [build_tree(s, depth=depth, mode=mode, vocab_size=vocab_size) for s in datasets]
    aligned = align_symbols(trees)
    rows = _normalised(aligned.masses)
    return HookeInputs(
        depth=depth,
        parts=rows[:3],
        align=rows[3],
        perturb=rows[4],
        perturb_like_align=rows[5],
        symbol_lengths=aligned.symbols.length.astype(np.float64),
        vocab_size=vocab_size,
        data=data,
    )
