"""Experiment configs: bounds declared once beside the field, and nested groups of fields.

A config is a frozen dataclass that inherits :class:`Checked`. A field made with
:func:`bounded` carries its rule (a range, a choice, a list of such values), checked when
the config is made, with the field's own name in the message; :meth:`Checked.validate`
holds the rules that tie several fields together. A field made with :func:`group` holds
a whole settings dataclass (how theta_0 is made, how a fine-tune runs), so a TOML recipe
says ``[base] d_model = 128`` once instead of copying flat fields into every experiment.

>>> @dataclass(frozen=True)
... class Settings(Checked):
...     lr: float = bounded(1e-4, minimum=0.0, exclusive=True)
...     steps: int = bounded(10, minimum=1)
>>> @dataclass(frozen=True)
... class Config(Checked):
...     name: str = bounded("a", choices=("a", "b"))
...     sizes: tuple[int, ...] = bounded((1, 2), minimum=1)
...     train: Settings = group(Settings)
>>> Config(train=Settings(lr=1e-3)).train.lr
0.001
>>> Config(sizes=(1, 0))
Traceback (most recent call last):
...
tokentree.infra.errors.InputError: sizes[1] must be an integer >= 1; got 0
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from tokentree.infra.checks import check_choice, check_float, check_int, check_list

__all__ = ["Bounds", "Checked", "bounded", "group", "is_group"]


@dataclass(frozen=True)
class Bounds:
    """A field's rule: a numeric range (``exclusive``: strictly above ``minimum``; ``integer``: whole
    numbers only) or a set of choices."""

    minimum: float | None = None
    maximum: float | None = None
    exclusive: bool = False
    choices: Sequence[Any] | None = None
    integer: bool = False

    def check(self, value: Any, name: str) -> None:
        """Refuse ``value`` (or, for a tuple, any of its items) outside the rule, naming ``name``."""
        if isinstance(value, tuple):
            check_list(value, name, self._check_one, min_length=1)
        else:
            self._check_one(value, name)

    def _check_one(self, value: Any, name: str) -> Any:
        if isinstance(value, tuple):
            return check_list(value, name, self._check_one, min_length=0)
        if self.choices is not None:
            return check_choice(value, name, tuple(self.choices))
        if self.integer:
            low = None if self.minimum is None else int(self.minimum) + int(self.exclusive)
            return check_int(value, name, minimum=low, maximum=None if self.maximum is None else int(self.maximum))
        return check_float(value, name, minimum=self.minimum, maximum=self.maximum, exclusive=self.exclusive)


def _is_int(value: Any) -> bool:
    if isinstance(value, tuple):
        return bool(value) and all(_is_int(v) for v in value)
    return isinstance(value, int) and not isinstance(value, bool)


def bounded(
    default: Any,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    exclusive: bool = False,
    choices: Sequence[Any] | None = None,
) -> Any:
    """A dataclass field with ``default`` whose values must lie within the bounds (or be one of ``choices``).

    Integer defaults get integer checks; a tuple default asks for a non-empty list and has every item checked.
    """
    bounds = Bounds(minimum, maximum, exclusive, tuple(choices) if choices is not None else None, _is_int(default))
    return dataclasses.field(default=default, metadata={"bounds": bounds})


def group(settings: Callable[[], Any]) -> Any:
    """A field holding a settings dataclass (made with its defaults unless given): a ``[table]`` in TOML."""
    return dataclasses.field(default_factory=settings, metadata={"group": True})


def is_group(value: Any) -> bool:
    """Whether ``value`` is a settings dataclass instance (a config group)."""
    return dataclasses.is_dataclass(value) and not isinstance(value, type)


class Checked:
    """Mixin for a frozen config dataclass: every :func:`bounded` field is checked, then :meth:`validate`."""

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            bounds = f.metadata.get("bounds")
            if bounds is not None:
                bounds.check(getattr(self, f.name), f.name)
        self.validate()

    def validate(self) -> None:
        """Rules that tie several fields together (override; raise InputError naming the fields)."""
