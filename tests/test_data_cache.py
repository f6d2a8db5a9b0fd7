"""The one on-disk cache format of tokenised datasets (rnndyn.data.cache)."""

import json
import os
import stat

import jax
import numpy as np
import pytest

from rnndyn import data
from rnndyn.data import cache


def _assert_same(a, b):
    for field in ("tokens", "lengths", "labels"):
        got, want = getattr(a, field), getattr(b, field)
        assert got.dtype == want.dtype and got.shape == want.shape
        np.testing.assert_array_equal(got, want)
    if a.evidence is None:
        assert b.evidence is None
    else:
        np.testing.assert_array_equal(a.evidence, b.evidence)
    for field in ("vocab", "num_classes", "multilabel", "ordered", "class_names", "name"):
        assert getattr(a, field) == getattr(b, field), field
        assert type(getattr(a, field)) is type(getattr(b, field)), field


def test_round_trip_keeps_every_field(tmp_path):
    multi = data.synthetic.multilabel(jax.random.key(0), 3, 20)
    named = data.Dataset(
        tokens=[[2, 3, 0], [3, 1, 2]],
        lengths=[2, 3],
        labels=[1, 0],
        vocab=("<pad>", "<unk>", "é", "word two"),
        num_classes=2,
        ordered=True,
        class_names=("bad", "good"),
        name="named:test",
    )
    sharing = data.Dataset(
        tokens=[[3]], lengths=[1], labels=[0], vocab=named.vocab, num_classes=2, name="other"
    )
    path = tmp_path / "sub" / "c.npz"  # the folder is created
    old = os.umask(0o022)
    try:
        cache.write(path, [multi, named, sharing])
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    got = cache.read(path)
    assert len(got) == 3
    for a, b in zip(got, [multi, named, sharing], strict=True):
        _assert_same(a, b)
    assert multi.multilabel and multi.evidence is not None and named.class_names
    with np.load(path) as z:  # the shared vocabulary is stored once
        assert sorted(k for k in z.files if k.endswith("_vocab")) == ["d0_vocab", "d1_vocab"]
        meta = json.loads(str(z["meta"]))
    assert (meta["format"], meta["version"]) == (cache.FORMAT, cache.VERSION)
    cache.write(path, named)  # one dataset
    (one,) = cache.read(path)
    _assert_same(one, named)


def test_missing_stale_and_corrupt_caches_read_as_none(tmp_path):
    ds = data.synthetic.sentiment(jax.random.key(0), 5)
    assert cache.read(tmp_path / "missing.npz") is None
    stale = tmp_path / "stale.npz"
    np.savez(stale, tokens=ds.tokens, lengths=ds.lengths, labels=ds.labels)  # older format
    assert cache.read(stale) is None
    cache.write(stale, ds)
    with np.load(stale) as z:
        arrays = dict(z)
    arrays["meta"] = np.array(json.dumps({"format": cache.FORMAT, "version": cache.VERSION + 1}))
    np.savez(stale, **arrays)
    assert cache.read(stale) is None  # another version
    corrupt = tmp_path / "corrupt.npz"
    cache.write(corrupt, ds)
    blob = corrupt.read_bytes()
    corrupt.write_bytes(blob[: len(blob) // 2])
    with pytest.warns(RuntimeWarning, match="unreadable dataset cache.*rebuilt"):
        assert cache.read(corrupt) is None
    arrays["meta"] = np.array(json.dumps({"format": cache.FORMAT, "version": cache.VERSION}))
    np.savez(corrupt, **arrays)  # the right version, but no datasets entry
    with pytest.warns(RuntimeWarning, match="KeyError"):
        assert cache.read(corrupt) is None


def test_load_local_ignores_and_rewrites_a_corrupt_cache(tmp_path, monkeypatch):
    from rnndyn.data import local

    path = tmp_path / "d.csv"
    path.write_text("text,label\ngood film,1\nbad film,0\nok,1\nmeh,0\n", encoding="utf-8")
    kw = dict(test_fraction=0.5, num_classes=2, min_count=1, cache_dir=tmp_path / "cache")
    first = data.load_local(path, **kw)
    (file,) = (tmp_path / "cache").glob("*.npz")
    file.write_bytes(b"not a zip file")
    with pytest.warns(RuntimeWarning, match="unreadable dataset cache"):
        second = data.load_local(path, **kw)  # parsed again
    for a, b in zip(first, second, strict=True):
        _assert_same(a, b)
    reads = []
    real = local._read
    monkeypatch.setattr(local, "_read", lambda *a: reads.append(a) or real(*a))
    third = data.load_local(path, **kw)  # the rewritten cache: a hit
    assert not reads
    for a, b in zip(first, third, strict=True):
        _assert_same(a, b)
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [file.name]
