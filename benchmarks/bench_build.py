"""Benchmark: building token trees, against a pure-Python dict trie measured in the same run.

Cases (each in its own subprocess, so peak memory is per case):

* window mode, 10M Zipf tokens (32k ids, responses of 20-200 tokens), depths 8 and 16;
* the pure-Python dict reference on the first 1M tokens at the same depths, and the
  fast builder on that slice, checked equal node by node (tokens, parents, counts, EOS);
* prefix mode at depth 16 over 100M tokens.

Reports seconds, tokens/s, nodes, bytes per node and peak RSS. Each timed build is
preceded by a small warm-up build (numba's cached kernels load once per process); the
first big build in a process also pays the OS for fresh memory pages, which on a
virtual machine can cost more than the build, so a second build is timed too.

    python benchmarks/bench_build.py            # everything (a few minutes)
    python benchmarks/bench_build.py --quick    # 1M tokens, reference on 100k
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time


def peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def case(kind: str, n_tokens: int, depth: int, mode: str) -> dict:
    import numpy as np

    from tokentree import build_tree
    from tokentree.reference import reference_tree_arrays
    from tokentree.synthetic import zipf_corpus

    corpus = zipf_corpus(n_tokens, vocab_size=32_000, rng=0)
    build_tree(zipf_corpus(10_000, vocab_size=32_000, rng=1), depth=depth, mode=mode)  # warm-up
    rss_before = peak_rss_gib()
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
    del tree
    t0 = time.perf_counter()
    build_tree(corpus, depth=depth, mode=mode, vocab_size=32_000)
    second = time.perf_counter() - t0
    return {"seconds": first, "seconds_second_build": second, "nodes": nodes,
            "bytes_per_node": nbytes / nodes, "peak_rss_gib": peak, "rss_before_gib": rss_before}


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
        print(json.dumps(case(kind, int(n), int(d), mode)))
        return
    big, ref_n, prefix_n = (1_000_000, 100_000, 10_000_000) if args.quick else (10_000_000, 1_000_000, 100_000_000)
    print(f"{'case':<34} {'seconds':>8} {'2nd build':>9} {'Mtok/s':>8} {'nodes':>12} {'B/node':>7} {'peak GiB':>8}")
    for depth in (8, 16):
        fast = run_case("fast", big, depth, "window")
        ref = run_case("reference", ref_n, depth, "window")
        slice_fast = run_case("fast", ref_n, depth, "window")
        for name, r, n in ((f"window d={depth} {big / 1e6:g}M numpy+numba", fast, big),
                           (f"window d={depth} {ref_n / 1e6:g}M numpy+numba", slice_fast, ref_n),
                           (f"window d={depth} {ref_n / 1e6:g}M python dicts", ref, ref_n)):
            print(f"{name:<34} {r['seconds']:>8.2f} {r.get('seconds_second_build', float('nan')):>9.2f} "
                  f"{n / r['seconds'] / 1e6:>8.2f} {r['nodes']:>12,} {r.get('bytes_per_node', float('nan')):>7.2f} "
                  f"{r['peak_rss_gib']:>8.2f}")
        print(f"  -> speed-up vs pure-Python dicts (same {ref_n / 1e6:g}M slice): "
              f"{ref['seconds'] / slice_fast['seconds']:.0f}x; per token at full size: "
              f"{(ref['seconds'] / ref_n) / (fast['seconds'] / big):.0f}x; "
              f"exact counts and parent links: {ref['exact_vs_fast']}")
    pre = run_case("fast", prefix_n, 16, "prefix")
    print(f"{f'prefix d=16 {prefix_n / 1e6:g}M':<34} {pre['seconds']:>8.2f} {pre['seconds_second_build']:>9.2f} "
          f"{prefix_n / pre['seconds'] / 1e6:>8.2f} {pre['nodes']:>12,} {pre['bytes_per_node']:>7.2f} "
          f"{pre['peak_rss_gib']:>8.2f}")


if __name__ == "__main__":
    main()
