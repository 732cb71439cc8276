"""Partitioned trees built on Dask equal the single-machine tree, array for array, and answer queries exactly."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.strategies import depths, modes, token_sequences, weights
from tokentree.compression.huffman import huffman_lengths
from tokentree.data.synthetic import zipf_corpus
from tokentree.infra.errors import InputError
from tokentree.trees.build import build_tree
from tokentree.trees.combine import align_symbols
from tokentree.trees.distributed import build_partitioned, parse_memory, worker_peaks
from tokentree.trees.partitioned import open_partitioned


@pytest.fixture(scope="module")
def client():
    from distributed import Client, LocalCluster

    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
                           memory_limit="2GiB")
    with Client(cluster) as c:
        yield c
    cluster.close()


def _same(a, b):
    assert a == b
    for name in ("tokens", "parents", "counts", "level_offsets", "leaf_eos"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name


@settings(max_examples=15)
@given(token_sequences(max_vocab=9, max_len=16), depths, modes, weights, st.integers(1, 64), st.integers(1, 40))
def test_a_dask_build_equals_the_single_build(client, tmp_path_factory, seqs, depth, mode, weight, parts, shard):
    out = tmp_path_factory.mktemp("dask") / "tree"
    tree = build_partitioned(seqs, out, depth=depth, mode=mode, weight=weight, partitions=parts, shard_tokens=shard,
                             client=client)
    whole = build_tree(seqs, depth=depth, mode=mode, weight=weight)
    _same(tree.materialize(), whole)
    assert tree.n_nodes == whole.n_nodes and tree.total_mass == whole.total_mass


def test_depths_past_one_byte_and_many_shards_build_the_same_tree(client, tmp_path):
    seqs = [np.arange(n) % 7 for n in (300, 1, 299, 40)]
    for depth, mode in ((300, "prefix"), (257, "chunk")):
        tree = build_partitioned(seqs, tmp_path / f"{depth}", depth=depth, mode=mode, weight="tokens", partitions=3,
                                 shard_tokens=50, client=client)
        _same(tree.materialize(), build_tree(seqs, depth=depth, mode=mode, weight="tokens"))


@settings(max_examples=40)
@given(token_sequences(max_vocab=9, max_len=16), st.integers(1, 60))
def test_shards_are_whole_responses_that_cover_the_dataset_in_order(seqs, target):
    from tokentree.data.sequences import as_token_sequences
    from tokentree.trees.distributed import shards_of

    seqs = as_token_sequences(seqs)
    shards = shards_of(seqs, target)
    assert shards[0].first == 0 and shards[-1].end == seqs.n_sequences
    assert all(a.end == b.first for a, b in itertools.pairwise(shards))
    longest = int(seqs.lengths.max())
    for shard in shards:
        assert shard.end > shard.first
        assert (shard.start, shard.stop) == (seqs.starts[shard.first], seqs.ends[shard.end - 1])
        assert shard.stop - shard.start < target + longest  # about target tokens: a response is never split
    assert -(-seqs.n_tokens // (target + longest)) <= len(shards) <= -(-seqs.n_tokens // target)


def test_queries_are_summed_exactly_over_parts(client, tmp_path):
    seqs = zipf_corpus(30_000, vocab_size=300, rng=0)
    other = zipf_corpus(20_000, vocab_size=300, rng=1)
    a = build_partitioned(seqs, tmp_path / "a", depth=3, mode="window", partitions=6, client=client)
    b = build_partitioned(other, tmp_path / "b", depth=3, mode="window", plan=a.plan, client=client)
    whole_a, whole_b = build_tree(seqs, depth=3, mode="window"), build_tree(other, depth=3, mode="window")
    first = [int(t) for t in seqs[0][:3]]
    assert a.count(first) == whole_a.count(first) and a.count(first[:1]) == whole_a.count(first[:1])
    assert a.eos_count(first[:2]) == whole_a.eos_count(first[:2]) and a.count([299, 299, 299, 5]) == 0
    stats, expected = a.layer_stats(), whole_a.layer_stats()
    assert stats["nodes"].tolist() == expected.nodes.tolist() and stats["mass"].tolist() == expected.mass.tolist()
    assert np.allclose(stats["entropy_bits"], expected.entropy_bits, rtol=1e-12, atol=1e-12)
    # cross-entropy and KL between two trees with the same boundaries, against the in-memory trees
    aligned = align_symbols([whole_a, whole_b])
    p, q = (m / m.sum() for m in aligned.masses.astype(float))
    if np.all(q[p > 0] > 0):
        cross = -float(np.sum(p[p > 0] * np.log2(q[p > 0])))
        assert a.cross_entropy_bits(b) == pytest.approx(cross, rel=1e-12)
    else:
        assert a.cross_entropy_bits(b) == math.inf and a.kl_bits(b) == math.inf
    assert a.kl_bits(a) == pytest.approx(0.0, abs=1e-12)
    # Huffman: one global code; its total length is the optimum of the whole tree's symbols
    mass = whole_a.symbols().mass
    lengths = np.concatenate(a.huffman_lengths())
    assert int(np.sum(a.symbol_masses() * lengths)) == int(np.sum(mass * huffman_lengths(mass)))
    _same(a.prune(2), whole_a.prune(2))
    c = build_partitioned(other, tmp_path / "c", depth=3, mode="window", partitions=3, client=client)
    with pytest.raises(InputError, match="different parts"):
        a.cross_entropy_bits(c)


def test_a_heavy_first_token_is_cut_by_its_second_and_every_query_stays_exact(client, tmp_path):
    """Every chat starts with the same template token (prefix mode): that token alone is most of the tree."""
    rng = np.random.default_rng(0)
    template = 7
    chats = [[template, *rng.integers(0, 40, size=int(rng.integers(0, 6))).tolist()] for _ in range(3000)]
    others = [[template, *rng.integers(0, 60, size=int(rng.integers(0, 6))).tolist()] for _ in range(500)] + \
        [[59, 58]]  # a first token and second tokens the first corpus never had
    tree = build_partitioned(chats, tmp_path / "a", depth=4, mode="prefix", partitions=6, vocab_size=60,
                             client=client)
    whole = build_tree(chats, depth=4, mode="prefix", vocab_size=60)
    slices = [k for k in tree.plan if k.first_tokens == (template, template + 1)]
    assert len(slices) >= 4 and all(k.second_tokens is not None for k in slices)
    assert slices[0].second_tokens[0] == -1 and slices[-1].second_tokens[1] == 60  # every second token covered
    _same(tree.materialize(), whole)
    _same(tree.prune(1), whole.prune(1))  # the slices' level-1 nodes (and their EOS) merge
    assert tree.n_nodes == whole.n_nodes and tree.level_sizes.tolist() == np.diff(whole.level_offsets).tolist()
    for prefix in ([template], [template, 3], [template, 3, 5], [3], [template, 59]):
        assert tree.count(prefix) == whole.count(prefix) and tree.eos_count(prefix) == whole.eos_count(prefix)
    stats, expected = tree.layer_stats(), whole.layer_stats()
    assert stats["nodes"].tolist() == expected.nodes.tolist()
    assert stats["eos_mass"].tolist() == expected.eos_mass.tolist()
    assert np.allclose(stats["entropy_bits"], expected.entropy_bits, rtol=1e-12, atol=1e-12)
    mass = whole.symbols().mass
    p = mass[mass > 0] / mass.sum()
    assert tree.entropy_bits() == pytest.approx(-float(np.sum(p * np.log2(p))), rel=1e-12)
    assert int(np.sum(tree.symbol_masses() * np.concatenate(tree.huffman_lengths()))) == \
        int(np.sum(mass * huffman_lengths(mass)))
    # another corpus on the same plan is built completely, and the two line up part by part
    other = build_partitioned(others, tmp_path / "b", depth=4, mode="prefix", plan=tree.plan, vocab_size=60,
                              client=client)
    _same(other.materialize(), build_tree(others, depth=4, mode="prefix", vocab_size=60))
    assert tree.kl_bits(tree) == pytest.approx(0.0, abs=1e-12)
    assert other.cross_entropy_bits(tree) == math.inf  # [59, 58] is unknown to the first corpus
    with pytest.raises(InputError, match="covering every first token"):
        build_partitioned(others, tmp_path / "c", depth=4, mode="prefix", plan=tree.plan[1:], vocab_size=60,
                          client=client)


def test_a_worker_killed_mid_task_is_retried_and_the_tree_is_the_same(client, tmp_path):
    seqs = zipf_corpus(20_000, vocab_size=200, rng=2)
    marker = tmp_path / "crashed-once"
    tree = build_partitioned(seqs, tmp_path / "t", depth=4, mode="window", partitions=4, client=client,
                             crash_once=str(marker))
    assert marker.exists()  # a worker did die
    _same(tree.materialize(), build_tree(seqs, depth=4, mode="window"))
    assert len(worker_peaks(tree)) == tree.n_parts


def test_a_stream_is_read_in_place_and_the_output_folder_is_safe(client, tmp_path, capsys):
    from tokentree.data.sequences import load_token_ids

    flat = np.array([5, 6, 7, 0, 5, 6, 0, 9, 9, 9, 9, 0], dtype=np.uint16)
    flat.tofile(tmp_path / "train.bin")
    stream = load_token_ids(tmp_path / "train.bin", dtype="uint16", eos=0, vocab_size=10)
    tree = build_partitioned(stream, tmp_path / "t", depth=3, mode="window", partitions=3, client=client,
                             show_progress=True)
    bars = capsys.readouterr().err
    assert "planning parts" in bars and "building parts" in bars  # a bar per phase
    _same(tree.materialize(), build_tree([[5, 6, 7], [5, 6], [9, 9, 9, 9]], depth=3, mode="window", vocab_size=10))
    assert not list(tmp_path.glob(".tokentree-scratch-*"))  # nothing left behind
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("do not lose me")
    with pytest.raises(Exception, match="replaces only an earlier partitioned tree folder"):
        build_partitioned(stream, tmp_path / "mine", depth=3, client=client)
    assert (tmp_path / "mine" / "thesis.tex").read_text() == "do not lose me"
    build_partitioned(stream, tmp_path / "t", depth=2, client=client)  # an earlier tree folder is replaced
    assert open_partitioned(tmp_path / "t").depth == 2


def test_scratch_space_and_scheduler_errors_are_clear(client, tmp_path, monkeypatch):
    import shutil
    from collections import namedtuple

    seqs = zipf_corpus(5_000, vocab_size=100, rng=3)
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10**6, 10**6 - 1000, 1000))
    with pytest.raises(InputError, match=r"needs up to an estimated .* GiB on disk .* but only 0\.0 GiB is free"):
        build_partitioned(seqs, tmp_path / "t", depth=4, client=client)
    monkeypatch.undo()
    with pytest.raises(InputError, match=r"cannot reach the Dask scheduler at tcp://127\.0\.0\.1:1"):
        build_partitioned(seqs, tmp_path / "u", depth=2, scheduler="tcp://127.0.0.1:1")
    with pytest.raises(InputError, match="memory size 'lots' is not understood"):
        parse_memory("lots")
    with pytest.raises(InputError, match="workers must be an integer >= 1; got 0"):
        build_partitioned(seqs, tmp_path / "v", depth=2, workers=0, client=client)
    with pytest.raises(InputError, match="shard_tokens must be an integer >= 1; got 0"):
        build_partitioned(seqs, tmp_path / "w", depth=2, shard_tokens=0, client=client)
    assert not list(tmp_path.glob(".tokentree-scratch-*"))  # refused before any scratch space was taken


def test_the_workers_a_build_starts_keep_freed_memory_and_this_process_keeps_its_environment(monkeypatch):
    import os

    from tokentree.trees.distributed import KEEP_FREED_MEMORY, local_client

    monkeypatch.delenv("MALLOC_MMAP_MAX_", raising=False)
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    with local_client(1, "1GiB") as started:
        seen = started.run(lambda: {name: os.environ.get(name) for name in KEEP_FREED_MEMORY})
        assert "MALLOC_MMAP_MAX_" not in os.environ  # a subprocess started meanwhile runs as usual
    assert list(seen.values()) == [KEEP_FREED_MEMORY]
    assert "MALLOC_MMAP_MAX_" not in os.environ and os.environ["OMP_NUM_THREADS"] == "3"  # dask's nanny sets both


def test_an_unfinished_tree_is_refused_when_opened(client, tmp_path):
    tree = build_partitioned(zipf_corpus(2_000, vocab_size=50, rng=4), tmp_path / "t", depth=2, client=client)
    (tree.folder / "manifest.json").unlink()
    with pytest.raises(Exception, match="manifest is written last"):
        open_partitioned(tmp_path / "t")


def test_the_command_line_builds_opens_and_queries_a_partitioned_tree(tmp_path, capsys):
    import json

    from tokentree.cli import main
    from tokentree.trees.storage import load_tree

    data = tmp_path / "d.txt"
    data.write_text("the cat sat on the mat\nthe cat ran\na dog sat\nthe end\n" * 5)
    assert main(["build", str(data), "--depth", "3", "--mode", "window", "-o", str(tmp_path / "one.npz")]) == 0
    assert main(["build", str(data), "--depth", "3", "--mode", "window", "--workers", "2", "--partitions", "3",
                 "--memory-limit", "1GiB", "-o", str(tmp_path / "parts")]) == 0
    one, parts = load_tree(tmp_path / "one.npz"), open_partitioned(tmp_path / "parts")
    _same(parts.materialize(), one)
    assert parts.provenance["tokenizer"]["name"] == "gpt2" and parts.count("the cat") == one.count("the cat") == 10
    capsys.readouterr()
    assert main(["info", str(tmp_path / "parts"), "--json"]) == 0
    described = json.loads(capsys.readouterr().out)
    assert described["nodes"] == one.n_nodes and described["parts"] == parts.n_parts
    assert main(["query", str(tmp_path / "parts"), "the cat", "--json"]) == 0
    assert [r["count"] for r in json.loads(capsys.readouterr().out)["query"]] == [15, 10]
