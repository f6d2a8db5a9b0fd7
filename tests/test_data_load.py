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

    def boom(*args, **kwargs):
        raise AssertionError("tfds must not be read on a cache hit")

    monkeypatch.setattr(tfds, "data_source", boom)
    second = data.load("imdb_reviews", "train", min_count=1, cache_dir=tmp_path)
    np.testing.assert_array_equal(first.tokens, second.tokens)
    np.testing.assert_array_equal(first.labels, second.labels)
    assert first.vocab == second.vocab and second.class_names == ("neg", "pos")
    # Other settings are a cache miss, which here reaches tfds.
    with pytest.raises(RuntimeError, match="cache hit"):
        data.load("imdb_reviews", "train", min_count=1, max_length=7, cache_dir=tmp_path)


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


def test_failed_download_is_explained(tmp_path):
    with pytest.raises(RuntimeError, match="could not download.*data_dir"):
        data.load("imdb_reviews", "train", data_dir=tmp_path)
    with pytest.raises(RuntimeError, match="not prepared"):
        data.load("imdb_reviews", "train", data_dir=tmp_path / "x", download=False)


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
    with pytest.raises(ValueError, match="no field 'text'"):
        data.load_local(path)
    with pytest.raises(ValueError, match="does not exist"):
        data.load_local(tmp_path / "missing.csv")
    with pytest.raises(ValueError, match=r"\.csv, \.jsonl"):
        (tmp_path / "d.txt").write_text("x")
        data.load_local(tmp_path / "d.txt")
    path.write_text("text,label\nx,maybe\n", encoding="utf-8")
    with pytest.raises(ValueError, match="maybe"):
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
    with pytest.raises(ValueError, match="num_classes=2"):
        data.load_local(path, label_field="labels", multilabel=True, num_classes=2)
