"""A bag of words extended with contextual modification (after Maheswaranathan &
Sussillo, ICML 2020): per-word valence, per-word modifier strength with a decay, and
position gains.

Model, for a document ``w_1 .. w_T``::

    logits = b + Σ_t  p(t / T) · g_t · v[w_t]
    g_t    = Π_{k=1..K} (1 + m[w_{t−k}, k])

``v (V, C)`` is the word's valence (a plain bag of words when ``m = 0``, ``p = 1``);
``m (V, K)`` the word's modifier profile: how it multiplies the valence of the word
``k`` tokens later (``m = −2`` flips it, ``m = 1`` doubles it), so its strength and how
it fades are learned per word (a free decay; modifiers in range multiply); ``p`` a gain
per bin of relative position (beginning- and end-of-document effects). A step profile
(a modifier that acts for ``r`` tokens, then stops) is representable exactly, an
exponential decay as well.
Fit by full-batch Adam on softmax (or, multi-label, sigmoid) cross-entropy with an L2
penalty, started from a plain bag of words.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from rnndyn import _checks
from rnndyn._fit import adam_fit, class_loss
from rnndyn._records import record, static

__all__ = ["ExtendedBagOfWords", "fit_extended_bag_of_words"]


@record
class ExtendedBagOfWords:
    """A fitted extended bag of words (module docstring).

    Attributes:
      valence: ``(V, C)``; profile: ``(V, K)`` modifier profile ``m``; position:
      ``(bins,)`` gains per relative-position bin; bias: ``(C,)``; accuracy: training
      accuracy; window: ``K``; multilabel: sigmoid per label.
    """

    valence: np.ndarray
    profile: np.ndarray
    position: np.ndarray
    bias: np.ndarray
    accuracy: float
    window: int = static(8)
    multilabel: bool = static(False)

    @property
    def strength(self) -> np.ndarray:
        """``(V,)`` gain on the next word minus 1 (``m[:, 0]``)."""
        return np.asarray(self.profile)[:, 0]

    @property
    def reach(self) -> np.ndarray:
        """``(V,)`` ``Σ_k |m_k| / |m_1|`` in tokens (nan where ``m_1 = 0``)."""
        m = np.abs(np.asarray(self.profile))
        with np.errstate(divide="ignore", invalid="ignore"):
            return m.sum(axis=1) / m[:, 0]

    def logits(self, tokens: Any, lengths: Any) -> np.ndarray:
        """``(B, C)`` logits of left-aligned ``tokens (B, T)`` with ``lengths (B,)``."""
        params = {k: jnp.asarray(getattr(self, k), jnp.float32)
                  for k in ("valence", "profile", "position", "bias")}  # fmt: skip
        return np.asarray(_logits(params, jnp.asarray(tokens), jnp.asarray(lengths)), np.float64)


def _shift(a: jax.Array, k: int) -> jax.Array:
    """``a (B, T)`` delayed by ``k`` steps along time (zeros first)."""
    return jnp.pad(a, ((0, 0), (k, 0)))[:, : a.shape[1]]


@jax.jit
def _logits(params: dict, tokens: jax.Array, lengths: jax.Array) -> jax.Array:
    t = tokens.shape[1]
    real = (jnp.arange(t)[None, :] < lengths[:, None]).astype(jnp.float32)
    profile = params["profile"][tokens] * real[..., None]  # (B, T, K)
    gain = jnp.ones_like(real)
    for k in range(1, profile.shape[-1] + 1):
        gain = gain * (1.0 + _shift(profile[..., k - 1], k))
    bins = params["position"].shape[0]
    rel = jnp.arange(t)[None, :] / jnp.maximum(lengths[:, None], 1)
    pos = params["position"][jnp.clip((rel * bins).astype(jnp.int32), 0, bins - 1)]
    weight = gain * pos * real
    return jnp.einsum("bt,btc->bc", weight, params["valence"][tokens]) + params["bias"]


def fit_extended_bag_of_words(
    tokens: Any,
    labels: Any,
    vocab_size: int,
    num_classes: int,
    *,
    lengths: Any,
    multilabel: bool = False,
    init_valence: Any = None,
    init_bias: Any = None,
    window: int = 8,
    bins: int = 10,
    steps: int = 1000,
    learning_rate: float = 0.05,
    l2: float = 1e-3,
) -> ExtendedBagOfWords:
    """Fit the extended bag of words (module docstring).

    Args:
      tokens: ``(B, T)`` ids; lengths: ``(B,)``; labels: ``(B,)`` class ids, or ``(B, C)``
        0/1 with ``multilabel``.
      vocab_size, num_classes: ``V``, ``C``.
      init_valence, init_bias: start from a plain bag of words (``(V, C)``, ``(C,)``;
        default zeros).
      window: ``K`` tokens a modifier's profile spans; bins: position bins.
      steps, learning_rate, l2: full-batch Adam and the L2 penalty on ``v`` and ``m``
        (1e-3: it keeps the many rare words' profiles near zero).
    """
    _checks.check_int("window", window, minimum=1)
    _checks.check_int("bins", bins, minimum=1)
    _checks.check_int("steps", steps, minimum=1)
    tokens = jnp.asarray(tokens, jnp.int32)
    lengths = jnp.asarray(lengths, jnp.int32)
    y = jnp.asarray(labels)
    v0 = jnp.zeros((vocab_size, num_classes)) if init_valence is None else init_valence
    params = {
        "valence": jnp.asarray(v0, jnp.float32),
        "profile": jnp.zeros((vocab_size, window), jnp.float32),
        "position": jnp.ones((bins,), jnp.float32),
        "bias": jnp.asarray(np.zeros(num_classes) if init_bias is None else init_bias, jnp.float32),
    }
    params = _fit(params, tokens, lengths, y, bool(multilabel), int(steps),
                  float(learning_rate), float(l2))  # fmt: skip
    logits = _logits(params, tokens, lengths)
    if multilabel:
        acc = float(jnp.mean((logits > 0) == (y > 0.5)))
    else:
        acc = float(jnp.mean(jnp.argmax(logits, -1) == y))
    p = jax.tree_util.tree_map(lambda a: np.asarray(a, np.float64), params)
    return ExtendedBagOfWords(
        valence=p["valence"], profile=p["profile"], position=p["position"], bias=p["bias"],
        accuracy=acc, window=int(window), multilabel=bool(multilabel),
    )  # fmt: skip


@functools.partial(jax.jit, static_argnums=(4, 5))
def _fit(params, tokens, lengths, y, multilabel, steps, learning_rate, l2):
    def loss(p):
        logits = _logits(p, tokens, lengths)
        target = y.astype(logits.dtype) if multilabel else y
        penalty = jnp.sum(p["valence"] ** 2) + jnp.sum(p["profile"] ** 2)
        return class_loss(logits, target, multilabel) + l2 * penalty

    return adam_fit(loss, params, steps, learning_rate)
