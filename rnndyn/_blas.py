"""OpenBLAS's thread count, one thread while rnndyn's linear algebra runs.

numpy's LAPACK and the one jaxlib calls on the CPU (``jnp.linalg.eig``, ``svd``,
``solve``: scipy's) are OpenBLAS builds that start one thread per core and spin while
they wait. On small matrices (``S × S`` with ``S`` in the hundreds, one per slow point)
the threads cost more than they save, and on a machine whose cores are busy they spin
against each other: 147 eigendecompositions of 128 × 128 matrices took 58 s of CPU with
the default threads on a loaded 2-core machine and 0.8 s with one. rnndyn's own
parallelism is XLA's thread pool and batching, so it runs LAPACK on one thread
(``single_threaded``) and restores the caller's setting afterwards.
"""

from __future__ import annotations

import contextlib
import ctypes
import glob
import os
import re
import sys
from collections.abc import Iterator

__all__ = ["single_threaded"]

# Symbol names of OpenBLAS's setter and getter: numpy's and scipy's wheels rename them
# (64-bit integer builds carry a suffix), a system OpenBLAS keeps the plain names.
_NAMES = (
    ("scipy_openblas_set_num_threads64_", "scipy_openblas_get_num_threads64_"),
    ("scipy_openblas_set_num_threads", "scipy_openblas_get_num_threads"),
    ("openblas_set_num_threads64_", "openblas_get_num_threads64_"),
    ("openblas_set_num_threads", "openblas_get_num_threads"),
)
_OPENBLAS = re.compile(r"(\S*openblas\S*\.(?:so|dylib|dll)\S*)", re.IGNORECASE)
_found: dict[str, tuple] = {}


def _paths() -> set[str]:
    """Files of the OpenBLAS libraries this process has loaded (Linux: the memory map;
    elsewhere: numpy's and scipy's bundled copies)."""
    try:
        with open("/proc/self/maps") as f:
            return {m.group(1) for line in f if (m := _OPENBLAS.search(line))}
    except OSError:
        pass
    out = set()
    for name in ("numpy", "scipy"):
        module = sys.modules.get(name)
        if module is None or not getattr(module, "__file__", None):
            continue
        here = os.path.dirname(module.__file__)
        for pattern in ("../{}.libs/*openblas*", ".dylibs/*openblas*", "../{}.libs/*OpenBLAS*"):
            out.update(glob.glob(os.path.join(here, pattern.format(name))))
    return out


def _controls() -> list[tuple]:
    """``(set, get)`` of every loaded OpenBLAS (after loading numpy's and the LAPACK
    that jaxlib calls, so that both are covered)."""
    try:
        import numpy  # noqa: F401
        import scipy.linalg.cython_lapack  # noqa: F401  (jaxlib's CPU LAPACK)
    except ImportError:
        pass
    for path in _paths() - set(_found):
        _found[path] = ()
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for set_name, get_name in _NAMES:
            setter, getter = getattr(lib, set_name, None), getattr(lib, get_name, None)
            if setter is not None and getter is not None:
                setter.argtypes, setter.restype, getter.restype = [ctypes.c_int], None, ctypes.c_int
                _found[path] = (setter, getter)
                break
    return [c for c in _found.values() if c]


@contextlib.contextmanager
def single_threaded() -> Iterator[None]:
    """Run the block with OpenBLAS on one thread; the previous counts come back after.
    Does nothing where no OpenBLAS is loaded (MKL, Accelerate) or ``RNNDYN_BLAS_THREADS``
    is set to ``keep``."""
    if os.environ.get("RNNDYN_BLAS_THREADS", "").strip().lower() == "keep":
        yield
        return
    controls = _controls()
    before = [get() for _, get in controls]
    for set_, _ in controls:
        set_(1)
    try:
        yield
    finally:
        for (set_, _), n in zip(controls, before, strict=True):
            set_(n)
