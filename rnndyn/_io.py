"""Atomic writes: a file or a directory appears whole under its final name, or not at all.

Files and folders made here get the permissions an ordinary ``open``/``os.makedirs``
would give them (``0o666``/``0o777`` less the process umask), not the private ``0o600``/
``0o700`` of ``tempfile.mkstemp``/``mkdtemp``.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Callable
from typing import IO, Any

__all__ = ["atomic_write", "make_temp_dir"]

_TRIES = 100


def atomic_write(
    path: str | os.PathLike,
    data: bytes | str | Callable[[IO[Any]], object],
    *,
    binary: bool | None = None,
    encoding: str = "utf-8",
) -> str:
    """Write ``data`` to ``path`` through a temporary file in the same folder, then
    ``os.replace`` it onto ``path``: readers see the old file or the new one, never half
    of one, and a failed write leaves no temporary behind.

    Args:
      path: the file to write; its folder must exist.
      data: ``bytes`` (written in binary mode), ``str`` (text mode, ``encoding``), or a
        callable that receives the open temporary file and writes to it (e.g.
        ``lambda f: np.savez(f, **arrays)``).
      binary: the file mode for a callable ``data`` (required then: ``True`` for
        ``"wb"``, ``False`` for ``"w"``); for ``bytes``/``str`` it may be left out and
        must agree with the type if given.
      encoding: the text encoding in text mode.

    Returns:
      ``path`` as a string. The file gets mode ``0o666 & ~umask``, as with ``open``.

    Raises:
      TypeError: ``data`` of another type, or a ``binary`` that does not fit it.
      OSError: the folder cannot be written.
    """
    path = os.fspath(path)
    binary = _mode(data, binary)
    folder = os.path.dirname(os.path.abspath(path))
    f, tmp = _create_file(folder, os.path.basename(path), binary, encoding)
    try:
        with f:
            if callable(data):
                data(f)
            else:
                f.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path


def make_temp_dir(parent: str | os.PathLike, prefix: str) -> str:
    """Create a new, uniquely named directory ``prefix...`` in ``parent`` and return its
    path. Unlike ``tempfile.mkdtemp`` its mode is ``0o777 & ~umask``, as with
    ``os.makedirs``, so it can be renamed into place as a user-visible directory."""
    parent = os.fspath(parent)
    for _ in range(_TRIES):
        path = os.path.join(parent, f"{prefix}{secrets.token_hex(4)}")
        try:
            os.mkdir(path, 0o777)
        except FileExistsError:
            continue
        return path
    raise FileExistsError(f"no free temporary directory name {prefix}... in {parent!r}")


def _mode(data: Any, binary: bool | None) -> bool:
    """Whether ``data`` is written in binary mode."""
    if callable(data):
        if binary is None:
            raise TypeError("atomic_write: give binary=True or binary=False with a callable")
        return bool(binary)
    if isinstance(data, (bytes, bytearray, memoryview)):
        kind = True
    elif isinstance(data, str):
        kind = False
    else:
        raise TypeError(
            f"atomic_write: data must be bytes, str or a callable, got {type(data).__name__}"
        )
    if binary is not None and bool(binary) != kind:
        raise TypeError(f"atomic_write: binary={binary} does not fit {type(data).__name__} data")
    return kind


def _create_file(folder: str, name: str, binary: bool, encoding: str) -> tuple[IO[Any], str]:
    """A new temporary file next to ``name``, open for writing. Mode ``"x"`` creates it
    exclusively, as ``mkstemp`` does, but with ``0o666`` less the umask rather than
    ``0o600``."""
    for _ in range(_TRIES):
        tmp = os.path.join(folder, f".{name}.tmp-{secrets.token_hex(4)}")
        try:
            if binary:
                return open(tmp, "xb"), tmp  # closed by the caller
            return open(tmp, "x", encoding=encoding), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary file name for {name!r} in {folder!r}")
