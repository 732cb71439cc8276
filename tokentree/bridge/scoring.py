"""What every model in the bridge provides: per-token log-probabilities (and, for coding,
next-token distributions), plus the rate bookkeeping on top of them.

A *scorer* is anything with ``vocab_size`` and ``token_log_probs(sequences, contexts)``:
a real causal language model (:mod:`tokentree.bridge.hf`, the tiny Llama of
:mod:`tokentree.bridge.tiny` included), the count model of a token tree
(:mod:`tokentree.bridge.tree_model`), a mixture of scorers
(:mod:`tokentree.bridge.mixture`) or a test double such as :class:`UniformScorer`. A
context is a token sequence read before the scored one but not scored itself: a
response is scored given its prompt.

A *next-token model* also gives the whole distribution after a prefix, which is what an
entropy coder needs (:mod:`tokentree.bridge.coding`); :func:`cursor` reads those
distributions one token at a time, incrementally where the model can (a KV cache).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from tokentree.data.sequences import as_token_sequences
from tokentree.infra.errors import InputError
from tokentree.infra.results import to_json_ready

__all__ = [
    "TokenScorer",
    "NextTokenModel",
    "TokenCursor",
    "cursor",
    "UniformScorer",
    "MeasuredRate",
    "measure_rate",
    "checked_sequences",
    "checked_contexts",
]

LN2 = math.log(2.0)


@runtime_checkable
class TokenScorer(Protocol):
    """Anything that yields per-token log-probabilities for token sequences."""

    @property
    def vocab_size(self) -> int: ...

    def token_log_probs(
        self, sequences: Sequence[np.ndarray], contexts: Sequence[np.ndarray] | None = None
    ) -> list[np.ndarray]:
        """For each sequence of n tokens, n natural-log probabilities: token i given the sequence's
        context (if any) and tokens 0..i-1."""
        ...


@runtime_checkable
class NextTokenModel(TokenScorer, Protocol):
    """A scorer that also gives the full next-token distribution after a prefix."""

    def next_token_probs(self, prefix: np.ndarray) -> np.ndarray:
        """Probabilities (float64, summing to 1) of every token id after ``prefix``."""
        ...


class TokenCursor(Protocol):
    """The next-token distribution now (:meth:`probs`), then the next token fed in (:meth:`push`)."""

    def probs(self) -> np.ndarray: ...

    def push(self, token: int) -> None: ...


class _PrefixCursor:
    """A cursor for any next-token model: the distribution of the whole prefix, recomputed each time."""

    def __init__(self, model: NextTokenModel, context: np.ndarray) -> None:
        self.model, self.tokens = model, list(context.tolist())

    def probs(self) -> np.ndarray:
        return self.model.next_token_probs(np.asarray(self.tokens, dtype=np.int64))

    def push(self, token: int) -> None:
        self.tokens.append(int(token))


def cursor(model: NextTokenModel, context: np.ndarray | None = None) -> TokenCursor:
    """Read ``model``'s next-token distributions one token at a time, after an optional context.

    Models with a ``start(context)`` method (a KV cache: :class:`~tokentree.bridge.hf.HFScorer`)
    are read incrementally; any other next-token model recomputes each prefix.
    """
    start = getattr(model, "start", None)
    if callable(start):
        got: TokenCursor = start(context)
        return got
    ctx = checked_contexts(None if context is None else [context], 1, model.vocab_size)[0]
    return _PrefixCursor(model, ctx)


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


def checked_contexts(contexts: object, n: int, vocab_size: int) -> list[np.ndarray]:
    """One context per sequence as int64 arrays (empty arrays when ``contexts`` is None)."""
    if contexts is None:
        return [np.zeros(0, dtype=np.int64) for _ in range(n)]
    ctxs = [np.asarray(c, dtype=np.int64) for c in as_token_sequences(contexts)]  # type: ignore[arg-type]
    if len(ctxs) != n:
        raise InputError(f"contexts has {len(ctxs)} entries for {n} sequences; give one context per sequence")
    for i, c in enumerate(ctxs):
        if c.shape[0] and (c.min() < 0 or c.max() >= vocab_size):
            raise InputError(f"context {i} has a token id outside the model's vocabulary 0..{vocab_size - 1}")
    return ctxs


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

    def token_log_probs(
        self, sequences: Sequence[np.ndarray], contexts: Sequence[np.ndarray] | None = None
    ) -> list[np.ndarray]:
        seqs = checked_sequences(sequences, self.size)
        checked_contexts(contexts, len(seqs), self.size)
        return [np.full(s.shape[0], -math.log(self.size)) for s in seqs]

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


def measure_rate(
    scorer: TokenScorer,
    sequences: object,
    *,
    contexts: object | None = None,
    texts: Sequence[str] | None = None,
) -> MeasuredRate:
    """Bits per token (and per byte of ``texts``) of ``sequences`` under ``scorer``, each given its context."""
    seqs = checked_sequences(sequences, scorer.vocab_size)
    if not seqs:
        raise InputError("there are no sequences to score: the dataset is empty")
    if texts is not None and len(texts) != len(seqs):
        raise InputError(f"texts has {len(texts)} entries for {len(seqs)} sequences; give one text per sequence")
    ctxs = None if contexts is None else checked_contexts(contexts, len(seqs), scorer.vocab_size)
    logp = scorer.token_log_probs(seqs, ctxs) if ctxs is not None else scorer.token_log_probs(seqs)
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
