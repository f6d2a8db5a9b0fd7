"""One-call reverse engineering of a trained classifier: ``rnndyn.analyze``.

``analyze(model, data, params, key=...)`` runs the whole study on a trained
``Classifier``:

1. hidden states of ``data`` (the visited states) and the full model's accuracy;
2. slow / fixed points at zero input, started from visited states;
3. Jacobians and eigendecompositions at every kept point (slow modes, time constants);
4. the manifold's dimension (PCA of the visited states, as in Aitken et al. 2021, and of
   the fixed points, as in Maheswaranathan et al. 2019) and geometry: its principal
   directions against the readout and the top right eigenvectors, the top right
   eigenvector against the local tangent of the fixed points;
5. word effects at the point nearest the initial state: ``l_i · J_inp · x_w`` on the
   slow modes, the logit changes they imply, and their correlation with a bag-of-words
   logistic regression's word weights;
6. the accuracy of the linearised dynamics next to the full model's;
7. the dimension predicted from word counts alone (``manifold.predict_dimension``).

The result, ``Analysis``, is an immutable record of numpy arrays that converts to JSON
(``to_dict`` / ``to_json``). Everything here is host-side orchestration of the jitted
building blocks; randomness comes only from ``key``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import sys
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from rnndyn import _checks
from rnndyn import manifold as mf
from rnndyn.fixed_points import FixedPoints, find_fixed_points, sample_states
from rnndyn.linearize import (
    Linearization,
    eig,
    linearization,
    nearest_point,
    run_linearized,
    time_constants,
)
from rnndyn.models import Classifier
from rnndyn.train import Checkpoint, _batch, _check_data, describe_model, load_checkpoint

Array = jax.Array

__all__ = [
    "Analysis",
    "LinearizedAccuracy",
    "WordEffects",
    "analyze",
    "linearized_accuracy",
    "readout_in_state_space",
]

#: Visited states used for the state-space PCA (a random subset beyond this).
MAX_PCA_STATES = 20_000
#: Visited states kept in memory for sampling initial states (a random subset beyond).
MAX_VISITED_STATES = 100_000


@dataclasses.dataclass(frozen=True)
class WordEffects:
    """What each vocabulary word does to the integrated evidence.

    ``V`` words, ``d`` slow modes, ``C`` classes (or labels).

    Attributes:
      words: ``(V,)`` the vocabulary.
      counts: ``(V,)`` occurrences of each word in the data the baseline was fit on.
      reference_point: index (into ``Analysis.fixed_points``) of the point the
        linearisation is taken at: the one nearest the initial state.
      mode_projections: ``(V, d)`` ``l_i · J_inp · x_w`` on the top ``d`` left
        eigenvectors; each mode's sign is chosen so that moving along its right
        eigenvector raises the logit it changes most (for two classes: the second, e.g.
        "positive"). Real parts if a mode is complex.
      logit_effects: ``(V, C)`` the logit change the slow modes carry,
        ``W̃ R_d (L_d J_inp x_w)`` with ``W̃`` the centred readout in state space.
      readout_projections: ``(V, C)`` the direct effect ``W̃ J_inp x_w`` (all modes).
      bow_weights: ``(V, C)`` the bag-of-words logistic regression's weights, centred
        over classes for softmax (multi-label: as fitted).
      bow_accuracy: the baseline's accuracy on the data it was fit on.
      correlation: Pearson correlation of ``logit_effects`` and ``bow_weights`` over the
        words that occur (all classes pooled).
      readout_correlation: the same for ``readout_projections``.
    """

    words: tuple[str, ...]
    counts: np.ndarray
    reference_point: int
    mode_projections: np.ndarray
    logit_effects: np.ndarray
    readout_projections: np.ndarray
    bow_weights: np.ndarray
    bow_accuracy: float
    correlation: float
    readout_correlation: float


@dataclasses.dataclass(frozen=True)
class LinearizedAccuracy:
    """Accuracy of the full network and of its linearisations on the same examples.

    Attributes:
      full: the trained network.
      initial: linear dynamics around the fixed point nearest the initial state.
      nearest: piecewise-linear dynamics, re-linearised at each step around the fixed
        point nearest the current state.
      num_examples: how many examples were scored.
    """

    full: float
    initial: float
    nearest: float
    num_examples: int


@dataclasses.dataclass(frozen=True)
class Analysis:
    """Everything ``analyze`` measured. ``K`` kept points, ``S`` state size.

    Attributes:
      model: description of the classifier (cell, sizes, classes).
      dataset: name of the analysed dataset.
      num_candidates: initial states of the fixed-point search.
      num_converged: candidates whose speed fell below the tolerance.
      fixed_points: the ``K`` kept points (converged, de-duplicated, outliers dropped).
      eigenvalues: ``(K, S)`` complex eigenvalues of ``J_rec``, by modulus, descending.
      time_constants: ``(K, S)`` ``τ = 1 / |log|λ||`` in steps.
      slow_modes: ``(K,)`` modes with ``| |λ| − 1 | <= slow_tol`` per point.
      slow_tol: the tolerance used for ``slow_modes``.
      line_attractor_score: ``(K,)`` ``log2(τ1 / τ2)``.
      manifold_dimension: the measured dimension ``d``: #principal components of the
        visited hidden states ``cell.output(state)`` (``h``; for an LSTM not ``c``)
        reaching ``threshold`` of their variance (unless given; capped at ``K − 1``).
      threshold: the variance fraction of that rule.
      fixed_point_dimension: ``manifold.Dimension`` of the fixed points (full state).
      state_dimension: ``manifold.Dimension`` of the visited hidden states (as above).
      manifold_basis: ``(d, S)`` principal directions of the visited full states.
      output_basis: ``(d, N)`` principal directions of the visited hidden states (the
        readout's input: the state itself, ``h`` for an LSTM).
      readout: ``(C, N)`` readout rows ``W^T`` (centred over classes for softmax: a
        shift shared by all logits changes nothing).
      readout_alignment: ``(C, d)`` ``|cos|`` of each readout row with each direction of
        ``output_basis``.
      readout_overlap: mean squared cosine of the principal angles between the readout
        rows' span and ``output_basis`` (1: the readout lies in the manifold).
      readout_eigen_alignment: ``(C, d)`` ``|cos|`` of each readout row with the top
        ``d`` right eigenvectors (real parts, through ``∂output/∂h``) at the reference
        point; nan for a mode invisible to the readout.
      tangent_alignment: ``(K,)`` ``‖P v‖ / ‖v‖`` of each point's top right eigenvector
        ``v`` on the local ``d``-dimensional tangent space of the points.
      reference_distance: ``‖h0 − h*‖`` from the initial state to the reference point
        (the fixed point nearest it). Large values mean no fixed point is near where
        documents start, and the ``initial`` linearisation cannot be accurate.
      word_effects: ``WordEffects`` at the reference point.
      linearized: ``LinearizedAccuracy``.
      prediction: ``manifold.DimensionPrediction`` from the word counts of ``train_data``.
      seconds: wall-clock time of the analysis.
    """

    model: dict
    dataset: str
    num_candidates: int
    num_converged: int
    fixed_points: FixedPoints
    eigenvalues: np.ndarray
    time_constants: np.ndarray
    slow_modes: np.ndarray
    slow_tol: float
    line_attractor_score: np.ndarray
    manifold_dimension: int
    threshold: float
    fixed_point_dimension: mf.Dimension
    state_dimension: mf.Dimension
    manifold_basis: np.ndarray
    output_basis: np.ndarray
    readout: np.ndarray
    readout_alignment: np.ndarray
    readout_overlap: float
    readout_eigen_alignment: np.ndarray
    tangent_alignment: np.ndarray
    reference_distance: float
    word_effects: WordEffects
    linearized: LinearizedAccuracy
    prediction: mf.DimensionPrediction
    seconds: float

    def to_dict(self) -> dict:
        """JSON-ready nested dict: arrays become lists, complex numbers
        ``{"real": ..., "imag": ...}``, non-finite floats the strings ``"inf"``,
        ``"-inf"``, ``"nan"``."""
        out = {}
        for field in dataclasses.fields(self):
            out[field.name] = _jsonable(getattr(self, field.name))
        return out

    def to_json(self, path: str | os.PathLike | None = None, *, indent: int | None = 1) -> str:
        """The ``to_dict`` record as JSON text; also written to ``path`` if given."""
        text = json.dumps(self.to_dict(), indent=indent, allow_nan=False)
        if path is not None:
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)
        return text

    def summary(self) -> str:
        """A few human-readable lines of the headline numbers."""
        lam = np.abs(self.eigenvalues[:, 0])
        fpd, sd, pred, lin = (
            self.fixed_point_dimension,
            self.state_dimension,
            self.prediction,
            self.linearized,
        )
        return "\n".join(
            [
                f"{self.model.get('cell', '?')} on {self.dataset}: "
                f"{len(self.fixed_points)} fixed points kept "
                f"({self.num_converged}/{self.num_candidates} converged)",
                f"manifold dimension {self.manifold_dimension} (fixed points: PCs to 90% "
                f"{fpd.pca90}, 95% {fpd.pca95}, PR {fpd.participation_ratio:.2f}; "
                f"states: {sd.pca90}/{sd.pca95}, PR {sd.participation_ratio:.2f}); "
                f"predicted from word counts {pred.dimension} (PR {pred.participation_ratio:.2f})",
                f"top |λ| median {np.median(lam):.4f}; slow modes per point median "
                f"{np.median(self.slow_modes):.0f}",
                f"readout overlap with the manifold {self.readout_overlap:.3f}; "
                f"top right eigenvector tangent alignment median "
                f"{np.median(self.tangent_alignment):.3f}",
                f"word effects vs bag-of-words: r = {self.word_effects.correlation:.3f}",
                f"accuracy: full {lin.full:.4f}, linearised around the initial point "
                f"{lin.initial:.4f} (it lies {self.reference_distance:.3g} from h0), around "
                f"the nearest point {lin.nearest:.4f}",
            ]
        )


def _jsonable(x: Any) -> Any:
    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        return {f.name: _jsonable(getattr(x, f.name)) for f in dataclasses.fields(x)}
    if isinstance(x, tuple) and hasattr(x, "_fields"):  # NamedTuple
        return {k: _jsonable(v) for k, v in zip(x._fields, x, strict=True)}
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, (jax.Array, np.ndarray, np.generic)):
        arr = np.asarray(x)
        if arr.dtype.kind == "c":
            return {"real": _jsonable(arr.real), "imag": _jsonable(arr.imag)}
        if arr.dtype.kind == "f":  # through the float branch: non-finite values
            return _jsonable(arr.astype(np.float64).tolist())
        return arr.tolist()
    if isinstance(x, float):
        if math.isfinite(x):
            return x
        return "nan" if math.isnan(x) else ("inf" if x > 0 else "-inf")
    return x


def readout_in_state_space(model: Classifier, params: Any, state: Array) -> np.ndarray:
    """Readout rows ``(C, S)`` as directions in the cell's state space.

    ``logits = W^T output(h) + b``; the rows are ``W^T ∂output/∂h`` at ``state``
    (``output`` is the identity for most cells and ``h ↦ h[:N]`` for the LSTM). For
    softmax classifiers the rows are centred over classes: adding the same vector to
    every row changes no prediction.
    """
    j_out = jax.jacobian(model.cell.output)(jnp.asarray(state, jnp.float32))
    return _readout_rows(model, params) @ np.asarray(j_out, np.float64)


def _readout_rows(model: Classifier, params: Any) -> np.ndarray:
    """``W^T (C, N)``, centred over classes for softmax (a shared shift changes nothing)."""
    rows = np.asarray(params["readout"]["W"], np.float64).T
    if not model.multilabel:
        rows = rows - rows.mean(axis=0, keepdims=True)
    return rows


def _log(verbose: bool, t0: float, message: str) -> None:
    if verbose:
        print(f"[analyze {time.perf_counter() - t0:6.1f}s] {message}", file=sys.stderr, flush=True)


def _resolve_model(model: Any, params: Any) -> tuple[Classifier, Any]:
    if isinstance(model, (str, os.PathLike)):
        model = load_checkpoint(model)
    if isinstance(model, Checkpoint):
        return model.model, model.params if params is None else params
    if not isinstance(model, Classifier):
        raise ValueError(
            "model must be an rnndyn.Classifier (with params), a Checkpoint or a checkpoint "
            f"directory, got {type(model).__name__}"
        )
    if params is None:
        raise ValueError("params is required when model is a Classifier")
    return model, params


def _states_and_accuracy(model, params, data, index, batch_size, rng):
    """Visited (non-padding) states ``(n, S)`` and the full model's accuracy.

    At most ``MAX_VISITED_STATES`` states are kept, each batch contributing its share
    (a uniform random subset), so memory does not grow with the dataset.
    """
    states, correct = [], []
    for start in range(0, len(index), batch_size):
        rows = index[start : start + batch_size]
        batch = _batch(data, rows, batch_size)
        logits, hs = model.apply(params, batch["tokens"], batch["mask"], return_states=True)
        n = len(rows)
        correct.append(np.asarray(model.correct(logits, batch["labels"]))[:n])
        real = np.asarray(hs)[:n][batch["mask"][:n]]
        share = max(1, -(-MAX_VISITED_STATES * n // len(index)))
        if len(real) > share:
            real = real[np.sort(rng.choice(len(real), share, replace=False))]
        states.append(real)
    return np.concatenate(states), float(np.mean(np.concatenate(correct)))


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
      switch: ``"initial"`` or ``"nearest"`` (see ``run_linearized``).
      index: optional example indices (default: all).
      batch_size: examples per batch.

    Returns:
      The fraction correct.
    """
    _check_data(model, data, "data")
    if not isinstance(lin, Linearization):
        raise ValueError(f"lin must be a Linearization, got {type(lin).__name__}")
    if lin.points.shape[1] != model.cell.state_size:
        raise ValueError(
            f"lin.points has shape {tuple(lin.points.shape)}; expected (K, "
            f"{model.cell.state_size}) for this model's cell"
        )
    index = np.arange(len(data.lengths)) if index is None else np.asarray(index)
    batch_size = max(1, min(batch_size, len(index)))
    h0 = model.cell.initial_state()
    emb = params["embedding"]
    correct = []
    for start in range(0, len(index), batch_size):
        rows = index[start : start + batch_size]
        batch = _batch(data, rows, batch_size)
        xs = emb[jnp.asarray(batch["tokens"])]
        hs = run_linearized(lin, h0, xs, batch["mask"], switch=switch)
        logits = model.readout(params, hs[:, -1])
        correct.append(np.asarray(model.correct(logits, batch["labels"]))[: len(rows)])
    return float(np.mean(np.concatenate(correct)))


def _sign_modes(readout: np.ndarray, right: np.ndarray) -> np.ndarray:
    """``+1/−1`` per mode so that moving along it raises the logit it moves most.

    Ties (a binary classifier's two centred rows are exact opposites) go to the later
    class, so a sentiment network's mode points towards "positive".
    """
    effect = readout @ right  # (C, d)
    signs = np.ones(right.shape[1])
    for i in range(right.shape[1]):
        mag = np.abs(effect[:, i])
        c = len(mag) - 1 - int(np.argmax(mag[::-1] >= mag.max() * (1 - 1e-6)))
        signs[i] = -1.0 if effect[c, i] < 0 else 1.0
    return signs


def analyze(
    model: Classifier | Checkpoint | str | os.PathLike,
    data: Any,
    params: Any = None,
    *,
    key: Array,
    train_data: Any = None,
    max_examples: int | None = 1000,
    num_initial: int = 1024,
    noise: float = 0.01,
    tol: float | None = None,
    max_steps: int = 5000,
    learning_rate: float = 1e-2,
    merge_tol: float = 1e-3,
    outlier_factor: float = 10.0,
    threshold: float = 0.9,
    manifold_dim: int | None = None,
    slow_tol: float = 0.02,
    neighbours: int | None = None,
    bow_steps: int = 500,
    batch_size: int = 256,
    verbose: bool = True,
) -> Analysis:
    """Reverse engineer a trained classifier on a dataset.

    Fixed points are searched at zero input (``x* = 0``, "no word") from ``num_initial``
    visited states plus Gaussian noise of scale ``noise``, with Adam until the speed
    ``q = ½‖F(h) − h‖² < tol`` (default ``S · 1e-8 / 2``: Maheswaranathan et al.'s
    per-dimension criterion ``(1/S)‖F(h) − h‖² < 1e-8``), and *without* Newton polish:
    polishing would pull the
    slow points that trace the manifold onto its few exact fixed points. Converged points
    are de-duplicated (``merge_tol``) and outliers dropped (``outlier_factor``).

    Args:
      model: a ``Classifier`` (then ``params`` is needed), a ``Checkpoint``, or a
        checkpoint directory.
      data: a ``rnndyn.data.Dataset`` (e.g. the test set): visited states, accuracies.
      params: the classifier's parameters (defaults to the checkpoint's).
      key: PRNG key for the example subset and the initial states.
      train_data: dataset whose word counts feed the bag-of-words baseline and the
        dimension prediction (default: ``data``).
      max_examples: analyse a random subset of at most this many examples of ``data``
        (``None``: all). Of their hidden states at most ``MAX_VISITED_STATES`` (a
        random subset) are kept, so memory stays bounded for long documents.
      num_initial, noise, tol, max_steps, learning_rate: fixed-point search settings
        (``tol`` on ``q``; ``None``: ``S · 1e-8 / 2`` for state size ``S``).
      merge_tol, outlier_factor: clean-up of the found points.
      threshold: variance fraction defining the manifold dimension (and prediction).
      manifold_dim: use this dimension instead of measuring it.
      slow_tol: ``| |λ| − 1 |`` below which a mode counts as slow.
      neighbours: neighbourhood size of the local tangent estimate (default
        ``max(2 d + 2, 10)``, capped at the number of points).
      bow_steps: optimiser steps of the bag-of-words fit.
      batch_size: examples per batch when running the network.
      verbose: print progress to stderr.

    Returns:
      ``Analysis``.

    Raises:
      ValueError: bad arguments or data that do not fit the model.
      RuntimeError: fewer than two fixed points survived (search too short or ``tol``
        too strict for this network).
    """
    t0 = time.perf_counter()
    model, params = _resolve_model(model, params)
    _checks.check_finite_params("params", jax.device_get(params))
    _check_data(model, data, "data")
    train_data = data if train_data is None else train_data
    if train_data is not data:
        _check_data(model, train_data, "train_data")
    for name, value in (("max_examples", max_examples), ("manifold_dim", manifold_dim)):
        if value is not None:
            _checks.check_int(name, value, minimum=1)
    k_subset, k_init, k_pca = jax.random.split(key, 3)

    n = len(data.lengths)
    index = np.arange(n)
    if max_examples is not None and n > max_examples:
        index = np.sort(np.asarray(jax.random.permutation(k_subset, n)[:max_examples]))
    batch_size = min(batch_size, len(index))

    # 1. visited states and the full model's accuracy
    rng = np.random.default_rng(np.asarray(jax.random.key_data(jax.random.fold_in(k_subset, 1))))
    visited, full_acc = _states_and_accuracy(model, params, data, index, batch_size, rng)
    _log(verbose, t0, f"{len(index)} examples, {len(visited)} visited states, acc {full_acc:.4f}")

    # 2. fixed points at zero input from visited states
    if tol is None:
        tol = 0.5e-8 * model.cell.state_size  # (1/S)‖F(h) − h‖² < 1e-8
    k_sample, k_search = jax.random.split(k_init)
    h0 = sample_states(jnp.asarray(visited), num_initial, k_sample, noise=noise)
    x_star = jnp.zeros((model.embed_size,), jnp.float32)
    found = find_fixed_points(
        model.cell,
        params["cell"],
        x_star,
        h0,
        key=k_search,
        tol=tol,
        max_steps=max_steps,
        learning_rate=learning_rate,
        polish_steps=0,
        verbose=verbose,
    )
    kept = found.keep_converged()
    if len(kept) >= 2:
        kept = kept.merge_duplicates(merge_tol).drop_outliers(outlier_factor)
    if len(kept) < 2:
        raise RuntimeError(
            f"only {len(kept)} distinct fixed point(s) kept of {len(found)} candidates "
            f"({found.num_converged} converged below tol={tol:.3g}); the manifold analysis "
            f"needs at least 2. If few converged, raise max_steps (now {max_steps}) or "
            "tol; if all converged to one point, the network has a single fixed point "
            "and no attractor manifold (is it trained?)"
        )
    _log(verbose, t0, f"{found.num_converged}/{len(found)} converged, {len(kept)} kept")

    # 3. linearisation and spectra
    lin = linearization(model.cell, params["cell"], kept.points, kept.inputs)
    eg = eig(lin.j_rec)
    values = np.asarray(eg.values)
    right = np.asarray(eg.right)
    left = np.asarray(eg.left)
    points = np.asarray(kept.points, np.float64)

    # 4. dimension and geometry
    fp_dim = mf.dimension(points)
    pca_states = visited.astype(np.float64)
    if len(pca_states) > MAX_PCA_STATES:
        pick = np.asarray(jax.random.choice(k_pca, len(visited), (MAX_PCA_STATES,), False))
        pca_states = pca_states[pick]
    # The hidden states the readout sees (h; for an LSTM not c, whose slow directions
    # can count tokens rather than evidence) define the measured dimension.
    out_states = jax.vmap(model.cell.output)(jnp.asarray(pca_states, jnp.float32))
    out_pca = mf.pca(np.asarray(out_states, np.float64))
    state_dim = mf.dimension(out_pca)
    if manifold_dim is None:
        d = max(mf.num_components(out_pca, threshold), 1)
    else:
        d = manifold_dim
    d = min(d, out_pca.components.shape[0], len(points) - 1)
    basis = mf.pca(pca_states).components[:d]
    h_init = np.asarray(model.cell.initial_state(), np.float64)
    ref = int(nearest_point(jnp.asarray(points), jnp.asarray(h_init)))
    w_out = _readout_rows(model, params)  # (C, N)
    j_out = np.asarray(
        jax.jacobian(model.cell.output)(jnp.asarray(points[ref], jnp.float32)), np.float64
    )
    readout = w_out @ j_out  # (C, S): readout_in_state_space at the reference point
    right_ref = right[ref][:, :d].real
    signs = _sign_modes(readout, right_ref)
    # Readout geometry lives where the readout looks: cell.output(h) (h itself except for
    # the LSTM, whose line attractor sits mostly in c while the readout sees only h).
    out_basis = out_pca.components[:d]
    out_modes = (j_out @ (right_ref * signs)).T  # (d, N)
    k_nb = neighbours if neighbours is not None else max(2 * d + 2, 10)
    k_nb = min(k_nb, len(points))
    if k_nb > d:
        tangent = mf.tangent_alignment(points, right[:, :, 0].real, manifold_dim=d, k=k_nb)
    else:  # too few points for a local estimate: use the global d-plane
        v = right[:, :, 0].real
        v = v / np.linalg.norm(v, axis=1, keepdims=True)
        tangent = np.linalg.norm(v @ basis.T, axis=1)
    _log(verbose, t0, f"manifold dimension {d}, reference point {ref}")

    # 5. word effects at the reference point
    emb = np.asarray(params["embedding"], np.float64)
    j_inp = np.asarray(lin.j_inp[ref], np.float64)
    modes = mf.word_projections(left[ref][:d], j_inp, emb)  # (V, d)
    logit_effects = (readout @ right[ref][:, :d] @ modes.T).real.T  # (V, C)
    modes = np.real(modes) * signs
    direct = mf.readout_projections(readout, j_inp, emb)
    tokens = np.asarray(train_data.tokens)
    real = np.arange(tokens.shape[1])[None, :] < np.asarray(train_data.lengths)[:, None]
    counts = np.bincount(tokens[real], minlength=model.vocab_size).astype(np.float64)
    bow = mf.fit_bag_of_words(
        train_data.tokens,
        train_data.labels,
        model.vocab_size,
        model.num_classes,
        lengths=train_data.lengths,
        multilabel=model.multilabel,
        steps=bow_steps,
    )
    bow_w = bow.weights if model.multilabel else bow.weights - bow.weights.mean(1, keepdims=True)
    seen = counts > 0
    words = WordEffects(
        words=tuple(getattr(train_data, "vocab", ())) or tuple(map(str, range(model.vocab_size))),
        counts=counts,
        reference_point=ref,
        mode_projections=modes,
        logit_effects=logit_effects,
        readout_projections=direct,
        bow_weights=bow_w,
        bow_accuracy=bow.accuracy,
        correlation=_safe_correlation(logit_effects[seen], bow_w[seen]),
        readout_correlation=_safe_correlation(direct[seen], bow_w[seen]),
    )
    _log(verbose, t0, f"word effects: r = {words.correlation:.3f} with bag-of-words")

    # 6. linearised accuracy
    lin_acc = {
        s: linearized_accuracy(
            model, params, data, lin, switch=s, index=index, batch_size=batch_size
        )
        for s in ("initial", "nearest")
    }
    linearized = LinearizedAccuracy(full_acc, lin_acc["initial"], lin_acc["nearest"], len(index))
    _log(verbose, t0, f"linearised accuracy {lin_acc['initial']:.4f} / {lin_acc['nearest']:.4f}")

    # 7. prediction from word counts
    prediction = mf.predict_dimension(
        train_data.tokens,
        train_data.labels,
        model.vocab_size,
        lengths=train_data.lengths,
        num_classes=model.num_classes,
        multilabel=model.multilabel,
        threshold=threshold,
    )
    result = Analysis(
        model=_describe(model),
        dataset=str(getattr(data, "name", "") or ""),
        num_candidates=len(found),
        num_converged=found.num_converged,
        fixed_points=jax.tree_util.tree_map(np.asarray, kept),
        eigenvalues=values,
        time_constants=np.asarray(time_constants(values)),
        slow_modes=np.asarray(mf.num_slow_modes(values, slow_tol)),
        slow_tol=float(slow_tol),
        line_attractor_score=np.asarray(mf.line_attractor_score(values))
        if values.shape[1] >= 2
        else np.full(len(values), np.nan),
        manifold_dimension=int(d),
        threshold=float(threshold),
        fixed_point_dimension=fp_dim,
        state_dimension=state_dim,
        manifold_basis=basis,
        output_basis=out_basis,
        readout=w_out,
        readout_alignment=mf.readout_alignment(w_out, out_basis),
        readout_overlap=mf.subspace_overlap(w_out, out_basis),
        readout_eigen_alignment=_alignment_or_nan(w_out, out_modes),
        tangent_alignment=tangent,
        reference_distance=float(np.linalg.norm(points[ref] - h_init)),
        word_effects=words,
        linearized=linearized,
        prediction=prediction,
        seconds=time.perf_counter() - t0,
    )
    _log(verbose, t0, "done")
    return result


def _alignment_or_nan(readout: np.ndarray, directions: np.ndarray) -> np.ndarray:
    """``|cos|`` (C, d); nan for a direction the readout cannot see (zero output part)."""
    norms = np.linalg.norm(directions, axis=1)
    out = np.full((readout.shape[0], directions.shape[0]), np.nan)
    ok = norms > 1e-12 * max(norms.max(), 1e-300)
    if np.any(ok):
        out[:, ok] = mf.readout_alignment(readout, directions[ok])
    return out


def _describe(model: Classifier) -> dict:
    try:
        return describe_model(model)
    except ValueError:  # a wrapped cell (from_flax / from_function): describe it by size
        return {
            "cell": type(model.cell).__name__,
            "state_size": int(model.cell.state_size),
            "vocab_size": model.vocab_size,
            "embed_size": model.embed_size,
            "num_classes": model.num_classes,
            "multilabel": model.multilabel,
        }


def _safe_correlation(a: np.ndarray, b: np.ndarray) -> float:
    try:
        return mf.correlation(a, b)
    except ValueError:  # constant effects (e.g. an untrained readout): undefined
        return float("nan")
