"""The column path: a top-level text field read as an Arrow column, with the record path as its fallback.

When the response is a top-level field (``--field text``, no chat) of a Parquet, Arrow,
``datasets``, JSONL or CSV/TSV file, its strings come straight from Arrow arrays: record
batches for the columnar formats, ``pyarrow.json`` and ``pyarrow.csv`` for the text ones.
Blank and null cells are dropped and counted: a vectorised look at each string's first
byte clears almost every row, and Python's ``str.strip`` decides the few others.

The column path gives the same responses, in the same order, as the record path of
:mod:`tokentree.data.records`, and never an error of its own: any part of a file it cannot
vouch for (a column that is not all strings, nulls in JSONL, where a null and a missing
key look alike, a line pyarrow would read but Python's ``json`` would not, NUL bytes,
invalid UTF-8, a ragged CSV row) is read by the record path instead, which names the
file and line of what is wrong. The one difference: a JSONL record nested more than
about 1,000 levels deep *outside* the text field is read here (pyarrow has no such limit)
but refused by the record path (Python's ``json`` has).

Generators here yield either a list of responses (strings) or a ``(where, record)`` pair
of the record path.
"""

from __future__ import annotations

import codecs
import io
import mmap
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from tokentree.data.formats import Source, open_bytes, optional, sniff
from tokentree.data.records import ReadStats, arrow_batches, batch_records, csv_records, jsonl_records, lines

__all__ = ["COLUMN_FORMATS", "column_responses"]

COLUMN_FORMATS = ("parquet", "arrow", "datasets", "jsonl", "csv", "tsv")
_CHUNK = 8 << 20
_CSV_BLOCK = 1 << 20
_OPEN, _CLOSE, _NL, _CR = ord("{"), ord("}"), ord("\n"), ord("\r")
_SENTINEL = "\x01"


class _Unvouched(Exception):
    """The column path cannot vouch for these bytes; the record path reads them."""


def _blank_candidates(chunk: Any) -> np.ndarray:
    """Rows of a string array that may be blank: null, empty, or starting with a byte that may begin whitespace.

    Any other row starts with a printable ASCII character (``!`` to DEL), which no
    whitespace does, so it is certainly a response; only the candidates go to Python's
    ``str.strip``, which decides exactly as the record path does.
    """
    import pyarrow as pa

    n = len(chunk)
    wide: Any = np.int64 if pa.types.is_large_string(chunk.type) else np.int32
    _, offsets_buffer, data_buffer = chunk.buffers()
    skip = chunk.offset * np.dtype(wide).itemsize
    offsets: np.ndarray = np.frombuffer(offsets_buffer, dtype=wide, count=n + 1, offset=skip)
    data = np.frombuffer(data_buffer, dtype=np.uint8) if data_buffer is not None else np.zeros(0, np.uint8)
    starts = offsets[:-1]
    filled = offsets[1:] > starts
    first = np.zeros(n, dtype=np.uint8)
    first[filled] = data[starts[filled]]
    certain = filled & (first > 0x20) & (first < 0x80)
    if chunk.null_count:
        certain &= chunk.is_valid().to_numpy(zero_copy_only=False)
    return np.flatnonzero(~certain)


def _nonblank(column: Any, stats: ReadStats) -> list[str] | None:
    """The non-blank strings of an Arrow string column (None: not a string column); nulls and blanks counted."""
    import pyarrow as pa

    kind = column.type
    if pa.types.is_dictionary(kind) and (pa.types.is_string(kind.value_type) or pa.types.is_large_string(
            kind.value_type)):
        column, kind = column.dictionary_decode(), kind.value_type
    if pa.types.is_null(kind):
        stats.nulls += len(column)
        return []
    if not (pa.types.is_string(kind) or pa.types.is_large_string(kind)):
        return None
    chunks = column.chunks if isinstance(column, pa.ChunkedArray) else [column]
    out: list[str] = []
    try:
        for chunk in chunks:
            texts = chunk.to_pylist()
            maybe = _blank_candidates(chunk)
            if maybe.shape[0]:
                drop = {i for i in maybe.tolist() if texts[i] is None or not texts[i].strip()}
                nulls = sum(texts[i] is None for i in drop)
                stats.nulls += nulls
                stats.empty += len(drop) - nulls
                if drop:
                    texts = [t for i, t in enumerate(texts) if i not in drop]
            out += texts
    except UnicodeDecodeError:
        return None  # invalid UTF-8 in a Parquet string column: the record path names the rows
    return out


# ----------------------------------------------------------------------------- Parquet, Arrow, datasets
def _arrow_responses(source: Source, field: str, stats: ReadStats) -> Iterator[Any]:
    row = 0
    for batch in arrow_batches(source, [field]):
        texts = _nonblank(batch.column(field), stats) if field in batch.schema.names else None
        if texts is None:
            yield from batch_records(batch, source.label, row)
        elif texts:
            yield texts
        row += batch.num_rows


# ----------------------------------------------------------------------------- JSONL
def _valid_utf8(pa: Any, data: Any) -> bool:
    offsets = np.array([0, len(data)], dtype=np.int64)
    binary = pa.Array.from_buffers(pa.large_binary(), 1, [None, pa.py_buffer(offsets), pa.py_buffer(data)])
    try:
        binary.cast(pa.large_string())
    except pa.ArrowInvalid:
        return False
    return True


def _one_object_per_line(data: Any) -> int:
    """Every line is one ``{...}``: each newline has ``}`` (or ``}\\r``) before it and ``{`` after it.

    Inside a JSON value a ``}`` is never followed by ``{`` (a comma comes between), and a raw
    newline is never inside a string, so when pyarrow then counts as many rows as there are
    lines, each line held exactly one object, as the record path reads them. Returns the
    number of lines, 0 when the layout is not that.
    """
    a = np.frombuffer(data, dtype=np.uint8)
    if a.shape[0] < 2 or a[0] != _OPEN:
        return 0
    at = np.flatnonzero(a == _NL)
    body_end = at[-1] if at.shape[0] and at[-1] == a.shape[0] - 1 else a.shape[0]
    last = a[body_end - 1] if a[body_end - 1] != _CR else a[body_end - 2]
    if last != _CLOSE:
        return 0
    before = a[at - 1]
    crlf = before == _CR
    before[crlf] = a[at[crlf] - 2]
    after = a[np.minimum(at + 1, a.shape[0] - 1)]
    inner = at < a.shape[0] - 1
    if not ((before == _CLOSE).all() and (after[inner] == _OPEN).all()):
        return 0
    return int(at.shape[0] + (body_end == a.shape[0]))


@dataclass(frozen=True)
class _Span:
    """Whole lines ``buffer[start:end]`` of a JSONL file: bytes, or the file's memory map (never copied)."""

    buffer: Any
    start: int
    end: int

    def has(self, sub: bytes) -> bool:
        return bool(self.buffer.find(sub, self.start, self.end) >= 0)

    def view(self) -> memoryview:
        return memoryview(self.buffer)[self.start : self.end]

    def lone_cr(self) -> int:
        """Carriage returns not followed by a newline (each ends a line in the record path)."""
        if not self.has(b"\r"):
            return 0
        a = np.frombuffer(self.view(), dtype=np.uint8)
        cr = a == _CR
        return int(np.count_nonzero(cr)) - int(np.count_nonzero(cr[:-1] & (a[1:] == _NL)))

    def lines(self) -> int:
        """Lines as the record path numbers them."""
        return int(np.count_nonzero(np.frombuffer(self.view(), dtype=np.uint8) == _NL)) + self.lone_cr()


def _jsonl_chunk(span: _Span, field: str, stats: ReadStats) -> list[str] | None:
    """The responses of whole JSONL lines, or None if the record path must read them."""
    pa = optional("pyarrow", "JSONL quickly")
    import pyarrow.json as pj

    if span.has(b"\x00") or span.lone_cr():
        return None
    data = span.view()
    rows = _one_object_per_line(data)
    if not rows or not _valid_utf8(pa, data):
        return None
    options = pj.ParseOptions(explicit_schema=pa.schema([(field, pa.string())]), unexpected_field_behavior="ignore")
    try:
        table = pj.read_json(pa.BufferReader(pa.py_buffer(data)), parse_options=options)
    except pa.ArrowException:
        return None
    column = table.column(field)
    if table.num_rows != rows or column.null_count:  # a null and a missing key look alike here
        return None
    return _nonblank(column, stats)


def _spans(source: Source, stream: Any) -> Iterator[_Span]:
    """The file in spans of whole lines, about ``_CHUNK`` bytes each; a plain file is memory-mapped."""
    if source.compression is None and source.path is not None:
        size = os.fstat(stream.fileno()).st_size
        if size == 0:
            return
        mapped = mmap.mmap(stream.fileno(), 0, access=mmap.ACCESS_READ)
        start = 0
        while start < size:
            end = min(start + _CHUNK, size)
            if end < size:
                cut = mapped.rfind(b"\n", start, end) + 1 or mapped.find(b"\n", end) + 1 or size
                end = max(cut, start + 1)
            yield _Span(mapped, start, end)
            start = end
        return
    carry = b""
    while True:
        block = stream.read(_CHUNK)
        data = carry + block if carry else block
        cut = data.rfind(b"\n") + 1 if block else len(data)
        if cut:
            yield _Span(data, 0, cut)
        carry = data[cut:]
        if not block:
            return


def _jsonl_responses(source: Source, field: str, stats: ReadStats, stream: Any) -> Iterator[Any]:
    line = 1
    for i, span in enumerate(_spans(source, stream)):
        texts = None
        if i:
            texts = _jsonl_chunk(span, field, stats)
        elif sniff(span.view()[:16].tobytes()) is None:
            bom = 3 if span.view()[:3].tobytes() == b"\xef\xbb\xbf" else 0
            texts = _jsonl_chunk(_Span(span.buffer, span.start + bom, span.end), field, stats)
        if texts is None:
            numbered = lines(io.BytesIO(span.view().tobytes()), source.label, line)
            yield from jsonl_records(numbered, source.label)
        elif texts:
            yield texts
        line += span.lines()


# ----------------------------------------------------------------------------- CSV and TSV
class _CsvBytes(io.RawIOBase):
    """The bytes of a CSV file, then a sentinel record; NUL bytes or invalid UTF-8 stop the column path."""

    def __init__(self, head: bytes, stream: Any, sentinel: bytes) -> None:
        self._head, self._stream, self._sentinel = head, stream, sentinel
        self._decoder = codecs.getincrementaldecoder("utf-8")()

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        if self._head:
            data, self._head = self._head, b""
        else:
            data = self._stream.read(size if size > 0 else _CHUNK)
        if not data:
            data, self._sentinel = self._sentinel, b""
            return data
        if b"\x00" in data:
            raise _Unvouched("NUL")
        try:
            self._decoder.decode(data)
        except UnicodeDecodeError:
            raise _Unvouched("UTF-8") from None
        return data

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def _csv_header(head: bytes, complete: bool, delimiter: str) -> list[str] | None:
    """The header row in the first bytes of a file, if they hold all of it."""
    import csv

    try:
        text = codecs.getincrementaldecoder("utf-8-sig")().decode(head)
    except UnicodeDecodeError:
        return None
    rest = io.StringIO(text, newline="")
    try:
        header = next(csv.reader(rest, delimiter=delimiter), None)
    except csv.Error:
        return None
    if header is None or (not complete and rest.tell() >= len(text)):
        return None
    return header


def _csv_fast(source: Source, field: str, kind: str, stats: ReadStats, stream: Any, done: list[int]) -> Iterator[Any]:
    """Responses read by ``pyarrow.csv``; raises :class:`_Unvouched` where the record path must take over.

    ``done[0]`` counts the rows already yielded, so the record path can resume after them. A
    sentinel record appended to the file shows that the last quoted field was closed (an
    unclosed one swallows it).
    """
    pa = optional("pyarrow", "CSV quickly")
    import pyarrow.csv as pcsv

    delimiter = "\t" if kind == "tsv" else ","
    head = stream.read(1 << 20)
    header = _csv_header(head, len(head) < (1 << 20), delimiter)
    if not header or len(set(header)) != len(header) or field not in header or sniff(head[:16]) is not None:
        raise _Unvouched("header")
    last = header[-1]
    wanted = [field] if last == field else [field, last]
    sentinel = ("\n" + delimiter.join([_SENTINEL] * len(header)) + "\n").encode()
    options = pcsv.ConvertOptions(include_columns=wanted, column_types={c: pa.string() for c in wanted},
                                  strings_can_be_null=False, quoted_strings_can_be_null=False)
    parse = pcsv.ParseOptions(delimiter=delimiter, newlines_in_values=True)
    try:
        reader = pcsv.open_csv(_CsvBytes(head, stream, sentinel), parse_options=parse, convert_options=options,
                               read_options=pcsv.ReadOptions(block_size=_CSV_BLOCK))
        held = None
        for batch in reader:
            if held is not None:
                texts = _nonblank(held.column(field), stats)
                done[0] += held.num_rows
                if texts:
                    yield texts
            held = batch
    except pa.ArrowException as exc:
        raise _Unvouched(str(exc)) from None
    if held is None or held.num_rows == 0:
        raise _Unvouched("no sentinel")
    end = held.slice(held.num_rows - 1)
    if any(end.column(c)[0].as_py() != _SENTINEL for c in wanted):
        raise _Unvouched("a quote left open")
    texts = _nonblank(held.slice(0, held.num_rows - 1).column(field), stats)
    done[0] += held.num_rows - 1
    if texts:
        yield texts


def _csv_responses(source: Source, field: str, kind: str, stats: ReadStats) -> Iterator[Any]:
    done = [0]  # rows read (and counted in stats) before the record path takes over
    stream = open_bytes(source)
    try:
        yield from _csv_fast(source, field, kind, stats, stream, done)
        return
    except _Unvouched:
        pass
    finally:
        stream.close()
    stream = open_bytes(source)
    try:
        for i, item in enumerate(csv_records(stream, source.label, kind)):
            if i >= done[0]:
                yield item
    finally:
        stream.close()


# ----------------------------------------------------------------------------- every format
def column_responses(source: Source, field: str, stats: ReadStats) -> Iterator[Any]:
    """Lists of responses (and record-path ``(where, record)`` pairs) of a source's top-level ``field``."""
    if source.format in ("parquet", "arrow", "datasets"):
        yield from _arrow_responses(source, field, stats)
    elif source.format == "jsonl":
        stream = open_bytes(source)
        try:
            yield from _jsonl_responses(source, field, stats, stream)
        finally:
            stream.close()
    else:
        yield from _csv_responses(source, field, source.format, stats)
