"""What the subcommands share: the help layout and the one-line notes on stderr."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

__all__ = ["formatter", "save_figure", "say"]


def formatter(prog: str) -> argparse.HelpFormatter:
    return argparse.RawDescriptionHelpFormatter(prog, max_help_position=32)


def say(message: str) -> None:
    """A line on stderr saying what a long step is doing, when progress is shown (a terminal, --progress)."""
    from tokentree.infra.progress import progress_enabled

    if progress_enabled():
        print(f"tokentree: {message}", file=sys.stderr, flush=True)


def save_figure(fig: Any, path: Path) -> None:
    """Write ``fig`` as PNG at ``path``, whole or not at all (an earlier file stays until the new one is complete)."""
    from tokentree.trees.storage import atomic_write

    atomic_write(path, lambda f: fig.savefig(f, format="png"))
    print(f"wrote {path}", file=sys.stderr)
