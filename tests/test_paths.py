"""Path compression (tokentree.trees.paths): tails stored as pointers into a token array, every answer the same."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.strategies import depths, modes, token_sequences, weights
from tokentree import build_tree
from tokentree.infra.errors import TreeFileError
from tokentree.trees.combine import align_symbols, mixture
from tokentree.trees.dataset_codes import decode_dataset, encode_dataset
from tokentree.trees.partition import stitch_trees
from tokentree.trees.paths import HEAD, PathCompressedTree
from tokentree.trees.storage import FORMAT_VERSION, load_tree, save_tree


def _same_answers(c, t, paths=None) -> None:
    """Every query of the compressed tree ``c`` answers as the full tree ``t`` does (lookups: of ``paths``, by default
    every node's)."""
    assert c.is_compressed and not t.is_compressed
    assert c == t and t == c and c.digest() == t.digest() and hash(c) == hash(t)
    assert (c.n_nodes, c.total_mass, c.depth, c.info) == (t.n_nodes, t.total_mass, t.depth, t.info)
    assert np.array_equal(c.level_offsets, t.level_offsets)
    for name in ("tokens", "parents", "counts", "eos_counts", "child_offsets", "depths", "leaf_eos"):
        assert np.array_equal(getattr(c, name), getattr(t, name)), name
    for name, a in t.stored_arrays.items():
        assert np.array_equal(c.stored_arrays[name], a) and c.stored_arrays[name].dtype == a.dtype, name
    cs, ts = c.symbols(), t.symbols()
    for name in ("node", "ends", "length", "mass"):
        assert np.array_equal(getattr(cs, name), getattr(ts, name)), name
    assert c.layer_stats().to_dict() == t.layer_stats().to_dict()
    for path in (p.path for p in t.iter_paths()) if paths is None else paths:  # and one token past (inside a tail
        assert (c.count(path), c.eos_count(path), c.find(path)) == (t.count(path), t.eos_count(path), t.find(path))
        for extra in range(min(t.vocab_size, 8)):  # too: a mismatch there)
            longer = (*path, extra)
            assert (c.count(longer), c.eos_count(longer)) == (t.count(longer), t.eos_count(longer)), longer
    assert (c.count([]), c.eos_count([])) == (t.count([]), t.eos_count([]))
    for d in range(1, t.depth + 1):
        assert c.prune(d) == t.prune(d)


@settings(max_examples=60, deadline=None)
@given(token_sequences(max_vocab=4, max_len=12), st.integers(1, 8), modes, weights)
def test_every_query_of_a_compressed_tree_answers_as_the_full_tree(seqs, depth, mode, weight):
    t = build_tree(seqs, depth=depth, mode=mode, weight=weight)
    c = t.compressed()
    _same_answers(c, t)
    assert c.expanded() == t and c.compressed() is c and t.expanded() is t
    assert c.explicit.n_nodes + int(c.tails.length.astype(np.int64).sum()) == t.n_nodes


@settings(max_examples=25, deadline=None)
@given(token_sequences(), depths, modes, weights)
def test_a_compressed_tree_saves_and_loads_compressed(tmp_path_factory, seqs, depth, mode, weight):
    t = build_tree(seqs, depth=depth, mode=mode, weight=weight)
    path = save_tree(t.compressed(), tmp_path_factory.mktemp("c") / "c.npz")
    loaded = load_tree(path)
    assert loaded.is_compressed and loaded == t and loaded.nbytes == t.compressed().nbytes
    with np.load(path, allow_pickle=False) as npz:
        assert json.loads(npz["header"].tobytes())["version"] == FORMAT_VERSION == 4
        assert npz["tail_length"].shape[0] == int(np.count_nonzero(npz["flags"] & HEAD))


def test_a_window_tree_of_zipf_text_is_smaller_compressed():
    """Most nodes of a window tree lie on tails: two bytes each (their token) instead of four."""
    from tokentree.data.synthetic import zipf_corpus

    t = build_tree(zipf_corpus(20_000, vocab_size=2_000, rng=3), depth=8, mode="window", vocab_size=2_000)
    c = t.compressed()
    assert c.nbytes < 0.75 * t.nbytes and c.explicit.n_nodes < 0.4 * t.n_nodes
    nodes = np.random.default_rng(0).choice(t.n_nodes, 300, replace=False)
    _same_answers(c, t, [t.path(int(i)) for i in nodes])


def test_provenance_and_tokenizer_survive_compression(tmp_path):
    t = build_tree([[1, 2, 3, 4], [1, 2]], depth=4).with_provenance({"inputs": ["x"]}, '{"model": {}}')
    c = t.compressed()
    assert (c.provenance, c.tokenizer_json) == (t.provenance, t.tokenizer_json)
    loaded = load_tree(save_tree(c, tmp_path / "c.npz"))
    assert loaded.is_compressed and loaded.provenance == t.provenance and loaded.tokenizer_json == t.tokenizer_json
    assert c.expanded().provenance == t.provenance


def test_compressed_trees_code_mix_and_stitch_as_full_ones():
    seqs = [[1, 2, 3, 4, 5], [1, 2, 3], [2, 4, 4, 4], [3, 1], [3, 1, 2, 2, 2, 2]]
    chunks = build_tree(seqs, depth=3, mode="chunk", vocab_size=6)
    bits, full_bits = encode_dataset(chunks.compressed(), seqs), encode_dataset(chunks, seqs)
    assert (bits.data, bits.n_bits, bits.n_symbols) == (full_bits.data, full_bits.n_bits, full_bits.n_symbols)
    assert [s.tolist() for s in decode_dataset(chunks.compressed(), bits)] == seqs
    t = build_tree(seqs, depth=5, mode="prefix", vocab_size=6)
    c = t.compressed()
    other = build_tree([[2, 2], [5]], depth=5, mode="prefix", vocab_size=6)
    assert np.array_equal(mixture([c, other]).probabilities, mixture([t, other]).probabilities)
    assert np.array_equal(align_symbols([c, other]).masses, align_symbols([t, other]).masses)
    parts = [build_tree([s for s in seqs if s[0] < 3], depth=5, mode="prefix", vocab_size=6).compressed(),
             build_tree([s for s in seqs if s[0] >= 3], depth=5, mode="prefix", vocab_size=6).compressed()]
    assert stitch_trees(parts, t.info) == t


def _rewrite(path, **arrays):
    with np.load(path, allow_pickle=False) as npz:
        kept = {k: npz[k] for k in npz.files}
    np.savez(path, **{**kept, **arrays})


@pytest.mark.parametrize(("change", "match"), [
    (lambda a: {"tail_length": a["tail_length"] + 5}, "runs below the tree's depth|hold the tails' tokens"),
    (lambda a: {"tail_text": np.full_like(a["tail_text"], 50)}, "tail tokens out of range"),
    (lambda a: {"tail_length": a["tail_length"][:-1]}, "not one tail per head"),
    (lambda a: {"flags": a["flags"] | np.uint8(HEAD)}, "hanging from the root|not one tail per head"),
    (lambda a: {"tail_end_eos": a["tail_end_eos"] + 100}, "exceeds the tail's count"),
])
def test_corrupt_tails_are_named(tmp_path, change, match):
    t = build_tree([[1, 2, 3, 4], [1, 2, 5, 6], [7, 8, 9, 9]], depth=4, vocab_size=10)
    path = save_tree(t.compressed(), tmp_path / "c.npz")
    with np.load(path, allow_pickle=False) as npz:
        _rewrite(path, **change({k: npz[k] for k in npz.files}))
    with pytest.raises(TreeFileError, match=match):
        load_tree(path)


def test_a_head_flag_without_tails_is_corrupt(tmp_path):
    t = build_tree([[1, 2, 3, 4], [1, 2, 5, 6]], depth=4, vocab_size=10)
    path = save_tree(t, tmp_path / "t.npz")
    with np.load(path, allow_pickle=False) as npz:
        flags = npz["flags"].copy()
    flags[-1] |= HEAD
    _rewrite(path, flags=flags)
    with pytest.raises(TreeFileError, match="bits other than the two flags"):
        load_tree(path)
    assert isinstance(load_tree(save_tree(t.compressed(), tmp_path / "c.npz")), PathCompressedTree)
