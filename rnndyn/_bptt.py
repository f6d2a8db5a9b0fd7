"""Back-propagation through time, written out, for the built-in cells (the training path).

``final_state(cell, params, embedding, tokens, lengths)`` runs a built-in cell over
embedded tokens and returns the state after each row's last real token; its gradient is
a hand-written backward scan (``jax.custom_vjp``) instead of JAX's transpose of the
forward scan. What that buys on a CPU, per time step (issue 9, ``benchmarks/train.py``):

- the input projection ``x W_x + b`` is computed once per vocabulary row (the batch's
  distinct tokens, at most ``T * B`` of them) instead of once per token, and its
  gradients are scatter-added into that table inside the loop: no per-step ``dW_x``,
  ``dx`` or ``x W_x`` matrix products, and no ``(T, B, G*N)`` cotangent buffer;
- the gates' backward is one elementwise pass (``cell._update_vjp``) instead of one
  per gate slice;
- the inputs of the next step are gathered at the end of the current one, into the
  loop carry: XLA:CPU runs a gather or dynamic slice that is fused into the elementwise
  update several times slower than a separate one;
- only the states ``(T, B, S)`` are kept for the backward pass, which recomputes the
  recurrent products: a fifth to a seventh of the step memory of flax's ``nn.RNN``.

Shapes: ``B`` batch, ``T`` time, ``V`` vocabulary, ``E`` embedding, ``S`` state,
``N`` hidden, ``G*N`` gate pre-activations. Reverse mode only (``jax.grad``,
``jax.vjp``); forward mode (``jax.jvp``, ``jax.jacfwd``) goes through the generic scan
(``Classifier.states``).
"""

from __future__ import annotations

from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax

Array = jax.Array


def _fetch(arrays: tuple[Array, ...], t: Array) -> tuple[Array, ...]:
    return tuple(lax.dynamic_index_in_dim(a, t, keepdims=False) for a in arrays)


def _vocab_rows(tokens: Array, vocab_size: int) -> tuple[Array | None, Array]:
    """Rows of the embedding the batch reads, and the tokens re-indexed into them.

    The whole vocabulary when it is no larger than the batch (``V <= T * B``); else the
    batch's distinct tokens (padded to ``T * B``), so the projection never costs more
    than projecting every token.
    """
    if vocab_size <= tokens.size:
        return None, tokens
    ids, local = jnp.unique(tokens, size=tokens.size, fill_value=0, return_inverse=True)
    return ids, local.reshape(tokens.shape)


def last_states(hs: Array, lengths: Array, h0: Array) -> Array:
    """``(B, S)``: from the states after each step ``hs (T, B, S)``, each row's state
    after ``lengths[b]`` steps, and ``h0 (B, S)`` where ``lengths`` is 0."""
    last = hs[jnp.maximum(lengths - 1, 0), jnp.arange(hs.shape[1])]
    return jnp.where((lengths > 0)[:, None], last, h0)


def _forward(cell, params, embedding, tokens, lengths):
    # Traced lengths cannot be checked: clip them, so that the state read out and the
    # step that receives its cotangent are the same one.
    lengths = jnp.clip(lengths, 0, tokens.shape[1])
    ids, local = _vocab_rows(tokens, embedding.shape[0])
    rows = embedding if ids is None else embedding[ids]
    table = rows @ params["W_x"] + params["b"]  # (U, G*N)
    extras = cell._extras(params)
    tok = local.T  # (T, B)
    steps, batch = tok.shape
    dtype = jnp.result_type(table, params["W_h"])
    h0 = cell.initial_state((batch,)).astype(dtype)

    def step(carry, t):
        state, gx = carry
        gh = cell._recurrent(state) @ params["W_h"]
        new = cell._update(extras, gx, gh, state)
        (tok_next,) = _fetch((tok,), jnp.minimum(t + 1, steps - 1))
        return (new, table[tok_next]), new

    # Only the states are kept for the backward pass (T·B·S floats): it recomputes the
    # recurrent products, one matmul per step, which measured no slower than storing
    # them (T·B·G·N more floats) and keeps long documents in memory.
    _, hs = lax.scan(step, (h0, table[tok[0]]), jnp.arange(steps))
    return last_states(hs, lengths, h0), (params, embedding, ids, tok, lengths, table, hs)


@partial(jax.custom_vjp, nondiff_argnums=(0,))
def final_state(cell: Any, params: Any, embedding: Array, tokens: Array, lengths: Array) -> Array:
    """State after token ``lengths[b]`` of each row, ``(B, S)`` (the initial state where
    ``lengths`` is 0), for a built-in ``cell`` reading ``embedding[tokens]``.

    Args:
      cell: a built-in cell (``Vanilla``, ``GRU``, ``LSTM``, ``UGRNN``).
      params: its parameters.
      embedding: ``(V, E)``.
      tokens: ``(B, T)`` integer ids in ``[0, V)``, left-aligned.
      lengths: ``(B,)`` real tokens per row, in ``[0, T]``.
    """
    return _forward(cell, params, embedding, tokens, lengths)[0]


def _backward(cell, residuals, d_final):
    params, embedding, ids, tok, lengths, table, hs = residuals
    extras = cell._extras(params)
    steps = tok.shape[0]
    w_h = params["W_h"]
    h0 = cell.initial_state(hs.shape[1:2]).astype(hs.dtype)  # as in _forward

    def step(carry, t):
        d_state, d_extras, d_wh, d_table, (tok_t, prev) = carry
        prev = jnp.where(t == 0, h0, prev)  # the state before step t
        d_state = d_state + jnp.where((lengths - 1 == t)[:, None], d_final, 0.0)
        recurrent, to_state = jax.vjp(cell._recurrent, prev)
        gx, gh = table[tok_t], recurrent @ w_h
        d_ex, d_gx, d_gh, d_direct = cell._update_vjp(extras, gx, gh, prev, d_state)
        d_state = d_direct + to_state(d_gh @ w_h.T)[0]
        d_extras = jax.tree.map(jnp.add, d_extras, d_ex)
        d_wh = d_wh + recurrent.T @ d_gh
        d_table = d_table.at[tok_t].add(d_gx)
        # The inputs of step t - 1: its token and the state before it.
        nxt = _fetch((tok,), jnp.maximum(t - 1, 0)) + _fetch((hs,), jnp.maximum(t - 2, 0))
        return (d_state, d_extras, d_wh, d_table, nxt), None

    first = _fetch((tok,), steps - 1) + _fetch((hs,), max(steps - 2, 0))
    zeros = jax.tree.map(jnp.zeros_like, (h0, extras, w_h, table))
    (_, d_extras, d_wh, d_table, _), _ = lax.scan(
        step, (*zeros, first), jnp.arange(steps), reverse=True
    )
    rows = embedding if ids is None else embedding[ids]
    d_params = dict(d_extras, W_h=d_wh, W_x=rows.T @ d_table, b=d_table.sum(0))
    d_rows = d_table @ params["W_x"].T
    d_embedding = d_rows if ids is None else jnp.zeros_like(embedding).at[ids].add(d_rows)
    return d_params, d_embedding, None, None


final_state.defvjp(_forward, _backward)
