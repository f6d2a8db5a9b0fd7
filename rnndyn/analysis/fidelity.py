"""Stage: how faithful the linearisation is, measured as study A measured it.

Study A (Maheswaranathan et al. 2019) reports: one step predicted from the nearest fixed
point has a relative error ``‖h_full − h_lin‖ / ‖h_full‖`` of about 10%; iterated over a
whole document the errors accumulate and the linearised classifier is "much worse" than
the network. ``fidelity`` measures the same along real trajectories, with the slow points
as expansion points, and goes past it: the error after ``k`` iterated steps, and a
nonlinearity curve (the words' deviations from ``x*`` scaled by ``ε``: the trajectory
linearisation is exact to first order, so agreement at small ``ε`` and its fall as
``ε → 1`` say how nonlinear the network is in its inputs).
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from rnndyn._records import record
from rnndyn.analysis._common import centre_classes, same_prediction
from rnndyn.data.dataset import pad_batch
from rnndyn.linearize import Linearization, run_trajectory
from rnndyn.models import Classifier

__all__ = ["STUDY_ONE_STEP_ERROR", "Fidelity", "fidelity"]

#: Study A's one-step relative error at the nearest fixed point (§4.6, Fig. 5).
STUDY_ONE_STEP_ERROR = 0.10
#: Iterated steps at which the error is measured.
ITERATED_STEPS = (1, 2, 4, 8, 16, 32, 64)
#: Scales of the words' deviations from ``x*`` for the nonlinearity curve.
EPSILONS = (0.05, 0.1, 0.2, 0.35, 0.5, 0.75, 1.0)
_QUANTILES = (0.1, 0.25, 0.5, 0.75, 0.9)
_MAX_DOCS = 64  # documents whose transitions are sampled
_MAX_PAIRS = 4000  # transitions for the one-step error
_CURVE_DOCS = 256  # documents for the nonlinearity curve: agreement to about ±3%


@record
class Fidelity:
    """The linearisation's error along real trajectories (nan without slow points).

    Attributes:
      one_step: ``(n,)`` relative errors ``‖h_t − h_lin‖ / ‖h_t‖`` of single steps from
        real states ``h_{t−1}`` with real words, linearised at the slow point nearest
        ``h_{t−1}``.
      one_step_median: their median (study A: about ``STUDY_ONE_STEP_ERROR``).
      one_step_quantiles: ``(5,)`` at 0.1, 0.25, 0.5, 0.75, 0.9.
      steps: ``(k,)`` iterated steps; iterated: ``(k,)`` median relative error after that
        many steps of the linear model (expanded at the slow point nearest the start).
      epsilons: ``(e,)`` scales; agreement: ``(e,)`` fraction of documents where the
        trajectory linearisation predicts what the network does on the scaled inputs
        ``x* + ε (x − x*)`` (the first ``_CURVE_DOCS`` of ``index``); logit_correlation:
        ``(e,)`` Pearson r of their (centred) logits.
    """

    one_step: np.ndarray
    one_step_median: float
    one_step_quantiles: np.ndarray
    steps: np.ndarray
    iterated: np.ndarray
    epsilons: np.ndarray
    agreement: np.ndarray
    logit_correlation: np.ndarray


def fidelity(
    model: Classifier,
    params: Any,
    data: Any,
    index: np.ndarray,
    lin: Linearization,
    x_star: Any,
    *,
    rng: np.random.Generator,
    batch_size: int = 256,
) -> Fidelity:
    """Study A's measurements of the linearisation on ``data[index]`` (module docstring)."""
    docs = index[rng.permutation(len(index))[:_MAX_DOCS]]
    batch = pad_batch(data, docs, len(docs))
    hs = np.asarray(model.states(params, batch["tokens"], batch["mask"]), np.float64)
    xs = np.asarray(params["embedding"], np.float64)[batch["tokens"]]
    lengths = np.asarray(data.lengths)[docs]
    h0 = np.asarray(model.cell.initial_state(), np.float64)
    prev = np.concatenate([np.broadcast_to(h0, (len(docs), 1, h0.size)), hs[:, :-1]], axis=1)
    nan = np.full(len(ITERATED_STEPS), np.nan)
    one, iterated = np.zeros(0), nan
    if len(lin.points):
        j = _Jacobians(lin)
        b, t = np.nonzero(np.arange(hs.shape[1])[None, :] < lengths[:, None])
        pick = rng.permutation(len(b))[:_MAX_PAIRS]
        b, t = b[pick], t[pick]
        one = _relative(hs[b, t], j.predict(prev[b, t], xs[b, t]))
        iterated = _iterated(j, hs, prev, xs, lengths, rng)
    agree, corr = _nonlinearity(model, params, data, index, np.asarray(x_star), batch_size)
    with np.errstate(invalid="ignore"):
        quant = np.quantile(one, _QUANTILES) if one.size else np.full(len(_QUANTILES), np.nan)
    return Fidelity(
        one_step=one, one_step_median=float(quant[2]), one_step_quantiles=quant,
        steps=np.asarray(ITERATED_STEPS), iterated=iterated, epsilons=np.asarray(EPSILONS),
        agreement=agree, logit_correlation=corr,
    )  # fmt: skip


def _relative(full: np.ndarray, lin: np.ndarray) -> np.ndarray:
    return np.linalg.norm(full - lin, axis=-1) / np.maximum(np.linalg.norm(full, axis=-1), 1e-12)


class _Jacobians:
    """The linear models of ``lin`` in float64, by nearest expansion point."""

    def __init__(self, lin: Linearization):
        self.points = np.asarray(lin.points, np.float64)
        self.inputs = np.asarray(lin.inputs, np.float64)
        self.j_rec = np.asarray(lin.j_rec, np.float64)
        self.j_inp = np.asarray(lin.j_inp, np.float64)

    def nearest(self, h: np.ndarray) -> np.ndarray:
        d2 = np.sum(h**2, 1)[:, None] - 2 * h @ self.points.T + np.sum(self.points**2, 1)
        return np.argmin(d2, axis=1)

    def predict(self, h: np.ndarray, x: np.ndarray, k: np.ndarray | None = None) -> np.ndarray:
        """One step ``h* + J (h − h*) + J_inp (x − x*)`` per row, expanded at ``k`` (default:
        the point nearest each ``h``)."""
        k = self.nearest(h) if k is None else k
        out = np.empty_like(h)
        for point in np.unique(k):
            rows = k == point
            dh, dx = h[rows] - self.points[point], x[rows] - self.inputs[point]
            out[rows] = self.points[point] + dh @ self.j_rec[point].T + dx @ self.j_inp[point].T
        return out


def _iterated(j: _Jacobians, hs, prev, xs, lengths, rng) -> np.ndarray:
    """Median relative error after ``k`` iterated linear steps from a real state."""
    out = []
    for k in ITERATED_STEPS:
        ok = np.flatnonzero(lengths >= k)
        if ok.size == 0:
            out.append(np.nan)
            continue
        starts = np.asarray([rng.integers(0, lengths[b] - k + 1) for b in ok])
        h = prev[ok, starts]
        point = j.nearest(h)
        for step in range(k):
            h = j.predict(h, xs[ok, starts + step], point)
        out.append(float(np.median(_relative(hs[ok, starts + k - 1], h))))
    return np.asarray(out)


def _nonlinearity(model, params, data, index, x_star, batch_size):
    """Agreement and logit correlation of the network and its trajectory linearisation
    on inputs ``x* + ε (x − x*)``, for each ``ε``."""
    emb = np.asarray(params["embedding"], np.float32)
    docs = index[:_CURVE_DOCS]
    agree, corr = [], []
    for eps in EPSILONS:
        full, lin = [], []
        for start in range(0, len(docs), batch_size):
            batch = pad_batch(data, docs[start : start + batch_size], batch_size)
            xs = x_star + eps * (emb[batch["tokens"]] - x_star)
            mask = jnp.asarray(batch["mask"])
            n = len(docs[start : start + batch_size])
            full.append(np.asarray(_final_logits(model, params, jnp.asarray(xs), mask))[:n])
            hs = run_trajectory(model.cell, params["cell"], jnp.asarray(x_star, jnp.float32),
                                jnp.asarray(xs), mask)  # fmt: skip
            lin.append(np.asarray(model.readout(params, hs[:, -1]))[:n])
        full, lin = np.concatenate(full), np.concatenate(lin)
        pred = lambda lg: np.asarray(model.predict_logits(jnp.asarray(lg)))  # noqa: E731
        agree.append(same_prediction(pred(full), pred(lin)))
        a = centre_classes(full, model.multilabel).ravel()
        b = centre_classes(lin, model.multilabel).ravel()
        corr.append(float(np.corrcoef(a, b)[0, 1]) if np.std(a) > 0 and np.std(b) > 0
                    else float("nan"))  # fmt: skip
    return np.asarray(agree), np.asarray(corr)


@functools.partial(jax.jit, static_argnums=0)
def _final_logits(model: Classifier, params: Any, xs: jax.Array, mask: jax.Array):
    """Logits ``(B, C)`` of the network on embedded inputs ``xs (B, T, M)``."""
    step = jax.vmap(lambda h, x: model.cell(params["cell"], h, x))

    def body(h, inp):
        x, m = inp
        return jnp.where(m[:, None], step(h, x), h), None

    h0 = model.cell.initial_state((xs.shape[0],))
    h = lax.scan(body, h0, (jnp.swapaxes(xs, 0, 1), mask.T))[0]
    return model.readout(params, h)
