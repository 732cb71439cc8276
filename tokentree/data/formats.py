"""Which format an input is, where its bytes come from, and the checks made before a record is read.

The table of formats is in :mod:`tokentree.data.readers`; this module names them (by
suffix, by magic bytes), expands folders and ``datasets`` folders into sources, and opens
compressed files so that a truncated or mislabelled one is an error naming the file,
never fewer records.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from tokentree.infra.errors import InputError, TextInputError
from tokentree.infra.optional import optional_import

__all__ = ["FORMATS", "SPLITS", "READABLE", "Source", "detect_format", "expand_inputs", "open_bytes", "sniff"]

FORMATS = ("text", "jsonl", "json", "csv", "tsv", "parquet", "arrow", "datasets")
#: How plain text is cut into responses.
SPLITS = ("line", "paragraph", "file")
_SUFFIX_FORMATS = {
    ".txt": "text", ".md": "text", ".text": "text", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json",
    ".csv": "csv", ".tsv": "tsv", ".parquet": "parquet", ".pq": "parquet", ".arrow": "arrow", ".feather": "arrow",
    ".ipc": "arrow",
}
_COMPRESSIONS = {".gz": "gzip", ".zst": "zstd", ".zstd": "zstd"}
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_MAGIC = (
    (b"PAR1", "parquet"), (b"ARROW1", "arrow"), (b"\xff\xff\xff\xff", "arrow"), (b"\x1f\x8b", "gzip"),
    (_ZSTD_MAGIC, "zstd"), (b"PK\x03\x04", "a zip archive"), (b"\x93NUMPY", "a NumPy array (.npy)"),
    (b"SQLite format 3", "an SQLite database"), (b"\x89HDF", "an HDF5 file"),
)
BINARY_FORMATS = ("parquet", "arrow", "datasets")
READABLE = "text, JSONL, JSON arrays, CSV/TSV, Parquet, Arrow/Feather, datasets save_to_disk folders (gzip/zstd ok)"
_BLOCK = 1 << 20


@dataclass(frozen=True)
class Source:
    """One input: its label in messages, its path (None: standard input), its format and compression."""

    label: str
    path: Path | None
    format: str
    compression: str | None = None


def split_suffixes(path: Path) -> tuple[str | None, str | None]:
    """(format by suffix or None, compression or None) of a file name."""
    suffixes = [s.lower() for s in path.suffixes]
    compression = _COMPRESSIONS.get(suffixes[-1]) if suffixes else None
    if compression:
        suffixes = suffixes[:-1]
    return (_SUFFIX_FORMATS.get(suffixes[-1]) if suffixes else None), compression


def sniff(head: bytes) -> str | None:
    """The binary format ``head`` (a file's first bytes) starts with, or None."""
    for magic, name in _MAGIC:
        if head.startswith(magic):
            return name
    return None


def is_datasets_folder(path: Path) -> bool:
    return (path / "state.json").is_file() and (path / "dataset_info.json").is_file()


def detect_format(path: str | os.PathLike[str]) -> str:
    """The format a file or folder is read as (see :mod:`tokentree.data.readers`); an error names what is read.

    >>> detect_format("notes.txt"), detect_format("chats.jsonl.gz"), detect_format("table.parquet")
    ('text', 'jsonl', 'parquet')
    """
    where = Path(path)
    if where.is_dir():
        if is_datasets_folder(where):
            return "datasets"
        raise InputError(f"{where} is a folder; its files are read one by one (give the folder as an input)")
    by_suffix, compression = split_suffixes(where)
    if by_suffix is not None:
        if compression and by_suffix in BINARY_FORMATS:
            raise InputError(f"{where}: a compressed {by_suffix} file; {by_suffix} compresses internally, "
                             "decompress it first")
        return by_suffix
    head = b""
    if where.is_file():
        with open(where, "rb") as f:
            head = f.read(16)
    sniffed = sniff(head)
    if sniffed in ("parquet", "arrow"):
        return sniffed
    if sniffed is not None or b"\x00" in head:
        what = sniffed or "binary data"
        raise InputError(f"{where}: {what}, which is not a format tokentree reads; it reads {READABLE}. "
                         "For token ids already tokenized use `tokentree build --ids FILE`")
    return "text"  # a named file without a known suffix: text, checked line by line as it is read


def _dataset_dict_split(folder: Path, split: str | None) -> Path:
    """The folder of split ``split`` of a DatasetDict folder; without one, an error naming the splits."""
    splits = sorted(d.name for d in folder.iterdir() if d.is_dir() and is_datasets_folder(d))
    if split is None:
        raise InputError(f"{folder} is a DatasetDict with splits {splits}; give one split's folder, "
                         f"e.g. {folder / (splits[0] if splits else 'train')}, or the split name "
                         f"(split='train', as in datasets), e.g. --split {splits[0] if splits else 'train'}")
    if split not in splits:
        raise InputError(f"{folder} is a DatasetDict with splits {splits}; it has no split {split!r}: pass one of "
                         f"them (--split {splits[0] if splits else 'train'})")
    return folder / split


def expand_inputs(paths: Sequence[str | os.PathLike[str]], forced: str | None,
                  dataset_split: str | None = None) -> list[Source]:
    """The sources of files, folders (recursively, in sorted order), ``datasets`` folders and ``-``."""
    out: list[Source] = []
    for raw in paths:
        if str(raw) == "-":
            out.append(Source("<stdin>", None, forced or "", None))
            continue
        p = Path(raw)
        if p.is_dir() and (p / "dataset_dict.json").is_file() and not is_datasets_folder(p):
            p = _dataset_dict_split(p, dataset_split)
        elif dataset_split is not None:
            raise InputError(f"split {dataset_split!r} is not one of {SPLITS} (how plain text is cut), so it names "
                             f"a split of a DatasetDict; {p} is not a DatasetDict folder")
        if p.is_dir():
            if is_datasets_folder(p):
                out.append(Source(str(p), p, "datasets"))
                continue
            found = []
            for f in sorted(p.rglob("*")):
                by_suffix, _ = split_suffixes(f)
                if by_suffix is None or f.is_dir():
                    continue
                if f.is_symlink() and not f.exists():
                    raise InputError(f"{f}: a link to a file that does not exist; fix or remove the link")
                found.append(f)
            if not found:
                raise InputError(f"{p}: folder has no files of a format tokentree reads ({READABLE})")
            out += [Source(str(f), f, forced or detect_format(f), split_suffixes(f)[1]) for f in found]
        elif p.is_file():
            out.append(Source(str(p), p, forced or detect_format(p), split_suffixes(p)[1]))
        elif p.exists():
            raise InputError(f"{p}: not a regular file or folder (a device, pipe or socket); give files, "
                             "or - for standard input")
        elif p.is_symlink():
            raise InputError(f"{p}: a link to a file that does not exist; fix or remove the link")
        else:
            raise InputError(f"{p}: no such file or folder")
    return out


def datasets_files(source: Source) -> list[Path]:
    """The Arrow files a ``datasets`` save_to_disk folder lists in ``state.json``, checked to lie inside it."""
    assert source.path is not None
    state_path = source.path / "state.json"
    try:
        state = json.loads(state_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        at = f" at line {exc.lineno} column {exc.colno}" if isinstance(exc, json.JSONDecodeError) else ""
        raise InputError(f"{state_path}: not valid JSON{at}; the datasets folder is damaged: save it again "
                         "with Dataset.save_to_disk") from None
    entries = state.get("_data_files") if isinstance(state, dict) else None
    if not isinstance(entries, list) or not all(isinstance(e, dict) and isinstance(e.get("filename"), str)
                                                for e in entries):
        raise InputError(f"{state_path}: '_data_files' must be a list of {{'filename': ...}} entries; the datasets "
                         "folder is damaged: save it again with Dataset.save_to_disk")
    if not entries:
        raise InputError(f"{source.label}: state.json lists no data files; is the folder complete?")
    root = source.path.resolve()
    files = []
    for entry in entries:
        path = (source.path / entry["filename"]).resolve()
        if not path.is_relative_to(root) or path == root:
            raise InputError(f"{state_path} lists data file {entry['filename']!r}, which is outside the folder; a "
                             "datasets folder holds its own files, so this one is refused (save it again)")
        if not path.is_file():
            raise InputError(f"{state_path} lists data file {entry['filename']!r}, which is missing; is the folder "
                             "complete?")
        files.append(path)
    return files


def optional(module: str, what: str) -> Any:
    return optional_import(module, f"reading {what}", "pip install 'tokentree[data]'", error=InputError)


class _Checked(io.RawIOBase):
    """A decompressing stream whose read errors (truncation, not that compression) name the file."""

    def __init__(self, inner: Any, label: str, kind: str) -> None:
        self._inner, self._label, self._kind = inner, label, kind

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        try:
            data = self._inner.read(len(buffer))
        except (OSError, EOFError, ValueError) as exc:
            if isinstance(exc, FileNotFoundError):
                raise
            raise TextInputError(f"{self._label}: cannot be decompressed as {self._kind} ({exc}); is it complete? "
                                 "Copy or download it again") from None
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self._inner.close()
        super().close()


class _Zstd(io.RawIOBase):
    """zstd frames one after another; the end of the file inside a frame is an error, not the end of the data."""

    def __init__(self, raw: IO[bytes], label: str) -> None:
        zstandard = optional("zstandard", "zstd-compressed files")
        self._raw, self._label, self._module = raw, label, zstandard
        self._frame = zstandard.ZstdDecompressor().decompressobj()
        self._pending = b""
        self._started = False

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        while not self._pending:
            chunk = self._raw.read(_BLOCK)
            if not chunk:
                if not self._started:
                    raise TextInputError(f"{self._label}: an empty file, which is not zstd data; remove it or "
                                         "compress the data again")
                if not self._frame.eof:
                    raise TextInputError(f"{self._label}: the zstd data ends in the middle of a frame: the file is "
                                         "truncated; copy or download it again")
                return b""
            if not self._started and not chunk.startswith(_ZSTD_MAGIC):
                got = sniff(chunk[:16])
                raise TextInputError(f"{self._label}: named .zst but is not zstd data (it starts with "
                                     f"{chunk[:4]!r}{', ' + got if got else ''}); rename it to what it is")
            self._started = True
            self._pending = self._decompress(chunk)
        size = len(self._pending) if size < 0 else size
        out, self._pending = self._pending[:size], self._pending[size:]
        return out

    def _decompress(self, chunk: bytes) -> bytes:
        out = []
        while chunk:
            if self._frame.eof:  # the next frame of a multi-frame file (zstd -T, pzstd)
                self._frame = self._module.ZstdDecompressor().decompressobj()
            try:
                out.append(self._frame.decompress(chunk))
            except self._module.ZstdError as exc:
                raise TextInputError(f"{self._label}: corrupt zstd data ({exc}); copy or download it again") from None
            chunk = self._frame.unused_data if self._frame.eof else b""
        return b"".join(out)

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self._raw.close()
        super().close()


def open_bytes(source: Source) -> Any:
    """A binary stream of the source's (decompressed) bytes; decompression errors name the file."""
    if source.path is None:
        return sys.stdin.buffer
    if source.compression == "gzip":
        return io.BufferedReader(_Checked(gzip.open(source.path, "rb"), source.label, "gzip"), _BLOCK)
    if source.compression == "zstd":
        return io.BufferedReader(_Zstd(open(source.path, "rb"), source.label), _BLOCK)
    return open(source.path, "rb")
