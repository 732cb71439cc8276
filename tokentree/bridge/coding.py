"""Real entropy coding of a model's predictions: range coding with ``constriction``.

Each token is range-coded with the model's next-token distribution after the tokens
before it; decoding asks the model for the same distributions after the tokens decoded
so far, so the round trip is exact when both sides compute the same bits.

* A Hugging Face causal LM (:class:`~tokentree.bridge.hf.HFScorer`) is encoded from
  batched forward passes over whole windows (the windows of scoring: ``max_context``
  tokens, ``max_context - stride`` carried over) and decoded by stepping several
  sequences in lockstep through a preallocated key/value cache, with the same arithmetic
  as the windows (:mod:`tokentree.bridge.lockstep` explains how). Sequences are grouped
  by length, ``lanes`` to a group; within a group the tokens are coded position by
  position, which is the order the decoder finds them in.
* Any other next-token model (a token tree's count model, a test double) is read through
  :func:`~tokentree.bridge.scoring.cursor`, one distribution per token.

Each distribution becomes ``constriction``'s categorical, which quantises it to integer
frequencies deterministically. The bitstream for a whole dataset is a whole number of
32-bit words: at most 64 bits above the ideal code length -sum log2 p, plus the rounding
of each distribution to constriction's fixed-point precision (which costs more for
tokens of tiny probability). A CRC-32 of the tokens travels with them and is checked
after decoding.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

from tokentree.bridge.scoring import NextTokenModel, checked_sequences, cursor
from tokentree.infra.checks import check_int
from tokentree.infra.errors import InputError
from tokentree.infra.optional import optional_import, torch_module
from tokentree.infra.results import ArrayResult

__all__ = ["CodedTokens", "encode_tokens", "decode_tokens", "DecodingMismatchError"]

#: Bytes of float32 logits a group of lanes may hold at once (its windows' logits).
GROUP_LOGITS_BYTES = 2**29
#: Bytes of float64 probabilities handed to the coder in one call.
PROBS_BYTES = 2**26


class DecodingMismatchError(InputError):
    """The decoded tokens fail the checksum: the decoder did not reproduce the encoder's distributions."""


def _constriction() -> ModuleType:
    return optional_import("constriction", "entropy coding", "pip install 'tokentree[torch]'")


def _categorical(probs: np.ndarray) -> Any:
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 1 or not np.all(np.isfinite(p)) or np.any(p < 0) or not p.sum() > 0:
        raise InputError("the model returned an invalid next-token distribution (negative, NaN or all zero)")
    return _constriction().stream.model.Categorical(p / p.sum(), perfect=False)


def _checksum(seqs: list[np.ndarray]) -> int:
    crc = 0
    for s in seqs:
        crc = zlib.crc32(np.ascontiguousarray(s, dtype="<i8").tobytes(), crc)
    return crc


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
    lanes : int
        Sequences coded together, position by position (0: one after the other, by a cursor).
    window, keep : int
        The coding window's length and the tokens it carries into the next (0 for a cursor).
    checksum : int
        CRC-32 of the tokens (little-endian int64), checked by :func:`decode_tokens`.
    """

    words: np.ndarray
    lengths: np.ndarray
    ideal_bits: float
    lanes: int = 0
    window: int = 0
    keep: int = 0
    checksum: int = 0

    @property
    def n_bits(self) -> int:
        """Length of the bitstream: whole 32-bit words, so at most 64 bits above the ideal plus rounding."""
        return 32 * int(self.words.shape[0])


def _is_windowed(model: object) -> bool:
    from tokentree.bridge.hf import HFScorer

    return isinstance(model, HFScorer)


def _groups(lengths: np.ndarray, lanes: int) -> list[np.ndarray]:
    """Sequence indices, longest first (ties by index), ``lanes`` to a group."""
    order = np.lexsort((np.arange(lengths.shape[0]), -lengths))
    return [order[g : g + lanes] for g in range(0, order.shape[0], lanes)]


def encode_tokens(model: NextTokenModel, sequences: object, *, lanes: int | None = None) -> CodedTokens:
    """Range-code token sequences under ``model``, each token given the earlier tokens of its sequence.

    ``lanes`` (Hugging Face models only) is how many sequences are decoded together; by
    default the scorer's ``batch_size``, fewer when their windows' logits would pass
    512 MiB.

    >>> from tokentree.bridge.scoring import UniformScorer
    >>> coded = encode_tokens(UniformScorer(256), [[1, 2, 3, 4], [5, 6]])
    >>> coded.ideal_bits, coded.n_bits, [s.tolist() for s in decode_tokens(UniformScorer(256), coded)]
    (48.0, 64, [[1, 2, 3, 4], [5, 6]])
    """
    seqs = checked_sequences(sequences, model.vocab_size)
    lengths = np.array([s.shape[0] for s in seqs], dtype=np.int64)
    if _is_windowed(model):
        return _encode_windowed(model, seqs, lengths, lanes)
    encoder = _constriction().stream.queue.RangeEncoder()
    ideal = 0.0
    for seq in seqs:
        reader = cursor(model)
        for token in seq.tolist():
            probs = reader.probs()
            ideal -= math.log2(probs[token] / probs.sum())
            encoder.encode(token, _categorical(probs))
            reader.push(token)
    return CodedTokens(np.asarray(encoder.get_compressed(), dtype=np.uint32), lengths, ideal,
                       checksum=_checksum(seqs))


def decode_tokens(model: NextTokenModel, coded: CodedTokens) -> list[np.ndarray]:
    """Decode every sequence, asking ``model`` for each distribution after the tokens decoded so far.

    Raises :class:`DecodingMismatchError` when the tokens fail the checksum (another
    model, other settings, or a platform whose kernels round differently).
    """
    decoder = _constriction().stream.queue.RangeDecoder(np.asarray(coded.words, dtype=np.uint32))
    if coded.lanes:
        if not _is_windowed(model):
            raise InputError("these tokens were coded with a Hugging Face model's windows; decode them with that "
                             "model's HFScorer")
        out = _decode_windowed(model, coded, decoder)
    else:
        out = []
        for n in coded.lengths.tolist():
            seq = np.empty(n, dtype=np.int64)
            reader = cursor(model)
            for i in range(n):
                seq[i] = int(decoder.decode(_categorical(reader.probs())))
                reader.push(int(seq[i]))
            out.append(seq)
    if _checksum(out) != coded.checksum:
        raise DecodingMismatchError(
            "the decoded tokens fail the checksum: the decoder's distributions differ from the encoder's; decode "
            "with the same model and settings, on a machine whose torch computes the same bits (a GPU's kernels "
            "can round the encoder's whole windows and the decoder's steps differently: code on the CPU)"
        )
    return out


# ----------------------------------------------------------------------------- Hugging Face windows
def _start_tokens(scorer: Any) -> list[int]:
    if scorer.bos_token_id is None:
        raise InputError("range coding with a Hugging Face model needs a bos_token_id to predict the first token")
    return [int(scorer.bos_token_id)]


def _encode_windowed(scorer: Any, seqs: list[np.ndarray], lengths: np.ndarray, lanes: int | None) -> CodedTokens:
    from tokentree.bridge.lockstep import plan_windows, row_probs, window_logits

    start = _start_tokens(scorer)
    plan = plan_windows(lengths, max_context=scorer.max_context, stride=scorer.stride, start=len(start))
    out_rows = int(scorer.model.get_output_embeddings().weight.shape[0])
    lanes = check_int(scorer.batch_size if lanes is None else lanes, "lanes", minimum=1)
    lanes = max(1, min(lanes, GROUP_LOGITS_BYTES // (4 * plan.length * out_rows)))
    cm = _constriction().stream.model.Categorical(perfect=False)
    encoder = _constriction().stream.queue.RangeEncoder()
    vocab, ideal = scorer.vocab_size, 0.0
    per = max(1, PROBS_BYTES // (8 * vocab))
    for group in _groups(lengths, lanes):
        fulls = [np.concatenate([start, seqs[i]]).astype(np.int64) for i in group]
        schedule = [(begin, first, [f for f in fulls if f.shape[0] > begin + first])  # active: longest first
                    for begin, first, _ in plan.windows(fulls[0].shape[0])]
        ids = np.zeros((sum(len(active) for *_, active in schedule), plan.length), dtype=np.int64)
        n = 0
        for begin, _, active in schedule:
            for f in active:
                piece = f[begin : begin + plan.length]
                ids[n, : piece.shape[0]] = piece
                n += 1
        firsts = np.array([first for _, first, active in schedule for _ in active])
        stream = window_logits(scorer.model, ids, firsts, scorer.device)  # every window of the group, in batches
        n = 0
        for begin, first, active in schedule:
            window = ids[n : n + len(active)]
            pieces = [next(stream) for _ in active]
            offset = max(o for o, _ in pieces)
            logits = torch_module().stack([p[-(plan.length - offset):] for _, p in pieces])
            n += len(active)
            ends = np.array([f.shape[0] for f in active]) - begin
            rows, lane = np.nonzero(np.arange(first, plan.length)[:, None] < ends[None, :])  # position-major
            rows += first
            for c in range(0, rows.shape[0], per):  # in order: the queue coder is first in, first out
                r, la = rows[c : c + per], lane[c : c + per]
                probs = row_probs(logits[la, r - 1 - offset], vocab)
                symbols = window[la, r]
                ideal -= float(np.log2(probs[np.arange(r.shape[0]), symbols]).sum())
                encoder.encode(symbols.astype(np.int32), cm, probs)
    return CodedTokens(np.asarray(encoder.get_compressed(), dtype=np.uint32), lengths, ideal, lanes=lanes,
                       window=plan.length, keep=plan.keep, checksum=_checksum(seqs))


def _decode_windowed(scorer: Any, coded: CodedTokens, decoder: Any) -> list[np.ndarray]:
    from tokentree.bridge.lockstep import LockstepStepper, WindowPlan, row_probs

    start = _start_tokens(scorer)
    plan = WindowPlan(length=coded.window, keep=coded.keep, start=len(start))
    cm = _constriction().stream.model.Categorical(perfect=False)
    out: list[np.ndarray] = [np.zeros(0, dtype=np.int64)] * coded.lengths.shape[0]
    for group in _groups(coded.lengths, coded.lanes):
        n_full = coded.lengths[group] + len(start)
        full = np.zeros((len(group), int(n_full[0])), dtype=np.int64)
        full[:, : len(start)] = start
        stepper = LockstepStepper(scorer.model, len(group), plan.length, scorer.device)
        for begin, first, _ in plan.windows(int(n_full[0])):
            stepper.begin(full[:, begin : begin + first])
            for row in range(first, plan.length):
                n_here = int((n_full > begin + row).sum())  # longest first: lanes 0..n_here-1
                if not n_here:
                    break
                probs = row_probs(stepper.logits(row - 1)[:n_here], scorer.vocab_size)
                symbols = np.asarray(decoder.decode(cm, probs), dtype=np.int64)
                full[:n_here, begin + row] = symbols
                stepper.rows[:n_here, row] = symbols
        for lane, i in enumerate(group):
            out[i] = full[lane, len(start) : int(n_full[lane])].copy()
    return out
