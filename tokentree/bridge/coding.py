"""Real entropy coding of a model's predictions: range coding with ``constriction``.

Each token is range-coded with the model's next-token distribution after the tokens
before it; decoding asks the model for the same distributions after the tokens decoded
so far, so the round trip is bit-exact as long as the model is deterministic. Both read
the distributions through :func:`~tokentree.bridge.scoring.cursor`: from the KV cache for
a causal LM (one incremental step per token), by recomputing the prefix for other models. The
bitstream for a whole dataset is a whole number of 32-bit words: at most 64 bits above
the ideal code length -sum log2 p for the whole dataset, plus the rounding of each
distribution to constriction's fixed-point precision (which costs more for tokens of
tiny probability).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from types import ModuleType

import numpy as np

from tokentree.bridge.scoring import NextTokenModel, checked_sequences, cursor
from tokentree.infra.errors import InputError
from tokentree.infra.optional import optional_import
from tokentree.infra.results import ArrayResult

__all__ = ["CodedTokens", "encode_tokens", "decode_tokens"]


def _constriction() -> ModuleType:
    return optional_import("constriction", "entropy coding", "pip install 'tokentree[torch]'")


def _categorical(probs: np.ndarray):
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 1 or not np.all(np.isfinite(p)) or np.any(p < 0) or not p.sum() > 0:
        raise InputError("the model returned an invalid next-token distribution (negative, NaN or all zero)")
    return _constriction().stream.model.Categorical(p / p.sum(), perfect=False)


@dataclass(frozen=True, eq=False, repr=False)
class CodedTokens(ArrayResult):
    """Range-coded token sequences, one bitstream for all of them.

    Attributes
    ----------
    words : uint32 array
        The compressed bitstream.
    lengths : int64 array
        Tokens per sequence (side information for the decoder, not counted in ``n_bits``).
    ideal_bits : float
        -sum log2 p(token | previous tokens of its sequence) under the model.
    """

    words: np.ndarray
    lengths: np.ndarray
    ideal_bits: float

    @property
    def n_bits(self) -> int:
        """Length of the bitstream: whole 32-bit words, so at most 64 bits above the ideal plus rounding."""
        return 32 * int(self.words.shape[0])


def encode_tokens(model: NextTokenModel, sequences: object) -> CodedTokens:
    """Range-code token sequences under ``model``, each token given the earlier tokens of its sequence.

    >>> from tokentree.bridge.scoring import UniformScorer
    >>> coded = encode_tokens(UniformScorer(256), [[1, 2, 3, 4], [5, 6]])
    >>> coded.ideal_bits, coded.n_bits, [s.tolist() for s in decode_tokens(UniformScorer(256), coded)]
    (48.0, 64, [[1, 2, 3, 4], [5, 6]])
    """
    seqs = checked_sequences(sequences, model.vocab_size)
    encoder = _constriction().stream.queue.RangeEncoder()
    ideal = 0.0
    for seq in seqs:
        reader = cursor(model)
        for token in seq.tolist():
            probs = reader.probs()
            ideal -= math.log2(probs[token] / probs.sum())
            encoder.encode(token, _categorical(probs))
            reader.push(token)
    lengths = np.array([s.shape[0] for s in seqs], dtype=np.int64)
    return CodedTokens(np.asarray(encoder.get_compressed(), dtype=np.uint32), lengths, ideal)


def decode_tokens(model: NextTokenModel, coded: CodedTokens) -> list[np.ndarray]:
    """Decode every sequence, asking ``model`` for each distribution after the tokens decoded so far."""
    decoder = _constriction().stream.queue.RangeDecoder(np.asarray(coded.words, dtype=np.uint32))
    out = []
    for n in coded.lengths.tolist():
        seq = np.empty(n, dtype=np.int64)
        reader = cursor(model)
        for i in range(n):
            seq[i] = int(decoder.decode(_categorical(reader.probs())))
            reader.push(int(seq[i]))
        out.append(seq)
    return out
