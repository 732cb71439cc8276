"""The ``tokentree`` command line (also ``python -m tokentree``).

Subcommands:

* ``tokentree build``: tokenize text (files, folders, JSONL or a built-in corpus) and
  write its token tree to an ``.npz`` file;
* ``tokentree info``: describe a tree file; ``tokentree query``: count a text in it or list
  its heaviest symbols;
* ``tokentree run NAME``: run a registered experiment (``tokentree run --list``) and
  write its config, result.json, records.csv, summary.md, plots and run.json into an
  output folder (docs/experiments.md §schema).

Every choice offered comes from the code's own constants, and every option's help
states its default.

One module per command family: ``build`` (build), ``info`` (info, query), ``run`` (run);
this module assembles the parser and turns errors into one line and an exit status.
"""

from __future__ import annotations

import argparse
import errno
import os
import signal
import sys
import threading
from collections.abc import Sequence
from typing import Any

from tokentree.cli._common import formatter
from tokentree.cli.build import add_build, run_build
from tokentree.cli.info import add_info, add_query, describe_tree, run_info, run_query
from tokentree.cli.run import RUN_KIND, add_run, run_experiment
from tokentree.infra.errors import InputError, InputTypeError, MemoryEstimateError

__all__ = ["main", "describe_tree", "RUN_KIND"]


def _parser() -> argparse.ArgumentParser:
    from tokentree.infra.version import __version__

    parser = argparse.ArgumentParser(
        prog="tokentree",
        description="Token trees, Huffman codes and the elasticity of joint compression "
        "(Ji et al., ACL 2025). Theory: docs/theory.md; experiments: docs/experiments.md.",
        epilog="examples:\n  tokentree run hooke\n  tokentree build --builtin pydoc -o pydoc.npz\n"
        "  tokentree info pydoc.npz",
        formatter_class=formatter,
    )
    parser.add_argument("--version", action="version", version=f"tokentree {__version__}")
    parser.add_argument(
        "--debug", action="store_true", help="show the full traceback of an error (default: one line)"
    )
    bars = parser.add_mutually_exclusive_group()
    bars.add_argument(
        "--progress", dest="global_progress", action="store_const", const=True, default=None,
        help="draw progress bars even off a terminal (default: on a terminal or in Jupyter only; "
        "the environment variable TOKENTREE_PROGRESS=1/0 does the same)",
    )
    bars.add_argument(
        "--quiet", dest="global_progress", action="store_const", const=False, help="never draw progress bars",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    add_build(sub)
    add_info(sub)
    add_query(sub)
    add_run(sub)
    return parser


class Stopped(KeyboardInterrupt):
    """SIGTERM, raised where the program is, so that every clean-up runs (temporary files go, outputs stay whole)."""


_sigterm_received = threading.Event()


def _stop(signum: int, frame: Any) -> None:
    _sigterm_received.set()  # remembered: a library may turn the exception into its own (numba: an ImportError)
    raise Stopped


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT):
        where = f" {exc.filename}" if exc.filename else ""
        return (f"cannot write{where}: {exc.strerror}; free some space or choose another place (nothing was "
                "half-written: earlier outputs are as they were)")
    if isinstance(exc, OSError) and exc.strerror:
        where = f" {exc.filename}" if exc.filename else ""
        return f"cannot use{where}: {exc.strerror}; check the path and its permissions"
    return " ".join(str(exc).split()) or type(exc).__name__


def _exit_status(args: argparse.Namespace, exc: BaseException) -> int:
    """The status for what ended a command, after its one line on stderr; what is a bug is raised again."""
    stopped = _sigterm_received.is_set()  # set by the handler before it raises Stopped
    if isinstance(exc, KeyboardInterrupt) or stopped:  # Ctrl-C or SIGTERM: the clean-ups have run on the way here
        if args.debug:
            raise exc
        how = "SIGTERM" if stopped else "an interrupt"
        print(f"tokentree {args.command}: stopped by {how}; nothing was half-written (each output is as it was, or "
              "complete if it was already in place)", file=sys.stderr)
        return 143 if stopped else 130
    if isinstance(exc, BrokenPipeError):  # `tokentree info x | head`: the reader left, nothing is wrong
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    if isinstance(exc, (InputError, InputTypeError, MemoryEstimateError, OSError)) and not args.debug:
        print(f"tokentree {args.command}: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    raise exc


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status (2 for bad input or an unusable path, with a one-line message).

    ``--debug`` shows the traceback instead.
    """
    from tokentree.infra import progress

    args = _parser().parse_args(argv)
    commands = {"build": run_build, "info": run_info, "query": run_query, "run": run_experiment}
    before = progress.progress_switch()
    progress.set_progress(args.global_progress if args.global_progress is not None else before)
    on_main = threading.current_thread() is threading.main_thread()
    sigterm = signal.signal(signal.SIGTERM, _stop) if on_main else None
    try:
        return commands[args.command](args)
    except BaseException as exc:
        return _exit_status(args, exc)
    finally:
        progress.set_progress(before)  # main() called from Python leaves the caller's switch as it was
        if on_main:
            signal.signal(signal.SIGTERM, sigterm)
            _sigterm_received.clear()  # the next command starts with no SIGTERM on record
