"""Arrays written past the page cache are standard .npy files, equal to what was written, memory-mapped or not."""

from __future__ import annotations

import os

import numpy as np
import pytest

from tokentree.infra import npy_direct
from tokentree.infra.npy_direct import BLOCK, save_npy


def _check(path, array):
    assert np.array_equal(np.load(path, allow_pickle=False), array)
    mapped = np.load(path, mmap_mode="r", allow_pickle=False)
    assert mapped.dtype == array.dtype and mapped.shape == array.shape and np.array_equal(mapped, array)


@pytest.mark.parametrize("n", [0, 1, 511, BLOCK - 1, BLOCK, BLOCK + 1, npy_direct.CHUNK // 8 - 512,
                               npy_direct.CHUNK // 8 + 3, 3 * npy_direct.CHUNK // 8])
@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.uint16, np.bool_])
def test_every_size_around_a_block_or_a_chunk_reads_back_equal(tmp_path, n, dtype):
    array = (np.arange(n) * 7919 % 1001).astype(dtype)
    save_npy(tmp_path / "a.npy", array)
    _check(tmp_path / "a.npy", array)
    with open(tmp_path / "a.npy", "rb") as f:  # the data start on a block boundary, after a valid header
        assert np.lib.format.read_magic(f) == (1, 0)
        np.lib.format.read_array_header_1_0(f)
        assert f.tell() == BLOCK
    assert os.path.getsize(tmp_path / "a.npy") == BLOCK + array.nbytes


def test_arrays_of_any_shape_and_order_are_written_as_they_read(tmp_path):
    for i, array in enumerate([np.arange(12.0).reshape(3, 4), np.arange(12).reshape(3, 4).T, np.float32(2.5)]):
        save_npy(tmp_path / f"{i}.npy", np.asarray(array))
        _check(tmp_path / f"{i}.npy", np.asarray(array))


def test_a_file_system_without_direct_io_gets_a_plain_save(tmp_path, monkeypatch):
    real_open, real_write = os.open, os.write

    def refuse(path, flags, *args):
        if flags & getattr(os, "O_DIRECT", 0):
            raise OSError(22, "Invalid argument")
        return real_open(path, flags, *args)

    array = np.arange(10_000, dtype=np.int64)
    monkeypatch.setattr(os, "open", refuse)
    save_npy(tmp_path / "refused.npy", array)
    _check(tmp_path / "refused.npy", array)
    monkeypatch.undo()

    def fail(fd, data):  # direct I/O accepted at open, refused at the first write
        raise OSError(22, "Invalid argument")

    monkeypatch.setattr(os, "write", fail)
    save_npy(tmp_path / "failed.npy", array)
    monkeypatch.setattr(os, "write", real_write)
    _check(tmp_path / "failed.npy", array)
    assert os.path.getsize(tmp_path / "failed.npy") < BLOCK + array.nbytes  # np.save's own short header


def test_an_existing_file_is_never_overwritten(tmp_path):
    (tmp_path / "a.npy").write_text("mine")
    with pytest.raises(FileExistsError):
        save_npy(tmp_path / "a.npy", np.arange(3))
    assert (tmp_path / "a.npy").read_text() == "mine"
