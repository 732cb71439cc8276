"""The joint-compression model over sequence models: a mixture that scores like any model.

Section 4 of docs/theory.md models training on datasets of sizes n_1, ..., n_m as the
size-weighted mixture of their distributions. Over whole sequences, with each component
a :class:`~tokentree.bridge.scoring.TokenScorer` (a tree context model, a trained
network, ...), that is

.. math:: q(x) = \\sum_i n_i P_i(x) / \\sum_i n_i .

:class:`SequenceMixture` is this q as a scorer. Its per-token probabilities are the
predictive ones, q(x_t | x_<t) = q(x_<=t) / q(x_<t): the components' posterior weights
after x_<t times their next-token probabilities. They multiply to q(x), so
:func:`~tokentree.bridge.scoring.measure_rate` gives the mixture's exact code length.

Component log-probabilities are cached per sequence, so sweeping the sizes (as
Theorem 4.2 sweeps k and l) rescoring nothing: :meth:`SequenceMixture.with_sizes` keeps
the cache.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy.special import logsumexp

from tokentree.bridge.scoring import TokenScorer, checked_contexts, checked_sequences
from tokentree.infra.errors import InputError

__all__ = ["SequenceMixture"]

LN2 = math.log(2.0)


class _ComponentScores:
    """Per-token log-probabilities of every component, computed once per distinct sequence."""

    def __init__(self, components: Sequence[TokenScorer]) -> None:
        self.components = tuple(components)
        self._cache: dict[bytes, np.ndarray] = {}

    def of(self, seqs: list[np.ndarray]) -> list[np.ndarray]:
        """For each sequence, an array (n_components, n_tokens) of natural-log probabilities."""
        missing = {s.tobytes(): s for s in seqs if s.tobytes() not in self._cache}
        if missing:
            todo = list(missing.values())
            per_component = [c.token_log_probs(todo) for c in self.components]
            for j, key in enumerate(missing):
                self._cache[key] = np.stack([scores[j] for scores in per_component])
        return [self._cache[s.tobytes()] for s in seqs]


class SequenceMixture:
    """q(x) = sum_i n_i P_i(x) / sum_i n_i over component scorers P_i with sizes n_i.

    >>> from tokentree.bridge.scoring import UniformScorer, measure_rate
    >>> q = SequenceMixture([UniformScorer(4), UniformScorer(4)], sizes=[3.0, 1.0])
    >>> measure_rate(q, [[0, 1, 2]]).bits_per_token
    2.0
    """

    def __init__(
        self, components: Sequence[TokenScorer] | _ComponentScores, sizes: Sequence[float] | np.ndarray
    ) -> None:
        scores = components if isinstance(components, _ComponentScores) else _ComponentScores(components)
        if not scores.components:
            raise InputError("a mixture needs at least one component")
        vocab = {c.vocab_size for c in scores.components}
        if len(vocab) != 1:
            raise InputError(f"mixture components must share one vocabulary; got sizes {sorted(vocab)}")
        n = np.asarray(sizes, dtype=np.float64)
        if n.shape != (len(scores.components),) or not np.all(np.isfinite(n)) or np.any(n < 0) or n.sum() <= 0:
            raise InputError(
                f"sizes must be {len(scores.components)} finite numbers >= 0, not all 0 (one per component); "
                f"got {np.ravel(sizes).tolist()}"
            )
        self._scores = scores
        self.sizes = n
        self._vocab_size = vocab.pop()

    @property
    def vocab_size(self) -> int:
        return self._vocab_size

    @property
    def components(self) -> tuple[TokenScorer, ...]:
        return self._scores.components

    def with_sizes(self, sizes: Sequence[float] | np.ndarray) -> SequenceMixture:
        """The same components with new sizes (component scores already computed are reused)."""
        return SequenceMixture(self._scores, sizes)

    def _log_weights(self) -> np.ndarray:
        with np.errstate(divide="ignore"):
            result: np.ndarray = np.log(self.sizes / self.sizes.sum())
        return result

    def token_log_probs(
        self, sequences: Sequence[np.ndarray], contexts: Sequence[np.ndarray] | None = None
    ) -> list[np.ndarray]:
        """log q(x_t | c, x_<t) for every token: log q(c, x_<=t) - log q(c, x_<t) (natural log).

        After a context c the components are weighted by their posterior, n_i P_i(c).
        """
        seqs = checked_sequences(sequences, self.vocab_size)
        ctxs = checked_contexts(contexts, len(seqs), self.vocab_size)
        full = [np.concatenate([c, s]) for c, s in zip(ctxs, seqs, strict=True)]
        log_w = self._log_weights()[:, None]
        out = []
        for scores, c in zip(self._scores.of(full), ctxs, strict=True):
            prefix = np.concatenate([np.zeros((scores.shape[0], 1)), np.cumsum(scores, axis=1)], axis=1)
            log_q = logsumexp(log_w + prefix, axis=0)  # log q(x_<t) for t = 0..n (log q(empty) = 0)
            out.append(np.diff(log_q)[c.shape[0] :])
        return out

    def sequence_log_probs(self, sequences: Sequence[np.ndarray]) -> np.ndarray:
        """log q(x) of every whole sequence (natural log)."""
        seqs = checked_sequences(sequences, self.vocab_size)
        log_w = self._log_weights()[:, None]
        totals = np.stack([s.sum(axis=1) for s in self._scores.of(seqs)], axis=1)  # (n_components, n_sequences)
        result: np.ndarray = logsumexp(log_w + totals, axis=0)
        return result

    def rate_derivative(self, sequences: Sequence[np.ndarray], component: int) -> float:
        """d gamma / d n_j: how the bits per token of ``sequences`` change as component j grows.

        With N = sum_i n_i, d log q(x) / d n_j = P_j(x) / (N q(x)) - 1/N, so
        d gamma / d n_j = -sum_x [P_j(x) / (N q(x)) - 1/N] / (T ln 2) for T tokens
        (analytic; no finite difference).
        """
        if not 0 <= component < len(self.components):
            raise InputError(f"component must be 0..{len(self.components) - 1}; got {component}")
        seqs = checked_sequences(sequences, self.vocab_size)
        n_total = float(self.sizes.sum())
        log_nq = self.sequence_log_probs(seqs) + math.log(n_total)
        log_pj = np.array([s[component].sum() for s in self._scores.of(seqs)])
        tokens = sum(s.shape[0] for s in seqs)
        return -float((np.exp(log_pj - log_nq) - 1.0 / n_total).sum()) / (tokens * LN2)
