"""A real model against token-tree context models on the same held-out text, and a range-coding round trip
(docs/experiments.md §E3)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from tokentree.bridge.coding import DecodingMismatchError, decode_tokens, encode_tokens
from tokentree.bridge.scoring import measure_rate
from tokentree.bridge.tree_model import fit_tree_model
from tokentree.data.sequences import TokenSequences
from tokentree.infra.results import Record

__all__ = ["RateRecord", "CodingRecord", "rate_records", "coding_record"]


@dataclass(frozen=True)
class RateRecord(Record):
    """Held-out bits per token of one dataset: the model's, and the depth-d tree model's."""

    NONFINITE_REASONS: ClassVar[dict[str, str]] = {"model_bits_per_byte": "no texts were given to count bytes"}

    dataset: str
    corpora: str
    depth: int
    n_tokens: int
    n_bytes: int
    model_bits_per_token: float
    model_bits_per_byte: float
    tree_bits_per_token: float
    raw_bits_per_token: float


@dataclass(frozen=True)
class CodingRecord(Record):
    """One range-coded bitstream: its length against the ideal code length, and the round trip."""

    dataset: str
    n_tokens: int
    n_bits: int
    ideal_bits: float
    decoded_exactly: bool


def rate_records(
    scorer: Any, train: TokenSequences, held: TokenSequences, held_texts: Sequence[str], *, dataset: str,
    corpora: str, depths: Sequence[int], discount: float,
) -> list[RateRecord]:
    """The model's held-out bits per token (and per byte of ``held_texts``) beside the tree model of ``train`` at
    every depth (interpolated absolute discounting, ``discount``), one record per depth."""
    measured = measure_rate(scorer, held, texts=list(held_texts))
    return [RateRecord(
        dataset=dataset, corpora=corpora, depth=int(d), n_tokens=measured.n_tokens, n_bytes=int(measured.n_bytes or 0),
        model_bits_per_token=measured.bits_per_token, model_bits_per_byte=measured.bits_per_byte,
        tree_bits_per_token=measure_rate(fit_tree_model(train, depth=d, vocab_size=scorer.vocab_size,
                                                        discount=discount), held).bits_per_token,
        raw_bits_per_token=math.log2(scorer.vocab_size),
    ) for d in depths]


def coding_record(scorer: Any, sample: TokenSequences, *, dataset: str) -> CodingRecord:
    """Range-code ``sample`` with the model's probabilities, decode it back, and compare (a decoder that fails the
    checksum, as a platform whose kernels round differently could, is recorded as not exact)."""
    coded = encode_tokens(scorer, sample)
    try:
        decoded = decode_tokens(scorer, coded)
        exact = all(np.array_equal(a, b) for a, b in zip(decoded, sample, strict=True))
    except DecodingMismatchError:
        exact = False
    return CodingRecord(dataset=dataset, n_tokens=int(sample.n_tokens), n_bits=coded.n_bits,
                        ideal_bits=coded.ideal_bits, decoded_exactly=exact)
