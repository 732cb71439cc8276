"""Partitioned token trees built on Dask: the same exact tree, from corpora larger than one machine.

Plan, map, reduce, stitch; exact (docs/theory.md §1: an occurrence counts toward its
first token's subtree only):

1. **Plan**, in the calling process: how many occurrences start with each token (one
   pass over the ids, a chunk at a time), and first-token ranges that balance them
   (:func:`tokentree.trees.partition.plan_partitions`); a token heavier than a part's share
   is cut by its second token into several parts (:func:`tokentree.trees.partition.split_heavy`).
   The responses are cut into shards of whole responses (:func:`shards_of`).
2. **Map** (:func:`cut_shard`), a Dask task per shard: the worker memory-maps the ids
   (every worker reads the same file: one machine, or a shared file system), cuts the
   shard's occurrences exactly as :func:`tokentree.build_tree` would, and writes them,
   grouped by part, to a scratch folder. Every id is read once, whatever the number of
   parts.
3. **Reduce** (:func:`build_part`), a Dask task per part: its records from every shard,
   sorted and counted with the same kernels as :func:`tokentree.build_tree`; the part's
   arrays are written as ``.npy`` files past the page cache (:mod:`tokentree.infra.npy_direct`)
   under a temporary name, then renamed, so a retried task never leaves half a part.
   Dask retries a task whose worker died.
4. **Stitch**: nothing moves; ``manifest.json`` is written last, with every part's level
   sizes, and the folder is put in place atomically (:mod:`tokentree.infra.outputs`). The
   scratch folder is removed.

The result opens lazily as a :class:`tokentree.trees.partitioned.PartitionedTree`.

Where it runs: a ``LocalCluster`` the call starts itself (``workers``, ``memory_limit``;
:func:`local_client`, whose workers keep the memory a part frees for the next part),
a running scheduler (``scheduler="tcp://host:8786"``), or any ``distributed.Client``
(dask-jobqueue, Kubernetes). Each worker's numba uses ``threads_per_part`` threads, so
workers do not oversubscribe cores.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import math
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tokentree.data.sequences import TokenSequences, TokenStream
from tokentree.infra.checks import check_int
from tokentree.infra.errors import InputError
from tokentree.infra.npy_direct import BLOCK, save_npy
from tokentree.infra.optional import optional_import
from tokentree.infra.outputs import check_output_folder, write_output_folder
from tokentree.infra.progress import progress_bar
from tokentree.trees.build import (
    BYTES_PER_OCCURRENCE,
    CUT_MODES,
    Occurrences,
    build_from_occurrences,
    first_token_mass_of,
    occurrence_sizes,
    prepare_build,
    second_token_mass_of,
)
from tokentree.trees.partition import PartKey, plan_partitions, split_heavy
from tokentree.trees.partitioned import (
    FORMAT_NAME,
    FORMAT_VERSION,
    MANIFEST,
    PartitionedTree,
    open_partitioned,
    part_name,
)
from tokentree.trees.tree import TreeInfo

__all__ = ["IdsSource", "build_partitioned", "local_client", "parse_memory", "KEEP_FREED_MEMORY", "OUTPUT_KIND"]

OUTPUT_KIND = "partitioned tree"

#: A part's bytes per node, at most, on disk and while a worker holds it (the in-memory builder's own bound is
#: smaller, tokentree.trees.build.BYTES_PER_NODE): int32 ids, dense leaf EOS counts, the tables.
BYTES_PER_NODE = 16
#: A part, or a shard being cut, is planned to take at most this share of a worker's memory limit.
PART_SHARE_OF_MEMORY = 0.4
#: Working memory per token while a shard's occurrences are cut and grouped by part (an upper bound).
SHARD_BYTES_PER_TOKEN = 96


def parse_memory(text: str | int) -> int:
    """Bytes from ``6GiB``, ``500MB``, ``2e9`` or an int.

    >>> parse_memory("6GiB"), parse_memory("500MB"), parse_memory(1024)
    (6442450944, 500000000, 1024)
    """
    if isinstance(text, int) and not isinstance(text, bool):
        return text
    units = {"kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40, "kb": 10**3, "mb": 10**6, "gb": 10**9,
             "tb": 10**12, "b": 1, "": 1}
    raw = str(text).strip().lower().replace(" ", "")
    number = raw.rstrip("abcdefghijklmnopqrstuvwxyz")
    unit = raw[len(number):]
    try:
        value = float(number) * units[unit]
    except (KeyError, ValueError):
        raise InputError(f"memory size {text!r} is not understood; write e.g. 6GiB, 500MB or a number of bytes") \
            from None
    if not value > 0:
        raise InputError(f"memory size must be positive; got {text!r}")
    return int(value)


@dataclass(frozen=True)
class Shard:
    """Responses ``first`` to ``end`` (exclusive), at positions ``start`` to ``stop`` of the id array."""

    first: int
    end: int
    start: int
    stop: int


@dataclass(frozen=True)
class IdsSource:
    """Token ids on disk that every worker opens memory-mapped.

    ``kind="stream"``: a raw file of ``dtype`` ids with responses between ``eos`` ids;
    ``kind="sequences"``: ``path`` holds ``tokens.npy`` and ``offsets.npy``.
    """

    kind: str
    path: str
    dtype: str | None = None
    eos: int | None = None
    vocab_size: int | None = None

    def token_array(self) -> np.ndarray:
        """Every id, memory-mapped (a stream's EOS ids included): what occurrence positions index."""
        if self.kind == "stream":
            return np.memmap(self.path, dtype=np.dtype(self.dtype), mode="r")
        return np.load(Path(self.path) / "tokens.npy", mmap_mode="r", allow_pickle=False)

    def open_shard(self, shard: Shard) -> TokenSequences | TokenStream:
        """The responses of ``shard``, positions counted from ``shard.start``."""
        tokens = self.token_array()[shard.start : shard.stop]
        if self.kind == "stream":
            assert self.eos is not None
            return TokenStream(tokens, self.eos, self.vocab_size)
        offsets = np.load(Path(self.path) / "offsets.npy", mmap_mode="r", allow_pickle=False)
        return TokenSequences(tokens, np.asarray(offsets[shard.first : shard.end + 1]) - shard.start, self.vocab_size)


def shards_of(seqs: TokenSequences | TokenStream, tokens_per_shard: int) -> list[Shard]:
    """Consecutive runs of whole responses, about ``tokens_per_shard`` tokens each, covering ``seqs``."""
    cumulative = np.cumsum(seqs.lengths)
    n_shards = max(1, math.ceil(int(cumulative[-1]) / max(int(tokens_per_shard), 1)))
    quotas = np.arange(1, n_shards) * (int(cumulative[-1]) / n_shards)
    cuts = np.unique(np.concatenate([[0], np.searchsorted(cumulative, quotas) + 1, [seqs.n_sequences]]))
    cuts = cuts[cuts <= seqs.n_sequences]
    starts, ends = seqs.starts, seqs.ends
    return [Shard(int(a), int(b), int(starts[a]), int(ends[b - 1])) for a, b in itertools.pairwise(cuts)]


def _reads_in_place(seqs: TokenSequences | TokenStream) -> bool:
    """Whether workers can read ``seqs`` where it lies: a stream memory-mapped from the start of a raw file."""
    tokens = seqs.tokens
    return isinstance(seqs, TokenStream) and isinstance(tokens, np.memmap) and bool(tokens.filename) and \
        tokens.offset == 0


def _source_for(seqs: TokenSequences | TokenStream, scratch: Path) -> IdsSource:
    """Where workers read ``seqs``: its own file if it is a memory-mapped stream, else a copy in ``scratch``."""
    if _reads_in_place(seqs):
        assert isinstance(seqs, TokenStream) and isinstance(seqs.tokens, np.memmap)
        return IdsSource("stream", str(seqs.tokens.filename), seqs.tokens.dtype.name, seqs.eos, seqs.vocab_size)
    if isinstance(seqs, TokenStream):
        seqs = seqs.to_sequences()
    assert isinstance(seqs, TokenSequences)
    scratch.mkdir(parents=True, exist_ok=True)
    np.save(scratch / "tokens.npy", np.asarray(seqs.tokens))
    np.save(scratch / "offsets.npy", np.asarray(seqs.offsets))
    return IdsSource("sequences", str(scratch), vocab_size=seqs.vocab_size)


def _peak_rss_gib() -> float:
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) / 2**20
    except (OSError, StopIteration):
        return math.nan


def _reset_peak_rss() -> None:
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as f:
            f.write("5")
    except OSError:
        pass


def part_starts(keys: Sequence[PartKey], vocab_size: int) -> np.ndarray:
    """Where each part begins in the order of (first token, second token key + 1), as one int64 each.

    An occurrence of first token f and second token key s (-1 when it has one token)
    sorts at ``f * (V + 1) + s + 1``; the parts, in order, cover every first token once.
    """
    return np.array([k.first_tokens[0] * (vocab_size + 1) + (0 if k.second_tokens is None else k.second_tokens[0] + 1)
                     for k in keys], dtype=np.int64)


def _atomic_folder(folder: Path, name: str, write: Any) -> Path:
    """``folder / name`` filled by ``write(staging)`` under a temporary name, then renamed (a retried task wins)."""
    final = folder / name
    staging = folder / f".{name}.{uuid.uuid4().hex}"
    staging.mkdir()
    write(staging)
    if final.exists():  # an earlier attempt of this task finished writing before its worker died
        shutil.rmtree(final)
    staging.rename(final)
    return final


def cut_shard(source: IdsSource, info: dict[str, Any], shard: Shard, starts: np.ndarray, folder: str,
              index: int) -> str:
    """One map task: the occurrences of ``shard``, grouped by part and written to ``folder``; returns their folder.

    Written: ``start`` (positions in the whole id array), ``length``, ``eos`` and, when
    occurrences are weighted, ``weights``, each ordered by part (and by position within
    a part), and ``part_bounds``: part ``p`` is records ``part_bounds[p]:part_bounds[p + 1]``.
    """
    from tokentree.trees import _kernels  # numba: compiled once, cached on disk

    tree_info = TreeInfo(**info)
    seqs = source.open_shard(shard)
    weighted = tree_info.weighting == "tokens" and tree_info.mode != "window"
    start, length, eos, weights, bounds = _kernels.cut_by_part(
        np.asarray(seqs.tokens), seqs.starts, seqs.ends, tree_info.depth, CUT_MODES.index(tree_info.mode), weighted,
        starts, tree_info.vocab_size + 1, shard.start, np.zeros(0, np.min_scalar_type(tree_info.depth)))
    records = {"start": start, "length": length, "eos": eos, "part_bounds": bounds}
    if weighted:
        records["weights"] = weights

    def write(staging: Path) -> None:
        for name, array in records.items():
            save_npy(staging / f"{name}.npy", array)

    return str(_atomic_folder(Path(folder), f"shard-{index:05d}", write))


def _records_of(part: int, shard_folders: Sequence[str]) -> Occurrences:
    """Part ``part``'s occurrences, gathered from every shard's records in shard order."""
    pieces: dict[str, list[np.ndarray]] = {"start": [], "length": [], "eos": [], "weights": []}
    for folder in shard_folders:
        bounds = np.load(Path(folder) / "part_bounds.npy", allow_pickle=False)
        lo, hi = int(bounds[part]), int(bounds[part + 1])
        for name, got in pieces.items():
            where = Path(folder) / f"{name}.npy"
            if name != "weights" or where.exists():  # memory-mapped slices: concatenate copies them once
                got.append(np.load(where, mmap_mode="r", allow_pickle=False)[lo:hi])
    weights = np.concatenate(pieces["weights"]) if pieces["weights"] else None
    return Occurrences(np.concatenate(pieces["start"]), np.concatenate(pieces["length"]).astype(np.int64), weights,
                       np.concatenate(pieces["eos"]))


def build_part(source: IdsSource, info: dict[str, Any], key: PartKey, folder: str, index: int,
               shard_folders: Sequence[str], threads: int, crash_once: str | None = None) -> dict[str, Any]:
    """One reduce task: part ``index``'s records from every shard, counted in a subtree written to ``folder``."""
    if crash_once is not None and not os.path.exists(crash_once):  # fault injection for the tests
        Path(crash_once).touch()
        os._exit(1)
    import numba

    numba.set_num_threads(max(1, min(int(threads), numba.config.NUMBA_NUM_THREADS)))  # type: ignore[attr-defined]
    _reset_peak_rss()
    tree = build_from_occurrences(source.token_array(), _records_of(index, shard_folders), TreeInfo(**info),
                                  show_progress=False)
    stored = tree.stored_arrays  # the narrow dtypes the tree keeps (tree.py); a part opens without a copy

    def write(staging: Path) -> None:
        for name, array in stored.items():  # PART_ARRAYS and the parent links (flags)
            save_npy(staging / f"{name}.npy", np.asarray(array))

    final = _atomic_folder(Path(folder), part_name(index), write)
    return {"index": index, "name": final.name, "first_tokens": list(key.first_tokens),
            "second_tokens": None if key.second_tokens is None else list(key.second_tokens),
            "level_sizes": [int(x) for x in np.diff(tree.level_offsets)], "mass": tree.total_mass,
            "peak_rss_gib": _peak_rss_gib()}


#: glibc settings for the worker processes a build starts (``LocalCluster``): memory that one part frees stays
#: in the worker for the next part, instead of going back to the system and being faulted in again. On the
#: development VM, memory new to a process cost about 1 s per GB to touch; with this setting a part of the
#: 100M-token benchmark (``benchmarks/bench_distributed.py``), after a worker's first, built in 4.1-5.3 s, and
#: without it in 5.1-9.9 s. To give your own cluster the same, put these in dask's
#: ``distributed.nanny.pre-spawn-environ``.
KEEP_FREED_MEMORY = {"MALLOC_ARENA_MAX": "1", "MALLOC_MMAP_MAX_": "0", "MALLOC_TRIM_THRESHOLD_": str(2**50)}


def _require_dask() -> None:
    optional_import("distributed", "distributed builds", "pip install 'tokentree[dask]'", error=InputError)


@contextlib.contextmanager
def local_client(workers: int = 2, memory_limit: str | int = "6GiB") -> Iterator[Any]:
    """A Dask client on a ``LocalCluster`` of ``workers`` processes, one thread each, set up for building trees.

    Its workers get :data:`KEEP_FREED_MEMORY`. :func:`build_partitioned` starts one when
    given neither ``client`` nor ``scheduler``; start one yourself and pass it as
    ``client=`` to build several trees on the same workers. Dask's nanny spawns a worker
    with its pre-spawn variables set in this process's ``os.environ``; they are put back
    as they were once the workers have started, and again when the client closes.
    """
    _require_dask()
    import dask
    from distributed import Client, LocalCluster

    check_int(workers, "workers", minimum=1)
    limit = parse_memory(memory_limit)
    environ = {**dask.config.get("distributed.nanny.pre-spawn-environ", default={}), **KEEP_FREED_MEMORY}
    before = {name: os.environ.get(name) for name in environ}

    def put_back() -> None:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value

    try:
        os.environ.update(KEEP_FREED_MEMORY)  # dask lets a variable already set here win over its config
        with dask.config.set({"distributed.nanny.pre-spawn-environ": environ}):
            cluster = LocalCluster(n_workers=workers, threads_per_worker=1, memory_limit=limit, processes=True,
                                   dashboard_address=":0")
    finally:
        put_back()
    with cluster, Client(cluster) as client:
        try:
            yield client
        finally:
            put_back()  # a worker restarted meanwhile set them again


@contextlib.contextmanager
def _client(scheduler: str | None, client: Any, workers: int, memory_limit: int) -> Iterator[Any]:
    """The Dask client to use: ``client``, one connected to ``scheduler``, or a :func:`local_client`."""
    if client is not None:
        yield client
        return
    if scheduler is None:
        with local_client(workers, memory_limit) as started:
            yield started
        return
    _require_dask()
    from distributed import Client

    try:
        connected = Client(scheduler, timeout="10s")
    except (OSError, TimeoutError) as exc:
        raise InputError(f"cannot reach the Dask scheduler at {scheduler} ({' '.join(str(exc).split())[:120]}); "
                         "check the address and that the scheduler is running") from None
    with connected:
        yield connected


def _checked_plan(plan: Sequence[PartKey], vocab_size: int) -> list[PartKey]:
    """``plan`` if its parts cover every first token once, in order (as a partitioned tree's ``.plan`` does)."""
    keys = list(plan)
    spans = [(k.first_tokens, k.second_tokens or (-1, vocab_size)) for k in keys if isinstance(k, PartKey)]
    ends = [(first[0], second[0]) for first, second in spans] + [(vocab_size, -1)]
    covered = len(spans) == len(keys) > 0 and spans[0][0][0] == 0 and all(
        (b == (a[0][1], -1) if a[1][1] == vocab_size else b == (a[0][0], a[1][1]))
        for a, b in zip(spans, ends[1:], strict=True))
    if not covered:
        raise InputError("plan must be a list of PartKey covering every first token once, in order: pass another "
                         "partitioned tree's .plan")
    return keys


def build_partitioned(
    sequences: TokenSequences | TokenStream | Any,
    out: str | os.PathLike[str],
    *,
    depth: int,
    mode: str = "chunk",
    weight: str = "sequences",
    vocab_size: int | None = None,
    partitions: int | None = None,
    boundaries: Sequence[int] | np.ndarray | None = None,
    plan: Sequence[PartKey] | None = None,
    shard_tokens: int | None = None,
    workers: int = 2,
    memory_limit: str | int = "6GiB",
    threads_per_part: int = 1,
    scheduler: str | None = None,
    client: Any = None,
    overwrite: bool = False,
    provenance: dict[str, Any] | None = None,
    tokenizer_json: str | None = None,
    check_disk: bool = True,
    show_progress: bool | None = None,
    crash_once: str | None = None,
) -> PartitionedTree:
    """Build the token tree of ``sequences`` on Dask into the folder ``out`` (see the module docstring).

    Parameters
    ----------
    sequences
        A :class:`~tokentree.data.sequences.TokenStream` over a memory-mapped file (read in place
        by every worker) or any dataset :func:`tokentree.build_tree` takes (written to a
        scratch copy beside ``out`` first, removed afterwards).
    depth, mode, weight, vocab_size
        As for :func:`tokentree.build_tree` (the token alphabet only).
    partitions
        Parts to build; default: enough that one part's estimated peak stays under
        ``PART_SHARE_OF_MEMORY`` of ``memory_limit`` (and at least one per worker).
    boundaries
        First-token boundaries to use instead of planning them (0 first, the alphabet size
        last), every range one part.
    plan
        The parts to build instead of planning them: give another tree's ``plan`` to compare
        the two part by part (cross-entropy, KL).
    shard_tokens
        Tokens per map task (whole responses, so about this many); default: as many as
        fit ``PART_SHARE_OF_MEMORY`` of ``memory_limit``, and at least one shard per worker.
    workers, memory_limit
        The ``LocalCluster`` started when neither ``scheduler`` nor ``client`` is given.
    threads_per_part
        numba threads each task uses.
    check_disk
        Refuse to start when the tree's estimated size exceeds the free space at ``out``.
    crash_once
        For tests: the path of a marker file; the first task to find it missing creates it
        and kills its worker, so the build must survive a worker dying mid-task.
    """
    seqs, info = prepare_build(sequences, depth=depth, mode=mode, weight=weight, vocab_size=vocab_size)
    if not isinstance(seqs, (TokenSequences, TokenStream)):  # pragma: no cover - prepare_build returns these
        raise InputError("sequences could not be read as token ids")
    limit = parse_memory(memory_limit)
    check_int(workers, "workers", minimum=1)
    out = check_output_folder(out, kind=OUTPUT_KIND, overwrite=overwrite)
    n_occurrences, total_length = occurrence_sizes(seqs.lengths, info.depth, mode)
    mass = first_token_mass_of(seqs, info.depth, mode, info.vocab_size, show_progress=show_progress)
    if partitions is None:
        per_occurrence = BYTES_PER_OCCURRENCE + BYTES_PER_NODE * total_length / max(n_occurrences, 1)
        needed = math.ceil(per_occurrence * n_occurrences / (PART_SHARE_OF_MEMORY * limit))
        partitions = workers * max(1, math.ceil(needed / workers))  # whole waves: no worker idles at the end
    if boundaries is not None:
        bounds = np.asarray(boundaries, dtype=np.int64)
        if bounds.ndim != 1 or bounds.shape[0] < 2 or bounds[0] != 0 or np.any(np.diff(bounds) <= 0) or \
                bounds[-1] < info.vocab_size:
            raise InputError(f"boundaries must increase from 0 to at least the alphabet size {info.vocab_size}; got "
                             f"{bounds.tolist()[:8]}{'...' if bounds.shape[0] > 8 else ''}")
        bounds = np.append(bounds[bounds < info.vocab_size], info.vocab_size)
        keys = [PartKey((int(a), int(b))) for a, b in itertools.pairwise(bounds) if mass[a:b].any()]
    elif plan is not None:
        keys = _checked_plan(plan, info.vocab_size)
    else:
        keys = split_heavy(plan_partitions(mass, int(partitions)), mass, int(partitions), None if info.depth == 1 else
                           lambda first: second_token_mass_of(seqs, info.depth, mode, first, info.vocab_size))
    bounds = np.array([0, *sorted({k.first_tokens[1] for k in keys})], dtype=np.int64)
    if shard_tokens is None:
        shard_tokens = min(int(PART_SHARE_OF_MEMORY * limit / SHARD_BYTES_PER_TOKEN), -(-seqs.n_tokens // workers))
    shards = shards_of(seqs, check_int(shard_tokens, "shard_tokens", minimum=1))
    record_bytes = 9 + np.min_scalar_type(info.depth).itemsize + (8 if weight == "tokens" and mode != "window" else 0)
    copy_bytes = 0 if _reads_in_place(seqs) else seqs.tokens.nbytes + 8 * (seqs.n_sequences + 1)
    need_disk = (BYTES_PER_NODE * (total_length + len(keys)) + record_bytes * n_occurrences + copy_bytes
                 + 16 * BLOCK * (len(keys) + len(shards)))
    free = shutil.disk_usage(out.parent if not out.exists() else out).free
    if check_disk and need_disk > free:
        raise InputError(
            f"the tree needs up to an estimated {need_disk / 2**30:.1f} GiB on disk at {out.parent} but only "
            f"{free / 2**30:.1f} GiB is free; free space, choose another output folder, or pass check_disk=False"
        )
    scratch = Path(tempfile.mkdtemp(prefix=".tokentree-scratch-", dir=out.parent))
    try:
        source = _source_for(seqs, scratch)
        with _client(scheduler, client, workers, limit) as dask_client:
            shard_root = scratch / "shards"
            shard_root.mkdir()
            starts = part_starts(keys, info.vocab_size)
            shard_folders = _run_tasks(dask_client, cut_shard, [
                (source, asdict(info), shard, starts, str(shard_root), i) for i, shard in enumerate(shards)
            ], desc="cutting shards", unit="shard", show=show_progress)

            def write(folder: Path) -> None:
                done = _run_tasks(dask_client, build_part, [
                    (source, asdict(info), key, str(folder), i, shard_folders, threads_per_part, crash_once)
                    for i, key in enumerate(keys)
                ], desc="building parts", unit="part", show=show_progress)
                manifest = {
                    "format": FORMAT_NAME, "version": FORMAT_VERSION, "info": asdict(info),
                    "boundaries": [int(b) for b in bounds], "parts": [
                        {k: d[k] for k in ("index", "name", "first_tokens", "second_tokens", "level_sizes", "mass")}
                        for d in done
                    ],
                    "provenance": provenance, "peak_rss_gib_per_part": [d["peak_rss_gib"] for d in done],
                }
                if tokenizer_json is not None:
                    (folder / "tokenizer.json").write_text(tokenizer_json)
                (folder / MANIFEST).write_text(json.dumps(manifest, indent=1))  # last: the tree is complete

            write_output_folder(out, write, kind=OUTPUT_KIND, overwrite=overwrite)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return open_partitioned(out)


def _run_tasks(client: Any, task: Any, arguments: list[tuple[Any, ...]], *, desc: str, unit: str,
               show: bool | None) -> list[Any]:
    """``task(*a)`` for every ``a`` on the cluster (a task whose worker died is retried), results in order."""
    from distributed import as_completed

    futures = [client.submit(task, *a, pure=False, retries=2, key=f"tokentree-{unit}-{i}-{uuid.uuid4().hex}")
               for i, a in enumerate(arguments)]
    with progress_bar(len(futures), desc=desc, show=show, unit=unit) as bar:
        for _ in as_completed(futures):
            bar.update(1)
    return [future.result() for future in futures]


def worker_peaks(tree: PartitionedTree) -> Sequence[float]:
    """Peak resident memory (GiB) of the worker process while it built each part, as the manifest recorded."""
    manifest = json.loads((tree.folder / MANIFEST).read_text())
    return list(manifest.get("peak_rss_gib_per_part", []))
