"""Results as data: one JSON encoder, flat table rows, CSV and pandas.

Every result type in tokentree is a frozen dataclass whose field names carry their
units (``_bits``: bits per token; ``_nats``: nats). This module turns them into
JSON and tables the same way everywhere:

* :func:`to_json_ready` is the one encoder. Non-finite floats become JSON ``null``
  (never the strings "inf" or "nan"), arrays become lists, enums their values.
* :class:`Record` is a row of a result table. :meth:`Record.to_row` flattens it:
  tuple fields become numbered columns (``betas`` -> ``beta_1``, ``beta_2``, ...),
  non-finite numbers become ``None``, and the ``nonfinite`` column says which values
  were infinite or undefined, and why (``ratio=-inf: d gamma_p/dl = 0``).
* :func:`to_pandas`, :func:`write_csv`: the rows as a DataFrame (pandas is imported
  only here, when asked) or a CSV file.
* :class:`ArrayResult` gives array-valued results a short ``repr``, ``to_dict()``
  and ``to_pandas()``.

>>> from dataclasses import dataclass
>>> @dataclass(frozen=True)
... class Row(Record):
...     k: float
...     betas: tuple[float, ...]
...     ratio: float
>>> Row(10.0, (0.5, 0.5), float("-inf")).to_row()
{'k': 10.0, 'beta_1': 0.5, 'beta_2': 0.5, 'ratio': None, 'nonfinite': 'ratio=-inf'}
>>> dumps_json({"x": float("nan"), "y": (1, 2)})
'{\\n "x": null,\\n "y": [\\n  1,\\n  2\\n ]\\n}\\n'
"""

from __future__ import annotations

import csv
import dataclasses
import enum
import io
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

__all__ = [
    "SCHEMA_VERSION",
    "NONFINITE_COLUMN",
    "to_json_ready",
    "dumps_json",
    "Record",
    "rows_of",
    "csv_text",
    "write_csv",
    "to_pandas",
    "ArrayResult",
    "short_repr",
]

#: Version of the layout of result.json, records.csv and run.json (docs/experiments.md §schema).
SCHEMA_VERSION = 1
#: The flag column of every table: which values were non-finite (written as null), and why.
NONFINITE_COLUMN = "nonfinite"


def _number(x: float) -> float | None:
    return x if math.isfinite(x) else None


def to_json_ready(value: Any) -> Any:
    """Plain JSON types: dataclasses and mappings as dicts, sequences and arrays as lists,
    enums as their values, numpy scalars as Python numbers, non-finite floats as None."""
    if isinstance(value, Record):
        return value.to_row()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_json_ready(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return to_json_ready(value.value)
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return _number(float(value))
    if isinstance(value, np.ndarray):
        return [to_json_ready(v) for v in value.tolist()]
    if isinstance(value, Mapping):
        return {str(k): to_json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_json_ready(v) for v in value]
    return value


def dumps_json(value: Any) -> str:
    """Deterministic JSON text: shortest round-trip floats, fixed key order, null for inf and nan."""
    import json

    return json.dumps(to_json_ready(value), indent=1, allow_nan=False) + "\n"


def _singular(name: str) -> str:
    return name[:-1] if name.endswith("s") else name


class Record:
    """Mixin for a frozen dataclass that is one row of a result table.

    ``NONFINITE_REASONS`` maps a field to the reason it can be infinite or undefined;
    :meth:`to_row` writes that reason into the ``nonfinite`` column beside the null.
    """

    NONFINITE_REASONS: ClassVar[Mapping[str, str]] = {}

    def to_row(self) -> dict[str, Any]:
        row: dict[str, Any] = {}
        notes: list[str] = []
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            if isinstance(value, tuple):
                for i, v in enumerate(value, start=1):
                    row[f"{_singular(f.name)}_{i}"] = to_json_ready(v)
                continue
            plain = to_json_ready(value)
            if plain is None and isinstance(value, float | np.floating):
                reason = self.NONFINITE_REASONS.get(f.name)
                notes.append(f"{f.name}={float(value)}" + (f": {reason}" if reason else ""))
            row[f.name] = plain
        row[NONFINITE_COLUMN] = "; ".join(notes)
        return row


def rows_of(records: Iterable[Record | Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Flat rows of records (mappings are taken as rows already)."""
    return [r.to_row() if isinstance(r, Record) else dict(r) for r in records]


def csv_text(rows: Sequence[Mapping[str, Any]]) -> str:
    """CSV of ``rows`` (the columns of the first row, in order; None as an empty cell)."""
    buffer = io.StringIO()
    if rows:
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: "" if v is None else v for k, v in row.items()})
    return buffer.getvalue()


def write_csv(path: Any, rows: Sequence[Mapping[str, Any]]) -> None:
    """Write :func:`csv_text` of ``rows`` to ``path``."""
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write(csv_text(rows))


def to_pandas(rows: Sequence[Mapping[str, Any]]) -> Any:
    """The rows as a ``pandas.DataFrame`` (pandas is imported here, when asked)."""
    try:
        import pandas as pd
    except ModuleNotFoundError:  # pragma: no cover - pandas is in the dev extra
        raise ModuleNotFoundError(
            "to_pandas() needs pandas: pip install pandas (or the tokentree[dev] extra)"
        ) from None
    return pd.DataFrame(list(rows))


def short_repr(value: Any) -> str:
    """A one-line description: arrays by shape and dtype, long sequences by length."""
    if isinstance(value, np.ndarray):
        if value.size <= 4:
            return np.array2string(value, separator=", ", precision=6)
        return f"array(shape={value.shape}, dtype={value.dtype})"
    if isinstance(value, list | tuple) and len(value) > 4:
        return f"<{len(value)} {type(value).__name__} items>"
    if isinstance(value, float):
        return f"{value:.6g}"
    return repr(value)


class ArrayResult:
    """Mixin for frozen dataclasses of arrays: a short repr, ``to_dict()`` and ``to_pandas()``.

    ``ROW_FIELD`` names the array whose length is the number of table rows (default:
    the first array field); arrays of that length become columns, scalars are repeated
    on every row, and arrays of other lengths are left out of the table.
    """

    ROW_FIELD: ClassVar[str | None] = None

    def __repr__(self) -> str:
        fields = ", ".join(
            f"{f.name}={short_repr(getattr(self, f.name))}"
            for f in dataclasses.fields(self)  # type: ignore[arg-type]
        )
        return f"{type(self).__name__}({fields})"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (arrays as lists, non-finite numbers as None)."""
        result: dict[str, Any] = to_json_ready(self)
        return result

    def to_rows(self) -> list[dict[str, Any]]:
        """One row per entry of the ``ROW_FIELD`` array (one row if there are no arrays)."""
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}  # type: ignore[arg-type]
        arrays = [k for k, v in values.items() if isinstance(v, np.ndarray) and v.ndim == 1]
        along = self.ROW_FIELD or (arrays[0] if arrays else None)
        n = 1 if along is None else int(values[along].shape[0])
        rows: list[dict[str, Any]] = [{} for _ in range(n)]
        for key, value in values.items():
            if isinstance(value, np.ndarray):
                if value.ndim != 1 or value.shape[0] != n or along is None:
                    continue
                for row, v in zip(rows, value.tolist(), strict=True):
                    row[key] = to_json_ready(v)
            elif value is None or isinstance(value, int | float | str | bool | np.number):
                for row in rows:
                    row[key] = to_json_ready(value)
        return rows

    def to_pandas(self) -> Any:
        """:meth:`to_rows` as a ``pandas.DataFrame``."""
        return to_pandas(self.to_rows())
