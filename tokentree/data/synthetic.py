"""Seeded synthetic corpora: Zipf token streams, Pareto leaf masses, Markov sources.

Every generator takes ``rng`` (an int seed, a ``numpy.random.Generator`` or None) and
the same seed gives the same bytes. The Theorem 4.2 scenario lives in
:mod:`tokentree.data.scenario`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tokentree.data.sequences import TokenSequences, as_token_sequences
from tokentree.infra.errors import InputError
from tokentree.infra.results import ArrayResult

__all__ = [
    "as_generator",
    "random_lengths",
    "zipf_corpus",
    "pareto_masses",
    "pareto_entropy_nats",
    "sample_leaves",
    "PrefixTreeSource",
    "pareto_tree_source",
    "markov_corpus",
]


def as_generator(rng: int | np.random.Generator | None) -> np.random.Generator:
    """Turn a seed, a Generator or None into a ``numpy.random.Generator``."""
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or (isinstance(rng, (int, np.integer)) and not isinstance(rng, bool)):
        return np.random.default_rng(rng)
    raise InputError(f"rng must be an int seed, a numpy.random.Generator or None; got {rng!r}")


def random_lengths(
    n_tokens: int, min_length: int, max_length: int, rng: np.random.Generator
) -> np.ndarray:
    """Response lengths uniform in [min_length, max_length] summing exactly to ``n_tokens``."""
    if not 1 <= min_length <= max_length:
        raise InputError(f"need 1 <= min_length <= max_length; got {min_length}, {max_length}")
    if n_tokens < 1:
        raise InputError(f"n_tokens must be >= 1; got {n_tokens}")
    mean = (min_length + max_length) / 2
    lengths = rng.integers(min_length, max_length + 1, size=int(n_tokens / mean) + 2)
    while lengths.sum() < n_tokens:
        lengths = np.concatenate([lengths, rng.integers(min_length, max_length + 1, size=lengths.shape[0])])
    cut = int(np.searchsorted(np.cumsum(lengths), n_tokens))
    lengths = lengths[: cut + 1].astype(np.int64)
    lengths[-1] -= int(lengths.sum()) - n_tokens
    return lengths[lengths > 0]


def zipf_corpus(
    n_tokens: int,
    *,
    vocab_size: int = 32_000,
    exponent: float = 1.0,
    min_length: int = 20,
    max_length: int = 200,
    rng: int | np.random.Generator | None = None,
) -> TokenSequences:
    """I.i.d. Zipf tokens (P(rank r) proportional to r^-exponent) cut into random-length responses.

    >>> c = zipf_corpus(1000, vocab_size=50, rng=0)
    >>> c.n_tokens, int(c.tokens.max()) < 50
    (1000, True)
    """
    gen = as_generator(rng)
    ranks = np.arange(1, vocab_size + 1, dtype=np.float64)
    cdf = np.cumsum(ranks**-exponent)
    cdf /= cdf[-1]
    tokens = np.minimum(np.searchsorted(cdf, gen.random(n_tokens)), vocab_size - 1).astype(np.int32)
    lengths = random_lengths(n_tokens, min_length, max_length, gen)
    offsets = np.zeros(lengths.shape[0] + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    return as_token_sequences(tokens, offsets=offsets)


def pareto_masses(
    n_leaves: int, alpha: float, *, rng: int | np.random.Generator | None = None
) -> np.ndarray:
    """I.i.d. Pareto(alpha, x_m) leaf masses normalised to sum 1 (docs/theory.md §6).

    x_m = (alpha - 1)/(alpha M) makes the expected total 1 for alpha > 1; the returned
    masses are normalised exactly. Sorted in decreasing order.
    """
    if n_leaves < 1:
        raise InputError(f"n_leaves must be >= 1; got {n_leaves}")
    if not alpha > 0:
        raise InputError(f"alpha must be > 0; got {alpha}")
    gen = as_generator(rng)
    x = gen.pareto(alpha, size=n_leaves) + 1.0  # classical Pareto with x_m = 1
    masses = np.sort(x)[::-1]
    return masses / masses.sum()


def pareto_entropy_gap_nats(alpha: float) -> float:
    """H - ln M of Pareto(alpha) leaf masses for large M: ln(alpha/(alpha-1)) - 1/(alpha-1) nats.

    docs/theory.md §6 (paper Appendix A.7); needs alpha > 1.

    >>> round(pareto_entropy_gap_nats(2.0), 6)
    -0.306853
    """
    if not alpha > 1:
        raise InputError(f"the Pareto entropy lemma needs alpha > 1; got {alpha}")
    return float(np.log(alpha / (alpha - 1)) - 1 / (alpha - 1))


def pareto_entropy_nats(n_leaves: int, alpha: float) -> float:
    """Large-M entropy of Pareto leaf masses: ln M + ln(alpha/(alpha-1)) - 1/(alpha-1) nats.

    docs/theory.md §6 (paper Appendix A.7); needs alpha > 1.

    >>> round(pareto_entropy_nats(1000, 2.0) - float(np.log(1000)), 6)
    -0.306853
    """
    return float(np.log(n_leaves) + pareto_entropy_gap_nats(alpha))


@dataclass(frozen=True, eq=False, repr=False)
class PrefixTreeSource(ArrayResult):
    """A distribution over responses given as explicit leaf paths and probabilities.

    ``paths`` is a TokenSequences with one response per leaf; ``probabilities`` sums to 1.
    """

    paths: TokenSequences
    probabilities: np.ndarray

    def sample(self, n: int, *, rng: int | np.random.Generator | None = None) -> TokenSequences:
        """Draw ``n`` responses i.i.d. from the leaf distribution."""
        return sample_leaves(self, n, rng=rng)


def sample_leaves(
    source: PrefixTreeSource, n: int, *, rng: int | np.random.Generator | None = None
) -> TokenSequences:
    """Draw ``n`` responses i.i.d. from ``source``'s leaf distribution."""
    gen = as_generator(rng)
    idx = gen.choice(source.probabilities.shape[0], size=n, p=source.probabilities)
    return source.paths.select(idx)


def pareto_tree_source(
    n_leaves: int,
    *,
    depth: int,
    vocab_size: int,
    alpha: float,
    token_offset: int = 0,
    rng: int | np.random.Generator | None = None,
) -> PrefixTreeSource:
    """Distinct random responses of ``depth`` tokens with Pareto(alpha) masses.

    Tokens are drawn from ``token_offset .. token_offset + vocab_size - 1``, so sources
    with disjoint token ranges have disjoint symbol sets.
    """
    gen = as_generator(rng)
    capacity = float(vocab_size) ** depth
    if n_leaves > capacity:
        raise InputError(f"{n_leaves} distinct leaves do not fit in {vocab_size}^{depth} paths")
    paths = np.zeros((0, depth), dtype=np.int64)
    while paths.shape[0] < n_leaves:
        more = gen.integers(0, vocab_size, size=(2 * (n_leaves - paths.shape[0]) + 8, depth))
        paths = np.unique(np.concatenate([paths, more]), axis=0)
    paths = paths[gen.permutation(paths.shape[0])[:n_leaves]] + token_offset
    probs = pareto_masses(n_leaves, alpha, rng=gen)
    return PrefixTreeSource(as_token_sequences(paths), probs)


def markov_corpus(
    n_sequences: int,
    *,
    vocab_size: int = 64,
    concentration: float = 0.3,
    min_length: int = 5,
    max_length: int = 40,
    rng: int | np.random.Generator | None = None,
) -> TokenSequences:
    """Responses from a random first-order Markov chain with Dirichlet(concentration) rows.

    Low concentration gives peaked transitions (a low-entropy, tree-like source).
    """
    gen = as_generator(rng)
    trans = gen.dirichlet(np.full(vocab_size, concentration), size=vocab_size)
    cdf = np.cumsum(trans, axis=1)
    init = gen.dirichlet(np.full(vocab_size, concentration))
    lengths = gen.integers(min_length, max_length + 1, size=n_sequences)
    offsets = np.zeros(n_sequences + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    tokens = np.empty(offsets[-1], dtype=np.int64)
    state = np.searchsorted(np.cumsum(init), gen.random(n_sequences) * np.cumsum(init)[-1])
    state = np.minimum(state, vocab_size - 1)
    tokens[offsets[:-1]] = state
    for step in range(1, max_length):
        active = np.flatnonzero(lengths > step)
        prev = tokens[offsets[active] + step - 1]
        u = gen.random(active.shape[0])
        nxt = (cdf[prev] < u[:, None]).sum(axis=1)
        tokens[offsets[active] + step] = np.minimum(nxt, vocab_size - 1)
    return as_token_sequences(tokens, offsets=offsets)
