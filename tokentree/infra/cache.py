"""Where tokentree keeps what it can rebuild: ``$TOKENTREE_CACHE``, else ``~/.cache/tokentree``.

numba's compiled kernels go to ``numba/`` in it (``NUMBA_CACHE_DIR``) unless the user set
``NUMBA_CACHE_DIR`` already: numba's default, a ``__pycache__`` beside the sources,
writes into the install folder, which may be read-only or shared by several users.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

__all__ = ["user_cache_dir", "use_user_numba_cache", "kernels_cached"]


def user_cache_dir() -> Path:
    """``$TOKENTREE_CACHE``, else ``~/.cache/tokentree`` (the same place as converted models)."""
    return Path(os.environ.get("TOKENTREE_CACHE", Path.home() / ".cache" / "tokentree"))


def use_user_numba_cache() -> Path:
    """Point numba's compile cache at the user cache (unless ``NUMBA_CACHE_DIR`` is set); returns the folder.

    Called when tokentree is imported, before any kernel module imports numba.
    """
    folder = os.environ.setdefault("NUMBA_CACHE_DIR", os.fspath(user_cache_dir() / "numba"))
    numba_config = getattr(sys.modules.get("numba"), "config", None)
    if numba_config is not None and not getattr(numba_config, "CACHE_DIR", ""):
        numba_config.CACHE_DIR = folder  # numba imported before tokentree: it read the environment already
    return Path(folder)


def kernels_cached(module_file: str) -> bool:
    """True when numba's cache already holds compiled functions of the module at ``module_file``."""
    stem = Path(module_file).stem
    folder = Path(os.environ.get("NUMBA_CACHE_DIR", ""))
    return bool(os.environ.get("NUMBA_CACHE_DIR")) and folder.is_dir() and any(folder.rglob(f"{stem}.*.nbi"))
