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
from typing import Any, Protocol, runtime_checkable

from tokentree.framework.config import is_group
from tokentree.framework.report import MAIN_TABLE
from tokentree.infra.errors import InputError
from tokentree.infra.results import SCHEMA_VERSION, dumps_json, write_csv

__all__ = [
    "ENTRY_POINT_GROUP",
    "MAIN_TABLE",
    "Experiment",
    "ExperimentResult",
    "available_experiments",
    "load_experiment",
    "has_option",
    "resolve_config",
    "config_to_toml",
    "run_info",
    "write_run_outputs",
]

ENTRY_POINT_GROUP = "tokentree.experiments"


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
    """``value`` from TOML cast to the type of the field's default (lists become tuples, tables groups)."""
    if is_group(default):
        if not isinstance(value, dict):
            raise InputError(f"{where} is a group of settings: write it as a [table]; got {value!r}")
        return _with_changes(default, value, where)
    if isinstance(default, tuple):
        if not isinstance(value, list):
            raise InputError(f"{where} must be a list; got {value!r}")
        inner = default[0] if default else None
        return tuple(v if inner is None else _coerce(inner, v, f"{where}[{i}]") for i, v in enumerate(value))
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


def _with_changes(config: Any, table: Mapping[str, Any], where: str) -> Any:
    """``config`` with the TOML ``table``'s values (a sub-table for every group), unknown keys refused."""
    fields = {f.name for f in dataclasses.fields(config)}
    unknown = sorted(set(table) - fields)
    if unknown:
        raise InputError(f"{where} has unknown keys {unknown}; valid keys: {sorted(fields)}")
    changes = {key: _coerce(getattr(config, key), value, f"{where}: {key}") for key, value in table.items()}
    return dataclasses.replace(config, **changes)


def _option_path(config: Any, key: str, name: str) -> list[str]:
    """The fields ``key`` names, outermost first: ``"base.lr"`` -> [base, lr]; a bare key found in one group."""
    head, _, rest = key.partition(".")
    fields = {f.name for f in dataclasses.fields(config)}
    if head not in fields:
        owners = [] if rest else _groups_with(config, head)
        if len(owners) != 1:
            where = f" (in groups {owners}: write one of {[f'{g}.{head}' for g in owners]})" if owners else ""
            raise InputError(f"{name} has no option {key!r}{where}")
        return [owners[0], head]
    if not rest:
        return [head]
    inner = getattr(config, head)
    if not is_group(inner):
        raise InputError(f"{name}: {head!r} is not a group of settings, so {key!r} does not exist")
    return [head, *_option_path(inner, rest, f"{name}.{head}")]


def _groups_with(config: Any, key: str) -> list[str]:
    """The groups of ``config`` that have a field ``key``."""
    return [f.name for f in dataclasses.fields(config) if is_group(value := getattr(config, f.name))
            and key in {g.name for g in dataclasses.fields(value)}]


def _apply(config: Any, changes: Mapping[str, Any]) -> Any:
    """``config`` with ``changes`` (a nested mapping for groups) made in one step per group, so checked once."""
    return dataclasses.replace(config, **{
        key: _apply(getattr(config, key), value) if isinstance(value, dict) else value for key, value in changes.items()
    })


def has_option(config_cls: Any, key: str) -> bool:
    """Whether ``key`` (``"lr"``, ``"base.lr"``) names an option of ``config_cls``, directly or in one group."""
    try:
        _option_path(config_cls(), key, config_cls.__name__)
    except InputError:
        return False
    return True


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
    refused when that is not ``experiment``. A group of settings is a TOML table
    (``[base]``) and an override key with a dot (``"base.lr"``); a key without a dot
    that is not a field reaches the one group that has it (``"model"`` -> ``base.model``).
    A quick run of a loaded model (``base.model`` not ``"tiny"``) starts from
    ``Config.quick()`` with the config's ``QUICK_LOADED`` changes (option -> value), when
    it has them: a smaller design that a 100M+ model on a CPU finishes in minutes.
    """
    table, where = _toml_table(toml_path, experiment)
    start = config_cls.quick() if quick else config_cls()
    loaded_changes = getattr(config_cls, "QUICK_LOADED", None)
    if quick and loaded_changes and _model_named(start, table, overrides) != "tiny":
        start = _layered(start, None, "", loaded_changes, config_cls.__name__)
    return _layered(start, table, where, overrides, config_cls.__name__)


def _model_named(config: Any, table: Mapping[str, Any] | None, overrides: Mapping[str, Any] | None) -> Any:
    """The ``base.model`` the overrides, else the TOML table, else ``config`` give (None without a base group)."""
    given = overrides or {}
    base = (table or {}).get("base")
    for key in ("base.model", "model"):
        if key in given:
            return given[key]
    if isinstance(base, dict) and "model" in base:
        return base["model"]
    return getattr(getattr(config, "base", None), "model", None)


def _toml_table(toml_path: str | os.PathLike[str] | None, experiment: str | None) -> tuple[dict | None, str]:
    """The recipe file's table (without its ``experiment`` key) and how errors name the file; (None, "") for none."""
    if toml_path is None:
        return None, ""
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
    return table, f"config file {where!r}"


def _layered(config: Any, table: Mapping[str, Any] | None, where: str, overrides: Mapping[str, Any] | None,
             name: str) -> Any:
    """``config`` with the TOML ``table`` and then the ``overrides`` (option -> value) applied."""
    if table is not None:
        config = _with_changes(config, table, where)
    changes: dict[str, Any] = {}
    for key, value in (overrides or {}).items():
        *groups, field_name = _option_path(config, key, name)
        inner = changes
        for g in groups:
            inner = inner.setdefault(g, {})
        inner[field_name] = value
    return _apply(config, changes) if changes else config


def _plain(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def config_to_toml(config: Any, *, experiment: str | None = None) -> str:
    """The resolved config as TOML (it loads back to an equal config; groups as tables), naming its experiment."""
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


