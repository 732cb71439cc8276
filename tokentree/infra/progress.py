"""Progress bars that stay quiet when nobody is watching.

Whether a bar is drawn is decided, first to last, by: the ``show`` argument of the call;
the global switch :func:`set_progress` (the command line's ``--progress`` / ``--quiet``);
the environment variable ``TOKENTREE_PROGRESS`` (``1``/``on`` or ``0``/``off``); and
otherwise whether someone is watching: stderr is a terminal, or the code runs in a
Jupyter kernel. In Jupyter the bars are tqdm's notebook widgets (with ipywidgets
installed; text bars otherwise).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from tokentree.infra.errors import InputError

__all__ = [
    "progress", "progress_enabled", "progress_steps", "progress_bar", "set_progress", "progress_switch", "ENV_VARIABLE",
]

T = TypeVar("T")

ENV_VARIABLE = "TOKENTREE_PROGRESS"
_ON, _OFF = ("1", "on", "true", "yes"), ("0", "off", "false", "no")
_switch: bool | None = None


def set_progress(show: bool | None) -> None:
    """Turn every bar on (True) or off (False), or back to deciding by itself (None)."""
    global _switch
    if show is not None and not isinstance(show, bool):
        raise InputError(f"set_progress takes True, False or None; got {show!r}")
    _switch = show


def progress_switch() -> bool | None:
    """The global switch as :func:`set_progress` left it (None: not set)."""
    return _switch


def _in_jupyter() -> bool:
    shell = sys.modules.get("IPython")
    if shell is None or "ipykernel" not in sys.modules:
        return False
    ipython = shell.get_ipython()
    return ipython is not None and "IPKernelApp" in getattr(ipython, "config", {})


def progress_enabled(show: bool | None = None) -> bool:
    """True when a bar should be drawn (see the module docstring for the order of the rules)."""
    if show is not None:
        return show
    if _switch is not None:
        return _switch
    value = os.environ.get(ENV_VARIABLE, "").strip().lower()
    if value in _ON:
        return True
    if value in _OFF:
        return False
    if value not in ("", "auto"):
        raise InputError(f"{ENV_VARIABLE}={value!r} is not understood; use 1, 0 or auto")
    return sys.stderr.isatty() or _in_jupyter()


def progress(
    iterable: Iterable[T], *, desc: str, total: int | None = None, show: bool | None = None, unit: str = "it"
) -> Iterator[T]:
    """Wrap ``iterable`` in a tqdm bar on a terminal; a plain pass-through otherwise."""
    if not progress_enabled(show):
        yield from iterable
        return
    from tqdm.auto import tqdm

    yield from tqdm(iterable, desc=desc, total=total, unit=unit, leave=False, file=sys.stderr)


@contextmanager
def progress_steps(total: int, *, desc: str, show: bool | None = None) -> Iterator[Callable[[], None]]:
    """A bar over ``total`` steps of straight-line code: call the yielded function after each step."""
    if not progress_enabled(show):
        yield lambda: None
        return
    from tqdm.auto import tqdm

    with tqdm(total=total, desc=desc, leave=False, file=sys.stderr) as bar:
        yield bar.update


class _QuietBar:
    def update(self, n: int = 1, **postfix: float) -> None:
        pass


class _Bar:
    def __init__(self, bar: Any) -> None:
        self.bar = bar

    def update(self, n: int = 1, **postfix: float) -> None:
        if postfix:
            self.bar.set_postfix({k: f"{v:.4g}" for k, v in postfix.items()}, refresh=True)
        self.bar.update(n)


@contextmanager
def progress_bar(total: int, *, desc: str, show: bool | None = None, unit: str = "it") -> Iterator[Any]:
    """A bar whose ``update(n, loss=...)`` also shows named numbers (a training loss), or a silent stand-in."""
    if not progress_enabled(show):
        yield _QuietBar()
        return
    from tqdm.auto import tqdm

    with tqdm(total=total, desc=desc, leave=False, file=sys.stderr, unit=unit) as bar:
        yield _Bar(bar)
