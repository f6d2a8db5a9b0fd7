"""Stage: a linear RNN trained directly (study A: about 3% below the LSTM)."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from rnndyn._records import record
from rnndyn.cells import Linear
from rnndyn.config import TrainConfig
from rnndyn.data.dataset import pad_batch
from rnndyn.models import Classifier
from rnndyn.train import train

__all__ = ["LinearRNN", "score_linear_rnn", "train_linear_rnn"]


@record
class LinearRNN:
    """A linear RNN ``h' = A h + B x + b`` with the network's embedding size, state size
    and readout, trained on the same training data.

    Attributes:
      accuracy: on the analysed examples.
      steps: training steps.
      eigenvalues: ``(N,)`` of ``A`` (exact: its Jacobian everywhere), by modulus.
      spectral_radius: ``|λ1|``.
    """

    accuracy: float
    steps: int
    eigenvalues: np.ndarray
    spectral_radius: float


def train_linear_rnn(
    model: Classifier,
    train_data: Any,
    data: Any,
    index: np.ndarray,
    *,
    key: jax.Array,
    steps: int,
    batch_size: int = 256,
) -> LinearRNN:
    """Train ``Classifier(Linear(N), ...)`` for ``steps`` Adam steps (``TrainConfig``
    defaults otherwise, with ``embedding_l2`` 1e-2 as for the analysed networks) and score
    it on ``data[index]``."""
    n = model.cell.output(model.cell.initial_state()).shape[0]
    linear = Classifier(Linear(n), model.vocab_size, model.embed_size, model.num_classes,
                        model.multilabel)  # fmt: skip
    config = TrainConfig(steps=steps, embedding_l2=1e-2)
    params = train(linear, train_data, None, key=key, config=config, verbose=False).params
    return score_linear_rnn(linear, params, data, index, steps=steps, batch_size=batch_size)


def score_linear_rnn(
    linear: Classifier,
    params: Any,
    data: Any,
    index: np.ndarray,
    *,
    steps: int,
    batch_size: int = 256,
) -> LinearRNN:
    """The record of a linear RNN classifier ``linear`` (a ``Linear`` cell, ``N`` units)
    with ``params``: its accuracy on ``data[index]`` and the eigenvalues ``(N,)`` of
    ``A = W_hᵀ`` by modulus; ``steps``: how long it was trained."""
    correct = []
    for start in range(0, len(index), batch_size):
        rows = index[start : start + batch_size]
        batch = pad_batch(data, rows, batch_size)
        logits = linear.apply(params, batch["tokens"], batch["mask"])
        labels = jnp.asarray(np.asarray(data.labels)[rows])
        correct.append(np.asarray(linear.correct(logits[: len(rows)], labels)))
    values = np.linalg.eigvals(np.asarray(params["cell"]["W_h"], np.float64).T)
    values = values[np.argsort(-np.abs(values), kind="stable")]
    return LinearRNN(float(np.mean(np.concatenate(correct))), int(steps), values,
                     float(np.abs(values[0])))  # fmt: skip
