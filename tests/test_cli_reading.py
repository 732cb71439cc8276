"""`tokentree build` reading: CSV on standard input, any DatasetDict split, rows that are not responses (issue 28)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tokentree.cli import main
from tokentree.data.text import read_responses
from tokentree.infra.errors import InputError


def _build_stdin(tmp_path, given, *options):
    out = tmp_path / "stdin.npz"
    proc = subprocess.run([sys.executable, "-m", "tokentree", "build", "-", "--depth", "2", "-o", str(out), *options],
                          input=given, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_csv_and_tsv_on_standard_input_are_read_as_tables_not_as_lines(tmp_path):
    assert "(2 responses from 1 inputs)" in _build_stdin(tmp_path, "text,label\nhello world,1\nthe cat,0\n")
    assert "(1 responses from 1 inputs)" in _build_stdin(tmp_path, "id\treply\n1\thello\n", "--field", "reply")
    assert "(1 responses from 1 inputs)" in _build_stdin(tmp_path, "prompt,response\nhi,hello\n", "--chat", "assistant")
    # prose stays prose: a comma then a space, or no header naming the field read
    assert "(2 responses from 1 inputs)" in _build_stdin(tmp_path, "hello, text\nthe cat\n")
    assert "(2 responses from 1 inputs)" in _build_stdin(tmp_path, "alpha,beta\ngamma\n")


@pytest.fixture
def dataset_dict(tmp_path):
    import datasets

    datasets.disable_progress_bars()
    rows = [{"text": t} for t in ("the cat", "a dog", "one more", "the end", "held out")]
    datasets.DatasetDict({"train": datasets.Dataset.from_list(rows[:3]),
                          "validation": datasets.Dataset.from_list(rows[3:])}).save_to_disk(str(tmp_path / "dd"))
    return tmp_path / "dd"


def test_any_split_a_datasetdict_holds_can_be_named(dataset_dict, tmp_path, capsys):
    out = str(tmp_path / "v.npz")
    assert main(["build", str(dataset_dict), "--split", "validation", "--depth", "2", "-o", out]) == 0
    assert "(2 responses from 1 inputs)" in capsys.readouterr().out
    assert main(["build", str(dataset_dict), "--split", "test", "--depth", "2", "-o", str(tmp_path / "t.npz")]) == 2
    err = capsys.readouterr().err
    assert "DatasetDict with splits ['train', 'validation']; it has no split 'test'" in err
    assert "pass one of them (--split train)" in err
    with pytest.raises(InputError, match=r"splits \['train', 'validation'\]; give one.*e\.g\. --split train"):
        list(read_responses([dataset_dict]))


def test_null_and_empty_fields_are_said_beside_the_responses(tmp_path, capsys):
    path = tmp_path / "n.jsonl"
    path.write_text("".join(json.dumps({"text": t}) + "\n" for t in ("a b", None, "  ", "c")))
    assert main(["build", str(path), "--depth", "2", "-o", str(tmp_path / "n.npz")]) == 0
    assert "(2 responses from 1 inputs; not responses: 1 null and 1 empty fields)" in capsys.readouterr().out
    path.write_text("".join(json.dumps({"text": t}) + "\n" for t in ("a b", "c")))
    assert main(["build", str(path), "--depth", "2", "-o", str(tmp_path / "n.npz")]) == 0
    assert "(2 responses from 1 inputs)\n" in capsys.readouterr().out  # nothing to say: the line as before
