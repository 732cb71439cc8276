"""Every dataset format in: the same records written in each format read back as the same responses and trees."""

from __future__ import annotations

import builtins
import csv
import gzip
import json
import subprocess
import sys

import numpy as np
import pytest

from tokentree.data.readers import Example, ReadStats, detect_format, read_examples, read_records
from tokentree.data.text import read_responses
from tokentree.infra.errors import InputError, TextInputError

RECORDS = [
    {"id": i, "text": text, "label": i % 2, "meta": {"answer": text.upper()}}
    for i, text in enumerate([
        "the cat sat on the mat", "a dog, barking \"loudly\"", "tab\tinside", "emoji ✓ and ünïcode",
        "line one", "the cat sat again", "short", "the end of the list",
    ])
]
TEXTS = [r["text"] for r in RECORDS]


def _flat(record):
    return {"id": record["id"], "text": record["text"], "label": record["label"]}


def _write(folder, kind):
    """The records in one format; returns the path."""
    import pyarrow as pa
    import pyarrow.feather as feather
    import pyarrow.parquet as pq

    table = pa.Table.from_pylist(RECORDS)
    jsonl = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in RECORDS)
    path = folder / {"jsonl": "d.jsonl", "jsonl.gz": "d.jsonl.gz", "jsonl.zst": "d.jsonl.zst", "json": "d.json",
                     "csv": "d.csv", "tsv": "d.tsv", "parquet": "d.parquet", "arrow-file": "d.arrow",
                     "arrow-stream": "s.arrow", "feather": "d.feather", "datasets": "ds"}[kind]
    if kind == "jsonl":
        path.write_text(jsonl, encoding="utf-8")
    elif kind == "jsonl.gz":
        path.write_bytes(gzip.compress(jsonl.encode()))
    elif kind == "jsonl.zst":
        import zstandard

        path.write_bytes(zstandard.ZstdCompressor().compress(jsonl.encode()))
    elif kind == "json":
        path.write_text(json.dumps(RECORDS, ensure_ascii=False, indent=1), encoding="utf-8")
    elif kind in ("csv", "tsv"):
        with open(path, "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=["id", "text", "label"], delimiter="," if kind == "csv" else "\t")
            writer.writeheader()
            writer.writerows(_flat(r) for r in RECORDS)
    elif kind == "parquet":
        pq.write_table(table, path, row_group_size=3)  # several row groups
    elif kind == "arrow-file":
        with pa.ipc.new_file(str(path), table.schema) as writer:
            writer.write_table(table, max_chunksize=3)
    elif kind == "arrow-stream":
        with pa.ipc.new_stream(str(path), table.schema) as writer:
            writer.write_table(table, max_chunksize=3)
    elif kind == "feather":
        feather.write_feather(table, path)
    else:
        import datasets

        datasets.disable_progress_bars()
        datasets.Dataset.from_list(RECORDS).save_to_disk(str(path), num_shards=2)
    return path


KINDS = ["jsonl", "jsonl.gz", "jsonl.zst", "json", "csv", "tsv", "parquet", "arrow-file", "arrow-stream", "feather",
         "datasets"]


@pytest.mark.parametrize("kind", KINDS)
def test_every_format_reads_the_same_responses(tmp_path, kind):
    path = _write(tmp_path, kind)
    assert list(read_responses([path])) == TEXTS
    ids = list(read_responses([path], field="id")) if kind in ("csv", "tsv") else []  # CSV cells are text
    assert ids == ([str(i) for i in range(len(TEXTS))] if kind in ("csv", "tsv") else [])
    if kind not in ("csv", "tsv"):  # nested records: a dotted path
        assert list(read_responses([path], field="meta.answer")) == [t.upper() for t in TEXTS]


def test_every_format_builds_the_same_tree(tmp_path):
    from tokentree.cli import main
    from tokentree.trees.storage import load_tree

    trees = {}
    for kind in KINDS:
        path = _write(tmp_path, kind)
        out = tmp_path / f"{kind}.npz"
        assert main(["build", str(path), "--depth", "3", "--mode", "window", "-o", str(out)]) == 0
        trees[kind] = load_tree(out)
    first = trees["jsonl"]
    for kind, tree in trees.items():
        assert tree.n_nodes == first.n_nodes, kind
        assert np.array_equal(tree.counts, first.counts) and np.array_equal(tree.tokens, first.tokens), kind


def test_standard_input_is_read_and_sniffed(tmp_path):
    jsonl = "".join(json.dumps(r) + "\n" for r in RECORDS)
    for given, extra in ((jsonl, []), (json.dumps(RECORDS), []), ("\n".join(TEXTS) + "\n", []),
                         (jsonl, ["--format", "jsonl"])):
        out = tmp_path / "stdin.npz"
        proc = subprocess.run(
            [sys.executable, "-m", "tokentree", "build", "-", "--depth", "2", "-o", str(out), *extra],
            input=given, capture_output=True, text=True, check=False,
        )
        assert proc.returncode == 0, proc.stderr
        assert "8 responses" in proc.stdout, proc.stdout
        out.unlink()


def test_chat_conversations_keep_the_prompt_as_context(tmp_path):
    chats = [
        {"messages": [{"role": "system", "content": "be kind"}, {"role": "user", "content": "hi"},
                      {"role": "assistant", "content": "hello"}, {"role": "user", "content": "and?"},
                      {"role": "assistant", "content": "that is all"}]},
        {"prompt": "2+2?", "response": "4"},
    ]
    path = tmp_path / "chats.jsonl"
    path.write_text("".join(json.dumps(c) + "\n" for c in chats))
    every = list(read_examples([path], chat="assistant"))
    assert [e.response for e in every] == ["hello", "that is all", "4"]
    assert every[1].context == tuple(chats[0]["messages"][:4])
    assert every[2].context == ({"role": "user", "content": "2+2?"},)
    last = list(read_examples([path], chat="last-assistant"))
    assert [e.response for e in last] == ["that is all", "4"]
    # without --chat a conversation is not silently flattened
    with pytest.raises(InputError, match="--chat assistant"):
        list(read_examples([path], field="messages"))
    # the same conversations from Parquet
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist([{"messages": chats[0]["messages"]}]), tmp_path / "chats.parquet")
    assert list(read_examples([tmp_path / "chats.parquet"], chat="assistant")) == every[:2]
    assert isinstance(every[0], Example)


@pytest.mark.parametrize(("make", "options", "message"), [
    (lambda p: (p.write_text("a\nb\n"), p)[1], {"field": "text"}, "--field applies to records"),
    (lambda p: (p.write_text("a\nb\n"), p)[1], {"chat": "assistant"}, "--chat applies to records"),
    (lambda p: (p.with_suffix(".jsonl").write_text('{"text": "a"}\n'), p.with_suffix(".jsonl"))[1],
     {"split": "paragraph"}, "split applies to plain text only"),
    (lambda p: (p.with_suffix(".json").write_text('{"data": [1]}'), p.with_suffix(".json"))[1], {},
     "must hold a JSON array of records"),
    (lambda p: (p.with_suffix(".jsonl").write_text('{"meta": {"x": 1}}\n'), p.with_suffix(".jsonl"))[1],
     {"field": "meta.answer"}, r"has no field 'answer' \(in 'meta.answer'\); it has \['x'\]"),
    (lambda p: (p.with_suffix(".bin").write_bytes(b"PK\x03\x04rest"), p.with_suffix(".bin"))[1], {},
     "a zip archive, which is not a format tokentree reads; it reads text, JSONL"),
    (lambda p: (p.with_suffix(".bin").write_bytes(b"\x00\x01\x02\x03" * 8), p.with_suffix(".bin"))[1], {},
     r"binary data, which is not a format .* --ids"),
    (lambda p: (p.with_suffix(".parquet.gz").write_bytes(b"x"), p.with_suffix(".parquet.gz"))[1], {},
     "compresses internally, decompress it first"),
    (lambda p: (p.with_suffix(".jsonl.gz").write_bytes(b"not gzip at all"), p.with_suffix(".jsonl.gz"))[1], {},
     "cannot be decompressed"),
])
def test_bad_input_is_refused_with_the_problem_and_the_fix(tmp_path, make, options, message):
    path = make(tmp_path / "data.txt")
    with pytest.raises((InputError, TextInputError), match=message):
        list(read_examples([path], **options))


def test_a_datasetdict_folder_names_its_splits(tmp_path):
    import datasets

    datasets.disable_progress_bars()
    datasets.DatasetDict({"train": datasets.Dataset.from_list(RECORDS[:4]),
                          "test": datasets.Dataset.from_list(RECORDS[4:])}).save_to_disk(str(tmp_path / "dd"))
    with pytest.raises(InputError, match=r"DatasetDict with splits \['test', 'train'\]; give one split's folder"):
        list(read_responses([tmp_path / "dd"]))
    assert list(read_responses([tmp_path / "dd" / "test"])) == TEXTS[4:]
    assert detect_format(tmp_path / "dd" / "train") == "datasets"


def test_missing_optional_readers_name_the_extra(tmp_path, monkeypatch):
    path = _write(tmp_path, "parquet")
    real_import = builtins.__import__

    def no_pyarrow(name, *args, **kwargs):
        if name.startswith("pyarrow"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_pyarrow)
    monkeypatch.delitem(sys.modules, "pyarrow", raising=False)
    with pytest.raises(InputError, match=r"needs pyarrow: pip install 'tokentree\[data\]'"):
        list(read_responses([path]))


def test_bad_records_are_skipped_and_counted_only_when_asked(tmp_path):
    path = tmp_path / "mixed.csv"
    path.write_text("text,label\nfine,1\n,0\nalso fine,1\n")
    assert list(read_responses([path])) == ["fine", "also fine"]  # an empty cell is no response, not an error
    records = tmp_path / "mixed.jsonl"
    records.write_text('{"text": "a"}\n{"text": 3}\nnot json\n{"text": "b"}\n')
    with pytest.raises(TextInputError, match=r"mixed\.jsonl:2: field 'text' is int, not text"):
        list(read_responses([records]))
    stats = ReadStats()
    assert list(read_responses([records], skip_bad_lines=True, stats=stats)) == ["a", "b"]
    assert stats.skipped == 2 and [w.rsplit(":", 1)[1] for w in stats.skipped_at] == ["2", "3"]
    assert stats.files == [str(records)]


def test_folders_read_every_known_format_in_order(tmp_path):
    (tmp_path / "b.jsonl").write_text('{"text": "from jsonl"}\n')
    (tmp_path / "a.txt").write_text("from text\n")
    (tmp_path / "notes.bin").write_bytes(b"\x00skipped: not a known suffix")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "c.csv").write_text("text\nfrom csv\n")
    assert list(read_responses([tmp_path])) == ["from text", "from jsonl", "from csv"]
    where = [w for w, _ in read_records([tmp_path])]
    assert where[0].endswith("a.txt:1") and where[2].endswith("c.csv:2")


def test_the_columnar_choice_asks_infra_optional_whether_pyarrow_is_there():
    from tokentree.data import readers
    from tokentree.infra.optional import installed

    assert installed("json") and not installed("tokentree_no_such_module")
    assert not hasattr(readers, "_has_pyarrow") and readers.installed is installed
