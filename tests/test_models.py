"""Tests for rnndyn.models.Classifier."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from rnndyn import cells
from rnndyn.models import Classifier, cell_name, make_cell

V, E, C = 12, 5, 3


def _model(cell=None, **kw):
    return Classifier(cell or cells.GRU(7), vocab_size=V, embed_size=E, num_classes=C, **kw)


def _tokens(key, b, t, lengths):
    tokens = jax.random.randint(key, (b, t), 2, V)
    mask = jnp.arange(t)[None, :] < jnp.asarray(lengths)[:, None]
    return jnp.where(mask, tokens, 0), mask


@pytest.mark.parametrize("cell", [cells.Vanilla(6), cells.GRU(6), cells.LSTM(6), cells.UGRNN(6)])
def test_init_shapes(cell):
    model = _model(cell)
    params = model.init(jax.random.key(0))
    assert params["embedding"].shape == (V, E)
    assert params["readout"]["W"].shape == (6, C)  # LSTM reads out h only, not [h, c]
    assert params["readout"]["b"].shape == (C,)
    tokens, mask = _tokens(jax.random.key(1), 4, 9, [9, 3, 1, 5])
    logits, states = model.apply(params, tokens, mask, return_states=True)
    assert logits.shape == (4, C)
    assert states.shape == (4, 9, cell.state_size)


@pytest.mark.parametrize("cell", [cells.GRU(6), cells.LSTM(6)])
def test_padding_invariance(cell):
    model = _model(cell)
    params = model.init(jax.random.key(0))
    tokens, mask = _tokens(jax.random.key(1), 3, 6, [6, 6, 6])
    padded = jnp.concatenate([tokens, jnp.zeros((3, 10), tokens.dtype)], axis=1)
    pmask = jnp.concatenate([mask, jnp.zeros((3, 10), bool)], axis=1)
    l1, s1 = model.apply(params, tokens, mask, return_states=True)
    l2, s2 = model.apply(params, padded, pmask, return_states=True)
    np.testing.assert_array_equal(s1[:, -1], s2[:, -1])
    np.testing.assert_array_equal(l1, l2)
    # padding steps repeat the final state
    np.testing.assert_array_equal(s2[:, 6:], jnp.broadcast_to(s1[:, -1:], (3, 10, s1.shape[-1])))


@pytest.mark.parametrize("cell", [cells.Vanilla(4), cells.GRU(4), cells.LSTM(4), cells.UGRNN(4)])
def test_scan_matches_python_loop(cell):
    # The fused recurrences (input gates projected outside the scan) against the cells' own
    # step function, one token at a time.
    model = _model(cell)
    params = model.init(jax.random.key(2))
    params["cell"] = jax.tree_util.tree_map(  # non-zero biases, so every term is exercised
        lambda a: a + 0.3 * jax.random.normal(jax.random.key(7), a.shape), params["cell"]
    )
    tokens, mask = _tokens(jax.random.key(3), 2, 7, [7, 4])
    logits, states = model.apply(params, tokens, mask, return_states=True)
    np.testing.assert_allclose(
        model.final_state(params, tokens, mask), states[:, -1], rtol=1e-6, atol=1e-6
    )
    np.testing.assert_allclose(model.apply(params, tokens, mask), logits, rtol=1e-5, atol=1e-6)
    for b in range(2):
        h = model.cell.initial_state()
        for t in range(int(mask[b].sum())):
            h = model.cell(params["cell"], h, params["embedding"][tokens[b, t]])
            np.testing.assert_allclose(states[b, t], h, rtol=1e-5, atol=1e-6)
        want = model.cell.output(h) @ params["readout"]["W"] + params["readout"]["b"]
        np.testing.assert_allclose(logits[b], want, rtol=1e-5, atol=1e-6)


def test_wrapped_flax_cell_runs_batched():
    model = _model(cells.from_flax(nn.GRUCell(features=4)))
    params = model.init(jax.random.key(0))
    tokens, mask = _tokens(jax.random.key(1), 3, 5, [5, 2, 4])
    assert model.apply(params, tokens, mask).shape == (3, C)


def test_loss_categorical_matches_optax():
    model = _model()
    params = model.init(jax.random.key(0))
    tokens, mask = _tokens(jax.random.key(1), 4, 5, [5, 5, 2, 1])
    labels = jnp.array([0, 2, 1, 1])
    logits = model.apply(params, tokens, mask)
    want = optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()
    np.testing.assert_allclose(model.loss(params, tokens, mask, labels), want, rtol=1e-6)
    assert model.predict(params, tokens, mask).shape == (4,)


def test_multilabel_loss_by_hand():
    model = _model(multilabel=True)
    params = model.init(jax.random.key(0))
    tokens, mask = _tokens(jax.random.key(1), 2, 5, [5, 3])
    labels = np.array([[1, 0, 1], [0, 0, 1]])
    z = np.asarray(model.apply(params, tokens, mask), np.float64)
    p = 1.0 / (1.0 + np.exp(-z))
    want = -np.mean(labels * np.log(p) + (1 - labels) * np.log(1 - p))
    np.testing.assert_allclose(model.loss(params, tokens, mask, labels), want, rtol=1e-5)
    pred = model.predict(params, tokens, mask)
    np.testing.assert_array_equal(pred, (z > 0).astype(int))


def test_loss_is_jittable_and_differentiable():
    model = _model()
    params = model.init(jax.random.key(0))
    tokens, mask = _tokens(jax.random.key(1), 2, 4, [4, 2])
    grads = jax.jit(jax.grad(model.loss))(params, tokens, mask, jnp.array([0, 1]))
    assert jax.tree_util.tree_structure(grads) == jax.tree_util.tree_structure(params)


def test_bad_inputs():
    model = _model()
    params = model.init(jax.random.key(0))
    tokens, mask = _tokens(jax.random.key(1), 2, 4, [4, 2])
    with pytest.raises(ValueError, match="labels must lie in"):
        model.loss(params, tokens, mask, jnp.array([0, C]))
    with pytest.raises(ValueError, match="labels must have shape"):
        model.loss(params, tokens, mask, jnp.array([0, 1, 2]))
    with pytest.raises(ValueError, match=r"tokens must have shape \(batch, time\)"):
        model.apply(params, tokens[0], mask[0])
    with pytest.raises(ValueError, match="mask must have the shape"):
        model.apply(params, tokens, mask[:, :2])
    with pytest.raises(ValueError, match="integer token ids"):
        model.apply(params, tokens.astype(float), mask)
    with pytest.raises(ValueError, match="vocab_size"):
        model.apply(params, tokens.at[0, 0].set(V), mask)
    ml = _model(multilabel=True)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 1\]"):
        ml.loss(ml.init(jax.random.key(0)), tokens, mask, jnp.array([[0, 2, 1], [0, 0, 0]]))
    with pytest.raises(ValueError, match="num_classes"):
        Classifier(cells.GRU(3), vocab_size=V, embed_size=E, num_classes=1)
    with pytest.raises(ValueError, match="cell must be"):
        Classifier("gru", vocab_size=V, embed_size=E, num_classes=2)


def test_make_cell_names():
    for name in ("vanilla", "GRU", "lstm", "UGRNN"):
        cell = make_cell(name, 8)
        assert cell.hidden_size == 8
        assert cell_name(cell) == name.lower()
    with pytest.raises(ValueError, match="unknown cell 'transformer'"):
        make_cell("transformer", 8)
    with pytest.raises(ValueError, match="built-in cells"):
        cell_name(cells.from_function(lambda p, h, x: h, state_size=3))
