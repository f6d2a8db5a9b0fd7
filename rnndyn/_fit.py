"""Full-batch fits of the word baselines: the classification loss and Adam in one scan."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import optax


def class_loss(logits: Any, y: Any, multilabel: bool) -> Any:
    """Mean sigmoid binary cross-entropy over labels (``multilabel``, ``y`` 0/1) or mean
    softmax cross-entropy (``y`` class ids) of ``logits``."""
    if multilabel:
        return optax.sigmoid_binary_cross_entropy(logits, y).mean()
    return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()


def adam_fit(loss: Callable[[Any], Any], params: Any, steps: int, learning_rate: float) -> Any:
    """``params`` after ``steps`` full-batch Adam steps on ``loss(params)``, as one
    ``lax.scan`` (call it inside a jit)."""
    opt = optax.adam(learning_rate)

    def step(carry, _):
        params, state = carry
        grads = jax.grad(loss)(params)
        updates, state = opt.update(grads, state, params)
        return (optax.apply_updates(params, updates), state), None

    (params, _), _ = jax.lax.scan(step, (params, opt.init(params)), None, length=steps)
    return params
