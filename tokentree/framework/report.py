"""The result object every experiment returns, and its renderings, written once.

An experiment's ``Result`` is a frozen dataclass that subclasses :class:`ExperimentReport`
and has the fields ``config``, ``records`` (the main table) and ``verdicts``. It declares
the rest: its other tables (:meth:`side_tables`), the heading and first paragraph
(:meth:`title`, :meth:`intro`), the Markdown sections after the verdicts
(:meth:`sections`: declared :class:`~tokentree.framework.tables.Table` with their rows),
what the terminal shows besides the verdicts (:meth:`terminal_tables`) and the figures
(:data:`PLOTS` and :meth:`plot`). From these alone come result.json, summary.md, the
terminal summary and pandas tables, the same way for every experiment.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

from tokentree.framework.tables import Table, cell
from tokentree.framework.verdicts import Verdict, VerdictStatus
from tokentree.infra.errors import InputError
from tokentree.infra.results import SCHEMA_VERSION, Record, rows_of, to_json_ready, to_pandas

__all__ = ["MAIN_TABLE", "ExperimentReport", "Section", "verdict_lines", "verdict_table"]

#: The key of every experiment's main table in result.json (also written as records.csv).
MAIN_TABLE = "records"

#: A Markdown section after the verdicts: a declared table and its rows, or lines of Markdown.
Section = tuple[Table, Sequence[Any]] | list[str]


def verdict_lines(verdicts: Sequence[Verdict]) -> list[str]:
    """The verdicts for a terminal: item, status and claim, then the evidence on an indented line."""
    width = max((len(v.item) for v in verdicts), default=0)
    status = max((len(str(v.status)) for v in verdicts), default=0)
    return [f"  {v.item:<{width}} {v.status:<{status}} {v.claim}\n  {'':<{width}} {'':<{status}} -> {v.evidence}"
            for v in verdicts]


def verdict_table(verdicts: Sequence[Verdict]) -> list[str]:
    """The verdicts as a Markdown table (the status in bold)."""
    return ["| item | verdict | claim | evidence (this run) |", "|---|---|---|---|",
            *(f"| {v.item} | **{v.status}** | {cell(v.claim)} | {cell(v.evidence)} |" for v in verdicts)]


@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class ExperimentReport:
    """Base of experiment results: a main table of records, named side tables, verdicts, rendered once."""

    EXPERIMENT: ClassVar[str] = ""
    #: The figures :meth:`plot` writes, by file stem (listed at the end of summary.md).
    PLOTS: ClassVar[Sequence[str]] = ()
    #: Where the verdicts' claims are stated (the heading of the verdict section).
    CLAIMS_SECTION: ClassVar[str] = ""

    config: Any
    records: Sequence[Record]

    # ------------------------------------------------------------------ what an experiment declares
    def side_tables(self) -> dict[str, Sequence[Record]]:
        """Tables besides the main one, by name."""
        return {}

    def verdict_list(self) -> Sequence[Verdict]:
        return tuple(getattr(self, "verdicts", ()))

    def title(self) -> str:
        return self.EXPERIMENT

    def intro(self) -> str:
        """The paragraph under the heading: what was run, on what, in which regime."""
        return ""

    def sections(self) -> Sequence[Section]:
        """The Markdown sections after the verdicts."""
        return ()

    def terminal_tables(self) -> Sequence[tuple[Table, Sequence[Any]]]:
        """Tables the terminal shows after the verdicts."""
        return ()

    def plot(self, folder: Path) -> None:
        """Write the figures of :data:`PLOTS` (PNG) into ``folder``."""

    # ------------------------------------------------------------------ renderings, written once
    def table(self, name: str = MAIN_TABLE) -> list[dict[str, Any]]:
        """Rows of one table (flat dicts; non-finite numbers as None)."""
        if name == MAIN_TABLE:
            return rows_of(self.records)
        if name == "verdicts":
            return rows_of(self.verdict_list())
        tables = self.side_tables()
        if name not in tables:
            raise InputError(f"no table {name!r}; tables: {[MAIN_TABLE, 'verdicts', *tables]}")
        return rows_of(tables[name])

    def to_dict(self) -> dict[str, Any]:
        """result.json: JSON-ready, the same for the same config (no timings)."""
        return {
            "experiment": self.EXPERIMENT,
            "schema_version": SCHEMA_VERSION,
            "config": to_json_ready(self.config),
            "verdicts": rows_of(self.verdict_list()),
            MAIN_TABLE: rows_of(self.records),
            "tables": {name: rows_of(rows) for name, rows in self.side_tables().items()},
        }

    def to_pandas(self, table: str = MAIN_TABLE) -> Any:
        """One of the result's tables as a pandas DataFrame."""
        return to_pandas(self.table(table))

    def summary_markdown(self) -> str:
        out = [f"# {self.title()}", ""]
        if self.intro():
            out += [self.intro(), ""]
        heading = "## Verdicts" + (f" ({self.CLAIMS_SECTION})" if self.CLAIMS_SECTION else "")
        out += [heading, "", *verdict_table(self.verdict_list()), ""]
        for section in self.sections():
            out += section[0].section(section[1]) if isinstance(section, tuple) else [*section, ""]
        if self.PLOTS:
            out += ["## Plots", "", *(f"![{name}]({name}.png)" for name in self.PLOTS), ""]
        return "\n".join(out).rstrip("\n") + "\n"

    def terminal_summary(self) -> str:
        out = [self.title(), *verdict_lines(self.verdict_list())]
        for table, rows in self.terminal_tables():
            out += table.terminal(rows)
        return "\n".join(out)

    def unexpected(self) -> list[Verdict]:
        """The verdicts that contradict an exact claim (or a control that did not fail)."""
        return [v for v in self.verdict_list() if v.status == VerdictStatus.UNEXPECTED]

    def __repr__(self) -> str:
        parts = [f"{len(self.records)} records"]
        parts += [f"{name}: {len(rows)}" for name, rows in self.side_tables().items()]
        verdicts = self.verdict_list()
        if verdicts:
            statuses = [str(v.status) for v in verdicts]
            parts.append("verdicts: " + ", ".join(f"{statuses.count(s)} {s}" for s in dict.fromkeys(statuses)))
        return f"<{self.EXPERIMENT} result: {'; '.join(parts)}>"
