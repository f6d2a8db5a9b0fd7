"""rnndyn.analysis.fidelity and linear_rnn on networks whose answers are known: an affine
cell is its own linearisation (errors 0, agreement 1), a cell quadratic in its input has
one-step errors computable by hand, and a linear RNN's spectrum is that of its ``A``."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rnndyn
from rnndyn import cells, data
from rnndyn.analysis.fidelity import EPSILONS, ITERATED_STEPS, fidelity
from rnndyn.analysis.linear_rnn import score_linear_rnn
from rnndyn.models import Classifier


def _data(n=20):
    return data.synthetic.sentiment(jax.random.key(0), n, length=(10, 30))


def _params(ds, emb, cell_params=None):
    s = 3
    w = np.zeros((s, 2), np.float32)
    w[0] = [-1.0, 1.0]
    return {"embedding": jnp.asarray(emb, jnp.float32), "cell": cell_params or {},
            "readout": {"W": jnp.asarray(w), "b": jnp.zeros(2)}}  # fmt: skip


def test_an_affine_cell_is_its_own_linearisation():
    """``h' = A h + B x + c`` linearised at its fixed points: every step and every
    iterated run is exact, and the linearised classifier agrees at every ε."""
    ds = _data()
    rng = np.random.default_rng(0)
    a = np.array([[0.9, 0.0, 0.0], [0.0, 0.6, -0.3], [0.0, 0.3, 0.6]], np.float32)
    b = rng.normal(size=(3, 2)).astype(np.float32)
    c = np.array([0.2, -0.1, 0.05], np.float32)
    cell = cells.from_function(lambda p, h, x: a @ h + b @ x + c, state_size=3)
    model = Classifier(cell, ds.vocab_size, embed_size=2, num_classes=2)
    params = _params(ds, rng.normal(size=(ds.vocab_size, 2)))
    # the fixed points at x = 0 and at x = (1, 1): h* = (I − A)⁻¹ (B x + c)
    xs = np.array([[0.0, 0.0], [1.0, 1.0]])
    points = np.linalg.solve(np.eye(3) - a, (xs @ b.T + c).T).T
    lin = rnndyn.linearization(cell, {}, jnp.asarray(points, jnp.float32),
                               jnp.asarray(xs, jnp.float32))  # fmt: skip
    f = fidelity(model, params, ds, np.arange(len(ds.lengths)), lin, np.zeros(2, np.float32),
                 rng=np.random.default_rng(1))  # fmt: skip
    assert f.one_step.size == int(np.sum(ds.lengths))  # every transition of 20 documents
    assert f.one_step.max() < 1e-5 and f.one_step_median < 1e-6
    assert np.all(f.iterated[np.isfinite(f.iterated)] < 1e-5)
    np.testing.assert_array_equal(f.steps, ITERATED_STEPS)
    np.testing.assert_allclose(f.agreement, 1.0)
    np.testing.assert_allclose(f.logit_correlation, 1.0, atol=1e-5)


def test_one_step_errors_of_a_cell_quadratic_in_its_input():
    """``h' = a h + x + q x²`` (1-D input, state on the first axis) linearised at its
    fixed point 0 predicts ``a h + x``: the relative error of a step is
    ``|q x²| / |h'|``, and the nonlinearity curve follows the documents' logits."""
    ds = _data()
    a, q = 0.8, 0.5
    cell = cells.from_function(
        lambda p, h, x: jnp.stack([a * h[0] + x[0] + q * x[0] ** 2, 0.5 * h[1], 0.5 * h[2]]),
        state_size=3,
    )  # fmt: skip
    model = Classifier(cell, ds.vocab_size, embed_size=1, num_classes=2)
    emb = np.random.default_rng(2).normal(size=(ds.vocab_size, 1))
    params = _params(ds, emb)
    lin = rnndyn.linearization(cell, {}, jnp.zeros((1, 3)), jnp.zeros((1, 1)))
    f = fidelity(model, params, ds, np.arange(len(ds.lengths)), lin, np.zeros(1, np.float32),
                 rng=np.random.default_rng(1))  # fmt: skip
    # every step by hand, in float64
    want, logits_full, logits_lin = [], {e: [] for e in EPSILONS}, {e: [] for e in EPSILONS}
    for tokens, n in zip(ds.tokens, ds.lengths, strict=True):
        x = emb[tokens[:n], 0]
        h = 0.0
        for xt in x:
            new = a * h + xt + q * xt**2
            want.append(abs(q * xt**2) / abs(new))
            h = new
        powers = a ** np.arange(n)[::-1]
        for e in EPSILONS:
            logits_full[e].append(np.sum(powers * (e * x + q * (e * x) ** 2)))
            logits_lin[e].append(np.sum(powers * e * x))
    np.testing.assert_allclose(np.sort(f.one_step), np.sort(want), rtol=1e-3, atol=1e-6)
    assert f.one_step_median == pytest.approx(np.median(want), rel=1e-3)
    agree = [np.mean((np.array(logits_full[e]) > 0) == (np.array(logits_lin[e]) > 0))
             for e in EPSILONS]  # fmt: skip
    np.testing.assert_allclose(f.agreement, agree)
    assert f.agreement[-1] < f.agreement[0]  # the linearisation holds best at small ε
    # Pearson r of the class-centred logits (±l/2 per class, mean 0): the cosine of the
    # logit differences
    cos = lambda u, v: u @ v / np.sqrt((u @ u) * (v @ v))  # noqa: E731
    corr = [cos(np.array(logits_full[e]), np.array(logits_lin[e])) for e in EPSILONS]
    np.testing.assert_allclose(f.logit_correlation, corr, atol=1e-4)


def test_a_linear_rnn_record_has_the_spectrum_of_a():
    """``A`` with eigenvalues 1 (an integrator of the valence), ``0.9 e^{±iπ/6}`` and
    0.5: the record lists them by modulus, and its accuracy is that of the integrator."""
    ds = _data(60)
    theta = np.pi / 6
    rot = 0.9 * np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    a = np.zeros((4, 4))
    a[0, 0], a[1:3, 1:3], a[3, 3] = 1.0, rot, 0.5
    q, _ = np.linalg.qr(np.random.default_rng(3).normal(size=(4, 4)))
    q[:, 0] = np.eye(4)[0]  # keep the integrator on the first axis
    q, _ = np.linalg.qr(q)
    a = q @ a @ q.T  # the same spectrum in a rotated basis
    sign = {"positive": 1.0, "negative": -1.0}
    size = {"very": 2.0, "some": 1.0, "not": -1.0}
    valence = np.array([size.get(w.split("_")[0], 0.0) * sign.get(w.split("_")[-1], 0.0)
                        for w in ds.vocab])  # fmt: skip
    model = Classifier(cells.Linear(4), ds.vocab_size, embed_size=1, num_classes=2)
    w_x = np.zeros((1, 4))
    w_x[0] = q[:, 0]  # the word's valence enters along the integrator
    params = {
        "embedding": jnp.asarray(valence[:, None], jnp.float32),
        "cell": {"W_h": jnp.asarray(a.T, jnp.float32), "W_x": jnp.asarray(w_x, jnp.float32),
                 "b": jnp.zeros(4)},
        "readout": {"W": jnp.asarray(np.outer(q[:, 0], [-1.0, 1.0]), jnp.float32),
                    "b": jnp.zeros(2)},
    }  # fmt: skip
    rec = score_linear_rnn(model, params, ds, np.arange(60), steps=7, batch_size=16)
    want = np.array([1.0, 0.9 * np.exp(1j * theta), 0.9 * np.exp(-1j * theta), 0.5])
    np.testing.assert_allclose(np.abs(rec.eigenvalues), np.abs(want), atol=1e-6)
    np.testing.assert_allclose(np.sort_complex(rec.eigenvalues), np.sort_complex(want),
                               atol=1e-6)  # fmt: skip
    assert rec.spectral_radius == pytest.approx(1.0, abs=1e-6) and rec.steps == 7
    # the final state's first coordinate is the summed valence: the label's sign
    real = np.arange(ds.tokens.shape[1])[None] < ds.lengths[:, None]
    score = np.sum(valence[ds.tokens] * real, 1)
    assert rec.accuracy == pytest.approx(np.mean((score > 0) == (ds.labels == 1)))
    assert rec.accuracy > 0.9
