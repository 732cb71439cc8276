"""Fault injection (issue 28): runs and tree builds killed at random (seeded) points by SIGKILL and SIGTERM,
two writers on one output, a full disk, damaged training checkpoints, a Dask worker killed mid-build.

Whatever happens, the path holds the complete old result or the complete new one: never neither, never a
half, never a mix; a file of the user's in a run folder survives; the next writer removes what a killed
one left behind.
"""

from __future__ import annotations

import json
import os
import random
import resource
import signal
import subprocess
import sys
import textwrap
import time
import tomllib
from pathlib import Path

import numpy as np
import pytest

from tokentree.infra.errors import InputError
from tokentree.infra.outputs import MARKER

SEED = 28
REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
PNG_END = b"IEND\xaeB`\x82"


def inodes(folder: Path) -> dict[str, int]:
    """{relative name: inode} of every file tokentree wrote in ``folder`` (a user's notes.md left out)."""
    return {p.relative_to(folder).as_posix(): p.stat().st_ino for p in folder.rglob("*")
            if p.is_file() and p.name != "notes.md"}


def _complete(folder: Path, name: str) -> bool:
    data = (folder / name).read_bytes()
    if name.endswith(".png"):
        return data.endswith(PNG_END)
    if name.endswith(".json"):
        return isinstance(json.loads(data), dict)
    if name.endswith(".toml"):
        return isinstance(tomllib.loads(data.decode()), dict)
    return data.endswith(b"\n")  # records.csv, summary.md


def classify(folder: Path, before: dict[str, int]) -> str:
    """'old' (exactly the files of ``before``, untouched), 'new' (a complete fresh output), else 'broken: why'."""
    if not folder.is_dir():
        return "broken: the output folder is gone"
    if (folder / "notes.md").read_text() != "mine":
        return "broken: the user's notes.md was lost"
    now = inodes(folder)
    if now == before:
        return "old"
    if set(now.values()) & set(before.values()):
        return f"broken: a mix of old and new files {sorted(now)}"
    marker = json.loads((folder / MARKER).read_text())
    if sorted(set(now) - {MARKER}) != marker["files"]:
        return f"broken: files {sorted(now)} are not the marker's list {marker['files']}"
    half = [name for name in marker["files"] if not _complete(folder, name)]
    return f"broken: half-written {half}" if half else "new"


# ------------------------------------------------------------------------------------------------ runs
DRIVER = textwrap.dedent(
    """
    import json, os, random, resource, signal, sys, time
    from pathlib import Path

    import tokentree.experiments.hooke as hooke
    from tokentree.cli import main
    from tests.test_faults import classify, inodes

    out, seed = Path(sys.argv[1]), int(sys.argv[2])
    rng = random.Random(seed)
    t0 = time.perf_counter()
    argv = ["run", "hooke", "--quick", "--out", str(out)]
    real, kept, counted = hooke.run, {}, []
    FS = ("open", "os.", "shutil.")

    def cached(config, **kw):  # the experiment is computed once; every child writes its outputs anew
        if "result" not in kept:
            kept["result"] = real(config, **kw)
        return kept["result"]

    def count(event, args):  # the file-system operations of writing the outputs (after the experiment)
        if "result" in kept and not kept.get("done") and event.startswith(FS):
            counted.append(event)

    hooke.run = cached
    sys.addaudithook(count)
    assert main(argv) == 0
    kept["done"], n = True, len(counted)
    (out / "notes.md").write_text("mine")  # the user's own file in the run folder

    def child(name, kill_at=None, sig=None, fsize=None, gate=None):
        pid = os.fork()
        if pid:
            return pid
        log = os.open(str(out.parent / f"{name}.log"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        os.dup2(log, 1)
        os.dup2(log, 2)
        try:
            if fsize is not None:
                resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
            if gate is not None:
                os.read(gate, 1)
            events = []

            def hook(event, args):  # kill_at: the k-th file-system operation, or the first of a name after a link
                if event.startswith(FS):
                    events.append(event)
                    linked = "os.link" in events[:-1] or event == "os.link"
                    if len(events) == kill_at or (event == kill_at and linked):
                        os.kill(os.getpid(), sig)

            sys.addaudithook(hook)
            code = main(argv)
            os._exit(code)
        except BaseException:
            os._exit(99)

    def finish(pid):
        status = os.waitpid(pid, 0)[1]
        return -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)

    report = []
    # random operations, and those around the exchange: linking notes.md in (just before it; SIGTERM waits
    # until the exchange is done) and removing the old folder (just after it)
    for sig, anchors in ((signal.SIGKILL, ["os.link", "shutil.rmtree"]), (signal.SIGTERM, ["os.link"])):
        for k in [*sorted(rng.sample(range(1, n + 1), 3)), *anchors]:
            before = inodes(out)
            status = finish(child(f"kill-{sig}-{k}", kill_at=k, sig=sig))
            report.append({"case": f"signal {sig} before operation {k} of {n}", "status": status,
                           "state": classify(out, before), "signal": int(sig), "t": time.perf_counter() - t0})
    before = inodes(out)
    status = finish(child("full", fsize=16_000))
    report.append({"case": "full disk", "status": status, "state": classify(out, before),
                   "err": (out.parent / "full.log").read_text()})
    read_end, write_end = os.pipe()
    before = inodes(out)
    pids = [child(f"twin{i}", gate=read_end) for i in range(2)]
    os.write(write_end, b"go")  # both start at once
    for i, pid in enumerate(pids):
        report.append({"case": f"concurrent {i}", "status": finish(pid), "state": classify(out, before),
                       "err": (out.parent / f"twin{i}.log").read_text()})
    report.append({"case": "after", "leftovers": sorted(p.name for p in out.parent.glob(f".{out.name}.*"))})
    print(json.dumps(report))
    """
)


def test_a_run_killed_anywhere_leaves_the_old_or_the_new_output_and_the_users_files(tmp_path):
    """`tokentree run hooke --quick` killed before a random sample of its file-system operations (and just
    before and after the atomic exchange), by SIGKILL and SIGTERM; then a full disk; then two writers at once."""
    out = tmp_path / "runs" / "hooke"
    proc = subprocess.run([sys.executable, "-c", DRIVER, str(out), str(SEED)], capture_output=True, text=True,
                          env=ENV, cwd=REPO, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    kills = [r for r in report if "signal" in r]
    assert len(kills) == 9
    for r in report[:-1]:
        assert r["state"] in ("old", "new"), r
    for r in kills:
        expected = -9 if r["signal"] == signal.SIGKILL else 143
        assert r["status"] in (expected, 0), r  # 0: the signal came after the last thing it could stop
    assert {r["state"] for r in kills} == {"old", "new"}  # some points before the exchange, some after
    full = next(r for r in report if r["case"] == "full disk")
    assert full["status"] == 2 and full["state"] == "old", full
    assert "File too large" in full["err"] and ".tmp-" not in full["err"] and full["err"].count("\n") == 1
    twins = [r for r in report if r["case"].startswith("concurrent")]
    assert 0 in [r["status"] for r in twins]
    for r in twins:
        assert r["status"] == 0 or (r["status"] == 2 and "is being written by another tokentree process" in r["err"])
    assert report[-1]["leftovers"] == []  # no temporary folder and no lock left behind


def test_sigterm_from_outside_during_a_run_stops_it_cleanly(tmp_path):
    """A real `tokentree run hooke --quick` sent SIGTERM at a seeded moment of its work: status 143, one line,
    the earlier output as it was, and no lock or temporary folder left behind."""
    out = tmp_path / "run"
    out.mkdir()  # an empty folder: accepted, and still there afterwards
    proc = subprocess.Popen([sys.executable, "-m", "tokentree", "run", "hooke", "--quick", "--out", str(out)],
                            env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not (tmp_path / ".run.lock").exists() and time.monotonic() < deadline:  # the run has claimed its folder
        time.sleep(0.01)
    time.sleep(random.Random(SEED).uniform(0.0, 1.0))
    proc.send_signal(signal.SIGTERM)
    err = proc.communicate(timeout=60)[1]
    assert proc.returncode == 143 and err.count("\n") == 1 and "stopped by SIGTERM" in err, (proc.returncode, err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"] and list(out.iterdir()) == []


def test_a_sigterm_that_a_library_turns_into_its_own_error_is_still_a_sigterm(monkeypatch, capsys):
    """numba, imported lazily mid-run, turns the exception a signal handler raises into an ImportError (seen in CI):
    the run still ends as stopped by SIGTERM, status 143, in one line."""
    import tokentree.cli as cli

    def importing(args):
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)  # the handler raises here
        except cli.Stopped:
            raise ImportError("numba._devicearray failed to import") from None
        raise AssertionError("the SIGTERM handler did not run")

    monkeypatch.setattr(cli, "run_experiment", importing)
    assert cli.main(["run", "hooke", "--quick"]) == 143
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "stopped by SIGTERM" in err, err
    monkeypatch.setattr(cli, "run_experiment", lambda args: 0)
    assert cli.main(["run", "hooke", "--quick"]) == 0  # the next command starts with no SIGTERM on record


def test_a_second_run_into_a_claimed_folder_is_refused_at_once(tmp_path, capsys):
    """Another process holds the output: `tokentree run` says so before computing anything."""
    from tokentree.cli import main

    out = tmp_path / "run"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys; from tokentree.infra.outputs import claim_output_folder\n"
         f"with claim_output_folder({str(out)!r}, kind='run'):\n    print('held', flush=True); sys.stdin.read()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=ENV,
    )
    try:
        assert holder.stdout.readline() == "held\n"
        start = time.perf_counter()
        code = main(["run", "hooke", "--quick", "--out", str(out)])
        assert code == 2 and time.perf_counter() - start < 5  # refused before the experiment ran
    finally:
        holder.communicate("")
    err = capsys.readouterr().err
    assert f"is being written by another tokentree process (pid {holder.pid} on " in err and err.count("\n") == 1
    assert holder.returncode == 0
    assert not (tmp_path / ".run.lock").exists()  # the holder removed its lock


# ---------------------------------------------------------------------------------------------- builds
def _build_command(ids: Path, tree: Path, depth: int) -> list[str]:
    return [sys.executable, "-m", "tokentree", "build", "--ids", str(ids), "--dtype", "uint16", "--eos", "0",
            "--vocab-size", "400", "--depth", str(depth), "--mode", "window", "-o", str(tree)]


def test_a_build_killed_at_random_moments_leaves_the_old_or_the_new_tree(tmp_path):
    """A full disk, then SIGKILL and SIGTERM at seeded random moments of `tokentree build`."""
    from tokentree.data.sequences import load_token_ids
    from tokentree.trees.build import build_tree
    from tokentree.trees.storage import load_tree, save_tree

    ids = tmp_path / "train.bin"
    np.random.default_rng(SEED).integers(0, 400, 1_500_000, dtype=np.uint16).tofile(ids)
    stream = load_token_ids(ids, dtype="uint16", eos=0, vocab_size=400)
    tree = tmp_path / "tree.npz"
    save_tree(build_tree(stream, depth=2, mode="window"), tree)
    old, new = tree.read_bytes(), build_tree(stream, depth=4, mode="window")
    start = time.perf_counter()
    full = subprocess.run(_build_command(ids, tree, 4), env=ENV, capture_output=True, text=True,
                          preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, 100_000)))
    took = time.perf_counter() - start  # about the time until the tree is written
    assert full.returncode == 2 and tree.read_bytes() == old, full.stderr
    assert full.stderr.count("\n") == 1 and f"cannot write {tree}: File too large" in full.stderr
    rng = random.Random(SEED)
    seen = set()
    for sig in (signal.SIGKILL, signal.SIGTERM, signal.SIGKILL):
        tree.write_bytes(old)
        proc = subprocess.Popen(_build_command(ids, tree, 4), env=ENV, stderr=subprocess.PIPE, text=True)
        time.sleep(rng.uniform(0, 1.2 * took))
        proc.send_signal(sig)
        err = proc.communicate()[1]
        assert proc.returncode in (0, -sig, 143), (sig, proc.returncode, err)
        if proc.returncode == 143:  # our handler: one line, and the temporary file is gone already
            assert err.count("\n") == 1 and "stopped by SIGTERM" in err
        if tree.read_bytes() == old:
            seen.add("old")
        else:
            assert load_tree(tree) == new  # fully validated on loading: complete, never a half
            seen.add("new")
    assert "old" in seen
    subprocess.run(_build_command(ids, tree, 4), check=True, env=ENV, capture_output=True)
    assert load_tree(tree) == new and sorted(p.name for p in tmp_path.iterdir()) == ["train.bin", "tree.npz"]


# ----------------------------------------------------------------------------------------- checkpoints
@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A trainer checkpoint saved mid-epoch, and a function making a fresh model to resume it on."""
    pytest.importorskip("torch")
    from tokentree.bridge.tiny import TinySpec, tiny_llama
    from tokentree.data.chat import TokenizedExamples
    from tokentree.lab.train import LMTrainer, TrainSettings

    spec = TinySpec(vocab_size=50, n_layers=1, d_model=16, n_heads=2, context=16)
    rng = np.random.default_rng(SEED)
    seqs = [rng.integers(0, 50, 20) for _ in range(16)]
    masks = [np.arange(20) > 0 for _ in seqs]
    data = TokenizedExamples(sequences=tuple(seqs), masks=tuple(masks))
    trainer = LMTrainer(tiny_llama(spec, seed=1), TrainSettings(batch_size=4))
    trainer.epoch(data, stop_after=2)
    folder = trainer.save(tmp_path_factory.mktemp("ckpt") / "ckpt")
    return folder, lambda: tiny_llama(spec, seed=1)


def _damaged_copy(folder: Path, where: Path, name: str, damage) -> Path:
    import shutil

    copy = where / f"{name}-{damage.__name__}"
    shutil.copytree(folder, copy)
    data = (copy / name).read_bytes()
    (copy / name).write_bytes(damage(data))
    return copy


def test_truncated_and_corrupt_checkpoints_are_refused_in_one_line(checkpoint, tmp_path):
    """Each file cut at a random point, or one random byte flipped: resume refuses it, naming the file."""
    from tokentree.lab.train import LMTrainer

    folder, model = checkpoint
    rng = random.Random(SEED)

    def truncated(data: bytes) -> bytes:
        return data[: rng.randrange(len(data))]

    def flipped(data: bytes) -> bytes:
        at = rng.randrange(len(data))
        return data[:at] + bytes([data[at] ^ 0x20]) + data[at + 1 :]

    for name in ("model.safetensors", "trainer_state.pt", "trainer.json"):
        for damage in (truncated, flipped):
            with pytest.raises(InputError, match=rf"{name}' is corrupt .*restore it") as caught:
                LMTrainer.resume(_damaged_copy(folder, tmp_path, name, damage), model())
            assert "\n" not in str(caught.value)
    assert LMTrainer.resume(folder, model()).batches_done == 2  # the intact one still resumes


@pytest.mark.parametrize("with_checksums", [True, False], ids=["saved by tokentree", "from elsewhere"])
def test_a_checkpoint_with_a_pickle_payload_is_never_unpickled(checkpoint, tmp_path, with_checksums):
    import shutil

    import torch

    from tokentree.lab.train import LMTrainer

    folder, model = checkpoint
    copy = tmp_path / "ckpt"
    shutil.copytree(folder, copy)
    proof = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (Path.touch, (proof,))

    state = torch.load(folder / "trainer_state.pt", weights_only=True)
    torch.save({**state, "optimizer": Payload()}, copy / "trainer_state.pt")
    if not with_checksums:
        marker = json.loads((copy / MARKER).read_text())
        del marker["sha256"]
        (copy / MARKER).write_text(json.dumps(marker))
    message = "differs from the sha256" if with_checksums else "unpickling them could run code"
    with pytest.raises(InputError, match=message):
        LMTrainer.resume(copy, model())
    assert not proof.exists()


# ------------------------------------------------------------------------------------------------ dask
def test_a_dask_worker_killed_mid_build_is_retried_and_nothing_half_written_is_read(tmp_path):
    """A worker process killed by SIGKILL while it builds a part (a seeded moment into the task): the task is
    retried on another worker, and the tree equals the one-process build array for array."""
    pytest.importorskip("distributed")
    import threading

    from distributed import Client, LocalCluster

    from tokentree.data.synthetic import zipf_corpus
    from tokentree.trees.build import build_tree
    from tokentree.trees.distributed import build_partitioned

    seqs = zipf_corpus(400_000, vocab_size=300, rng=SEED)
    expected = build_tree(seqs, depth=4, mode="window")
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
                           memory_limit="2GiB")
    killed: list[str] = []
    with Client(cluster) as client:
        pids = client.run(os.getpid)
        delay = random.Random(SEED).uniform(0.0, 0.05)

        def kill_a_worker_building_a_part() -> None:
            deadline = time.monotonic() + 60
            while not killed and time.monotonic() < deadline:
                for worker, keys in client.processing().items():
                    if any("tokentree-part-" in str(k) for k in keys):
                        time.sleep(delay)
                        os.kill(pids[worker], signal.SIGKILL)
                        killed.append(worker)
                        return
                time.sleep(0.002)

        killer = threading.Thread(target=kill_a_worker_building_a_part, daemon=True)
        killer.start()
        tree = build_partitioned(seqs, tmp_path / "t", depth=4, mode="window", partitions=6, client=client)
        killer.join(timeout=5)
        materialized = tree.materialize()
    cluster.close()
    assert killed  # a worker did die while building a part
    assert materialized == expected
    for name in ("tokens", "parents", "counts", "level_offsets", "leaf_eos"):
        assert np.array_equal(getattr(materialized, name), getattr(expected, name)), name
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t"]  # no scratch, temporary or lock left
