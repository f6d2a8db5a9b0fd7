"""The compact JSON report of an ``Analysis``, with big arrays in an ``.npz`` beside it.

The top level holds the format, the summary lines, the headline numbers the record
computes (``Analysis.headline_numbers``: ``one_step_error``, ``modifiers``), then the
records. Records become ``{"__record__": name, field: value, ...}``; arrays of at most
``MAX_JSON_ELEMENTS`` elements are inline (complex as ``{"real", "imag"}``, non-finite
floats as ``"inf"``, ``"-inf"``, ``"nan"``), bigger ones ``{"npz": key, "shape",
"dtype"}`` placeholders; caveats are their names.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from typing import Any

import jax
import numpy as np

from rnndyn._io import atomic_write
from rnndyn.analysis.caveats import Caveat

__all__ = ["FORMAT", "MAX_JSON_ELEMENTS", "decode", "encode", "from_json", "to_json"]

FORMAT = "rnndyn.analysis/3"
#: Arrays with more elements than this go to the ``.npz`` beside the JSON report.
MAX_JSON_ELEMENTS = 2048
#: Record fields that hold tuples (JSON lists) rather than arrays.
_TUPLE_FIELDS = ("words", "names", "stats_items", "key")
#: Top-level keys derived from the records (written for readers, not read back).
_DERIVED = ("format", "summary", "one_step_error", "modifiers")


def to_json(a: Any, path: str | os.PathLike | None, *, indent: int | None = 1) -> str:
    """``a`` as JSON text; with ``path``, written there atomically with its ``.npz``."""
    big: dict[str, np.ndarray] = {}
    text = json.dumps(encode(a, big), indent=indent, allow_nan=False)
    if path is not None:
        path = os.fspath(path)
        npz = path + ".npz"
        if big:
            atomic_write(npz, lambda f: np.savez_compressed(f, **big), binary=True)
        elif os.path.exists(npz):  # a stale one from an earlier report
            os.remove(npz)
        atomic_write(path, text)
    return text


def from_json(path: str | os.PathLike, records: dict[str, type]) -> Any:
    """Read a report written by ``to_json`` (and its ``.npz``) back; ``records`` maps the
    record names it may hold to their classes."""
    path = os.fspath(path)
    with open(path, encoding="utf-8") as f:
        record = json.load(f)
    if record.get("format") != FORMAT:
        raise ValueError(
            f"{path} is not an rnndyn analysis report of format {FORMAT!r} (found "
            f"{record.get('format')!r}); rerun the analysis to write one"
        )
    npz = path + ".npz"
    arrays = dict(np.load(npz)) if os.path.exists(npz) else {}
    body = {k: v for k, v in record.items() if k not in _DERIVED}
    return decode(body, arrays, records)


def encode(a: Any, big: dict) -> dict:
    """The JSON-ready dict of an ``Analysis``: its summary lines, its headline numbers,
    then its records."""
    numbers = _encode(a.headline_numbers(), "", {}) if hasattr(a, "headline_numbers") else {}
    return {"format": FORMAT, "summary": a.summary().splitlines(), **numbers,
            **_encode(a, "", big)}  # fmt: skip


def _encode(x: Any, path: str, big: dict) -> Any:
    if isinstance(x, Caveat):
        return x.name
    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        out = {"__record__": type(x).__name__}
        for f in dataclasses.fields(x):
            out[f.name] = _encode(getattr(x, f.name), f"{path}{f.name}.", big)
        return out
    if isinstance(x, tuple) and hasattr(x, "_fields"):  # NamedTuple records
        out = {"__record__": type(x).__name__}
        for k, v in zip(x._fields, x, strict=True):
            out[k] = _encode(v, f"{path}{k}.", big)
        return out
    if isinstance(x, (jax.Array, np.ndarray)):
        arr = np.asarray(x)
        meta = {"shape": list(arr.shape), "dtype": arr.dtype.str}
        if arr.size > MAX_JSON_ELEMENTS:
            key = path.rstrip(".")
            big[key] = arr
            return {"npz": key, **meta}
        if arr.dtype.kind == "c":
            values = {"real": _floats(arr.real), "imag": _floats(arr.imag)}
        else:
            values = _floats(arr) if arr.dtype.kind == "f" else arr.tolist()
        return {"array": values, **meta}
    if isinstance(x, dict):
        return {str(k): _encode(v, f"{path}{k}.", big) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_encode(v, f"{path}{i}.", big) for i, v in enumerate(x)]
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, float):
        return _floats(x)
    return x


def _floats(x: Any) -> Any:
    if isinstance(x, np.ndarray):
        return _floats(x.astype(np.float64).tolist())
    if isinstance(x, list):
        return [_floats(v) for v in x]
    if isinstance(x, float) and not math.isfinite(x):
        return "nan" if math.isnan(x) else ("inf" if x > 0 else "-inf")
    return x


def decode(x: Any, arrays: dict, records: dict[str, type]) -> Any:
    """Inverse of ``encode`` (record classes by name from ``records``)."""
    if isinstance(x, dict):
        if "__record__" in x:
            return _decode_record(x, arrays, records)
        if "npz" in x and "dtype" in x:
            if x["npz"] not in arrays:
                raise ValueError(f"array {x['npz']!r} is missing from the .npz beside the report")
            return arrays[x["npz"]]
        if "array" in x and "dtype" in x:
            return _decode_array(x)
        return {k: decode(v, arrays, records) for k, v in x.items()}
    if isinstance(x, list):
        return [decode(v, arrays, records) for v in x]
    if x in ("nan", "inf", "-inf"):
        return float(x)
    return x


def _decode_array(x: dict) -> np.ndarray:
    dtype = np.dtype(x["dtype"])
    v = x["array"]
    if dtype.kind == "c":
        arr = _decode_floats(v["real"]) + 1j * _decode_floats(v["imag"])
    elif dtype.kind == "f":
        arr = _decode_floats(v)
    else:
        arr = np.asarray(v)
    return arr.astype(dtype).reshape(x["shape"])


def _decode_floats(v: Any) -> np.ndarray:
    def conv(y):
        return [conv(z) for z in y] if isinstance(y, list) else float(y)

    return np.asarray(conv(v), np.float64)


def _decode_record(x: dict, arrays: dict, records: dict[str, type]) -> Any:
    name = x["__record__"]
    cls = records.get(name)
    if cls is None:
        raise ValueError(f"unknown record type {name!r} in the report")
    fields = {k: decode(v, arrays, records) for k, v in x.items() if k != "__record__"}
    for k, v in fields.items():
        if isinstance(v, list) and k in _TUPLE_FIELDS:
            fields[k] = tuple(tuple(i) if isinstance(i, list) else i for i in v)
    if "caveats" in fields:
        fields["caveats"] = tuple(Caveat[n] for n in fields["caveats"])
    return cls(**fields)
