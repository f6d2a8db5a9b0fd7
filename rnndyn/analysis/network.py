"""Stage 1: the full network on the analysed examples (``run_network``)."""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp
import numpy as np

from rnndyn._records import record
from rnndyn.data.dataset import pad_batch
from rnndyn.models import Classifier

__all__ = ["MAX_VISITED_STATES", "NetworkRun", "run_network"]

#: Visited states kept in memory for sampling initial states (a random subset beyond).
MAX_VISITED_STATES = 100_000


@record
class NetworkRun:
    """The full network on the analysed examples.

    Attributes:
      index: ``(n,)`` indices of the analysed examples in the dataset.
      visited: ``(n_states, S)`` a random subset of the visited (non-padding) states.
      logits: ``(n, C)`` final logits; labels: ``(n,)`` or ``(n, C)``.
      lengths: ``(n,)`` tokens per example.
      accuracy: the full model's accuracy on them.
    """

    index: np.ndarray
    visited: np.ndarray
    logits: np.ndarray
    labels: np.ndarray
    lengths: np.ndarray
    accuracy: float


def run_network(
    model: Classifier,
    params: Any,
    data: Any,
    index: np.ndarray,
    *,
    batch_size: int,
    rng: np.random.Generator,
) -> NetworkRun:
    """Run the network on ``data[index]``: logits and (at most ``MAX_VISITED_STATES``,
    each batch contributing its share) visited states."""
    states, logits = [], []
    for start in range(0, len(index), batch_size):
        rows = index[start : start + batch_size]
        batch = pad_batch(data, rows, batch_size)
        out, hs = model.apply(params, batch["tokens"], batch["mask"], return_states=True)
        n = len(rows)
        logits.append(np.asarray(out, np.float64)[:n])
        real = np.asarray(hs)[:n][batch["mask"][:n]]
        share = max(1, -(-MAX_VISITED_STATES * n // len(index)))
        if len(real) > share:
            real = real[np.sort(rng.choice(len(real), share, replace=False))]
        states.append(real)
    logits = np.concatenate(logits)
    labels = np.asarray(data.labels)[index]
    acc = float(np.mean(np.asarray(model.correct(jnp.asarray(logits), jnp.asarray(labels)))))
    return NetworkRun(
        index, np.concatenate(states), logits, labels, np.asarray(data.lengths)[index], acc
    )
