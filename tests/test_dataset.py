"""rnndyn.data.dataset: the Dataset contract, pad_batch, epoch_batches, batches and
check_dataset, against hand-built sets and brute-force checks."""

from __future__ import annotations

import dataclasses
import types
from collections import Counter

import jax
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rnndyn import cells
from rnndyn.data import Dataset, synthetic
from rnndyn.data.dataset import (
    BUCKET_BATCHES,
    WIDTH_MULTIPLE,
    check_dataset,
    epoch_batches,
    pad_batch,
)
from rnndyn.models import Classifier

KEY = jax.random.key(0)
VOCAB = ("<pad>", "<unk>", "a", "b", "c")


def _random_set(seed: int, n: int, t: int, *, multilabel: bool = False) -> Dataset:
    """``n`` examples of lengths in [1, t], real ids in [2, 5), zeros after the end."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, t + 1, n)
    tokens = np.where(np.arange(t)[None] < lengths[:, None], rng.integers(2, 5, (n, t)), 0)
    labels = rng.integers(0, 2, (n, 3)) if multilabel else rng.integers(0, 3, n)
    return Dataset(tokens, lengths, labels, VOCAB, 3, multilabel=multilabel)


# -------------------------------------------------------------------- the Dataset


def test_dataset_validation():
    ok = {
        "tokens": [[2, 0]],
        "lengths": [1],
        "labels": [0],
        "vocab": ("<pad>", "<unk>", "a"),
        "num_classes": 2,
    }
    Dataset(**ok)
    for bad, match in [
        ({"lengths": [3]}, "lengths"),
        ({"lengths": [0]}, "lengths"),
        ({"labels": [2]}, "labels"),
        ({"tokens": [[5, 0]]}, "tokens"),
        ({"vocab": ("a", "b", "c")}, "vocab"),
        ({"evidence": np.zeros((2, 2))}, "evidence"),
    ]:
        with pytest.raises(ValueError, match=match):
            Dataset(**(ok | bad))


def test_dataset_coerces_types_and_derives_mask():
    ds = Dataset(
        tokens=np.array([[2, 3, 0], [4, 0, 0]], np.int64),
        lengths=[2, 1],
        labels=np.array([1, 0], np.uint8),
        vocab=list(VOCAB),
        num_classes=2,
        class_names=["no", "yes"],
    )
    assert ds.tokens.dtype == ds.lengths.dtype == ds.labels.dtype == np.int32
    assert ds.vocab == VOCAB and ds.class_names == ("no", "yes") and ds.vocab_size == 5
    assert len(ds) == 2
    np.testing.assert_array_equal(ds.mask, [[True, True, False], [True, False, False]])


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        ({"tokens": [2, 0]}, r"tokens must have shape \(B, T\)"),
        ({"lengths": [1, 1]}, r"lengths must have shape \(1,\)"),
        ({"num_classes": 0}, "num_classes must be an integer >= 1"),
        ({"labels": [-1]}, r"labels must lie in \[0, 2\)"),
        ({"labels": [[0, 1]]}, r"labels must have shape \(1,\)"),
        ({"multilabel": True}, r"labels must have shape \(1, 2\)"),
        ({"multilabel": True, "labels": [[0, 2]]}, r"labels must lie in \[0, 2\)"),
        ({"class_names": ("x",)}, "class_names must have 2 entries"),
        ({"tokens": [[-1, 0]]}, "tokens must be ids"),
    ],
)
def test_dataset_rejects(bad, match):
    ok = {"tokens": [[2, 0]], "lengths": [1], "labels": [0], "vocab": VOCAB, "num_classes": 2}
    with pytest.raises(ValueError, match=match):
        Dataset(**(ok | bad))


def test_multilabel_dataset_and_evidence_accepted():
    ds = Dataset([[2, 3]], [2], [[1, 0, 1]], VOCAB, 3, multilabel=True, evidence=np.zeros((5, 3)))
    assert ds.labels.shape == (1, 3) and ds.evidence.dtype == np.float32


def test_subset_and_mask():
    ds = synthetic.multilabel(KEY, 2, 50)
    sub = ds.subset(np.arange(10, 20))
    assert len(sub) == 10 and sub.vocab == ds.vocab and sub.multilabel
    np.testing.assert_array_equal(sub.labels, ds.labels[10:20])
    np.testing.assert_array_equal(sub.mask.sum(1), sub.lengths)
    assert len(ds.subset(ds.labels[:, 0] == 1)) == int(ds.labels[:, 0].sum())


# ---------------------------------------------------------------------- pad_batch


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    n=st.integers(1, 12),
    t=st.integers(1, 20),
    rows=st.integers(0, 12),
    extra=st.integers(0, 4),
    multiple=st.integers(1, 9),
    multilabel=st.booleans(),
)
def test_pad_batch_keeps_every_row_and_masks_the_padding(
    seed, n, t, rows, extra, multiple, multilabel
):
    ds = _random_set(seed, n, t, multilabel=multilabel)
    index = np.random.default_rng(seed + 1).integers(0, n, rows)  # repeats allowed
    b = pad_batch(ds, index, rows + extra, width_multiple=multiple)
    width = b["tokens"].shape[1]
    longest = max([int(ds.lengths[i]) for i in index] + [1])
    # the smallest multiple of `multiple` holding the longest row, but never past T
    want_width = next(w for w in range(multiple, 10**6, multiple) if w >= longest)
    assert width == min(want_width, t)
    assert b["tokens"].shape == b["mask"].shape == (rows + extra, width)
    for r, i in enumerate(index):  # every row's tokens, in order, nothing else
        length = int(ds.lengths[i])
        assert list(b["tokens"][r, : b["mask"][r].sum()]) == list(ds.tokens[i, :length])
        assert b["mask"][r].tolist() == [True] * length + [False] * (width - length)
        assert b["lengths"][r] == length and b["weight"][r] == 1.0
        np.testing.assert_array_equal(b["labels"][r], ds.labels[i])
    for r in range(rows, rows + extra):  # padding rows: nothing real, weight 0
        assert not b["mask"][r].any() and b["lengths"][r] == 0 and b["weight"][r] == 0.0
        assert not b["tokens"][r].any() and not np.any(b["labels"][r])
    assert np.all(b["tokens"][~b["mask"]] == 0)
    assert b["tokens"].dtype == b["lengths"].dtype == b["labels"].dtype == np.int32
    assert b["mask"].dtype == bool and b["weight"].dtype == np.float32


def test_pad_batch_of_a_hand_built_set():
    ds = Dataset([[2, 3, 4, 0], [4, 0, 0, 0]], [3, 1], [2, 1], VOCAB, 3)
    b = pad_batch(ds, np.array([1, 0]), 3, width_multiple=2)
    np.testing.assert_array_equal(b["tokens"], [[4, 0, 0, 0], [2, 3, 4, 0], [0, 0, 0, 0]])
    np.testing.assert_array_equal(b["lengths"], [1, 3, 0])
    np.testing.assert_array_equal(b["labels"], [1, 2, 0])
    np.testing.assert_array_equal(b["weight"], [1, 1, 0])
    # width_multiple=1 trims exactly to the longest row, 3
    assert pad_batch(ds, np.array([0]), width_multiple=1)["tokens"].tolist() == [[2, 3, 4]]


# ------------------------------------------------------------------ epoch_batches


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    n=st.integers(0, 300),
    batch=st.integers(1, 20),
    shuffle=st.booleans(),
    bucket=st.booleans(),
    drop=st.booleans(),
)
def test_epoch_batches_visit_each_example_once(seed, n, batch, shuffle, bucket, drop):
    lengths = np.random.default_rng(seed).integers(1, 50, n)
    opts = {"shuffle": shuffle, "bucket": bucket, "drop_remainder": drop}
    batches = epoch_batches(lengths, batch, np.random.default_rng(seed), **opts)
    flat = np.concatenate(batches) if batches else np.array([], int)
    assert len(set(flat.tolist())) == len(flat)  # no example twice
    if drop:
        assert all(len(i) == batch for i in batches) and len(flat) == n // batch * batch
    else:
        np.testing.assert_array_equal(np.sort(flat), np.arange(n))  # all, exactly once
        assert sum(len(i) < batch for i in batches) <= 1
    if not shuffle and not bucket:
        np.testing.assert_array_equal(flat, np.arange(len(flat)))
    if bucket and not shuffle:  # sorted by length within each chunk of batches
        chunk = batch * BUCKET_BATCHES
        for start in range(0, len(flat), chunk):
            assert np.all(np.diff(lengths[flat[start : start + chunk]]) >= 0)
    again = epoch_batches(lengths, batch, np.random.default_rng(seed), **opts)
    assert all(np.array_equal(x, y) for x, y in zip(batches, again, strict=True))


def test_epoch_batches_and_pad_batch():
    lengths = np.random.default_rng(0).integers(1, 30, size=103)
    rng = np.random.default_rng(1)
    dropped = epoch_batches(lengths, 10, rng)  # training's default: the tail is dropped
    assert [len(i) for i in dropped] == [10] * 10
    assert len(np.unique(np.concatenate(dropped))) == 100
    every = epoch_batches(lengths, 10, rng, drop_remainder=False)
    np.testing.assert_array_equal(np.sort(np.concatenate(every)), np.arange(103))
    assert any(not np.array_equal(x, y) for x, y in zip(dropped, every, strict=False))

    ds = synthetic.categorical(KEY, 3, 20, length=(1, 40))
    rows = np.array([3, 7, 11])
    exact = pad_batch(ds, rows, width_multiple=1)
    assert exact["tokens"].shape == (3, ds.lengths[rows].max())
    np.testing.assert_array_equal(exact["lengths"], ds.lengths[rows])
    padded = pad_batch(ds, rows, 5)
    width = padded["tokens"].shape[1]
    assert padded["tokens"].shape[0] == 5
    assert width % WIDTH_MULTIPLE == 0 or width == ds.tokens.shape[1]
    np.testing.assert_array_equal(padded["weight"], [1, 1, 1, 0, 0])
    assert not padded["mask"][3:].any() and np.all(padded["labels"][3:] == 0)
    np.testing.assert_array_equal(padded["mask"].sum(1)[:3], ds.lengths[rows])


# ------------------------------------------------------------------ check_dataset


def _model(multilabel: bool = False) -> Classifier:
    return Classifier(
        cells.GRU(4), vocab_size=5, embed_size=3, num_classes=3, multilabel=multilabel
    )


def test_check_dataset_accepts_what_the_model_reads():
    assert check_dataset(_model(), _random_set(0, 8, 5), "data") is None
    assert check_dataset(_model(True), _random_set(1, 8, 5, multilabel=True), "data") is None


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (types.SimpleNamespace(tokens=np.zeros((2, 3), int), labels=[0, 1]), "without 'lengths'"),
        ([[2, 3]], "must be an rnndyn.data.Dataset"),
        (types.SimpleNamespace(tokens=np.zeros(3, int), lengths=[3], labels=[0]), "tokens"),
        (types.SimpleNamespace(tokens=np.zeros((0, 3), int), lengths=[], labels=[]), "> 0"),
        (
            types.SimpleNamespace(tokens=np.zeros((2, 3), int), lengths=[3], labels=[0, 1]),
            "lengths",
        ),
        (Dataset([[2, 7]], [2], [0], VOCAB + ("d", "e", "f"), 3), r"\[2, 7\].*vocab_size 5"),
        (Dataset([[2, 3]], [2], [[0, 1, 1]], VOCAB, 3, multilabel=True), "multilabel"),
        (Dataset([[2, 3]], [2], [3], VOCAB, 4), r"labels must lie in \[0, 2\]"),
    ],
)
def test_check_dataset_rejects_what_the_model_cannot_read(data, match):
    with pytest.raises(ValueError, match=match):
        check_dataset(_model(), data, "data")


# ------------------------------------------------------------------- Dataset.batches


@settings(max_examples=20, deadline=None)
@given(
    n=st.integers(1, 130),
    batch=st.integers(1, 17),
    drop=st.booleans(),
    bucket=st.booleans(),
    shuffle=st.booleans(),
    multiple=st.integers(1, 9),
)
def test_batches_cover_every_example_once(n, batch, drop, bucket, shuffle, multiple):
    ds = synthetic.categorical(KEY, 3, n, length=(1, 12))
    seen = []
    opts = {"drop_remainder": drop, "bucket": bucket, "shuffle": shuffle}
    for b in ds.batches(batch, key=jax.random.key(n), width_multiple=multiple, **opts):
        assert set(b) == {"tokens", "mask", "labels"}
        assert b["tokens"].dtype == np.int32 and b["mask"].dtype == bool
        assert b["tokens"].shape == b["mask"].shape
        assert b["mask"][:, 0].all()
        longest = b["mask"].sum(1).max()
        width = b["tokens"].shape[1]
        assert longest <= width <= ds.tokens.shape[1]
        assert width == ds.tokens.shape[1] or (width % multiple == 0 and width - longest < multiple)
        assert np.all(b["tokens"][~b["mask"]] == 0)
        assert len(b["labels"]) <= batch and (not drop or len(b["labels"]) == batch)
        seen.append(b)
    rows = [tuple(t[m]) for b in seen for t, m in zip(b["tokens"], b["mask"], strict=True)]
    expected = [tuple(t[m]) for t, m in zip(ds.tokens, ds.mask, strict=True)]
    n_out = (n // batch) * batch if drop else n
    assert len(rows) == n_out
    # Every emitted row is a distinct example of the set (multiset containment).
    assert not Counter(rows) - Counter(expected)


def test_batches_order_and_bucketing():
    ds = synthetic.categorical(KEY, 3, 400, length=(1, 40))
    idx = dataclasses.replace(ds, labels=np.zeros(400, np.int32))
    unshuffled = [b["tokens"] for b in ds.batches(400, shuffle=False, bucket=False)]
    np.testing.assert_array_equal(unshuffled[0], ds.tokens)
    bucketed = list(idx.batches(8, key=KEY, width_multiple=1))
    widths = [b["tokens"].shape[1] for b in bucketed]
    assert np.mean(widths) < 0.75 * 40  # bucketing trims padding
    a = [b["tokens"] for b in ds.batches(8, key=jax.random.key(1))]
    b = [b["tokens"] for b in ds.batches(8, key=jax.random.key(2))]
    assert any(x.shape != y.shape or not np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    again = [b["tokens"] for b in ds.batches(8, key=jax.random.key(1))]
    assert all(np.array_equal(x, y) for x, y in zip(a, again, strict=True))  # same key, same order
    widths = {b["tokens"].shape[1] for b in ds.batches(8, key=KEY)}
    assert all(w % WIDTH_MULTIPLE == 0 or w == ds.tokens.shape[1] for w in widths)


def test_batches_bad_batch_size():
    ds = synthetic.sentiment(KEY, 10)
    with pytest.raises(ValueError, match="batch_size"):
        next(ds.batches(0))
    with pytest.raises(ValueError, match="width_multiple"):
        next(ds.batches(4, width_multiple=0))
