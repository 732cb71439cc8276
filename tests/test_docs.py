"""The theory and the experiments in the repository: every reference resolves, every column is documented,
every recipe loads, and the notebooks use only public API."""

from __future__ import annotations

import ast
import importlib
import importlib.util
import json
import re
import tomllib
from pathlib import Path

import pytest

from tests.conftest import QUICK_EXPERIMENTS
from tokentree.framework.runs import load_experiment, resolve_config
from tokentree.infra.results import NONFINITE_COLUMN

ROOT = Path(__file__).resolve().parents[1]
DOCS = {"theory": ROOT / "docs" / "theory.md", "experiments": ROOT / "docs" / "experiments.md"}
REFERENCE = re.compile(r"docs/(theory|experiments)\.md §([A-Za-z0-9]+(?:\.[A-Za-z0-9]+)*)")
SECTION_OF_EXPERIMENT = {
    "hooke": "E0", "depth-pareto": "E1", "measured-vs-theory": "E3", "hooke-trained": "E4h", "rebound": "E4r",
    "resistance": "E4s", "rebound-scale": "E4x", "piggyback-tree": "E5t", "piggyback": "E5",
}


def _sections(doc: str) -> set[str]:
    return set(re.findall(r"^#{2,4} §(\S+)", DOCS[doc].read_text(), flags=re.MULTILINE))


def _section_text(doc: str, section: str) -> str:
    text = DOCS[doc].read_text()
    start = text.index(f"## §{section} ")
    end = text.find("\n## ", start + 1)
    return text[start : end if end > 0 else None]


def _sources() -> list[Path]:
    files = [*ROOT.glob("tokentree/**/*.py"), *ROOT.glob("notebooks/*.py"), *ROOT.glob("tests/*.py")]
    return [*files, ROOT / "README.md", *DOCS.values(), *ROOT.glob("experiments/*")]


def _references(text: str) -> list[tuple[str, str]]:
    # "§5.1-§5.8" and "§5-§6" name ranges: both ends must exist
    expanded = re.sub(r"(docs/(?:theory|experiments)\.md) (§[\w.]+)-§([\w.]+)", r"\1 \2, \1 §\3", text)
    return REFERENCE.findall(expanded)


def test_the_docs_have_the_sections_the_code_relies_on():
    assert {"1", "2", "3", "4", "5", "5.cf", "6", "7", "8"} | {f"5.{i}" for i in range(1, 9)} <= _sections("theory")
    assert {"schema", "noise", *SECTION_OF_EXPERIMENT.values()} <= _sections("experiments")


def test_every_reference_in_code_and_docs_points_at_a_section_that_exists():
    found = 0
    for path in _sources():
        for doc, section in _references(path.read_text(encoding="utf-8")):
            found += 1
            where = path.relative_to(ROOT)
            assert section in _sections(doc), f"{where} cites docs/{doc}.md §{section}, which is missing"
    assert found > 40


def test_nothing_cites_the_spec_files_that_are_not_in_the_repository():
    spec_files = ("THEORY" + ".md", "EXPERIMENTS" + ".md")  # spelt apart so this file does not cite them
    for path in _sources():
        text = path.read_text(encoding="utf-8")
        assert not any(name in text for name in spec_files), path


@pytest.mark.parametrize("name", QUICK_EXPERIMENTS)
def test_summaries_and_verdicts_cite_existing_sections(quick_runs, name):
    folder = quick_runs[name]
    texts = [(folder / "summary.md").read_text()]
    result = json.loads((folder / "result.json").read_text())
    texts += [v["reference"] for v in result["verdicts"]]
    for text in texts:
        for doc, section in _references(text):
            assert section in _sections(doc), (name, doc, section)
    assert all(REFERENCE.fullmatch(v["reference"]) for v in result["verdicts"])


@pytest.mark.parametrize("name", QUICK_EXPERIMENTS)
def test_every_column_is_documented(quick_runs, name):
    """docs/experiments.md lists every column of the experiment's tables, by its exact name."""
    section = _section_text("experiments", SECTION_OF_EXPERIMENT[name])
    result = json.loads((quick_runs[name] / "result.json").read_text())
    tables = {"records": result["records"], **result["tables"]}
    for table, rows in tables.items():
        for column in rows[0]:
            if column != NONFINITE_COLUMN:
                assert f"`{column}`" in section, f"{name}: column {column!r} of {table!r} is not documented"
        if table != "records":
            assert f"`{table}`" in section, f"{name}: table {table!r} is not documented"


def test_every_recipe_names_its_experiment_and_loads():
    recipes = sorted((ROOT / "experiments").glob("*.toml"))
    assert len(recipes) >= 4
    for path in recipes:
        name = tomllib.loads(path.read_text())["experiment"]
        config = resolve_config(load_experiment(name).Config, toml_path=path, experiment=name)
        assert config != load_experiment(name).Config(), f"{path.name} changes nothing"
        other = next(n for n in QUICK_EXPERIMENTS if n != name)
        with pytest.raises(ValueError, match=f"recipe for experiment '{name}'"):
            resolve_config(load_experiment(other).Config, toml_path=path, experiment=other)


def _public(module_name: str) -> set[str]:
    return set(getattr(importlib.import_module(module_name), "__all__", ()))


@pytest.mark.parametrize("path", sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.py")), ids=lambda p: p.stem)
def test_notebooks_use_only_public_api(path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("tokentree"):
            for alias in node.names:
                public = _public(node.module)
                submodule = f"{node.module}.{alias.name}"
                assert alias.name in public or importlib.util.find_spec(submodule) is not None, (
                    f"{path.name} imports {alias.name} from {node.module}, which is not in its __all__"
                )
                assert not alias.name.startswith("_"), f"{path.name} imports private {alias.name}"
        if isinstance(node, ast.Attribute):
            assert not (node.attr.startswith("_") and not node.attr.startswith("__")), (
                f"{path.name} uses the private attribute {node.attr}"
            )
    text = path.read_text()
    assert "figure_folder()" in text and "savefig(\"" not in text


def test_the_guarantees_in_the_readme_match_the_code():
    from tokentree.cli import _parser
    from tokentree.compression.mixture import MAX_SIZE_RATIO
    from tokentree.infra.outputs import MARKER

    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Guarantees") : readme.index("\n## ", readme.index("## Guarantees") + 1)]
    assert f"up\n  to {MAX_SIZE_RATIO:.0e}".replace("e+0", "e") in section
    assert f"`{MARKER}`" in section and "MAX_SIZE_RATIO" in section
    options = {s for action in _parser()._actions for s in action.option_strings}
    run_options = {s for action in _parser()._subparsers._group_actions[0].choices["run"]._actions
                   for s in action.option_strings}
    assert "--debug" in options and "--overwrite" in run_options
    assert "--debug" in section and "--overwrite" in section and "status 2" in section
    for test_file in re.findall(r"`(tests/test_\w+\.py)`", section):
        assert (ROOT / test_file).is_file(), test_file


def test_the_readme_lab_example_runs(tmp_path, monkeypatch):
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("### The fine-tuning lab") :]
    code = section[section.index("```python") + len("```python") : section.index("```", section.index("```python") + 9)]
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)  # the README's own example
    assert (tmp_path / "runs" / "ckpt" / "trainer.json").is_file()
    assert len(namespace["samples"].texts) == 8
