"""issue 28's weak cases on the command line and in model loading: each a one-line error naming the problem
and the fix, checked before any work, or a long step that says what it is doing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tokentree.cli import main
from tokentree.infra.errors import InputError


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    path = tmp_path_factory.mktemp("tree") / "t.npz"
    assert main(["build", "--builtin", "pydoc", "--depth", "2", "-o", str(path)]) == 0
    return path


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--ids", "-1"], r"--ids: id -1 \(position 1\) is not a token of this tree, whose ids are 0\.\.50256"),
        (["--ids", "464", "99999999999999999999"], r"id 99999999999999999999 \(position 2\) is not a token"),
        (["--top", "0"], "--top K lists the K heaviest symbols, so K must be at least 1; got 0"),
        (["--top", "-1"], "so K must be at least 1; got -1"),
    ],
    ids=["negative id", "huge id", "top 0", "top -1"],
)
def test_query_arguments_out_of_range_are_one_line_errors(tree, capsys, argv, message):
    """`query --ids -1` was an OverflowError traceback; `--top 0` listed ten symbols while `--top -1` was refused."""
    import re

    assert main(["query", str(tree), *argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and re.search(message, err), err


def test_a_misspelt_experiment_gets_a_suggestion(capsys):
    assert main(["run", "hook"]) == 2
    err = capsys.readouterr().err
    assert "unknown experiment 'hook'; did you mean hooke?" in err and err.count("\n") == 1
    assert main(["run", "zzzz"]) == 2
    assert "did you mean" not in capsys.readouterr().err


def test_sum_trees_past_int64_is_named():
    from tokentree import build_tree
    from tokentree.trees.combine import scale_tree, sum_trees

    big = scale_tree(build_tree([[1, 2], [1]], depth=2), 2**61)
    with pytest.raises(InputError, match=r"the trees' total masses add up to \d+, past the int64 counts' limit"):
        sum_trees([big, big])


def test_build_output_is_checked_before_reading_any_input(tmp_path, capsys, monkeypatch):
    """`build -o` in an unwritable place, or naming a folder, fails before tokenizing, naming the output."""
    import tokentree.data.text as text

    def never(*args, **kwargs):
        raise AssertionError("the inputs were read before the output was checked")

    monkeypatch.setattr(text, "read_responses", never)
    monkeypatch.setattr(text, "builtin_texts", never)
    (tmp_path / "in.txt").write_text("hello\n")
    for out, message in (("/proc/tokentree/tree.npz", "cannot write /proc/tokentree/tree.npz: "),
                         (str(tmp_path), "is a folder; give the path of a file")):
        assert main(["build", str(tmp_path / "in.txt"), "-o", out]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1 and ".tmp" not in err, err


def test_run_out_in_an_unwritable_place_fails_before_the_run(capsys, monkeypatch):
    import tokentree.experiments.hooke as hooke

    def never(*args, **kwargs):
        raise AssertionError("the experiment ran before the output folder was tried")

    monkeypatch.setattr(hooke, "run", never)
    assert main(["run", "hooke", "--quick", "--out", "/proc/tokentree/run"]) == 2
    err = capsys.readouterr().err
    assert "cannot write /proc/tokentree/run: " in err and "not writable" in err and err.count("\n") == 1


def test_long_steps_say_what_they_do_when_progress_is_shown(tmp_path, capsys):
    (tmp_path / "in.txt").write_text("one line\nanother line\n")
    assert main(["--progress", "build", str(tmp_path / "in.txt"), "--depth", "2", "-o", str(tmp_path / "t.npz")]) == 0
    err = capsys.readouterr().err
    assert f"tokentree: reading and tokenizing {tmp_path / 'in.txt'} with gpt2" in err
    assert "tokentree: building the depth-2 tree" in err
    assert main(["build", str(tmp_path / "in.txt"), "--depth", "2", "-o", str(tmp_path / "t.npz")]) == 0
    assert "tokentree:" not in capsys.readouterr().err  # quiet off a terminal


def test_the_numba_cache_is_in_the_user_cache_not_the_install_folder(tmp_path):
    """NUMBA_CACHE_DIR defaults to ~/.cache/tokentree/numba ($TOKENTREE_CACHE/numba), and a value set is kept."""
    code = ("import os, tokentree, numba.core.config as c; "
            "print(os.environ['NUMBA_CACHE_DIR']); print(c.CACHE_DIR)")
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    got = subprocess.run([sys.executable, "-c", code], env={**env, "TOKENTREE_CACHE": str(tmp_path / "c")},
                         capture_output=True, text=True, check=True).stdout.split()
    assert got == [str(tmp_path / "c" / "numba")] * 2
    mine = subprocess.run([sys.executable, "-c", code], env={**env, "NUMBA_CACHE_DIR": str(tmp_path / "n")},
                          capture_output=True, text=True, check=True).stdout.split()
    assert mine == [str(tmp_path / "n")] * 2


# ------------------------------------------------------------------------------------------- load_model
@pytest.fixture(scope="module")
def model_folder(tmp_path_factory):
    pytest.importorskip("torch")
    from tokentree.bridge.tiny import TinySpec, save_model, tiny_llama, train_tiny_tokenizer

    tokenizer = train_tiny_tokenizer(["a b c d e f g"] * 20, 270)
    spec = TinySpec(vocab_size=len(tokenizer), n_layers=1, d_model=16, n_heads=2, context=16)
    return save_model(tiny_llama(spec, seed=0), tokenizer, tmp_path_factory.mktemp("model") / "m")


def test_load_model_takes_dtype_and_device_map(model_folder):
    import torch

    from tokentree.bridge.hf import load_model

    model, _ = load_model(str(model_folder), device="cpu")
    assert next(model.parameters()).dtype == torch.float32
    model, _ = load_model(str(model_folder), device="cpu", dtype="bfloat16")
    assert next(model.parameters()).dtype == torch.bfloat16
    model, _ = load_model(str(model_folder), dtype=torch.float16, device_map="cpu")
    assert next(model.parameters()).dtype == torch.float16 and model.device.type == "cpu"
    with pytest.raises(InputError, match=r"dtype must be a torch dtype or one of \('auto', 'float32'"):
        load_model(str(model_folder), dtype="half-ish")


def _copy_with(folder: Path, where: Path, change) -> Path:
    import shutil

    copy = where / change.__name__
    shutil.copytree(folder, copy)
    change(copy)
    return copy


def test_a_truncated_weights_file_and_a_vocabulary_mismatch_are_one_line_errors(model_folder, tmp_path, capfd):
    from tokentree.bridge.hf import load_model

    def truncated(copy: Path) -> None:
        data = (copy / "model.safetensors").read_bytes()
        (copy / "model.safetensors").write_bytes(data[: len(data) // 2])

    def other_vocab(copy: Path) -> None:
        config = json.loads((copy / "config.json").read_text())
        config["vocab_size"] += 20
        (copy / "config.json").write_text(json.dumps(config))

    for change, message in ((truncated, "its weights file is truncated or corrupt"),
                            (other_vocab, "its weights do not fit its config.json")):
        with pytest.raises(InputError, match=message) as caught:
            load_model(str(_copy_with(model_folder, tmp_path, change)), device="cpu")
        assert "\n" not in str(caught.value)
    assert "LOAD REPORT" not in capfd.readouterr().err  # transformers' many-line report is not shown


def test_a_dask_task_whose_worker_dies_every_time_is_one_line(tmp_path, capsys, monkeypatch):
    """Dask retries a task whose worker died (tests/test_faults.py); after the last retry, one line says what to do."""
    pytest.importorskip("distributed")
    from distributed.scheduler import KilledWorker

    import tokentree.trees.distributed as distributed

    def dies(*args, **kwargs):
        raise KilledWorker("tokentree-part-3-abc", None, 2)

    monkeypatch.setattr(distributed, "build_partitioned", dies)
    out = tmp_path / "parts"
    assert main(["build", "--builtin", "pydoc", "--depth", "2", "--workers", "2", "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "a Dask worker died on every attempt at task tokentree-part-3-abc" in err and err.count("\n") == 1
    assert "--memory-limit" in err and sorted(os.listdir(tmp_path)) == []  # no lock, no folder left


def test_a_hub_name_without_a_hub_fails_in_seconds_not_a_minute(monkeypatch):
    """Offline, transformers retries for about a minute; an unreachable hub sends a name to the local cache at once."""
    import socket

    from tokentree.bridge import hf

    def refused(*args, **kwargs):
        raise OSError("no route to host")

    monkeypatch.setattr(socket, "create_connection", refused)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    for proxy in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(proxy, raising=False)
    assert not hf.hub_reachable()
    for load in (hf.load_chat_tokenizer, hf.load_model):
        with pytest.raises(InputError, match=r"hub cannot be reached .* not in the local cache; give a local folder"):
            load("no-such-owner/no-such-model-tokentree")
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.invalid:3128")
    assert hf.hub_reachable()  # behind a proxy the connection is not probed
