"""The on-disk cache of tokenised datasets, one format for every data source.

A cache file is an ``.npz``: each dataset's ``tokens``, ``lengths``, ``labels``, ``vocab``
(stored once when datasets share it) and ``evidence`` (when present), and under ``meta`` a
JSON text with the format name, its ``version`` and each dataset's other fields
(``num_classes``, ``multilabel``, ``ordered``, ``class_names``, ``name``). It is written
atomically. Which file holds which data (the key) is the data source's business:
``rnndyn.data.load`` and ``rnndyn.data.load_local`` name the file by a hash of their
inputs and settings.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from rnndyn import _io
from rnndyn.data.dataset import Dataset

__all__ = ["FORMAT", "VERSION", "read", "write"]

#: The ``format`` entry of a cache file's metadata.
FORMAT = "rnndyn.dataset-cache"
#: The ``version`` entry; files of another version are stale and rebuilt.
VERSION = 1


def write(path: str | os.PathLike, datasets: Dataset | Sequence[Dataset]) -> None:
    """Write ``datasets`` (one ``Dataset`` or several) to the cache file ``path``,
    atomically, creating its folder if needed."""
    parts = (datasets,) if isinstance(datasets, Dataset) else tuple(datasets)
    arrays: dict[str, np.ndarray] = {}
    meta: dict[str, Any] = {"format": FORMAT, "version": VERSION, "datasets": []}
    for i, ds in enumerate(parts):
        shared = next(j for j, other in enumerate(parts) if other.vocab == ds.vocab)
        if shared == i:
            arrays[f"d{i}_vocab"] = np.array(ds.vocab, dtype=str)
        for field in ("tokens", "lengths", "labels"):
            arrays[f"d{i}_{field}"] = getattr(ds, field)
        if ds.evidence is not None:
            arrays[f"d{i}_evidence"] = ds.evidence
        meta["datasets"].append(
            {
                "vocab": shared,  # the dataset whose vocab array this one uses
                "num_classes": int(ds.num_classes),
                "multilabel": bool(ds.multilabel),
                "ordered": bool(ds.ordered),
                "class_names": None if ds.class_names is None else list(ds.class_names),
                "name": ds.name,
            }
        )
    arrays["meta"] = np.array(json.dumps(meta))
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    _io.atomic_write(path, lambda f: np.savez(f, **arrays), binary=True)


def read(path: str | os.PathLike) -> tuple[Dataset, ...] | None:
    """The datasets in the cache file ``path``, or ``None`` when there are none to use:
    no file, a file of another format or version (stale), or one that cannot be read
    (corrupt: a ``RuntimeWarning`` says so). The caller then rebuilds the data and
    ``write``\\ s the cache again."""
    if not os.path.isfile(path):
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            if "meta" not in z:  # the per-source formats of rnndyn <= 0.1
                return None
            meta = json.loads(str(z["meta"]))
            if not isinstance(meta, dict) or (meta.get("format"), meta.get("version")) != (
                FORMAT,
                VERSION,
            ):
                return None
            return tuple(_dataset(z, i, m) for i, m in enumerate(meta["datasets"]))
    except Exception as err:  # noqa: BLE001 - zip, npy, JSON and Dataset errors alike
        warnings.warn(
            f"ignoring the unreadable dataset cache {os.fspath(path)} "
            f"({type(err).__name__}: {err}); it is rebuilt",
            RuntimeWarning,
            stacklevel=2,
        )
        return None


def _dataset(z: Any, i: int, m: dict) -> Dataset:
    evidence = f"d{i}_evidence"
    names = m["class_names"]
    return Dataset(
        tokens=z[f"d{i}_tokens"],
        lengths=z[f"d{i}_lengths"],
        labels=z[f"d{i}_labels"],
        vocab=tuple(str(w) for w in z[f"d{m['vocab']}_vocab"]),
        num_classes=m["num_classes"],
        multilabel=m["multilabel"],
        ordered=m["ordered"],
        evidence=z[evidence] if evidence in z else None,
        class_names=None if names is None else tuple(names),
        name=m["name"],
    )
