"""Declared tables: columns with headers, units and formats, rendered as Markdown, terminal text or JSON rows.

An experiment declares what a table shows once; the three renderings never drift apart.
A column reads its value from a row by name (a record's field or a dict's key) or by a
function of the row.

>>> t = Table("k", "Ratio by k", [Column("k", fmt="g"), Column("ratio", "R(0)", fmt=".3f", unit="-")])
>>> rows = [{"k": 10.0, "ratio": -9.87654}, {"k": 1e6, "ratio": float("inf")}]
>>> print("\\n".join(t.markdown(rows)))
| k | R(0) (-) |
|---|---|
| 10 | -9.877 |
| 1e+06 | inf |
>>> print("\\n".join(t.terminal(rows)))
Ratio by k
      k  R(0) (-)
     10    -9.877
  1e+06       inf
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Column", "Table", "cell"]


def cell(text: str) -> str:
    """Text for a Markdown table cell (a bare | would end the cell)."""
    return str(text).replace("|", "\\|")


@dataclass(frozen=True)
class Column:
    """One column: the row's ``key`` (or ``value(row)``), its header, unit and format spec (``""``: ``str``)."""

    key: str
    header: str = ""
    fmt: str = ""
    unit: str = ""
    value: Callable[[Any], Any] | None = None

    @property
    def title(self) -> str:
        name = self.header or self.key
        return f"{name} ({self.unit})" if self.unit else name

    def get(self, row: Any) -> Any:
        if self.value is not None:
            return self.value(row)
        return row[self.key] if isinstance(row, Mapping) else getattr(row, self.key)

    def text(self, row: Any) -> str:
        v = self.get(row)
        if v is None:
            return "n/a"
        if isinstance(v, float) and not math.isfinite(v):
            return str(v)
        return format(v, self.fmt) if self.fmt else str(v)


@dataclass(frozen=True)
class Table:
    """A declared table: a name (its key in result.json), a title, the columns and a note under it."""

    name: str
    title: str
    columns: Sequence[Column]
    note: str = ""
    bold: frozenset[str] = field(default_factory=frozenset)

    def markdown(self, rows: Sequence[Any]) -> list[str]:
        """The rows as a Markdown table (columns named in ``bold`` in bold)."""
        out = ["| " + " | ".join(cell(c.title) for c in self.columns) + " |",
               "|" + "---|" * len(self.columns)]
        for row in rows:
            cells = [cell(c.text(row)) for c in self.columns]
            cells = [f"**{v}**" if c.key in self.bold else v for c, v in zip(self.columns, cells, strict=True)]
            out.append("| " + " | ".join(cells) + " |")
        return out

    def section(self, rows: Sequence[Any], level: str = "##") -> list[str]:
        """A Markdown section: the title as a heading, the note, the table."""
        return [f"{level} {self.title}", "", *([self.note, ""] if self.note else []), *self.markdown(rows), ""]

    def terminal(self, rows: Sequence[Any]) -> list[str]:
        """The rows aligned in columns for a terminal, under the title."""
        texts = [[c.text(row) for c in self.columns] for row in rows]
        widths = [max([len(c.title), *(len(t[i]) for t in texts)]) for i, c in enumerate(self.columns)]
        line = lambda cells: "  " + "  ".join(v.rjust(w) for v, w in zip(cells, widths, strict=True))  # noqa: E731
        return [self.title, line([c.title for c in self.columns]), *(line(t) for t in texts)]
