"""Small helpers shared by the analysis stages (one place for each formula)."""

from __future__ import annotations

import functools
import sys
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from rnndyn import words as wd
from rnndyn.models import Classifier


def centre_classes(x: np.ndarray, multilabel: bool) -> np.ndarray:
    """Centre ``(..., C)`` logit-like rows over classes for softmax models (a shift shared
    by all classes changes no prediction); multi-label rows are returned as they are."""
    x = np.asarray(x, np.float64)
    return x if multilabel else x - x.mean(axis=-1, keepdims=True)


def readout_rows(model: Classifier, params: Any) -> np.ndarray:
    """``W^T (C, N)``, centred over classes for softmax."""
    rows = np.asarray(params["readout"]["W"], np.float64).T
    return rows if model.multilabel else rows - rows.mean(axis=0, keepdims=True)


def readout_in_state_space(model: Classifier, params: Any, state: Any) -> np.ndarray:
    """Readout rows ``(C, S)`` as directions in the cell's state space.

    ``logits = W^T output(h) + b``; the rows are ``W^T ∂output/∂h`` at ``state``
    (``output`` is the identity for most cells and ``h ↦ h[:N]`` for the LSTM). For
    softmax classifiers the rows are centred over classes: adding the same vector to
    every row changes no prediction.
    """
    return readout_rows(model, params) @ output_jacobian(model, state)


def output_jacobian(model: Classifier, state: Any) -> np.ndarray:
    """``∂output/∂h (N, S)`` at ``state (S,)``, float64."""
    return np.asarray(_output_jacobian(model.cell, jnp.asarray(state, jnp.float32)), np.float64)


# compiled once per cell (op by op, the Jacobian compiled a program per primitive)
@functools.partial(jax.jit, static_argnums=0)
def _output_jacobian(cell: Any, state: jax.Array) -> jax.Array:
    return jax.jacobian(cell.output)(state)


def token_counts(tokens: Any, lengths: Any, vocab_size: int) -> np.ndarray:
    """``(V,)`` occurrences of each word among the real tokens of ``tokens (B, T)``
    (the first ``lengths (B,)`` of each row)."""
    tokens = np.asarray(tokens)
    real = np.arange(tokens.shape[1])[None, :] < np.asarray(lengths)[:, None]
    return np.bincount(tokens[real], minlength=vocab_size).astype(np.float64)


def safe_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson r, or nan where it is undefined (constant values or too few)."""
    try:
        return wd.correlation(a, b)
    except ValueError:
        return float("nan")


def same_prediction(a: np.ndarray, b: np.ndarray) -> float:
    """Fraction of examples with the same prediction (every label, if multi-label)."""
    return float(np.mean(np.all((a == b).reshape(len(a), -1), 1)))


def bin_means(values: np.ndarray, bins: np.ndarray, n: int) -> np.ndarray:
    """Mean of ``values`` per bin ``0..n-1`` (nan for an empty bin)."""
    counts = np.bincount(bins, minlength=n)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, np.bincount(bins, values, minlength=n) / counts, np.nan)


class Log:
    """Progress lines on stderr with the time since the start (silent if not verbose)."""

    def __init__(self, verbose: bool):
        self.verbose = verbose
        self.t0 = time.perf_counter()

    def __call__(self, message: str) -> None:
        if self.verbose:
            elapsed = time.perf_counter() - self.t0
            print(f"[analyze {elapsed:6.1f}s] {message}", file=sys.stderr, flush=True)

    @property
    def seconds(self) -> float:
        return time.perf_counter() - self.t0
