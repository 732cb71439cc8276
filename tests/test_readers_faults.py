"""Issue 28's reader cases: damaged, hostile and surprising inputs give one clear error or a documented result.

Every error here is an InputError (no raw ZstdError, ArrowInvalid, RecursionError or
JSONDecodeError) naming the file, the position where one is known, and the fix.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from tokentree.data.readers import ReadStats, read_examples
from tokentree.data.sequences import TokenSequences, as_token_sequences
from tokentree.data.text import encode_texts, read_responses, train_bpe
from tokentree.infra.errors import InputError, InputTypeError

LINES = "".join(json.dumps({"text": f"response number {i} " * 8}) + "\n" for i in range(3000)).encode()


def _refused(path, match, **options):
    with pytest.raises(InputError, match=match) as info:
        list(read_responses([path], **options))
    message = str(info.value)
    assert "\n" not in message and str(path) in message
    return message


def test_a_truncated_zst_file_is_an_error_not_zero_records(tmp_path):
    import zstandard

    whole = zstandard.ZstdCompressor().compress(LINES)
    path = tmp_path / "cut.jsonl.zst"
    path.write_bytes(whole[: len(whole) // 2])
    _refused(path, r"cut\.jsonl\.zst: the zstd data ends in the middle of a frame: the file is truncated")
    # complete files, one frame or several in a row, still read whole
    path.write_bytes(whole + zstandard.ZstdCompressor().compress(LINES))
    assert len(list(read_responses([path]))) == 6000


@pytest.mark.parametrize("suffix", [".csv.gz", ".jsonl.gz", ".txt.gz"])
def test_a_truncated_gz_file_is_an_error_in_every_format(tmp_path, suffix):
    import gzip

    csv_rows = "text,label\n" + "".join(f"response {i},{i}\n" for i in range(3000))
    rows = csv_rows if suffix == ".csv.gz" else LINES.decode()
    whole = gzip.compress(rows.encode())
    path = tmp_path / f"cut{suffix}"
    path.write_bytes(whole[: len(whole) // 2])
    _refused(path, r"cannot be decompressed as gzip .*; is it complete\? Copy or download it again")


def test_a_file_named_zst_that_is_not_zstd(tmp_path):
    path = tmp_path / "plain.jsonl.zst"
    path.write_bytes(b'{"text": "a"}\n')
    _refused(path, r"named \.zst but is not zstd data .*; rename it")
    path.write_bytes(b"")
    _refused(path, "an empty file, which is not zstd data")


@pytest.mark.parametrize("kind", ["parquet", "arrow"])
@pytest.mark.parametrize("damage", ["truncated", "empty"])
def test_truncated_or_empty_columnar_files(tmp_path, kind, damage):
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({"text": [f"t{i}" for i in range(1000)]})
    path = tmp_path / f"d.{kind}"
    if kind == "parquet":
        pq.write_table(table, path)
    else:
        with pa.ipc.new_file(str(path), table.schema) as writer:
            writer.write_table(table, max_chunksize=100)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2] if damage == "truncated" else b"")
    name = "Parquet" if kind == "parquet" else "Arrow"
    _refused(path, rf"not a readable {name} file \(.*\); it may be truncated, empty or still being written")


@pytest.mark.parametrize("suffix", [".json", ".jsonl"])
def test_json_nested_100000_deep(tmp_path, suffix):
    path = tmp_path / f"deep{suffix}"
    deep = "[" * 100_000 + "]" * 100_000
    path.write_text(f'[{{"text": {deep}}}]' if suffix == ".json" else f'{{"text": "a", "x": {deep}}}\n')
    where = "deep.json: " if suffix == ".json" else r"deep\.jsonl:1: "
    _refused(path, where + r".*nests deeper than Python's JSON parser follows \(about 1,000 levels\)", field="x")


def test_a_lone_surrogate_in_jsonl_names_the_line(tmp_path):
    path = tmp_path / "s.jsonl"
    path.write_text('{"text": "fine \\ud83d\\ude00"}\n{"text": "cut \\ud800 here"}\n')
    _refused(path, r"s\.jsonl:2: line has a lone UTF-16 surrogate \(\\ud800\)")
    stats = ReadStats()
    assert list(read_responses([path], skip_bad_lines=True, stats=stats)) == ["fine \U0001f600"]
    assert stats.skipped_at == [f"{path}:2"]


def _datasets_folder(tmp_path, name="ds"):
    import datasets

    datasets.disable_progress_bars()
    folder = tmp_path / name
    datasets.Dataset.from_list([{"text": "a"}, {"text": "b"}]).save_to_disk(str(folder))
    return folder


def test_a_corrupt_state_json(tmp_path):
    folder = _datasets_folder(tmp_path)
    (folder / "state.json").write_text('{"_data_files": [')
    _refused(folder, r"state\.json: not valid JSON at line 1 column 18; the datasets folder is damaged: save it again")


def test_a_datasets_folder_listing_files_outside_itself_is_refused(tmp_path):
    folder = _datasets_folder(tmp_path)
    outside = tmp_path / "outside.arrow"
    shutil.copy(next(folder.glob("*.arrow")), outside)
    state = json.loads((folder / "state.json").read_text())
    for name in ("../outside.arrow", str(outside)):
        state["_data_files"] = [{"filename": name}]
        (folder / "state.json").write_text(json.dumps(state))
        _refused(folder, "which is outside the folder; a datasets folder holds its own files, so this one is refused")


@pytest.mark.parametrize(("name", "content", "match"), [
    ("nul", b"text,label\nab\x00c,1\nd,2\n", r"nul\.csv:2: NUL bytes"),
    ("quote", b'text,label\na,1\n"abc,2\nd,3\n', r"quote\.csv:3: a quoted field opened on this line is never closed"),
    ("ragged", b"text,label\na,1\nb,2,3\nc\n", r"ragged\.csv:3: line has 3 fields but the header \(line 1\) has 2"),
    ("short", b"text,label\na,1\nc\n", r"short\.csv:3: line has 1 fields but the header \(line 1\) has 2"),
])
def test_bad_csv_names_the_line(tmp_path, name, content, match):
    path = tmp_path / f"{name}.csv"
    path.write_bytes(content)
    _refused(path, match)


def test_text_with_cr_only_line_ends_is_read_as_lines(tmp_path):
    """Old Mac line ends: a lone carriage return ends a line (documented in tokentree.data.records)."""
    path = tmp_path / "mac.txt"
    path.write_bytes(b"one\rtwo\r\rthree\r")
    assert list(read_responses([path])) == ["one", "two", "three"]
    assert list(read_responses([path], split="paragraph")) == ["one\rtwo", "three"]
    jsonl = tmp_path / "mac.jsonl"
    jsonl.write_bytes(b'{"text": "a"}\r{"text": 2}\r')
    _refused(jsonl, r"mac\.jsonl:2: field 'text' is int")


@pytest.mark.parametrize("kind", ["parquet", "jsonl"])
def test_null_text_cells_are_counted(tmp_path, kind):
    path = tmp_path / f"n.{kind}"
    records = [{"text": "a"}, {"text": None}, {"text": "  "}, {"text": "b"}, {"text": None}]
    if kind == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_pylist(records), path)
    else:
        path.write_text("".join(json.dumps(r) + "\n" for r in records))
    stats = ReadStats()
    assert list(read_responses([path], stats=stats)) == ["a", "b"]
    assert (stats.responses, stats.nulls, stats.empty) == (2, 2, 1)


def test_csv_on_standard_input_is_read_as_csv_when_asked():
    code = "from tokentree.data.text import read_responses; print(list(read_responses(['-'], format='csv')))"
    proc = subprocess.run([sys.executable, "-c", code], input="text,label\nhello,1\nworld,2\n", capture_output=True,
                          text=True, check=True)
    assert proc.stdout.strip() == "['hello', 'world']"


def test_a_datasetdict_takes_a_split_name(tmp_path):
    import datasets

    datasets.disable_progress_bars()
    folder = tmp_path / "dd"
    datasets.DatasetDict({"train": datasets.Dataset.from_list([{"text": "a"}, {"text": "b"}]),
                          "test": datasets.Dataset.from_list([{"text": "c"}])}).save_to_disk(str(folder))
    assert list(read_responses([folder], split="train")) == ["a", "b"]
    assert list(read_responses([folder], split="test")) == ["c"]
    with pytest.raises(InputError, match=r"DatasetDict with splits \['test', 'train'\]; it has no split 'valid'"):
        list(read_responses([folder], split="valid"))
    with pytest.raises(InputError, match=r"or the split name \(split='train', as in datasets\)"):
        list(read_responses([folder]))
    (tmp_path / "t.txt").write_text("x\n")
    with pytest.raises(InputError, match=r"names a split of a DatasetDict; .*t\.txt is not a DatasetDict folder"):
        list(read_responses([tmp_path / "t.txt"], split="train"))


def test_dpo_records_are_read_as_chats_ending_in_the_chosen_response(tmp_path):
    """TRL's preference formats: standard (strings), conversational, and implicit prompt."""
    path = tmp_path / "dpo.jsonl"
    user = [{"role": "user", "content": "q?"}]
    records = [
        {"prompt": "2+2?", "chosen": "4", "rejected": "5"},
        {"prompt": user, "chosen": [{"role": "assistant", "content": "yes"}],
         "rejected": [{"role": "assistant", "content": "no"}]},
        {"chosen": [*user, {"role": "assistant", "content": "good"}],
         "rejected": [*user, {"role": "assistant", "content": "bad"}]},
        {"prompt": "say hi", "completion": "hi"},
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    examples = list(read_examples([path], chat="assistant"))
    assert [e.response for e in examples] == ["4", "yes", "good", "hi"]
    assert examples[0].context == ({"role": "user", "content": "2+2?"},)
    assert examples[1].context == examples[2].context == tuple(user)


def test_a_transformers_tokenizer_object_works_in_encode_texts():
    from transformers import PreTrainedTokenizerFast

    backend = train_bpe(["hello world, hello there"] * 20, vocab_size=300)
    wrapped = PreTrainedTokenizerFast(tokenizer_object=backend)
    texts = ["hello world", "hello there"]
    got = encode_texts(texts, wrapped)
    assert got.tokens.tolist() == [t for text in texts for t in wrapped(text)["input_ids"]]
    assert got == encode_texts(texts, backend) and got.vocab_size == len(wrapped)


def test_token_sequences_can_be_sliced():
    seqs = as_token_sequences([[1], [2, 3], [4], [5, 6, 7]]).with_vocab_size(10)
    part = seqs[1:3]
    assert [s.tolist() for s in part] == [[2, 3], [4]] and part.vocab_size == 10
    assert np.shares_memory(part.tokens, seqs.tokens) and not part.tokens.flags.writeable
    assert [s.tolist() for s in seqs[::-2]] == [[5, 6, 7], [2, 3]]
    assert seqs[-1:].offsets.tolist() == [0, 3] and seqs[3:1].n_sequences == 0
    assert seqs[-1].tolist() == [5, 6, 7]
    with pytest.raises(InputTypeError, match=r"use \.select"):
        seqs[[0, 1]]  # type: ignore[call-overload]


def test_selecting_and_joining_keep_the_vocabulary_size():
    seqs = as_token_sequences([[1], [2, 3], [4]]).with_vocab_size(10)
    assert seqs.select([2, 0]).vocab_size == 10
    assert TokenSequences.concatenate([seqs, seqs.select([1])]).vocab_size == 10
    assert TokenSequences.concatenate([seqs, as_token_sequences([[5]])]).vocab_size is None  # not shared: unknown
    assert TokenSequences.concatenate([seqs, seqs.with_vocab_size(12)]).vocab_size is None
