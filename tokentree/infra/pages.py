"""Handing memory a process is done with back to the operating system at once (Linux; elsewhere nothing).

An array numpy frees goes back to the system only if the allocator mapped it on its own:
glibc does so for blocks above a threshold that grows with the blocks freed (up to 32 MiB),
so parts of a build in pieces often stay in the heap after they are freed. A loop that
copies arrays into a new one can instead drop each source's pages as soon as they are
copied (``madvise(MADV_DONTNEED)``): only the memory still to be copied stays resident.

>>> a = np.ones(4 * PAGE_BYTES, dtype=np.uint8)
>>> release_pages(a, a.shape[0])  # its content is no longer needed
>>> dropped = int((a == 0).sum())  # the whole pages inside it read as zeros now (Linux; none elsewhere)
>>> dropped % PAGE_BYTES == 0 and dropped <= 4 * PAGE_BYTES and (dropped > 0) == sys.platform.startswith("linux")
True
"""

from __future__ import annotations

import ctypes
import functools
import mmap
import sys
from typing import Any

import numpy as np

__all__ = ["release_pages", "PAGE_BYTES"]

PAGE_BYTES = mmap.PAGESIZE
_MADV_DONTNEED = 4  # Linux


@functools.cache
def _madvise() -> Any:  # the libc function, or None where there is none
    if not sys.platform.startswith("linux"):
        return None
    try:
        f = ctypes.CDLL(None, use_errno=True).madvise
    except (OSError, AttributeError):  # pragma: no cover - no libc symbol
        return None
    f.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    f.restype = ctypes.c_int
    return f


def release_pages(a: np.ndarray, stop: int) -> None:
    """Give back the pages lying wholly inside ``a[:stop]``, whose content the caller no longer needs.

    Those elements read as zeros afterwards (a private mapping's dropped pages are refilled
    with zeros on the next touch); the rest of ``a`` is untouched. Only for a C-contiguous
    ``a`` that no one else reads: never for a view shared with a live object.
    """
    f = _madvise()
    if f is None or not a.flags.c_contiguous or stop <= 0:
        return
    address = a.ctypes.data
    first = -(-address // PAGE_BYTES) * PAGE_BYTES
    end = (address + min(stop, a.shape[0]) * a.itemsize) // PAGE_BYTES * PAGE_BYTES
    if end > first:
        f(first, end - first, _MADV_DONTNEED)  # a failure (locked pages) only leaves them resident
