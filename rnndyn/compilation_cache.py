"""A persistent cache of compiled programs, so that a new process compiles nothing it
compiled before.

JAX compiles every jitted function (the fixed-point search, the certificate kernels, the
training step, each analysis stage) on its first call in a process: seconds to tens of
seconds on a CPU, paid again by every new process. With the cache on, the compiled
programs are written to a folder and read back by later processes (JAX's persistent
compilation cache, keyed by the program, the compile options, and the JAX, jaxlib and
device versions; a change of any of them compiles afresh)::

    import rnndyn
    rnndyn.enable_compilation_cache()          # ~/.cache/rnndyn/jax, or a path

The ``rnndyn`` command line turns it on by default (``--no-compilation-cache`` or
``RNNDYN_COMPILATION_CACHE=0`` turn it off). The folder is trusted: a process loads and
runs what it finds there, so do not point it at a folder others can write to. Delete the
folder to clear the cache.

Programs that call back into Python (``jax.debug.callback``) are never cached; rnndyn's
own compiled code has none (the fixed-point search reports progress between chunks of
iterations instead).
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["ENV_VAR", "default_cache_dir", "enable_compilation_cache", "env_disabled"]

#: ``0``/``off``/``false``/``no`` turn the command line's cache off; any other value is
#: the folder to use.
ENV_VAR = "RNNDYN_COMPILATION_CACHE"
_OFF = ("0", "off", "false", "no", "none")


def env_disabled() -> bool:
    """Whether ``RNNDYN_COMPILATION_CACHE`` turns the cache off."""
    return os.environ.get(ENV_VAR, "").strip().lower() in _OFF


def default_cache_dir() -> Path:
    """``$RNNDYN_COMPILATION_CACHE`` if it names a folder, else
    ``$XDG_CACHE_HOME/rnndyn/jax`` (default ``~/.cache/rnndyn/jax``)."""
    value = os.environ.get(ENV_VAR, "").strip()
    if value and value.lower() not in _OFF:
        return Path(value).expanduser()
    base = os.environ.get("XDG_CACHE_HOME", "").strip() or os.path.join("~", ".cache")
    return Path(base).expanduser() / "rnndyn" / "jax"


def enable_compilation_cache(path: str | os.PathLike | None = None) -> Path:
    """Keep compiled programs in ``path`` (default ``default_cache_dir()``) for later
    processes; returns the folder.

    Every compiled program is kept, however small or quick to compile (JAX's defaults
    skip those compiled in under a second, which are most of an analysis). Call it
    before the work whose compilations should be kept; it applies to the whole process
    (it sets ``jax_compilation_cache_dir``). Calling it again with another folder
    switches to that folder.

    Raises:
      OSError: the folder cannot be created.
    """
    import jax

    folder = Path(path).expanduser() if path is not None else default_cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    previous = jax.config.jax_compilation_cache_dir
    jax.config.update("jax_compilation_cache_dir", str(folder))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)  # no size floor
    if previous is not None and previous != str(folder):
        from jax.experimental.compilation_cache import compilation_cache

        compilation_cache.reset_cache()  # JAX opens its cache folder only once
    return folder
