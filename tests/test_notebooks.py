"""Every notebook runs end to end on the CPU and passes the checks in its last cell.

Notebooks are jupytext percent-format ``.py`` files; each is converted in memory and run
with nbclient in a fresh kernel. Their figures go to a temporary folder.
"""

from __future__ import annotations

from pathlib import Path

import jupytext
import nbclient
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.py"))


def test_there_are_notebooks():
    assert [p.name for p in NOTEBOOKS] == [
        "01_token_trees.py", "02_codes.py", "03_elasticity.py", "04_measured_vs_theory.py",
        "05_trained_elasticity.py", "06_piggyback.py",
    ]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_and_its_checks_pass(path, tmp_path, monkeypatch):
    monkeypatch.setenv("TOKENTREE_FIGURES", str(tmp_path))
    notebook = jupytext.read(path)
    client = nbclient.NotebookClient(
        notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}
    )
    client.execute()
    printed = "".join(
        out.get("text", "") for cell in notebook.cells for out in cell.get("outputs", []) if out.get("name") == "stdout"
    )
    assert printed.rstrip().endswith("all checks passed")
    figures = sorted(tmp_path.glob("*.png"))
    assert figures, "a notebook should save its figures"
    assert all(f.stat().st_size > 5_000 for f in figures)
