"""The package's layers: lower layers never import higher ones (the import-linter contract of pyproject.toml),
and `import tokentree` stays light."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import tomli_w

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def _lint(config: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", str(config), "--no-cache"], cwd=ROOT, capture_output=True, text=True
    )


def test_the_layers_contract_is_kept():
    proc = _lint(ROOT / "pyproject.toml")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 broken" in proc.stdout


def test_the_contract_would_catch_an_upward_import(tmp_path):
    """Not vacuous: with verification placed below compression, the real imports break the contract."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    layers = config["contracts"][0]["layers"]
    moved = [layer for layer in layers if "verification" not in layer]
    moved.insert(moved.index("compression") + 1, "verification")
    config["contracts"] = [{**config["contracts"][0], "layers": moved}]
    path = tmp_path / "reversed.toml"
    path.write_text(tomli_w.dumps({"tool": {"importlinter": config}}))
    proc = _lint(path)
    assert proc.returncode != 0 and "tokentree.verification" in proc.stdout


def test_importing_tokentree_and_the_math_layer_stays_light():
    code = (
        "import sys, tokentree, tokentree.compression, tokentree.infra.results; "
        "from tokentree.compression import entropy; "
        "heavy = {'torch', 'sympy', 'matplotlib', 'dask', 'pandas', 'transformers'}; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
