"""Real-data loading: tokeniser, vocabulary, tfds path (offline, mocked) and local files."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rnndyn import data
from rnndyn.data import text

tfds = pytest.importorskip("tensorflow_datasets")


@pytest.fixture(autouse=True)
def _offline_fast(monkeypatch):
    # Offline downloads otherwise retry for minutes before failing (METHODS.md sec. 6).
    from tensorflow_datasets.core.download import downloader

    monkeypatch.setattr(downloader, "MAX_RETRIES", 0)


def fake_source(monkeypatch, items):
    """Make tfds.data_source return ``items`` for any split, recording the calls."""
    calls = []

    def source(name, *, split, data_dir=None, download=True):
        calls.append((name, split))
        return items

    monkeypatch.setattr(tfds, "data_source", source)
    return calls


# ---------------------------------------------------------------- tokeniser / vocab


def test_tokenize_rules():
    got = text.tokenize("Great movie!<br /><br />I didn't LIKE the end... 10/10, café_au-lait")
    assert got == ["great", "movie", "i", "didn't", "like", "the", "end", "10", "10"] + [
        "café",
        "au",
        "lait",
    ]
    assert text.tokenize(b"It's <i>fine</i>.") == ["it's", "fine"]
    assert text.tokenize("  ...  ") == []


@settings(max_examples=50, deadline=None)
@given(st.text(max_size=60))
def test_tokenize_tokens_are_clean(s):
    for tok in text.tokenize(s):
        assert tok and tok == tok.lower() and " " not in tok and "<" not in tok


def test_build_vocab_frequency_order_cap_and_min_count():
    docs = [["b", "a", "c"], ["a", "b"], ["a", "d"]]
    assert text.build_vocab(docs) == ("<pad>", "<unk>", "a", "b", "c", "d")
    assert text.build_vocab(docs, min_count=2) == ("<pad>", "<unk>", "a", "b")
    assert text.build_vocab(docs, vocab_size=3) == ("<pad>", "<unk>", "a")
    with pytest.raises(ValueError, match="vocab_size"):
        text.build_vocab(docs, vocab_size=2)
    with pytest.raises(ValueError, match="min_count"):
        text.build_vocab(docs, min_count=0)


def test_encode_truncates_pads_and_handles_empty():
    vocab = ("<pad>", "<unk>", "a", "b")
    tokens, lengths = text.encode([["a", "b", "zzz", "a"], [], ["b"]], vocab, max_length=3)
    np.testing.assert_array_equal(tokens, [[2, 3, 1], [1, 0, 0], [3, 0, 0]])
    np.testing.assert_array_equal(lengths, [3, 1, 1])
    with pytest.raises(ValueError, match="max_length"):
        text.encode([["a"]], vocab, max_length=0)


# ---------------------------------------------------------------- tfds (mocked)


def test_load_imdb_mock(tmp_path):
    with tfds.testing.mock_data(num_examples=12):
        train = data.load("imdb_reviews", "train", min_count=1, max_length=5)
        test = data.load("imdb_reviews", "test", vocab=train.vocab, max_length=5)
        test_auto = data.load("imdb_reviews", "test", min_count=1, max_length=5)
    assert len(train) == 12 and train.num_classes == 2 and train.class_names == ("neg", "pos")
    assert train.vocab[:2] == ("<pad>", "<unk>") and train.vocab_size > 2
    assert train.tokens.dtype == np.int32 and train.tokens.shape[1] <= 5
    assert np.all(train.tokens[~train.mask] == 0) and np.all(train.tokens[train.mask] > 0)
    assert np.all((train.labels >= 0) & (train.labels < 2))
    assert test.vocab == train.vocab
    assert test_auto.vocab == train.vocab  # test split's vocabulary comes from train


def test_load_cache_hit(tmp_path, monkeypatch):
    with tfds.testing.mock_data(num_examples=8):
        first = data.load("imdb_reviews", "train", min_count=1, cache_dir=tmp_path)
    assert len(list(tmp_path.glob("*.npz"))) == 1

    reads = []

    def boom(*args, **kwargs):
        reads.append(args)
        raise AssertionError("tfds must not be read on a cache hit")

    monkeypatch.setattr(tfds, "data_source", boom)
    second = data.load("imdb_reviews", "train", min_count=1, cache_dir=tmp_path)
    assert not reads
    np.testing.assert_array_equal(first.tokens, second.tokens)
    np.testing.assert_array_equal(first.labels, second.labels)
    assert first.vocab == second.vocab and second.class_names == ("neg", "pos")
    # Other settings are a cache miss, which here reaches tfds.
    with pytest.raises(RuntimeError):
        data.load(
            "imdb_reviews", "train", min_count=1, max_length=7, cache_dir=tmp_path, download=False
        )
    assert reads


def test_load_ag_news_joins_title_and_description(monkeypatch):
    items = [
        {"title": b"Stocks rally", "description": b"Markets up.", "label": 2},
        {"title": "Cup final", "description": "Team wins", "label": np.array(1)},
    ]
    calls = fake_source(monkeypatch, items)
    ds = data.load("ag_news_subset", "train", min_count=1)
    words = [[ds.vocab[i] for i in row[m]] for row, m in zip(ds.tokens, ds.mask, strict=True)]
    assert words == [["stocks", "rally", "markets", "up"], ["cup", "final", "team", "wins"]]
    np.testing.assert_array_equal(ds.labels, [2, 1])
    assert ds.num_classes == 4 and not ds.ordered
    assert calls == [("ag_news_subset", "train")]


def test_load_amazon_star_ratings_are_ordered_classes(monkeypatch):
    items = [
        {"data": {"review_headline": b"Bad", "review_body": b"", "star_rating": np.int32(s)}}
        for s in (1, 3, 5)
    ]
    fake_source(monkeypatch, items)
    ds = data.load("amazon_us_reviews/Books_v1_02", "train", min_count=1)
    np.testing.assert_array_equal(ds.labels, [0, 2, 4])
    assert ds.ordered and ds.num_classes == 5


def test_load_rejects_out_of_range_labels(monkeypatch):
    fake_source(monkeypatch, [{"text": "x", "label": -1}])
    with pytest.raises(ValueError, match="label=-1"):
        data.load("imdb_reviews", "unsupervised", min_count=1)


def test_unknown_and_unavailable_names():
    with pytest.raises(ValueError, match="imdb_reviews"):
        data.load("mnist", "train")
    for name in ("yelp_polarity_reviews", "goemotions", "dbpedia", "yelp_review_full"):
        with pytest.raises(ValueError, match="load_local"):
            data.load(name, "train")


@pytest.mark.parametrize(
    ("kwargs", "arg"),
    [
        ({"max_length": 0}, "max_length"),
        ({"vocab_size": 1}, "vocab_size"),
        ({"min_count": 0}, "min_count"),
    ],
)
def test_load_bad_settings(kwargs, arg):
    with pytest.raises(ValueError, match=arg):
        data.load("imdb_reviews", "train", **kwargs)


def test_offline_fails_fast_with_the_way_out(tmp_path, monkeypatch):
    import time

    from rnndyn.data import tfds_load

    # No network (forced, so the test does not depend on the machine's): seconds, not minutes.
    monkeypatch.setattr(tfds_load, "network_available", lambda timeout=3.0: False)
    t0 = time.perf_counter()
    with pytest.raises(RuntimeError, match="network is unreachable.*--data-dir DIR.*load_local"):
        data.load("imdb_reviews", "train", data_dir=tmp_path)
    with pytest.raises(RuntimeError, match="not prepared.*--no-download.*data_dir=DIR"):
        data.load("imdb_reviews", "train", data_dir=tmp_path / "x", download=False)
    assert time.perf_counter() - t0 < 20
    assert not list(tmp_path.rglob("*.tar.gz"))  # nothing was downloaded


def test_network_probe_is_bounded(monkeypatch):
    import socket
    import time

    from rnndyn.data import tfds_load

    for var in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"):
        monkeypatch.delenv(var, raising=False)
    seen = []

    def refuse(address, timeout):
        seen.append((address, timeout))
        raise OSError("unreachable")

    monkeypatch.setattr(socket, "create_connection", refuse)
    t0 = time.perf_counter()
    assert tfds_load.network_available(timeout=0.5) is False
    assert time.perf_counter() - t0 < 1
    assert [a[0][0] for a in seen] == list(tfds_load.PROBE_HOSTS)
    assert all(t == 0.5 for _, t in seen)
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy:3128")
    assert tfds_load.network_available() is True  # a proxy may allow what sockets cannot


def test_failed_download_is_explained(tmp_path, monkeypatch):
    from rnndyn.data import tfds_load

    monkeypatch.setattr(tfds_load, "network_available", lambda timeout=3.0: True)

    def source(name, *, split, data_dir=None, download=True):
        raise ConnectionError("host down") if download else AssertionError("not prepared")

    monkeypatch.setattr(tfds, "data_source", source)
    with pytest.raises(RuntimeError, match="could not download.*host down.*data_dir"):
        data.load("imdb_reviews", "train", data_dir=tmp_path)


# ---------------------------------------------------------------- local files


def test_load_local_csv_and_reuse_vocab(tmp_path):
    train = tmp_path / "train.csv"
    train.write_text('text,label\n"Good, good film",1\nawful film,0\n"",0\n', encoding="utf-8")
    test = tmp_path / "test.csv"
    test.write_text("text,label\ngood unseen,1\n", encoding="utf-8")
    ds = data.load_local(train, min_count=1)
    assert ds.vocab == ("<pad>", "<unk>", "film", "good", "awful")
    np.testing.assert_array_equal(ds.tokens, [[3, 3, 2], [4, 2, 0], [1, 0, 0]])
    np.testing.assert_array_equal(ds.lengths, [3, 2, 1])  # empty text -> one <unk>
    np.testing.assert_array_equal(ds.labels, [1, 0, 0])
    assert ds.num_classes == 2
    ts = data.load_local(test, vocab=ds.vocab)
    np.testing.assert_array_equal(ts.tokens, [[3, 1]])


def test_load_local_jsonl_named_labels(tmp_path):
    path = tmp_path / "d.jsonl"
    rows = [{"review": "five stars", "stars": "5"}, {"review": "meh", "stars": "3"}]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    ds = data.load_local(
        path, "review", "stars", class_names=("1", "2", "3", "4", "5"), ordered=True, min_count=1
    )
    np.testing.assert_array_equal(ds.labels, [4, 2])
    assert ds.ordered and ds.num_classes == 5
    off = data.load_local(path, "review", "stars", label_offset=1, num_classes=5, min_count=1)
    np.testing.assert_array_equal(off.labels, [4, 2])


def test_load_local_errors(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("body,label\nx,1\n", encoding="utf-8")
    with pytest.raises(ValueError, match="d.csv:2: no field 'text'"):
        data.load_local(path)
    with pytest.raises(ValueError, match="does not exist"):
        data.load_local(tmp_path / "missing.csv")
    with pytest.raises(ValueError, match=r"\.csv, \.tsv, \.jsonl"):
        (tmp_path / "d.txt").write_text("x")
        data.load_local(tmp_path / "d.txt")
    path.write_text("text,label\nx,maybe\n", encoding="utf-8")
    with pytest.raises(ValueError, match="d.csv:2: label 'maybe'"):
        data.load_local(path)


def test_load_local_multilabel(tmp_path):
    path = tmp_path / "emo.jsonl"
    rows = [
        {"text": "so happy and grateful", "labels": [0, 2]},
        {"text": "fine", "labels": []},
        {"text": "angry", "labels": "1"},
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    ds = data.load_local(path, label_field="labels", multilabel=True, num_classes=3, min_count=1)
    assert ds.multilabel and ds.num_classes == 3
    np.testing.assert_array_equal(ds.labels, [[1, 0, 1], [0, 0, 0], [0, 1, 0]])
    with pytest.raises(ValueError, match=r"emo.jsonl:1: label \[0, 2\] gives class 2, outside"):
        data.load_local(path, label_field="labels", multilabel=True, num_classes=2)


def _write(path, text, encoding="utf-8"):
    path.write_bytes(text.encode(encoding))
    return path


def _words(ds, i):
    return [ds.vocab[t] for t in ds.tokens[i, : ds.lengths[i]]]


def test_load_local_bom_csv_tsv_and_class_folders_agree(tmp_path):
    rows = [("good film", 1), ("bad film", 0), ("good good plot", 1), ("bad plot", 0)]
    csv_text = "text,label\n" + "".join(f"{t},{y}\n" for t, y in rows)
    bom = _write(tmp_path / "excel.csv", "\ufeff" + csv_text)  # Excel's UTF-8 BOM
    tsv = _write(tmp_path / "d.tsv", csv_text.replace(",", "\t"))
    folders = tmp_path / "aclimdb"
    for i, (t, y) in enumerate(rows):
        (folders / ("neg", "pos")[y]).mkdir(parents=True, exist_ok=True)
        _write(folders / ("neg", "pos")[y] / f"{i}_7.txt", t)
    (folders / "unsup").mkdir()
    _write(folders / "unsup" / "9_0.txt", "unlabelled text")  # skipped like aclImdb's
    a = data.load_local(bom, min_count=1)
    b = data.load_local(tsv, min_count=1)
    c = data.load_local(folders, min_count=1)
    assert a.vocab == b.vocab == c.vocab == ("<pad>", "<unk>", "good", "bad", "film", "plot")
    np.testing.assert_array_equal(a.labels, [1, 0, 1, 0])
    np.testing.assert_array_equal(a.tokens, b.tokens)
    assert c.class_names == ("neg", "pos") and len(c) == 4
    got = sorted((" ".join(_words(c, i)), int(c.labels[i])) for i in range(4))
    assert got == sorted(rows)


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        (
            "a.jsonl",
            '{"text": "x", "label": 0}\n{"text": "y", "label": 0.7}\n',
            r"a.jsonl:2: label 0.7",
        ),
        ("b.jsonl", '{"text": "x", "label": 1.9}\n', r"b.jsonl:1: label 1.9"),
        ("c.jsonl", '{"text": "x", "label": true}\n', r"c.jsonl:1: label True"),
        ("d.jsonl", '{"text": "x", "label": 1}\n{"text": "y"}\n', r"d.jsonl:2: no field 'label'"),
        (
            "e.jsonl",
            '{"text": "x", "label": 1}\n{"text": "y", "label": \n',
            r"e.jsonl:2: malformed JSON",
        ),
        ("f.jsonl", "[1, 2]\n", r"f.jsonl:1: expected a JSON object"),
        ("g.csv", "text,label\nx,1\ny,1.0\n", r"g.csv:3: label '1.0'"),
        (
            "h.csv",
            "text,label\nx,1\ny,-1\n",
            r"h.csv:3: label '-1' gives class -1, outside \[0, 2\)",
        ),
        ("i.csv", "text,label\nx,1\ny,\n", r"i.csv:3: field 'label' is empty"),
        ("j.csv", "text,label\nx,1\ny,0,extra\n", r"j.csv:3: 3 fields, but the header has 2"),
    ],
)
def test_load_local_rejects_bad_rows_by_file_and_line(tmp_path, name, content, message):
    with pytest.raises(ValueError, match=message):
        data.load_local(_write(tmp_path / name, content), num_classes=2, min_count=1)


def test_load_local_encoding(tmp_path):
    path = _write(tmp_path / "l1.csv", "text,label\nok,0\ncaf\u00e9 cr\u00e8me,1\n", "latin-1")
    with pytest.raises(
        ValueError, match=r"l1.csv:3: cannot decode byte b'\\xe9' as utf-8.*--encoding"
    ):
        data.load_local(path)
    ds = data.load_local(path, encoding="latin-1", min_count=1)
    assert _words(ds, 1) == ["caf\u00e9", "cr\u00e8me"]
    with pytest.raises(ValueError, match="encoding 'klingon'"):
        data.load_local(path, encoding="klingon")


def test_load_local_where_split_and_test_file(tmp_path):
    lines = [
        json.dumps(
            {"text": f"w{i % 5} x{i}", "label": i % 2, "source": "imdb" if i % 3 else "yelp"}
        )
        for i in range(30)
    ]
    path = _write(tmp_path / "mixed.jsonl", "\n".join(lines) + "\n")
    only = data.load_local(path, where={"source": "imdb"}, min_count=1)
    assert len(only) == 20 and all(_words(only, i)[1] != "x0" for i in range(20))
    kept = {int(_words(only, i)[1][1:]) for i in range(len(only))}
    assert kept == {i for i in range(30) if i % 3}
    train, test = data.load_local(
        path, where={"source": "imdb"}, test_fraction=0.25, seed=3, min_count=1
    )
    assert (len(train), len(test)) == (15, 5) and test.vocab == train.vocab
    tr = {_words(train, i)[1] for i in range(15)}
    te = {" ".join(_words(test, i)) for i in range(5)}
    assert tr.isdisjoint({w.split()[1] for w in te if " " in w})  # no row in both
    again = data.load_local(path, where={"source": "imdb"}, test_fraction=0.25, seed=3, min_count=1)
    np.testing.assert_array_equal(again[1].tokens, test.tokens)  # seeded
    other = data.load_local(path, where={"source": "imdb"}, test_fraction=0.25, seed=4, min_count=1)
    assert not np.array_equal(other[1].tokens, test.tokens)
    # A separate test file is encoded with the training vocabulary (its own words -> <unk>).
    tfile = _write(tmp_path / "t.jsonl", json.dumps({"text": "w1 unseen", "label": 1}) + "\n")
    train2, test2 = data.load_local(path, test=tfile, min_count=1)
    assert _words(test2, 0) == ["w1", "<unk>"] and "unseen" not in train2.vocab
    with pytest.raises(ValueError, match="no row matches"):
        data.load_local(path, where={"source": "reddit"})
    with pytest.raises(ValueError, match="no field 'lang'"):
        data.load_local(path, where={"lang": "en"})
    with pytest.raises(ValueError, match="either test"):
        data.load_local(path, test=tfile, test_fraction=0.5)
    with pytest.raises(ValueError, match="test_fraction must be"):
        data.load_local(path, test_fraction=1.0)


def test_load_local_cache(tmp_path, monkeypatch):
    from rnndyn.data import local

    path = _write(tmp_path / "d.csv", "text,label\ngood film,1\nbad film,0\nok,1\nmeh,0\n")
    cache = tmp_path / "cache"
    first = data.load_local(path, test_fraction=0.5, num_classes=2, min_count=1, cache_dir=cache)
    assert len(list(cache.glob("*.npz"))) == 1

    def boom(*args, **kwargs):
        raise AssertionError("the file must not be parsed on a cache hit")

    monkeypatch.setattr(local, "_read", boom)
    second = data.load_local(path, test_fraction=0.5, num_classes=2, min_count=1, cache_dir=cache)
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a.tokens, b.tokens)
        np.testing.assert_array_equal(a.labels, b.labels)
        assert a.vocab == b.vocab and a.class_names == b.class_names
    # numpy integers are the same settings (a hit, and JSON-serialisable); bools are refused
    kw = dict(test_fraction=0.5, num_classes=2, cache_dir=cache)
    third = data.load_local(path, **kw, min_count=np.int64(1), seed=np.int32(0))
    np.testing.assert_array_equal(third[0].tokens, first[0].tokens)
    with pytest.raises(ValueError, match="min_count must be an integer >= 1, got True"):
        data.load_local(path, **kw, min_count=True)
    _write(path, "text,label\ngood film,1\nbad film,0\nok,1\nmeh,1\n")  # changed file: a miss
    with pytest.raises(AssertionError, match="cache hit"):
        data.load_local(path, test_fraction=0.5, num_classes=2, min_count=1, cache_dir=cache)


def test_load_local_multilabel_csv_lists(tmp_path):
    path = _write(tmp_path / "m.csv", 'text,labels\nhappy sad,"[0, 1]"\nangry,2\nnone,""\n')
    ds = data.load_local(path, label_field="labels", multilabel=True, min_count=1)
    np.testing.assert_array_equal(ds.labels, [[1, 1, 0], [0, 0, 1], [0, 0, 0]])
    bad = _write(tmp_path / "n.csv", 'text,labels\nx,"[0, 0.5]"\n')
    with pytest.raises(ValueError, match=r"n.csv:2: label 0.5"):
        data.load_local(bad, label_field="labels", multilabel=True, num_classes=2)


@pytest.mark.parametrize("key", [0, None, "k"])
def test_synthetic_data_and_batches_reject_non_keys(key):
    import jax

    with pytest.raises(ValueError, match="key must be a JAX PRNG key"):
        data.synthetic.sentiment(key, 10)
    ds = data.synthetic.sentiment(jax.random.key(0), 10)
    if key is not None:  # None is the documented default of batches()
        with pytest.raises(ValueError, match="key must be a JAX PRNG key"):
            list(ds.batches(4, key=key))


def test_load_local_reports_progress_in_order(tmp_path, capsys, monkeypatch):
    from rnndyn.data import local

    path = tmp_path / "films.csv"
    rows = [f"good film {i},1" if i % 2 else f"bad film {i},0" for i in range(600)]
    path.write_text("text,label\n" + "\n".join(rows) + "\n", encoding="utf-8")
    data.load_local(path, test_fraction=0.25)
    assert capsys.readouterr().err == ""  # silent unless verbose
    monkeypatch.setattr(local, "PROGRESS_SECONDS", 0.0)  # a line at every check (256 rows)
    data.load_local(path, test_fraction=0.25, verbose=True, cache_dir=tmp_path / "cache")
    err = capsys.readouterr().err.splitlines()
    assert err[0] == f"[data] reading {path}"
    assert err[1] == f"[data] reading {path}: 256 rows"  # periodic, while parsing
    assert err.index(f"[data] reading {path}: 512 rows") < next(
        i for i, line in enumerate(err) if line.startswith(f"[data] read {path}: 600 rows in ")
    )
    order = ["[data] tokenising 450 documents", "[data] tokenising 450 documents: 256/450",
             "[data] tokenised 450 documents in", "[data] vocabulary: ",
             "[data] encoding 450 documents", "[data] tokenising 150 documents"]  # fmt: skip
    where = [next(i for i, line in enumerate(err) if line.startswith(o)) for o in order]
    assert where == sorted(where)
    data.load_local(path, test_fraction=0.25, verbose=True, cache_dir=tmp_path / "cache")
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith(f"[data] {path}: 600 rows from the cache ")
