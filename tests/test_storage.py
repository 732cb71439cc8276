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
            f"{k}.npy" for k in ("header", "tokens", "flags", "counts", "count_overflow_at", "count_overflow",
                                 "leaf_eos", "level_offsets")
        )


@pytest.mark.parametrize(("change", "match"), [
    (lambda f: f.__setitem__(1, 5), "bits other than the two flags"),  # a bit that is no flag
    (lambda f: f.__setitem__(0, 0), "do not pair"),  # first children but no node with children
    (lambda f: f.__setitem__(3, f[3] | 2), "do not pair"),  # a node with children but none follow
])
def test_corrupt_node_flags(tmp_path, tree, change, match):
    path = save_tree(tree, tmp_path / "t.npz")
    flags = tree.stored_flags.copy()
    change(flags)
    _rewrite(path, flags=flags)
    with pytest.raises(TreeFileError, match=match):
        load_tree(path)


DATA = __import__("pathlib").Path(__file__).parent / "data"
#: Written by tokentree's format-version-1 code (commit 9368427, before the narrow layout):
#: build_tree(zipf_corpus(3000, vocab_size=500, rng=7), depth=4, mode="window", vocab_size=500), compressed,
#: and build_tree([[1, 2, 3], [1, 2], [4]], depth=2, mode="chunk", vocab_size=70000); digests from that code.
V1_DIGESTS = {
    "tree_v1_window.npz": "53ed28862af5151907263ce788496c23db9feebec435eebaf95ca0fcae853358",
    "tree_v1_big_vocab.npz": "c9079cc934b9ab863d10b443eaa369b5bbb281ce444c65890042bd55aa2cf36a",
}


def test_version_1_files_still_open_and_equal_todays_build(tmp_path):
    from tokentree.data.synthetic import zipf_corpus

    old = load_tree(DATA / "tree_v1_window.npz")
    with zipfile.ZipFile(DATA / "tree_v1_window.npz") as z:
        assert json.loads(np.load(z.open("header.npy")).tobytes())["version"] == 1
    assert old.digest() == V1_DIGESTS["tree_v1_window.npz"]
    rebuilt = build_tree(zipf_corpus(3000, vocab_size=500, rng=7), depth=4, mode="window", vocab_size=500)
    assert old == rebuilt and rebuilt.digest() == V1_DIGESTS["tree_v1_window.npz"]
    assert old.n_nodes == 8358 and old.total_mass == 3000 and int(old.eos_counts.sum()) == 96
    assert old.tokens.dtype == np.int32 and old.tokens[0] == -1 and old.counts.dtype == np.int64
    big = load_tree(DATA / "tree_v1_big_vocab.npz")
    assert big.digest() == V1_DIGESTS["tree_v1_big_vocab.npz"]
    assert big.stored_tokens.dtype == np.int32 and big.count([1, 2]) == 2  # 70,000 ids do not fit uint16
    again = load_tree(save_tree(old, tmp_path / "v2.npz"))  # re-saved in today's format
    assert again == old and again.digest() == old.digest()


def test_version_3_stores_the_narrow_dtypes(tmp_path, tree):
    """uint16 ids (vocabulary <= 65,536), one byte per count with an empty table of large counts, uint32 leaf EOS
    counts (total mass < 2**32) on disk and in memory."""
    path = save_tree(tree, tmp_path / "t.npz")
    with np.load(path, allow_pickle=False) as npz:
        assert json.loads(npz["header"].tobytes())["version"] == FORMAT_VERSION == 4  # the full layout as in 3
        assert npz["tokens"].dtype == np.uint16 and npz["counts"].dtype == np.uint8
        assert npz["count_overflow_at"].shape == (0,) and npz["leaf_eos"].dtype == np.uint32
    loaded = load_tree(path)
    assert loaded.stored_arrays["tokens"].dtype == np.uint16 and loaded.nbytes == tree.nbytes
    assert loaded.tokens.tolist() == [-1, *tree.tokens[1:].tolist()] and loaded.counts.dtype == np.int64


def test_version_3_files_still_open_and_equal_todays_build():
    """Written by the format-version-3 code (commit 00b5d8d) from the tree of tree_v2_window.npz: the same tree."""
    old = load_tree(DATA / "tree_v3_window.npz")
    with np.load(DATA / "tree_v3_window.npz", allow_pickle=False) as npz:
        assert json.loads(npz["header"].tobytes())["version"] == 3 and "tail_length" not in npz.files
    assert not old.is_compressed and old.digest() == V2_DIGESTS["tree_v2_window.npz"]
    assert old.compressed() == old


#: Written by tokentree's format-version-2 code (commit 5a469c6: uint32 counts, no table of large counts):
#: the tree of tree_v1_window.npz, compressed, and
#: build_tree([[1, 2, 3]] * 300 + [[4], [1, 5]], depth=3, mode="window", vocab_size=10); digests from that code.
V2_DIGESTS = {
    "tree_v2_window.npz": "53ed28862af5151907263ce788496c23db9feebec435eebaf95ca0fcae853358",
    "tree_v2_large_counts.npz": "d9e953f6ec277a5f24263ae9e41d105f396b562530a0daeec27f93fedc27e860",
}


def test_version_2_files_still_open_and_equal_todays_build(tmp_path):
    """A version-2 file's dense uint32 counts are narrowed on loading where that pays (one byte and a table of the
    large counts), kept dense where it does not; the same tree, digest and answers either way."""
    from tokentree.data.synthetic import zipf_corpus

    old = load_tree(DATA / "tree_v2_window.npz")
    with np.load(DATA / "tree_v2_window.npz", allow_pickle=False) as npz:
        assert json.loads(npz["header"].tobytes())["version"] == 2 and npz["counts"].dtype == np.uint32
    rebuilt = build_tree(zipf_corpus(3000, vocab_size=500, rng=7), depth=4, mode="window", vocab_size=500)
    assert old == rebuilt and old.digest() == rebuilt.digest() == V2_DIGESTS["tree_v2_window.npz"]
    assert old.stored_arrays["counts"].dtype == np.uint8 and old.stored_arrays["count_overflow_at"].shape[0] > 0
    large = load_tree(DATA / "tree_v2_large_counts.npz")
    assert large.digest() == V2_DIGESTS["tree_v2_large_counts.npz"]
    assert large.stored_arrays["counts"].dtype == np.uint32  # most counts are large: dense pays
    assert large.count([1, 2]) == 300 and large.count([1]) == 301 and large.total_mass == 903
    for t in (old, large):
        again = load_tree(save_tree(t, tmp_path / "v3.npz"))  # re-saved in today's format
        assert again == t and again.digest() == t.digest()


@pytest.mark.parametrize(("change", "match"), [
    (lambda a: {"count_overflow_at": a["count_overflow_at"][::-1].copy()}, "not sorted"),
    (lambda a: {"count_overflow": a["count_overflow"] - 255}, "does not list exactly"),
    (lambda a: {"count_overflow_at": a["count_overflow_at"][1:], "count_overflow": a["count_overflow"][1:]},
     "does not list exactly"),
    (lambda a: {"count_overflow": a["count_overflow"][1:]}, "does not match the counts"),
])
def test_corrupt_table_of_large_counts(tmp_path, change, match):
    rest = [[a, b, c] for a in range(4, 10) for b in range(10) for c in range(10)]
    big = build_tree([[1, 2, 3]] * 300 + rest, depth=3, mode="window", vocab_size=10)
    stored = big.stored_arrays
    assert stored["counts"].dtype == np.uint8 and stored["count_overflow_at"].shape[0] >= 2
    path = save_tree(big, tmp_path / "t.npz")
    _rewrite(path, **change(stored))
    with pytest.raises(TreeFileError, match=match):
        load_tree(path)
