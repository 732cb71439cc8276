"""Optional dependencies, imported when a feature first needs them, with the command that installs them.

``import tokentree`` stays light: torch, transformers, sympy, dask, constriction, zstandard
and vaderSentiment are imported only here, through :func:`optional_import`, so every
missing package is reported the same way: what needed it and the ``pip install`` line.
"""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["installed", "optional_import", "torch_module"]


def optional_import(module: str, needed_for: str, install: str, error: type[Exception] = ImportError) -> ModuleType:
    """``module``, imported; missing, an ``error`` saying ``needed_for`` needs it and how to ``install`` it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise error(f"{needed_for} needs {module}: {install}") from None


def installed(module: str) -> bool:
    """Whether ``module`` can be imported (for a choice between two ways, not for an error: see above)."""
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True


def torch_module() -> ModuleType:
    """``torch``, or an ImportError that says how to install its CPU build."""
    install = "pip install torch==2.13.0 (CPU build), then pip install 'tokentree[torch]'"
    return optional_import("torch", "the model bridge", install)
