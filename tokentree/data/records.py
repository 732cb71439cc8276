"""The records of each format, read one at a time with their location (``file:line``, ``file:row N``).

This is the path every record can take and the one that names a bad record's place;
:mod:`tokentree.data.columnar` reads a top-level text field faster and comes back here
for any part of a file it cannot vouch for.

Line ends: ``\\n``, ``\\r\\n`` and a lone ``\\r`` (old Mac files) all end a line of text
and JSONL, and count as one line in locations.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import IO, Any

from tokentree.data.formats import BINARY_FORMATS, READABLE, Source, datasets_files, open_bytes, optional, sniff
from tokentree.infra.errors import InputError, TextInputError

__all__ = ["Bad", "ReadStats", "arrow_batches", "csv_records", "jsonl_records", "lines", "records_of_stream"]

_LONE_CR = re.compile(rb"(?<=\r)(?!\n)")
_READ_BATCH = 8192
_FIX_UTF8 = "re-encode the file as UTF-8 (e.g. iconv -f latin1 -t utf-8)"


@dataclass
class ReadStats:
    """What a read saw: responses yielded, records skipped and dropped, files read.

    ``skipped`` counts bad records skipped with ``skip_bad_lines`` (the first ten locations
    in ``skipped_at``); ``nulls`` records whose field is null (a JSON ``null``, a missing
    Parquet or Arrow cell) and ``empty`` those whose text is empty or only whitespace: neither
    is a response, and neither is dropped without being counted.
    """

    responses: int = 0
    skipped: int = 0
    skipped_at: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    nulls: int = 0
    empty: int = 0

    def skip(self, where: str) -> None:
        """Count a skipped record; the first ten locations are kept."""
        self.skipped += 1
        if len(self.skipped_at) < 10:
            self.skipped_at.append(where)


@dataclass(frozen=True)
class Bad:
    """A record that cannot be read: stops the read at its location, or is skipped and counted."""

    problem: str


# ----------------------------------------------------------------------------- lines of text-like files
def lines(stream: IO[bytes] | Iterable[bytes], label: str, first: int = 1) -> Iterator[tuple[int, str]]:
    """``(line number, line)`` of a binary stream, decoded and checked; ``first`` numbers the first line."""
    number = first - 1
    for raw_line in stream:
        for raw in _LONE_CR.split(raw_line) if b"\r" in raw_line else (raw_line,):
            if not raw:
                continue
            number += 1
            if number == 1:
                binary = sniff(raw[:16])
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
                raise TextInputError(f"{label}:{number}: invalid UTF-8 at byte {exc.start} of the line; "
                                     f"{_FIX_UTF8}") from None


def _text_records(numbered: Iterator[tuple[int, str]], label: str, split: str) -> Iterator[tuple[str, Any]]:
    if split == "line":
        for number, line in numbered:
            if line.strip():
                yield f"{label}:{number}", line.rstrip("\r\n")
        return
    buffer: list[str] = []
    start = 1
    for number, line in numbered:
        if split == "paragraph" and not line.strip():
            if "".join(buffer).strip():
                yield f"{label}:{start}", "".join(buffer).rstrip("\r\n")
            buffer, start = [], number + 1
        else:
            buffer.append(line)
    if "".join(buffer).strip():
        yield f"{label}:{start}", "".join(buffer).rstrip("\r\n")


# ----------------------------------------------------------------------------- JSON
_DEEP = "nests deeper than Python's JSON parser follows (about 1,000 levels)"


def _lone_surrogate(record: Any) -> str | None:
    """The first lone UTF-16 surrogate (``\\ud800``) in a decoded record's strings, as an escape, or None."""
    stack = [record]
    while stack:
        value = stack.pop()
        if isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError as exc:
                return f"\\u{ord(value[exc.start]):04x}"
        elif isinstance(value, dict):
            stack += value.keys()
            stack += value.values()
        elif isinstance(value, list):
            stack += value
    return None


def _surrogate_problem(record: Any) -> str:
    escape = _lone_surrogate(record)
    return (f"has a lone UTF-16 surrogate ({escape}): half of a character, not text (a string cut inside an "
            "emoji?)") if escape else ""


def jsonl_records(numbered: Iterator[tuple[int, str]], label: str) -> Iterator[tuple[str, Any]]:
    """One JSON value per non-blank line; a line that is not one is a :class:`Bad` record."""
    for number, line in numbered:
        if not line.strip():
            continue
        where = f"{label}:{number}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            yield where, Bad(f"is not valid JSON ({exc.msg} at column {exc.colno})")
            continue
        except RecursionError:
            yield where, Bad(_DEEP)
            continue
        problem = _surrogate_problem(record) if "\\u" in line and _has_surrogate_escape(line) else ""
        yield where, Bad(problem) if problem else record


def _has_surrogate_escape(text: str) -> bool:
    return re.search(r"\\u[dD][89a-fA-F]", text) is not None


def _json_records(numbered: Iterator[tuple[int, str]], label: str) -> Iterator[tuple[str, Any]]:
    text = "".join(line for _, line in numbered)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise TextInputError(f"{label}:{exc.lineno}: not valid JSON ({exc.msg} at column {exc.colno}); a .json file "
                             "must hold one JSON array of records (one record per line is .jsonl)") from None
    except RecursionError:
        raise TextInputError(f"{label}: {_DEEP}; flatten its records") from None
    if not isinstance(data, list):
        keys = sorted(data)[:8] if isinstance(data, dict) else type(data).__name__
        raise InputError(f"{label}: a .json file must hold a JSON array of records; this one holds "
                         f"{'an object with keys ' + str(keys) if isinstance(data, dict) else keys}")
    check = _has_surrogate_escape(text)
    for i, record in enumerate(data):
        problem = _surrogate_problem(record) if check else ""
        if problem:
            raise TextInputError(f"{label}:[{i}]: record {problem}; fix the escape")
        yield f"{label}:[{i}]", record


# ----------------------------------------------------------------------------- CSV and TSV
class _Recorded:
    """The lines a ``csv.reader`` takes, kept since the last record so the last one can be checked."""

    def __init__(self, text: IO[str], label: str) -> None:
        self.text, self.label, self.number = text, label, 0
        self.taken: list[str] = []

    def __iter__(self) -> Iterator[str]:
        for line in self.text:
            self.number += 1
            if "\x00" in line:
                raise TextInputError(f"{self.label}:{self.number}: NUL bytes: this is binary data, not CSV; "
                                     f"tokentree reads {READABLE}")
            self.taken.append(line)
            yield line


def _quote_left_open(text: str, delimiter: str) -> bool:
    """True when ``text`` (one record) ends inside a quoted field, read as ``csv`` reads (leniently)."""
    quoted = after_quote = False
    start = True
    for c in text:
        if quoted:
            if c == '"':
                quoted, after_quote = False, True
            continue
        if after_quote and c == '"':  # a doubled quote inside a quoted field
            quoted, after_quote = True, False
            continue
        after_quote = False
        if c == '"' and start:
            quoted = True
        start = c in (delimiter, "\n", "\r")
    return quoted


def csv_records(stream: IO[bytes], label: str, kind: str) -> Iterator[tuple[str, Any]]:
    """Rows as dicts keyed by the header; a row with another number of fields than the header is :class:`Bad`.

    Read as Python's ``csv`` reads (the excel dialect, lenient about stray quotes), except that a
    quote left open at the end of the file, a NUL byte and a ragged row are errors.
    """
    delimiter = "\t" if kind == "tsv" else ","
    wrapper = io.TextIOWrapper(stream, encoding="utf-8-sig", newline="")
    recorded = _Recorded(wrapper, label)
    reader = csv.reader(recorded, delimiter=delimiter)
    csv.field_size_limit(max(csv.field_size_limit(), 2**31 - 1))  # a long response is a response, not an error
    held: tuple[str, Any] | None = None  # the last row, yielded once the next one shows it is not the last
    try:
        header = next(reader, None)
        if header == []:
            raise TextInputError(f"{label}:1: the first line is blank; a {kind.upper()} file's first line is its "
                                 "header (the field names): remove the blank line")
        for row in reader:
            taken, recorded.taken = recorded.taken, []
            if not row:
                continue
            if held is not None:
                yield held
            where = f"{label}:{reader.line_num}"
            if len(row) != len(header or ()):
                held = where, Bad(f"has {len(row)} fields but the header (line 1) has {len(header or ())}; quote "
                                  f"fields that hold a {'tab' if kind == 'tsv' else 'comma'}, or fix the row")
            else:
                held = where, dict(zip(header or (), row, strict=True))
            last, last_start = taken, reader.line_num - len(taken) + 1
        if held is not None:
            if _quote_left_open("".join(last), delimiter):
                raise TextInputError(f"{label}:{last_start}: a quoted field opened on this line is never closed, so "
                                     "the rest of the file would be one field; close the quote (a quote inside a "
                                     'quoted field is written "")')
            yield held
    except UnicodeDecodeError as exc:
        raise TextInputError(f"{label}:{reader.line_num + 1}: invalid UTF-8 at byte {exc.start}; {_FIX_UTF8}") from None
    except csv.Error as exc:
        raise TextInputError(f"{label}:{reader.line_num}: not valid {kind.upper()} ({exc})") from None
    finally:
        wrapper.detach()


# ----------------------------------------------------------------------------- Parquet, Arrow, datasets
def _unreadable(label: str, what: str, exc: Exception) -> InputError:
    reason = " ".join(str(exc).split())[:160]
    return InputError(f"{label}: not a readable {what} file ({reason}); it may be truncated, empty or still being "
                      "written: copy or export it again")


def _ipc_batches(pa: Any, path: Any, label: str, columns: Sequence[str] | None) -> Iterator[Any]:
    try:
        mapped = pa.memory_map(str(path), "r")
    except (OSError, pa.ArrowException) as exc:
        raise _unreadable(label, "Arrow", exc) from None
    with mapped:
        try:
            reader = pa.ipc.open_file(mapped)
            batches: Iterator[Any] = (reader.get_batch(i) for i in range(reader.num_record_batches))
        except pa.ArrowInvalid:
            mapped.seek(0)
            try:
                batches = iter(pa.ipc.open_stream(mapped))
            except pa.ArrowException as exc:
                raise _unreadable(label, "Arrow", exc) from None
        while True:
            try:
                batch = next(batches, None)
            except pa.ArrowException as exc:
                raise _unreadable(label, "Arrow", exc) from None
            if batch is None:
                return
            keep = None if columns is None else [c for c in columns if c in batch.schema.names]
            yield batch.select(keep) if keep else batch


def arrow_batches(source: Source, columns: Sequence[str] | None) -> Iterator[Any]:
    """Record batches of a Parquet, Arrow or datasets source, with only ``columns`` that exist (all if None)."""
    pa = optional("pyarrow", f"{source.format} files")
    if source.format == "parquet":
        import pyarrow.parquet as pq

        try:
            parquet = pq.ParquetFile(source.path)
            keep = None if columns is None else [c for c in columns if c in parquet.schema_arrow.names] or None
            batches = parquet.iter_batches(batch_size=_READ_BATCH, columns=keep)
            while True:
                batch = next(batches, None)
                if batch is None:
                    return
                yield batch
        except (OSError, pa.ArrowException) as exc:
            raise _unreadable(source.label, "Parquet", exc) from None
    files = datasets_files(source) if source.format == "datasets" else [source.path]
    for path in files:
        yield from _ipc_batches(pa, path, source.label if source.format != "datasets" else str(path), columns)


def batch_records(batch: Any, label: str, row: int) -> Iterator[tuple[str, Any]]:
    """The rows of one record batch as dicts; ``row`` rows of the source came before it."""
    try:
        records = batch.to_pylist()
    except UnicodeDecodeError as exc:
        raise TextInputError(f"{label}: invalid UTF-8 in a string column (rows {row + 1}-{row + batch.num_rows}, "
                             f"{exc.reason}); write the strings as UTF-8") from None
    for i, record in enumerate(records, row + 1):
        yield f"{label}:row {i}", record


# ----------------------------------------------------------------------------- every format
def records_of_stream(stream: IO[bytes] | Iterable[bytes], label: str, kind: str, split: str,
                      first: int = 1) -> Iterator[tuple[str, Any]]:
    """``(where, record or Bad)`` of a text-like stream whose first line is line ``first``."""
    if kind == "text":
        yield from _text_records(lines(stream, label, first), label, split)
    elif kind == "jsonl":
        yield from jsonl_records(lines(stream, label, first), label)
    elif kind == "json":
        yield from _json_records(lines(stream, label, first), label)
    else:  # csv, tsv
        yield from csv_records(stream, label, kind)  # type: ignore[arg-type]


def source_records(source: Source, kind: str, split: str, columns: Sequence[str] | None) -> Iterator[tuple[str, Any]]:
    """``(where, record or Bad)`` of one source, whole."""
    if kind in BINARY_FORMATS:
        if source.path is None:
            raise InputError(f"{kind} cannot be read from standard input; give the file")
        row = 0
        for batch in arrow_batches(source, columns):
            yield from batch_records(batch, source.label, row)
            row += batch.num_rows
        return
    stream = open_bytes(source)
    try:
        yield from records_of_stream(stream, source.label, kind, split)
    finally:
        if source.path is not None:
            stream.close()
