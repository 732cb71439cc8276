"""Saving and loading token trees as ``.npz`` files (no pickle, atomic writes).

A tree file is an uncompressed (or compressed) numpy ``.npz`` archive holding the
node arrays and a JSON header stored as a uint8 array. Loading uses
``allow_pickle=False`` and validates everything before building the tree, so a
truncated, corrupt, foreign or newer file raises :class:`TreeFileError` with a message
saying what is wrong, never an error from deep inside numpy.

Format versions
---------------
1. int32 tokens (the root's -1), int32 or int64 parents, int64 counts and leaf EOS counts.
2. (issue 26) the tree's stored dtypes (:mod:`tokentree.trees.tree`): uint16 tokens for
   vocabularies up to 65,536 ids, the root's slot holding 0; uint32 counts and leaf EOS
   counts when the total mass is below 2**32; ``flags`` (uint8 per node: first child, has
   children) in place of ``parents`` for trees that store them (built and stitched trees),
   the parent links being derived from them. The same checks otherwise.
3. (issue 26) counts as the tree stores them (:mod:`tokentree.trees.counts_layout`): uint8
   with ``count_overflow_at`` (int64 node indices, sorted) and ``count_overflow`` (their
   counts, 255 or more), or dense as in version 2 with both tables empty.
4. (issue 26) a path-compressed tree (:mod:`tokentree.trees.paths`) adds its tails:
   ``tail_length``, ``tail_text``, ``tail_end_eos_at``, ``tail_end_eos``; the other arrays are
   then those of its explicit nodes, checked as a tree of their own, whose flags may carry a
   third bit (4: the node heads a tail). A tree in the full layout is written as in version 3.

Version-1, -2 and -3 files still open (their arrays are narrowed on loading).
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from tokentree.infra.errors import TreeFileError
from tokentree.infra.output_lock import pid_alive, pid_of_temporary, temporary_prefix
from tokentree.infra.outputs import umask_mode
from tokentree.trees.counts_layout import SATURATED
from tokentree.trees.paths import TAIL_ARRAYS
from tokentree.trees.tree import ALPHABETS, MAX_DEPTH, MAX_VOCAB, MODES, WEIGHTINGS, TokenTree, TreeInfo

__all__ = ["save_tree", "load_tree", "FORMAT_NAME", "FORMAT_VERSION", "atomic_write"]

FORMAT_NAME = "tokentree.TokenTree"
FORMAT_VERSION = 4
_ARRAYS = ("tokens", "counts", "leaf_eos", "level_offsets")  # and "parents", or (version 2) "flags"
_COUNT_TABLE = ("count_overflow_at", "count_overflow")  # version 3


def atomic_write(path: str | os.PathLike[str], write: Any, *, suffix: str = "") -> Path:
    """Call ``write(file_object)`` on a temporary file beside ``path``, then rename it over ``path``.

    A failure (or an interrupt) midway leaves any earlier ``path`` untouched; an error of the
    file system names ``path``, not the hidden temporary file. The temporary file is named
    after the process (``.NAME.tmp-PID-RANDOM``), and those of processes no longer alive
    (killed mid-write) are removed.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        for leftover in path.parent.glob(f".{path.name}.tmp-*"):
            pid = pid_of_temporary(leftover, path, "tmp")
            if pid is not None and not pid_alive(pid):
                leftover.unlink(missing_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=temporary_prefix(path, "tmp"), suffix=suffix, dir=path.parent)
    except OSError as exc:
        raise _naming(exc, path) from None
    try:
        os.chmod(tmp, umask_mode(0o666))  # mkstemp makes it private (0600); a saved file follows the umask
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise _naming(exc, path) from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _naming(exc: OSError, path: Path) -> OSError:
    """``exc`` naming ``path`` (the file the user asked for) instead of a temporary file."""
    return OSError(exc.errno, exc.strerror, os.fspath(path)) if exc.errno is not None else exc


def save_tree(tree: TokenTree, path: str | os.PathLike[str], *, compress: bool = False) -> Path:
    """Write ``tree`` to ``path`` (``.npz``) atomically; returns the path.

    Examples
    --------
    >>> import tempfile, os
    >>> from tokentree import build_tree
    >>> t = build_tree([[1, 2], [1]], depth=2)
    >>> with tempfile.TemporaryDirectory() as d:
    ...     p = save_tree(t, os.path.join(d, "t.npz"))
    ...     load_tree(p) == t
    True
    """
    header: dict[str, Any] = {"format": FORMAT_NAME, "version": FORMAT_VERSION, "info": tree.info.to_dict()}
    if tree.provenance is not None:
        header["provenance"] = tree.provenance
    arrays = {"header": np.frombuffer(json.dumps(header, sort_keys=True).encode(), dtype=np.uint8),
              **tree.file_arrays}
    if tree.tokenizer_json is not None:
        # zlib: a tokenizer.json is mostly repeated vocabulary (GPT-2's: 2.1 MB -> 0.6 MB)
        arrays["tokenizer"] = np.frombuffer(zlib.compress(tree.tokenizer_json.encode(), 6), dtype=np.uint8)
    saver = np.savez_compressed if compress else np.savez
    return atomic_write(path, lambda f: saver(f, **arrays))  # type: ignore[arg-type]


def load_tree(path: str | os.PathLike[str]) -> TokenTree:
    """Read a tree written by :func:`save_tree`, validating it fully.

    Raises
    ------
    TreeFileError
        Missing, truncated, corrupt, foreign or newer-version file.
    """
    path = Path(path)
    if not path.exists():
        raise TreeFileError(f"{path}: no such file; build one with `tokentree build ... -o {path}`")
    if not path.is_file():
        raise TreeFileError(f"{path}: not a regular file; give the path of a tree file written by `tokentree build`")
    try:
        with open(path, "rb") as fh:
            loaded = np.load(fh, allow_pickle=False)
            if not isinstance(loaded, np.lib.npyio.NpzFile):
                raise TreeFileError(f"{path}: a single .npy array, not a tokentree .npz file")
            with loaded as npz:
                names = set(npz.files)
                if "header" not in names:
                    raise TreeFileError(
                        f"{path}: not a tokentree file (an .npz without a tokentree header); "
                        "build trees with `tokentree build`"
                    )
                header = _read_header(path, npz["header"])
                links = "flags" if "flags" in names and header["version"] >= 2 else "parents"
                tails = header["version"] >= 4 and "tail_length" in names
                wanted = (*_ARRAYS, links, *(_COUNT_TABLE if header["version"] >= 3 else ()), *(TAIL_ARRAYS if tails
                                                                                                else ()))
                missing = [k for k in wanted if k not in names]
                if missing:
                    raise TreeFileError(f"{path}: corrupt tree file, missing arrays {missing}; rebuild it")
                arrays = {k: npz[k] for k in wanted}
                tokenizer_json = zlib.decompress(bytes(npz["tokenizer"])).decode() if "tokenizer" in names else None
    except TreeFileError:
        raise
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, KeyError, TypeError) as exc:
        raise TreeFileError(
            f"{path}: cannot be read as a tree file ({type(exc).__name__}: {exc}); it is truncated, "
            "corrupt or not an .npz written by tokentree; rebuild it with `tokentree build`"
        ) from None
    info = _read_info(path, header)
    bad = _corrupt(path)
    for k, v in arrays.items():
        if v.ndim != 1 or v.dtype.kind not in "iu":
            raise bad(f"array {k} has shape {v.shape} and dtype {v.dtype}")
    tail_arrays = {k: arrays.pop(k) for k in TAIL_ARRAYS if k in arrays}
    _validate_arrays(arrays, info, bad, heads=bool(tail_arrays))
    tree = TokenTree._from_arrays(info=info, **arrays)
    if tail_arrays:
        from tokentree.trees.paths import from_file_arrays

        tree = from_file_arrays(tree, tail_arrays, bad)
    provenance = header.get("provenance")
    if provenance is not None or tokenizer_json is not None:
        if provenance is not None and not isinstance(provenance, dict):
            raise TreeFileError(f"{path}: corrupt tree file, its provenance is not a JSON object; rebuild it")
        tree = tree.with_provenance(provenance or {}, tokenizer_json)
    return tree


def _corrupt(path: Path) -> Callable[[str], TreeFileError]:
    """The error of a corrupt file at ``path``, saying ``why``."""
    return lambda why: TreeFileError(f"{path}: corrupt tree file ({why}); rebuild it")


def _read_header(path: Path, raw: np.ndarray) -> dict[str, Any]:
    try:
        header = json.loads(bytes(raw.astype(np.uint8)).decode())
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise TreeFileError(f"{path}: corrupt header; rebuild the file") from None
    if not isinstance(header, dict):
        raise TreeFileError(f"{path}: corrupt header (a JSON {type(header).__name__}, not an object); rebuild the file")
    if header.get("format") != FORMAT_NAME:
        raise TreeFileError(f"{path}: not a tokentree tree file (format {header.get('format')!r})")
    version = header.get("version")
    if isinstance(version, bool) or not isinstance(version, int):
        raise TreeFileError(f"{path}: corrupt header (version {version!r})")
    if version > FORMAT_VERSION:
        raise TreeFileError(
            f"{path}: written by a newer tokentree (format version {version}; this one reads up to "
            f"{FORMAT_VERSION}); upgrade tokentree to read it"
        )
    return header


#: What every header field may hold: the values the builder can produce.
_HEADER_CHOICES = {"mode": MODES, "weighting": WEIGHTINGS, "alphabet": ALPHABETS}
_HEADER_RANGES = {
    "depth": (1, MAX_DEPTH),
    "vocab_size": (1, MAX_VOCAB),
    "source_vocab_size": (0, MAX_VOCAB),
    "n_sequences": (0, 2**63 - 1),
    "n_tokens": (0, 2**63 - 1),
}


def _read_info(path: Path, header: dict[str, Any]) -> TreeInfo:
    def corrupt(why: str) -> TreeFileError:
        return TreeFileError(f"{path}: corrupt header ({why}); rebuild the file with `tokentree build`")

    fields = header.get("info")
    if not isinstance(fields, dict):
        raise corrupt(f"'info' is {type(fields).__name__}, not an object")
    unknown = sorted(set(fields) - set(_HEADER_CHOICES) - set(_HEADER_RANGES))
    missing = sorted({"depth", "mode", "vocab_size"} - set(fields))
    if unknown or missing:
        raise corrupt(f"unknown fields {unknown}, missing fields {missing}")
    for name, choices in _HEADER_CHOICES.items():
        if name in fields and fields[name] not in choices:
            raise corrupt(f"{name} = {fields[name]!r}, not one of {choices}")
    for name, (low, high) in _HEADER_RANGES.items():
        value = fields.get(name, low)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise corrupt(f"{name} = {value!r}, not an integer in {low}..{high}")
    return TreeInfo(**fields)


def _parents_of_flags(flags: np.ndarray, bad: Any, highest: int = 3) -> np.ndarray:
    """The parent links the node flags stand for, or ``bad(...)`` raised when they stand for none."""
    from tokentree.trees import _kernels

    if flags.dtype != np.uint8 or (flags.shape[0] and int(flags.max()) > highest):
        raise bad(f"node flags of dtype {flags.dtype} or with bits other than the two flags")
    parents = np.empty(flags.shape[0], dtype=np.int64)
    if not _kernels.parents_from_flags(flags, parents):
        raise bad("node flags do not pair every first child with a node that has children")
    return parents


def _wide_counts(a: dict[str, np.ndarray], bad: Any) -> np.ndarray:
    """The counts as int64, the table of large counts (version 3) checked and applied."""
    counts = a["counts"].astype(np.int64)
    if "count_overflow_at" not in a:
        return counts
    at, big = a["count_overflow_at"], a["count_overflow"]
    narrow = a["counts"].dtype == np.uint8
    if at.shape != big.shape or (at.shape[0] and not narrow):
        raise bad("a table of large counts that does not match the counts")
    if narrow:
        if np.any(np.diff(at) <= 0) or (at.shape[0] and (at[0] < 0 or at[-1] >= counts.shape[0])):
            raise bad("the table of large counts is not sorted or points outside the tree")
        if np.any(big < SATURATED) or not np.array_equal(np.flatnonzero(counts == SATURATED), at):
            raise bad(f"the table of large counts does not list exactly the nodes whose byte is {SATURATED}")
        counts[at] = big
    return counts


def _validate_arrays(a: dict[str, np.ndarray], info: TreeInfo, bad: Callable[[str], TreeFileError], *,
                     heads: bool = False) -> None:
    """Check the node arrays (one-dimensional integer arrays); ``heads``: the flags may mark tail heads (a
    path-compressed tree's explicit nodes)."""
    n = a["tokens"].shape[0]
    lo = a["level_offsets"]
    links = a["parents"] if "parents" in a else a["flags"]
    if links.shape[0] != n or a["counts"].shape[0] != n:
        raise bad("node arrays of different lengths")
    if lo.shape[0] != info.depth + 2 or lo[0] != 0 or lo[1] != 1 or lo[-1] != n or np.any(np.diff(lo) < 0):
        raise bad("level offsets inconsistent with the node count")
    if a["leaf_eos"].shape[0] != lo[-1] - lo[-2]:
        raise bad("leaf EOS counts do not match the deepest level")
    parents = a["parents"].astype(np.int64) if "parents" in a else _parents_of_flags(a["flags"], bad, 7 if heads else 3)
    if n and parents[0] != -1:
        raise bad("root has a parent")
    if np.any(parents[1:] < 0) or np.any(parents[1:] >= n):
        raise bad("a parent link points outside the tree")
    depth_of = np.repeat(np.arange(info.depth + 1), np.diff(lo))
    if np.any(np.diff(parents) < 0) or np.any(depth_of[parents[1:]] != depth_of[1:] - 1):
        raise bad("parent links are not breadth-first")
    key = parents[1:] * (int(info.vocab_size) + 1) + a["tokens"][1:].astype(np.int64)
    if np.any(np.diff(key) <= 0) or np.any(a["tokens"][1:] < 0) or np.any(a["tokens"][1:] >= info.vocab_size):
        raise bad("children not sorted by token or tokens out of range")
    counts = _wide_counts(a, bad)
    child_sum = np.bincount(parents[1:], weights=counts[1:].astype(np.float64), minlength=n)
    eos = a["leaf_eos"]
    if np.any(counts < 0) or np.any(child_sum > counts) or np.any(eos < 0) or np.any(eos > counts[lo[-2] :]):
        raise bad("counts inconsistent: a negative count, or a node counting less than its children")
