"""Datasets in the formats researchers hold them, read as responses (with their chat context).

=============  =========================================  ==========================================
format         files                                      what a record is
=============  =========================================  ==========================================
``text``       ``.txt``, ``.md``, ``.text``               a line, a paragraph or a file (``split``)
``jsonl``      ``.jsonl``, ``.ndjson``                    one JSON object per line
``json``       ``.json``                                  an element of a top-level JSON array
``csv``        ``.csv``                                   a row, the header names the fields
``tsv``        ``.tsv``                                   a row, tab-separated
``parquet``    ``.parquet``, ``.pq``                      a row (needs pyarrow: ``tokentree[data]``)
``arrow``      ``.arrow``, ``.feather``, ``.ipc``         a row of an Arrow IPC file or stream
``datasets``   a Hugging Face ``save_to_disk`` folder     a row of its Arrow files, in order
=============  =========================================  ==========================================

Text-like files may be compressed: ``.gz`` and ``.zst``/``.zstd`` are read transparently
(zstandard needs ``tokentree[data]``). ``-`` reads standard input (the format is given or
sniffed: ``{`` starts JSONL, ``[`` a JSON array, anything else text). A folder is read
recursively, file by file in sorted order, unless it is a ``datasets`` folder.

From a record, ``field`` picks the response: a column or key, or a dotted path into
nested records (``meta.answer``, ``messages.1.content``). With ``chat``, the field holds a
conversation (``messages``: role/content turns; a ``prompt``/``response`` record works too):
``chat="assistant"`` makes every assistant turn a response, ``"last-assistant"`` only the
last one, and each response keeps the turns before it as its context.

Nothing is silent: an option that does not apply to a file's format is refused, a bad
record stops the read with ``file:line`` (or is skipped and counted with
``skip_bad_lines``), and a binary file of a format that is not read gets a message naming
the formats that are.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from tokentree.infra.errors import InputError, TextInputError
from tokentree.infra.optional import optional_import

__all__ = [
    "FORMATS",
    "CHAT_TURNS",
    "ROLES",
    "Example",
    "ReadStats",
    "as_messages",
    "detect_format",
    "read_examples",
    "read_records",
]

FORMATS = ("text", "jsonl", "json", "csv", "tsv", "parquet", "arrow", "datasets")
#: Which assistant turns of a conversation are responses.
CHAT_TURNS = ("assistant", "last-assistant")
ROLES = ("system", "user", "assistant")
SPLITS = ("line", "paragraph", "file")
_SUFFIX_FORMATS = {
    ".txt": "text", ".md": "text", ".text": "text", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json",
    ".csv": "csv", ".tsv": "tsv", ".parquet": "parquet", ".pq": "parquet", ".arrow": "arrow", ".feather": "arrow",
    ".ipc": "arrow",
}
_COMPRESSIONS = {".gz": "gzip", ".zst": "zstd", ".zstd": "zstd"}
_MAGIC = (
    (b"PAR1", "parquet"), (b"ARROW1", "arrow"), (b"\xff\xff\xff\xff", "arrow"), (b"\x1f\x8b", "gzip"),
    (b"\x28\xb5\x2f\xfd", "zstd"), (b"PK\x03\x04", "a zip archive"), (b"\x93NUMPY", "a NumPy array (.npy)"),
    (b"SQLite format 3", "an SQLite database"), (b"\x89HDF", "an HDF5 file"),
)
_BINARY_FORMATS = ("parquet", "arrow", "datasets")
_READ_BATCH = 8192
READABLE = "text, JSONL, JSON arrays, CSV/TSV, Parquet, Arrow/Feather, datasets save_to_disk folders (gzip/zstd ok)"


@dataclass(frozen=True)
class Example:
    """One response and the conversation turns before it (empty outside chats)."""

    response: str
    context: tuple[dict[str, str], ...] = ()


@dataclass
class ReadStats:
    """What a read saw: responses yielded, bad records skipped (with their locations), files read."""

    responses: int = 0
    skipped: int = 0
    skipped_at: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)

    def skip(self, where: str) -> None:
        """Count a skipped record; the first ten locations are kept."""
        self.skipped += 1
        if len(self.skipped_at) < 10:
            self.skipped_at.append(where)


@dataclass(frozen=True)
class _Source:
    label: str
    path: Path | None  # None: standard input
    format: str
    compression: str | None = None


# ----------------------------------------------------------------------------- formats and sources
def _split_suffixes(path: Path) -> tuple[str | None, str | None]:
    """(format by suffix or None, compression or None) of a file name."""
    suffixes = [s.lower() for s in path.suffixes]
    compression = _COMPRESSIONS.get(suffixes[-1]) if suffixes else None
    if compression:
        suffixes = suffixes[:-1]
    return (_SUFFIX_FORMATS.get(suffixes[-1]) if suffixes else None), compression


def _sniff(head: bytes) -> str | None:
    for magic, name in _MAGIC:
        if head.startswith(magic):
            return name
    return None


def _is_datasets_folder(path: Path) -> bool:
    return (path / "state.json").is_file() and (path / "dataset_info.json").is_file()


def detect_format(path: str | os.PathLike[str]) -> str:
    """The format a file or folder is read as (see the module docstring); an error names what is read.

    >>> detect_format("notes.txt"), detect_format("chats.jsonl.gz"), detect_format("table.parquet")
    ('text', 'jsonl', 'parquet')
    """
    where = Path(path)
    if where.is_dir():
        if _is_datasets_folder(where):
            return "datasets"
        raise InputError(f"{where} is a folder; its files are read one by one (give the folder as an input)")
    by_suffix, compression = _split_suffixes(where)
    if by_suffix is not None:
        if compression and by_suffix in _BINARY_FORMATS:
            raise InputError(f"{where}: a compressed {by_suffix} file; {by_suffix} compresses internally, "
                             "decompress it first")
        return by_suffix
    head = b""
    if where.is_file():
        with open(where, "rb") as f:
            head = f.read(16)
    sniffed = _sniff(head)
    if sniffed in ("parquet", "arrow"):
        return sniffed
    if sniffed is not None or b"\x00" in head:
        what = sniffed or "binary data"
        raise InputError(f"{where}: {what}, which is not a format tokentree reads; it reads {READABLE}. "
                         "For token ids already tokenized use `tokentree build --ids FILE`")
    return "text"  # a named file without a known suffix: text, checked line by line as it is read


def _expand(paths: Sequence[str | os.PathLike[str]], forced: str | None) -> list[_Source]:
    out: list[_Source] = []
    for raw in paths:
        if str(raw) == "-":
            out.append(_Source("<stdin>", None, forced or "", None))
            continue
        p = Path(raw)
        if p.is_dir():
            if _is_datasets_folder(p):
                out.append(_Source(str(p), p, "datasets"))
                continue
            if (p / "dataset_dict.json").is_file():
                splits = sorted(d.name for d in p.iterdir() if d.is_dir() and _is_datasets_folder(d))
                raise InputError(f"{p} is a DatasetDict with splits {splits}; give one split's folder, "
                                 f"e.g. {p / (splits[0] if splits else 'train')}")
            found = []
            for f in sorted(p.rglob("*")):
                by_suffix, _ = _split_suffixes(f)
                if by_suffix is None or f.is_dir():
                    continue
                if f.is_symlink() and not f.exists():
                    raise InputError(f"{f}: a link to a file that does not exist; fix or remove the link")
                found.append(f)
            if not found:
                raise InputError(f"{p}: folder has no files of a format tokentree reads ({READABLE})")
            out += [_Source(str(f), f, forced or detect_format(f), _split_suffixes(f)[1]) for f in found]
        elif p.is_file():
            out.append(_Source(str(p), p, forced or detect_format(p), _split_suffixes(p)[1]))
        elif p.exists():
            raise InputError(f"{p}: not a regular file or folder (a device, pipe or socket); give files, "
                             "or - for standard input")
        elif p.is_symlink():
            raise InputError(f"{p}: a link to a file that does not exist; fix or remove the link")
        else:
            raise InputError(f"{p}: no such file or folder")
    return out


def _open_bytes(source: _Source) -> Any:
    if source.path is None:
        return sys.stdin.buffer
    if source.compression == "gzip":
        return gzip.open(source.path, "rb")
    if source.compression == "zstd":
        zstandard = _optional("zstandard", "zstd-compressed files")
        return io.BufferedReader(zstandard.ZstdDecompressor().stream_reader(open(source.path, "rb"), closefd=True))
    return open(source.path, "rb")


def _optional(module: str, what: str) -> Any:
    return optional_import(module, f"reading {what}", "pip install 'tokentree[data]'", error=InputError)


# ----------------------------------------------------------------------------- lines of text-like files
def _lines(stream: IO[bytes], label: str) -> Iterator[tuple[int, str]]:
    try:
        for number, raw in enumerate(stream, 1):
            if number == 1:
                binary = _sniff(raw[:16])
                if binary is not None:
                    raise TextInputError(f"{label}: {binary}, not text; name the file with its format's suffix "
                                         f"(tokentree reads {READABLE})")
                if raw.startswith(b"\xef\xbb\xbf"):
                    raw = raw[3:]  # a UTF-8 byte-order mark is not part of the text
            if b"\x00" in raw:
                raise TextInputError(f"{label}:{number}: NUL bytes: this is binary data, not text; tokentree reads "
                                     f"{READABLE}, and token ids with `tokentree build --ids`")
            try:
                yield number, raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise TextInputError(
                    f"{label}:{number}: invalid UTF-8 at byte {exc.start} of the line; "
                    "re-encode the file as UTF-8 (e.g. iconv -f latin1 -t utf-8)"
                ) from None
    except (OSError, EOFError) as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise TextInputError(f"{label}: cannot be decompressed or read ({exc}); is it complete?") from None


def _text_records(lines: Iterator[tuple[int, str]], label: str, split: str) -> Iterator[tuple[str, Any]]:
    if split == "line":
        for number, line in lines:
            if line.strip():
                yield f"{label}:{number}", line.rstrip("\r\n")
        return
    buffer: list[str] = []
    first = 1
    for number, line in lines:
        if split == "paragraph" and not line.strip():
            if "".join(buffer).strip():
                yield f"{label}:{first}", "".join(buffer).rstrip("\r\n")
            buffer, first = [], number + 1
        else:
            buffer.append(line)
    if "".join(buffer).strip():
        yield f"{label}:{first}", "".join(buffer).rstrip("\r\n")


def _sniff_stdin() -> str:
    stream = sys.stdin.buffer
    peek = getattr(stream, "peek", None)
    head = peek(64) if peek is not None else b""
    text = head.lstrip(b"\xef\xbb\xbf").lstrip()
    if text.startswith(b"{"):
        return "jsonl"
    if text.startswith(b"["):
        return "json"
    return "text"


# ----------------------------------------------------------------------------- records of each format
def _arrow_batches(source: _Source, columns: Sequence[str] | None) -> Iterator[Any]:
    """Record batches of a Parquet, Arrow or datasets source, with only ``columns`` that exist (all if None)."""
    pa = _optional("pyarrow", f"{source.format} files")
    if source.format == "parquet":
        import pyarrow.parquet as pq

        parquet = pq.ParquetFile(source.path)
        keep = None if columns is None else [c for c in columns if c in parquet.schema_arrow.names] or None
        yield from parquet.iter_batches(batch_size=_READ_BATCH, columns=keep)
        return
    files = [source.path]
    if source.format == "datasets":
        assert source.path is not None
        state = json.loads((source.path / "state.json").read_text())
        files = [source.path / f["filename"] for f in state.get("_data_files", [])]
        if not files:
            raise InputError(f"{source.label}: state.json lists no data files; is the folder complete?")
    for path in files:
        with pa.memory_map(str(path), "r") as mapped:
            try:
                reader = pa.ipc.open_file(mapped)
                batches = (reader.get_batch(i) for i in range(reader.num_record_batches))
            except pa.ArrowInvalid:
                mapped.seek(0)
                batches = pa.ipc.open_stream(mapped)
            for batch in batches:
                keep = None if columns is None else [c for c in columns if c in batch.schema.names]
                yield batch.select(keep) if keep else batch


def read_records(
    paths: Sequence[str | os.PathLike[str]],
    *,
    format: str | None = None,
    split: str | None = None,
    skip_bad_lines: bool = False,
    stats: ReadStats | None = None,
    columns: Sequence[str] | None = None,
) -> Iterator[tuple[str, Any]]:
    """Yield ``(where, record)`` from files, folders and ``-``: a string for text, a mapping otherwise.

    ``columns`` (top-level names) lets Parquet and Arrow read only what is needed; records
    of other formats come whole.
    ``where`` is ``file:line`` (or ``file:row``) for messages. ``format`` forces one format
    for every input (needed for standard input only if sniffing would guess wrong);
    ``split`` cuts text files ("line", "paragraph" or "file") and is refused for others.
    A JSONL line that is not JSON stops the read, or with ``skip_bad_lines`` is counted in
    ``stats`` and skipped.
    """
    stats = ReadStats() if stats is None else stats
    if format is not None and format not in FORMATS:
        raise InputError(f"format must be one of {FORMATS}; got {format!r}")
    if split is not None and split not in SPLITS:
        raise InputError(f"split must be one of {SPLITS}; got {split!r}")
    for source in _expand(paths, format):
        kind = source.format or _sniff_stdin()
        stats.files.append(source.label)
        if split is not None and kind != "text":
            raise InputError(f"{source.label}: split applies to plain text only; this is {kind} (drop --split)")
        if kind in _BINARY_FORMATS:
            if source.path is None:
                raise InputError(f"{kind} cannot be read from standard input; give the file")
            row = 0
            for batch in _arrow_batches(source, columns):
                for record in batch.to_pylist():
                    row += 1
                    yield f"{source.label}:row {row}", record
            continue
        stream = _open_bytes(source)
        try:
            for where, record in _records_of_stream(stream, source.label, kind, split or "line"):
                if isinstance(record, _Bad):
                    if not skip_bad_lines:
                        raise TextInputError(f"{where}: line {record.problem}; fix the line, or pass --skip-bad-lines "
                                             "(skip_bad_lines=True) to skip bad records and count them")
                    stats.skip(where)
                else:
                    yield where, record
        finally:
            if source.path is not None:
                stream.close()


def _records_of_stream(stream: IO[bytes], label: str, kind: str, split: str) -> Iterator[tuple[str, Any]]:
    if kind == "text":
        yield from _text_records(_lines(stream, label), label, split)
    elif kind == "jsonl":
        for number, line in _lines(stream, label):
            if line.strip():
                try:
                    yield f"{label}:{number}", json.loads(line)
                except json.JSONDecodeError as exc:
                    yield f"{label}:{number}", _Bad(f"is not valid JSON ({exc.msg})")
    elif kind == "json":
        text = "".join(line for _, line in _lines(stream, label))
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise TextInputError(f"{label}:{exc.lineno}: not valid JSON ({exc.msg}); a .json file must hold one "
                                 "JSON array of records (one record per line is .jsonl)") from None
        if not isinstance(data, list):
            keys = sorted(data)[:8] if isinstance(data, dict) else type(data).__name__
            raise InputError(f"{label}: a .json file must hold a JSON array of records; this one holds "
                             f"{'an object with keys ' + str(keys) if isinstance(data, dict) else keys}")
        for i, record in enumerate(data):
            yield f"{label}:[{i}]", record
    else:  # csv, tsv
        wrapper = io.TextIOWrapper(stream, encoding="utf-8-sig", newline="")
        reader = csv.DictReader(wrapper, delimiter="\t" if kind == "tsv" else ",")
        try:
            for row in reader:
                yield f"{label}:{reader.line_num}", row
        except UnicodeDecodeError as exc:
            raise TextInputError(f"{label}:{reader.line_num + 1}: invalid UTF-8 at byte {exc.start}; re-encode the "
                                 "file as UTF-8 (e.g. iconv -f latin1 -t utf-8)") from None
        except csv.Error as exc:
            raise TextInputError(f"{label}:{reader.line_num}: not valid {kind.upper()} ({exc})") from None
        finally:
            wrapper.detach()


@dataclass(frozen=True)
class _Bad:
    problem: str


# ----------------------------------------------------------------------------- from records to examples
def _get(record: Any, path: str) -> Any:
    """``record`` at a dotted ``path``; KeyError naming the missing part."""
    value = record
    for part in path.split("."):
        if isinstance(value, Mapping) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.lstrip("-").isdigit() and -len(value) <= int(part) < len(value):
            value = value[int(part)]
        else:
            keys = f"; it has {sorted(value)[:10]}" if isinstance(value, Mapping) else ""
            raise KeyError(f"has no field {part!r}" + (f" (in {path!r})" if part != path else "") + keys)
    return value


def as_messages(example: Any, where: str = "example") -> tuple[dict[str, str], ...]:
    """The chat turns of one example, checked: roles from :data:`ROLES`, text content, an assistant turn.

    >>> as_messages({"prompt": "hi", "response": "hello"})
    ({'role': 'user', 'content': 'hi'}, {'role': 'assistant', 'content': 'hello'})
    """
    if isinstance(example, tuple) and len(example) == 2 and all(isinstance(x, str) for x in example):
        example = {"prompt": example[0], "response": example[1]}
    if isinstance(example, Mapping) and "messages" in example:
        example = example["messages"]
    if isinstance(example, Mapping):
        if not {"prompt", "response"} <= set(example):
            raise InputError(
                f"{where} has keys {sorted(example)}; give 'messages' (a list of role/content turns) or "
                "'prompt' and 'response'"
            )
        turns: list[Any] = [{"role": "user", "content": example["prompt"]},
                            {"role": "assistant", "content": example["response"]}]
        if example.get("system") is not None:
            turns.insert(0, {"role": "system", "content": example["system"]})
    elif isinstance(example, Sequence) and not isinstance(example, str):
        turns = list(example)
    else:
        raise InputError(f"{where} is a {type(example).__name__}; give a chat (messages) or a prompt/response pair")
    out = []
    for i, turn in enumerate(turns):
        if not isinstance(turn, Mapping) or turn.get("role") not in ROLES or not isinstance(turn.get("content"), str):
            raise InputError(
                f"{where}, turn {i}: each turn needs a role in {ROLES} and text content; got {turn!r:.80}"
            )
        out.append({"role": str(turn["role"]), "content": str(turn["content"])})
    if not any(t["role"] == "assistant" and t["content"].strip() for t in out):
        raise InputError(f"{where} has no response: no assistant turn with text, so there is nothing to learn")
    return tuple(out)


def _examples(record: Any, where: str, field_path: str, chat: str | None) -> list[Example]:
    if isinstance(record, str):
        return [Example(record)] if record.strip() else []
    if chat is not None:
        try:
            value = _get(record, field_path) if field_path != "messages" or "messages" in record else record
        except KeyError as exc:
            raise InputError(f"{where}: record {exc.args[0]}") from None
        turns = as_messages(value, where)
        answers = [i for i, t in enumerate(turns) if t["role"] == "assistant" and t["content"].strip()]
        if chat == "last-assistant":
            answers = answers[-1:]
        return [Example(turns[i]["content"], turns[:i]) for i in answers]
    try:
        value = _get(record, field_path)
    except KeyError as exc:
        raise InputError(f"{where}: record {exc.args[0]}") from None
    if isinstance(value, str):
        return [Example(value)] if value.strip() else []
    if value is None:
        return []  # a missing value (null, an empty CSV cell): no response
    hint = " (a conversation: pass --chat assistant or --chat last-assistant)" if isinstance(value, list) else ""
    raise InputError(f"{where}: field {field_path!r} is {type(value).__name__}, not text{hint}")


def read_examples(
    paths: Sequence[str | os.PathLike[str]],
    *,
    field: str | None = None,
    chat: str | None = None,
    split: str | None = None,
    format: str | None = None,
    skip_bad_lines: bool = False,
    stats: ReadStats | None = None,
) -> Iterator[Example]:
    """Yield the responses of files, folders and ``-`` (see the module docstring), one at a time.

    Parameters
    ----------
    field : str, optional
        Column, key or dotted path of the response (default ``text``; ``messages`` with ``chat``).
        Refused for plain text.
    chat : {"assistant", "last-assistant"}, optional
        The field holds conversations; which assistant turns are responses.
    split : {"line", "paragraph", "file"}, optional
        How plain text is cut into responses (default ``line``); refused for other formats.
    format : str, optional
        Read every input as this format instead of by its suffix.
    skip_bad_lines : bool
        Skip records that cannot be read (counted in ``stats``) instead of stopping at the first.
    """
    if chat is not None and chat not in CHAT_TURNS:
        raise InputError(f"chat must be one of {CHAT_TURNS}; got {chat!r}")
    if field is not None and (not isinstance(field, str) or not field or any(not p for p in field.split("."))):
        raise InputError(f"field must be a column name or a dotted path like 'meta.text'; got {field!r}")
    stats = ReadStats() if stats is None else stats
    field_path = field or ("messages" if chat else "text")
    chat_columns = ["messages", "prompt", "response", "system"]
    top = chat_columns if chat is not None and field is None else [field_path.split(".")[0]]
    for where, record in read_records(paths, format=format, split=split, skip_bad_lines=skip_bad_lines, stats=stats,
                                      columns=top):
        if isinstance(record, str) and (field is not None or chat is not None):
            option = "--field" if field is not None else "--chat"
            raise InputError(f"{where.rsplit(':', 1)[0]}: {option} applies to records (JSONL, JSON, CSV, Parquet, "
                             "Arrow); this is plain text, where each line (or --split unit) is a response")
        try:
            found = _examples(record, where, field_path, chat)
        except InputError as exc:
            if not skip_bad_lines:
                raise TextInputError(f"{exc}; fix it, choose another --field, or pass --skip-bad-lines "
                                 "(skip_bad_lines=True) to skip bad records and count them") from None
            stats.skip(where)
            continue
        for example in found:
            stats.responses += 1
            yield example
