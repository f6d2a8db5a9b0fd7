"""rnndyn._blas: LAPACK on one OpenBLAS thread while rnndyn works, the caller's setting after."""

import numpy as np
import pytest

from rnndyn import _blas


def _counts():
    return [get() for _, get in _blas._controls()]


def test_single_threaded_sets_one_thread_and_restores(monkeypatch):
    if not _blas._controls():
        pytest.skip("no OpenBLAS in this process (MKL or Accelerate)")
    monkeypatch.delenv("RNNDYN_BLAS_THREADS", raising=False)
    before = _counts()
    with _blas.single_threaded():
        assert _counts() == [1] * len(before)
        with _blas.single_threaded():  # nested: still one, and one after the inner block
            np.linalg.eig(np.eye(3))
        assert _counts() == [1] * len(before)
    assert _counts() == before
    with pytest.raises(RuntimeError), _blas.single_threaded():
        raise RuntimeError("restored on errors too")
    assert _counts() == before
    monkeypatch.setenv("RNNDYN_BLAS_THREADS", "keep")
    with _blas.single_threaded():
        assert _counts() == before


def test_decorated_functions_keep_their_names_and_docs():
    from rnndyn.analysis import analyze
    from rnndyn.fixed_points import find_fixed_points

    assert analyze.__name__ == "analyze" and "Reverse engineer" in analyze.__doc__
    assert find_fixed_points.__name__ == "find_fixed_points"
