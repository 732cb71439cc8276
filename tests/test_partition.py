"""Builds in parts (by first-token ranges, stitched level by level) equal the single build, array for array."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.strategies import depths, modes, token_sequences, weights
from tokentree.data.synthetic import zipf_corpus
from tokentree.infra.errors import InputError
from tokentree.trees.build import build_tree
from tokentree.trees.partition import plan_partitions, stitch_trees


def _same(a, b):
    assert a == b
    for name in ("tokens", "parents", "counts", "level_offsets", "leaf_eos"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name
    assert a.info == b.info


@given(token_sequences(max_vocab=7, max_len=20), depths, modes, weights, st.sampled_from(("token", "binary")),
       st.integers(1, 64))
def test_a_build_in_parts_equals_the_single_build(seqs, depth, mode, weight, alphabet, parts):
    whole = build_tree(seqs, depth=depth, mode=mode, weight=weight, alphabet=alphabet)
    _same(build_tree(seqs, depth=depth, mode=mode, weight=weight, alphabet=alphabet, partitions=parts), whole)


def test_adversarial_parts_one_heavy_first_token_empty_ranges_and_short_responses():
    rng = np.random.default_rng(0)
    heavy = [[0, *rng.integers(0, 50, size=rng.integers(0, 30)).tolist()] for _ in range(300)]  # all start with 0
    short = [[int(t)] for t in rng.integers(0, 50, size=40)]  # responses shorter than d
    seqs = heavy + short + [[49, 49, 49]]
    for mode in ("prefix", "chunk", "window"):
        for depth in (1, 3, 16):
            whole = build_tree(seqs, depth=depth, mode=mode, vocab_size=1000)  # ids 50..999 never occur: empty parts
            for parts in (2, 7, 64):
                _same(build_tree(seqs, depth=depth, mode=mode, vocab_size=1000, partitions=parts), whole)


def test_the_plan_balances_and_refuses_nonsense():
    mass = np.array([10, 0, 0, 10, 10, 0, 10])
    bounds = plan_partitions(mass, 4)
    assert bounds[0] == 0 and bounds[-1] == 7
    assert [int(mass[a:b].sum()) for a, b in itertools.pairwise(bounds)] == [10, 10, 10, 10]
    assert plan_partitions(np.zeros(5, dtype=np.int64), 3).tolist() == [0, 5]
    with pytest.raises(InputError, match="positive integer"):
        plan_partitions(mass, 0)
    with pytest.raises(InputError, match="nothing to stitch"):
        stitch_trees([], build_tree([[1]], depth=1).info)


# ----------------------------------------------------------------------------- pre-tokenized streams
@given(token_sequences(max_vocab=7, max_len=12), depths, modes, weights, st.integers(1, 9))
def test_a_stream_separated_by_eos_builds_the_tree_of_its_responses(seqs, depth, mode, weight, parts):
    from tokentree.data.sequences import TokenStream

    eos = 7
    flat = np.array([t for s in seqs for t in [eos, *s]] + [eos, eos], dtype=np.uint16)  # leading, doubled EOS
    stream = TokenStream(flat, eos)
    assert [r.tolist() for r in stream.to_sequences()] == seqs
    whole = build_tree(seqs, depth=depth, mode=mode, weight=weight, vocab_size=8)
    _same(build_tree(stream, depth=depth, mode=mode, weight=weight, vocab_size=8), whole)
    _same(build_tree(stream, depth=depth, mode=mode, weight=weight, vocab_size=8, partitions=parts), whole)


def test_release_needs_consume_and_drops_only_whole_pages_inside_the_range():
    from tokentree.infra.pages import PAGE_BYTES, release_pages

    parts = [build_tree([[1, 2]], depth=2, vocab_size=4)]
    with pytest.raises(InputError, match="needs consume=True"):
        stitch_trees(parts, parts[0].info, release=True)
    a = np.ones(64 * PAGE_BYTES, dtype=np.uint8)
    start = a.ctypes.data % PAGE_BYTES and PAGE_BYTES - a.ctypes.data % PAGE_BYTES  # a's first whole page
    release_pages(a[100:], 20 * PAGE_BYTES)  # a[100 : 100 + 20 pages]: 19 or 20 whole pages inside
    zero = np.flatnonzero(a == 0)
    assert zero.shape[0] % PAGE_BYTES == 0 and 19 * PAGE_BYTES <= zero.shape[0] <= 20 * PAGE_BYTES
    assert zero[0] >= 100 and zero[-1] < 100 + 20 * PAGE_BYTES and (zero[0] - start) % PAGE_BYTES == 0


def test_a_big_build_in_parts_hands_back_pages_and_equals_the_single_build():
    """Parts big enough for whole pages: the stitch drops each part's pages as it copies them."""
    corpus = zipf_corpus(200_000, vocab_size=2_000, rng=2)
    whole = build_tree(corpus, depth=4, mode="window")
    _same(build_tree(corpus, depth=4, mode="window", partitions=3), whole)
