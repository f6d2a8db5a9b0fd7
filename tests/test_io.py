"""Tests for rnndyn._io: atomic writes with ordinary permissions."""

import os
import stat

import numpy as np
import pytest

from rnndyn._io import atomic_write, make_temp_dir


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    try:
        yield 0o022
    finally:
        os.umask(old)


def _mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_files_and_folders_get_the_umask_permissions(tmp_path, umask_022):
    for i, (data, binary) in enumerate([(b"\x00bytes", None), ("text é", None)]):
        path = atomic_write(tmp_path / f"f{i}", data, binary=binary)
        assert path == str(tmp_path / f"f{i}")
        assert _mode(path) == 0o666 & ~umask_022 == 0o644
    folder = make_temp_dir(tmp_path, ".work-")
    assert os.path.basename(folder).startswith(".work-")
    assert _mode(folder) == 0o777 & ~umask_022 == 0o755
    os.umask(0o077)
    assert _mode(atomic_write(tmp_path / "private", b"x")) == 0o600


def test_contents_modes_and_replacement(tmp_path):
    path = tmp_path / "a.txt"
    atomic_write(path, "first\n")
    atomic_write(path, "ü second\n", encoding="latin-1")
    assert path.read_bytes() == "ü second\n".encode("latin-1")
    arrays = {"x": np.arange(3)}
    atomic_write(tmp_path / "a.npz", lambda f: np.savez(f, **arrays), binary=True)
    with np.load(tmp_path / "a.npz") as z:
        np.testing.assert_array_equal(z["x"], arrays["x"])
    atomic_write(tmp_path / "b.txt", lambda f: f.write("via a callable"), binary=False)
    assert (tmp_path / "b.txt").read_text() == "via a callable"
    with pytest.raises(TypeError, match="binary=True or binary=False"):
        atomic_write(tmp_path / "c", lambda f: None)
    with pytest.raises(TypeError, match="does not fit str"):
        atomic_write(tmp_path / "c", "text", binary=True)
    with pytest.raises(TypeError, match="bytes, str or a callable"):
        atomic_write(tmp_path / "c", 3)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.npz", "a.txt", "b.txt"]


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "keep.bin"
    atomic_write(path, b"old")

    def fail(f):
        f.write(b"half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(path, fail, binary=True)
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["keep.bin"]
