"""The column path (tokentree.data.columnar) gives the record path's responses, counts and errors, file for file.

Each file of the battery is read twice, once with the column path and once with it switched
off, with small chunks so that chunk boundaries and a fallback in the middle of a file are
exercised; the responses, the counts in ReadStats and the error (type and message) must be
identical.
"""

from __future__ import annotations

import gzip
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tokentree.data import columnar, readers
from tokentree.data.readers import ReadStats
from tokentree.data.text import read_responses

_EMOJI = json.dumps({"text": "smile \U0001f600 and é"})  # ensure_ascii: a surrogate pair escape
JSONL = {
    "plain": "".join(json.dumps({"id": i, "text": f"response {i}", "m": {"a": [i]}}) + "\n" for i in range(40)),
    "blank lines": '{"text": "a"}\n\n   \n{"text": "b"}\n',
    "crlf": '{"text": "a"}\r\n{"text": "b"}\r\n',
    "cr only": '{"text": "a"}\r{"text": "b"}\r{"text": 3}\r',
    "no final newline": '{"text": "a"}\n{"text": "b"}',
    "bom": '\ufeff{"text": "a"}\n{"text": "b"}\n',
    "blank text": '{"text": "  "}\n{"text": ""}\n{"text": "\\u00a0\\u2003"}\n{"text": "x"}\n',
    "null text": '{"text": "a"}\n{"text": null}\n{"text": "b"}\n',
    "missing field": '{"text": "a"}\n{"other": 1}\n',
    "number": '{"text": "a"}\n{"text": 3}\n{"text": "c"}\n',
    "list": '{"text": ["a"]}\n',
    "bad json": '{"text": "a"}\nnot json\n{"text": "c"}\n',
    "two per line": '{"text": "a"} {"text": "b"}\n',
    "across lines": '{"text":\n"a"}\n',
    "duplicate key": '{"text": "a", "text": "b"}\n',
    "surrogate pair": _EMOJI + "\n" + _EMOJI + "\n",
    "lone surrogate": '{"text": "a"}\n{"text": "x\\ud800y"}\n',
    "lone surrogate elsewhere": '{"text": "a", "o": "\\udc00"}\n',
    "nan elsewhere": '{"text": "a", "n": NaN}\n',
    "bare string": '"just text"\n',
    "leading space": ' {"text": "a"}\n',
    "trailing space": '{"text": "a"} \n{"text": "b"}\n',
    "escaped nul": '{"text": "a\\u0000b"}\n',
    "unicode space texts": '{"text": "\\u2028"}\n{"text": "\\u0085"}\n{"text": "\\u200b"}\n',
    "empty": "",
}
JSONL_BYTES = {
    "invalid utf-8 elsewhere": b'{"text": "a", "o": "\xff"}\n',
    "invalid utf-8 in text": b'{"text": "a\xff"}\n',
    "nul": b'{"text": "a"}\n{"text": "b"}\x00\n',
    "binary": b"PK\x03\x04" + b"x" * 40,
}
CSV = {
    "plain": "id,text,label\n" + "".join(f"{i},response {i},{i % 2}\n" for i in range(40)),
    "quoted": 'text,label\n"a, b",1\n"say ""hi""",2\n"two\nlines",3\n',
    "quote in field": 'text,label\na"b,1\n"abc"def,2\n',
    "blank lines": "text,label\n\na,1\n\n\nb,2\n",
    "crlf": "text,label\r\na,1\r\nb,2\r\n",
    "cr only": "text,label\ra,1\rb,2\r",
    "bom": "\ufefftext,label\na,1\n",
    "empty cells": "text,label\n,1\n  ,2\nb,3\n",
    "ragged long": "text,label\na,1\nb,2,3\nc,4\n",
    "ragged short": "text,label\na,1\nb\nc,4\n",
    "unclosed": 'text,label\na,1\n"b,2\nc,3\n',
    "unclosed last column": 'label,text\n1,a\n2,"b\n3,c\n',
    "unclosed one column": 'text\na\n"b\nc\n',
    "closed at end": 'label,text\n1,a\n2,"b\nc"\n',
    "text last": "label,text\n1,a\n2,b\n",
    "duplicate header": "text,text\na,b\n",
    "missing column": "other\na\n",
    "blank first line": "\ntext,label\na,1\n",
    "header only": "text,label\n",
    "no final newline": "text,label\na,1",
    "null-like": "text,label\nNULL,1\nNA,2\nnan,3\n",
    "empty": "",
    "nul": "text,label\na\x00b,1\n",
}


def _outcome(path, monkeypatch, *, column_path, **options):
    monkeypatch.setattr(readers, "COLUMN_FORMATS", columnar.COLUMN_FORMATS if column_path else ())
    monkeypatch.setattr(columnar, "_CHUNK", 64)  # many chunks: boundaries and fallbacks mid-file
    monkeypatch.setattr(columnar, "_CSV_BLOCK", 256)
    stats = ReadStats()
    try:
        texts = list(read_responses([path], stats=stats, **options))
    except Exception as exc:  # the error itself is the outcome compared
        return type(exc).__name__, str(exc)
    return texts, stats.responses, stats.nulls, stats.empty, stats.skipped, stats.skipped_at


def _both(path, monkeypatch, **options):
    fast = _outcome(path, monkeypatch, column_path=True, **options)
    slow = _outcome(path, monkeypatch, column_path=False, **options)
    return fast, slow


@pytest.mark.parametrize("skip", [False, True])
@pytest.mark.parametrize("compression", ["", ".gz"])
@pytest.mark.parametrize("name", sorted(JSONL) + sorted(JSONL_BYTES))
def test_jsonl_column_path_matches_the_record_path(tmp_path, monkeypatch, name, compression, skip):
    data = JSONL[name].encode() if name in JSONL else JSONL_BYTES[name]
    path = tmp_path / f"d.jsonl{compression}"
    path.write_bytes(gzip.compress(data) if compression else data)
    if compression and name == "plain":  # and a truncated one: the same error either way
        truncated = tmp_path / f"cut.jsonl{compression}"
        truncated.write_bytes(path.read_bytes()[:-40])
        fast, slow = _both(truncated, monkeypatch, skip_bad_lines=skip)
        assert fast == slow and "cannot be decompressed as gzip" in fast[1]
    fast, slow = _both(path, monkeypatch, skip_bad_lines=skip)
    assert fast == slow


@pytest.mark.parametrize("skip", [False, True])
@pytest.mark.parametrize("kind", ["csv", "tsv", "csv.gz"])
@pytest.mark.parametrize("name", sorted(CSV))
def test_csv_column_path_matches_the_record_path(tmp_path, monkeypatch, name, kind, skip):
    text = CSV[name] if kind != "tsv" else CSV[name].replace(",", "\t")
    path = tmp_path / f"d.{kind}"
    path.write_bytes(gzip.compress(text.encode()) if kind.endswith(".gz") else text.encode())
    fast, slow = _both(path, monkeypatch, skip_bad_lines=skip)
    assert fast == slow


def test_csv_column_path_resumes_after_the_rows_it_read(tmp_path, monkeypatch):
    """A ragged row deep in a file read by pyarrow in several blocks: the record path resumes, same outcome."""
    rows = "".join(f"response {i},{i}\n" for i in range(3000))
    path = tmp_path / "late.csv"
    path.write_text("text,label\n" + rows + "bad,row,here\n" + rows)
    monkeypatch.setattr(columnar, "_CSV_BLOCK", 4096)  # pyarrow's blocks: the bad row is far from the first
    stats = ReadStats()
    texts = list(read_responses([path], stats=stats, skip_bad_lines=True))
    assert texts == [f"response {i}" for i in range(3000)] * 2
    assert stats.skipped_at == [f"{path}:3002"]
    fast, slow = _both(path, monkeypatch, skip_bad_lines=False)
    assert fast == slow and "3002: line has 3 fields" in fast[1]


@pytest.mark.parametrize("kind", ["parquet", "arrow", "datasets"])
def test_arrow_column_path_matches_the_record_path(tmp_path, monkeypatch, kind):
    import pyarrow as pa
    import pyarrow.parquet as pq

    texts = ["a", None, " ", "", "b\u2003", "\u3000", "c", None]
    tables = {
        "strings": pa.table({"text": texts, "n": list(range(8))}),
        "dictionary": pa.table({"text": pa.array(texts).dictionary_encode()}),
        "large": pa.table({"text": pa.array(texts, pa.large_string())}),
        "nulls": pa.table({"text": pa.nulls(3, pa.null())}),
        "ints": pa.table({"text": [1, 2]}),
        "missing": pa.table({"other": ["a"]}),
        "lists": pa.table({"text": [["a"], ["b"]]}),
    }
    for name, table in tables.items():
        path = tmp_path / f"{name}.{kind}"
        if kind == "parquet":
            pq.write_table(table, path, row_group_size=3)
        elif kind == "arrow":
            with pa.ipc.new_file(str(path), table.schema) as writer:
                writer.write_table(table, max_chunksize=3)
        else:
            import datasets

            datasets.disable_progress_bars()
            datasets.Dataset(table).save_to_disk(str(path))
        fast, slow = _both(path, monkeypatch, skip_bad_lines=True)
        assert fast == slow, name
        if name == "strings":
            assert fast[:4] == (["a", "b\u2003", "c"], 3, 2, 3)


_SPACES = "".join(c for c in map(chr, range(0x110000)) if c.isspace())


@settings(max_examples=200, deadline=None, derandomize=True)
@given(texts=st.lists(st.none() | st.text(alphabet=st.sampled_from(_SPACES + "a!~\x7f\x00é\u200b\U0001f600"),
                                           max_size=4), max_size=30),
       large=st.booleans(), cut=st.integers(0, 3))
def test_the_blank_filter_is_python_strip(texts, large, cut):
    """Every whitespace character Python knows (str.isspace), at any position, in plain and sliced arrays."""
    import pyarrow as pa

    array = pa.array(texts, pa.large_string() if large else pa.string()).slice(min(cut, len(texts)))
    kept = texts[min(cut, len(texts)):]
    stats = ReadStats()
    assert columnar._nonblank(array, stats) == [t for t in kept if t is not None and t.strip()]
    assert stats.nulls == sum(t is None for t in kept)
    assert stats.empty == sum(t is not None and not t.strip() for t in kept)


def test_column_path_is_taken(tmp_path, monkeypatch):
    """The fast path really runs for a plain JSONL and CSV (the equality above is not two record paths)."""
    seen = []
    real = columnar._nonblank

    def spy(column, stats):
        seen.append(len(column))
        return real(column, stats)

    monkeypatch.setattr(columnar, "_nonblank", spy)
    for name, text in (("d.jsonl", JSONL["plain"]), ("d.csv", CSV["plain"])):
        (tmp_path / name).write_text(text)
        assert len(list(read_responses([tmp_path / name]))) == 40
    assert sum(seen) == 80
