"""Range coding from batched windows, decoded in lockstep: exact tokens, bits near the ideal, and the
arithmetic the decoder repeats (tokentree.bridge.lockstep)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from tokentree.bridge import lockstep
from tokentree.bridge.coding import DecodingMismatchError, decode_tokens, encode_tokens
from tokentree.bridge.hf import HFScorer
from tokentree.bridge.lockstep import LockstepStepper, plan_windows, window_logits
from tokentree.bridge.scoring import UniformScorer
from tokentree.bridge.tiny import TinySpec, tiny_llama
from tokentree.infra.errors import InputError

SPEC = TinySpec(vocab_size=301, n_layers=2, d_model=32, n_heads=2, context=32)
RNG = np.random.default_rng(4)
SEQS = [RNG.integers(0, 300, n) for n in (70, 1, 9, 33, 70, 45)]


def _scorer(**kw) -> HFScorer:
    model = tiny_llama(SPEC, seed=3, bos_token_id=300, eos_token_id=300, pad_token_id=300)
    return HFScorer(model, **{"bos_token_id": 300, "max_context": 32, "stride": 20, "batch_size": 4, **kw})


@pytest.mark.parametrize("attention", ["sdpa", "eager"])
@pytest.mark.parametrize("lanes", [1, 3, 8])
def test_lockstep_round_trip_is_exact_and_within_a_few_bits_of_the_ideal(lanes, attention, monkeypatch):
    """Several windows per sequence, ragged lengths, groups of lanes: every token comes back. Eager attention is
    what a GPU codes with: the ideal bits match scoring's, so its mask hides the keys ahead as SDPA's does."""
    monkeypatch.setattr(lockstep, "attention_for", lambda device: attention)
    scorer = _scorer()
    coded = encode_tokens(scorer, SEQS, lanes=lanes)
    assert coded.lanes == lanes
    decoded = decode_tokens(scorer, coded)
    assert [d.tolist() for d in decoded] == [s.tolist() for s in SEQS]
    ideal = -float(sum(lp.sum() for lp in scorer.token_log_probs(SEQS))) / np.log(2)
    assert coded.ideal_bits == pytest.approx(ideal, rel=1e-6)  # the same windows as scoring
    assert ideal <= coded.n_bits <= ideal + 64 + 1e-3 * ideal


def test_the_decoder_step_reproduces_the_window_logits_bit_for_bit():
    """Four rows a step against a preallocated cache of the window's length: the window's own bits."""
    scorer = _scorer()
    ids = np.concatenate([[300], SEQS[0][:31]])[None]
    offset, window = next(window_logits(scorer.model, ids, np.array([1]), scorer.device))
    assert offset == 0
    stepper = LockstepStepper(scorer.model, 1, 32, scorer.device)
    stepper.begin(ids[:, :1])
    for j in range(31):
        stepper.rows[0, j] = ids[0, j]
        assert torch.equal(stepper.logits(j)[0], window[j]), j


def test_windows_follow_scoring():
    plan = plan_windows(np.array([70]), max_context=32, stride=20, start=1)
    windows = list(plan.windows(71))
    assert windows[0] == (0, 1, 32) and all(first == 12 for _, first, _ in windows[1:])
    assert windows[-1][2] == 71 and sum(end - begin - first for begin, first, end in windows) == 70
    assert plan_windows(np.array([2]), max_context=32, stride=20, start=1).length == 4  # at least 4 rows


def test_a_different_model_is_caught_by_the_checksum():
    coded = encode_tokens(_scorer(), SEQS[:2])
    other = HFScorer(tiny_llama(SPEC, seed=4, bos_token_id=300), bos_token_id=300, max_context=32, stride=20)
    with pytest.raises(DecodingMismatchError, match="fail the checksum"):
        decode_tokens(other, coded)
    with pytest.raises(DecodingMismatchError, match="fail the checksum"):
        decode_tokens(_scorer(), dataclasses.replace(coded, checksum=coded.checksum ^ 1))


def test_bad_coding_input_is_named():
    with pytest.raises(InputError, match="bos_token_id"):
        encode_tokens(_scorer(bos_token_id=None), SEQS[:1])
    with pytest.raises(InputError, match="lanes must be an integer >= 1"):
        encode_tokens(_scorer(), SEQS[:1], lanes=0)
    coded = encode_tokens(_scorer(), SEQS[:1])
    with pytest.raises(InputError, match="decode them with that model's HFScorer"):
        decode_tokens(UniformScorer(301), coded)


def test_a_decode_that_fails_the_checksum_is_recorded_as_not_exact(monkeypatch):
    """measured-vs-theory keeps its records when a platform decodes differently (here: another model decodes)."""
    from tokentree.data.sequences import as_token_sequences
    from tokentree.verification import measured

    other = HFScorer(tiny_llama(SPEC, seed=4, bos_token_id=300), bos_token_id=300, max_context=32, stride=20)
    sample = as_token_sequences(SEQS[:2])
    assert measured.coding_record(_scorer(), sample, dataset="x").decoded_exactly
    monkeypatch.setattr(measured, "decode_tokens", lambda scorer, coded: decode_tokens(other, coded))
    record = measured.coding_record(_scorer(), sample, dataset="x")
    assert not record.decoded_exactly and record.n_bits > 0
