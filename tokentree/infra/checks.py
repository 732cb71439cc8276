"""Validation of settings at public boundaries: one message shape, naming the setting, the rule and the value.

Configs call these in ``__post_init__``, so a bad value in a TOML file or on the command
line fails at once with its own name in the message, never later inside numpy or torch.

>>> check_int(3, "n_seeds", minimum=1)
3
>>> check_int(0, "n_seeds", minimum=1)
Traceback (most recent call last):
...
tokentree.infra.errors.InputError: n_seeds must be an integer >= 1; got 0
>>> check_float(float("nan"), "lr", minimum=0.0, exclusive=True)
Traceback (most recent call last):
...
tokentree.infra.errors.InputError: lr must be a finite number > 0; got nan
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from tokentree.infra.errors import InputError

__all__ = ["check_int", "check_float", "check_choice", "check_list"]

T = TypeVar("T")


def _bounds(minimum: float | None, maximum: float | None, exclusive: bool) -> str:
    parts = []
    if minimum is not None:
        parts.append(f"{'>' if exclusive else '>='} {minimum:g}")
    if maximum is not None:
        parts.append(f"<= {maximum:g}")
    return (" " + " and ".join(parts)) if parts else ""


def check_int(value: Any, name: str, *, minimum: int | None = None, maximum: int | None = None) -> int:
    """``value`` if it is an integer (not a bool) within the bounds."""
    ok = isinstance(value, int) and not isinstance(value, bool)
    if not ok or (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise InputError(f"{name} must be an integer{_bounds(minimum, maximum, False)}; got {value!r}")
    return int(value)


def check_float(
    value: Any, name: str, *, minimum: float | None = None, maximum: float | None = None, exclusive: bool = False
) -> float:
    """``value`` as a float if it is a finite number within the bounds (``exclusive``: strictly above ``minimum``)."""
    bad = isinstance(value, bool) or not isinstance(value, int | float)
    x = math.nan if bad else float(value)
    below = minimum is not None and (x <= minimum if exclusive else x < minimum)
    if bad or not math.isfinite(x) or below or (maximum is not None and x > maximum):
        raise InputError(f"{name} must be a finite number{_bounds(minimum, maximum, exclusive)}; got {value!r}")
    return x


def check_choice(value: Any, name: str, choices: Sequence[Any]) -> Any:
    """``value`` if it is one of ``choices``."""
    if value not in choices:
        raise InputError(f"{name} must be one of {tuple(choices)}; got {value!r}")
    return value


def check_list(
    values: Any, name: str, check_item: Callable[[Any, str], T], *, min_length: int = 1
) -> tuple[T, ...]:
    """``values`` as a tuple, each item checked by ``check_item(item, "name[i]")``."""
    if not isinstance(values, list | tuple) or len(values) < min_length:
        raise InputError(f"{name} must be a list of at least {min_length} values; got {values!r}")
    return tuple(check_item(v, f"{name}[{i}]") for i, v in enumerate(values))
