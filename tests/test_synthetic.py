"""Synthetic corpora: seeded determinism and the distributions they promise."""

from __future__ import annotations

import numpy as np
import pytest

from tokentree.data.synthetic import (
    markov_corpus,
    pareto_entropy_nats,
    pareto_masses,
    pareto_tree_source,
    zipf_corpus,
)


def test_same_seed_same_bytes():
    assert zipf_corpus(5000, rng=7) == zipf_corpus(5000, rng=7)
    assert zipf_corpus(5000, rng=7) != zipf_corpus(5000, rng=8)
    assert markov_corpus(50, rng=1) == markov_corpus(50, rng=1)
    assert pareto_masses(100, 2.0, rng=3).tobytes() == pareto_masses(100, 2.0, rng=3).tobytes()
    a, b = pareto_tree_source(50, depth=3, vocab_size=5, alpha=2, rng=4), pareto_tree_source(
        50, depth=3, vocab_size=5, alpha=2, rng=4
    )
    assert a.paths == b.paths and a.sample(30, rng=1) == b.sample(30, rng=1)


def test_zipf_corpus_lengths_and_frequencies():
    c = zipf_corpus(200_000, vocab_size=1000, exponent=1.0, min_length=20, max_length=200, rng=0)
    assert c.n_tokens == 200_000
    assert c.lengths[:-1].min() >= 20 and c.lengths.max() <= 200
    freq = np.bincount(c.tokens, minlength=1000)
    # Zipf(1): rank 1 is about twice rank 2 and ten times rank 10.
    assert freq[0] / freq[1] == pytest.approx(2, rel=0.1)
    assert freq[0] / freq[9] == pytest.approx(10, rel=0.15)


def test_pareto_entropy_matches_the_lemma_for_large_trees():
    """docs/theory.md §6: H - ln M -> ln(alpha/(alpha-1)) - 1/(alpha-1) (alpha > 2 converges fast)."""
    m = 200_000
    p = pareto_masses(m, 3.0, rng=0)
    h = float(-(p * np.log(p)).sum())
    assert h == pytest.approx(pareto_entropy_nats(m, 3.0), abs=0.01)
