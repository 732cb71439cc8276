"""Results as data: one JSON encoder, flat rows with null for non-finite values, CSV, pandas, run.json."""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd
import pytest

from tests.conftest import QUICK_EXPERIMENTS
from tokentree.compression import joint_compression, perturbation_setting, simulate_perturbation
from tokentree.framework.runs import MAIN_TABLE, Experiment, ExperimentResult, available_experiments, load_experiment
from tokentree.infra.results import NONFINITE_COLUMN, SCHEMA_VERSION, Record, csv_text, dumps_json, to_json_ready

#: Columns that hold words, not numbers.
#: Columns that label a row (categories), not measure it.
TEXT_COLUMNS = {
    "data", "corpus", "corpora", "dataset", "quantity", "stage", "base", "pair", "sweep", "intervention", "variant",
    "part", "problems",
    NONFINITE_COLUMN,
}


@dataclass(frozen=True)
class _Row(Record):
    NONFINITE_REASONS: ClassVar[dict[str, str]] = {"ratio": "d gamma_p/dl = 0"}

    k: float
    betas: tuple[float, ...]
    ratio: float
    label: str | None


def test_a_record_flattens_tuples_and_writes_null_with_the_reason():
    row = _Row(10.0, (0.5, 0.3, 0.2), -math.inf, None).to_row()
    assert row == {
        "k": 10.0, "beta_1": 0.5, "beta_2": 0.3, "beta_3": 0.2, "ratio": None, "label": None,
        NONFINITE_COLUMN: "ratio=-inf: d gamma_p/dl = 0",
    }
    assert _Row(1.0, (1.0,), 2.0, "x").to_row()[NONFINITE_COLUMN] == ""


def test_the_encoder_never_writes_inf_or_nan_as_strings():
    text = dumps_json({"a": math.inf, "b": [np.float64("nan"), np.int64(3)], "c": np.array([1.0, -np.inf])})
    assert json.loads(text) == {"a": None, "b": [None, 3], "c": [1.0, None]}
    assert "Infinity" not in text and "inf" not in text and "nan" not in text.lower()
    assert to_json_ready((np.bool_(True), 2.5)) == [True, 2.5]


def test_csv_has_empty_cells_for_null():
    text = csv_text([_Row(1.0, (1.0,), math.nan, "x").to_row()])
    (row,) = csv.DictReader(text.splitlines())
    assert row["ratio"] == "" and row["k"] == "1.0" and row[NONFINITE_COLUMN] == "ratio=nan: d gamma_p/dl = 0"


def test_array_results_have_short_reprs_dicts_and_frames():
    s = perturbation_setting([[1, 0, 0], [0, 1, 0], [0, 0, 1]], [0, 1, 0], [0, 0, 1], k=100.0, betas=[0.5, 0.3, 0.2])
    sweep = simulate_perturbation(s, np.linspace(0, 1, 500))
    assert len(repr(sweep)) < 1500 and "shape=(500,)" in repr(sweep)
    frame = sweep.to_pandas()
    assert frame.shape[0] == 500 and {"l", "ratio", "rate_align_bits", "k"} <= set(frame.columns)
    assert frame["k"].eq(100.0).all() and frame["l_star"].nunique() == 1
    assert json.loads(dumps_json(sweep.to_dict()))["ratio"][0] == pytest.approx(-100.0)
    jc = joint_compression([[1, 0, 1], [0, 1, 0]], sizes=[3, 1], symbol_lengths=[1, 1, 1])
    assert jc.to_pandas().shape[0] == 2 and "mixture" not in jc.to_pandas().columns  # one row per dataset


def test_every_experiment_follows_the_protocol():
    assert set(QUICK_EXPERIMENTS) == set(available_experiments())
    for name in available_experiments():
        module = load_experiment(name)
        assert isinstance(module, Experiment), name
        assert module.NAME == name
        assert module.__name__.startswith("tokentree.experiments.")


@pytest.mark.parametrize("name", QUICK_EXPERIMENTS)
def test_quick_results_load_into_numeric_dataframes(quick_runs, name):
    """result.json's main table goes straight into pandas with numeric columns; records.csv is the same table."""
    folder = quick_runs[name]
    result = json.loads((folder / "result.json").read_text())
    assert result["experiment"] == name and result["schema_version"] == SCHEMA_VERSION
    frame = pd.DataFrame(result[MAIN_TABLE])
    assert len(frame) > 0 and NONFINITE_COLUMN in frame.columns
    for column in frame.columns:
        if column not in TEXT_COLUMNS:
            values = frame[column]
            assert pd.api.types.is_numeric_dtype(values) or values.isna().all(), (name, column, values.dtype)
    for table in result["tables"].values():
        side = pd.DataFrame(table)
        assert all(c in TEXT_COLUMNS or pd.api.types.is_numeric_dtype(side[c]) or side[c].isna().all()
                   for c in side.columns)
    from_csv = pd.read_csv(folder / "records.csv", keep_default_na=False, na_values=[""])
    assert list(from_csv.columns) == list(frame.columns) and len(from_csv) == len(frame)
    info = json.loads((folder / "run.json").read_text())
    assert info["experiment"] == name and info["schema_version"] == SCHEMA_VERSION and info["wall_seconds"] > 0
    assert info["command"][:3] == ["tokentree", "run", name] or info["command"][0] == "tokentree"


def test_the_python_result_gives_the_same_table(quick_runs):
    from tokentree.experiments.hooke import Config, run

    result = run(Config.quick(), show_progress=False)
    assert isinstance(result, ExperimentResult)
    saved = json.loads((quick_runs["hooke"] / "result.json").read_text())
    assert json.loads(dumps_json(result.to_dict())) == saved
    assert result.to_pandas("split").shape[0] == len(saved["tables"]["split"])
    assert "hooke result: 42 records" in repr(result) and len(repr(result)) < 300
    with pytest.raises(ValueError, match="no table 'nosuch'"):
        result.to_pandas("nosuch")


@pytest.mark.parametrize("name", QUICK_EXPERIMENTS)
def test_every_verdict_carries_its_numbers(quick_runs, name):
    """Issue 24: each verdict has a non-empty ``values`` mapping of numbers (null for nan); depth-pareto and
    measured-vs-theory describe and judge nothing."""
    verdicts = json.loads((quick_runs[name] / "result.json").read_text())["verdicts"]
    assert bool(verdicts) == (name not in ("depth-pareto", "measured-vs-theory")), name
    for v in verdicts:
        assert v["values"] and all(x is None or isinstance(x, (int, float)) for x in v["values"].values()), (name, v)
