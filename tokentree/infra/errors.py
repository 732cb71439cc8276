"""Exceptions raised by tokentree.

Every error message names the argument or file at fault, what was expected,
what was found, and how to fix it.
"""

from __future__ import annotations

__all__ = [
    "InputError",
    "InputTypeError",
    "TreeFileError",
    "MemoryEstimateError",
    "TextInputError",
    "OutputPathError",
]


class InputError(ValueError):
    """An argument has the right type but an invalid value."""


class InputTypeError(TypeError):
    """An argument has the wrong type or dtype."""


class TextInputError(InputError):
    """A text or JSONL input file has a bad line (reported as ``file:line``)."""


class TreeFileError(InputError):
    """A tree file is truncated, corrupt, foreign or from a newer format version."""


class MemoryEstimateError(MemoryError):
    """A build would need more memory than is available (pass ``force=True`` to try anyway)."""


class OutputPathError(InputError):
    """An output path cannot be written safely: a file, another program's folder, an unwritable parent."""
