"""A token tree as a language model: the window-mode tree of depth d is an order-(d-1) context model.

Training responses are padded on the left with d - 1 distinct start symbols (ids V,
V+1, ..., V+d-2, the one nearest the text being V), and the depth-d window tree of the
padded data counts every (context, next token) event, including those at the start of a
response. The probability of token w after the last d - 1 tokens is interpolated
absolute discounting (Ney, Essen and Kneser 1994), recursively down to the uniform
distribution over the V real tokens:

.. math:: p_j(w) = \\frac{\\max(c(h_j w) - D, 0)}{c(h_j)} + \\frac{D\\, N_{1+}(h_j)}{c(h_j)}\\, p_{j-1}(w),
          \\qquad p_{-1}(w) = 1/V,

where h_j is the context's last j tokens, c(h_j) its count among continuing windows and
N_{1+}(h_j) the number of distinct tokens seen after it; a context never seen passes
p_{j-1} through. ``discount=0`` is the maximum-likelihood model, whose code length on its
own training data is exactly the tree's conditional entropy (:func:`tree_conditional_bits`).
Start symbols are never predicted: a context used for scoring ends in V or in a real token,
and neither is ever followed by a start symbol; for the empty context (unigrams) only
windows that start on a real token are counted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from tokentree.bridge.scoring import checked_contexts, checked_sequences
from tokentree.infra.errors import InputError
from tokentree.trees.build import build_tree
from tokentree.trees.tree import TokenTree

__all__ = ["TreeModel", "fit_tree_model", "tree_conditional_bits"]


def _padded(seqs: Sequence[np.ndarray], depth: int, vocab_size: int) -> list[np.ndarray]:
    pad = np.arange(vocab_size + depth - 2, vocab_size - 1, -1, dtype=np.int64)  # ..., V+1, V
    return [np.concatenate([pad, s]) for s in seqs]


def fit_tree_model(sequences: object, *, depth: int, vocab_size: int, discount: float = 0.75) -> TreeModel:
    """Count every d-gram of ``sequences`` (with start padding) and return the context model."""
    if depth < 1:
        raise InputError(f"depth must be >= 1; got {depth}")
    if not 0 <= discount < 1:
        raise InputError(f"discount must be in [0, 1); got {discount}")
    seqs = checked_sequences(sequences, vocab_size)
    tree = build_tree(
        _padded(seqs, depth, vocab_size), depth=depth, mode="window", vocab_size=vocab_size + max(depth - 1, 1)
    )
    return TreeModel(tree=tree, size=vocab_size, discount=float(discount))


@dataclass(frozen=True, eq=False)
class TreeModel:
    """The count model of a padded window-mode tree (see the module docstring)."""

    tree: TokenTree
    size: int
    discount: float

    @property
    def vocab_size(self) -> int:
        return self.size

    @property
    def depth(self) -> int:
        return self.tree.depth

    @cached_property
    def _keys(self) -> np.ndarray:
        radix = self.tree.vocab_size + 1
        parents = self.tree.parents.astype(np.int64)
        return parents[1:] * radix + self.tree.tokens[1:].astype(np.int64)

    @cached_property
    def _root_children(self) -> tuple[np.ndarray, np.ndarray]:
        lo, hi = int(self.tree.child_offsets[0]), int(self.tree.child_offsets[1])
        real = self.tree.tokens[lo:hi] < self.size  # windows that start on padding are not unigram events
        return self.tree.tokens[lo:hi][real], self.tree.counts[lo:hi][real]

    @cached_property
    def _continuing(self) -> np.ndarray:
        c = (self.tree.counts - self.tree.eos_counts).astype(np.float64)
        c[0] = float(self._root_children[1].sum())
        return c

    @cached_property
    def _distinct_next(self) -> np.ndarray:
        n = np.diff(self.tree.child_offsets).astype(np.float64)
        n[0] = float(self._root_children[0].shape[0])
        return n

    def _child(self, nodes: np.ndarray, tokens: np.ndarray) -> np.ndarray:
        """Child of every node via every token (-1 where absent or where the node is absent)."""
        keys = nodes * (self.tree.vocab_size + 1) + tokens
        pos = np.searchsorted(self._keys, keys)
        pos = np.minimum(pos, self._keys.shape[0] - 1)
        found = (self._keys[pos] == keys) & (nodes >= 0)
        return np.where(found, pos + 1, -1)

    def token_log_probs(
        self, sequences: Sequence[np.ndarray], contexts: Sequence[np.ndarray] | None = None
    ) -> list[np.ndarray]:
        """Log-probabilities of every token; a context is read as the history before the sequence."""
        seqs = checked_sequences(sequences, self.size)
        ctxs = checked_contexts(contexts, len(seqs), self.size)
        if contexts is not None:
            full = [np.concatenate([c, s]) for c, s in zip(ctxs, seqs, strict=True)]
            return [lp[c.shape[0] :] for lp, c in zip(self.token_log_probs(full), ctxs, strict=True)]
        d = self.depth
        out = []
        for s, padded in zip(seqs, _padded(seqs, d, self.size), strict=True):
            n = s.shape[0]
            positions = np.arange(n) + (d - 1)  # index of each real token in the padded array
            p = np.full(n, 1.0 / self.size)
            for j in range(d):  # context length j: tokens padded[pos - j .. pos - 1]
                node = np.zeros(n, dtype=np.int64)
                for t in range(j, 0, -1):
                    node = self._child(node, padded[positions - t])
                ok = node >= 0
                c_ctx = np.where(ok, self._continuing[np.maximum(node, 0)], 0.0)
                child = self._child(np.where(ok, node, -1), padded[positions])
                c_w = np.where(child >= 0, self.tree.counts[np.maximum(child, 0)], 0).astype(np.float64)
                seen = c_ctx > 0
                n1 = self._distinct_next[np.maximum(node, 0)]
                with np.errstate(divide="ignore", invalid="ignore"):
                    interp = np.maximum(c_w - self.discount, 0) / c_ctx + self.discount * n1 / c_ctx * p
                p = np.where(seen, interp, p)
            if np.any(p <= 0):
                raise InputError("a token got probability 0: use discount > 0 to score text the tree has not seen")
            out.append(np.log(p))
        return out

    def next_token_probs(self, prefix: np.ndarray) -> np.ndarray:
        d = self.depth
        padded = _padded([np.asarray(prefix, dtype=np.int64)], d, self.size)[0]
        p = np.full(self.size, 1.0 / self.size)
        for j in range(d):
            node = 0
            for t in padded[len(padded) - j :] if j else []:
                node = int(self._child(np.array([node]), np.array([int(t)]))[0])
                if node < 0:
                    break
            if node < 0 or self._continuing[node] <= 0:
                continue
            lo, hi = int(self.tree.child_offsets[node]), int(self.tree.child_offsets[node + 1])
            toks = self.tree.tokens[lo:hi].astype(np.int64)
            real = toks < self.size
            c = self._continuing[node]
            new = self.discount * self._distinct_next[node] / c * p
            new[toks[real]] += np.maximum(self.tree.counts[lo:hi][real] - self.discount, 0) / c
            p = new
        return p / p.sum()


def tree_conditional_bits(model: TreeModel) -> float:
    """Sum over the depth-d windows of c log2(c(parent) / c): the ML model's code length on its data.

    Every real token of the training data is the last token of exactly one depth-d window
    of the padded data, whose parent is its (d-1)-token context.
    """
    tree = model.tree
    lo, hi = int(tree.level_offsets[-2]), int(tree.level_offsets[-1])
    nodes = np.arange(lo, hi)
    counts = tree.counts[nodes].astype(np.float64)
    parents = tree.parents[nodes].astype(np.int64)
    real = tree.tokens[nodes] < model.size
    parent_c = model._continuing[parents]
    return float(np.sum(counts[real] * np.log2(parent_c[real] / counts[real])))
