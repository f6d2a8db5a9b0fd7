"""Tests of rnndyn.analysis: unit checks on small known systems, then the acceptance runs
that train networks on synthetic data and check the findings of METHODS.md §3–5."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rnndyn
from rnndyn import cells, data
from rnndyn.analysis import _jsonable, _sign_modes, analyze, readout_in_state_space
from rnndyn.models import Classifier

# ----------------------------------------------------------------------------- units


def test_readout_in_state_space_lstm_and_centering():
    model = Classifier(cells.LSTM(5), vocab_size=7, embed_size=3, num_classes=3)
    params = model.init(jax.random.key(0))
    rows = readout_in_state_space(model, params, jnp.zeros(10))
    w = np.asarray(params["readout"]["W"], np.float64).T  # (C, N)
    assert rows.shape == (3, 10)
    # logits read h only: the c half of the state has no readout
    np.testing.assert_array_equal(rows[:, 5:], 0.0)
    np.testing.assert_allclose(rows[:, :5], w - w.mean(0), rtol=1e-6)
    multi = Classifier(cells.GRU(4), vocab_size=7, embed_size=3, num_classes=2, multilabel=True)
    mp = multi.init(jax.random.key(1))
    np.testing.assert_allclose(
        readout_in_state_space(multi, mp, jnp.zeros(4)), np.asarray(mp["readout"]["W"]).T, rtol=1e-6
    )


def test_sign_modes_points_each_mode_towards_the_logit_it_raises_most():
    readout = np.array([[-1.0, 0.0], [1.0, 0.0]])  # binary: rows are opposites
    right = np.array([[-2.0, 0.0], [0.0, 1.0]])  # mode 0 lowers "positive" as given
    np.testing.assert_array_equal(_sign_modes(readout, right), [-1.0, 1.0])
    readout3 = np.array([[0.2, 0.0], [-3.0, 0.0], [2.8, 0.0]])
    assert _sign_modes(readout3, np.array([[1.0], [0.0]]))[0] == -1.0  # class 1 moves most


def test_jsonable_complex_nonfinite_and_nested():
    out = _jsonable({"z": np.array([1 + 2j]), "x": (np.float32(1.5), float("inf"), np.nan)})
    assert out == {"z": {"real": [1.0], "imag": [2.0]}, "x": [1.5, "inf", "nan"]}
    json.dumps(out, allow_nan=False)


def test_analyze_argument_errors():
    model = Classifier(cells.GRU(4), vocab_size=20, embed_size=3, num_classes=2)
    ds = data.synthetic.sentiment(jax.random.key(0), 10, num_neutral=12)
    params = model.init(jax.random.key(0))
    with pytest.raises(ValueError, match="params is required"):
        analyze(model, ds, key=jax.random.key(0))
    with pytest.raises(ValueError, match="model must be an rnndyn.Classifier"):
        analyze("not a model object".split(), ds, key=jax.random.key(0))
    with pytest.raises(ValueError, match="max_examples must be"):
        analyze(model, ds, params, key=jax.random.key(0), max_examples=0)
    with pytest.raises(ValueError, match="manifold_dim must be"):
        analyze(model, ds, params, key=jax.random.key(0), manifold_dim=0)
    with pytest.raises(ValueError, match="vocab_size 20"):
        big = data.synthetic.sentiment(jax.random.key(0), 10, num_neutral=30)
        analyze(model, big, params, key=jax.random.key(0))


# --------------------------------------------------------------- acceptance (trained)
#
# Networks are trained here, inside the suite, at a small budget: 16 units, 1500 Adam
# steps on 2000 documents of 60-100 tokens drawn from a vocabulary with 100 neutral
# words (evidence is sparse, so the network has to integrate it over the whole
# document). ``embedding_l2`` keeps word inputs in the linear regime (docs/analysis.md).
# Each network takes ~20-30 s to train and ~10 s to analyse on one CPU core.

DATA_KW = dict(length=(60, 100), num_neutral=100)
TASKS = {
    "sentiment": lambda k, n: data.synthetic.sentiment(k, n, **DATA_KW),
    "categorical3": lambda k, n: data.synthetic.categorical(k, 3, n, **DATA_KW),
    "categorical4": lambda k, n: data.synthetic.categorical(k, 4, n, **DATA_KW),
    "ratings5": lambda k, n: data.synthetic.ratings(k, 5, n, **DATA_KW),
    "multilabel3": lambda k, n: data.synthetic.multilabel(k, 3, n, **DATA_KW),
}
CONFIG = rnndyn.TrainConfig(steps=1500, batch_size=64, learning_rate=1e-2, embedding_l2=1e-2)


def _trained_analysis(task, cell):
    train_set = TASKS[task](jax.random.key(1), 2000)
    test_set = TASKS[task](jax.random.key(2), 500)
    model = Classifier(
        rnndyn.models.make_cell(cell, 16),
        train_set.vocab_size,
        16,
        train_set.num_classes,
        train_set.multilabel,
    )
    result = rnndyn.train.train(
        model, train_set, test_set, key=jax.random.key(0), config=CONFIG, verbose=False
    )
    analysis = analyze(
        model,
        test_set,
        result.params,
        key=jax.random.key(3),
        train_data=train_set,
        max_examples=500,
        num_initial=512,
        verbose=False,
    )
    print(analysis.summary())  # shown when a check fails
    return train_set, analysis


def _check_line_attractor(train_set, a):
    lam = np.abs(a.eigenvalues)
    assert a.fixed_point_dimension.spectrum[0] >= 0.9  # zero-input fixed points ~1-D
    assert np.mean(lam[:, 0] > 0.98) >= 0.5  # a marginal mode at most points
    assert a.manifold_dimension == 1
    assert a.readout_alignment[:, 0].max() >= 0.8  # readout along the line
    # Word effects on the integrated evidence: signed by the words' true valence.
    valence = train_set.evidence[:, 1] - train_set.evidence[:, 0]
    proj = a.word_effects.mode_projections[:, 0]
    pos, neg = valence > 0, valence < 0
    neutral = np.array([w.startswith("neutral") for w in train_set.vocab])
    assert np.all(proj[pos] > 0) and np.all(proj[neg] < 0)
    evidence_size = np.median(np.abs(proj[pos | neg]))
    assert np.median(np.abs(proj[neutral])) < 0.2 * evidence_size
    assert a.word_effects.correlation > 0.7  # agrees with a bag-of-words model
    lin = a.linearized
    assert max(lin.initial, lin.nearest) >= lin.full - 0.05


def _check(task, train_set, a):
    c = train_set.num_classes
    if task == "sentiment":
        _check_line_attractor(train_set, a)
    elif task.startswith("categorical"):
        assert a.manifold_dimension == c - 1
        assert a.prediction.dimension == c - 1
    elif task == "ratings5":
        # Neighbouring classes share their evidence: fewer than C - 1 dimensions, as
        # predicted. The attractor (fixed points) agrees with the prediction to within
        # one dimension (the label bins the *mean* valence, so the network may also
        # track the length). The visited states curve away from it at the extreme
        # classes, which costs PCA components but not participation ratio.
        assert a.prediction.dimension < c - 1
        assert a.fixed_point_dimension.pca90 < c - 1
        assert abs(a.fixed_point_dimension.pca90 - a.prediction.dimension) <= 1
        assert a.state_dimension.participation_ratio < c - 1.5
    elif task == "multilabel3":
        assert a.manifold_dimension == 3
        assert a.prediction.dimension == 3


@pytest.mark.slow
@pytest.mark.parametrize("cell", ["gru", "lstm"])
@pytest.mark.parametrize("task", list(TASKS))
def test_trained_network_manifold(task, cell):
    train_set, a = _trained_analysis(task, cell)
    _check(task, train_set, a)


@pytest.mark.slow
@pytest.mark.parametrize("cell", ["ugrnn", "vanilla"])
def test_trained_line_attractor_other_cells(cell):
    train_set, a = _trained_analysis("sentiment", cell)
    _check_line_attractor(train_set, a)
