"""Progress bars that stay quiet when nobody is watching."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

__all__ = ["progress", "progress_enabled", "progress_steps", "progress_bar"]

T = TypeVar("T")


def progress_enabled(show: bool | None = None) -> bool:
    """True when a bar should be drawn: ``show`` if given, else whether stderr is a terminal."""
    if show is not None:
        return show
    return sys.stderr.isatty()


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
