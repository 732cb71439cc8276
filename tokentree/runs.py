"""Running experiments: the registry, configs in TOML, and output folders written atomically.

An experiment is a module with a frozen dataclass ``Config`` (every field has a
default; ``Config.quick()`` gives a small version) and ``run(config) -> result``, where
the result has ``to_dict()`` (result.json), ``summary_markdown()``, ``plot(folder)`` and
``terminal_summary()``. Experiments are registered as entry points of the group
``tokentree.experiments`` (see pyproject.toml), so other packages can add their own.

Outputs go to a temporary folder beside the target, which replaces the target only
once everything is written: a run that fails midway leaves earlier results untouched.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import math
import os
import tomllib
from collections.abc import Mapping
from importlib.metadata import entry_points
from pathlib import Path
from types import ModuleType
from typing import Any

from tokentree.errors import InputError
from tokentree.storage import write_output_folder

__all__ = [
    "ENTRY_POINT_GROUP",
    "available_experiments",
    "load_experiment",
    "resolve_config",
    "config_to_toml",
    "dumps_json",
    "write_output_folder",
    "write_run_outputs",
]

ENTRY_POINT_GROUP = "tokentree.experiments"


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
) -> Any:
    """Defaults, then ``Config.quick()`` if asked, then the TOML file, then ``overrides``."""
    config = config_cls.quick() if quick else config_cls()
    fields = {f.name for f in dataclasses.fields(config_cls)}
    changes: dict[str, Any] = {}
    if toml_path is not None:
        try:
            with open(toml_path, "rb") as f:
                table = tomllib.load(f)
        except FileNotFoundError:
            raise InputError(f"config file {os.fspath(toml_path)!r} does not exist") from None
        except tomllib.TOMLDecodeError as exc:
            raise InputError(f"config file {os.fspath(toml_path)!r} is not valid TOML: {exc}") from None
        unknown = sorted(set(table) - fields)
        if unknown:
            raise InputError(
                f"config file {os.fspath(toml_path)!r} has unknown keys {unknown}; valid keys: {sorted(fields)}"
            )
        for key, value in table.items():
            changes[key] = _coerce(getattr(config, key), value, f"{os.fspath(toml_path)}: {key}")
    for key, value in (overrides or {}).items():
        if key not in fields:
            raise InputError(f"{config_cls.__name__} has no option {key!r}")
        changes[key] = value
    return dataclasses.replace(config, **changes)


def _plain(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value


def config_to_toml(config: Any) -> str:
    """The resolved config as TOML (it loads back to an equal config)."""
    import tomli_w

    return tomli_w.dumps({k: _plain(v) for k, v in dataclasses.asdict(config).items()})


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


def dumps_json(obj: Any) -> str:
    """Deterministic JSON: shortest round-trip floats, inf and nan as strings, fixed key order."""
    return json.dumps(_json_safe(obj), indent=1, allow_nan=False) + "\n"


def write_run_outputs(folder: Path, config: Any, result: Any) -> None:
    """An experiment's standard outputs: config.toml, result.json, summary.md and its plots."""
    (folder / "config.toml").write_text(config_to_toml(config), encoding="utf-8")
    (folder / "result.json").write_text(dumps_json(result.to_dict()), encoding="utf-8")
    (folder / "summary.md").write_text(result.summary_markdown(), encoding="utf-8")
    result.plot(folder)
