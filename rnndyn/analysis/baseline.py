"""Stage: the bag-of-words baseline, fit on training data and scored held out."""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp
import numpy as np

from rnndyn import words as wd
from rnndyn._records import record, static
from rnndyn.analysis._common import centre_classes, token_counts
from rnndyn.models import Classifier

__all__ = ["Baseline", "bag_of_words"]

#: Fewer training examples than this left after holding out the scored ones: fit on all.
MIN_FIT_EXAMPLES = 16


@record
class Baseline:
    """A bag-of-words logistic regression (``words.fit_bag_of_words``).

    Attributes:
      weights: ``(V, C)`` per-word logit change (centred over classes for softmax).
      bias: ``(C,)``.
      counts: ``(V,)`` occurrences of each word in the examples it was fit on.
      train_accuracy: accuracy on those examples.
      accuracy: accuracy on the analysed examples, which it was not fit on (``held_out``);
        when it had to be fit on them (too few other examples), the same as
        ``train_accuracy`` and ``held_out`` is false.
      num_fit: examples it was fit on; fit_index: ``(num_fit,)`` their indices in the
        training data.
      held_out: whether ``accuracy`` is measured on examples it was not fit on.
    """

    weights: np.ndarray
    bias: np.ndarray
    counts: np.ndarray
    train_accuracy: float
    accuracy: float
    num_fit: int
    fit_index: np.ndarray
    held_out: bool = static(True)


def bag_of_words(
    model: Classifier,
    train_data: Any,
    data: Any,
    index: np.ndarray,
    *,
    steps: int = 500,
) -> Baseline:
    """Fit on ``train_data`` and score on ``data[index]``.

    When ``train_data`` is ``data`` (no separate training set), the examples in ``index``
    are left out of the fit, so that the reported accuracy is held out, as long as at
    least ``MIN_FIT_EXAMPLES`` others remain.
    """
    fit_rows = np.arange(len(train_data.lengths))
    if train_data is data:
        rest = np.setdiff1d(fit_rows, index)
        fit_rows = rest if len(rest) >= MIN_FIT_EXAMPLES else fit_rows
    held_out = train_data is not data or not np.isin(index, fit_rows).any()
    tokens = np.asarray(train_data.tokens)[fit_rows]
    lengths = np.asarray(train_data.lengths)[fit_rows]
    labels = np.asarray(train_data.labels)[fit_rows]
    bow = wd.fit_bag_of_words(
        tokens, labels, model.vocab_size, model.num_classes, lengths=lengths,
        multilabel=model.multilabel, steps=steps,
    )  # fmt: skip
    counts, _ = wd.word_counts(
        np.asarray(data.tokens)[index], model.vocab_size, lengths=np.asarray(data.lengths)[index]
    )
    logits = bow.logits(counts)
    labels_out = np.asarray(data.labels)[index]
    correct = model.correct(jnp.asarray(logits), jnp.asarray(labels_out))
    accuracy = float(np.mean(np.asarray(correct)))
    fit_counts = token_counts(tokens, lengths, model.vocab_size)
    return Baseline(
        weights=centre_classes(bow.weights, model.multilabel),
        bias=np.asarray(bow.bias, np.float64),
        counts=fit_counts,
        train_accuracy=float(bow.accuracy),
        accuracy=accuracy if held_out else float(bow.accuracy),
        num_fit=int(len(fit_rows)),
        fit_index=np.asarray(fit_rows, np.int64),
        held_out=bool(held_out),
    )
