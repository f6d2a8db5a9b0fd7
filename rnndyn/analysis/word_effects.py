"""Stage: what each word does to the integrated evidence (``word_effects``)."""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from rnndyn import words as wd
from rnndyn._records import record
from rnndyn.analysis._common import centre_classes, readout_in_state_space, safe_correlation
from rnndyn.analysis.baseline import Baseline
from rnndyn.analysis.geometry import Geometry
from rnndyn.analysis.reference import Reference
from rnndyn.linearize import RealModes
from rnndyn.models import Classifier

__all__ = ["WordEffects", "trajectory_gain", "word_effects"]


@record
class WordEffects:
    """What each vocabulary word does to the integrated evidence.

    ``V`` words, ``d'`` real mode coordinates, ``C`` classes. Inputs are taken relative
    to the expansion input: ``x_w − x*``. The effects at the reference point are ``None``
    (correlations nan) when there is no reference point (no slow point).

    Attributes:
      words: ``(V,)`` the vocabulary.
      input_star: ``(M,)`` the expansion input ``x*``.
      mode_projections: ``(V, d')`` the push ``L_d J_inp (x_w − x*)`` on the real basis
        of the top ``d`` modes at the reference point (``Geometry.mode_right``).
      logit_effects: ``(V, C)`` the logit change the slow modes keep,
        ``W̃ R_d L_d J_inp (x_w − x*)``.
      readout_projections: ``(V, C)`` the direct effect ``W̃ J_inp (x_w − x*)``.
      correlation: Pearson r of ``logit_effects`` and the bag-of-words weights over the
        words seen in its training data.
      readout_correlation: the same for ``readout_projections``.
      drift: ``(C,)`` ``Σ_w p_w logit_effects_w``: the logit change per token of an
        average text (``p_w`` word frequencies); first-order effects add up over a
        document, so a non-zero drift is a length-dependent bias; it vanishes when
        ``x*`` is the frequency-weighted mean embedding.
      frequency_correlation: Pearson r of ``|logit_effects|`` with ``log(count)`` over
        seen words (high: effects follow frequency rather than meaning).
      trajectory_effects: ``(V, C)`` the word's first-order effect on the final logits
        of a document of ``trajectory_length`` tokens, averaged over its positions:
        ``mean_t ∂logits/∂x_t (x_w − x*)`` at the sequence ``x* x* ...`` from ``h0`` (the
        word effects of the trajectory linearisation; no reference point needed).
      trajectory_correlation: Pearson r of ``trajectory_effects`` and the bag of words.
      trajectory_length: the document length used (median of the training lengths).
    """

    words: tuple
    input_star: np.ndarray
    mode_projections: Any
    logit_effects: Any
    readout_projections: Any
    correlation: float
    readout_correlation: float
    drift: Any
    frequency_correlation: float
    trajectory_effects: np.ndarray
    trajectory_correlation: float
    trajectory_length: int


def word_effects(
    model: Classifier,
    params: Any,
    reference: Reference | None,
    geo: Geometry,
    baseline: Baseline,
    x_star: np.ndarray,
    *,
    vocab: tuple,
    length: int,
) -> WordEffects:
    """Word effects at the reference point and along the trajectory, against the bag of
    words."""
    emb = np.asarray(params["embedding"], np.float64)
    x_star = np.asarray(x_star, np.float64)
    inputs = emb - x_star
    bow_w, counts = baseline.weights, baseline.counts
    seen = counts > 0
    along = inputs @ trajectory_gain(model, params, x_star, length).T
    out: dict[str, Any] = dict(mode_projections=None, logit_effects=None,
                               readout_projections=None, drift=None)  # fmt: skip
    nan = float("nan")
    corr = readout_corr = freq_corr = nan
    if reference is not None and geo.mode_right is not None:
        modes = RealModes(geo.mode_values, geo.mode_right, geo.mode_left, None)
        readout = readout_in_state_space(model, params, reference.point)
        effects = wd.logit_effects(readout, modes, reference.j_inp, inputs)
        direct = wd.readout_projections(readout, reference.j_inp, inputs)
        freq = counts / max(counts.sum(), 1.0)
        out = dict(
            mode_projections=wd.mode_projections(modes, reference.j_inp, inputs),
            logit_effects=effects, readout_projections=direct, drift=freq @ effects,
        )  # fmt: skip
        corr = safe_correlation(effects[seen], bow_w[seen])
        readout_corr = safe_correlation(direct[seen], bow_w[seen])
        size = np.linalg.norm(effects, axis=1)
        freq_corr = safe_correlation(size[seen], np.log(counts[seen]))
    return WordEffects(
        words=tuple(vocab) or tuple(map(str, range(model.vocab_size))),
        input_star=x_star,
        correlation=corr,
        readout_correlation=readout_corr,
        frequency_correlation=freq_corr,
        trajectory_effects=along,
        trajectory_correlation=safe_correlation(along[seen], bow_w[seen]),
        trajectory_length=int(length),
        **out,
    )


def trajectory_gain(model: Classifier, params: Any, x_star: np.ndarray, length: int):
    """``(C, M)``: the final logits' gradient with respect to each input of the sequence
    ``x*`` repeated ``length`` times from ``h0``, averaged over the positions (centred
    over classes for softmax classifiers)."""

    dtype = jnp.result_type(jnp.float32, *jax.tree_util.tree_leaves(params["cell"]))
    xs = jnp.tile(jnp.asarray(x_star, dtype), (length, 1))
    gain = np.asarray(_input_jacobian(model, params, xs), np.float64).mean(axis=1)
    return centre_classes(gain.T, model.multilabel).T


# compiled once per model (op by op, the Jacobian of a scan compiled a dozen programs)
@functools.partial(jax.jit, static_argnums=0)
def _input_jacobian(model: Classifier, params: Any, xs: jax.Array) -> jax.Array:
    """``(C, T, M)``: the final logits' gradient with respect to each input of ``xs``."""

    def logits(xs):
        step = lambda h, x: (model.cell(params["cell"], h, x), None)  # noqa: E731
        return model.readout(params, jax.lax.scan(step, model.cell.initial_state(), xs)[0])

    return jax.jacrev(logits)(xs)
