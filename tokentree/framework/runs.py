"""Running experiments: the experiment contract, the registry, configs in TOML, and run outputs.

An experiment is a module that follows the :class:`Experiment` protocol: a name, a
frozen dataclass ``Config`` (every field has a default; ``Config.quick()`` gives a small
version) and ``run(config) -> result``, where the result follows
:class:`ExperimentResult`. Experiments are registered as entry points of the group
``tokentree.experiments`` (see pyproject.toml), so other packages can add their own.

A config is resolved in one order: defaults, then ``Config.quick()``, then a TOML file,
then options on the command line. A TOML recipe may name its experiment
(``experiment = "hooke"``), and is refused by any other.

Outputs (docs/experiments.md §schema): ``config.toml``, ``result.json`` (byte-identical
for the same config), ``records.csv`` (the main table), ``summary.md``, the plots, and
``run.json`` (versions, git commit, command line, wall time: everything that differs
between two runs of the same config). They go to a temporary folder beside the
target, which replaces it only once everything is written: a run that fails midway
leaves earlier results untouched.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import platform
import subprocess
import sys
import time
import tomllib
from collections.abc import Mapping, Sequence
from importlib.metadata import entry_points
from pathlib import Path
from types import ModuleType
from typing import Any, ClassVar, Protocol, runtime_checkable

from tokentree.infra.errors import InputError
from tokentree.infra.results import SCHEMA_VERSION, Record, dumps_json, rows_of, to_json_ready, to_pandas, write_csv

__all__ = [
    "ENTRY_POINT_GROUP",
    "MAIN_TABLE",
    "Experiment",
    "ExperimentResult",
    "TabularResult",
    "available_experiments",
    "load_experiment",
    "resolve_config",
    "config_to_toml",
    "run_info",
    "write_run_outputs",
]

ENTRY_POINT_GROUP = "tokentree.experiments"
#: The key of every experiment's main table in result.json (also written as records.csv).
MAIN_TABLE = "records"


@runtime_checkable
class ExperimentResult(Protocol):
    """What an experiment's ``run`` returns."""

    def to_dict(self) -> dict[str, Any]:
        """result.json: JSON-ready, the same for the same config (no timings)."""
        ...

    def to_pandas(self, table: str = MAIN_TABLE) -> Any:
        """One of the result's tables as a pandas DataFrame."""
        ...

    def summary_markdown(self) -> str: ...

    def terminal_summary(self) -> str: ...

    def plot(self, folder: Path) -> None:
        """Write the experiment's figures (PNG) into ``folder``."""
        ...


@runtime_checkable
class Experiment(Protocol):
    """An experiment module: its registered name, its ``Config`` class and ``run``."""

    NAME: str
    Config: type

    def run(self, config: Any, *, show_progress: bool | None = None) -> ExperimentResult: ...


@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class TabularResult:
    """Base of experiment results: a main table of records, named side tables, verdicts.

    Subclasses are frozen dataclasses with ``config`` and ``records`` fields, set
    ``EXPERIMENT`` and override :meth:`side_tables` and :meth:`verdict_list` when they
    have them.
    """

    EXPERIMENT: ClassVar[str] = ""

    config: Any
    records: Sequence[Record]

    def side_tables(self) -> dict[str, Sequence[Record]]:
        """Tables besides the main one, by name."""
        return {}

    def verdict_list(self) -> Sequence[Record]:
        return ()

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
        return {
            "experiment": self.EXPERIMENT,
            "schema_version": SCHEMA_VERSION,
            "config": to_json_ready(self.config),
            "verdicts": rows_of(self.verdict_list()),
            MAIN_TABLE: rows_of(self.records),
            "tables": {name: rows_of(rows) for name, rows in self.side_tables().items()},
        }

    def to_pandas(self, table: str = MAIN_TABLE) -> Any:
        return to_pandas(self.table(table))

    def __repr__(self) -> str:
        parts = [f"{len(self.records)} records"]
        parts += [f"{name}: {len(rows)}" for name, rows in self.side_tables().items()]
        verdicts = self.verdict_list()
        if verdicts:
            statuses = [str(getattr(v, "status", "")) for v in verdicts]
            parts.append("verdicts: " + ", ".join(f"{statuses.count(s)} {s}" for s in dict.fromkeys(statuses)))
        return f"<{self.EXPERIMENT} result: {'; '.join(parts)}>"


def available_experiments() -> dict[str, str]:
    """Registered experiment names and their modules."""
    return {ep.name: ep.value for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name)}


def load_experiment(name: str) -> ModuleType:
    """Import a registered experiment's module."""
    known = available_experiments()
    if name not in known:
        raise InputError(
            f"unknown experiment {name!r}; registered: {', '.join(known) or 'none'} "
            "(`tokentree run --list`; reinstall with `pip install -e .` if this list looks stale)"
        )
    return importlib.import_module(known[name])


def _coerce(default: Any, value: Any, where: str) -> Any:
    """``value`` from TOML cast to the type of the field's default (lists become tuples)."""
    if isinstance(default, tuple):
        if not isinstance(value, list):
            raise InputError(f"{where} must be a list; got {value!r}")
        inner = default[0] if default else None
        return tuple(value if inner is None else _coerce(inner, v, f"{where}[{i}]") for i, v in enumerate(value))
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise InputError(f"{where} must be true or false; got {value!r}")
        return value
    if isinstance(default, float) and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(default, int) and isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(default, str) and isinstance(value, str):
        return value
    raise InputError(f"{where} must be a {type(default).__name__}; got {value!r}")


def resolve_config(
    config_cls: Any,
    *,
    toml_path: str | os.PathLike[str] | None = None,
    quick: bool = False,
    overrides: Mapping[str, Any] | None = None,
    experiment: str | None = None,
) -> Any:
    """Defaults, then ``Config.quick()`` if asked, then the TOML file, then ``overrides``.

    A TOML file may say which experiment it is for (``experiment = "NAME"``); it is
    refused when that is not ``experiment``.
    """
    config = config_cls.quick() if quick else config_cls()
    fields = {f.name for f in dataclasses.fields(config_cls)}
    changes: dict[str, Any] = {}
    if toml_path is not None:
        where = os.fspath(toml_path)
        try:
            with open(toml_path, "rb") as f:
                table = tomllib.load(f)
        except FileNotFoundError:
            raise InputError(f"config file {where!r} does not exist") from None
        except tomllib.TOMLDecodeError as exc:
            raise InputError(f"config file {where!r} is not valid TOML: {exc}") from None
        except UnicodeDecodeError:
            raise InputError(f"config file {where!r} is not UTF-8 text; TOML files are UTF-8") from None
        except IsADirectoryError:
            raise InputError(f"config file {where!r} is a folder; give the path of a .toml file") from None
        named = table.pop("experiment", None)
        if named is not None and experiment is not None and named != experiment:
            raise InputError(
                f"config file {where!r} is a recipe for experiment {named!r}, not {experiment!r}; "
                f"run it with `tokentree run {named} --config {where}`"
            )
        unknown = sorted(set(table) - fields)
        if unknown:
            raise InputError(f"config file {where!r} has unknown keys {unknown}; valid keys: {sorted(fields)}")
        for key, value in table.items():
            changes[key] = _coerce(getattr(config, key), value, f"{where}: {key}")
    for key, value in (overrides or {}).items():
        if key not in fields:
            raise InputError(f"{config_cls.__name__} has no option {key!r}")
        changes[key] = value
    return dataclasses.replace(config, **changes)


def _plain(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value


def config_to_toml(config: Any, *, experiment: str | None = None) -> str:
    """The resolved config as TOML (it loads back to an equal config), naming its experiment if given."""
    import tomli_w

    table = {k: _plain(v) for k, v in dataclasses.asdict(config).items()}
    if experiment is not None:
        table = {"experiment": experiment, **table}
    return tomli_w.dumps(table)


def _git(*args: str) -> str | None:
    try:
        proc = subprocess.run(
            ["git", *args], cwd=Path(__file__).resolve().parent, capture_output=True, text=True, timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return proc.stdout.strip() if proc.returncode == 0 else None


def run_info(experiment: str, *, wall_seconds: float, argv: Sequence[str] | None = None) -> dict[str, Any]:
    """run.json: what differs between two runs of the same config (versions, commit, command, time)."""
    import numpy

    from tokentree.infra.version import __version__

    commit = _git("rev-parse", "HEAD")
    status = _git("status", "--porcelain", "--untracked-files=no") if commit else None
    return {
        "schema_version": SCHEMA_VERSION,
        "experiment": experiment,
        "tokentree_version": __version__,
        "git_commit": commit,
        "git_dirty": None if status is None else bool(status),
        "command": ["tokentree", *sys.argv[1:]] if argv is None else list(argv),
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "finished_at_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "wall_seconds": round(wall_seconds, 3),
    }


def write_run_outputs(
    folder: Path, config: Any, result: ExperimentResult, *, info: Mapping[str, Any] | None = None
) -> None:
    """An experiment's standard outputs: config.toml, result.json, records.csv, summary.md, plots, run.json."""
    data = result.to_dict()
    experiment = data.get("experiment")
    (folder / "config.toml").write_text(config_to_toml(config, experiment=experiment), encoding="utf-8")
    (folder / "result.json").write_text(dumps_json(data), encoding="utf-8")
    write_csv(folder / "records.csv", data[MAIN_TABLE])
    (folder / "summary.md").write_text(result.summary_markdown(), encoding="utf-8")
    result.plot(folder)
    if info is not None:
        (folder / "run.json").write_text(dumps_json(info), encoding="utf-8")


