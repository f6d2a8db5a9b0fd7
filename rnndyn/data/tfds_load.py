"""Real text datasets through tensorflow-datasets (no TensorFlow needed) or local files.

:func:`load` reads a tfds dataset with ``tfds.data_source`` (array_record files, which
work without TensorFlow), tokenises it with :func:`rnndyn.data.text.tokenize` and returns
a :class:`Dataset`. :func:`rnndyn.data.load_local` does the same for local files, the
route for the datasets tfds cannot build without TensorFlow.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rnndyn import _checks
from rnndyn.data import cache as data_cache
from rnndyn.data import text as text_lib
from rnndyn.data.dataset import Dataset


@dataclasses.dataclass(frozen=True)
class _Spec:
    text_fields: tuple[str, ...]  # "/"-separated paths into a tfds item, joined with ". "
    label_field: str
    num_classes: int
    class_names: tuple[str, ...]
    ordered: bool = False
    label_offset: int = 0  # subtracted from the raw label (star ratings 1..5 -> 0..4)
    multilabel: bool = False


SUPPORTED: dict[str, _Spec] = {
    "imdb_reviews": _Spec(("text",), "label", 2, ("neg", "pos")),
    "ag_news_subset": _Spec(
        ("title", "description"), "label", 4, ("World", "Sports", "Business", "Sci/Tech")
    ),
    # Any config, e.g. "amazon_us_reviews/Books_v1_02"; 1-5 stars -> ordered classes 0-4.
    "amazon_us_reviews": _Spec(
        ("data/review_headline", "data/review_body"),
        "data/star_rating",
        5,
        ("1", "2", "3", "4", "5"),
        ordered=True,
        label_offset=1,
    ),
}

# Used by the studies but not buildable by tfds without TensorFlow (tfds 4.9).
NEEDS_LOCAL: dict[str, str] = {
    "yelp_polarity_reviews": "its tfds builder needs TensorFlow",
    "goemotions": "its tfds builder needs TensorFlow",
    "dbpedia": "tfds has no builder for it",
    "yelp_review_full": "tfds has no builder for it",
}

# ---------------------------------------------------------------- public API


def load(
    name: str,
    split: str,
    *,
    data_dir: str | os.PathLike | None = None,
    max_length: int = 400,
    vocab_size: int = 20000,
    min_count: int = 2,
    vocab: Sequence[str] | None = None,
    vocab_split: str = "train",
    cache_dir: str | os.PathLike | None = None,
    download: bool = True,
) -> Dataset:
    """Load a tfds text-classification dataset as a tokenised :class:`Dataset`.

    Args:
        name: one of ``SUPPORTED`` (``amazon_us_reviews`` takes a config,
            ``"amazon_us_reviews/Books_v1_02"``).
        split: tfds split string, e.g. ``"train"``, ``"test"``, ``"train[:10%]"``.
        data_dir: tfds data directory; point it at a prepared copy when offline.
        max_length: documents keep their first ``max_length`` tokens.
        vocab_size, min_count: vocabulary cap (specials included) and minimum word count.
        vocab: reuse this vocabulary (e.g. ``train.vocab`` for the test split); when
            ``None`` it is built from ``vocab_split`` (the training split), so train and
            test loaded separately still share it.
        cache_dir: when given, processed arrays are saved there as ``.npz`` keyed by all
            settings, and a later identical call reads them back without tfds.
        download: let tfds download and prepare the data if missing.

    Raises:
        ValueError: unknown or unavailable name, bad settings.
        RuntimeError: the data could not be downloaded/prepared, or tfds is missing.
    """
    spec = _spec(name)
    max_length = _checks.check_int("max_length", max_length, minimum=1)
    vocab_size = _checks.check_int("vocab_size", vocab_size, minimum=3)
    min_count = _checks.check_int("min_count", min_count, minimum=1)
    settings = {
        "name": name,
        "split": split,
        "data_dir": str(data_dir) if data_dir is not None else None,
        "max_length": max_length,
        "vocab": _vocab_key(vocab, vocab_size, min_count, vocab_split),
        "tokenizer": text_lib.TOKENIZER_VERSION,
    }
    path = _cache_path(cache_dir, name, split, settings)
    cached = None if path is None else data_cache.read(path)
    if cached is not None and len(cached) == 1:
        return cached[0]

    docs, labels = _read_tfds(name, split, spec, data_dir, download)
    if vocab is None:
        vocab_docs = (
            docs
            if split == vocab_split
            else _read_tfds(name, vocab_split, spec, data_dir, download)[0]
        )
        vocab = text_lib.build_vocab(vocab_docs, vocab_size=vocab_size, min_count=min_count)
    ds = _dataset(docs, labels, vocab, spec, max_length, f"{name}:{split}")
    if path is not None:
        data_cache.write(path, ds)
    return ds


# ---------------------------------------------------------------- helpers


def _spec(name: object) -> _Spec:
    base = name.split("/")[0] if isinstance(name, str) else name
    if base in NEEDS_LOCAL:
        raise ValueError(
            f"dataset {name!r} cannot be loaded through tensorflow-datasets here: "
            f"{NEEDS_LOCAL[base]}. Install TensorFlow and use tfds directly, or export it to "
            f"a CSV/JSONL of (text, label) and use rnndyn.data.load_local(path, ...)"
        )
    if base not in SUPPORTED:
        raise ValueError(
            f"unknown dataset {name!r}; supported: {sorted(SUPPORTED)} "
            f"(use rnndyn.data.load_local for others)"
        )
    return SUPPORTED[base]


def _vocab_key(
    vocab: Sequence[str] | None, vocab_size: int, min_count: int, vocab_split: str
) -> Any:
    if vocab is None:
        return {"size": vocab_size, "min_count": min_count, "split": vocab_split}
    return hashlib.sha256("\n".join(vocab).encode()).hexdigest()


def _cache_path(
    cache_dir: str | os.PathLike | None, name: str, split: str, settings: dict
) -> Path | None:
    if cache_dir is None:
        return None
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]
    slug = "".join(ch if ch.isalnum() else "_" for ch in f"{name}-{split}")
    return Path(cache_dir).expanduser() / f"{slug}-{digest}.npz"


#: Hosts probed before a download: tfds's mirror bucket and the usual dataset hosts.
PROBE_HOSTS = ("storage.googleapis.com", "huggingface.co")
#: Seconds each connectivity probe may take.
PROBE_TIMEOUT = 3.0


def network_available(timeout: float = PROBE_TIMEOUT) -> bool:
    """Whether a TCP connection to a public host opens within ``timeout`` seconds.

    Behind an HTTP(S) proxy (``HTTPS_PROXY``/``HTTP_PROXY`` set) direct connections may be
    blocked while downloads work, so the answer is then ``True`` without probing.
    """
    import socket

    if any(os.environ.get(v) for v in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy")):
        return True
    for host in PROBE_HOSTS:
        try:
            with socket.create_connection((host, 443), timeout=timeout):
                return True
        except OSError:
            continue
    return False


def _data_source(name: str, split: str, data_dir: Any, download: bool) -> Sequence[Any]:
    try:
        import tensorflow_datasets as tfds
    except ImportError as err:
        raise RuntimeError(
            "rnndyn.data.load needs tensorflow-datasets: pip install 'rnndyn[data]'"
        ) from err
    where = f"data_dir={str(data_dir)!r}" if data_dir is not None else "the default data_dir"
    how = (
        "Without network access, prepare it on a connected machine with "
        "tfds.data_source(name, split=..., data_dir=DIR) (it writes array_record files), copy "
        "DIR here and pass data_dir=DIR (CLI: --data-dir DIR), or export it to a CSV/JSONL "
        "file and use rnndyn.data.load_local (CLI: --dataset FILE)"
    )
    try:  # a prepared (or mocked) copy: no download, no network
        return tfds.data_source(name, split=split, data_dir=data_dir, download=False)
    except Exception as err:  # tfds raises several types for "not prepared"
        try:
            prepared = tfds.builder(name, data_dir=data_dir).is_prepared()
        except Exception:  # noqa: BLE001 - an unknown config etc.: report the first error
            prepared = True
        if prepared:
            raise RuntimeError(
                f"could not read dataset {name!r} split {split!r} in {where} "
                f"({type(err).__name__}: {' '.join(str(err).split())}). {how}"
            ) from err
        if not download:
            raise RuntimeError(
                f"dataset {name!r} is not prepared in {where} and downloads are off "
                f"(download=False / --no-download). {how}"
            ) from err
    # tfds retries a failed download for minutes; find out in seconds instead.
    if not network_available():
        raise RuntimeError(
            f"dataset {name!r} is not prepared in {where} and the network is unreachable "
            f"(no connection to {', '.join(PROBE_HOSTS)} within {PROBE_TIMEOUT:g} s). {how}"
        )
    try:
        return tfds.data_source(name, split=split, data_dir=data_dir, download=download)
    except Exception as err:  # tfds raises many types (ConnectionError, DownloadError, ...)
        raise RuntimeError(
            f"could not download or prepare dataset {name!r} split {split!r} in {where} "
            f"({type(err).__name__}: {err}). {how}"
        ) from err


def _read_tfds(
    name: str, split: str, spec: _Spec, data_dir: Any, download: bool
) -> tuple[list[list[str]], list[int]]:
    source = _data_source(name, split, data_dir, download)
    docs, labels = [], []
    # One item at a time: slices fail on mocked sources (METHODS.md sec. 6).
    for i in range(len(source)):
        item = source[i]
        parts = [_as_text(_get(item, f)) for f in spec.text_fields]
        docs.append(text_lib.tokenize(". ".join(p for p in parts if p)))
        labels.append(_tfds_label(_get(item, spec.label_field), spec, name, i))
    return docs, labels


def _get(item: Any, path: str) -> Any:
    for part in path.split("/"):
        item = item[part]
    return item


def _as_text(value: Any) -> str:
    if isinstance(value, np.ndarray):
        value = value.item()
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)


def _tfds_label(value: Any, spec: _Spec, name: str, i: int) -> int:
    label = int(np.asarray(value)) - spec.label_offset
    if not 0 <= label < spec.num_classes:
        raise ValueError(
            f"{name} example {i} has {spec.label_field}={int(np.asarray(value))}, expected "
            f"{spec.label_offset}..{spec.label_offset + spec.num_classes - 1} "
            f"(unlabelled splits such as 'unsupervised' cannot be loaded)"
        )
    return label


def _dataset(
    docs: list[list[str]],
    labels: Sequence[int] | np.ndarray,
    vocab: Sequence[str],
    spec: _Spec,
    max_length: int,
    name: str,
) -> Dataset:
    if not docs:
        raise ValueError(f"{name} holds no examples")
    tokens, lengths = text_lib.encode(docs, vocab, max_length=max_length)
    return Dataset(
        tokens=tokens,
        lengths=lengths,
        labels=np.asarray(labels, dtype=np.int32),
        vocab=tuple(vocab),
        num_classes=spec.num_classes,
        multilabel=spec.multilabel,
        ordered=spec.ordered,
        class_names=spec.class_names,
        name=name,
    )
