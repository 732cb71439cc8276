"""Benchmark: building token trees, against a pure-Python dict trie measured in the same run.

Cases (each in its own subprocess, so peak memory is per case):

* window mode, 10M Zipf tokens (32k ids, responses of 20-200 tokens), depths 8 and 16;
* the pure-Python dict reference on the first 1M tokens at the same depths, and the
  fast builder on that slice, checked equal node by node (tokens, parents, counts, EOS);
* prefix mode at depth 16 over 100M tokens.

Reports seconds, tokens/s, nodes, bytes per node, and the peak RSS during the (first)
build next to the RSS before it (the corpus itself, numpy and numba), Linux only. Each timed build is
preceded by a small warm-up build (numba's cached kernels load once per process).
Two times are given: the first big build in a fresh process, and the median of three
more builds in it ("steady"). On a virtual machine the first pays for memory the
hypervisor has not backed yet (it takes pages back once they are freed); the
benchmark measures that price separately, as the time to first-touch 1 GiB in a fresh
process against touching it again.

    python benchmarks/bench_build.py            # everything (a few minutes)
    python benchmarks/bench_build.py --quick    # 1M tokens, reference on 100k
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time


def _status_gib(field: str) -> float:
    with open("/proc/self/status", encoding="ascii") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field)) / 2**20


def rss_gib() -> float:
    """Resident memory now."""
    return _status_gib("VmRSS:")


def reset_peak_rss() -> None:
    """Start a new peak-RSS window (Linux: writing 5 to clear_refs resets VmHWM)."""
    with open("/proc/self/clear_refs", "w", encoding="ascii") as f:
        f.write("5")


def peak_rss_gib() -> float:
    """Peak resident memory since the last :func:`reset_peak_rss`."""
    return _status_gib("VmHWM:")


def case(kind: str, n_tokens: int, depth: int, mode: str) -> dict:
    import numpy as np

    from tokentree import build_tree
    from tokentree.data.synthetic import zipf_corpus
    from tokentree.trees.reference import reference_tree_arrays

    corpus = zipf_corpus(n_tokens, vocab_size=32_000, rng=0)
    build_tree(zipf_corpus(10_000, vocab_size=32_000, rng=1), depth=depth, mode=mode)  # warm-up
    rss_before = rss_gib()  # the corpus, numpy, numba
    reset_peak_rss()
    if kind == "reference":
        seqs = [s.tolist() for s in corpus]
        t0 = time.perf_counter()
        ref = reference_tree_arrays(seqs, depth, mode)
        seconds = time.perf_counter() - t0
        fast = build_tree(corpus, depth=depth, mode=mode, vocab_size=32_000)
        exact = (
            np.array_equal(fast.tokens, ref["tokens"])
            and np.array_equal(fast.parents, ref["parents"])
            and np.array_equal(fast.counts, ref["counts"])
            and np.array_equal(fast.eos_counts, ref["eos_counts"])
        )
        return {"seconds": seconds, "nodes": int(ref["tokens"].shape[0]), "exact_vs_fast": bool(exact),
                "peak_rss_gib": peak_rss_gib(), "rss_before_gib": rss_before}
    t0 = time.perf_counter()
    tree = build_tree(corpus, depth=depth, mode=mode, vocab_size=32_000)
    first = time.perf_counter() - t0
    nodes, nbytes = tree.n_nodes, tree.nbytes
    peak = peak_rss_gib()
    t0 = time.perf_counter()
    compressed = tree.compressed()
    compress_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    same = compressed.expanded() == tree
    expand_s = time.perf_counter() - t0  # the expansion and the comparison
    paths = {"paths_bytes_per_node": compressed.nbytes / nodes, "compress_s": compress_s, "expand_and_compare_s":
             expand_s, "paths_equal": bool(same), "explicit_share": compressed.explicit.n_nodes / nodes}
    del tree, compressed
    again = []
    for _ in range(3):
        t0 = time.perf_counter()
        build_tree(corpus, depth=depth, mode=mode, vocab_size=32_000)
        again.append(time.perf_counter() - t0)
    return {"seconds": first, "seconds_steady": statistics.median(again), "nodes": nodes,
            "bytes_per_node": nbytes / nodes, "peak_rss_gib": peak, "rss_before_gib": rss_before, **paths}


def fresh_memory_case() -> dict:
    """Seconds to write 1 GiB of never-touched memory, then the same 1 GiB again."""
    import numpy as np

    a = np.empty(2**27, dtype=np.int64)
    t0 = time.perf_counter()
    a.fill(1)
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    a.fill(2)
    return {"first_touch_s": first, "again_s": time.perf_counter() - t0}


def run_case(*args: object) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--case", *map(str, args)], capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--case", nargs=4, metavar=("KIND", "TOKENS", "DEPTH", "MODE"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.case:
        kind, n, d, mode = args.case
        print(json.dumps(fresh_memory_case() if kind == "memory" else case(kind, int(n), int(d), mode)))
        return
    big, ref_n, prefix_n = (1_000_000, 100_000, 10_000_000) if args.quick else (10_000_000, 1_000_000, 100_000_000)
    mem = run_case("memory", 0, 0, "-")
    print(f"fresh memory on this machine: first touch of 1 GiB {mem['first_touch_s']:.2f} s, "
          f"touching it again {mem['again_s']:.2f} s")
    print("times in s (first build in a fresh process; median of 3 more), memory in GiB (peak RSS during the "
          "build; RSS before it)")
    columns = ("first", 7), ("steady", 7), ("Mtok/s", 7), ("nodes", 12), ("B/node", 6), ("peak", 5), ("before", 6)
    print(f"{'case':<34} " + " ".join(f"{name:>{width}}" for name, width in columns))
    for depth in (8, 16):
        fast = run_case("fast", big, depth, "window")
        ref = run_case("reference", ref_n, depth, "window")
        slice_fast = run_case("fast", ref_n, depth, "window")
        print_row(f"window d={depth} {big / 1e6:g}M numpy+numba", fast, big)
        print_paths(fast)
        print_row(f"window d={depth} {ref_n / 1e6:g}M numpy+numba", slice_fast, ref_n)
        print_row(f"window d={depth} {ref_n / 1e6:g}M python dicts", ref, ref_n)
        print(f"  -> speed-up vs pure-Python dicts (same {ref_n / 1e6:g}M slice): "
              f"{ref['seconds'] / slice_fast['seconds_steady']:.0f}x; per token at full size: "
              f"{(ref['seconds'] / ref_n) / (fast['seconds_steady'] / big):.0f}x; "
              f"exact counts and parent links: {ref['exact_vs_fast']}")
    prefix = run_case("fast", prefix_n, 16, "prefix")
    print_row(f"prefix d=16 {prefix_n / 1e6:g}M", prefix, prefix_n)
    print_paths(prefix)


def print_paths(r: dict) -> None:
    """The path-compressed layout of the same tree (tokentree.trees.paths)."""
    ratio = r["paths_bytes_per_node"] / r["bytes_per_node"]
    print(f"  -> path-compressed: {r['paths_bytes_per_node']:.2f} B/node ({ratio:.2f}x "
          f"the full layout; explicit nodes {r['explicit_share']:.1%}); compressing {r['compress_s']:.2f} s "
          f"({r['compress_s'] / r['seconds_steady']:.2f}x the build), expanding and comparing "
          f"{r['expand_and_compare_s']:.2f} s; equal: {r['paths_equal']}")


def print_row(name: str, r: dict, n_tokens: int) -> None:
    nan = float("nan")
    steady = r.get("seconds_steady", nan)
    per_second = n_tokens / (r["seconds"] if steady != steady else steady) / 1e6
    print(f"{name:<34} {r['seconds']:>7.2f} {steady:>7.2f} {per_second:>7.2f} {r['nodes']:>12,} "
          f"{r.get('bytes_per_node', nan):>6.2f} {r['peak_rss_gib']:>5.2f} {r['rss_before_gib']:>6.2f}")


if __name__ == "__main__":
    main()
