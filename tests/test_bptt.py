"""The hand-written back-propagation through time of the training path (rnndyn._bptt)
against JAX's autodiff of the generic masked scan and against finite differences."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from rnndyn import cells
from rnndyn.models import Classifier

CELLS = [cells.Vanilla(5), cells.GRU(5), cells.LSTM(5), cells.UGRNN(5), cells.Linear(5)]


def _setup(cell, vocab, steps=6, lengths=(0, 1, 6, 3)):
    model = Classifier(cell, vocab_size=vocab, embed_size=4, num_classes=3)
    params = model.init(jax.random.key(0))
    params["cell"] = jax.tree_util.tree_map(  # non-zero biases: every term matters
        lambda a: a + 0.3 * jax.random.normal(jax.random.key(1), a.shape), params["cell"]
    )
    lengths = jnp.asarray(lengths)
    tokens = jax.random.randint(jax.random.key(2), (len(lengths), steps), 0, vocab)
    mask = jnp.arange(steps)[None, :] < lengths[:, None]
    labels = jnp.arange(len(lengths)) % 3
    return model, params, jnp.where(mask, tokens, 0), mask, lengths, labels


def _loss(logits, labels):
    return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()


def _assert_trees_close(got, want, **tol):
    paths = jax.tree_util.tree_leaves_with_path(got)
    for (path, a), b in zip(paths, jax.tree_util.tree_leaves(want), strict=True):
        np.testing.assert_allclose(a, b, err_msg=jax.tree_util.keystr(path), **tol)


@pytest.mark.parametrize("cell", CELLS, ids=lambda c: type(c).__name__)
@pytest.mark.parametrize("vocab", [7, 500])  # whole-vocabulary table / distinct tokens
def test_gradient_matches_autodiff_of_masked_scan(cell, vocab):
    model, params, tokens, mask, lengths, labels = _setup(cell, vocab)
    fast = jax.jit(jax.value_and_grad(
        lambda p: _loss(model.apply_lengths(p, tokens, lengths), labels)
    ))  # fmt: skip
    slow = jax.jit(jax.value_and_grad(lambda p: _loss(model.apply(p, tokens, mask), labels)))
    (l1, g1), (l2, g2) = fast(params), slow(params)
    np.testing.assert_allclose(l1, l2, rtol=1e-6)
    _assert_trees_close(g1, g2, rtol=1e-4, atol=1e-7)
    # rows of tokens that no example reads get no gradient
    unread = np.setdiff1d(np.arange(vocab), np.asarray(tokens))
    np.testing.assert_array_equal(np.asarray(g1["embedding"])[unread], 0.0)


@pytest.mark.slow
@pytest.mark.parametrize("cell", [cells.GRU(3), cells.LSTM(3)], ids=lambda c: type(c).__name__)
def test_gradient_matches_finite_differences_in_float64(cell):
    with jax.enable_x64(True):
        model, params, tokens, _, lengths, labels = _setup(cell, 9, steps=4, lengths=(4, 2))
        params = jax.tree_util.tree_map(lambda a: a.astype(jnp.float64), params)

        @jax.jit  # compiled once: six evaluations below
        def loss(p):
            return _loss(model.apply_lengths(p, tokens, lengths), labels)

        grads = jax.jit(jax.grad(loss))(params)
        assert model.final_state(params, tokens, lengths).dtype == jnp.float64
        leaves, tree = jax.tree_util.tree_flatten(params)
        for i, key in enumerate(jax.random.split(jax.random.key(5), 3)):
            keys = jax.random.split(key, len(leaves))
            v = [jax.random.normal(k, a.shape, a.dtype) for k, a in zip(keys, leaves, strict=True)]
            step = tree.unflatten([1e-6 * d for d in v])
            plus = loss(jax.tree_util.tree_map(jnp.add, params, step))
            minus = loss(jax.tree_util.tree_map(jnp.subtract, params, step))
            fd = (plus - minus) / 2e-6
            ad = sum(
                jnp.vdot(g, d) for g, d in zip(jax.tree_util.tree_leaves(grads), v, strict=True)
            )
            np.testing.assert_allclose(ad, fd, rtol=1e-6, err_msg=f"direction {i}")


def test_single_step_and_per_example_gradients_under_vmap():
    model, params, tokens, mask, lengths, labels = _setup(cells.GRU(4), 11, steps=1, lengths=(1, 0))
    g1 = jax.jit(jax.grad(lambda p: _loss(model.apply_lengths(p, tokens, lengths), labels)))(params)
    g2 = jax.jit(jax.grad(lambda p: _loss(model.apply(p, tokens, mask), labels)))(params)
    _assert_trees_close(g1, g2, rtol=1e-5, atol=1e-7)

    def one(p, tok, length, label):  # per-example gradients: vmap over a batch of 1-row batches
        return jax.grad(
            lambda q: _loss(model.apply_lengths(q, tok[None], length[None]), label[None])
        )(p)

    per = jax.jit(jax.vmap(one, in_axes=(None, 0, 0, 0)))(params, tokens, lengths, labels)
    mean = jax.tree_util.tree_map(lambda a: a.mean(0), per)
    _assert_trees_close(mean, g2, rtol=1e-5, atol=1e-7)


def test_lengths_beyond_the_tokens_are_refused_or_clipped_under_jit():
    model, params, tokens, mask, lengths, labels = _setup(cells.LSTM(3), 9, steps=3, lengths=(3, 3))
    with pytest.raises(ValueError, match=r"lengths must lie in \[0, 3\]"):
        model.final_state(params, tokens, jnp.array([3, 5]))

    def loss(p, lengths):  # traced lengths cannot be checked: read out and trained alike
        return model.final_state(p, tokens, lengths).sum()

    f = jax.jit(jax.value_and_grad(loss))
    (v1, g1), (v2, g2) = f(params, jnp.array([3, 5])), f(params, jnp.array([3, 3]))
    np.testing.assert_allclose(v1, v2)
    _assert_trees_close(g1, g2, rtol=1e-6, atol=1e-8)
