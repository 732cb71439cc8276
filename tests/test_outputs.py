"""Output folders lose nothing: foreign folders and files are refused, the swap is atomic, permissions follow
the umask, and a run killed at any stage of writing leaves the complete old or the complete new output."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tokentree.cli import main
from tokentree.infra.errors import OutputPathError
from tokentree.infra.outputs import MARKER, check_output_folder, read_marker, write_output_folder

#: A process id no process can have (past the kernel's largest).
DEAD_PID = int(Path("/proc/sys/kernel/pid_max").read_text()) + 1


def _write(text: str):
    def write(folder: Path) -> None:
        (folder / "result.json").write_text(text)
        (folder / "sub").mkdir()
        (folder / "sub" / "plot.png").write_text(text)

    return write


def _content(folder: Path) -> str:
    return (folder / "result.json").read_text()


def test_a_folder_with_other_files_is_refused_and_kept(tmp_path):
    mine = tmp_path / "mydata"
    mine.mkdir()
    (mine / "thesis.tex").write_text("precious")
    with pytest.raises(OutputPathError, match=r"other files \(thesis.tex\).*--overwrite"):
        write_output_folder(mine, _write("new"), kind="run")
    assert (mine / "thesis.tex").read_text() == "precious" and sorted(os.listdir(tmp_path)) == ["mydata"]
    write_output_folder(mine, _write("new"), kind="run", overwrite=True)
    assert _content(mine) == "new" and not (mine / "thesis.tex").exists()


def test_only_an_earlier_output_of_the_same_kind_is_replaced(tmp_path):
    out = tmp_path / "out"
    write_output_folder(out, _write("first"), kind="run")
    assert (out / MARKER).is_file()
    write_output_folder(out, _write("second"), kind="run")
    assert _content(out) == "second" and sorted(os.listdir(tmp_path)) == ["out"]
    with pytest.raises(OutputPathError, match="already holds a tokentree run folder"):
        write_output_folder(out, _write("third"), kind="checkpoint")
    empty = tmp_path / "empty"
    empty.mkdir()
    write_output_folder(empty, _write("x"), kind="checkpoint")
    assert _content(empty) == "x"


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p.write_text("data"), "exists and is not a folder"),
        (lambda p: None, "is a file, not a folder"),
    ],
    ids=["output is a file", "parent is a file"],
)
def test_files_in_the_way_are_named(tmp_path, make, message):
    target = tmp_path / "x"
    if message.startswith("is a file"):
        target.write_text("a file")
        target = target / "run"
    else:
        make(target)
    with pytest.raises(OutputPathError, match=message):
        check_output_folder(target, kind="run")
    assert (tmp_path / "x").read_text() in ("data", "a file")


def test_empty_unwritable_and_enclosing_paths_are_refused(tmp_path, monkeypatch):
    with pytest.raises(OutputPathError, match="the output path is empty"):
        check_output_folder("", kind="run")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "keep.txt").write_text("x")
    for enclosing in (".", str(tmp_path), str(tmp_path.parent)):
        with pytest.raises(OutputPathError, match="contains the current directory"):
            check_output_folder(enclosing, kind="run", overwrite=True)
    monkeypatch.setattr(os, "access", lambda path, mode: False)  # the tests run as root, who may write anywhere
    with pytest.raises(OutputPathError, match="permission denied"):
        check_output_folder(tmp_path / "new" / "run", kind="run")


def test_a_failing_writer_leaves_the_old_output_and_no_temporaries(tmp_path):
    out = tmp_path / "run"
    write_output_folder(out, _write("first"), kind="run")

    def broken(folder: Path) -> None:
        (folder / "result.json").write_text("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        write_output_folder(out, broken, kind="run")
    assert _content(out) == "first" and sorted(os.listdir(tmp_path)) == ["run"]


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_permissions_follow_the_umask(tmp_path, umask):
    from tokentree import build_tree
    from tokentree.trees.storage import save_tree

    old = os.umask(umask)
    try:
        write_output_folder(tmp_path / "run", _write("x"), kind="run")
        saved = save_tree(build_tree([[1, 2]], depth=1), tmp_path / "tree.npz")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "run").stat().st_mode) == 0o777 & ~umask
    assert stat.S_IMODE((tmp_path / "run" / "result.json").stat().st_mode) == 0o666 & ~umask
    assert stat.S_IMODE(saved.stat().st_mode) == 0o666 & ~umask


def test_without_an_atomic_exchange_a_crash_between_the_renames_is_recovered(tmp_path, monkeypatch):
    import tokentree.infra.outputs as outputs

    out = tmp_path / "run"
    write_output_folder(out, _write("first"), kind="run")
    monkeypatch.setattr(outputs, "_exchange", lambda a, b: False)
    write_output_folder(out, _write("second"), kind="run")
    assert _content(out) == "second" and sorted(os.listdir(tmp_path)) == ["run"]
    # a crash after moving the old folder aside: the path is empty until the next call restores it
    old = tmp_path / f".run.old-{DEAD_PID}-crash"  # moved aside by a process that is gone
    out.rename(old)
    assert check_output_folder(out, kind="run") == out and _content(out) == "second"


CRASH = textwrap.dedent(
    """
    import os, sys
    from pathlib import Path
    import tokentree.infra.outputs as outputs

    stage, out = sys.argv[1], Path(sys.argv[2])
    real_exchange = outputs._exchange

    def write(folder):
        (folder / "result.json").write_text("new")
        if stage == "during write":
            os._exit(9)
        (folder / "sub").mkdir()
        (folder / "sub" / "plot.png").write_text("new")

    def exchange(a, b):
        if stage == "before the swap":
            os._exit(9)
        done = real_exchange(a, b)
        if stage == "after the swap":
            os._exit(9)
        return done

    outputs._exchange = exchange
    if stage == "before anything":
        os._exit(9)
    outputs.write_output_folder(out, write, kind="run")
    """
)


@pytest.mark.parametrize("stage", ["before anything", "during write", "before the swap", "after the swap", "none"])
def test_a_run_killed_at_any_stage_leaves_a_complete_output(tmp_path, stage):
    out = tmp_path / "run"
    write_output_folder(out, _write("old"), kind="run")
    proc = subprocess.run([sys.executable, "-c", CRASH, stage, str(out)], capture_output=True, text=True)
    assert proc.returncode == (0 if stage == "none" else 9), proc.stderr
    assert _content(out) in ("old", "new")
    assert (out / "sub" / "plot.png").read_text() == _content(out)  # complete: never a mix of old and new
    expected_new = stage in ("after the swap", "none")
    assert _content(out) == ("new" if expected_new else "old")
    write_output_folder(out, _write("next"), kind="run")  # the next run cleans up what the killed one left
    assert sorted(os.listdir(tmp_path)) == ["run"] and _content(out) == "next"


def test_cli_refuses_a_foreign_folder_before_running(tmp_path, capsys, monkeypatch):
    mine = tmp_path / "mydata"
    mine.mkdir()
    (mine / "thesis.tex").write_text("precious")
    import tokentree.experiments.hooke as hooke

    def never(*args, **kwargs):
        raise AssertionError("the experiment ran before the output folder was checked")

    monkeypatch.setattr(hooke, "run", never)
    assert main(["run", "hooke", "--quick", "--out", str(mine)]) == 2
    err = capsys.readouterr().err
    assert "thesis.tex" in err and "--overwrite" in err and err.count("\n") == 1
    assert (mine / "thesis.tex").read_text() == "precious"
    (tmp_path / "afile").write_text("x")
    assert main(["run", "hooke", "--quick", "--out", str(tmp_path / "afile")]) == 2
    assert "is not a folder" in capsys.readouterr().err


def test_cli_reports_os_errors_in_one_line_and_debug_shows_the_traceback(tmp_path, capsys):
    missing = tmp_path / "no" / "such.npz"
    assert main(["info", str(missing)]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    with pytest.raises(Exception, match="no such file"):
        main(["--debug", "info", str(missing)])


def test_a_closed_pipe_is_not_an_error(tmp_path, monkeypatch):
    """`tokentree info TREE | head`: the reader leaves early; that is not an error and prints no traceback."""
    tree = tmp_path / "t.npz"
    assert main(["build", "--builtin", "pydoc", "--depth", "2", "-o", str(tree)]) == 0
    read_end, write_end = os.pipe()
    os.close(read_end)
    closed = os.fdopen(write_end, "w", buffering=1)  # line-buffered: the first line already hits the closed pipe
    monkeypatch.setattr(sys, "stdout", closed)
    try:
        assert main(["info", str(tree)]) == 0
    finally:
        monkeypatch.undo()
        closed.close()


def test_a_folder_that_only_looks_like_a_run_is_refused(tmp_path):
    """issue 28, case 3: config.toml, summary.md and a result.json with an "experiment" key are not a marker;
    such a folder (an old run or a look-alike, nobody can tell) is refused and everything in it kept."""
    lookalike = tmp_path / "lookalike"
    lookalike.mkdir()
    (lookalike / "config.toml").write_text("seed = 0\n")
    (lookalike / "result.json").write_text('{"experiment": "hooke"}')
    (lookalike / "summary.md").write_text("# my results\n")
    (lookalike / "data.csv").write_text("precious")
    with pytest.raises(OutputPathError, match=rf"other files .* and no tokentree marker \({MARKER}\).*--overwrite"):
        write_output_folder(lookalike, _write("new"), kind="run")
    assert sorted(os.listdir(lookalike)) == ["config.toml", "data.csv", "result.json", "summary.md"]
    assert (lookalike / "data.csv").read_text() == "precious" and sorted(os.listdir(tmp_path)) == ["lookalike"]
    out = tmp_path / "run"
    write_output_folder(out, _write("x"), kind="run", label="hooke")
    with pytest.raises(OutputPathError, match="a tokentree run folder of hooke"):
        write_output_folder(out, _write("x"), kind="checkpoint")
    with pytest.raises(OutputPathError, match=r"a tokentree run folder of hooke; .* an earlier run folder of rebound"):
        write_output_folder(out, _write("x"), kind="run", label="rebound")


def test_a_re_run_replaces_only_the_files_tokentree_wrote(tmp_path):
    """issue 28, case 2: the user's notes.md and analysis/ survive a re-run, hard-linked (nothing copied)."""
    out = tmp_path / "run"
    write_output_folder(out, _write("first"), kind="run", label="hooke")
    (out / "notes.md").write_text("my notes")
    (out / "analysis").mkdir()
    (out / "analysis" / "fit.py").write_text("print(1)")
    (out / "sub" / "mine.png").write_text("my plot")  # the user's file inside a folder tokentree writes
    (out / "empty").mkdir()
    inode = (out / "notes.md").stat().st_ino

    def fewer(folder: Path) -> None:
        (folder / "result.json").write_text("second")  # no sub/plot.png this time

    write_output_folder(out, fewer, kind="run", label="hooke")
    assert _content(out) == "second" and not (out / "sub" / "plot.png").exists()
    assert (out / "notes.md").read_text() == "my notes" and (out / "notes.md").stat().st_ino == inode
    assert (out / "analysis" / "fit.py").read_text() == "print(1)"
    assert (out / "sub" / "mine.png").read_text() == "my plot"
    assert (out / "empty").is_dir()
    assert read_marker(out)["files"] == ["result.json"]  # the user's files never become tokentree's
    (out / "notes.md").write_text("edited")
    write_output_folder(out, _write("third"), kind="run", overwrite=True)  # --overwrite on our own folder: kept too
    assert (out / "notes.md").read_text() == "edited" and sorted(os.listdir(tmp_path)) == ["run"]


def test_a_file_of_the_users_whose_name_the_new_output_writes_is_kept_beside_it(tmp_path):
    out = tmp_path / "run"
    write_output_folder(out, lambda f: (f / "a.txt").write_text("ours"), kind="run")
    (out / "result.json").write_text("the user's")
    with pytest.warns(UserWarning, match=r"result.json -> result.json.kept"):
        write_output_folder(out, _write("new"), kind="run")
    assert _content(out) == "new" and (out / "result.json.kept").read_text() == "the user's"
    assert not (out / "a.txt").exists()


def test_files_added_during_a_run_into_an_empty_folder_are_kept(tmp_path):
    from tokentree.infra.outputs import claim_output_folder

    out = tmp_path / "run"
    out.mkdir()
    with claim_output_folder(out, kind="run"):
        (out / "notes.md").write_text("written while the run ran")
        write_output_folder(out, _write("new"), kind="run")
    assert (out / "notes.md").read_text() == "written while the run ran" and _content(out) == "new"
    assert sorted(os.listdir(tmp_path)) == ["run"]  # the lock file went with the claim


def test_only_temporaries_of_dead_processes_are_removed(tmp_path):
    """issue 28, case 4: a live process's temporary folder (here: this one's) and folders of other names stay."""
    out = tmp_path / "run"
    live = tmp_path / f".run.tmp-{os.getpid()}-abc"
    dead = tmp_path / f".run.tmp-{DEAD_PID}-abc"
    legacy = tmp_path / ".run.tmp-abcdef"  # another pattern: nobody can tell whose it is
    for folder in (live, dead, legacy):
        folder.mkdir()
        (folder / "x").write_text("x")
    write_output_folder(out, _write("new"), kind="run")
    assert live.is_dir() and legacy.is_dir() and not dead.exists()


def test_a_lock_is_refused_while_its_process_lives_and_taken_over_when_it_is_gone(tmp_path):
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys; from tokentree.infra.outputs import claim_output_folder\n"
         f"with claim_output_folder({str(tmp_path / 'run')!r}, kind='run'):\n print('held', flush=True); "
         "sys.stdin.read()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline() == "held\n"
        with pytest.raises(OutputPathError, match=rf"being written by another tokentree process \(pid {holder.pid} "):
            write_output_folder(tmp_path / "run", _write("new"), kind="run")
    finally:
        holder.kill()  # SIGKILL: its lock file stays behind, stale
        holder.communicate()
    lock = tmp_path / ".run.lock"
    assert lock.is_file() and str(holder.pid) in lock.read_text()
    write_output_folder(tmp_path / "run", _write("new"), kind="run")
    assert _content(tmp_path / "run") == "new" and not lock.exists()
    lock.write_text(f'{{"pid": {DEAD_PID}}}')  # a lock file from a file system without flock, or a crash
    write_output_folder(tmp_path / "run", _write("newer"), kind="run")
    assert _content(tmp_path / "run") == "newer"


def test_unwritable_places_fail_before_any_work_and_errors_name_the_output(tmp_path):
    from tokentree.infra.outputs import check_output_file, claim_output_folder

    for bad in ("/proc/tokentree-run", "/sys/tokentree/run"):  # writable by os.access as root, yet not writable
        with pytest.raises(OutputPathError, match=f"cannot write {bad}: .* not writable"):
            with claim_output_folder(bad, kind="run"):
                pass
        with pytest.raises(OutputPathError, match=f"cannot write {bad}/tree.npz: .* not writable"):
            check_output_file(f"{bad}/tree.npz")
    (tmp_path / "folder").mkdir()
    with pytest.raises(OutputPathError, match="is a folder; give the path of a file"):
        check_output_file(tmp_path / "folder")

    def full(folder: Path) -> None:
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space left") as caught:
        write_output_folder(tmp_path / "run", full, kind="run")
    assert caught.value.filename == str(tmp_path / "run") and sorted(os.listdir(tmp_path)) == ["folder"]


def test_checksums_find_a_flipped_byte(tmp_path):
    from tokentree.infra.outputs import damaged_files

    out = write_output_folder(tmp_path / "ckpt", _write("weights"), kind="checkpoint", checksums=True)
    assert damaged_files(out) == []
    (out / "sub" / "plot.png").write_text("weighta")
    (out / "result.json").unlink()
    assert damaged_files(out) == ["result.json", "sub/plot.png"]
    assert damaged_files(write_output_folder(tmp_path / "run", _write("x"), kind="run")) == []  # none recorded
