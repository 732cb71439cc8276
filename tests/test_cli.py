"""The command line: build + info on built-in data and files, errors as one clear line."""

from __future__ import annotations

import json
import subprocess
import sys

from tokentree.cli import main
from tokentree.trees.storage import load_tree


def test_build_then_info_on_builtin_corpus(tmp_path, capsys):
    out = tmp_path / "pydoc.npz"
    assert main(["build", "--builtin", "pydoc", "--depth", "4", "-o", str(out)]) == 0
    tree = load_tree(out)
    assert tree.depth == 4 and tree.vocab_size == 50257
    assert main(["info", str(out), "--json"]) == 0
    info = json.loads(capsys.readouterr().out.split("\n", 1)[1])
    assert info["nodes"] == tree.n_nodes and info["layers"]["nodes"][0] == 1
    assert len(info["layers"]["entropy_bits"]) == 5


def test_build_with_paths_writes_the_same_tree_path_compressed(tmp_path, capsys):
    full, paths = tmp_path / "full.npz", tmp_path / "paths.npz"
    for out, extra in ((full, []), (paths, ["--paths"])):
        assert main(["build", "--builtin", "pydoc", "--depth", "6", "--mode", "window", "-o", str(out), *extra]) == 0
    a, b = load_tree(full), load_tree(paths)
    assert b.is_compressed and not a.is_compressed and a == b and b.nbytes < a.nbytes
    assert b.count("def ") == a.count("def ") > 0 and b.provenance == a.provenance
    capsys.readouterr()
    assert main(["info", str(paths)]) == 0 and "(path-compressed)" in capsys.readouterr().out
    assert main(["build", "--builtin", "pydoc", "--workers", "1", "--paths", "-o", str(tmp_path / "p")]) == 2
    assert "drop --paths" in capsys.readouterr().err


def test_build_from_jsonl_with_bad_lines(tmp_path, capsys):
    data = tmp_path / "d.jsonl"
    data.write_text('{"text": "hello there"}\nnot json\n{"text": "general kenobi"}\n')
    out = tmp_path / "t.npz"
    assert main(["build", str(data), "--depth", "2", "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "d.jsonl:2" in err and "--skip-bad-lines" in err and not out.exists()
    assert main(["build", str(data), "--depth", "2", "-o", str(out), "--skip-bad-lines"]) == 0
    assert "skipped 1 bad records" in capsys.readouterr().err
    assert load_tree(out).info.n_sequences == 2


def test_train_bpe_option_and_python_dash_m(tmp_path):
    data = tmp_path / "a.txt"
    data.write_text("\n".join(f"line number {i} of the corpus" for i in range(200)))
    out = tmp_path / "t.npz"
    proc = subprocess.run(
        [sys.executable, "-m", "tokentree", "build", str(data), "--train-bpe", "300", "--depth", "3",
         "--mode", "window", "-o", str(out)],
        capture_output=True, text=True, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert 256 < load_tree(out).vocab_size <= 300  # the trainer stops when no pair repeats
    info = subprocess.run([sys.executable, "-m", "tokentree", "info", str(out)], capture_output=True, text=True)
    assert info.returncode == 0 and "entropy (bits)" in info.stdout


def test_bad_tree_file_is_one_clear_line(tmp_path, capsys):
    bad = tmp_path / "x.npz"
    bad.write_bytes(b"junk")
    assert main(["info", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("tokentree info: error:") and "\n" not in err


def _options(parser):
    """Every (subcommand, option action) of the parser."""
    import argparse

    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, child in sub.choices.items():
        for action in child._actions:
            if action.option_strings and action.dest != "help":
                yield name, child, action


def test_every_option_states_its_default_and_every_subcommand_has_examples():
    from tokentree.cli import _parser

    parser = _parser()
    options = list(_options(parser))
    assert len(options) > 15
    for name, child, action in options:
        assert "default" in (action.help or ""), f"tokentree {name} {action.option_strings[0]}: no default in help"
        assert child.epilog and "examples:" in child.epilog, name


def test_choices_come_from_the_code():
    from tokentree.cli import _parser
    from tokentree.data.readers import CHAT_TURNS, FORMATS, SPLITS
    from tokentree.data.text import BUILTIN_CORPORA
    from tokentree.trees.tree import ALPHABETS, MODES, WEIGHTINGS

    choices = {action.dest: action.choices for _, _, action in _options(_parser()) if action.choices}
    from tokentree.bridge.hf import DEVICES

    assert choices == {
        "builtin": sorted(BUILTIN_CORPORA), "mode": MODES, "weight": WEIGHTINGS, "alphabet": ALPHABETS,
        "device": DEVICES, "chat": CHAT_TURNS, "format": FORMATS,
        **{f"{name}_chat": CHAT_TURNS for name in ("pretrain", "align", "perturb")},
    }
    split = next(a for name, _, a in _options(_parser()) if name == "build" and a.dest == "split")
    assert all(how in split.help for how in SPLITS)  # not a choice: any DatasetDict split name goes too


def test_version(capsys):
    import pytest

    from tokentree.infra.version import __version__

    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0 and capsys.readouterr().out.strip() == f"tokentree {__version__}"
