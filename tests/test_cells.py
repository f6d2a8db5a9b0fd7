import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import rnndyn
from rnndyn import cells

N, M = 5, 3


def _rand(key, shape, scale=0.5):
    return scale * jax.random.normal(key, shape)


def _flax_gru_to_rnndyn(variables):
    p = variables["params"]
    return {
        "W_x": jnp.concatenate([p[k]["kernel"] for k in ("ir", "iz", "in")], axis=1),
        "b": jnp.concatenate([p[k]["bias"] for k in ("ir", "iz", "in")]),
        "W_h": jnp.concatenate([p[k]["kernel"] for k in ("hr", "hz", "hn")], axis=1),
        "b_hn": p["hn"]["bias"],
    }


def _flax_lstm_to_rnndyn(variables):
    p = variables["params"]
    return {
        "W_x": jnp.concatenate([p[k]["kernel"] for k in ("ii", "if", "ig", "io")], axis=1),
        "W_h": jnp.concatenate([p[k]["kernel"] for k in ("hi", "hf", "hg", "ho")], axis=1),
        "b": jnp.concatenate([p[k]["bias"] for k in ("hi", "hf", "hg", "ho")]),
    }


def _randomize(tree, key):
    # flax initialises biases at zero; random ones make the comparison meaningful
    leaves, treedef = jax.tree_util.tree_flatten(tree)
    keys = jax.random.split(key, len(leaves))
    return jax.tree_util.tree_unflatten(
        treedef, [_rand(k, leaf.shape) for k, leaf in zip(keys, leaves, strict=True)]
    )


def test_gru_matches_flax_gru_cell():
    key = jax.random.key(0)
    module = nn.GRUCell(features=N)
    h = _rand(jax.random.key(1), (4, N))
    x = _rand(jax.random.key(2), (4, M))
    variables = _randomize(module.init(key, h, x), jax.random.key(3))
    expected, _ = module.apply(variables, h, x)
    got = cells.GRU(N)(_flax_gru_to_rnndyn(variables), h, x)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_lstm_matches_flax_lstm_cell():
    module = nn.LSTMCell(features=N)
    c = _rand(jax.random.key(1), (4, N))
    h = _rand(jax.random.key(2), (4, N))
    x = _rand(jax.random.key(3), (4, M))
    variables = _randomize(module.init(jax.random.key(0), (c, h), x), jax.random.key(4))
    (c_new, h_new), _ = module.apply(variables, (c, h), x)
    got = cells.LSTM(N)(_flax_lstm_to_rnndyn(variables), jnp.concatenate([h, c], -1), x)
    np.testing.assert_allclose(got[:, :N], h_new, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got[:, N:], c_new, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(cells.LSTM(N).output(got), h_new, rtol=1e-5, atol=1e-6)


def _sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


def test_vanilla_and_ugrnn_follow_their_equations():
    key = jax.random.key(5)
    h = np.asarray(_rand(jax.random.key(6), (N,)))
    x = np.asarray(_rand(jax.random.key(7), (M,)))

    p = jax.tree_util.tree_map(np.asarray, cells.Vanilla(N).init(key, M))
    p["b"] = np.asarray(_rand(jax.random.key(8), (N,)))
    expected = np.tanh(h @ p["W_h"] + x @ p["W_x"] + p["b"])
    np.testing.assert_allclose(cells.Vanilla(N)(p, h, x), expected, rtol=1e-5, atol=1e-6)

    p = jax.tree_util.tree_map(np.asarray, cells.UGRNN(N).init(key, M))
    a = h @ p["W_h"] + x @ p["W_x"] + p["b"]
    c, g = np.tanh(a[:N]), _sigmoid(a[N:])
    np.testing.assert_allclose(cells.UGRNN(N)(p, h, x), g * h + (1 - g) * c, rtol=1e-5, atol=1e-6)


def test_linear_cell_is_affine_and_its_spectrum_is_that_of_a():
    # h' = A h + B x + b with A = W_h^T: the Jacobian is A at every state, so the
    # eigenvalues rnndyn reports are exactly those of A (numpy's eig as the truth)
    cell = cells.Linear(N)
    p = jax.tree_util.tree_map(np.asarray, cell.init(jax.random.key(5), M))
    p["b"] = np.asarray(_rand(jax.random.key(8), (N,)))
    h, x = np.asarray(_rand(jax.random.key(6), (N,))), np.asarray(_rand(jax.random.key(7), (M,)))
    np.testing.assert_allclose(cell(p, h, x), p["W_h"].T @ h + p["W_x"].T @ x + p["b"],
                               rtol=1e-5, atol=1e-6)  # fmt: skip
    assert cell.state_bounds() is None
    j_rec, j_inp = rnndyn.jacobians(cell, p, jnp.asarray(np.stack([h, 3 * h])), jnp.asarray(x))
    np.testing.assert_allclose(j_rec[0], p["W_h"].T, atol=1e-6)
    np.testing.assert_allclose(j_rec[1], p["W_h"].T, atol=1e-6)
    np.testing.assert_allclose(j_inp[0], p["W_x"].T, atol=1e-6)
    values = np.asarray(rnndyn.eig(j_rec[0]).values)
    truth = np.linalg.eigvals(p["W_h"].T.astype(np.float64))
    np.testing.assert_allclose(np.sort_complex(values), np.sort_complex(truth), atol=1e-5)
    np.testing.assert_allclose(np.abs(truth), 0.9, atol=1e-5)  # 0.9 x orthogonal at init


@pytest.mark.parametrize("cls", [cells.Vanilla, cells.GRU, cells.LSTM, cells.UGRNN, cells.Linear])
def test_batched_call_equals_vmap_and_state_sizes(cls):
    cell = cls(N)
    params = cell.init(jax.random.key(0), M)
    assert cell.initial_state().shape == (cell.state_size,)
    assert cell.initial_state((2, 3)).shape == (2, 3, cell.state_size)
    assert cell.state_size == (2 * N if cls is cells.LSTM else N)
    h = _rand(jax.random.key(1), (6, cell.state_size))
    x = _rand(jax.random.key(2), (6, M))
    batched = cell(params, h, x)
    mapped = jax.vmap(cell, in_axes=(None, 0, 0))(params, h, x)
    np.testing.assert_allclose(batched, mapped, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(cell.apply(params, h, x), batched)
    assert cell.output(batched).shape == (6, N)


def test_from_flax_wraps_gru_and_lstm():
    x = _rand(jax.random.key(2), (M,))
    gru = cells.from_flax(nn.GRUCell(features=N))
    assert gru.state_size == N
    v = gru.init(jax.random.key(0), M)
    h = _rand(jax.random.key(1), (N,))
    expected, _ = nn.GRUCell(features=N).apply(v, h, x)
    np.testing.assert_allclose(gru(v, h, x), expected, rtol=1e-6)

    lstm = cells.from_flax(nn.LSTMCell(features=N))
    assert lstm.state_size == 2 * N
    v = lstm.init(jax.random.key(0), M)
    c, h = _rand(jax.random.key(3), (N,)), _rand(jax.random.key(4), (N,))
    (c_new, h_new), _ = nn.LSTMCell(features=N).apply(v, (c, h), x)
    out = lstm(v, jnp.concatenate([c, h]), x)
    np.testing.assert_allclose(out, jnp.concatenate([c_new, h_new]), rtol=1e-6)
    np.testing.assert_allclose(lstm.output(out), h_new, rtol=1e-6)
    # batched states go through vmap
    batch = jnp.stack([jnp.concatenate([c, h])] * 3)
    np.testing.assert_allclose(lstm(v, batch, x)[1], out, rtol=1e-6)


def test_from_function():
    cell = cells.from_function(lambda p, h, x: p["a"] * h + x, state_size=2)
    out = cell({"a": 0.5}, jnp.array([2.0, 4.0]), jnp.array([1.0, 1.0]))
    np.testing.assert_allclose(out, [2.0, 3.0])
    assert cell.initial_state().shape == (2,)
    with pytest.raises(ValueError, match="no initialiser"):
        cell.init(jax.random.key(0), 2)
    with pytest.raises(ValueError, match="fn must be callable"):
        cells.from_function(3)
    with pytest.raises(ValueError, match="state_size"):
        cells.from_function(lambda p, h, x: h).initial_state()


def test_bad_construction_and_params():
    with pytest.raises(ValueError, match="hidden_size"):
        cells.GRU(0)
    with pytest.raises(ValueError, match="input_size"):
        cells.GRU(3).init(jax.random.key(0), 0)
    with pytest.raises(ValueError, match="module must be a flax.linen recurrent cell"):
        cells.from_flax(object())
    params = cells.GRU(3).init(jax.random.key(0), 2)
    with pytest.raises(ValueError, match=r"params\['W_h'\] has shape \(4, 12\), expected \(3, 9\)"):
        cells.GRU(3).check_params(params | {"W_h": jnp.zeros((4, 12))})
    with pytest.raises(ValueError, match="must have keys"):
        cells.GRU(3).check_params({"W_x": params["W_x"]})
    with pytest.raises(ValueError, match="dict of arrays"):
        cells.GRU(3).check_params([1, 2])


@pytest.mark.parametrize("name", ["Vanilla", "GRU", "LSTM", "UGRNN", "Linear"])
@pytest.mark.parametrize("n, batch", [(1, ()), (4, (2, 3))], ids=["n1-unbatched", "n4-batched"])
@settings(max_examples=4, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_hand_written_update_vjp_matches_autodiff(name, n, batch, seed):
    # The training path back-propagates each step with cell._update_vjp; it must equal
    # JAX's own vjp of the elementwise update (extras summed over the batch axes). The
    # shapes are fixed per case and the values drawn, so each case compiles once.
    cell = getattr(cells, name)(n)
    k = jax.random.split(jax.random.key(seed), 6)
    params = jax.tree_util.tree_map(
        lambda a: a + _rand(k[0], a.shape), cell.init(k[1], 2)
    )  # non-zero biases, so b_hn matters
    extras = cell._extras(params)
    g = params["b"].shape[0]
    gx, gh = _rand(k[2], batch + (g,), 1.5), _rand(k[3], batch + (g,), 1.5)
    state, d_new = _rand(k[4], batch + (cell.state_size,)), _rand(k[5], batch + (cell.state_size,))
    x = _rand(k[2], batch + (2,))
    want, got, step, direct = _vjp_check(cell)(params, extras, gx, gh, state, d_new, x)
    for w, h in zip(jax.tree_util.tree_leaves(want), jax.tree_util.tree_leaves(got), strict=True):
        np.testing.assert_allclose(h, w, rtol=2e-5, atol=2e-6)
    # and _update with the products done outside is the cell's step
    np.testing.assert_allclose(step, direct, rtol=1e-6, atol=1e-6)


@functools.cache
def _vjp_check(cell):
    @jax.jit
    def check(params, extras, gx, gh, state, d_new, x):
        _, vjp = jax.vjp(lambda e, a, b, s: cell._update(e, a, b, s), extras, gx, gh, state)
        direct = cell._update(
            extras, x @ params["W_x"] + params["b"], cell._recurrent(state) @ params["W_h"], state
        )
        return (
            vjp(d_new),
            cell._update_vjp(extras, gx, gh, state, d_new),
            cell(params, state, x),
            direct,
        )

    return check
