"""One writer per output path: a lock file beside it, held by the process that writes.

``.NAME.lock`` sits next to the output ``NAME`` (never inside it: the folder itself is
swapped). It is taken with ``flock`` and holds the writer's pid, host and start time
(for the message a second writer gets). The kernel drops an ``flock`` when its process
dies, however it dies, so a lock file left by a killed run is stale by construction and
is taken over at once; where a file system has no ``flock``, a lock whose pid is no
longer alive on this host counts as stale.

Creating the lock file is also the honest test that the place is writable: as root,
``os.access`` says yes to read-only and virtual file systems alike.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

from tokentree.infra.errors import OutputPathError

__all__ = ["OutputBusyError", "lock_output", "holds_lock", "pid_alive", "temporary_prefix", "pid_of_temporary"]

class OutputBusyError(OutputPathError):
    """Another live process is writing the same output path."""


#: Output paths whose lock this process holds (so that nested writers do not lock themselves out).
_HELD: set[Path] = set()


def pid_alive(pid: int) -> bool:
    """True when a process with this id exists on this machine (another user's included)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def temporary_prefix(path: Path, tag: str) -> str:
    """Name prefix of this process's temporary siblings of ``path``: ``.NAME.TAG-PID-`` (mkdtemp adds the rest)."""
    return f".{path.name}.{tag}-{os.getpid()}-"


def pid_of_temporary(sibling: Path, path: Path, tag: str) -> int | None:
    """The pid in a temporary sibling's name (see :func:`temporary_prefix`); None for names of another pattern."""
    head = f".{path.name}.{tag}-"
    if not sibling.name.startswith(head):
        return None
    pid, _, rest = sibling.name[len(head) :].partition("-")
    return int(pid) if pid.isdigit() and rest else None


def holds_lock(path: Path) -> bool:
    """True when this process holds the lock of output ``path``."""
    return path in _HELD


def _lock_path(path: Path) -> Path:
    return path.parent / f".{path.name}.lock"


def _describe(lock: Path) -> tuple[str, int | None]:
    try:
        owner = json.loads(lock.read_text(encoding="utf-8"))
        pid = int(owner["pid"])
        return f"pid {pid} on {owner.get('host', '?')}, since {owner.get('started_utc', '?')}", pid
    except (OSError, ValueError, KeyError, TypeError):
        return "a process that has not written its id yet", None


def _busy(path: Path, who: str) -> OutputBusyError:
    return OutputBusyError(
        f"{path} is being written by another tokentree process ({who}); wait for it to finish, or choose another "
        "output folder"
    )


def _open_lock(path: Path) -> tuple[int, Path]:
    lock = _lock_path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666), lock
    except OSError as exc:
        place = path.parent if path.parent.is_dir() else Path(exc.filename or path.parent)
        raise OutputPathError(
            f"cannot write {path}: {place} is not writable ({exc.strerror}); choose an output place you can write to"
        ) from None


def _take(fd: int, lock: Path, path: Path) -> bool:
    """Lock ``fd``; False if ``lock`` was replaced meanwhile (retry), OutputPathError if another process holds it."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise _busy(path, _describe(lock)[0]) from None
    except OSError as exc:  # no flock on this file system: the pid decides
        if exc.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
            raise
        who, pid = _describe(lock)
        if pid is not None and pid != os.getpid() and pid_alive(pid):
            raise _busy(path, who) from None
    try:
        return os.fstat(fd).st_ino == os.stat(lock).st_ino  # the file we locked is still the lock file
    except FileNotFoundError:
        return False


@contextlib.contextmanager
def lock_output(path: Path) -> Iterator[Path]:
    """Hold the lock of output ``path`` for the ``with`` block (reentrant within this process).

    Raises OutputPathError at once when another live process holds it, or when the place
    cannot be written.
    """
    if path in _HELD:
        yield path
        return
    while True:
        fd, lock = _open_lock(path)
        try:
            if _take(fd, lock, path):
                break
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)
    owner = {"pid": os.getpid(), "host": socket.gethostname(),
             "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    os.ftruncate(fd, 0)
    os.pwrite(fd, (json.dumps(owner) + "\n").encode(), 0)
    _HELD.add(path)
    try:
        yield path
    finally:
        _HELD.discard(path)
        with contextlib.suppress(OSError):
            if os.fstat(fd).st_ino == os.stat(lock).st_ino:
                lock.unlink()  # unlinked while still locked: a waiting process then finds a fresh file
        os.close(fd)
