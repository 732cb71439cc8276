"""`tokentree info --plot` and `tokentree query --plot`: a tree's counts by depth, drawn (issue 28)."""

from __future__ import annotations

import pytest

from tokentree.cli import main

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    path = tmp_path_factory.mktemp("tree") / "t.npz"
    assert main(["build", "--builtin", "pydoc", "--depth", "3", "-o", str(path)]) == 0
    return path


def test_info_draws_the_layers_by_depth(tree, tmp_path, capsys):
    out = tmp_path / "figs" / "layers.png"
    capsys.readouterr()
    assert main(["info", str(tree), "--json", "--plot", str(out)]) == 0
    assert out.read_bytes().startswith(PNG)
    captured = capsys.readouterr()
    assert captured.out.lstrip().startswith("{") and f"wrote {out}" in captured.err  # stdout stays JSON


def test_query_draws_the_counts_along_the_text(tree, tmp_path, capsys):
    out = tmp_path / "q.png"
    assert main(["query", str(tree), "the cat sat on the mat", "--plot", str(out)]) == 0
    assert out.read_bytes().startswith(PNG)
    assert main(["query", str(tree), "--top", "3", "--plot", str(out)]) == 2
    assert "--plot draws a query's counts by depth: give a text or --ids" in capsys.readouterr().err


def test_a_plot_path_that_cannot_be_written_fails_before_the_tree_is_read(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["info", str(tmp_path / "missing.npz"), "--plot", str(blocker / "p.png")]) == 2
    assert f"{blocker} is a file, not a folder" in capsys.readouterr().err  # not "missing.npz: no such file"
