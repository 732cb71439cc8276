"""Saving and loading token trees as ``.npz`` files (no pickle, atomic writes).

A tree file is an uncompressed (or compressed) numpy ``.npz`` archive holding the
node arrays and a JSON header stored as a uint8 array. Loading uses
``allow_pickle=False`` and validates everything before building the tree, so a
truncated, corrupt, foreign or newer file raises :class:`TreeFileError` with a message
saying what is wrong, never an error from deep inside numpy.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from tokentree.errors import TreeFileError
from tokentree.tree import MODES, WEIGHTINGS, TokenTree, TreeInfo

__all__ = ["save_tree", "load_tree", "FORMAT_NAME", "FORMAT_VERSION", "atomic_write", "write_output_folder"]

FORMAT_NAME = "tokentree.TokenTree"
FORMAT_VERSION = 1
_ARRAYS = ("tokens", "parents", "counts", "leaf_eos", "level_offsets")


def atomic_write(path: str | os.PathLike[str], write: Any, *, suffix: str = "") -> Path:
    """Call ``write(file_object)`` on a temporary file beside ``path``, then rename it over ``path``.

    A failure (or an interrupt) midway leaves any earlier ``path`` untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix + ".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_output_folder(out: str | os.PathLike[str], write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp)`` on a fresh temporary folder, then put it in place of ``out``.

    If ``write`` raises, the temporary folder is removed and ``out`` is left as it was.
    """
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        write(tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if out.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
        old.rmdir()
        out.rename(old)
        tmp.rename(out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        tmp.rename(out)
    return out


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
    header = {"format": FORMAT_NAME, "version": FORMAT_VERSION, "info": tree.info.to_dict()}
    arrays = {
        "header": np.frombuffer(json.dumps(header, sort_keys=True).encode(), dtype=np.uint8),
        "tokens": tree.tokens,
        "parents": tree.parents,
        "counts": tree.counts,
        "leaf_eos": tree.leaf_eos,
        "level_offsets": tree.level_offsets,
    }
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
    try:
        with open(path, "rb") as fh, np.load(fh, allow_pickle=False) as npz:
            if not isinstance(npz, np.lib.npyio.NpzFile):
                raise TreeFileError(f"{path}: a single .npy array, not a tokentree .npz file")
            names = set(npz.files)
            if "header" not in names:
                raise TreeFileError(
                    f"{path}: not a tokentree file (an .npz without a tokentree header); "
                    "build trees with `tokentree build`"
                )
            header = _read_header(path, npz["header"])
            missing = [k for k in _ARRAYS if k not in names]
            if missing:
                raise TreeFileError(f"{path}: corrupt tree file, missing arrays {missing}; rebuild it")
            arrays = {k: npz[k] for k in _ARRAYS}
    except TreeFileError:
        raise
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError) as exc:
        raise TreeFileError(
            f"{path}: cannot be read as a tree file ({type(exc).__name__}: {exc}); it is truncated, "
            "corrupt or not an .npz written by tokentree; rebuild it with `tokentree build`"
        ) from None
    info = _read_info(path, header)
    _validate_arrays(path, arrays, info)
    return TokenTree._from_arrays(info=info, **arrays)


def _read_header(path: Path, raw: np.ndarray) -> dict[str, Any]:
    try:
        header = json.loads(bytes(raw.astype(np.uint8)).decode())
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise TreeFileError(f"{path}: corrupt header; rebuild the file") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT_NAME:
        raise TreeFileError(f"{path}: not a tokentree tree file (format {header.get('format')!r})")
    version = header.get("version")
    if not isinstance(version, int):
        raise TreeFileError(f"{path}: corrupt header (version {version!r})")
    if version > FORMAT_VERSION:
        raise TreeFileError(
            f"{path}: written by a newer tokentree (format version {version}; this one reads up to "
            f"{FORMAT_VERSION}); upgrade tokentree to read it"
        )
    return header


def _read_info(path: Path, header: dict[str, Any]) -> TreeInfo:
    try:
        info = TreeInfo(**header["info"])
    except (KeyError, TypeError) as exc:
        raise TreeFileError(f"{path}: corrupt header ({exc}); rebuild the file") from None
    if info.mode not in MODES or info.weighting not in WEIGHTINGS or info.depth < 1:
        raise TreeFileError(f"{path}: corrupt header (mode/weighting/depth {info}); rebuild the file")
    return info


def _validate_arrays(path: Path, a: dict[str, np.ndarray], info: TreeInfo) -> None:
    def bad(why: str) -> TreeFileError:
        return TreeFileError(f"{path}: corrupt tree file ({why}); rebuild it")

    for k, v in a.items():
        if v.ndim != 1 or v.dtype.kind not in "iu":
            raise bad(f"array {k} has shape {v.shape} and dtype {v.dtype}")
    n = a["tokens"].shape[0]
    lo = a["level_offsets"]
    if a["parents"].shape[0] != n or a["counts"].shape[0] != n:
        raise bad("node arrays of different lengths")
    if lo.shape[0] != info.depth + 2 or lo[0] != 0 or lo[1] != 1 or lo[-1] != n or np.any(np.diff(lo) < 0):
        raise bad("level offsets inconsistent with the node count")
    if a["leaf_eos"].shape[0] != lo[-1] - lo[-2]:
        raise bad("leaf EOS counts do not match the deepest level")
    parents = a["parents"].astype(np.int64)
    if n and parents[0] != -1:
        raise bad("root has a parent")
    depth_of = np.repeat(np.arange(info.depth + 1), np.diff(lo))
    if np.any(np.diff(parents) < 0) or np.any(depth_of[parents[1:]] != depth_of[1:] - 1):
        raise bad("parent links are not breadth-first")
    key = parents[1:] * (int(info.vocab_size) + 1) + a["tokens"][1:].astype(np.int64)
    if np.any(np.diff(key) <= 0) or np.any(a["tokens"][1:] < 0) or np.any(a["tokens"][1:] >= info.vocab_size):
        raise bad("children not sorted by token or tokens out of range")
    counts = a["counts"]
    child_sum = np.bincount(parents[1:], weights=counts[1:].astype(np.float64), minlength=n)
    if np.any(counts < 0) or np.any(child_sum > counts) or np.any(a["leaf_eos"] > counts[lo[-2] :]):
        raise bad("counts inconsistent: a node counts less than its children")
