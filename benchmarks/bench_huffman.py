"""Benchmark: Huffman code lengths for one alphabet of 10^6 symbols, against heapq and
``np.argsort`` in the same run.

    python benchmarks/bench_huffman.py [--n 1000000]

Times (median of 5, after one warm-up call that loads numba's cached kernel):

* float weights (Pareto(1.5), no ties): ``huffman_lengths`` (sort + Moffat-Katajainen pass)
  and ``huffman_code`` (+ canonical codewords), against the textbook heapq algorithm (one run);
* integer counts with ties (Zipf(1.3) counts, most of them equal to a few small values, as a
  tree's node counts are): ``huffman_lengths`` against ``np.argsort`` of the same counts, the
  sort alone. Goal (issue 26): at most 1.2x ``np.argsort``.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from tokentree.compression import huffman_code, huffman_lengths
from tokentree.trees.reference import heapq_huffman_lengths


def median_seconds(fn, repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1_000_000)
    n = ap.parse_args().n
    rng = np.random.default_rng(0)
    w = rng.pareto(1.5, n) + 1.0
    counts = np.minimum(rng.zipf(1.3, n), 10**9).astype(np.int64)
    huffman_lengths(w[:1000])  # warm-up
    t_len = median_seconds(lambda: huffman_lengths(w))
    t_code = median_seconds(lambda: huffman_code(w))
    t0 = time.perf_counter()
    ref = heapq_huffman_lengths(w.tolist())
    t_heap = time.perf_counter() - t0
    same = float(np.asarray(ref) @ w) == float(huffman_lengths(w) @ w)
    tied = 1.0 - np.unique(counts).shape[0] / n
    t_counts = median_seconds(lambda: huffman_lengths(counts))
    t_argsort = median_seconds(lambda: np.argsort(counts))
    t_stable = median_seconds(lambda: np.argsort(counts, kind="stable"))
    print(f"n = {n:,} symbols")
    print("Pareto(1.5) float weights:")
    print(f"  huffman_lengths  {t_len * 1e3:8.1f} ms   (sort + Moffat-Katajainen)")
    print(f"  huffman_code     {t_code * 1e3:8.1f} ms   (+ canonical codewords)")
    print(f"  heapq reference  {t_heap * 1e3:8.1f} ms   -> lengths {t_heap / t_len:.0f}x faster")
    print(f"  same expected length as heapq: {same}")
    print(f"Zipf(1.3) integer counts ({tied:.1%} of them tie with another):")
    print(f"  huffman_lengths  {t_counts * 1e3:8.1f} ms")
    print(f"  np.argsort       {t_argsort * 1e3:8.1f} ms   -> {t_counts / t_argsort:.2f}x np.argsort (goal <= 1.2x)")
    print(f"  np.argsort(kind='stable') {t_stable * 1e3:8.1f} ms")


if __name__ == "__main__":
    main()
