"""What the subcommands share: the help layout and the one-line notes on stderr."""

from __future__ import annotations

import argparse
import sys

__all__ = ["formatter", "say"]


def formatter(prog: str) -> argparse.HelpFormatter:
    return argparse.RawDescriptionHelpFormatter(prog, max_help_position=32)



def say(message: str) -> None:
    """A line on stderr saying what a long step is doing, when progress is shown (a terminal, --progress)."""
    from tokentree.infra.progress import progress_enabled

    if progress_enabled():
        print(f"tokentree: {message}", file=sys.stderr, flush=True)

