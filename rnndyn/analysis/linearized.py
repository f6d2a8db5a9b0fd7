"""Stage: the linearised classifier next to the network (``linearized``)."""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp
import numpy as np

from rnndyn._records import record
from rnndyn.analysis._common import bin_means, same_prediction
from rnndyn.analysis.network import NetworkRun
from rnndyn.data.dataset import check_dataset, pad_batch
from rnndyn.linearize import Linearization, run_linearized, run_trajectory
from rnndyn.models import Classifier

__all__ = ["LinearizedAccuracy", "linearized", "linearized_accuracy", "linearized_logits"]


@record
class LinearizedAccuracy:
    """The linearised classifier next to the full network, with diagnostics.

    Accuracies at the reference point (``initial``, ``recentred``, ``agreement``,
    ``nearest`` and their per-class / per-length parts) are nan without a slow point.

    Attributes:
      full: accuracy of the trained network.
      initial: linear dynamics around the reference point.
      nearest: piecewise-linear dynamics, re-linearised at each step around the analysed
        point nearest the current state.
      trajectory: dynamics linearised along the network's own trajectory from ``h0``
        under the constant input ``x*`` (``linearize.run_trajectory``): first order in
        the words' deviations from ``x*``; it also covers the transient from the initial
        state to the manifold, which no single expansion point describes.
      trajectory_agreement: fraction of examples where ``trajectory`` predicts what the
        network does.
      recentred: ``initial`` with a per-class logit offset (the mean full-minus-linear
        logit on held-out selection examples): how much of the gap is a constant bias.
      agreement: fraction of examples where ``initial`` predicts what the network does.
      num_examples: examples scored.
      full_predicted, linearized_predicted: ``(C,)`` fraction predicted as each class
        (multi-label: labels predicted on); binary ``[1]`` is "predicted positive".
      class_full, class_linearized: ``(C,)`` accuracy per true class (multi-label: per
        label).
      length_edges: ``(B + 1,)`` token-count bin edges (quantiles of the lengths); bin
        ``b`` holds ``edges[b] <= length < edges[b + 1]`` (last bin closed).
      length_counts: ``(B,)`` examples per bin.
      length_full, length_linearized, length_trajectory: ``(B,)`` accuracies per bin.
    """

    full: float
    initial: float
    nearest: float
    recentred: float
    agreement: float
    num_examples: int
    full_predicted: np.ndarray
    linearized_predicted: np.ndarray
    class_full: np.ndarray
    class_linearized: np.ndarray
    length_edges: np.ndarray
    length_counts: np.ndarray
    length_full: np.ndarray
    length_linearized: np.ndarray
    trajectory: float
    trajectory_agreement: float
    length_trajectory: np.ndarray


def linearized(
    model: Classifier,
    params: Any,
    data: Any,
    lin: Linearization,
    reference: int | None,
    run: NetworkRun,
    x_star: Any,
    *,
    batch_size: int,
    selection: tuple[Any, np.ndarray, np.ndarray] | None = None,
    num_bins: int = 4,
) -> LinearizedAccuracy:
    """Accuracy of the linearised classifiers and where they depart from the network.

    Args:
      lin: the linearisation at the analysed points (may be empty).
      reference: index of the reference point in ``lin`` (``None``: none).
      x_star: ``(M,)`` the expansion input of the trajectory model.
      selection: ``(dataset, index, full logits)`` of held-out examples on which the
        per-class logit offset of ``recentred`` is measured (``None``: nan).
      num_bins: length bins (quantiles of the scored examples' lengths).
    """
    kw = dict(index=run.index, batch_size=batch_size)
    trajectory = linearized_logits(model, params, data, x_star=x_star, **kw)
    n, c = run.logits.shape
    nan_logits = np.full((n, c), np.nan)
    logits, nearest = nan_logits, nan_logits
    if reference is not None:
        ref_lin = select_points(lin, [reference])
        logits = linearized_logits(model, params, data, lin=ref_lin, switch="initial", **kw)
        nearest = linearized_logits(model, params, data, lin=lin, switch="nearest", **kw)

    def correct(lg):
        return np.asarray(model.correct(jnp.asarray(lg), jnp.asarray(run.labels)), np.float64)

    recentred = float("nan")
    if selection is not None and reference is not None:
        sel_data, sel_index, sel_full = selection
        sel_lin = linearized_logits(model, params, sel_data, lin=ref_lin, switch="initial",
                                    index=sel_index, batch_size=batch_size)  # fmt: skip
        recentred = float(np.mean(correct(logits + np.mean(sel_full - sel_lin, axis=0))))
    predict = lambda lg: np.asarray(model.predict_logits(jnp.asarray(lg)))  # noqa: E731
    full_pred, traj_pred = predict(run.logits), predict(trajectory)
    lin_pred = predict(logits) if reference is not None else None
    edges = np.unique(np.quantile(run.lengths, np.linspace(0, 1, num_bins + 1)).round())
    if len(edges) < 2:  # all examples equally long: one bin
        edges = np.array([edges[0], edges[0] + 1])
    bins = np.clip(np.searchsorted(edges, run.lengths, side="right") - 1, 0, len(edges) - 2)
    full_c, traj_c = correct(run.logits), correct(trajectory)
    lin_c = correct(logits) if reference is not None else np.full(n, np.nan)
    nan = float("nan")
    none_c = np.full(model.num_classes, np.nan)
    return LinearizedAccuracy(
        full=run.accuracy,
        initial=float(np.mean(lin_c)),
        nearest=float(np.mean(correct(nearest))) if reference is not None else nan,
        trajectory=float(np.mean(traj_c)),
        trajectory_agreement=same_prediction(full_pred, traj_pred),
        recentred=recentred,
        agreement=same_prediction(full_pred, lin_pred) if lin_pred is not None else nan,
        num_examples=len(run.index),
        full_predicted=_class_fractions(model, full_pred),
        linearized_predicted=_class_fractions(model, lin_pred) if lin_pred is not None
        else none_c,
        class_full=_per_class(model, full_pred, run.labels),
        class_linearized=_per_class(model, lin_pred, run.labels) if lin_pred is not None
        else none_c,
        length_edges=edges.astype(np.float64),
        length_counts=np.bincount(bins, minlength=len(edges) - 1),
        length_full=bin_means(full_c, bins, len(edges) - 1),
        length_linearized=bin_means(lin_c, bins, len(edges) - 1),
        length_trajectory=bin_means(traj_c, bins, len(edges) - 1),
    )  # fmt: skip


def select_points(lin: Linearization, rows: Any) -> Linearization:
    """The linearisation at the points ``rows`` (indices) of ``lin``, gathered on the host
    (a device gather would compile a program per array shape)."""
    rows = np.asarray(rows)
    return Linearization(*(jnp.asarray(np.asarray(a)[rows]) for a in lin))


def _class_fractions(model, pred) -> np.ndarray:
    if model.multilabel:
        return pred.mean(0).astype(np.float64)
    return np.bincount(pred, minlength=model.num_classes) / max(len(pred), 1)


def _per_class(model, pred, labels) -> np.ndarray:
    if model.multilabel:
        return (pred == labels).mean(0).astype(np.float64)
    hit = (pred == labels).astype(np.float64)
    return bin_means(hit, np.asarray(labels), model.num_classes)


def linearized_logits(
    model, params, data, *, index, batch_size, lin=None, switch="initial", x_star=None
) -> np.ndarray:
    """``(n, C)`` logits of a linearised model on ``data[index]``: with ``x_star``
    (``(M,)``), along the trajectory under that input (``run_trajectory``); else
    ``run_linearized(lin, ..., switch=switch)``.
    """
    h0 = model.cell.initial_state()
    emb = params["embedding"]
    out = []
    for start in range(0, len(index), batch_size):
        rows = index[start : start + batch_size]
        batch = pad_batch(data, rows, batch_size)
        xs = emb[jnp.asarray(batch["tokens"])]
        if x_star is not None:
            hs = run_trajectory(model.cell, params["cell"], jnp.asarray(x_star), xs, batch["mask"])
        else:
            hs = run_linearized(lin, h0, xs, batch["mask"], switch=switch)
        out.append(np.asarray(model.readout(params, hs[:, -1]), np.float64)[: len(rows)])
    return np.concatenate(out)


def linearized_accuracy(
    model: Classifier,
    params: Any,
    data: Any,
    lin: Linearization,
    *,
    switch: str = "initial",
    index: Any = None,
    batch_size: int = 256,
) -> float:
    """Accuracy of the linearised classifier on ``data``.

    Each example runs ``run_linearized(lin, h0, embedded tokens, mask, switch=switch)``
    from the model's initial state ``h0``; its final state goes through the model's
    readout. Multi-label accuracy is the mean per-label accuracy, as in
    ``rnndyn.train.evaluate``.

    Args:
      model, params: the trained classifier.
      data: a ``rnndyn.data.Dataset``.
      lin: a ``Linearization`` of ``model.cell`` (e.g. at its fixed points).
      switch: ``"initial"`` or ``"nearest"`` (see ``run_linearized``), or
        ``"trajectory"``: along the trajectory from ``h0`` under the input of ``lin``'s
        first point (see ``linearize.run_trajectory``).
      index: optional example indices (default: all).
      batch_size: examples per batch.

    Returns:
      The fraction correct.
    """
    check_dataset(model, data, "data")
    if not isinstance(lin, Linearization):
        raise ValueError(f"lin must be a Linearization, got {type(lin).__name__}")
    if lin.points.shape[1] != model.cell.state_size:
        raise ValueError(
            f"lin.points has shape {tuple(lin.points.shape)}; expected (K, "
            f"{model.cell.state_size}) for this model's cell"
        )
    index = np.arange(len(data.lengths)) if index is None else np.asarray(index)
    batch_size = max(1, min(batch_size, len(index)))
    x_star = lin.inputs[0] if switch == "trajectory" else None
    logits = linearized_logits(model, params, data, lin=lin, switch=switch, x_star=x_star,
                               index=index, batch_size=batch_size)  # fmt: skip
    labels = np.asarray(data.labels)[index]
    return float(np.mean(np.asarray(model.correct(jnp.asarray(logits), jnp.asarray(labels)))))
