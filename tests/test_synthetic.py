"""Synthetic generators match their knobs (the Dataset contract: tests/test_dataset.py)."""

from __future__ import annotations

import jax
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rnndyn.data import Dataset, synthetic

KEY = jax.random.key(0)


def counts(ds: Dataset) -> np.ndarray:
    """(B, V) word counts over real tokens."""
    out = np.zeros((len(ds), ds.vocab_size))
    np.add.at(out, (np.arange(len(ds))[:, None], ds.tokens), ds.mask)
    return out


def named_evidence(ds: Dataset) -> np.ndarray:
    """(V, C) evidence read off the word names alone (the studies' reference task, not the
    generator's own ``ds.evidence``): ``"{very,some,not}[k]_{class}"`` gives the class
    +2, +1 or -1; other words nothing."""
    valence = {"very": 2.0, "some": 1.0, "not": -1.0}
    out = np.zeros((len(ds.vocab), len(ds.class_names)))
    for w, word in enumerate(ds.vocab):
        mod, _, name = word.partition("_")
        if name in ds.class_names:
            out[w, ds.class_names.index(name)] = valence[mod.rstrip("0123456789")]
    return out


# ---------------------------------------------------------------- generators


@settings(max_examples=15, deadline=None)
@given(
    c=st.integers(2, 6),
    lo=st.integers(1, 30),
    extra=st.integers(0, 20),
    n=st.integers(1, 60),
    seed=st.integers(0, 2**31 - 1),
)
def test_categorical_shapes_lengths_padding(c, lo, extra, n, seed):
    ds = synthetic.categorical(jax.random.key(seed), c, n, length=(lo, lo + extra))
    assert ds.tokens.dtype == np.int32 and ds.lengths.dtype == np.int32
    assert ds.tokens.shape == (n, ds.lengths.max())
    assert np.all((ds.lengths >= lo) & (ds.lengths <= lo + extra))
    assert np.all(ds.tokens[~ds.mask] == 0)
    assert np.all(ds.tokens[ds.mask] >= 2)  # never <pad> or <unk> inside a document
    assert ds.labels.shape == (n,) and np.all((ds.labels >= 0) & (ds.labels < c))
    # The label is the argmax of summed evidence, uniquely.
    scores = counts(ds) @ named_evidence(ds)
    top = np.sort(scores, axis=1)
    assert np.all(np.argmax(scores, axis=1) == ds.labels)
    assert np.all(top[:, -1] > top[:, -2])


def test_fixed_length_int():
    ds = synthetic.categorical(KEY, 3, 50, length=7)
    assert ds.tokens.shape == (50, 7) and np.all(ds.lengths == 7) and ds.mask.all()


@pytest.mark.parametrize("c", [2, 3, 5])
def test_class_balance(c):
    ds = synthetic.categorical(KEY, c, 300 * c)
    np.testing.assert_array_equal(np.bincount(ds.labels, minlength=c), 300)


def test_evidence_words_more_frequent_in_their_class():
    ds = synthetic.categorical(KEY, 4, 2000)
    freq = counts(ds) / ds.lengths[:, None]
    for c in range(4):
        own = ds.vocab.index(f"very_c{c}")
        in_class = freq[ds.labels == c, own].mean()
        elsewhere = freq[ds.labels != c, own].mean()
        assert in_class > 3 * elsewhere


def test_evidence_strength_controls_evidence_frequency():
    weak = synthetic.sentiment(KEY, 2000, evidence_strength=0.3)
    strong = synthetic.sentiment(KEY, 2000, evidence_strength=2.0)

    def own_share(ds):
        pos = ds.vocab.index("very_positive")
        f = counts(ds)[:, pos] / ds.lengths
        return f[ds.labels == 1].mean() - f[ds.labels == 0].mean()

    assert own_share(strong) > own_share(weak) + 0.1


def test_vocab_and_evidence_independent_of_key():
    a = synthetic.ordered(jax.random.key(1), 4, 100, ordering=0.7)
    b = synthetic.ordered(jax.random.key(2), 4, 100, ordering=0.7)
    assert a.vocab == b.vocab
    np.testing.assert_array_equal(a.evidence, b.evidence)
    assert not np.array_equal(a.tokens, b.tokens)


def test_same_key_same_data():
    a = synthetic.multilabel(KEY, 3, 200)
    b = synthetic.multilabel(KEY, 3, 200)
    np.testing.assert_array_equal(a.tokens, b.tokens)
    np.testing.assert_array_equal(a.labels, b.labels)


def test_vocabulary_layout():
    ds = synthetic.sentiment(KEY, 10, words_per_class=4, num_neutral=5)
    np.testing.assert_array_equal(ds.evidence, named_evidence(ds))
    assert ds.vocab[:2] == ("<pad>", "<unk>")
    assert ds.vocab_size == 2 + 2 * 4 + 5 and ds.evidence.shape == (ds.vocab_size, 2)
    assert "very2_positive" in ds.vocab and "not_negative" in ds.vocab
    np.testing.assert_array_equal(ds.evidence[:2], 0)
    np.testing.assert_array_equal(ds.evidence[ds.vocab.index("neutral3")], 0)
    assert ds.evidence[ds.vocab.index("very_positive")].tolist() == [0.0, 2.0]
    assert ds.evidence[ds.vocab.index("not_negative")].tolist() == [-1.0, 0.0]
    assert ds.class_names == ("negative", "positive")


def test_ordering_knob_spreads_evidence_to_neighbours():
    flat = synthetic.ordered(KEY, 5, 2000, ordering=0.0)
    spread = synthetic.ordered(KEY, 5, 2000, ordering=1.0)
    w = flat.vocab.index("very_3")  # class index 2
    assert flat.evidence[w].tolist() == [0, 0, 2, 0, 0]
    assert spread.evidence[w].tolist() == [0.5, 1, 2, 1, 0.5]
    assert spread.ordered and flat.ordered

    def neighbour_vs_far(ds):
        f = counts(ds)[:, w] / ds.lengths
        return f[np.isin(ds.labels, [1, 3])].mean() / f[np.isin(ds.labels, [0, 4])].mean()

    # Class 2's word appears more in neighbouring-class documents than in far ones only
    # when ordering correlations are on.
    assert neighbour_vs_far(spread) > 1.3
    assert neighbour_vs_far(flat) == pytest.approx(1.0, abs=0.15)


def test_ordering_reduces_class_mean_dimension():
    def participation_ratio(ds):
        f = counts(ds) / ds.lengths[:, None]
        means = np.stack([f[ds.labels == c].mean(0) for c in range(ds.num_classes)])
        ev = np.linalg.svd(means - means.mean(0), compute_uv=False) ** 2
        return ev.sum() ** 2 / (ev**2).sum()

    flat = participation_ratio(synthetic.ordered(KEY, 5, 3000, ordering=0.0))
    spread = participation_ratio(synthetic.ordered(KEY, 5, 3000, ordering=1.0))
    assert flat > 3.5  # C - 1 = 4 dimensions
    assert spread < flat - 0.5


def test_multilabel_balanced_and_independent():
    ds = synthetic.multilabel(KEY, 3, 4000)
    assert ds.multilabel and ds.labels.shape == (4000, 3)
    combos = ds.labels @ (2 ** np.arange(3))
    np.testing.assert_array_equal(np.bincount(combos, minlength=8), 500)
    corr = np.corrcoef(ds.labels.T)
    assert np.abs(corr[np.triu_indices(3, 1)]).max() < 0.05
    scores = counts(ds) @ named_evidence(ds)
    np.testing.assert_array_equal(scores > 0, ds.labels == 1)
    assert np.all(scores != 0)


def test_sentiment_is_binary_categorical():
    ds = synthetic.sentiment(KEY, 100)
    assert ds.num_classes == 2 and not ds.multilabel and not ds.ordered
    assert ds.name == "sentiment"


def test_bag_of_words_linear_readout_separates_sentiment():
    # The summed evidence is a linear bag-of-words readout; it must classify every example.
    ds = synthetic.sentiment(KEY, 1000)
    pred = np.argmax(counts(ds) @ named_evidence(ds), axis=1)
    assert np.mean(pred == ds.labels) == 1.0


@pytest.mark.parametrize(
    ("kwargs", "arg"),
    [
        ({"num_classes": 1}, "num_classes"),
        ({"num_examples": 0}, "num_examples"),
        ({"evidence_strength": 0.0}, "evidence_strength"),
        ({"evidence_strength": float("nan")}, "evidence_strength"),
        ({"length": (10, 5)}, "length"),
        ({"length": 0}, "length"),
        ({"length": "long"}, "length"),
        ({"words_per_class": 0}, "words_per_class"),
        ({"num_neutral": -1}, "num_neutral"),
        ({"class_names": ("a", "a", "b")}, "class_names"),
        ({"modifiers": (("bad", -1.0),)}, "modifiers"),
    ],
)
def test_bad_knobs_raise(kwargs, arg):
    args = {"num_classes": 3, "num_examples": 10} | kwargs
    with pytest.raises(ValueError, match=arg):
        synthetic.categorical(KEY, **args)


@pytest.mark.parametrize("ordering", [-0.1, 1.5, "high"])
def test_bad_ordering_raises(ordering):
    with pytest.raises(ValueError, match="ordering"):
        synthetic.ordered(KEY, 3, 10, ordering=ordering)


def test_multilabel_needs_negative_modifier():
    with pytest.raises(ValueError, match="negative"):
        synthetic.multilabel(KEY, 2, 10, modifiers=(("very", 2.0),))


# ---------------------------------------------------------------- ratings (ordered)


def _mean_valence(ds):
    valence = {"awful": -2.0, "bad": -1.0, "good": 1.0, "awesome": 2.0}
    v = np.array([valence.get(w, 0.0) for w in ds.vocab])
    return (v[ds.tokens] * ds.mask).sum(1) / ds.lengths


@pytest.mark.parametrize("c, neutral", [(3, 10), (5, 10), (5, 60)])
def test_ratings_label_is_the_binned_mean_valence(c, neutral):
    ds = synthetic.ratings(KEY, c, 1500, num_neutral=neutral)
    assert ds.ordered and not ds.multilabel and ds.num_classes == c
    assert ds.vocab[:6] == ("<pad>", "<unk>", "awful", "bad", "good", "awesome")
    np.testing.assert_array_equal(np.bincount(ds.labels, minlength=c), 1500 // c)
    # Labels are bins of the mean valence: the classes occupy disjoint, increasing
    # intervals of it.
    mean = _mean_valence(ds)
    for k in range(c - 1):
        assert mean[ds.labels == k].max() < mean[ds.labels == k + 1].min()
    # The evidence matrix reproduces the labels as an argmax (like every generator).
    counts = np.zeros((len(ds), len(ds.vocab)))
    np.add.at(counts, (np.repeat(np.arange(len(ds)), ds.tokens.shape[1]), ds.tokens.ravel()), 1)
    counts[:, 0] = 0
    np.testing.assert_array_equal(np.argmax(counts @ ds.evidence, axis=1), ds.labels)


def test_ratings_shares_evidence_between_neighbours():
    from rnndyn import words

    ds = synthetic.ratings(KEY, 5, 3000)
    pred = words.predict_dimension(ds.tokens, ds.labels, len(ds.vocab), lengths=ds.lengths)
    assert pred.dimension < 4 and pred.participation_ratio < 2.0
    categorical = synthetic.categorical(KEY, 5, 3000)
    flat = words.predict_dimension(
        categorical.tokens, categorical.labels, len(categorical.vocab), lengths=categorical.lengths
    )
    assert flat.dimension == 4


def test_ratings_bad_valences():
    with pytest.raises(ValueError, match="valences must hold"):
        synthetic.ratings(KEY, 5, 10, valences=[("good", 1.0), ("great", 2.0)])
    with pytest.raises(ValueError, match="distinct words"):
        synthetic.ratings(KEY, 5, 10, valences=[("bad", -1.0), ("bad", 1.0)])
    with pytest.raises(ValueError, match="num_classes"):
        synthetic.ratings(KEY, 1, 10)
