"""Stage: slow points with a word as the constant input (``word_input_fixed_points``)."""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from rnndyn._records import record, static
from rnndyn.analysis._common import centre_classes, safe_correlation
from rnndyn.fixed_points import find_fixed_points
from rnndyn.models import Classifier

__all__ = ["WordInputs", "word_input_fixed_points"]


@record
class WordInputs:
    """Slow points with a word as the constant input, ``x* = embedding(w)``.

    Started from (up to ``max_starts``) analysed slow points of the main search, each first
    carried ``relax_steps`` steps by the network under the word's input; for each start
    that ends at a slow point under the word's input (``q < tol``; certified roots or not,
    as in the main search) the logit shift ``W̃ (h*_w − h*_0)`` is taken.

    Attributes:
      words: ``(n,)`` word ids; names: their strings.
      num_points: ``(n,)`` starts that ended at a slow point under each word's input.
      shift: ``(n, C)`` mean logit shift (centred readout; nan where no start did): how
        far along the readout the word moves the slow points.
      bow_weights: ``(n, C)`` the words' bag-of-words weights.
      correlation: Pearson r of ``shift`` and ``bow_weights`` over words with a shift
        (nan with fewer than two such words).
    """

    words: np.ndarray
    num_points: np.ndarray
    shift: np.ndarray
    bow_weights: np.ndarray
    correlation: float
    names: tuple = static(())


def word_input_fixed_points(
    model: Classifier,
    params: Any,
    starts: np.ndarray,
    bow_weights: np.ndarray,
    counts: np.ndarray,
    vocab: tuple,
    *,
    key: jax.Array,
    words: Any = None,
    num_words: int = 16,
    max_starts: int = 8,
    relax_steps: int = 200,
    tol: float,
    max_steps: int,
    learning_rate: float,
) -> WordInputs:
    """Slow points with each word's embedding as the constant input.

    A strong word's input moves the slow points far from the line, often to one stable
    point at its end; descending ``q`` from the line's points then stops in a local
    minimum of ``q`` on a face of the state box, far from that point (a GRU-128 on long
    reviews: every positive word's search ended there, logit −7 where the point is at
    +15). So each start first follows the network's own dynamics under the word for
    ``relax_steps`` steps, which carries it into the basin of a stable point, and the
    hybrid Adam + Newton/LM search finishes from there. ``words`` (ids) defaults to
    the ``num_words // 2`` seen words with the largest bag-of-words weights
    (``max |W_w|`` over classes) and the ``num_words // 2`` most frequent other words, so
    that strong and neutral words are both represented.

    Args:
      starts: ``(K, S)`` slow points to start from (``K >= 1``).
      bow_weights: ``(V, C)`` bag-of-words weights (centred for softmax); counts:
        ``(V,)`` word counts; vocab: the words' strings.
    """
    if words is None:
        seen = np.flatnonzero(counts > 0)
        strong = seen[np.argsort(-np.abs(bow_weights[seen]).max(1), kind="stable")]
        strong = strong[: num_words // 2]
        rest = np.setdiff1d(seen, strong)
        frequent = rest[np.argsort(-counts[rest], kind="stable")][: num_words - len(strong)]
        words = np.concatenate([strong, frequent])
    words = np.asarray(words, np.int64)
    if words.ndim != 1 or words.size == 0 or words.min() < 0 or words.max() >= model.vocab_size:
        raise ValueError(
            f"word_inputs must be a non-empty list of word ids in [0, {model.vocab_size}), "
            f"got {words.tolist()}"
        )
    pts = np.asarray(starts)
    pick = np.linspace(0, len(pts) - 1, min(max_starts, len(pts))).round().astype(np.int64)
    starts = pts[np.unique(pick)]
    emb = np.asarray(params["embedding"], np.float32)
    n, k = len(words), len(starts)
    inputs = jnp.asarray(np.repeat(emb[words], k, axis=0))
    relaxed = _relax(model.cell, params["cell"], inputs, jnp.asarray(np.tile(starts, (n, 1))),
                     relax_steps)  # fmt: skip
    found = find_fixed_points(
        model.cell, params["cell"], inputs, relaxed, key=key, tol=tol, max_steps=max_steps,
        learning_rate=learning_rate, polish_steps=50,
    )  # fmt: skip
    ok = np.asarray(found.slow).reshape(n, k)
    delta = np.asarray(model.readout(params, jnp.asarray(found.points))) - np.tile(
        np.asarray(model.readout(params, jnp.asarray(starts))), (n, 1)
    )
    delta = centre_classes(delta.reshape(n, k, -1), model.multilabel)
    with np.errstate(invalid="ignore"):
        shift = np.where(ok.any(1)[:, None], (delta * ok[..., None]).sum(1), np.nan)
        shift = shift / np.maximum(ok.sum(1), 1)[:, None]
    good = ok.any(1)
    r = safe_correlation(shift[good], bow_weights[words][good]) if good.sum() >= 2 else np.nan
    names = tuple(vocab[w] if w < len(vocab) else str(w) for w in words)
    return WordInputs(words, ok.sum(1), shift, bow_weights[words], float(r), names)


@functools.partial(jax.jit, static_argnums=(0, 4))
def _relax(cell, params, inputs, h, steps: int):
    """``steps`` steps of the network from ``h (K, S)`` under constant ``inputs (K, M)``.

    A row whose run leaves the finite numbers (a cell without a bounded state, driven
    away) keeps its start, so the search still gets to try it.
    """
    step = jax.vmap(cell, (None, 0, 0))
    out = jax.lax.fori_loop(0, steps, lambda _, g: step(params, g, inputs), h)
    return jnp.where(jnp.all(jnp.isfinite(out), axis=1, keepdims=True), out, h)
