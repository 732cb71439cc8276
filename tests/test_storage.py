"""Tree files: round trips, atomic writes, and clear errors for every kind of bad file."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest

from tokentree import TreeFileError, build_tree
from tokentree.trees.storage import FORMAT_VERSION, load_tree, save_tree


@pytest.fixture
def tree():
    return build_tree([[1, 2, 3], [1, 2], [4]], depth=2, mode="window", vocab_size=10)


@pytest.mark.parametrize("compress", [False, True])
def test_round_trip_is_exact(tmp_path, tree, compress):
    path = save_tree(tree, tmp_path / "t.npz", compress=compress)
    loaded = load_tree(path)
    assert loaded == tree and loaded.info == tree.info
    assert loaded.symbols().mass.tolist() == tree.symbols().mass.tolist()


def test_a_failed_write_leaves_the_old_file_intact(tmp_path, tree, monkeypatch):
    path = save_tree(tree, tmp_path / "t.npz")
    before = path.read_bytes()

    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(np, "savez", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        save_tree(build_tree([[7]], depth=1), path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["t.npz"]  # no temp file left behind


def test_truncated_file(tmp_path, tree):
    path = save_tree(tree, tmp_path / "t.npz")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(TreeFileError, match=r"truncated, corrupt or not an \.npz"):
        load_tree(path)


def test_garbage_file(tmp_path):
    path = tmp_path / "t.npz"
    path.write_bytes(b"this is not a zip file at all")
    with pytest.raises(TreeFileError, match="cannot be read as a tree file"):
        load_tree(path)


def test_foreign_npz(tmp_path):
    path = tmp_path / "other.npz"
    np.savez(path, x=np.arange(3))
    with pytest.raises(TreeFileError, match="not a tokentree file"):
        load_tree(path)


def _rewrite(path, **changes):
    with np.load(path, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    arrays.update(changes)
    np.savez(path, **arrays)


def _header(**changes):
    h = {"format": "tokentree.TokenTree", "version": FORMAT_VERSION,
         "info": {"depth": 2, "mode": "window", "vocab_size": 10}}
    h.update(changes)
    return np.frombuffer(json.dumps(h).encode(), dtype=np.uint8)


def test_newer_version(tmp_path, tree):
    path = save_tree(tree, tmp_path / "t.npz")
    _rewrite(path, header=_header(version=FORMAT_VERSION + 1))
    with pytest.raises(TreeFileError, match=r"newer tokentree .* upgrade"):
        load_tree(path)


def test_corrupt_counts(tmp_path, tree):
    path = save_tree(tree, tmp_path / "t.npz")
    counts = tree.counts.copy()
    counts[1] = 0
    _rewrite(path, counts=counts)
    with pytest.raises(TreeFileError, match="counts inconsistent"):
        load_tree(path)


def test_unsorted_children(tmp_path, tree):
    path = save_tree(tree, tmp_path / "t.npz")
    tokens = tree.tokens.copy()
    tokens[1], tokens[2] = tokens[2], tokens[1]
    _rewrite(path, tokens=tokens)
    with pytest.raises(TreeFileError, match="not sorted"):
        load_tree(path)


def test_object_arrays_are_never_unpickled(tmp_path, tree):
    path = save_tree(tree, tmp_path / "t.npz")
    _rewrite(path, counts=np.array([object()] * tree.n_nodes, dtype=object))
    with pytest.raises(TreeFileError, match="cannot be read"):
        load_tree(path)


def test_missing_file(tmp_path):
    with pytest.raises(TreeFileError, match="no such file"):
        load_tree(tmp_path / "nope.npz")


def test_file_is_a_zip_of_plain_arrays(tmp_path, tree):
    path = save_tree(tree, tmp_path / "t.npz")
    with zipfile.ZipFile(path) as z:
        assert sorted(z.namelist()) == sorted(
            f"{k}.npy" for k in ("header", "tokens", "parents", "counts", "leaf_eos", "level_offsets")
        )
