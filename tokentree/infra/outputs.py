"""Output folders that never lose anything: checked first, replaced only if they are ours, swapped atomically.

Every folder tokentree writes (a run's outputs, a model checkpoint, a model cache, a
partitioned tree) goes through :func:`write_output_folder`:

* **Checked before any work** (:func:`check_output_folder`, :func:`claim_output_folder`):
  the path must be a folder or not exist yet, its parent must be writable (tried, by
  creating the lock file), and a folder that exists may be replaced only if it is empty
  or carries the marker ``.tokentree-output.json`` that only tokentree writes: its kind
  (run, checkpoint, ...), its label (the experiment's name) and the list of files
  tokentree wrote there. Anything else (a thesis, a dataset, a folder that merely looks
  like a run) is refused with a message, unless the caller passes ``overwrite=True``
  (``--overwrite``). A folder that contains the current directory is never replaced.
* **Only its own files are replaced**: files in the folder that are not in the marker's
  list (``notes.md``, an analysis folder) are carried into the new output (hard links,
  so nothing is copied and nothing can be lost); one whose name the new output now
  writes is kept beside it as ``NAME.kept`` with a warning.
* **One writer at a time** (:mod:`tokentree.infra.output_lock`): a second process
  writing the same path is refused at once, naming the first one's pid; a lock left by
  a killed process is stale and taken over.
* **Written beside the target** into a hidden temporary folder named after the
  process (``.NAME.tmp-PID-RANDOM``), then put in place with one atomic exchange of the
  two paths (Linux ``renameat2(RENAME_EXCHANGE)``), so that at every instant the path
  holds either the complete old folder or the complete new one: a run killed at any
  point loses nothing. Where the exchange is not available the old folder is moved
  aside first, and a later call restores it if a crash left the path empty. Temporary
  folders of processes that are no longer alive are removed by the next writer; those
  of a live process never are.
* **Permissions follow the umask**, like any file the user creates (temporary files
  would otherwise keep their private 0600 / 0700 modes).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import hashlib
import json
import os
import shutil
import signal
import tempfile
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

from tokentree.infra.errors import OutputPathError
from tokentree.infra.output_lock import holds_lock, lock_output, pid_alive, pid_of_temporary, temporary_prefix

__all__ = [
    "MARKER", "KEPT_SUFFIX", "check_output_folder", "check_output_file", "claim_output_folder", "write_output_folder",
    "umask_mode", "read_marker", "damaged_files",
]

#: The file that marks a folder as tokentree's own output: its kind, label and the files tokentree wrote.
MARKER = ".tokentree-output.json"
#: A file of the user's whose name a new output writes is kept as NAME + this suffix.
KEPT_SUFFIX = ".kept"

_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def umask_mode(mode: int) -> int:
    """``mode`` with the process's umask applied (what ``open`` or ``mkdir`` would give)."""
    mask = os.umask(0)
    os.umask(mask)
    return mode & ~mask


def read_marker(folder: Path) -> dict | None:
    """The marker of a tokentree output folder (``kind``, ``label``, ``files``), or None if it has none."""
    try:
        marker = json.loads((folder / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(marker, dict) or not isinstance(marker.get("kind"), str):
        return None
    files = marker.get("files")
    if files is not None and not (isinstance(files, list) and all(isinstance(f, str) for f in files)):
        return None
    return marker


def _temporaries(out: Path, tag: str) -> list[Path]:
    """Temporary siblings of ``out`` left by processes that are no longer alive."""
    found = []
    for sibling in sorted(out.parent.glob(f".{out.name}.{tag}-*")):
        pid = pid_of_temporary(sibling, out, tag)
        if pid is not None and not pid_alive(pid):
            found.append(sibling)
    return found


def _recover(out: Path) -> None:
    """Put back an old output that a crash between two renames left beside an empty path."""
    if out.exists() or out.is_symlink():
        return
    for old in _temporaries(out, "old"):
        if (old / MARKER).is_file():
            old.rename(out)
            return


def _remove_leftovers(out: Path) -> None:
    for leftover in [*_temporaries(out, "tmp"), *_temporaries(out, "old")]:
        shutil.rmtree(leftover, ignore_errors=True)


def _what(marker: dict) -> str:
    label = marker.get("label")
    return f"a tokentree {marker['kind']} folder" + (f" of {label}" if label else "")


def check_output_folder(
    out: str | os.PathLike[str], *, kind: str, label: str | None = None, overwrite: bool = False
) -> Path:
    """The absolute path of ``out`` if tokentree may write a folder of ``kind`` there; else OutputPathError.

    Call it before expensive work, so that a bad path fails in a second, not after an hour
    (:func:`claim_output_folder` also takes the lock and tries writing). A folder that
    exists must be empty, or carry the marker of an output of the same ``kind`` (and
    ``label``, when both have one); ``overwrite=True`` accepts any folder.
    """
    if not os.fspath(out).strip():
        raise OutputPathError("the output path is empty; give a folder such as runs/mine")
    path = Path(os.path.abspath(os.fspath(out)))
    here = Path.cwd().resolve()
    resolved = path.resolve()
    if resolved == here or resolved in here.parents:
        raise OutputPathError(
            f"{path} contains the current directory, so it cannot be replaced; give a new folder such as runs/mine"
        )
    _recover(path)
    if path.exists() or path.is_symlink():
        if not path.is_dir():
            raise OutputPathError(f"{path} exists and is not a folder; give a folder path (it is replaced as a whole)")
        entries = sorted(p.name for p in path.iterdir())
        marker = read_marker(path)
        same = marker is not None and marker["kind"] == kind and (
            label is None or marker.get("label") in (None, label))
        if entries and not same and not overwrite:
            shown = ", ".join(entries[:3]) + (", ..." if len(entries) > 3 else "")
            what = _what(marker) if marker else f"other files ({shown}) and no tokentree marker ({MARKER})"
            wanted = f"{kind} folder" + (f" of {label}" if label else "")
            raise OutputPathError(
                f"{path} already holds {what}; tokentree replaces only an earlier {wanted} of its own. "
                "Choose another output folder, or pass --overwrite (overwrite=True) to replace it with everything in it"
            )
    parent = path.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise OutputPathError(f"cannot create {path}: {parent} is a file, not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputPathError(f"cannot write in {parent} (permission denied); choose an output folder you can write to")
    return path


def check_output_file(out: str | os.PathLike[str]) -> Path:
    """The absolute path of output file ``out`` if it can be written (tried); else OutputPathError, at once."""
    if not os.fspath(out).strip():
        raise OutputPathError("the output path is empty; give a file such as tree.npz")
    path = Path(os.path.abspath(os.fspath(out)))
    if path.is_dir():
        raise OutputPathError(f"{path} is a folder; give the path of a file to write, such as {path / 'tree.npz'}")
    parent = path.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise OutputPathError(f"cannot create {path}: {parent} is a file, not a folder")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=temporary_prefix(path, "tmp"), dir=path.parent)  # as atomic_write
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise OutputPathError(
            f"cannot write {path}: {parent} is not writable ({exc.strerror}); choose a place you can write to"
        ) from None
    return path


@contextlib.contextmanager
def claim_output_folder(
    out: str | os.PathLike[str], *, kind: str, label: str | None = None, overwrite: bool = False
) -> Iterator[Path]:
    """Check ``out`` and hold its lock for the ``with`` block: call it before the work that fills the folder.

    :func:`write_output_folder` inside the block writes under the same lock. A second
    process claiming the same path meanwhile gets OutputPathError at once.
    """
    path = check_output_folder(out, kind=kind, label=label, overwrite=overwrite)
    with lock_output(path):
        yield path


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two existing paths (Linux renameat2); False where the system cannot."""
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False
    raise OSError(code, os.strerror(code), os.fspath(b))


def _put_in_place(tmp: Path, out: Path) -> None:
    if not (out.exists() or out.is_symlink()):
        tmp.rename(out)
        return
    if _exchange(tmp, out):
        shutil.rmtree(tmp, ignore_errors=True)  # tmp now holds the old folder
        return
    old = Path(tempfile.mkdtemp(prefix=temporary_prefix(out, "old"), dir=out.parent))
    old.rmdir()
    out.rename(old)
    tmp.rename(out)
    shutil.rmtree(old, ignore_errors=True)


def _listing(folder: Path) -> list[str]:
    """Every file and link under ``folder`` (and every empty folder, with a trailing /), relative, sorted."""
    found = []
    for root, dirs, files in os.walk(folder):
        here = Path(root).relative_to(folder)
        found += [(here / name).as_posix() for name in files]
        found += [(here / name).as_posix() for name in dirs if os.path.islink(os.path.join(root, name))]
        if not dirs and not files and root != os.fspath(folder):
            found.append(here.as_posix() + "/")
    return sorted(found)


def _link(source: Path, target: Path) -> None:
    """``target`` as a second name of ``source`` (a hard link; a copy where links are not allowed)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if source.is_symlink():
        os.symlink(os.readlink(source), target)
    elif source.is_dir():
        target.mkdir(exist_ok=True)
    else:
        try:
            os.link(source, target)
        except OSError:
            shutil.copy2(source, target)


def _free_name(tmp: Path, name: str) -> str | None:
    """``name`` if the new output leaves it free; else the name to keep the user's file under (NAME.kept)."""
    parts = list(Path(name.rstrip("/")).parts)
    for i in range(1, len(parts) + 1):
        here = tmp.joinpath(*parts[:i])
        if os.path.lexists(here) and (i == len(parts) or not here.is_dir() or here.is_symlink()):
            while os.path.lexists(tmp.joinpath(*parts[:i])):
                parts[i - 1] += KEPT_SUFFIX
            return "/".join(parts)
    return None


def _carry_user_files(out: Path, tmp: Path, overwrite: bool) -> list[str]:
    """Link into ``tmp`` the files of ``out`` that tokentree did not write; returns those kept as NAME.kept."""
    if not out.is_dir() or out.is_symlink():
        return []
    marker = read_marker(out)
    if marker is None and overwrite:
        return []  # --overwrite on a foreign folder: replaced with everything in it, as asked
    ours = set(marker["files"]) if marker is not None and marker.get("files") is not None else None
    kept = []
    for name in _listing(out):
        if name == MARKER or (ours is not None and name in ours):
            continue
        new = _free_name(tmp, name)
        if name.endswith("/") and (tmp / name).is_dir():
            continue  # an empty folder of the user's where the new output has a folder of that name
        if new is None:
            _link(out / name, tmp / name)
        elif marker is None or ours is not None:  # (an older marker has no file list: its names were ours)
            _link(out / name, tmp / new)
            kept.append(f"{name} -> {new}")
    return kept


@contextlib.contextmanager
def _signals_deferred() -> Iterator[None]:
    """SIGINT and SIGTERM wait until the block is done (they arrive just after it)."""
    wanted = {signal.SIGINT, signal.SIGTERM}
    before = signal.pthread_sigmask(signal.SIG_BLOCK, wanted)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, before)


def _sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def damaged_files(folder: str | os.PathLike[str]) -> list[str]:
    """Files of an output written with ``checksums=True`` that are missing or no longer match their checksum.

    Empty for an intact folder, and for one written without checksums (nothing to compare).
    """
    folder = Path(folder)
    sums = (read_marker(folder) or {}).get("sha256")
    if not isinstance(sums, dict):
        return []
    return sorted(name for name, digest in sums.items()
                  if not (folder / name).is_file() or _sha256(folder / name) != digest)


def write_output_folder(
    out: str | os.PathLike[str], write: Callable[[Path], None], *, kind: str, label: str | None = None,
    overwrite: bool = False, checksums: bool = False,
) -> Path:
    """Call ``write(tmp)`` on a fresh temporary folder, then put it in place of ``out`` (see the module docstring).

    If ``write`` raises, the temporary folder is removed and ``out`` is left as it was.
    ``checksums=True`` records every file's sha256 in the marker, for :func:`damaged_files`
    (a flipped byte in a weights file is otherwise invisible).
    """
    path = Path(os.path.abspath(os.fspath(out)))
    held = holds_lock(path)  # claimed before the work: files the user added since then are carried over
    claim = contextlib.nullcontext(path) if held else claim_output_folder(out, kind=kind, label=label,
                                                                          overwrite=overwrite)
    with claim as path:
        _remove_leftovers(path)
        tmp = Path(tempfile.mkdtemp(prefix=temporary_prefix(path, "tmp"), dir=path.parent))
        try:
            os.chmod(tmp, umask_mode(0o777))
            write(tmp)
            files = _listing(tmp)
            marker: dict = {"kind": kind, "label": label, "files": files}
            if checksums:
                marker["sha256"] = {name: _sha256(tmp / name) for name in files if (tmp / name).is_file()}
            (tmp / MARKER).write_text(json.dumps(marker, indent=1) + "\n", encoding="utf-8")
            with _signals_deferred():
                kept = _carry_user_files(path, tmp, overwrite)
                _put_in_place(tmp, path)
        except OSError as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            if exc.errno is None or not (exc.filename is None or os.fspath(exc.filename).startswith(os.fspath(tmp))):
                raise
            raise OSError(exc.errno, exc.strerror, os.fspath(path)) from None  # the output, not a hidden folder
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    if kept:
        warnings.warn(
            f"{path}: your files {', '.join(kept)} were kept under new names, since the new output writes their "
            "names", UserWarning, stacklevel=2,
        )
    return path
