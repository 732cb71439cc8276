"""The experiment framework: bounded configs with groups, TOML and overrides, declared tables, claims on
fabricated tables, the case loop and the one result object."""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass
from typing import Any, ClassVar

import pytest

from tokentree.framework.claims import Claim, Finding, judge_claims
from tokentree.framework.config import Checked, bounded, group
from tokentree.framework.report import ExperimentReport
from tokentree.framework.runner import run_cases
from tokentree.framework.runs import config_to_toml, has_option, resolve_config
from tokentree.framework.tables import Column, Table
from tokentree.framework.verdicts import VerdictStatus
from tokentree.infra.errors import InputError


@dataclass(frozen=True)
class Train(Checked):
    lr: float = bounded(1e-4, minimum=0.0, exclusive=True)
    steps: int = bounded(10, minimum=1)


@dataclass(frozen=True)
class Base(Checked):
    d_model: int = bounded(64, minimum=8)
    model: str = "tiny"


@dataclass(frozen=True)
class Toy(Checked):
    mode: str = bounded("a", choices=("a", "b"))
    sizes: tuple[int, ...] = bounded((1, 2), minimum=1)
    files: tuple[str, ...] = ()
    base: Base = group(Base)
    align: Train = group(Train)
    transfer: Train = group(Train)

    def validate(self) -> None:
        if self.mode == "b" and not self.files:
            raise InputError("mode 'b' reads files: give files")

    @classmethod
    def quick(cls) -> Toy:
        return cls(sizes=(1,))


@pytest.mark.parametrize("kwargs, message", [
    ({"mode": "c"}, "mode must be one of ('a', 'b'); got 'c'"),
    ({"sizes": (1, 0)}, "sizes[1] must be an integer >= 1; got 0"),
    ({"sizes": ()}, "sizes must be a list of at least 1 values"),
    ({"sizes": (1.5,)}, "sizes[0] must be an integer >= 1; got 1.5"),
    ({"mode": "b"}, "mode 'b' reads files"),
])
def test_bounds_are_declared_once_and_named_in_the_error(kwargs, message):
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        Toy(**kwargs)


def test_a_group_is_a_toml_table_and_an_override_reaches_into_it(tmp_path):
    recipe = tmp_path / "r.toml"
    recipe.write_text('experiment = "toy"\nsizes = [3, 4]\n[base]\nd_model = 128\n[align]\nlr = 5e-5\n')
    config = resolve_config(Toy, toml_path=recipe, experiment="toy", overrides={"transfer.steps": 7, "model": "x"})
    assert config.sizes == (3, 4) and config.base == Base(128, "x")
    assert config.align == Train(5e-5, 10) and config.transfer == Train(1e-4, 7)
    back = tomllib.loads(config_to_toml(config, experiment="toy"))
    assert back["base"] == {"d_model": 128, "model": "x"} and back["experiment"] == "toy"
    again = tmp_path / "again.toml"
    again.write_text(config_to_toml(config, experiment="toy"))
    assert resolve_config(Toy, toml_path=again, experiment="toy") == config


def test_a_quick_run_of_a_loaded_model_starts_from_the_config_s_loaded_changes(tmp_path):
    """QUICK_LOADED applies to --quick with a loaded model (named by an override or the recipe), below the recipe and
    the overrides; never to a full run or to the tiny model."""

    @dataclass(frozen=True)
    class Loaded(Toy):
        QUICK_LOADED: ClassVar[dict[str, Any]] = {"sizes": (9,), "align.steps": 2}

        @classmethod
        def quick(cls) -> Loaded:
            return cls(sizes=(1,))

    assert resolve_config(Loaded, quick=True).sizes == (1,)
    assert resolve_config(Loaded, quick=False, overrides={"model": "smollm2"}).sizes == (1, 2)
    quick = resolve_config(Loaded, quick=True, overrides={"model": "smollm2"})
    assert quick.sizes == (9,) and quick.align.steps == 2 and quick.base.model == "smollm2"
    assert resolve_config(Loaded, quick=True, overrides={"base.model": "m", "sizes": (5,)}).sizes == (5,)
    recipe = tmp_path / "r.toml"
    recipe.write_text('[base]\nmodel = "m"\n')
    assert resolve_config(Loaded, quick=True, toml_path=recipe).sizes == (9,)


def test_bad_group_keys_and_ambiguous_names_are_refused(tmp_path):
    recipe = tmp_path / "r.toml"
    recipe.write_text("[base]\nwidth = 3\n")
    with pytest.raises(InputError, match=r"base has unknown keys \['width'\]; valid keys: \['d_model', 'model'\]"):
        resolve_config(Toy, toml_path=recipe)
    recipe.write_text("base = 3\n")
    with pytest.raises(InputError, match="base is a group of settings: write it as a \\[table\\]"):
        resolve_config(Toy, toml_path=recipe)
    with pytest.raises(InputError, match=r"in groups \['align', 'transfer'\]: write one of \['align.lr',"):
        resolve_config(Toy, overrides={"lr": 1e-5})
    with pytest.raises(InputError, match="'mode' is not a group of settings"):
        resolve_config(Toy, overrides={"mode.x": 1})
    with pytest.raises(InputError, match="d_model must be an integer >= 8; got 2"):
        resolve_config(Toy, overrides={"base.d_model": 2})
    assert has_option(Toy, "model") and has_option(Toy, "align.lr") and not has_option(Toy, "lr")


def test_overrides_are_applied_together_so_fields_that_need_each_other_can_be_set():
    config = resolve_config(Toy, quick=True, overrides={"files": ("x.txt",), "mode": "b"})
    assert config.mode == "b" and config.sizes == (1,)


def test_a_declared_table_renders_the_same_rows_in_markdown_and_on_a_terminal():
    table = Table("t", "Title", [Column("k", fmt="g"), Column("text", "why"),
                                 Column("twice", "2k", ".1f", value=lambda r: 2 * r["k"])], note="a note")
    rows = [{"k": 1e6, "text": "a | b"}, {"k": 0.5, "text": None}]
    md = table.section(rows)
    assert md[:4] == ["## Title", "", "a note", ""]
    assert md[4:] == ["| k | why | 2k |", "|---|---|---|", "| 1e+06 | a \\| b | 2000000.0 |",
                      "| 0.5 | n/a | 1.0 |", ""]
    assert table.terminal(rows) == ["Title", "      k    why         2k", "  1e+06  a | b  2000000.0",
                                    "    0.5    n/a        1.0"]


# --------------------------------------------------------------------------- claims on fabricated tables
def _positive_mean(tables):
    effects = [row["effect"] for row in tables["cells"]]
    mean = sum(effects) / len(effects)
    spread = max(effects) - min(effects)
    if abs(mean) < spread / 2:
        return Finding(VerdictStatus.WITHIN_NOISE, f"mean {mean:+.2f} inside the spread {spread:.2f}",
                       {"mean": mean, "spread": spread})
    return Finding(VerdictStatus.HOLDS if mean > 0 else VerdictStatus.FAILS, f"mean {mean:+.2f}",
                   {"mean": mean, "spread": spread})


CLAIM = Claim("C1", "the effect is positive", "docs/experiments.md §noise", _positive_mean)


@pytest.mark.parametrize("effects, status", [
    ([0.9, 1.0, 1.1], VerdictStatus.HOLDS),
    ([-0.9, -1.0, -1.1], VerdictStatus.FAILS),
    ([-1.0, 0.1, 1.0], VerdictStatus.WITHIN_NOISE),
])
def test_a_claim_is_judged_from_rows_alone(effects, status):
    (verdict,) = judge_claims([CLAIM], {"cells": [{"effect": e} for e in effects]})
    assert verdict.status == status and verdict.item == "C1" and verdict.reference == "docs/experiments.md §noise"
    assert verdict.values["mean"] == pytest.approx(sum(effects) / 3)
    assert Finding.of(False, "x").status == VerdictStatus.UNEXPECTED
    assert Finding.of(True, "x", control=True).status == VerdictStatus.FAILS_AS_PREDICTED


# --------------------------------------------------------------------------- the loop and the result object
def test_the_case_loop_concatenates_tables_in_order_and_refuses_uneven_ones():
    runs = run_cases([3, 1], lambda s: {"records": [{"seed": s}], "side": [s, s]}, desc="x", show=False)
    assert runs.tables == {"records": [{"seed": 3}, {"seed": 1}], "side": [3, 3, 1, 1]} and runs.seconds >= 0
    with pytest.raises(ValueError, match="case 1 gave tables"):
        run_cases([0, 1], lambda s: {"records": []} if s == 0 else {"other": []}, desc="x", show=False)


@dataclass(frozen=True, eq=False, repr=False)
class ToyResult(ExperimentReport):
    EXPERIMENT = "toy"
    PLOTS = ("figure",)

    config: Toy
    records: list
    verdicts: list

    def intro(self) -> str:
        return "One toy run."

    def sections(self):
        return [(Table("cells", "Cells", [Column("effect", fmt="+.1f")]), self.records), ["free text"]]


def test_one_result_object_renders_json_markdown_and_terminal():
    rows = [{"effect": 1.0}, {"effect": 0.5}]
    result = ToyResult(Toy(), rows, judge_claims([CLAIM], {"cells": rows}))
    data = json.loads(json.dumps(result.to_dict()))
    assert list(data) == ["experiment", "schema_version", "config", "verdicts", "records", "tables"]
    assert data["verdicts"][0]["values"] == {"mean": 0.75, "spread": 0.5}
    assert data["config"]["base"] == {"d_model": 64, "model": "tiny"}
    md = result.summary_markdown()
    for line in ("# toy", "One toy run.", "| C1 | **holds** | the effect is positive | mean +0.75 |", "## Cells",
                 "| +0.5 |", "free text", "![figure](figure.png)"):
        assert line in md
    assert result.terminal_summary().splitlines()[1].split() == ["C1", "holds", "the", "effect", "is", "positive"]
    assert repr(result) == "<toy result: 2 records; verdicts: 1 holds>"
    with pytest.raises(InputError, match=r"no table 'x'; tables: \['records', 'verdicts'\]"):
        result.table("x")


def test_every_hooke_verdict_carries_numbers():
    from tokentree.experiments import hooke

    result = hooke.run(hooke.Config.quick(), show_progress=False)
    for verdict in result.to_dict()["verdicts"]:
        assert verdict["values"] and all(isinstance(v, float | int | None) for v in verdict["values"].values())
    ratio = next(v for v in result.verdicts if v.item == "5.2")
    assert ratio.values["max_error_exact"] <= ratio.values["tolerance"]
