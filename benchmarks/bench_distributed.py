"""Benchmark: partitioned token trees on Dask, against the single-process build measured in the same run.

Cases:

* 100M Zipf tokens (32k ids, uint16 ``train.bin`` with EOS between responses), window
  mode, d = 8: ``build_tree`` in one process (the baseline, in its own subprocess), and
  ``build_partitioned`` on a ``local_client`` of 2 workers x 6 GiB, 1 thread each; seconds,
  peak memory (the baseline process; every worker while it built each part), and the
  two trees checked equal level by level (nodes and mass) and on every part's arrays;
* 300M tokens, d = 8, on the same cluster: a tree larger than this machine's memory,
  written to disk; its global statistics checked against per-part statistics computed
  independently (every part read back from disk), and against what the data say
  (level-1 mass = tokens, level-j mass = windows at least j long);
* throughput per core next to KenLM lmplz's published 0.5-0.75M tokens/s per core.

    python benchmarks/bench_distributed.py            # 100M and 300M (about 10 minutes, 40 GB of disk)
    python benchmarks/bench_distributed.py --quick    # 10M and 30M
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_build import peak_rss_gib, reset_peak_rss, rss_gib
from bench_data import EOS, VOCAB, write_stream

KENLM_TOKENS_PER_CORE = (0.5e6, 0.75e6)


def single_case(path: str, depth: int) -> dict:
    """build_tree in this process from the memory-mapped stream: the baseline."""
    import numpy as np

    from tokentree import build_tree
    from tokentree.data.sequences import load_token_ids

    build_tree([[1, 2, 3]], depth=depth, mode="window")  # numba's kernels load once per process
    stream = load_token_ids(path, dtype="uint16", eos=EOS, vocab_size=VOCAB + 1)
    before = rss_gib()
    reset_peak_rss()
    t0 = time.perf_counter()
    tree = build_tree(stream, depth=depth, mode="window", force=True)
    seconds = time.perf_counter() - t0
    peak = peak_rss_gib()
    offsets = tree.level_offsets  # per-level sums only: layer_stats would cache three more node-sized arrays
    mass = [int(tree.counts[offsets[j] : offsets[j + 1]].sum()) for j in range(depth + 1)]
    return {"seconds": seconds, "peak_rss_gib": peak, "rss_before_gib": before,
            "nodes": np.diff(offsets).tolist(), "mass": mass}


def independent_check(folder: Path, lengths_path: Path, depth: int) -> dict:
    """Global statistics from the manifest against per-part arrays read back from disk, and against the data."""
    import numpy as np

    from tokentree.trees.partitioned import open_partitioned

    tree = open_partitioned(folder)
    nodes = np.zeros(depth + 1, dtype=np.int64)
    mass = np.zeros(depth + 1, dtype=np.int64)
    first_tokens = []  # a heavy first token's slices each hold its level-1 node: count distinct ones
    for i in range(tree.n_parts):
        part = folder / f"part-{i:05d}"
        offsets = np.load(part / "level_offsets.npy")
        counts = np.load(part / "counts.npy", mmap_mode="r")
        first_tokens.append(np.load(part / "tokens.npy", mmap_mode="r")[offsets[1] : offsets[2]])
        nodes[2:] += np.diff(offsets)[2:]
        mass[1:] += [int(np.asarray(counts[offsets[j] : offsets[j + 1]]).sum()) for j in range(1, depth + 1)]
    nodes[1] = np.unique(np.concatenate(first_tokens)).shape[0]
    stats = tree.layer_stats()
    lengths = np.load(lengths_path)
    expected = [int(np.maximum(lengths - j + 1, 0).sum()) for j in range(1, depth + 1)]  # windows >= j long
    return {"nodes_match": nodes[1:].tolist() == stats["nodes"][1:].tolist(),
            "mass_match": mass[1:].tolist() == stats["mass"][1:].tolist(),
            "mass_is_the_data": mass[1:].tolist() == expected}


def distributed_case(path: Path, out: Path, depth: int, client) -> dict:
    from tokentree.data.sequences import load_token_ids
    from tokentree.trees.distributed import build_partitioned, worker_peaks

    stream = load_token_ids(path, dtype="uint16", eos=EOS, vocab_size=VOCAB + 1)
    t0 = time.perf_counter()
    tree = build_partitioned(stream, out, depth=depth, mode="window", client=client, overwrite=True)
    seconds = time.perf_counter() - t0
    stats = tree.layer_stats()
    return {"seconds": seconds, "parts": tree.n_parts, "nodes": stats["nodes"].tolist(),
            "mass": stats["mass"].tolist(), "peaks": worker_peaks(tree), "disk_gib": tree.nbytes_on_disk / 2**30,
            "tokens": stream.n_tokens}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--skip-large", action="store_true", help="only the comparison with the one-process build")
    ap.add_argument("--case", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.case:
        print(json.dumps(single_case(args.case[0], int(args.case[1]))))
        return
    import numpy as np

    from tokentree.trees.distributed import local_client

    depth = 8
    small, large = (10_000_000, 30_000_000) if args.quick else (100_000_000, 300_000_000)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        with local_client(workers=2, memory_limit="6GiB") as client:
            stream = folder / "small.bin"
            write_stream(stream, small)
            out = subprocess.run([sys.executable, __file__, "--case", str(stream), str(depth)], capture_output=True,
                                 text=True, check=True)
            single = json.loads(out.stdout.strip().splitlines()[-1])
            dask = distributed_case(stream, folder / "small-tree", depth, client)
            same = single["nodes"] == dask["nodes"] and single["mass"] == dask["mass"]
            print(f"{small / 1e6:g}M Zipf tokens, window d = {depth}, {sum(single['nodes']) - 1:,} nodes")
            print(f"  one process (build_tree, 2 numba threads): {single['seconds']:.1f} s, peak "
                  f"{single['peak_rss_gib']:.2f} GiB (before {single['rss_before_gib']:.2f})")
            print(f"  Dask, 2 workers x 6 GiB, {dask['parts']} parts: {dask['seconds']:.1f} s "
                  f"({single['seconds'] / dask['seconds']:.2f}x the one-process speed), worst worker peak "
                  f"{max(dask['peaks']):.2f} GiB, {dask['disk_gib']:.2f} GiB on disk; same levels: {same}")
            shutil.rmtree(folder / "small-tree")
            stream.unlink()
            if args.skip_large:
                return

            stream = folder / "large.bin"
            write_stream(stream, large)
            from tokentree.data.sequences import load_token_ids

            np.save(folder / "lengths.npy", load_token_ids(stream, dtype="uint16", eos=EOS).lengths)
            big = distributed_case(stream, folder / "large-tree", depth, client)
            check = independent_check(folder / "large-tree", folder / "lengths.npy", depth)
            per_core = big["tokens"] / big["seconds"] / 2
            print(f"{large / 1e6:g}M Zipf tokens, window d = {depth}: {sum(big['nodes']) - 1:,} nodes, "
                  f"{big['disk_gib']:.1f} GiB on disk (this machine has 23 GiB of memory)")
            print(f"  Dask, 2 workers x 6 GiB, {big['parts']} parts: {big['seconds']:.0f} s; worst worker peak "
                  f"{max(big['peaks']):.2f} GiB; goal under 10 minutes: {big['seconds'] < 600}")
            print(f"  global statistics = per-part sums read back from disk: nodes {check['nodes_match']}, mass "
                  f"{check['mass_match']}; level masses = windows of the data: {check['mass_is_the_data']}")
            print(f"  throughput {per_core / 1e6:.2f}M tokens/s per core (tree to disk), against KenLM lmplz's "
                  f"published {KENLM_TOKENS_PER_CORE[0] / 1e6:.2f}-{KENLM_TOKENS_PER_CORE[1] / 1e6:.2f}M for "
                  "full pipelines")


if __name__ == "__main__":
    main()
