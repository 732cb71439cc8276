"""Benchmark: your data in. Pre-tokenized streams built where they lie, and readers against pandas, in one run.

Cases (each in its own subprocess, so peak memory is per case):

* a nanoGPT-style ``train.bin`` (Zipf ids as uint16, responses separated by an EOS id)
  built into a depth-4 window tree from the memory-mapped file, in one part and in
  parts (``partitions``): seconds, peak RSS above the RSS before the build, the tree's own
  size, and the goal (peak <= tree + 3 GiB);
* reading the text field of the same records as JSONL, Parquet and CSV with
  :func:`tokentree.data.text.read_responses`, against pyarrow (``pyarrow.json.read_json``,
  ``pyarrow.parquet.read_table``, ``pyarrow.csv.read_csv`` with newlines in values, then ``to_pylist``) and pandas
  (``read_json(lines=True)``, ``read_parquet``, ``read_csv``, then ``tolist``) on the same
  files: MB of response text per second, and the ratios (goals: Parquet and JSONL >= 0.8x
  pyarrow, CSV >= 1x pandas). Each reader runs in its own process, best of ``--repeat``.

    python benchmarks/bench_data.py            # 100M ids (200 MB), 100 MB of JSONL (a few minutes)
    python benchmarks/bench_data.py --quick    # 10M ids, 10 MB of JSONL
    python benchmarks/bench_data.py --readers-only --quick
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_build import peak_rss_gib, reset_peak_rss, rss_gib

VOCAB, EOS = 32_000, 32_000


def write_stream(path: Path, n_tokens: int) -> int:
    """Zipf responses as uint16 with an EOS id after each; returns the number of responses."""
    import numpy as np

    from tokentree.data.synthetic import zipf_corpus

    corpus = zipf_corpus(n_tokens, vocab_size=VOCAB, rng=0)
    flat = np.empty(corpus.n_tokens + corpus.n_sequences, dtype=np.uint16)
    ends = corpus.offsets[1:] + np.arange(1, corpus.n_sequences + 1)  # where each EOS goes
    keep = np.ones(flat.shape[0], dtype=bool)
    keep[ends - 1] = False
    flat[keep] = corpus.tokens
    flat[~keep] = EOS
    flat.tofile(path)
    return corpus.n_sequences


def ids_case(path: str, partitions: int) -> dict:
    from tokentree import build_tree
    from tokentree.data.sequences import load_token_ids

    build_tree([[1, 2, 3]], depth=4, mode="window")  # numba's kernels load once per process
    stream = load_token_ids(path, dtype="uint16", eos=EOS, vocab_size=VOCAB + 1)
    before = rss_gib()
    reset_peak_rss()
    t0 = time.perf_counter()
    tree = build_tree(stream, depth=4, mode="window", partitions=partitions)
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "peak_rss_gib": peak_rss_gib(), "rss_before_gib": before,
            "tree_gib": tree.nbytes / 2**30, "nodes": tree.n_nodes, "tokens": stream.n_tokens,
            "digest": int(tree.counts.sum() % 1_000_003 + tree.parents[-1])}


def write_records(folder: Path, megabytes: int) -> tuple[Path, Path, Path]:
    import pyarrow as pa
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    from tokentree.data.text import builtin_texts

    texts = builtin_texts("pydoc-paragraphs")
    records, size, i = [], 0, 0
    while size < megabytes * 2**20:
        record = {"id": i, "text": texts[i % len(texts)], "meta": {"source": "pydoc"}}
        size += len(json.dumps(record)) + 1
        records.append(record)
        i += 1
    jsonl = folder / "data.jsonl"
    with open(jsonl, "w", encoding="utf-8") as f:
        for record in records:
            f.write(json.dumps(record) + "\n")
    parquet = folder / "data.parquet"
    table = pa.Table.from_pylist(records)
    pq.write_table(table, parquet)
    csv = folder / "data.csv"
    pcsv.write_csv(table.select(["id", "text"]), csv)
    return jsonl, parquet, csv


def _read(path: str, reader: str) -> list:
    import pandas as pd
    import pyarrow.csv as pcsv
    import pyarrow.json as pj
    import pyarrow.parquet as pq

    from tokentree.data.text import read_responses

    kind = Path(path).suffix
    if reader == "tokentree":
        return list(read_responses([path]))
    if reader == "pyarrow":
        quoted_newlines = pcsv.ParseOptions(newlines_in_values=True)  # the texts hold newlines
        read = {".jsonl": pj.read_json, ".csv": lambda p: pcsv.read_csv(p, parse_options=quoted_newlines),
                ".parquet": lambda p: pq.read_table(p, columns=["text"])}[kind]
        return read(path).column("text").to_pylist()
    read = {".jsonl": lambda p: pd.read_json(p, lines=True), ".csv": pd.read_csv,
            ".parquet": lambda p: pd.read_parquet(p, columns=["text"])}[kind]
    return read(path)["text"].tolist()


def reader_case(path: str, reader: str, repeat: str = "3") -> dict:
    import pandas  # noqa: F401  (imports are not timed)
    import pyarrow.csv
    import pyarrow.json
    import pyarrow.parquet  # noqa: F401

    import tokentree.data.text  # noqa: F401

    best = float("inf")
    for _ in range(int(repeat)):
        t0 = time.perf_counter()
        texts = _read(path, reader)
        best = min(best, time.perf_counter() - t0)
    return {"seconds": best, "responses": len(texts), "text_mb": sum(len(t.encode()) for t in texts) / 2**20}


def run_case(*args: object) -> dict:
    out = subprocess.run([sys.executable, __file__, "--case", *map(str, args)], capture_output=True, text=True,
                         check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--readers-only", action="store_true", help="only the reader cases")
    ap.add_argument("--repeat", type=int, default=3, help="rounds of the readers; the best time is kept")
    ap.add_argument("--formats", default="parquet,jsonl,csv", help="the reader cases to run (comma-separated)")
    ap.add_argument("--case", nargs="+", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.case:
        kind, *rest = args.case
        print(json.dumps(ids_case(rest[0], int(rest[1])) if kind == "ids" else reader_case(*rest)))
        return
    n_tokens, megabytes = (10_000_000, 10) if args.quick else (100_000_000, 100)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        if not args.readers_only:
            ids_cases(folder, n_tokens)
        readers_cases(folder, megabytes, args.repeat, args.formats.split(","))


def ids_cases(folder: Path, n_tokens: int) -> None:
    stream = folder / "train.bin"
    n_responses = write_stream(stream, n_tokens)
    print(f"{stream.stat().st_size / 2**20:.0f} MB stream: {n_tokens / 1e6:g}M uint16 Zipf ids, "
          f"{n_responses:,} responses; depth-4 window tree from the memory-mapped file")
    print(f"{'parts':>6} {'seconds':>8} {'peak GiB':>9} {'before':>7} {'tree GiB':>9} {'peak - before':>14} "
          f"{'goal <= tree + 3':>17}")
    results = {}
    for parts in (1, 8):
        r = run_case("ids", stream, parts)
        results[parts] = r
        used = r["peak_rss_gib"] - r["rss_before_gib"]
        print(f"{parts:>6} {r['seconds']:>8.1f} {r['peak_rss_gib']:>9.2f} {r['rss_before_gib']:>7.2f} "
              f"{r['tree_gib']:>9.2f} {used:>14.2f} {used <= r['tree_gib'] + 3!s:>17}")
    print(f"  -> same tree in one part and in 8: {results[1]['digest'] == results[8]['digest']} "
          f"({results[1]['nodes']:,} nodes); time in 8 parts / in one: "
          f"{results[8]['seconds'] / results[1]['seconds']:.2f}")


def readers_cases(folder: Path, megabytes: int, repeat: int, formats: list[str]) -> None:
    jsonl, parquet, csv = write_records(folder, megabytes)
    print(f"\nreading the text field of {jsonl.stat().st_size / 2**20:.0f} MB of JSONL "
          f"({parquet.stat().st_size / 2**20:.1f} MB as Parquet, which dictionary-encodes repeated texts; "
          f"{csv.stat().st_size / 2**20:.0f} MB as CSV); MB of response text per second, best of {repeat} rounds")
    print(f"{'file':<8} {'responses':>10} {'tokentree':>10} {'pyarrow':>8} {'pandas':>8} {'/ pyarrow':>10} "
          f"{'/ pandas':>9}  goal")
    goals = {".parquet": ("pyarrow", 0.8), ".jsonl": ("pyarrow", 0.8), ".csv": ("pandas", 1.0)}
    for path in (p for p in (parquet, jsonl, csv) if p.suffix[1:] in formats):
        runs: dict[str, dict] = {}
        for _ in range(repeat):  # rounds of the three readers, so a burst of load on the machine hits all of them
            for reader in ("tokentree", "pyarrow", "pandas"):
                r = run_case("read", path, reader, 2)
                if reader not in runs or r["seconds"] < runs[reader]["seconds"]:
                    runs[reader] = r
        ours = runs["tokentree"]
        for reader, r in runs.items():
            assert (r["responses"], r["text_mb"]) == (ours["responses"], ours["text_mb"]), (reader, r, ours)
        size = ours["text_mb"]
        ratio = {reader: r["seconds"] / ours["seconds"] for reader, r in runs.items()}
        against, goal = goals[path.suffix]
        print(f"{path.suffix[1:]:<8} {ours['responses']:>10,} {size / ours['seconds']:>10.1f} "
              f"{size / runs['pyarrow']['seconds']:>8.1f} {size / runs['pandas']['seconds']:>8.1f} "
              f"{ratio['pyarrow']:>10.2f} {ratio['pandas']:>9.2f}  {against} >= {goal}: {ratio[against] >= goal}")


if __name__ == "__main__":
    main()
