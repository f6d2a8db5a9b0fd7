"""The one record convention of rnndyn.

A *record* carries a result with its diagnostics: a frozen dataclass registered as a
pytree (``jax.tree_util.register_dataclass``), so that it can leave ``jax.jit`` and be
mapped over with ``jax.tree_util``. Array fields are the pytree's leaves; fields made
with ``static()`` (strings, settings, run statistics) are hashable auxiliary data.
Small results that callers unpack (``values, right, left = eig(J)``) are NamedTuples;
no public function returns a bare tuple of unlike things.

What is not a result is not a record: settings (``rnndyn.config``), cells, models,
datasets and checkpoints (inputs and artefacts) are plain frozen dataclasses.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax

__all__ = ["record", "static"]


def record(cls: type) -> type:
    """Make ``cls`` a frozen dataclass registered as a pytree (``static()`` fields are
    auxiliary data, every other field a child)."""
    return jax.tree_util.register_dataclass(dataclasses.dataclass(frozen=True)(cls))


def static(default: Any = dataclasses.MISSING, **kw: Any) -> Any:
    """A static (hashable, non-array) field of a ``record``."""
    return dataclasses.field(default=default, metadata={"static": True}, **kw)
