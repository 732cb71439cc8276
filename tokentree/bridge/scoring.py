"""What every model in the bridge provides: per-token log-probabilities (and, for coding,
next-token distributions), plus the rate bookkeeping on top of them.

A *scorer* is anything with ``vocab_size`` and ``token_log_probs(sequences)``: a real
causal language model (:mod:`tokentree.bridge.hf`), the tiny transformer of
:mod:`tokentree.bridge.tiny`, the count model of a token tree
(:mod:`tokentree.bridge.tree_model`) or a test double such as :class:`UniformScorer`.
A *next-token model* also gives the whole distribution after a prefix, which is what an
entropy coder needs (:mod:`tokentree.bridge.coding`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from tokentree.errors import InputError
from tokentree.results import to_json_ready
from tokentree.sequences import as_token_sequences

__all__ = [
    "TokenScorer",
    "NextTokenModel",
    "UniformScorer",
    "MeasuredRate",
    "measure_rate",
    "checked_sequences",
]

LN2 = math.log(2.0)


@runtime_checkable
class TokenScorer(Protocol):
    """Anything that yields per-token log-probabilities for token sequences."""

    @property
    def vocab_size(self) -> int: ...

    def token_log_probs(self, sequences: Sequence[np.ndarray]) -> list[np.ndarray]:
        """For each sequence of n tokens, n natural-log probabilities: token i given tokens 0..i-1."""
        ...


@runtime_checkable
class NextTokenModel(TokenScorer, Protocol):
    """A scorer that also gives the full next-token distribution after a prefix."""

    def next_token_probs(self, prefix: np.ndarray) -> np.ndarray:
        """Probabilities (float64, summing to 1) of every token id after ``prefix``."""
        ...


def checked_sequences(sequences: object, vocab_size: int) -> list[np.ndarray]:
    """Token sequences as int64 arrays, each non-empty and inside the vocabulary."""
    seqs = [np.asarray(s, dtype=np.int64) for s in as_token_sequences(sequences)]  # type: ignore[arg-type]
    for i, s in enumerate(seqs):
        if s.shape[0] == 0:
            raise InputError(f"sequence {i} is empty: there is nothing to score; drop empty texts first")
        if s.min() < 0 or s.max() >= vocab_size:
            raise InputError(
                f"sequence {i} has token id {int(s.max()) if s.max() >= vocab_size else int(s.min())} outside the "
                f"model's vocabulary 0..{vocab_size - 1}; tokenize with the model's own tokenizer"
            )
    return seqs


@dataclass(frozen=True, eq=False)
class UniformScorer:
    """Every token has probability 1/V: exactly log2 V bits per token (a test double and a baseline).

    >>> r = measure_rate(UniformScorer(1024), [[1, 2, 3]])
    >>> r.bits_per_token
    10.0
    """

    size: int

    @property
    def vocab_size(self) -> int:
        return self.size

    def token_log_probs(self, sequences: Sequence[np.ndarray]) -> list[np.ndarray]:
        return [np.full(s.shape[0], -math.log(self.size)) for s in checked_sequences(sequences, self.size)]

    def next_token_probs(self, prefix: np.ndarray) -> np.ndarray:
        return np.full(self.size, 1.0 / self.size)


@dataclass(frozen=True)
class MeasuredRate:
    """Measured code length of a dataset under a model.

    Attributes
    ----------
    n_sequences, n_tokens : int
    n_bytes : int or None
        UTF-8 bytes of the texts, when given.
    total_bits : float
        -sum log2 p(token | previous tokens).
    bits_per_token, bits_per_byte : float
        ``bits_per_byte`` is nan without texts.
    """

    n_sequences: int
    n_tokens: int
    n_bytes: int | None
    total_bits: float
    bits_per_token: float
    bits_per_byte: float

    def to_dict(self) -> dict[str, float | int | None]:
        """JSON-ready (non-finite numbers as None)."""
        result: dict[str, float | int | None] = to_json_ready(self)
        return result


def measure_rate(scorer: TokenScorer, sequences: object, *, texts: Sequence[str] | None = None) -> MeasuredRate:
    """Bits per token (and per byte of ``texts``) of ``sequences`` under ``scorer``."""
    seqs = checked_sequences(sequences, scorer.vocab_size)
    if not seqs:
        raise InputError("there are no sequences to score: the dataset is empty")
    if texts is not None and len(texts) != len(seqs):
        raise InputError(f"texts has {len(texts)} entries for {len(seqs)} sequences; give one text per sequence")
    logp = scorer.token_log_probs(seqs)
    total = -float(sum(float(lp.sum()) for lp in logp)) / LN2
    n_tokens = sum(s.shape[0] for s in seqs)
    n_bytes = None if texts is None else sum(len(t.encode("utf-8")) for t in texts)
    return MeasuredRate(
        n_sequences=len(seqs),
        n_tokens=n_tokens,
        n_bytes=n_bytes,
        total_bits=total,
        bits_per_token=total / n_tokens,
        bits_per_byte=total / n_bytes if n_bytes else math.nan,
    )
