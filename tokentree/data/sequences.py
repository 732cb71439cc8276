"""Token-id datasets as one flat array plus offsets.

A dataset (the paper's D) is a multiset of responses; a response is a sequence of
token ids. :class:`TokenSequences` stores all responses back to back in ``tokens``
with ``offsets[i]:offsets[i + 1]`` delimiting response ``i``; this is the layout
every builder consumes. :func:`as_token_sequences` accepts the other common
layouts (lists of ints, lists of numpy arrays, a flat array plus offsets) and
validates them.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import overload

import numpy as np

from tokentree.infra.errors import InputError, InputTypeError
from tokentree.infra.results import ArrayResult

__all__ = ["TokenSequences", "TokenStream", "as_token_sequences", "load_token_ids", "binary_expand", "bits_per_token"]


@dataclass(frozen=True, eq=False, repr=False)
class TokenSequences(ArrayResult):
    """Responses stored as a flat token array plus offsets.

    Parameters
    ----------
    tokens : ndarray of int
        All token ids, response after response (read-only).
    offsets : ndarray of int64, shape (n_sequences + 1,)
        ``tokens[offsets[i]:offsets[i + 1]]`` is response ``i``.
    vocab_size : int, optional
        The alphabet the ids come from (the tokenizer's size), when it is known;
        :func:`tokentree.build_tree` uses it instead of max id + 1.

    Examples
    --------
    >>> seqs = as_token_sequences([[1, 2, 3], [4]])
    >>> seqs.n_sequences, seqs.n_tokens
    (2, 4)
    >>> seqs[0].tolist()
    [1, 2, 3]
    """

    tokens: np.ndarray
    offsets: np.ndarray
    vocab_size: int | None = None

    def with_vocab_size(self, vocab_size: int) -> TokenSequences:
        """The same responses, marked as ids from an alphabet of ``vocab_size``."""
        return TokenSequences(self.tokens, self.offsets, int(vocab_size))

    @property
    def n_sequences(self) -> int:
        """Number of responses, the paper's |D|."""
        return int(self.offsets.shape[0] - 1)

    @property
    def n_tokens(self) -> int:
        """Total number of tokens over all responses."""
        return int(self.tokens.shape[0])

    @property
    def lengths(self) -> np.ndarray:
        """Length of every response (int64)."""
        return np.diff(self.offsets)

    @property
    def starts(self) -> np.ndarray:
        """Where every response starts in ``tokens`` (int64)."""
        return self.offsets[:-1]

    @property
    def ends(self) -> np.ndarray:
        """Where every response ends in ``tokens``, exclusive (int64)."""
        return self.offsets[1:]

    def __len__(self) -> int:
        return self.n_sequences

    @overload
    def __getitem__(self, index: int) -> np.ndarray: ...

    @overload
    def __getitem__(self, index: slice) -> TokenSequences: ...

    def __getitem__(self, index: int | slice) -> np.ndarray | TokenSequences:
        """Response ``index`` as an array, or the responses of a slice as a dataset (a view when the step is 1).

        >>> as_token_sequences([[1], [2, 3], [4]])[1:].tokens.tolist()
        [2, 3, 4]
        """
        if isinstance(index, slice):
            start, stop, step = index.indices(self.n_sequences)
            if step != 1:
                picked = self.select(np.arange(start, stop, step, dtype=np.int64))
                return picked if self.vocab_size is None else picked.with_vocab_size(self.vocab_size)
            stop = max(start, stop)
            offsets = self.offsets[start : stop + 1] - self.offsets[start]
            offsets.flags.writeable = False
            return TokenSequences(self.tokens[self.offsets[start] : self.offsets[stop]], offsets, self.vocab_size)
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
            raise InputTypeError(f"a TokenSequences index is an int or a slice; got {type(index).__name__} "
                                 "(use .select(indices) for a list of indices)")
        if not -self.n_sequences <= index < self.n_sequences:
            raise IndexError(f"sequence index {index} out of range for {self.n_sequences} sequences")
        index %= self.n_sequences
        return self.tokens[self.offsets[index] : self.offsets[index + 1]]

    def __iter__(self) -> Iterator[np.ndarray]:
        for i in range(self.n_sequences):
            yield self.tokens[self.offsets[i] : self.offsets[i + 1]]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TokenSequences):
            return NotImplemented
        return np.array_equal(self.tokens, other.tokens) and np.array_equal(
            self.offsets, other.offsets
        )

    __hash__ = None  # type: ignore[assignment]

    def select(self, indices: np.ndarray | Sequence[int]) -> TokenSequences:
        """Return the responses at ``indices`` (in that order) as a new dataset, of the same ``vocab_size``.

        >>> as_token_sequences([[1], [2, 3], [4]]).select([2, 0]).tokens.tolist()
        [4, 1]
        """
        idx = np.asarray(indices, dtype=np.int64)
        lengths = self.lengths[idx]
        offsets = np.zeros(idx.shape[0] + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        # Gather all token positions at once: start of each response + position inside it.
        within = np.arange(offsets[-1], dtype=np.int64) - np.repeat(offsets[:-1], lengths)
        positions = np.repeat(self.offsets[idx], lengths) + within
        picked = _frozen(self.tokens[positions], offsets)
        return picked if self.vocab_size is None else picked.with_vocab_size(self.vocab_size)

    @staticmethod
    def concatenate(parts: Iterable[TokenSequences]) -> TokenSequences:
        """Join several datasets into one, keeping response order (and their ``vocab_size`` when they share one).

        >>> a = as_token_sequences([[1, 2]]); b = as_token_sequences([[3]])
        >>> TokenSequences.concatenate([a, b]).offsets.tolist()
        [0, 2, 3]
        """
        parts = list(parts)
        if not parts:
            raise InputError("concatenate() needs at least one TokenSequences; got none")
        tokens = np.concatenate([p.tokens for p in parts])
        lengths = np.concatenate([p.lengths for p in parts])
        offsets = np.zeros(lengths.shape[0] + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        joined = _frozen(tokens, offsets)
        vocab = {p.vocab_size for p in parts}
        shared = vocab.pop() if len(vocab) == 1 else None
        return joined if shared is None else joined.with_vocab_size(shared)


@dataclass(frozen=True, eq=False, repr=False)
class TokenStream:
    """Responses in one flat stream of ids separated by an EOS id (nanoGPT's ``train.bin``), never copied.

    ``tokens`` may be a memory-mapped file: the builder reads the responses where they lie,
    between the EOS ids, so a stream larger than memory is only paged in. Empty responses
    (two EOS ids in a row, a leading or trailing EOS) are not responses.

    >>> s = TokenStream(np.array([5, 6, 0, 7, 0, 0, 8], dtype=np.uint16), eos=0)
    >>> s.n_sequences, s.n_tokens, s.starts.tolist(), s.ends.tolist()
    (3, 4, [0, 3, 6], [2, 4, 7])
    >>> s.to_sequences()[2].tolist()
    [8]
    """

    tokens: np.ndarray
    eos: int
    vocab_size: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.tokens, np.ndarray) or self.tokens.ndim != 1:
            raise InputError("a token stream is a 1-D array of ids (np.memmap or np.load(..., mmap_mode='r'))")
        _check_integer_dtype(self.tokens, "token stream")
        if isinstance(self.eos, bool) or not isinstance(self.eos, (int, np.integer)) or self.eos < 0:
            raise InputError(f"eos must be a non-negative token id; got {self.eos!r}")
        at = _positions_of(self.tokens, int(self.eos))
        bounds_start = np.concatenate([[0], at + 1])
        bounds_end = np.concatenate([at, [self.tokens.shape[0]]])
        keep = bounds_end > bounds_start
        object.__setattr__(self, "_starts", bounds_start[keep].astype(np.int64))
        object.__setattr__(self, "_ends", bounds_end[keep].astype(np.int64))

    @property
    def starts(self) -> np.ndarray:
        return self._starts  # type: ignore[attr-defined]

    @property
    def ends(self) -> np.ndarray:
        return self._ends  # type: ignore[attr-defined]

    @property
    def lengths(self) -> np.ndarray:
        return self.ends - self.starts

    @property
    def n_sequences(self) -> int:
        return int(self.starts.shape[0])

    @property
    def n_tokens(self) -> int:
        """Tokens in responses (the EOS ids between them are not counted)."""
        return int(self.lengths.sum())

    def to_sequences(self) -> TokenSequences:
        """The responses as :class:`TokenSequences` (a compact copy in memory)."""
        offsets = np.concatenate([[0], np.cumsum(self.lengths)])
        out = as_token_sequences(np.asarray(self.tokens)[np.asarray(self.tokens) != self.eos], offsets=offsets)
        return out if self.vocab_size is None else out.with_vocab_size(self.vocab_size)


def _positions_of(tokens: np.ndarray, value: int, chunk: int = 1 << 24) -> np.ndarray:
    """Positions of ``value`` in ``tokens``, a chunk at a time (a memory-mapped stream is never read whole)."""
    found = [np.flatnonzero(tokens[i : i + chunk] == value) + i for i in range(0, tokens.shape[0], chunk)]
    return np.concatenate(found).astype(np.int64) if found else np.zeros(0, dtype=np.int64)


def load_token_ids(
    path: str | os.PathLike[str], *, dtype: str | None = None, eos: int | None = None, vocab_size: int | None = None
) -> TokenStream | TokenSequences:
    """Token ids already tokenized: a raw ``.bin`` stream (``dtype`` needed) or a ``.npy`` array, memory-mapped.

    With ``eos``, responses are the runs between EOS ids (a :class:`TokenStream`, nothing
    copied); without it the whole file is one response. ``.npy`` files are read without
    pickle; a 2-D ``.npy`` is one response per row.
    """
    where = Path(path)
    if not where.is_file():
        raise InputError(f"{where}: no such file; give a .bin stream of ids or a .npy array")
    if where.suffix.lower() == ".npy":
        if dtype is not None:
            raise InputError(f"{where}: a .npy file records its own dtype; drop --dtype")
        try:
            array = np.load(where, mmap_mode="r", allow_pickle=False)
        except ValueError as exc:
            raise InputError(f"{where}: not a readable .npy array of ids ({exc})") from None
    else:
        if dtype is None:
            raise InputError(f"{where}: a raw stream of ids needs its dtype, e.g. --dtype uint16 (nanoGPT's train.bin)")
        try:
            kind = np.dtype(dtype)
        except TypeError:
            raise InputError(f"dtype {dtype!r} is not a numpy dtype; use uint16, uint32, int32 or int64") from None
        if kind.kind not in "iu":
            raise InputError(f"dtype must be an integer type for token ids; got {dtype!r}")
        size = where.stat().st_size
        if size % kind.itemsize:
            raise InputError(f"{where} has {size} bytes, not a whole number of {kind.name} ids; is the dtype right?")
        array = np.memmap(where, dtype=kind, mode="r")
    if array.ndim == 2 and eos is None:
        return as_token_sequences(np.asarray(array)) if vocab_size is None else (
            as_token_sequences(np.asarray(array)).with_vocab_size(vocab_size))
    if array.ndim != 1:
        raise InputError(f"{where}: ids must be a 1-D stream (or 2-D, one response per row); got shape {array.shape}")
    if eos is None:
        seqs = as_token_sequences(np.asarray(array), offsets=[0, array.shape[0]])
        return seqs if vocab_size is None else seqs.with_vocab_size(vocab_size)
    return TokenStream(array, int(eos), vocab_size)


def _frozen(tokens: np.ndarray, offsets: np.ndarray) -> TokenSequences:
    tokens = np.ascontiguousarray(tokens)
    offsets = np.ascontiguousarray(offsets, dtype=np.int64)
    tokens.flags.writeable = False
    offsets.flags.writeable = False
    return TokenSequences(tokens, offsets)


def _check_integer_dtype(array: np.ndarray, what: str) -> None:
    if array.dtype == object:
        raise InputTypeError(
            f"{what} has dtype object; token ids must be integers. "
            "Convert with np.asarray(ids, dtype=np.int64) after checking every id is an int."
        )
    if array.dtype.kind == "b" or array.dtype.kind not in "iu":
        raise InputTypeError(
            f"{what} has dtype {array.dtype}; token ids must be an integer dtype "
            "(int32 or int64). Round or map floats to ids before building a tree."
        )
    if array.dtype == np.uint64 and array.size and int(array.max()) > np.iinfo(np.int64).max:
        raise InputError(
            f"{what} has id {int(array.max())}, beyond any vocabulary (ids must be < 2**31 for a tree); "
            "check the dtype and byte order the ids were written with"
        )


def as_token_sequences(
    data: TokenSequences | np.ndarray | Iterable[Sequence[int] | np.ndarray],
    *,
    offsets: np.ndarray | Sequence[int] | None = None,
    eos: int | None = None,
) -> TokenSequences:
    """Convert responses in any supported layout to :class:`TokenSequences`.

    Parameters
    ----------
    data : TokenSequences, 1-D int array, or iterable of int sequences
        The responses. A 1-D array is read as a flat token array and needs
        ``offsets``; an iterable yields one response at a time (list of ints or
        numpy int array).
    offsets : array of int, optional
        Response boundaries for a flat ``data`` array: starts at 0, non-decreasing,
        ends at ``len(data)``.
    eos : int, optional
        For a flat ``data`` array: responses are the runs between these ids (which are
        dropped). To build from a stream without copying it, use :class:`TokenStream`.

    Returns
    -------
    TokenSequences

    Raises
    ------
    InputTypeError
        Float, bool or object ids.
    InputError
        Bad offsets.

    Examples
    --------
    >>> as_token_sequences(np.array([5, 6, 7]), offsets=[0, 1, 3]).lengths.tolist()
    [1, 2]
    >>> as_token_sequences(np.array([5, 6, 9, 7, 9]), eos=9).lengths.tolist()
    [2, 1]
    """
    if eos is not None:
        if offsets is not None or not isinstance(data, np.ndarray):
            raise InputError("eos= splits one flat token array; give a 1-D array and no offsets")
        return TokenStream(data, eos).to_sequences()
    if isinstance(data, TokenSequences):
        if offsets is not None:
            raise InputError("offsets= is only for a flat token array; data is already TokenSequences")
        return data
    if offsets is not None:
        flat = np.asarray(data)
        if flat.ndim != 1:
            raise InputError(f"with offsets=, data must be a 1-D token array; got shape {flat.shape}")
        _check_integer_dtype(flat, "token array")
        off = np.asarray(offsets)
        _check_integer_dtype(off, "offsets")
        off = off.astype(np.int64)
        if off.ndim != 1 or off.shape[0] < 1:
            raise InputError(f"offsets must be a 1-D array of at least one entry; got shape {off.shape}")
        if off[0] != 0 or off[-1] != flat.shape[0]:
            raise InputError(
                f"offsets must start at 0 and end at len(tokens) = {flat.shape[0]}; "
                f"got first {int(off[0])}, last {int(off[-1])}"
            )
        if np.any(np.diff(off) < 0):
            raise InputError("offsets must be non-decreasing; sort them or rebuild them from lengths")
        return _frozen(_narrow(flat), off)
    if isinstance(data, np.ndarray):
        if data.dtype == object:
            return as_token_sequences(list(data))
        if data.ndim == 2:
            _check_integer_dtype(data, "token array")
            n, m = data.shape
            return _frozen(_narrow(data.reshape(-1)), np.arange(n + 1, dtype=np.int64) * m)
        raise InputError(
            f"a 1-D token array needs offsets= to say where responses start; got shape {data.shape}. "
            "Pass offsets=[0, len(tokens)] for a single response."
        )
    if isinstance(data, (str, bytes)):
        raise InputTypeError("data is text; tokenize it first (see tokentree.data.text) or pass token ids")
    try:
        items = iter(data)
    except TypeError:
        raise InputTypeError(
            f"data must be token sequences (TokenSequences, an array, or a list of id lists); got {type(data).__name__}"
        ) from None
    arrays = []
    for i, seq in enumerate(items):
        if isinstance(seq, (str, bytes)):
            raise InputTypeError(f"sequence {i} is text; tokenize it first or pass token ids")
        try:
            arr = np.asarray(seq)
        except (TypeError, ValueError):
            raise InputTypeError(f"sequence {i} is not a flat list of token ids; got {seq!r:.60}") from None
        if arr.ndim != 1:
            raise InputError(f"sequence {i} must be 1-D; got shape {arr.shape}")
        if arr.shape[0]:
            _check_integer_dtype(arr, f"sequence {i}")
        arrays.append(arr)
    lengths = np.fromiter((a.shape[0] for a in arrays), dtype=np.int64, count=len(arrays))
    off = np.zeros(len(arrays) + 1, dtype=np.int64)
    np.cumsum(lengths, out=off[1:])
    nonempty = [a for a in arrays if a.shape[0]]
    flat = np.concatenate(nonempty).astype(np.int64, copy=False) if nonempty else np.zeros(0, np.int64)
    return _frozen(_narrow(flat), off)


def _narrow(flat: np.ndarray) -> np.ndarray:
    """Store ids as int32 when they fit (halves memory); keep int64 otherwise."""
    if flat.dtype == np.int32:
        return flat
    if flat.shape[0] and (flat.max() > np.iinfo(np.int32).max or flat.min() < np.iinfo(np.int32).min):
        return flat.astype(np.int64, copy=False)
    return flat.astype(np.int32)


def bits_per_token(vocab_size: int) -> int:
    """Bits needed to write any id below ``vocab_size`` in binary: ceil(log2 V).

    >>> bits_per_token(2), bits_per_token(5), bits_per_token(50257)
    (1, 3, 16)
    """
    if vocab_size < 2:
        raise InputError(f"vocab_size must be >= 2 for a binary expansion; got {vocab_size}")
    return int(vocab_size - 1).bit_length()


def binary_expand(sequences: TokenSequences, vocab_size: int) -> TokenSequences:
    """Rewrite every id as ceil(log2 V) bits, most significant first (paper's {0,1} alphabet).

    A response of n tokens becomes a response of n * ceil(log2 V) binary tokens, so
    a binary tree of depth b * d holds exactly the information of the V-ary tree of
    depth d.

    >>> binary_expand(as_token_sequences([[5, 1]]), vocab_size=8).tokens.tolist()
    [1, 0, 1, 0, 0, 1]
    """
    b = bits_per_token(vocab_size)
    shifts = np.arange(b - 1, -1, -1, dtype=np.int64)
    bits = (sequences.tokens.astype(np.int64)[:, None] >> shifts[None, :]) & 1
    return _frozen(bits.reshape(-1).astype(np.int32), sequences.offsets * b)

