"""Hypothesis strategies shared by the tests (floats exclude subnormals, as in dit)."""

from __future__ import annotations

from hypothesis import strategies as st

MODES = ("prefix", "chunk", "window")


def token_sequences(max_vocab: int = 6, max_len: int = 9, max_sequences: int = 12) -> st.SearchStrategy:
    """Lists of non-empty token-id lists over a small alphabet (so prefixes repeat)."""
    return st.lists(
        st.lists(st.integers(0, max_vocab - 1), min_size=1, max_size=max_len),
        min_size=1,
        max_size=max_sequences,
    )


depths = st.integers(1, 5)
modes = st.sampled_from(MODES)
weights = st.sampled_from(("sequences", "tokens"))


def probability_vectors(min_size: int = 2, max_size: int = 30) -> st.SearchStrategy:
    """Unnormalised positive weights (no subnormals, no zeros)."""
    return st.lists(
        st.floats(min_value=1e-6, max_value=1e6, allow_nan=False, allow_subnormal=False),
        min_size=min_size,
        max_size=max_size,
    )
