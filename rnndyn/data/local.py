"""Local corpora: CSV, TSV, JSON lines, or a directory of class folders (the aclImdb layout).

:func:`load_local` reads (text, label) rows, optionally filters them (``where``), splits
off a seeded test fraction or reads a separate test file, builds the vocabulary from the
training rows only, tokenises with :func:`rnndyn.data.text.tokenize` and returns
:class:`~rnndyn.data.Dataset` objects. With ``cache_dir`` the tokenised arrays are kept as
``.npz`` keyed by the input files' contents and every setting, like :func:`rnndyn.data.load`.

Every problem in the input is reported as a ``ValueError`` naming the file and the line
(or, for class folders, the file).
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import json
import os
import re
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rnndyn import _checks
from rnndyn.data import cache as data_cache
from rnndyn.data import text as text_lib
from rnndyn.data.dataset import Dataset

__all__ = ["load_local", "LOCAL_SUFFIXES", "is_local_path"]

#: File types :func:`load_local` reads (a directory of class folders is read too).
LOCAL_SUFFIXES = (".csv", ".tsv", ".jsonl", ".json")
#: Class folders with these names hold unlabelled documents (aclImdb's ``unsup``): skipped.
UNLABELLED_FOLDERS = ("unsup", "unlabeled", "unlabelled")
_INT = re.compile(r"^[+-]?\d+$")
_CACHE_VERSION = 1
#: Seconds between progress lines while a large corpus is read or tokenised (verbose).
PROGRESS_SECONDS = 2.0

Row = tuple[str, dict[str, Any]]  # (where: "file:line", fields)


def is_local_path(name: str | os.PathLike) -> bool:
    """Whether ``name`` names a local corpus (an existing path or a known file suffix)."""
    name = os.fspath(name)
    return os.path.exists(name) or name.lower().endswith(LOCAL_SUFFIXES)


def load_local(
    path: str | os.PathLike,
    text_field: str = "text",
    label_field: str = "label",
    *,
    test: str | os.PathLike | None = None,
    test_fraction: float | None = None,
    seed: int = 0,
    where: Mapping[str, str | Sequence[str]] | None = None,
    class_names: Sequence[str] | None = None,
    num_classes: int | None = None,
    ordered: bool = False,
    multilabel: bool = False,
    label_offset: int = 0,
    max_length: int = 400,
    vocab_size: int = 20000,
    min_count: int = 2,
    vocab: Sequence[str] | None = None,
    encoding: str = "utf-8",
    cache_dir: str | os.PathLike | None = None,
    verbose: bool = False,
) -> Dataset | tuple[Dataset, Dataset]:
    """Load a local corpus of (text, label) rows as tokenised dataset(s).

    Inputs: ``.csv`` / ``.tsv`` with a header row, ``.jsonl`` (one JSON object per line),
    or a directory whose sub-folders are the classes and hold one document per ``.txt``
    file (the aclImdb layout: ``train/neg/*.txt``, ``train/pos/*.txt``; folders named
    ``unsup`` are skipped). For folders the fields are ``text``, ``label`` (the folder
    name) and ``file``, and the class names are the folder names, sorted.

    Labels must be integers or integer strings (minus ``label_offset``, e.g. 1 for 1-5
    stars) in ``[0, num_classes)``, or, when ``class_names`` is given, one of those names.
    Floats (``0.7``, ``"1.0"``) and booleans are rejected. Without ``class_names``,
    ``num_classes`` defaults to ``max label + 1`` over the training rows. With
    ``multilabel``, a label field holds a JSON list (or a comma-separated string) of such
    labels and the result has ``(B, L)`` 0/1 labels.

    Args:
      path: the training corpus (or the only one).
      text_field, label_field: field names (CSV/TSV header, JSON keys).
      test: a separate test corpus in the same format; encoded with the training vocabulary.
      test_fraction: instead of ``test``, hold out this fraction of the (filtered) rows,
        chosen at random with ``seed``.
      seed: seed of the ``test_fraction`` split.
      where: keep only rows whose field equals the value (or one of the values), e.g.
        ``{"source": "imdb"}``; several fields must all match.
      class_names, num_classes, ordered, multilabel, label_offset: label interpretation.
      max_length: documents keep their first ``max_length`` tokens.
      vocab_size, min_count: vocabulary cap (specials included) and minimum word count.
      vocab: reuse this vocabulary instead of building one from the training rows.
      encoding: text encoding of the files; ``"utf-8"`` also accepts a byte-order mark.
      cache_dir: keep the tokenised arrays here and reuse them when the files and
        settings are unchanged.
      verbose: progress lines on stderr (``[data] reading FILE: N rows``), also every
        ``PROGRESS_SECONDS`` while a large file is read or tokenised.

    Returns:
      a :class:`Dataset`, or ``(train, test)`` when ``test`` or ``test_fraction`` is given.

    Raises:
      ValueError: missing or unreadable file, unknown field, malformed line, bad label,
        bad setting; the message names the file and line.
    """
    path = Path(path).expanduser()
    seed, max_length, vocab_size, min_count = _check_options(
        test, test_fraction, seed, max_length, vocab_size, min_count, encoding
    )
    conditions = _conditions(where)
    names = _class_names(class_names)
    settings = {
        "version": _CACHE_VERSION,
        "tokenizer": text_lib.TOKENIZER_VERSION,
        "train": _fingerprint(path),
        "test": None if test is None else _fingerprint(Path(test).expanduser()),
        "test_fraction": test_fraction,
        "seed": seed,
        "fields": [text_field, label_field],
        "where": conditions,
        "class_names": names,
        "num_classes": num_classes,
        "ordered": ordered,
        "multilabel": multilabel,
        "label_offset": label_offset,
        "max_length": max_length,
        "vocab": (
            {"size": vocab_size, "min_count": min_count}
            if vocab is None
            else hashlib.sha256("\n".join(vocab).encode()).hexdigest()
        ),
        "encoding": encoding,
    }
    cache = _cache_file(cache_dir, path, settings)
    split = test is not None or test_fraction is not None
    progress = _Progress(verbose)
    cached = None if cache is None else data_cache.read(cache)
    if cached is not None and len(cached) == 1 + split:
        progress.line(f"{path}: {sum(len(d) for d in cached):,} rows from the cache {cache}")
        return cached if split else cached[0]

    rows, dir_names = _read(path, encoding, text_field, label_field, conditions, progress)
    if names is None and dir_names is not None:
        names = dir_names
    labels = _labels(rows, label_field, names, label_offset, multilabel)  # errors first
    if test is not None:
        test_path = Path(test).expanduser()
        test_rows, _ = _read(test_path, encoding, text_field, label_field, conditions, progress)
        test_labels = _labels(test_rows, label_field, names, label_offset, multilabel)
        train_rows, train_labels = rows, labels
    elif test_fraction is not None:
        order = np.random.default_rng(seed).permutation(len(rows))
        n_test = int(round(test_fraction * len(rows)))
        if n_test < 1 or n_test >= len(rows):
            raise ValueError(
                f"test_fraction={test_fraction} of {len(rows)} rows in {path} leaves "
                f"{n_test} test and {len(rows) - n_test} training rows; expected both >= 1"
            )
        test_idx, train_idx = np.sort(order[:n_test]), np.sort(order[n_test:])
        test_rows, test_labels = [rows[i] for i in test_idx], [labels[i] for i in test_idx]
        train_rows, train_labels = [rows[i] for i in train_idx], [labels[i] for i in train_idx]
    else:
        train_rows, train_labels, test_rows, test_labels = rows, labels, None, None

    c = _num_classes(train_labels, names, num_classes, multilabel, path)
    for rows_, labels_ in ((train_rows, train_labels), (test_rows, test_labels)):
        if rows_ is not None:
            _check_range(rows_, labels_, c, multilabel, label_field)
    class_tuple = names or tuple(str(i) for i in range(c))

    train_docs = _tokenize(train_rows, text_field, progress)
    if vocab is None:
        vocab = text_lib.build_vocab(train_docs, vocab_size=vocab_size, min_count=min_count)
        progress.line(f"vocabulary: {len(vocab):,} words")
    common = dict(vocab=vocab, c=c, names=class_tuple, ordered=ordered, multilabel=multilabel)
    progress.line(f"encoding {len(train_docs):,} documents as token ids")
    train_ds = _dataset(train_docs, train_labels, max_length, str(path), **common)
    if test_rows is None:
        result: Dataset | tuple[Dataset, Dataset] = train_ds
    else:
        test_docs = _tokenize(test_rows, text_field, progress)
        name = str(test) if test is not None else f"{path} (held out {test_fraction})"
        result = (train_ds, _dataset(test_docs, test_labels, max_length, name, **common))
    if cache is not None:
        data_cache.write(cache, result)
    return result


# ---------------------------------------------------------------- progress


class _Progress:
    """``[data] ...`` lines on stderr: when a step starts, every ``PROGRESS_SECONDS``
    while it runs (``count``), and when it ends; silent unless ``verbose``."""

    def __init__(self, verbose: bool):
        self.verbose = bool(verbose)
        self.what, self.t0, self.last = "", 0.0, 0.0

    def line(self, text: str) -> None:
        if self.verbose:
            print(f"[data] {text}", file=sys.stderr, flush=True)

    def start(self, what: str, detail: str = "") -> None:
        self.what, self.t0 = what, time.monotonic()
        self.last = self.t0
        self.line(f"{what}{detail}")

    def count(self, n: int, unit: str, total: int | None = None) -> None:
        """Called for every row: a line when ``PROGRESS_SECONDS`` have passed."""
        if not self.verbose or n & 255:  # look at the clock every 256 rows
            return
        now = time.monotonic()
        if now - self.last >= PROGRESS_SECONDS:
            self.last = now
            of = "" if total is None else f"/{total:,}"
            self.line(f"{self.what}: {n:,}{of} {unit}")

    def end(self, text: str) -> None:
        self.line(f"{text} in {time.monotonic() - self.t0:.1f} s")


def _tokenize(rows: list[Row], field: str, progress: _Progress) -> list[list[str]]:
    progress.start(f"tokenising {len(rows):,} documents")
    docs = []
    for i, (_, row) in enumerate(rows, 1):
        docs.append(text_lib.tokenize(row[field]))
        progress.count(i, "documents", len(rows))
    progress.end(f"tokenised {len(docs):,} documents")
    return docs


# ---------------------------------------------------------------- options


def _check_options(
    test: Any,
    test_fraction: Any,
    seed: Any,
    max_length: Any,
    vocab_size: Any,
    min_count: Any,
    encoding: Any,
) -> tuple[int, int, int, int]:
    """Raise on a bad option; return ``seed, max_length, vocab_size, min_count`` as ints."""
    if test is not None and test_fraction is not None:
        raise ValueError(
            f"give either test (a file) or test_fraction, not both; got test={str(test)!r} "
            f"and test_fraction={test_fraction!r}"
        )
    if test_fraction is not None and (
        isinstance(test_fraction, bool)
        or not isinstance(test_fraction, (int, float))
        or not 0 < test_fraction < 1
    ):
        raise ValueError(f"test_fraction must be a number in (0, 1), got {test_fraction!r}")
    ints = (
        _checks.check_int("seed", seed, minimum=0),
        _checks.check_int("max_length", max_length, minimum=1),
        _checks.check_int("vocab_size", vocab_size, minimum=3),
        _checks.check_int("min_count", min_count, minimum=1),
    )
    try:
        codecs.lookup(encoding)
    except (LookupError, TypeError) as err:
        raise ValueError(f"encoding {encoding!r} is not a known text encoding") from err
    return ints


def _conditions(where: Any) -> dict[str, list[str]]:
    if where is None:
        return {}
    if not isinstance(where, Mapping):
        raise ValueError(f"where must be a mapping field -> value(s), got {type(where).__name__}")
    out = {}
    for field, value in where.items():
        values = [value] if isinstance(value, (str, int)) else list(value)
        out[str(field)] = [str(v) for v in values]
    return out


def _class_names(names: Any) -> tuple[str, ...] | None:
    if names is None:
        return None
    if isinstance(names, str):
        raise ValueError(f"class_names must be a sequence of names, got the string {names!r}")
    names = tuple(str(n) for n in names)
    if len(names) < 1 or len(set(names)) != len(names):
        raise ValueError(f"class_names must be distinct names, got {names!r}")
    return names


# ---------------------------------------------------------------- reading


def _decode(path: Path, encoding: str) -> str:
    raw = path.read_bytes()
    codec = "utf-8-sig" if encoding.lower().replace("_", "-") in ("utf-8", "utf8") else encoding
    try:
        return raw.decode(codec)
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise ValueError(
            f"{path}:{line}: cannot decode byte {raw[err.start : err.start + 1]!r} as {encoding} "
            f"({err.reason}); pass the file's encoding (--encoding, e.g. latin-1)"
        ) from err


def _read(
    path: Path,
    encoding: str,
    text_field: str,
    label_field: str,
    conditions: dict[str, list[str]],
    progress: _Progress | None = None,
) -> tuple[list[Row], tuple[str, ...] | None]:
    """Rows ``(where, fields)`` after the filter, and class names when read from folders."""
    if not path.exists():
        raise ValueError(f"path {str(path)!r} does not exist")
    progress = progress or _Progress(False)
    dir_names = None
    if path.is_dir():
        progress.start(f"reading {path}", " (class folders)")
        rows, dir_names = _read_dir(path, encoding, progress)
    else:
        suffix = path.suffix.lower()
        size = path.stat().st_size
        progress.start(f"reading {path}", f" ({size / 1e6:.1f} MB)" if size >= 1e5 else "")
        if suffix in (".csv", ".tsv"):
            rows = _read_csv(path, encoding, "\t" if suffix == ".tsv" else ",", progress)
        elif suffix in (".jsonl", ".json"):
            rows = _read_jsonl(path, encoding, progress)
        else:
            raise ValueError(
                f"path {str(path)!r} must end in .csv, .tsv, .jsonl or .json (JSON lines), or "
                "be a directory of class folders"
            )
    if not rows:
        raise ValueError(f"{path} holds no rows; expected (text, label) records")
    progress.end(f"read {path}: {len(rows):,} rows")
    for field in (text_field, label_field, *conditions):
        for where, row in rows:
            if field not in row:
                raise ValueError(f"{where}: no field {field!r}; fields are {sorted(row)}")
    if conditions:
        rows = [(w, r) for w, r in rows if all(_str(r[f]) in v for f, v in conditions.items())]
        if not rows:
            raise ValueError(f"{path}: no row matches where={conditions}")
    for where, row in rows:
        value = row[text_field]
        if value is None:
            row[text_field] = ""
        elif not isinstance(value, str):
            if isinstance(value, (dict, list)):
                raise ValueError(
                    f"{where}: field {text_field!r} must be text, got {type(value).__name__}"
                )
            row[text_field] = str(value)
    return rows, dir_names


def _str(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _read_csv(path: Path, encoding: str, delimiter: str, progress: _Progress) -> list[Row]:
    text = _decode(path, encoding)
    csv.field_size_limit(2**31 - 1)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = next(reader, None)
        if header is None:
            return []
        header = [h.strip() for h in header]
        rows = []
        for values in reader:
            if not values or all(v == "" for v in values):
                continue
            if len(values) != len(header):
                raise ValueError(
                    f"{path}:{reader.line_num}: {len(values)} fields, but the header has "
                    f"{len(header)} ({header})"
                )
            rows.append((f"{path}:{reader.line_num}", dict(zip(header, values, strict=True))))
            progress.count(len(rows), "rows")
    except csv.Error as err:
        raise ValueError(f"{path}:{reader.line_num}: malformed CSV ({err})") from err
    return rows


def _read_jsonl(path: Path, encoding: str, progress: _Progress) -> list[Row]:
    rows = []
    for number, line in enumerate(_decode(path, encoding).splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}:{number}: malformed JSON ({err.msg})") from err
        if not isinstance(row, dict):
            raise ValueError(f"{path}:{number}: expected a JSON object, got {type(row).__name__}")
        rows.append((f"{path}:{number}", row))
        progress.count(len(rows), "rows")
    return rows


def _read_dir(path: Path, encoding: str, progress: _Progress) -> tuple[list[Row], tuple[str, ...]]:
    folders = sorted(
        p for p in path.iterdir() if p.is_dir() and p.name.lower() not in UNLABELLED_FOLDERS
    )
    if not folders:
        raise ValueError(
            f"directory {str(path)!r} has no class folders; expected e.g. {path}/neg/*.txt and "
            f"{path}/pos/*.txt"
        )
    rows = []
    for folder in folders:
        for file in sorted(folder.glob("*.txt")):
            text = _decode(file, encoding)
            rows.append((str(file), {"text": text, "label": folder.name, "file": file.name}))
            progress.count(len(rows), "files")
    return rows, tuple(f.name for f in folders)


# ---------------------------------------------------------------- labels


def _one_label(value: Any, names: tuple[str, ...] | None, offset: int, where: str) -> int:
    if names is not None and isinstance(value, str) and value.strip() in names:
        return names.index(value.strip())
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return int(value) - offset
    if isinstance(value, str) and _INT.match(value.strip()):
        return int(value.strip()) - offset
    expected = "an integer or integer string"
    if names is not None:
        expected += f" or one of {list(names)}"
    raise ValueError(f"{where}: label {value!r} is not {expected}")


def _labels(
    rows: list[Row],
    field: str,
    names: tuple[str, ...] | None,
    offset: int,
    multilabel: bool,
) -> list[Any]:
    out: list[Any] = []
    for where, row in rows:
        value = row[field]
        if value is None or (isinstance(value, str) and not value.strip() and not multilabel):
            raise ValueError(f"{where}: field {field!r} is empty; expected a label")
        if multilabel:
            out.append([_one_label(v, names, offset, where) for v in _label_list(value, where)])
        else:
            out.append(_one_label(value, names, offset, where))
    return out


def _label_list(value: Any, where: str) -> list[Any]:
    if isinstance(value, (list, tuple)):
        return list(value)
    if isinstance(value, str):
        s = value.strip()
        if s.startswith("["):
            try:
                parsed = json.loads(s)
            except json.JSONDecodeError as err:
                raise ValueError(f"{where}: label list {value!r} is not valid JSON") from err
            if not isinstance(parsed, list):
                raise ValueError(f"{where}: label list {value!r} is not a list")
            return parsed
        return [v.strip() for v in s.split(",") if v.strip()]
    return [value]


def _num_classes(
    labels: list[Any],
    names: tuple[str, ...] | None,
    num_classes: int | None,
    multilabel: bool,
    path: Path,
) -> int:
    if names is not None:
        if num_classes is not None and num_classes != len(names):
            raise ValueError(
                f"num_classes={num_classes} disagrees with the {len(names)} class names"
            )
        return len(names)
    if num_classes is not None:
        return _checks.check_int("num_classes", num_classes, minimum=1)
    flat = [v for x in labels for v in x] if multilabel else labels
    c = max(flat, default=-1) + 1
    if c < (1 if multilabel else 2):
        raise ValueError(
            f"{path}: the labels give {c} class(es); expected at least "
            f"{1 if multilabel else 2} (pass num_classes if some classes are absent)"
        )
    return c


def _check_range(rows: list[Row], labels: list[Any], c: int, multilabel: bool, field: str) -> None:
    for (where, row), label in zip(rows, labels, strict=True):
        for v in label if multilabel else [label]:
            if not 0 <= v < c:
                raise ValueError(
                    f"{where}: label {row[field]!r} gives class {v}, outside [0, {c}) ({c} classes)"
                )


def _dataset(
    docs: list[list[str]],
    labels: list[Any],
    max_length: int,
    name: str,
    *,
    vocab: Sequence[str],
    c: int,
    names: tuple[str, ...],
    ordered: bool,
    multilabel: bool,
) -> Dataset:
    tokens, lengths = text_lib.encode(docs, vocab, max_length=max_length)
    if multilabel:
        y = np.zeros((len(labels), c), np.int32)
        for i, x in enumerate(labels):
            y[i, x] = 1
    else:
        y = np.asarray(labels, np.int32)
    return Dataset(
        tokens=tokens,
        lengths=lengths,
        labels=y,
        vocab=tuple(vocab),
        num_classes=c,
        multilabel=multilabel,
        ordered=ordered,
        class_names=names,
        name=name,
    )


# ---------------------------------------------------------------- cache


def _fingerprint(path: Path) -> str:
    """Content hash of a file, or of a folder tree's (name, size, mtime) listing."""
    if not path.exists():
        raise ValueError(f"path {str(path)!r} does not exist")
    h = hashlib.sha256()
    if path.is_dir():
        for p in sorted(path.rglob("*")):
            if p.is_file():
                st = p.stat()
                h.update(f"{p.relative_to(path)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    else:
        with path.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def _cache_file(cache_dir: Any, path: Path, settings: dict) -> Path | None:
    if cache_dir is None:
        return None
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]
    slug = "".join(ch if ch.isalnum() else "_" for ch in path.name)
    return Path(cache_dir).expanduser() / f"local-{slug}-{digest}.npz"
