"""Output folders that never lose anything: checked first, replaced only if they are ours, swapped atomically.

Every folder tokentree writes (a run's outputs, a model checkpoint, a model cache) goes
through :func:`write_output_folder`:

* **Checked before any work** (:func:`check_output_folder`): the path must be a folder
  or not exist yet, its nearest existing parent must be a writable folder, and a folder
  that exists may be replaced only if it is empty or is an earlier output of the same
  kind, marked by the file ``.tokentree-output.json`` that every output folder carries.
  Anything else (a thesis, a dataset, a checkout) is refused with a message, unless the
  caller passes ``overwrite=True`` (``--overwrite``). A folder that contains the current
  directory is never replaced.
* **Written beside the target** into a hidden temporary folder, then put in place with
  one atomic exchange of the two paths (Linux ``renameat2(RENAME_EXCHANGE)``), so that at
  every instant the path holds either the complete old folder or the complete new one:
  a run killed at any point loses nothing. Where the exchange is not available the old
  folder is moved aside first, and a later call restores it if a crash left the path
  empty. Leftover temporary folders from killed runs are removed by the next call.
* **Permissions follow the umask**, like any file the user creates (temporary files
  would otherwise keep their private 0600 / 0700 modes).
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from tokentree.infra.errors import OutputPathError

__all__ = ["MARKER", "check_output_folder", "write_output_folder", "umask_mode"]

#: The file that marks a folder as tokentree's own output, with its kind.
MARKER = ".tokentree-output.json"

_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def umask_mode(mode: int) -> int:
    """``mode`` with the process's umask applied (what ``open`` or ``mkdir`` would give)."""
    mask = os.umask(0)
    os.umask(mask)
    return mode & ~mask


#: Outputs written before folders carried the marker, recognised by files they always held and a key
#: inside the JSON one: (files, json file, key).
_UNMARKED = {
    "run": (("config.toml", "result.json", "summary.md"), "result.json", "experiment"),
    "checkpoint": (("config.json", "model.safetensors", "optimizer.pt"), "config.json", "epochs_done"),
    "model cache": (("config.json", "model.safetensors", "tokenizer.json"), "config.json", "model_type"),
}


def _read_json(path: Path) -> object:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _kind_of(folder: Path) -> str | None:
    marker = _read_json(folder / MARKER)
    if isinstance(marker, dict) and isinstance(marker.get("kind"), str):
        return marker["kind"]
    for kind, (files, json_file, key) in _UNMARKED.items():
        if all((folder / name).is_file() for name in files):
            content = _read_json(folder / json_file)
            if isinstance(content, dict) and key in content:
                return kind
    return None


def _temporaries(out: Path, tag: str) -> list[Path]:
    return sorted(out.parent.glob(f".{out.name}.{tag}-*"))


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


def check_output_folder(out: str | os.PathLike[str], *, kind: str, overwrite: bool = False) -> Path:
    """The absolute path of ``out`` if tokentree may write a folder of ``kind`` there; else OutputPathError.

    Call it before expensive work, so that a bad path fails in a second, not after an hour.
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
        mine = _kind_of(path)
        if entries and mine != kind and not overwrite:
            shown = ", ".join(entries[:3]) + (", ..." if len(entries) > 3 else "")
            what = f"a tokentree {mine} folder" if mine else f"other files ({shown})"
            raise OutputPathError(
                f"{path} already holds {what}; tokentree replaces only an earlier {kind} folder of its own. "
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
    old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
    old.rmdir()
    out.rename(old)
    tmp.rename(out)
    shutil.rmtree(old, ignore_errors=True)


def write_output_folder(
    out: str | os.PathLike[str], write: Callable[[Path], None], *, kind: str, overwrite: bool = False
) -> Path:
    """Call ``write(tmp)`` on a fresh temporary folder, then put it in place of ``out`` (see the module docstring).

    If ``write`` raises, the temporary folder is removed and ``out`` is left as it was.
    """
    path = check_output_folder(out, kind=kind, overwrite=overwrite)
    _remove_leftovers(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
    try:
        os.chmod(tmp, umask_mode(0o777))
        write(tmp)
        (tmp / MARKER).write_text(json.dumps({"kind": kind}) + "\n", encoding="utf-8")
        _put_in_place(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path
