"""Benchmark: a window tree against infini-gram's suffix-array index, on the same tokens, in one run.

    pip install "tokentree[bench]"                  # infini-gram==2.6.0 (Liu et al. 2024)
    python benchmarks/bench_infinigram.py           # 10M Zipf tokens (vocab 32,000), d = 8
    python benchmarks/bench_infinigram.py --tokens 1000000 --depth 8
    python benchmarks/bench_infinigram.py --tokens 100000000 --tree-only   # goal: whole process under 4 GiB
    python benchmarks/bench_infinigram.py --corpus gpt2   # real English text, GPT-2 ids (vocab 50,257)

Both builds run in fresh subprocesses, one after the other, on the same corpus
(:func:`tokentree.data.synthetic.zipf_corpus`, seed 0: i.i.d. Zipf(1) ids cut into
responses of 20-200 tokens), and are measured the same way:

* wall time of the build alone: ``build_tree(corpus, depth=d, mode="window")`` for
  tokentree (after a small warm-up build that loads numba's cached kernels), and
  ``infini_gram.indexing.build_sa`` for infini-gram (its make-part, merge and concat
  steps; the input is infini-gram's own token file, ``0xFFFF`` before every response,
  written before the clock starts, as tokentree's corpus is in memory before its clock);
* peak memory above the process's baseline: a thread samples, every 2 ms, the resident
  memory of the process and all its children (infini-gram's indexer runs as Rust child
  processes) and reports the largest sum minus the resident memory just before the
  build. For tokentree the kernel's own peak (``VmHWM``) is given too.

infini-gram writes its index to disk (here a temporary folder); the tree is held in
memory. infini-gram answers every n-gram length, the tree only up to d.

``--corpus gpt2`` replaces the Zipf ids by real English text in GPT-2's BPE (offline: the
built-in corpora, pydoc paragraphs, tweets and chatterbot dialogues, each text a response,
repeated in a seeded order up to ``--tokens``): the counts check on real text.

Then counts are checked: 300 n-grams of lengths 1..d, cut at random places inside
responses (seed 1), counted by the tree (``tree.count``) and by infini-gram's engine
(``InfiniGramEngine.count``) must agree (a window tree's count of a prefix is the number
of its occurrences inside responses; infini-gram's separator never matches an id < 32,000).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tokentree.data.sequences import TokenSequences

VOCAB = 32_000
GPT2_VOCAB = 50_257
N_QUERIES = 300
GPT2_SOURCES = ("pydoc-paragraphs", "tweets-positive", "tweets-negative", "tweets-neutral", "chatterbot")


def bench_corpus(kind: str, n_tokens: int) -> tuple[TokenSequences, int]:
    """The benchmark's tokens and vocabulary size: seeded Zipf ids, or GPT-2 ids of real English text."""
    from tokentree.data.synthetic import zipf_corpus

    if kind == "zipf":
        return zipf_corpus(n_tokens, vocab_size=VOCAB, rng=0), VOCAB
    import numpy as np

    from tokentree.data.sequences import TokenSequences
    from tokentree.data.text import encode_builtin_corpora, gpt2_tokenizer

    texts = TokenSequences.concatenate(encode_builtin_corpora(GPT2_SOURCES, gpt2_tokenizer(), show_progress=False))
    gen, parts, total = np.random.default_rng(0), [], 0
    while total < n_tokens:  # whole passes in seeded orders, the last one cut where the budget ends
        order = gen.permutation(texts.n_sequences)
        cut = int(np.searchsorted(np.cumsum(texts.lengths[order]), n_tokens - total, side="left")) + 1
        parts.append(texts.select(order[:cut]))
        total += parts[-1].n_tokens
    return TokenSequences.concatenate(parts).with_vocab_size(GPT2_VOCAB), GPT2_VOCAB


def _rss_bytes(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm", encoding="ascii") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, IndexError, ValueError):
        return 0  # the process ended between listing and reading


def _descendants(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children", encoding="ascii") as f:
                    todo.extend(int(c) for c in f.read().split())
        except OSError:
            continue
        out.append(p)
    return out


class PeakSampler:
    """Largest resident memory of this process and its descendants together, sampled every ``interval`` s."""

    def __init__(self, interval: float = 0.002) -> None:
        self.interval, self.peak, self._stop = interval, 0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        me = os.getpid()
        while not self._stop.is_set():
            self.peak = max(self.peak, sum(_rss_bytes(p) for p in _descendants(me)))
            time.sleep(self.interval)

    def __enter__(self) -> PeakSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _status_bytes(field: str) -> int:
    with open("/proc/self/status", encoding="ascii") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field)) * 1024


def queries(corpus: TokenSequences, depth: int) -> list[list[int]]:
    """``N_QUERIES`` n-grams of lengths 1..depth cut at random places inside responses (seed 1)."""
    import numpy as np

    gen = np.random.default_rng(1)
    out = []
    for _ in range(N_QUERIES):
        r = int(gen.integers(corpus.n_sequences))
        seq = corpus[r]
        n = int(gen.integers(1, depth + 1))
        at = int(gen.integers(0, max(len(seq) - n, 0) + 1))
        out.append([int(t) for t in seq[at : at + n]])
    return out


def case_tokentree(kind: str, n_tokens: int, depth: int) -> dict:
    from tokentree import build_tree
    from tokentree.data.synthetic import zipf_corpus

    corpus, vocab = bench_corpus(kind, n_tokens)
    build_tree(zipf_corpus(10_000, vocab_size=VOCAB, rng=1), depth=depth, mode="window")  # warm-up
    before = _rss_bytes(os.getpid())
    with open("/proc/self/clear_refs", "w", encoding="ascii") as f:
        f.write("5")  # reset VmHWM
    with PeakSampler() as sampler:
        t0 = time.perf_counter()
        tree = build_tree(corpus, depth=depth, mode="window", vocab_size=vocab, force=True)  # its estimate is a bound
        seconds = time.perf_counter() - t0
    hwm = _status_bytes("VmHWM:")
    counts = [tree.count(q) for q in queries(corpus, depth)]
    return {"seconds": seconds, "peak_above_bytes": max(sampler.peak, hwm) - before, "hwm_above_bytes": hwm - before,
            "baseline_bytes": before, "nodes": tree.n_nodes, "tree_bytes": tree.nbytes, "counts": counts}


def case_infinigram(kind: str, n_tokens: int, depth: int) -> dict:
    import numpy as np
    from infini_gram import indexing
    from infini_gram.engine import InfiniGramEngine

    corpus, _vocab = bench_corpus(kind, n_tokens)
    with tempfile.TemporaryDirectory(prefix="bench_infinigram.") as d:
        # infini-gram's token file: 0xFFFF before every response, u16 little-endian; offsets in bytes (u64)
        sep = np.full(corpus.n_sequences, 0xFFFF, dtype=np.uint16)
        body = np.empty(corpus.n_tokens + corpus.n_sequences, dtype=np.uint16)
        where = corpus.offsets[:-1] + np.arange(corpus.n_sequences)
        body[where] = sep
        keep = np.ones(body.shape[0], bool)
        keep[where] = False
        body[keep] = corpus.tokens
        body.tofile(os.path.join(d, "tokenized.0"))
        (2 * where.astype(np.uint64)).tofile(os.path.join(d, "offset.0"))
        del body, keep, sep
        args = argparse.Namespace(save_dir=d, temp_dir=d, worker_id=0, shards=1, workers=1, cpus=os.cpu_count() or 1,
                                  mem=64, token_width=2)
        cwd = os.getcwd()
        before = _rss_bytes(os.getpid())
        with PeakSampler() as sampler:
            t0 = time.perf_counter()
            indexing.build_sa(args)  # prints its progress; stdout is ours, so send it to stderr
            seconds = time.perf_counter() - t0
        os.chdir(cwd)
        index_bytes = os.path.getsize(os.path.join(d, "table.0"))
        engine = InfiniGramEngine(index_dir=d, eos_token_id=65534, vocab_size=65535)
        counts = [int(engine.count(q)["count"]) for q in queries(corpus, depth)]
        del engine
    import resource

    largest_child = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    return {"seconds": seconds, "peak_above_bytes": sampler.peak - before, "baseline_bytes": before,
            "largest_child_bytes": largest_child, "index_bytes": index_bytes, "counts": counts}


def run_case(kind: str, corpus: str, n_tokens: int, depth: int) -> dict:
    out = subprocess.run([sys.executable, __file__, "--case", kind, corpus, str(n_tokens), str(depth)],
                         capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise SystemExit(f"the {kind} case failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tokens", type=int, default=10_000_000)
    ap.add_argument("--depth", type=int, default=8)
    ap.add_argument("--tree-only", action="store_true",
                    help="build only the tree; report its whole-process peak against the 4 GiB goal (issue 26)")
    ap.add_argument("--corpus", choices=("zipf", "gpt2"), default="zipf",
                    help="zipf: seeded Zipf ids (vocab 32,000); gpt2: real English text in GPT-2's BPE")
    ap.add_argument("--case", nargs=4, metavar=("KIND", "CORPUS", "TOKENS", "DEPTH"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.case:
        kind, corpus, n, depth = args.case[0], args.case[1], int(args.case[2]), int(args.case[3])
        real_stdout = sys.stdout
        sys.stdout = sys.stderr  # infini-gram prints progress; keep stdout for the JSON line
        case = case_tokentree if kind == "tokentree" else case_infinigram
        result = case(corpus, n, depth)
        print(json.dumps(result), file=real_stdout)
        return
    try:
        import infini_gram  # noqa: F401
    except ImportError:
        raise SystemExit('infini-gram is not installed: pip install "tokentree[bench]" (infini-gram==2.6.0)') from None
    n, depth = args.tokens, args.depth
    what = (f"Zipf tokens, vocab {VOCAB:,}" if args.corpus == "zipf" else
            f"GPT-2 tokens of English text, vocab {GPT2_VOCAB:,}")
    if args.tree_only:
        tt = run_case("tokentree", args.corpus, n, depth)
        whole = tt["baseline_bytes"] + tt["peak_above_bytes"]
        print(f"{n / 1e6:g}M {what}, window tree d = {depth}, one process; "
              f"machine: {os.cpu_count()} CPUs")
        print(f"  build {tt['seconds']:.1f} s; {tt['nodes']:,} nodes, tree {tt['tree_bytes'] / 2**30:.2f} GiB "
              f"({tt['tree_bytes'] / tt['nodes']:.2f} B/node); peak above the baseline "
              f"{tt['peak_above_bytes'] / 2**30:.2f} GiB, baseline (corpus) {tt['baseline_bytes'] / 2**30:.2f} GiB")
        print(f"  whole-process peak {whole / 2**30:.2f} GiB (goal < 4 GiB: {whole < 4 * 2**30})")
        return
    ig = run_case("infinigram", args.corpus, n, depth)
    tt = run_case("tokentree", args.corpus, n, depth)
    mib = 2**20
    print(f"{n / 1e6:g}M {what}, window tree d = {depth}; "
          f"machine: {os.cpu_count()} CPUs (numba threads and infini-gram jobs use all of them)")
    print(f"{'':<28} {'build s':>8} {'peak above baseline MiB':>24} {'baseline MiB':>13} {'output MiB':>11}")
    print(f"{'infini-gram 2.6.0 (SA)':<28} {ig['seconds']:>8.2f} {ig['peak_above_bytes'] / mib:>24.0f} "
          f"{ig['baseline_bytes'] / mib:>13.0f} {ig['index_bytes'] / mib:>11.0f}")
    print(f"{'tokentree window tree':<28} {tt['seconds']:>8.2f} {tt['peak_above_bytes'] / mib:>24.0f} "
          f"{tt['baseline_bytes'] / mib:>13.0f} {tt['tree_bytes'] / mib:>11.0f}")
    print(f"  infini-gram: its largest single indexer process peaked at {ig['largest_child_bytes'] / mib:.0f} MiB "
          f"(ru_maxrss); index {ig['index_bytes'] / n:.1f} B/token")
    print(f"  tree: {tt['nodes']:,} nodes, {tt['tree_bytes'] / tt['nodes']:.2f} B/node; "
          f"VmHWM above baseline {tt['hwm_above_bytes'] / mib:.0f} MiB")
    print(f"  ratios tokentree / infini-gram: time {tt['seconds'] / ig['seconds']:.2f}x (goal <= 0.8x), "
          f"peak memory {tt['peak_above_bytes'] / ig['peak_above_bytes']:.2f}x (goal <= 2x)")
    same = sum(a == b for a, b in zip(tt["counts"], ig["counts"], strict=True))
    print(f"  counts of {N_QUERIES} n-grams (lengths 1..{depth}): {same} of {N_QUERIES} equal"
          f"{'' if same == N_QUERIES else ' -- MISMATCH'}")
    if same != N_QUERIES:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
