"""The loop every experiment shares: one call per seed (or grid case), progress, timing, tables concatenated.

An experiment's wiring is ``one_seed(seed) -> {table name: rows}``; :func:`run_cases`
calls it for every seed with a progress bar and returns the rows of each table in seed
order, and the wall time. Seeds are independent: the same seed gives the same rows
whatever the other seeds are. An exact experiment loops the same way over its grid.

>>> runs = run_cases([0, 1], lambda seed: {"records": [{"seed": seed, "x": seed * 2}]}, desc="demo", show=False)
>>> runs.tables["records"]
[{'seed': 0, 'x': 0}, {'seed': 1, 'x': 2}]
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from tokentree.infra.progress import progress

__all__ = ["CaseRuns", "run_cases", "seed_list"]

T = TypeVar("T")


@dataclass(frozen=True)
class CaseRuns:
    """The rows every case gave, concatenated per table in case order, and the wall time of the loop."""

    tables: dict[str, list[Any]]
    seconds: float


def seed_list(first: int, n_seeds: int) -> list[int]:
    """The run's seeds: ``first``, ``first + 1``, ..., ``n_seeds`` of them."""
    return [first + i for i in range(n_seeds)]


def run_cases(
    cases: Sequence[T],
    one_case: Callable[[T], Mapping[str, Sequence[Any]]],
    *,
    desc: str,
    show: bool | None = None,
) -> CaseRuns:
    """``one_case(case)`` for every case (a seed, a grid point), its tables concatenated (the same tables each)."""
    start = time.perf_counter()
    tables: dict[str, list[Any]] = {}
    for i, case in enumerate(progress(list(cases), desc=desc, show=show)):
        found = one_case(case)
        if i and set(found) != set(tables):
            raise ValueError(f"case {i} gave tables {sorted(found)}, the first case {sorted(tables)}")
        for name, rows in found.items():
            tables.setdefault(name, []).extend(rows)
    return CaseRuns(tables, time.perf_counter() - start)
