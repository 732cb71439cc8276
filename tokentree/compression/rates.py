"""Entropy, cross-entropy, KL, code lengths and compression rates (docs/theory.md §3).

Functions that return a number are in bits unless ``base=`` says otherwise; result
types are always in bits, and their field names say so. A dataset ``p`` and a
model ``q`` are distributions (or unnormalised non-negative weights) on one shared
symbol set, e.g. the rows of :class:`tokentree.trees.combine.AlignedSymbols`.

A symbol the dataset has but the model gives zero mass has an infinite code length:
functions return ``inf`` and warn (:class:`ZeroModelMassWarning`), or raise with
``on_zero="raise"``; ``smoothing=alpha`` adds alpha to every model weight first.
Never NaN.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import rel_entr, xlogy

from tokentree.compression.huffman import check_weights, huffman_code
from tokentree.infra.errors import InputError
from tokentree.infra.results import ArrayResult, to_json_ready

__all__ = [
    "ZeroModelMassWarning",
    "normalise",
    "entropy",
    "row_entropies",
    "cross_entropy",
    "kl_divergence",
    "ideal_code_lengths",
    "ENTROPY_CEIL_SLACK_BITS",
    "theorem_3_4_length",
    "theorem_3_4_rate",
    "check_symbol_lengths",
    "CodeLengths",
    "code_lengths",
    "CompressionRate",
    "compression_rate",
]


class ZeroModelMassWarning(RuntimeWarning):
    """The data has a symbol the model gives zero mass: its code length is infinite."""


def normalise(weights: np.ndarray | list[float], name: str = "weights") -> np.ndarray:
    """Validated weights scaled to sum 1."""
    w = check_weights(weights, name)
    return w / w.sum()


def _model(q: np.ndarray | list[float], smoothing: float) -> np.ndarray:
    w = check_weights(q, "model")
    if smoothing:
        if not (math.isfinite(smoothing) and smoothing > 0):
            raise InputError(f"smoothing must be a positive finite number; got {smoothing}")
        w = w / w.sum() + smoothing
    return w / w.sum()


def _pair(p: np.ndarray | list[float], q: np.ndarray | list[float], smoothing: float) -> tuple[np.ndarray, np.ndarray]:
    pp = normalise(p, "data")
    qq = _model(q, smoothing)
    if pp.shape != qq.shape:
        raise InputError(
            f"data has {pp.shape[0]} symbols but the model has {qq.shape[0]}; align them on a shared "
            "symbol set first (tokentree.trees.combine.align_symbols)"
        )
    return pp, qq


def _zero_mass(p: np.ndarray, q: np.ndarray, on_zero: str) -> bool:
    missing = (p > 0) & (q == 0)
    if not missing.any():
        return False
    msg = (
        f"{int(missing.sum())} symbols with data mass {float(p[missing].sum()):.3g} have zero model mass: "
        "their code length is infinite. Pass smoothing=alpha to give every symbol some mass"
    )
    if on_zero == "raise":
        raise InputError(msg)
    if on_zero != "inf":
        raise InputError(f"on_zero must be 'inf' or 'raise'; got {on_zero!r}")
    warnings.warn(msg, ZeroModelMassWarning, stacklevel=3)
    return True


def _log_base(base: float) -> float:
    if not (math.isfinite(base) and base > 0 and base != 1):
        raise InputError(f"base must be a positive finite number other than 1 (2: bits, e: nats); got {base}")
    return math.log(base)


def _entropy_of_rows(p: np.ndarray, base: float) -> np.ndarray:
    """-sum p log p along the last axis of normalised rows (0 log 0 = 0), in ``base``."""
    result: np.ndarray = -xlogy(p, p).sum(axis=-1) / _log_base(base) + 0.0  # + 0.0: no -0.0
    return result


def entropy(p: np.ndarray | list[float], *, base: float = 2.0) -> float:
    """Shannon entropy H(P) (0 log 0 = 0) of a weight vector, normalised first.

    >>> entropy([0.5, 0.25, 0.25])
    1.5
    """
    return float(_entropy_of_rows(normalise(p, "data"), base))


def row_entropies(rows: np.ndarray | list[list[float]], *, base: float = 2.0) -> np.ndarray:
    """H(P_i) of every row of a 2-D array of weights (each row normalised first).

    >>> row_entropies([[1, 1], [1, 0]]).tolist()
    [1.0, 0.0]
    """
    arr = np.asarray(rows, dtype=np.float64)
    if arr.ndim != 2:
        raise InputError(f"rows must be a 2-D array of weights; got shape {arr.shape}")
    return _entropy_of_rows(np.stack([normalise(r, f"row {i}") for i, r in enumerate(arr)]), base)


def cross_entropy(
    p: np.ndarray | list[float],
    q: np.ndarray | list[float],
    *,
    base: float = 2.0,
    smoothing: float = 0.0,
    on_zero: str = "inf",
) -> float:
    """Cross-entropy CE(P, q) = -sum_s P(s) log q(s): the ideal code length per symbol.

    >>> cross_entropy([0.5, 0.5], [0.25, 0.75]) > entropy([0.5, 0.5])
    True
    """
    pp, qq = _pair(p, q, smoothing)
    if _zero_mass(pp, qq, on_zero):
        return math.inf
    with np.errstate(divide="ignore"):
        return float(-xlogy(pp, qq).sum() / _log_base(base)) + 0.0


def kl_divergence(
    p: np.ndarray | list[float],
    q: np.ndarray | list[float],
    *,
    base: float = 2.0,
    smoothing: float = 0.0,
    on_zero: str = "inf",
) -> float:
    """KL(P || q) = sum_s P(s) log(P(s)/q(s)) >= 0.

    >>> kl_divergence([0.5, 0.5], [0.5, 0.5])
    0.0
    """
    pp, qq = _pair(p, q, smoothing)
    if _zero_mass(pp, qq, on_zero):
        return math.inf
    return float(rel_entr(pp, qq).sum() / _log_base(base)) + 0.0


def ideal_code_lengths(q: np.ndarray | list[float], *, base: float = 2.0) -> np.ndarray:
    """-log q(s) for every symbol (inf where q is zero)."""
    qq = normalise(q, "model")
    with np.errstate(divide="ignore"):
        return -np.log(qq) / _log_base(base)


#: An entropy that is a whole number of bits in exact arithmetic (a uniform distribution
#: over 2^m symbols) comes out of floating point a few ulps above it; rounding that up
#: would add a whole bit per symbol. Entropies within this slack of an integer count as
#: that integer in :func:`theorem_3_4_length`.
ENTROPY_CEIL_SLACK_BITS = 1e-12


def theorem_3_4_length(n_tokens: Any, depth: int, entropy_bits: float) -> Any:
    """The paper's Theorem 3.4 estimate E[L(x)] = ceil(|x|/d) * ceil(H) bits (arrays allowed).

    >>> theorem_3_4_length(10, 4, 2.2)
    9.0
    >>> theorem_3_4_length(4, 4, 3.0000000000000004)  # H = 3 bits up to rounding
    3.0
    """
    whole_bits = math.ceil(entropy_bits - ENTROPY_CEIL_SLACK_BITS)
    result = np.ceil(np.asarray(n_tokens, dtype=np.float64) / depth) * whole_bits
    return float(result) if result.ndim == 0 else result


def theorem_3_4_rate(mean_symbol_tokens: Any, depth: int, entropy_bits: float) -> Any:
    """Theorem 3.4's estimate per token: ceil(E|s|/d) ceil(H) / E|s| bits (arrays allowed)."""
    return theorem_3_4_length(mean_symbol_tokens, depth, entropy_bits) / np.asarray(mean_symbol_tokens)


@dataclass(frozen=True, eq=False, repr=False)
class CodeLengths(ArrayResult):
    """Per-symbol code lengths of one model, side by side (bits).

    Attributes
    ----------
    ideal_bits : float array
        -log2 q(s) (Shannon).
    huffman_bits : int array
        Exact Huffman codeword lengths of the code built from q (0 where q is 0).
    theorem_3_4_bits : float array
        ceil(|s|/d) * ceil(H(q)): the paper's estimate, the same for every full symbol.
    """

    ideal_bits: np.ndarray
    huffman_bits: np.ndarray
    theorem_3_4_bits: np.ndarray


def check_symbol_lengths(values: Any, n: int) -> np.ndarray:
    """Tokens per symbol as floats: ``n`` finite numbers > 0."""
    lengths = np.asarray(values, dtype=np.float64)
    if lengths.shape != (n,) or not np.all(np.isfinite(lengths)) or np.any(lengths <= 0):
        raise InputError(
            f"symbol_lengths must be {n} finite numbers > 0 (tokens per symbol, e.g. tree.symbols().length); "
            f"got shape {lengths.shape}"
        )
    return lengths


def _check_depth_and_vocab(depth: Any, vocab_size: Any = 2) -> None:
    if isinstance(depth, bool) or not isinstance(depth, int | np.integer) or depth < 1:
        raise InputError(f"depth must be an integer >= 1 (the capacity depth d); got {depth!r}")
    if isinstance(vocab_size, bool) or not isinstance(vocab_size, int | np.integer) or vocab_size < 2:
        raise InputError(f"vocab_size must be an integer >= 2; got {vocab_size!r}")


def code_lengths(q: np.ndarray | list[float], symbol_lengths: np.ndarray, depth: int) -> CodeLengths:
    """Ideal, Huffman and Theorem 3.4 code lengths of every symbol under model ``q``."""
    qq = normalise(q, "model")
    _check_depth_and_vocab(depth)
    lengths = check_symbol_lengths(symbol_lengths, qq.shape[0]).astype(np.int64)
    return CodeLengths(
        ideal_bits=ideal_code_lengths(qq),
        huffman_bits=huffman_code(qq).lengths,
        theorem_3_4_bits=theorem_3_4_length(np.maximum(lengths, 1), depth, entropy(qq)),
    )


@dataclass(frozen=True)
class CompressionRate:
    """How well a model compresses a dataset, in bits.

    Attributes
    ----------
    rate_bits_per_token : float
        Ideal code length per token: CE(P, q) / E_P[|s|] (the paper's gamma).
    rate_bits_per_symbol : float
        CE(P, q).
    huffman_rate_bits_per_token, huffman_rate_bits_per_symbol : float
        The same with the exact Huffman lengths of q's code.
    theorem_3_4_rate_bits_per_token : float
        ceil(E|s|/d) * ceil(H(q)) / E|s|: the paper's estimate.
    ratio_to_raw : float
        Ideal compressed size over raw size (|s| log2 V bits per symbol): "compressed / original".
    normalised_rate_bits_per_token, normalised_rate_bits_per_symbol : float
        Rate minus log2 M / d (per token) or log2 M (per symbol), M = symbols with mass in q.
    entropy_bits_per_symbol, kl_bits_per_symbol : float
        H(P) and KL(P || q).
    mean_symbol_tokens : float
        E_P[|s|].
    """

    rate_bits_per_token: float
    rate_bits_per_symbol: float
    huffman_rate_bits_per_token: float
    huffman_rate_bits_per_symbol: float
    theorem_3_4_rate_bits_per_token: float
    ratio_to_raw: float
    normalised_rate_bits_per_token: float
    normalised_rate_bits_per_symbol: float
    entropy_bits_per_symbol: float
    kl_bits_per_symbol: float
    mean_symbol_tokens: float

    def to_dict(self) -> dict[str, float | None]:
        result: dict[str, float | None] = to_json_ready(self)
        return result


def compression_rate(
    p: np.ndarray | list[float],
    q: np.ndarray | list[float],
    symbol_lengths: np.ndarray | list[int],
    *,
    depth: int,
    vocab_size: int,
    smoothing: float = 0.0,
    on_zero: str = "inf",
) -> CompressionRate:
    """Compression rate of dataset ``p`` under model ``q`` on a shared symbol set (bits).

    ``symbol_lengths`` are the symbols' lengths in tokens (EOS excluded).

    >>> r = compression_rate([1, 1], [1, 1], [2, 2], depth=2, vocab_size=4)
    >>> r.rate_bits_per_token, r.ratio_to_raw
    (0.5, 0.25)
    """
    pp, qq = _pair(p, q, smoothing)
    lengths = check_symbol_lengths(symbol_lengths, pp.shape[0])
    _check_depth_and_vocab(depth, vocab_size)
    mean_len = float(pp @ lengths)
    ce = cross_entropy(pp, qq, on_zero=on_zero)
    huff = huffman_code(qq).expected_length(pp) if pp.shape[0] > 1 else 1.0
    log_m = math.log2(int((qq > 0).sum()))
    raw = mean_len * math.log2(vocab_size)
    return CompressionRate(
        rate_bits_per_token=ce / mean_len,
        rate_bits_per_symbol=ce,
        huffman_rate_bits_per_token=huff / mean_len,
        huffman_rate_bits_per_symbol=huff,
        theorem_3_4_rate_bits_per_token=theorem_3_4_rate(mean_len, depth, entropy(qq)),
        ratio_to_raw=ce / raw if raw > 0 else math.inf,
        normalised_rate_bits_per_token=ce / mean_len - log_m / depth,
        normalised_rate_bits_per_symbol=ce - log_m,
        entropy_bits_per_symbol=entropy(pp),
        kl_bits_per_symbol=kl_divergence(pp, qq, on_zero=on_zero),
        mean_symbol_tokens=mean_len,
    )
