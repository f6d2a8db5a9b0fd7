"""One-call reverse engineering of a trained classifier: ``rnndyn.analyze``.

``analyze(model, data, params, key=...)`` is a short sequence of stages, each a public
function returning its own record:

1. ``run_network``: visited hidden states and the full model's logits on ``data``;
2. ``search_fixed_points``: slow / fixed points at the expansion input ``x*`` (zero, or
   the mean embedding), started from visited states;
3. ``spectra``: eigenvalues at every kept point, ordered slowest first
   (``linearize.mode_order``), capped time constants, slow modes, line-attractor score;
4. ``choose_reference``: the point the linearisation is taken at (stable or marginal,
   nearest ``h0``, or the most faithful of those);
5. ``geometry``: the manifold's dimension (PCA and intrinsic estimators of the visited
   states and of the fixed points) and its geometry against the readout and the slow
   eigenvectors;
6. ``word_effects``: each word's push on the slow modes (a real basis that never splits
   a complex pair) and on the logits, against a bag-of-words model;
7. ``linearized``: the linearised classifier's accuracy next to the full model's, with
   per-length and per-class diagnostics;
8. ``word_input_fixed_points``: fixed points with a word as constant input and how
   they shift along the readout;
9. ``words.predict_dimension``: the dimension predicted from word counts alone.

``Analysis`` composes the records (old attribute names remain as properties) and
writes a compact JSON report with big arrays in an ``.npz`` beside it
(``to_json`` / ``from_json``). Everything is host-side orchestration of the jitted
building blocks; randomness comes only from ``key``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from rnndyn import _checks
from rnndyn import manifold as mf
from rnndyn import words as wd
from rnndyn.checkpoint import Checkpoint, describe_model, load_checkpoint
from rnndyn.data.dataset import check_dataset as _check_data
from rnndyn.data.dataset import pad_batch
from rnndyn.fixed_points import FixedPoints, find_fixed_points, sample_states
from rnndyn.linearize import (
    TAU_MAX,
    Linearization,
    eig,
    line_attractor_score,
    linearization,
    mode_order,
    num_slow_modes,
    real_modes,
    run_linearized,
    run_trajectory,
    sort_modes,
    time_constants,
)
from rnndyn.models import Classifier

Array = jax.Array

__all__ = [
    "Analysis",
    "Geometry",
    "LinearizedAccuracy",
    "NetworkRun",
    "Reference",
    "Spectra",
    "WordEffects",
    "WordInputs",
    "analyze",
    "choose_reference",
    "geometry",
    "linearized",
    "linearized_accuracy",
    "readout_in_state_space",
    "run_network",
    "search_fixed_points",
    "spectra",
    "word_effects",
    "word_input_fixed_points",
]

#: Visited states used for the state-space PCA (a random subset beyond this).
MAX_PCA_STATES = 20_000
#: Visited states kept in memory for sampling initial states (a random subset beyond).
MAX_VISITED_STATES = 100_000
#: Arrays with more elements than this go to the ``.npz`` beside the JSON report.
MAX_JSON_ELEMENTS = 2048
#: Examples (of ``train_data``) on which the faithful reference is chosen and the
#: readout recentred.
SELECTION_EXAMPLES = 256

_STATIC = {"static": True}


def _record(cls):
    """Frozen dataclass registered as a pytree (string / dict fields static)."""
    return jax.tree_util.register_dataclass(dataclasses.dataclass(frozen=True)(cls))


# ------------------------------------------------------------------------ records


@_record
class NetworkRun:
    """The full network on the analysed examples.

    Attributes:
      index: ``(n,)`` indices of the analysed examples in ``data``.
      visited: ``(n_states, S)`` a random subset of the visited (non-padding) states.
      logits: ``(n, C)`` final logits; labels: ``(n,)`` or ``(n, C)``;
      lengths: ``(n,)`` tokens per example.
      accuracy: the full model's accuracy on them.
    """

    index: np.ndarray
    visited: np.ndarray
    logits: np.ndarray
    labels: np.ndarray
    lengths: np.ndarray
    accuracy: float


@_record
class Spectra:
    """Eigenvalues of ``J_rec`` at the ``K`` kept points, slowest mode first.

    Attributes:
      eigenvalues: ``(K, S)`` complex, in ``linearize.mode_order`` (by ``|λ|``: growing
        modes first, stable modes ordered by ``τ``, conjugate pairs adjacent).
      time_constants: ``(K, S)`` ``min(1 / |log|λ||, tau_max)`` in steps, same order.
      spectral_radius: ``(K,)`` ``max |λ|`` (``|λ1|``) per point.
      slow_modes: ``(K,)`` modes with ``| |λ| − 1 | <= slow_tol``.
      slow_tol: that tolerance.
      line_attractor_score: ``(K,)`` ``log2(τ1 / τ2)`` of the capped time constants.
      tau_max: the cap (``linearize.TAU_MAX``).
    """

    eigenvalues: np.ndarray
    time_constants: np.ndarray
    spectral_radius: np.ndarray
    slow_modes: np.ndarray
    slow_tol: float
    line_attractor_score: np.ndarray
    tau_max: float


@_record
class Reference:
    """The fixed point the linearisation (word effects, ``initial`` accuracy) uses.

    Attributes:
      index: into ``Analysis.fixed_points``.
      spectral_radius: ``|λ1|`` there.
      distance: ``‖h0 − h*‖`` from the initial state.
      qualified: whether any kept point is stable or marginal (``|λ1| <= 1 + tol``); if
        not, the nearest point is used and ``summary()`` warns.
      candidates: stable / marginal points considered (the nearest ``max_candidates``).
      agreement: for ``rule="faithful"``, the chosen linearisation's agreement with the
        full network's predictions on the selection examples (nan otherwise).
      tol: the tolerance on ``|λ1|``.
      rule: ``"faithful"``, ``"stable"`` or ``"nearest"``.
      reason: one line saying why this point.
    """

    index: int
    spectral_radius: float
    distance: float
    qualified: bool
    candidates: int
    agreement: float
    tol: float
    rule: str = dataclasses.field(metadata=_STATIC)
    reason: str = dataclasses.field(metadata=_STATIC)


@_record
class Geometry:
    """Dimension and geometry of the manifold. ``d`` dimensions, ``C`` classes.

    Attributes:
      manifold_dimension: the ``d`` used for word effects and geometry (rule below).
      dimension_rule: how ``d`` was chosen: ``"given"``, ``"agree"`` (states and fixed
        points need the same number of PCs), or a line giving both counts and the
        states' participation ratio; the count nearer it is taken (see
        ``docs/analysis.md``).
      threshold: variance fraction of the PCA rule.
      fixed_point_dimension: ``manifold.Dimension`` of the fixed points.
      state_dimension: ``manifold.Dimension`` of the visited hidden states (``h``; for
        an LSTM not ``c``).
      fixed_point_intrinsic: ``manifold.IntrinsicDimension`` of the fixed points.
      state_intrinsic: ``manifold.IntrinsicDimension`` of the visited hidden states.
      manifold_basis: ``(d, S)`` principal directions of the visited full states.
      output_basis: ``(d, N)`` principal directions of the visited hidden states.
      readout: ``(C, N)`` readout rows (centred over classes for softmax).
      readout_alignment: ``(C, d)`` ``|cos|`` of readout rows with ``output_basis``.
      readout_overlap: mean squared cosine of the principal angles between the readout
        rows' span and ``output_basis``.
      readout_eigen_alignment: ``(C, d')`` ``|cos|`` of readout rows with the real basis
        of the top ``d`` modes at the reference point (``d' = d + 1`` when a complex pair
        is closed); nan for a mode the readout cannot see.
      tangent_alignment: ``(K,)`` ``‖P v‖ / ‖v‖`` of each point's slowest right
        eigenvector on the local ``d``-dimensional tangent space of the points.
    """

    manifold_dimension: int
    threshold: float
    fixed_point_dimension: mf.Dimension
    state_dimension: mf.Dimension
    fixed_point_intrinsic: mf.IntrinsicDimension
    state_intrinsic: mf.IntrinsicDimension
    manifold_basis: np.ndarray
    output_basis: np.ndarray
    readout: np.ndarray
    readout_alignment: np.ndarray
    readout_overlap: float
    readout_eigen_alignment: np.ndarray
    tangent_alignment: np.ndarray
    dimension_rule: str = dataclasses.field(metadata=_STATIC)


@_record
class WordEffects:
    """What each vocabulary word does to the integrated evidence at the reference point.

    ``V`` words, ``d'`` real mode coordinates, ``C`` classes. Inputs are taken relative
    to the expansion input: ``x_w − x*``.

    Attributes:
      words: ``(V,)`` the vocabulary.
      counts: ``(V,)`` occurrences of each word in the data the baseline was fit on.
      reference_point: index of the reference point.
      input_star: ``(M,)`` the expansion input ``x*``.
      mode_projections: ``(V, d')`` the push ``L_d J_inp (x_w − x*)`` on the real basis
        of the top ``d`` modes (``linearize.real_modes``: a complex pair gives two
        coordinates); each coordinate's sign makes moving along it raise the logit it
        changes most (binary: the second class).
      logit_effects: ``(V, C)`` the logit change the slow modes keep,
        ``W̃ R_d L_d J_inp (x_w − x*)``.
      readout_projections: ``(V, C)`` the direct effect ``W̃ J_inp (x_w − x*)``.
      bow_weights: ``(V, C)`` bag-of-words weights (centred over classes for softmax).
      bow_accuracy: the baseline's training accuracy.
      correlation: Pearson r of ``logit_effects`` and ``bow_weights`` over seen words.
      readout_correlation: the same for ``readout_projections``.
      drift: ``(C,)`` ``Σ_w p_w logit_effects_w``: the logit change per token of an
        average text (``p_w`` word frequencies). First-order effects add up over a
        document, so a non-zero drift is a length-dependent bias; it vanishes when
        ``x*`` is the frequency-weighted mean embedding.
      frequency_correlation: Pearson r of ``|logit_effects|`` with ``log(count)`` over
        seen words (high: effects follow frequency rather than meaning).
      trajectory_effects: ``(V, C)`` the word's first-order effect on the final logits
        of a document of ``trajectory_length`` tokens, averaged over its positions:
        ``mean_t ∂logits/∂x_t (x_w − x*)`` at the sequence ``x* x* ...`` from ``h0``,
        i.e. the word effects of the trajectory linearisation
        (``LinearizedAccuracy.trajectory``), which needs no reference point.
      trajectory_correlation: Pearson r of ``trajectory_effects`` and ``bow_weights``.
      trajectory_length: the document length used (median of the training lengths).
    """

    words: tuple[str, ...]
    counts: np.ndarray
    reference_point: int
    input_star: np.ndarray
    mode_projections: np.ndarray
    logit_effects: np.ndarray
    readout_projections: np.ndarray
    bow_weights: np.ndarray
    bow_accuracy: float
    correlation: float
    readout_correlation: float
    drift: np.ndarray
    frequency_correlation: float
    # Later additions, with defaults so that older reports stay loadable.
    trajectory_effects: np.ndarray | None = None
    trajectory_correlation: float = float("nan")
    trajectory_length: int = 0


@_record
class LinearizedAccuracy:
    """The linearised classifier next to the full network, with diagnostics.

    Attributes:
      full: accuracy of the trained network.
      initial: linear dynamics around the reference point.
      nearest: piecewise-linear dynamics, re-linearised at each step around the kept
        point nearest the current state.
      trajectory: dynamics linearised along the network's own trajectory from ``h0``
        under the constant input ``x*`` (``linearize.run_trajectory``): first order in
        the words' deviations from ``x*``, it also covers the transient from the initial
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
      length_edges: ``(B + 1,)`` token-count bin edges (quantiles of the lengths);
        bin ``b`` holds ``edges[b] <= length < edges[b + 1]`` (last bin closed).
      length_counts: ``(B,)`` examples per bin.
      length_full, length_linearized: ``(B,)`` accuracies per bin (nan if empty).
      length_trajectory: ``(B,)`` accuracies of ``trajectory`` per bin.
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
    # Later additions, with defaults so that older reports stay loadable.
    trajectory: float = float("nan")
    trajectory_agreement: float = float("nan")
    length_trajectory: np.ndarray | None = None


@_record
class WordInputs:
    """Fixed points with a word as the constant input, ``x* = embedding(w)``.

    Started from (up to ``max_starts``) kept points of the main search; for each start
    that converges under the word input the logit shift ``W̃ (h*_w − h*_0)`` is taken.

    Attributes:
      words: ``(n,)`` word ids; names: their strings.
      num_points: ``(n,)`` starts that converged under each word's input.
      shift: ``(n, C)`` mean logit shift of the manifold (centred readout; nan where no
        start converged): how far along the readout the word moves the fixed points.
      bow_weights: ``(n, C)`` the words' bag-of-words weights.
      correlation: Pearson r of ``shift`` and ``bow_weights`` over words with a shift.
    """

    words: np.ndarray
    num_points: np.ndarray
    shift: np.ndarray
    bow_weights: np.ndarray
    correlation: float
    names: tuple[str, ...] = dataclasses.field(metadata=_STATIC)


_RECORDS = {
    c.__name__: c
    for c in (
        NetworkRun,
        Spectra,
        Reference,
        Geometry,
        WordEffects,
        LinearizedAccuracy,
        WordInputs,
        FixedPoints,
        mf.Dimension,
        mf.IntrinsicDimension,
        wd.DimensionPrediction,
    )
}


@_record
class Analysis:
    """Everything ``analyze`` measured, one record per stage. ``K`` kept points.

    Attributes:
      model: description of the classifier (cell, sizes, classes).
      dataset: name of the analysed dataset.
      settings: the analysis settings that shape the results (``input_star``, rules).
      num_candidates: initial states of the fixed-point search.
      num_converged: candidates that became roots below the tolerance.
      search: how the points were found (``"adam"``, or ``"adam+newton"`` when the
        Adam-only search kept fewer than two points and the hybrid search was used).
      fixed_points: the ``K`` kept points (converged, de-duplicated, outliers dropped).
      spectra: ``Spectra``; reference: ``Reference``; geometry: ``Geometry``;
      word_effects: ``WordEffects``; linearized: ``LinearizedAccuracy``;
      word_inputs: ``WordInputs`` (``None`` if not asked for);
      prediction: ``words.DimensionPrediction`` from word counts of ``train_data``.
      seconds: wall-clock time of the analysis.

    The attributes of the earlier flat record (``eigenvalues``, ``manifold_dimension``,
    ``readout_alignment``, ``reference_distance``, ...) are properties reading the
    stage records.
    """

    fixed_points: FixedPoints
    spectra: Spectra
    reference: Reference
    geometry: Geometry
    word_effects: WordEffects
    linearized: LinearizedAccuracy
    word_inputs: WordInputs | None
    prediction: wd.DimensionPrediction
    num_candidates: int
    num_converged: int
    seconds: float
    model: dict = dataclasses.field(metadata=_STATIC)
    dataset: str = dataclasses.field(metadata=_STATIC)
    settings: dict = dataclasses.field(metadata=_STATIC)
    search: str = dataclasses.field(metadata=_STATIC)

    # ---- the flat names of the earlier record
    eigenvalues = property(lambda self: self.spectra.eigenvalues)
    time_constants = property(lambda self: self.spectra.time_constants)
    slow_modes = property(lambda self: self.spectra.slow_modes)
    slow_tol = property(lambda self: self.spectra.slow_tol)
    line_attractor_score = property(lambda self: self.spectra.line_attractor_score)
    manifold_dimension = property(lambda self: self.geometry.manifold_dimension)
    threshold = property(lambda self: self.geometry.threshold)
    fixed_point_dimension = property(lambda self: self.geometry.fixed_point_dimension)
    state_dimension = property(lambda self: self.geometry.state_dimension)
    manifold_basis = property(lambda self: self.geometry.manifold_basis)
    output_basis = property(lambda self: self.geometry.output_basis)
    readout = property(lambda self: self.geometry.readout)
    readout_alignment = property(lambda self: self.geometry.readout_alignment)
    readout_overlap = property(lambda self: self.geometry.readout_overlap)
    readout_eigen_alignment = property(lambda self: self.geometry.readout_eigen_alignment)
    tangent_alignment = property(lambda self: self.geometry.tangent_alignment)
    reference_distance = property(lambda self: self.reference.distance)

    def summary(self) -> str:
        """A few human-readable lines of the headline numbers (warnings first)."""
        return _summary(self)

    def to_dict(self) -> dict:
        """JSON-ready nested dict: the summary, scalars and arrays of at most
        ``MAX_JSON_ELEMENTS`` elements inline (complex as ``{"real", "imag"}``,
        non-finite floats as ``"inf"``, ``"-inf"``, ``"nan"``); bigger arrays as
        ``{"npz": KEY, "shape", "dtype"}`` placeholders for the ``.npz`` beside the JSON
        (``to_json``)."""
        return _encode(self, {})

    def to_json(self, path: str | os.PathLike | None = None, *, indent: int | None = 1) -> str:
        """The compact report as JSON text; with ``path``, also written there (atomically)
        with the big arrays in ``path`` + ``.npz`` (``from_json`` reads both back)."""
        big: dict[str, np.ndarray] = {}
        record = _encode(self, big)
        text = json.dumps(record, indent=indent, allow_nan=False)
        if path is not None:
            path = os.fspath(path)
            if big:
                _atomic_write(_npz_path(path), lambda f: np.savez_compressed(f, **big), "wb")
            elif os.path.exists(_npz_path(path)):  # a stale one from an earlier report
                os.remove(_npz_path(path))
            _atomic_write(path, lambda f: f.write(text), "w")
        return text

    @classmethod
    def from_json(cls, path: str | os.PathLike) -> Analysis:
        """Read a report written by ``to_json(path)`` (and its ``.npz``) back."""
        path = os.fspath(path)
        with open(path, encoding="utf-8") as f:
            record = json.load(f)
        if record.get("format") != _FORMAT:
            raise ValueError(
                f"{path} is not an rnndyn analysis report of format {_FORMAT!r} (found "
                f"{record.get('format')!r})"
            )
        npz = _npz_path(path)
        arrays = dict(np.load(npz)) if os.path.exists(npz) else {}
        body = {k: v for k, v in record.items() if k not in ("format", "summary")}
        return _decode(body, arrays)


# ------------------------------------------------------------------------- stages


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


def search_fixed_points(
    model: Classifier,
    params: Any,
    visited: np.ndarray,
    x_star: Array,
    *,
    key: Array,
    num_initial: int,
    noise: float,
    tol: float,
    max_steps: int,
    learning_rate: float,
    merge_tol: float,
    outlier_factor: float,
    verbose: bool = False,
) -> tuple[FixedPoints, FixedPoints, str]:
    """Fixed points at ``x_star`` from visited states: ``(all candidates, kept, how)``.

    Adam only (the studies' criterion: polishing would pull the slow points that trace a
    manifold onto its few exact roots). If fewer than two distinct points survive, the
    same starts are searched again with the hybrid Adam + Newton/LM search, which
    converges where Adam alone is too slow (e.g. networks trained without
    ``embedding_l2``); ``how`` says which search produced the points. A single point
    is a result (a point attractor: the analysis reports fixed-point dimension 0);
    none raises.
    """
    k_sample, k_search = jax.random.split(key)
    h0 = sample_states(jnp.asarray(visited), num_initial, k_sample, noise=noise)
    settings = dict(key=k_search, tol=tol, learning_rate=learning_rate, verbose=verbose)
    found, kept, how = None, None, "adam"
    for attempt, polish in (("adam", 0), ("adam+newton", 50)):
        how = attempt
        found = find_fixed_points(
            model.cell,
            params["cell"],
            x_star,
            h0,
            max_steps=max_steps,
            polish_steps=polish,
            **settings,
        )
        kept = found.keep_slow()
        if len(kept) >= 2:
            kept = kept.merge_duplicates(merge_tol).drop_outliers(outlier_factor)
        if len(kept) >= 2:
            break
    if len(kept) == 0:
        raise RuntimeError(
            f"no fixed point converged of {len(found)} candidates (tol={tol:.3g}, statuses "
            f"{found.counts()}) after the Adam and the Adam + Newton searches; raise "
            f"max_steps (now {max_steps}) or tol"
        )
    return found, kept, how


def spectra(lin: Linearization, *, slow_tol: float = 0.02) -> tuple[Spectra, Any]:
    """Eigendecompositions at every point of ``lin``, slowest mode first.

    Returns the ``Spectra`` record and the sorted ``linearize.Eigen`` (for the stages
    that need eigenvectors).
    """
    eg = eig(lin.j_rec)
    eg = sort_modes(eg, mode_order(eg.values))
    values = np.asarray(eg.values)
    score = (
        np.asarray(line_attractor_score(values))
        if values.shape[1] >= 2
        else np.full(len(values), np.nan)
    )
    record = Spectra(
        eigenvalues=values,
        time_constants=np.asarray(time_constants(values, TAU_MAX), np.float64),
        spectral_radius=np.max(np.abs(values), axis=1),
        slow_modes=np.asarray(num_slow_modes(values, slow_tol)),
        slow_tol=float(slow_tol),
        line_attractor_score=score,
        tau_max=float(TAU_MAX),
    )
    return record, eg


def choose_reference(
    points: Any,
    spectral_radius: Any,
    h0: Any,
    *,
    tol: float = 0.02,
    rule: str = "faithful",
    score: Callable[[int], float] | None = None,
    max_candidates: int = 8,
) -> Reference:
    """Choose the fixed point to linearise at.

    Rules (``rule``):

    * ``"stable"``: the point nearest ``h0`` among the stable or marginal ones
      (``|λ1| <= 1 + tol``): a point the network can rest near;
    * ``"faithful"`` (default): of the ``max_candidates`` stable or marginal points
      nearest ``h0``, the one whose ``score`` (e.g. the linearised model's agreement with
      the network on held-out examples) is highest, ties to the nearer; without a
      ``score`` this is ``"stable"``;
    * ``"nearest"``: the point nearest ``h0`` whatever its stability (study A's rule).

    If no point is stable or marginal, every rule falls back to the nearest point and
    the record says so (``qualified`` false; ``Analysis.summary`` warns).

    Args:
      points: ``(K, S)``; spectral_radius: ``(K,)`` ``|λ1|`` per point; h0: ``(S,)``.
      tol, rule, score, max_candidates: as above.

    Returns:
      ``Reference``.
    """
    pts = np.asarray(points, np.float64)
    rad = np.asarray(spectral_radius, np.float64)
    if pts.ndim != 2 or rad.shape != (pts.shape[0],) or np.shape(h0) != pts.shape[1:]:
        raise ValueError(
            f"points {pts.shape}, spectral_radius {rad.shape} and h0 {np.shape(h0)} must "
            "be (K, S), (K,) and (S,)"
        )
    if rule not in ("faithful", "stable", "nearest"):
        raise ValueError(f"rule must be 'faithful', 'stable' or 'nearest', got {rule!r}")
    _checks.check_positive("tol", tol, allow_zero=True)
    _checks.check_int("max_candidates", max_candidates, minimum=1)
    dist = np.linalg.norm(pts - np.asarray(h0, np.float64), axis=1)
    ok = rad <= 1.0 + tol
    qualified = bool(np.any(ok))
    agreement = float("nan")
    order = np.argsort(dist, kind="stable")
    cands = [int(i) for i in order if ok[i]][:max_candidates]
    if not qualified:
        index = int(order[0])
        reason = (
            f"no kept point is stable or marginal (smallest |λ1| {rad.min():.3f} > 1 + "
            f"{tol:g}); using the nearest point to h0, which is unstable"
        )
    elif rule == "nearest":
        index = int(order[0])
        reason = "the point nearest h0 (rule 'nearest'; stability not required)"
    elif rule == "stable" or score is None or len(cands) == 1:
        index = cands[0]
        reason = f"the stable/marginal point (|λ1| <= 1 + {tol:g}) nearest h0"
    else:
        scores = np.array([score(i) for i in cands])
        best = int(np.argmax(scores))  # first maximum: the nearest of the best
        index, agreement = cands[best], float(scores[best])
        reason = (
            f"the most faithful of the {len(cands)} stable/marginal points nearest h0 "
            f"(agreement {agreement:.3f} with the network on held-out examples; the "
            f"nearest scored {scores[0]:.3f})"
        )
    return Reference(
        index=index,
        spectral_radius=float(rad[index]),
        distance=float(dist[index]),
        qualified=qualified,
        candidates=len(cands),
        agreement=agreement,
        tol=float(tol),
        rule=rule,
        reason=reason,
    )


def geometry(
    model: Classifier,
    params: Any,
    points: np.ndarray,
    eigen: Any,
    visited: np.ndarray,
    reference: int,
    *,
    key: Array,
    threshold: float = 0.9,
    manifold_dim: int | None = None,
    neighbours: int | None = None,
) -> tuple[Geometry, Any]:
    """Dimension and geometry of the manifold; also returns the reference point's
    ``RealModes`` for the word-effect stage (top ``d`` modes, pairs closed)."""
    states = visited.astype(np.float64)
    if len(states) > MAX_PCA_STATES:
        states = states[np.asarray(jax.random.choice(key, len(states), (MAX_PCA_STATES,), False))]
    # The hidden states the readout sees (h; for an LSTM not c, whose slow directions
    # can count tokens rather than evidence) define the states' dimension.
    out_states = np.asarray(jax.vmap(model.cell.output)(jnp.asarray(states, jnp.float32)))
    out_pca = mf.pca(out_states.astype(np.float64))
    state_dim = mf.dimension(out_pca)
    # One fixed point (a point attractor): no manifold of fixed points, dimension 0.
    fp_dim = mf.dimension(points) if len(points) > 1 else mf.Dimension(0, 0, 0.0, np.zeros(0))
    d, rule = _manifold_dimension(out_pca, points, threshold)
    if manifold_dim is not None:
        d, rule = manifold_dim, "given"
    d = max(1, min(d, out_pca.components.shape[0], len(points) - 1))
    basis = mf.pca(states).components[:d]
    out_basis = out_pca.components[:d]
    w_out = _readout_rows(model, params)
    j_out = np.asarray(
        jax.jacobian(model.cell.output)(jnp.asarray(points[reference], jnp.float32)), np.float64
    )
    one = type(eigen)(*(np.asarray(a)[reference] for a in eigen))
    modes = real_modes(one, min(d, one.values.shape[0]))
    signs = _sign_modes(w_out @ j_out, modes.right)
    modes = modes._replace(right=modes.right * signs, left=modes.left * signs[:, None])
    right0 = np.asarray(eigen.right)[:, :, 0].real
    k_nb = min(neighbours if neighbours is not None else max(2 * d + 2, 10), len(points))
    if len(points) == 1:  # no tangent to a single point
        tangent = np.full(1, np.nan)
    elif k_nb > d:
        tangent = mf.tangent_alignment(points, right0, manifold_dim=d, k=k_nb)
    else:  # too few points for a local estimate: use the global d-plane
        v = right0 / np.linalg.norm(right0, axis=1, keepdims=True)
        tangent = np.linalg.norm(v @ mf.pca(points).components[:d].T, axis=1)
    record = Geometry(
        manifold_dimension=int(d),
        threshold=float(threshold),
        fixed_point_dimension=fp_dim,
        state_dimension=state_dim,
        fixed_point_intrinsic=mf.intrinsic_dimension(points),
        state_intrinsic=mf.intrinsic_dimension(out_states),
        manifold_basis=basis,
        output_basis=out_basis,
        readout=w_out,
        readout_alignment=mf.readout_alignment(w_out, out_basis),
        readout_overlap=mf.subspace_overlap(w_out, out_basis),
        readout_eigen_alignment=_alignment_or_nan(w_out, (j_out @ modes.right).T),
        tangent_alignment=tangent,
        dimension_rule=rule,
    )
    return record, modes


def _manifold_dimension(out_pca: mf.PCA, points: np.ndarray, threshold: float) -> tuple[int, str]:
    """The default rule when the states' and the fixed points' PC counts disagree.

    The visited states include transients off the attractor (a document's first tokens,
    input-driven excursions) that add many small components without adding memory; the
    fixed points trace the attractor but can miss parts the search did not reach at a
    strict ``tol``. The states' participation ratio arbitrates: it counts directions of
    comparable variance and discounts a tail of small ones, so of the two counts the one
    nearer it is taken (ties: the smaller).
    """
    states_d = max(mf.num_components(out_pca, threshold), 1)
    if len(points) == 1:
        return 1, (
            f"one fixed point, a point attractor (dimension 0; states {states_d} PCs): word "
            "effects and geometry use its slowest mode"
        )
    points_d = max(mf.num_components(points, threshold), 1)
    if states_d == points_d:
        return states_d, "agree"
    pr = mf.participation_ratio(out_pca)
    lo, hi = sorted((states_d, points_d))
    d = lo if abs(lo - pr) <= abs(hi - pr) else hi
    return d, (
        f"states {states_d} PCs, fixed points {points_d}; the nearer the states' "
        f"participation ratio {pr:.2f}"
    )


def word_effects(
    model: Classifier,
    params: Any,
    lin: Linearization,
    modes: Any,
    reference: int,
    train_data: Any,
    *,
    bow_steps: int = 500,
) -> tuple[WordEffects, wd.BagOfWords]:
    """Word effects at the reference point against a bag-of-words baseline."""
    emb = np.asarray(params["embedding"], np.float64)
    x_star = np.asarray(lin.inputs[reference], np.float64)
    inputs = emb - x_star
    j_inp = np.asarray(lin.j_inp[reference], np.float64)
    j_out = np.asarray(
        jax.jacobian(model.cell.output)(jnp.asarray(lin.points[reference], jnp.float32)),
        np.float64,
    )
    readout = _readout_rows(model, params) @ j_out
    proj = wd.mode_projections(modes, j_inp, inputs)
    effects = wd.logit_effects(readout, modes, j_inp, inputs)
    direct = wd.readout_projections(readout, j_inp, inputs)
    counts = _token_counts(train_data, model.vocab_size)
    bow = wd.fit_bag_of_words(
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
    length = max(1, int(np.median(np.asarray(train_data.lengths))))
    along = inputs @ _trajectory_gain(model, params, x_star, length).T
    freq = counts / max(counts.sum(), 1.0)
    size = np.linalg.norm(effects, axis=1)
    record = WordEffects(
        words=tuple(getattr(train_data, "vocab", ())) or tuple(map(str, range(model.vocab_size))),
        counts=counts,
        reference_point=int(reference),
        input_star=x_star,
        mode_projections=proj,
        logit_effects=effects,
        readout_projections=direct,
        bow_weights=bow_w,
        bow_accuracy=bow.accuracy,
        correlation=_safe_correlation(effects[seen], bow_w[seen]),
        readout_correlation=_safe_correlation(direct[seen], bow_w[seen]),
        drift=freq @ effects,
        frequency_correlation=_safe_correlation(size[seen], np.log(counts[seen])),
        trajectory_effects=along,
        trajectory_correlation=_safe_correlation(along[seen], bow_w[seen]),
        trajectory_length=length,
    )
    return record, bow


def _trajectory_gain(model: Classifier, params: Any, x_star: np.ndarray, length: int):
    """``(C, M)``: the final logits' gradient with respect to each input of the sequence
    ``x*`` repeated ``length`` times from ``h0``, averaged over the positions (centred
    over classes for softmax classifiers)."""

    def logits(xs):
        step = lambda h, x: (model.cell(params["cell"], h, x), None)  # noqa: E731
        return model.readout(params, jax.lax.scan(step, model.cell.initial_state(), xs)[0])

    dtype = jnp.result_type(*jax.tree_util.tree_leaves(params["cell"]))
    xs = jnp.tile(jnp.asarray(x_star, dtype), (length, 1))
    gain = np.asarray(jax.jacrev(logits)(xs), np.float64).mean(axis=1)
    # Softmax logits are defined up to a shift shared by the classes: centre, as the
    # readout rows and bag-of-words weights are.
    return gain if model.multilabel else gain - gain.mean(axis=0, keepdims=True)


def linearized(
    model: Classifier,
    params: Any,
    data: Any,
    lin: Linearization,
    reference: int,
    run: NetworkRun,
    *,
    batch_size: int,
    selection: tuple[Any, np.ndarray, np.ndarray] | None = None,
    num_bins: int = 4,
) -> LinearizedAccuracy:
    """Accuracy of the linearised classifier and where it departs from the network.

    Args:
      selection: ``(dataset, index, full logits)`` of held-out examples on which the
        per-class logit offset of ``recentred`` is measured (``None``: not recentred,
        ``recentred`` is nan).
      num_bins: length bins (quantiles of the scored examples' lengths).
    """
    ref_lin = _select(lin, [reference])
    kw = dict(index=run.index, batch_size=batch_size)
    logits = _linearized_logits(model, params, data, ref_lin, switch="initial", **kw)
    nearest = _linearized_logits(model, params, data, lin, switch="nearest", **kw)
    trajectory = _linearized_logits(model, params, data, ref_lin, switch="trajectory", **kw)

    def correct(lg):
        return np.asarray(model.correct(jnp.asarray(lg), jnp.asarray(run.labels)), np.float64)

    recentred = float("nan")
    if selection is not None:
        sel_data, sel_index, sel_full = selection
        sel_lin = _linearized_logits(
            model, params, sel_data, ref_lin, switch="initial", index=sel_index,
            batch_size=batch_size,
        )  # fmt: skip
        offset = np.mean(sel_full - sel_lin, axis=0)
        recentred = float(np.mean(correct(logits + offset)))
    full_pred = np.asarray(model.predict_logits(jnp.asarray(run.logits)))
    lin_pred = np.asarray(model.predict_logits(jnp.asarray(logits)))
    traj_pred = np.asarray(model.predict_logits(jnp.asarray(trajectory)))
    edges = np.unique(np.quantile(run.lengths, np.linspace(0, 1, num_bins + 1)).round())
    if len(edges) < 2:  # all examples equally long: one bin
        edges = np.array([edges[0], edges[0] + 1])
    bins = np.clip(np.searchsorted(edges, run.lengths, side="right") - 1, 0, len(edges) - 2)
    full_c, lin_c, traj_c = correct(run.logits), correct(logits), correct(trajectory)
    return LinearizedAccuracy(
        full=run.accuracy,
        initial=float(np.mean(lin_c)),
        nearest=float(np.mean(correct(nearest))),
        trajectory=float(np.mean(traj_c)),
        trajectory_agreement=_same(full_pred, traj_pred),
        recentred=recentred,
        agreement=_same(full_pred, lin_pred),
        num_examples=len(run.index),
        full_predicted=_class_fractions(model, full_pred),
        linearized_predicted=_class_fractions(model, lin_pred),
        class_full=_per_class(model, full_pred, run.labels),
        class_linearized=_per_class(model, lin_pred, run.labels),
        length_edges=edges.astype(np.float64),
        length_counts=np.bincount(bins, minlength=len(edges) - 1),
        length_full=_bin_means(full_c, bins, len(edges) - 1),
        length_linearized=_bin_means(lin_c, bins, len(edges) - 1),
        length_trajectory=_bin_means(traj_c, bins, len(edges) - 1),
    )


def _same(a: np.ndarray, b: np.ndarray) -> float:
    """Fraction of examples with the same prediction (every label, if multi-label)."""
    return float(np.mean(np.all((a == b).reshape(len(a), -1), 1)))


def word_input_fixed_points(
    model: Classifier,
    params: Any,
    kept: FixedPoints,
    bow: wd.BagOfWords,
    counts: np.ndarray,
    vocab: tuple[str, ...],
    *,
    key: Array,
    words: Any = None,
    num_words: int = 16,
    max_starts: int = 8,
    tol: float,
    max_steps: int,
    learning_rate: float,
) -> WordInputs:
    """Fixed points with each word's embedding as the constant input (``WordInputs``).

    The search is the hybrid Adam + Newton/LM one: here the roots themselves are wanted
    (a strong word's input can move them far from the start, where Adam alone is slow).
    ``words`` (ids) defaults to the ``num_words // 2`` seen words with the largest
    bag-of-words weights (``max |W_w|`` over classes) and the ``num_words // 2`` most
    frequent other words, so that strong and neutral words are both represented.
    """
    bow_w = bow.weights if model.multilabel else bow.weights - bow.weights.mean(1, keepdims=True)
    if words is None:
        seen = np.flatnonzero(counts > 0)
        strong = seen[np.argsort(-np.abs(bow_w[seen]).max(1), kind="stable")][: num_words // 2]
        rest = np.setdiff1d(seen, strong)
        frequent = rest[np.argsort(-counts[rest], kind="stable")][: num_words - len(strong)]
        words = np.concatenate([strong, frequent])
    words = np.asarray(words, np.int64)
    if words.ndim != 1 or words.size == 0 or words.min() < 0 or words.max() >= model.vocab_size:
        raise ValueError(
            f"word_inputs must be a non-empty list of word ids in [0, {model.vocab_size}), "
            f"got {words.tolist()}"
        )
    pts = np.asarray(kept.points)
    pick = np.linspace(0, len(pts) - 1, min(max_starts, len(pts))).round().astype(np.int64)
    starts = pts[np.unique(pick)]
    emb = np.asarray(params["embedding"], np.float32)
    n, k = len(words), len(starts)
    found = find_fixed_points(
        model.cell,
        params["cell"],
        jnp.asarray(np.repeat(emb[words], k, axis=0)),
        jnp.asarray(np.tile(starts, (n, 1))),
        key=key,
        tol=tol,
        max_steps=max_steps,
        learning_rate=learning_rate,
        polish_steps=50,
    )
    ok = np.asarray(found.slow).reshape(n, k)
    delta = np.asarray(model.readout(params, jnp.asarray(found.points))) - np.tile(
        np.asarray(model.readout(params, jnp.asarray(starts))), (n, 1)
    )
    delta = delta.reshape(n, k, -1)
    if not model.multilabel:
        delta = delta - delta.mean(-1, keepdims=True)
    with np.errstate(invalid="ignore"):
        shift = np.where(ok.any(1)[:, None], (delta * ok[..., None]).sum(1), np.nan)
        shift = shift / np.maximum(ok.sum(1), 1)[:, None]
    good = ok.any(1)
    r = _safe_correlation(shift[good], bow_w[words][good]) if good.sum() >= 2 else float("nan")
    names = tuple(vocab[w] if w < len(vocab) else str(w) for w in words)
    return WordInputs(words, ok.sum(1), shift, bow_w[words], r, names)


# ------------------------------------------------------------------------ analyze


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
    input_star: str = "zero",
    reference: str = "faithful",
    reference_tol: float = 0.02,
    word_inputs: Any = 16,
    verbose: bool = True,
) -> Analysis:
    """Reverse engineer a trained classifier on a dataset (the stages in the module doc).

    Fixed points are searched at ``x*`` (``input_star="zero"``: no word, as in study A;
    ``"mean"``: the token-frequency-weighted mean embedding of ``train_data``, so that
    word inputs are taken relative to an average word and their first-order effects do
    not drift over long documents) from ``num_initial`` visited states plus Gaussian
    noise of scale ``noise``, with Adam until ``q = ½‖F(h) − h‖² < tol`` (default
    ``S · 1e-8 / 2``: the per-dimension criterion ``(1/S)‖F(h) − h‖² < 1e-8``).

    Args:
      model: a ``Classifier`` (then ``params`` is needed), a ``Checkpoint``, or a
        checkpoint directory.
      data: a ``rnndyn.data.Dataset`` (e.g. the test set): visited states, accuracies.
      params: the classifier's parameters (defaults to the checkpoint's).
      key: PRNG key for every random choice.
      train_data: dataset for the bag-of-words baseline, the dimension prediction, the
        mean embedding, and the held-out selection examples (default: ``data``).
      max_examples: analyse a random subset of at most this many examples of ``data``.
      num_initial, noise, tol, max_steps, learning_rate: fixed-point search settings.
      merge_tol, outlier_factor: clean-up of the found points.
      threshold: variance fraction of the PCA dimension rule (and the prediction).
      manifold_dim: use this dimension instead of the rule.
      slow_tol: ``| |λ| − 1 |`` below which a mode counts as slow.
      neighbours: neighbourhood size of the local tangent estimate.
      bow_steps: optimiser steps of the bag-of-words fit.
      batch_size: examples per batch when running the network.
      input_star: ``"zero"`` or ``"mean"`` (above).
      reference: rule of ``choose_reference`` (``"faithful"``, ``"stable"``,
        ``"nearest"``); reference_tol: its ``tol`` on ``|λ1|`` (default 0.02, the
        ``slow_tol`` band: a mode within it of 1 is marginal on the scale of a
        document; at 0.01 a 16-unit sentiment LSTM lost its only faithful point,
        ``|λ1| = 1.014``, and the linearised model fell from 0.99 to chance).
      word_inputs: number of words (or a list of word ids) for the ``WordInputs`` stage;
        0 or ``None`` skips it.
      verbose: print progress to stderr.

    Returns:
      ``Analysis``.

    Raises:
      ValueError: bad arguments or data that do not fit the model.
      RuntimeError: no fixed point converged in either search.
    """
    t0 = time.perf_counter()
    log = lambda msg: _log(verbose, t0, msg)  # noqa: E731
    model, params = _resolve_model(model, params)
    _checks.check_finite_params("params", jax.device_get(params))
    train_data = _check_inputs(model, data, train_data, max_examples, manifold_dim, input_star)
    k_sub, k_init, k_pca, k_words = jax.random.split(key, 4)
    index, sel_index, rng = _subsets(data, train_data, max_examples, k_sub)
    batch_size = min(batch_size, len(index))
    run = run_network(model, params, data, index, batch_size=batch_size, rng=rng)
    log(f"{len(index)} examples, {len(run.visited)} visited states, acc {run.accuracy:.4f}")
    x_star = _input_star(model, params, train_data, input_star)
    tol = 0.5e-8 * model.cell.state_size if tol is None else tol
    search = dict(tol=tol, max_steps=max_steps, learning_rate=learning_rate)
    found, kept, how = search_fixed_points(
        model, params, run.visited, x_star, key=k_init, num_initial=num_initial, noise=noise,
        merge_tol=merge_tol, outlier_factor=outlier_factor, verbose=verbose, **search,
    )  # fmt: skip
    log(f"{found.describe()} ({how}); {len(kept)} kept")
    lin = linearization(model.cell, params["cell"], kept.points, kept.inputs)
    spec, eigen = spectra(lin, slow_tol=slow_tol)
    sel_full = run_network(
        model, params, train_data, sel_index, batch_size=batch_size, rng=rng
    ).logits
    ref = choose_reference(
        np.asarray(kept.points), spec.spectral_radius, np.asarray(model.cell.initial_state()),
        tol=reference_tol, rule=reference,
        score=lambda i: _agreement(model, params, train_data, sel_index, sel_full, lin, i),
    )  # fmt: skip
    log(f"reference point {ref.index}: {ref.reason}")
    points = np.asarray(kept.points, np.float64)
    geo, modes = geometry(
        model, params, points, eigen, run.visited, ref.index, key=k_pca, threshold=threshold,
        manifold_dim=manifold_dim, neighbours=neighbours,
    )  # fmt: skip
    effects, bow = word_effects(
        model, params, lin, modes, ref.index, train_data, bow_steps=bow_steps
    )
    log(f"manifold dimension {geo.manifold_dimension} ({geo.dimension_rule}); word effects r = "
        f"{effects.correlation:.3f}")  # fmt: skip
    lin_acc = linearized(
        model, params, data, lin, ref.index, run, batch_size=batch_size,
        selection=(train_data, sel_index, sel_full),
    )  # fmt: skip
    log(f"linearised accuracy {lin_acc.initial:.4f} / {lin_acc.nearest:.4f} / "
        f"{lin_acc.trajectory:.4f}")  # fmt: skip
    inputs = _word_inputs_stage(model, params, kept, bow, effects, word_inputs, k_words, search)
    if inputs is not None:
        log(f"word inputs: shift vs bag-of-words r = {inputs.correlation:.3f}")
    prediction = wd.predict_dimension(
        train_data.tokens, train_data.labels, model.vocab_size, lengths=train_data.lengths,
        num_classes=model.num_classes, multilabel=model.multilabel, threshold=threshold,
    )  # fmt: skip
    result = Analysis(
        fixed_points=jax.tree_util.tree_map(np.asarray, kept), spectra=spec, reference=ref,
        geometry=geo, word_effects=effects, linearized=lin_acc, word_inputs=inputs,
        prediction=prediction, num_candidates=len(found), num_converged=int(np.sum(found.slow)),
        seconds=time.perf_counter() - t0, model=_describe(model),
        dataset=str(getattr(data, "name", "") or ""), search=how,
        settings={"input_star": input_star, "reference": reference, "tol": float(tol),
                  "reference_tol": float(reference_tol), "threshold": float(threshold)},
    )  # fmt: skip
    log("done")
    return result


# ------------------------------------------------------------------------ helpers


def _word_inputs_stage(model, params, kept, bow, effects, word_inputs, key, search):
    """``word_inputs``: a count of words (0 or None: skip) or a list of word ids."""
    if word_inputs is None or (isinstance(word_inputs, int) and word_inputs == 0):
        return None
    chosen = None if isinstance(word_inputs, int) else word_inputs
    if chosen is None:
        _checks.check_int("word_inputs", word_inputs, minimum=1)
    # The hybrid search converges within a few hundred steps where a root exists; a
    # cap keeps words without one (inputs that saturate the state) from costing 5000.
    search = {**search, "max_steps": min(search["max_steps"], 1000)}
    return word_input_fixed_points(
        model, params, kept, bow, effects.counts, effects.words, key=key, words=chosen,
        num_words=word_inputs if chosen is None else 0, **search,
    )  # fmt: skip


def _check_inputs(model, data, train_data, max_examples, manifold_dim, input_star):
    _check_data(model, data, "data")
    train_data = data if train_data is None else train_data
    if train_data is not data:
        _check_data(model, train_data, "train_data")
    for name, value in (("max_examples", max_examples), ("manifold_dim", manifold_dim)):
        if value is not None:
            _checks.check_int(name, value, minimum=1)
    if input_star not in ("zero", "mean"):
        raise ValueError(f"input_star must be 'zero' or 'mean', got {input_star!r}")
    return train_data


def _subsets(data, train_data, max_examples, key):
    """Scored examples of ``data``, held-out selection examples of ``train_data`` (not
    among the scored ones when they are the same dataset, if enough remain), and a host
    RNG for state subsampling."""
    k_index, k_sel, k_rng = jax.random.split(key, 3)
    n = len(data.lengths)
    index = np.arange(n)
    if max_examples is not None and n > max_examples:
        index = np.sort(np.asarray(jax.random.permutation(k_index, n)[:max_examples]))
    pool = np.arange(len(train_data.lengths))
    if train_data is data and len(pool) - len(index) >= 16:
        pool = np.setdiff1d(pool, index)
    pick = np.asarray(jax.random.permutation(k_sel, len(pool)))[:SELECTION_EXAMPLES]
    rng = _checks.host_rng(k_rng)
    return index, np.sort(pool[pick]), rng


def _input_star(model, params, train_data, input_star) -> Array:
    if input_star == "zero":
        return jnp.zeros((model.embed_size,), jnp.float32)
    counts = _token_counts(train_data, model.vocab_size)
    emb = np.asarray(params["embedding"], np.float64)
    return jnp.asarray(counts @ emb / max(counts.sum(), 1.0), jnp.float32)


def _token_counts(data, vocab_size: int) -> np.ndarray:
    tokens = np.asarray(data.tokens)
    real = np.arange(tokens.shape[1])[None, :] < np.asarray(data.lengths)[:, None]
    return np.bincount(tokens[real], minlength=vocab_size).astype(np.float64)


def _select(lin: Linearization, rows) -> Linearization:
    return Linearization(*(a[np.asarray(rows)] for a in lin))


def _agreement(model, params, data, index, full_logits, lin, point) -> float:
    lg = _linearized_logits(
        model, params, data, _select(lin, [point]), switch="initial", index=index,
        batch_size=min(256, len(index)),
    )  # fmt: skip
    return _same(
        np.asarray(model.predict_logits(jnp.asarray(lg))),
        np.asarray(model.predict_logits(jnp.asarray(full_logits))),
    )


def _class_fractions(model, pred) -> np.ndarray:
    if model.multilabel:
        return pred.mean(0).astype(np.float64)
    return np.bincount(pred, minlength=model.num_classes) / max(len(pred), 1)


def _per_class(model, pred, labels) -> np.ndarray:
    if model.multilabel:
        return (pred == labels).mean(0).astype(np.float64)
    hit = (pred == labels).astype(np.float64)
    return _bin_means(hit, np.asarray(labels), model.num_classes)


def _bin_means(values, bins, n) -> np.ndarray:
    counts = np.bincount(bins, minlength=n)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, np.bincount(bins, values, minlength=n) / counts, np.nan)


def _linearized_logits(model, params, data, lin, *, switch, index, batch_size) -> np.ndarray:
    """Logits of a linearised model; ``switch="trajectory"``: along the trajectory under
    the input ``x*`` of ``lin``'s first point, else ``run_linearized``'s ``switch``."""
    h0 = model.cell.initial_state()
    emb = params["embedding"]
    out = []
    for start in range(0, len(index), batch_size):
        rows = index[start : start + batch_size]
        batch = pad_batch(data, rows, batch_size)
        xs = emb[jnp.asarray(batch["tokens"])]
        if switch == "trajectory":
            hs = run_trajectory(model.cell, params["cell"], lin.inputs[0], xs, batch["mask"])
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
    logits = _linearized_logits(
        model, params, data, lin, switch=switch, index=index, batch_size=batch_size
    )
    labels = np.asarray(data.labels)[index]
    return float(np.mean(np.asarray(model.correct(jnp.asarray(logits), jnp.asarray(labels)))))


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


def _alignment_or_nan(readout: np.ndarray, directions: np.ndarray) -> np.ndarray:
    """``|cos|`` (C, d); nan for a direction the readout cannot see (zero output part)."""
    norms = np.linalg.norm(directions, axis=1)
    out = np.full((readout.shape[0], directions.shape[0]), np.nan)
    ok = norms > 1e-12 * max(norms.max(), 1e-300)
    if np.any(ok):
        out[:, ok] = mf.readout_alignment(readout, directions[ok])
    return out


def _safe_correlation(a: np.ndarray, b: np.ndarray) -> float:
    try:
        return wd.correlation(a, b)
    except ValueError:  # constant effects (e.g. an untrained readout) or too few: undefined
        return float("nan")


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


# ------------------------------------------------------------------------ summary


def _summary(a: Analysis) -> str:
    ref, geo, spec, lin, we = a.reference, a.geometry, a.spectra, a.linearized, a.word_effects
    fpd, sd, pred = geo.fixed_point_dimension, geo.state_dimension, a.prediction
    fpi, si = geo.fixed_point_intrinsic, geo.state_intrinsic
    lines = []
    if not ref.qualified:
        lines.append(f"WARNING: {ref.reason}; word effects and the linearised model describe "
                     "dynamics the network does not rest in")  # fmt: skip
    has_trajectory = bool(np.isfinite(lin.trajectory))  # nan in reports from before it
    loss = lin.full - max(lin.initial, lin.trajectory if has_trajectory else -np.inf)
    if loss > 0.05:
        along = (
            f" and {lin.full - lin.trajectory:.3f} (along the trajectory, agreement "
            f"{lin.trajectory_agreement:.3f})"
            if has_trajectory
            else ""
        )
        lines.append(
            f"WARNING: the linearised models lose {lin.full - lin.initial:.3f} (at the "
            f"reference point, agreement {lin.agreement:.3f}; with the readout recentred "
            f"{lin.recentred:.4f}){along} accuracy: the network is not faithfully linear "
            "in its inputs around these points"
        )
    elif lin.full - lin.initial > 0.05:
        lines.append(
            f"NOTE: linearised at the reference point the model scores {lin.initial:.3f}, "
            f"along its trajectory from h0 under x* {lin.trajectory:.3f} (full "
            f"{lin.full:.3f}): the transient from the initial state, not the response to "
            "words, is what a single expansion point misses"
        )
    frac = " / ".join(f"{x:.3f}" for x in lin.linearized_predicted)
    full_frac = " / ".join(f"{x:.3f}" for x in lin.full_predicted)
    bins = ", ".join(
        f"[{lo:g}, {hi:g}) {f:.3f}/{li:.3f}"
        for lo, hi, f, li in zip(
            lin.length_edges[:-1], lin.length_edges[1:], lin.length_full,
            lin.length_linearized, strict=True,
        )
    )  # fmt: skip
    lines += [
        f"{a.model.get('cell', '?')} on {a.dataset}: {len(a.fixed_points)} fixed points kept "
        f"({a.num_converged}/{a.num_candidates} converged, {a.search} search, x* = "
        f"{a.settings.get('input_star', 'zero')})",
        f"reference point {ref.index}: |λ1| {ref.spectral_radius:.4f}, {ref.distance:.3g} from "
        f"h0 ({ref.reason})",
        f"manifold dimension {geo.manifold_dimension} ({geo.dimension_rule}); fixed points: "
        f"PCs to 90% {fpd.pca90}, 95% {fpd.pca95}, PR {fpd.participation_ratio:.2f}, "
        f"Levina-Bickel {fpi.levina_bickel:.2f}, correlation {fpi.correlation:.2f}; states: "
        f"{sd.pca90}/{sd.pca95}, PR {sd.participation_ratio:.2f}, Levina-Bickel "
        f"{si.levina_bickel:.2f}, correlation {si.correlation:.2f}, local PCA "
        f"{si.local_pca:.2f}; predicted from word counts {pred.dimension} (PR "
        f"{pred.participation_ratio:.2f})",
        f"|λ1| median {np.median(spec.spectral_radius):.4f}; τ1 median "
        f"{np.median(spec.time_constants[:, 0]):.4g} steps; line-attractor score median "
        f"{np.median(spec.line_attractor_score):.2f}; slow modes per point median "
        f"{np.median(spec.slow_modes):.0f}",
        f"readout overlap with the manifold {geo.readout_overlap:.3f}; slowest right "
        f"eigenvector tangent alignment median {np.median(geo.tangent_alignment):.3f}",
        f"word effects vs bag-of-words: r = {we.correlation:.3f} at the reference point, "
        f"{we.trajectory_correlation:.3f} along the trajectory ({we.trajectory_length} "
        f"tokens); drift per token "
        f"{np.array2string(we.drift, precision=4)}; |effect| vs log count r = "
        f"{we.frequency_correlation:.3f}",
        f"accuracy: full {lin.full:.4f}, linearised at the reference {lin.initial:.4f} "
        f"(recentred {lin.recentred:.4f}, agreement {lin.agreement:.3f}), around the nearest "
        f"point {lin.nearest:.4f}, along the trajectory under x* {lin.trajectory:.4f} "
        f"(agreement {lin.trajectory_agreement:.3f})",
        f"predicted class fractions: full {full_frac}, linearised {frac}; accuracy by length "
        f"(full/linearised): {bins}",
    ]
    if a.word_inputs is not None:
        wi = a.word_inputs
        lines.append(
            f"fixed points under word inputs ({len(wi.words)} words): shift along the readout "
            f"vs bag-of-words r = {wi.correlation:.3f}"
        )
    return "\n".join(lines)


# --------------------------------------------------------------- compact JSON report

_FORMAT = "rnndyn.analysis/2"


def _npz_path(path: str) -> str:
    return path + ".npz"


def _atomic_write(path: str, write: Callable[[Any], Any], mode: str) -> None:
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=os.path.basename(path))
    try:
        kw = {"encoding": "utf-8"} if "b" not in mode else {}
        with os.fdopen(fd, mode, **kw) as f:
            write(f)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _encode(a: Analysis, big: dict) -> dict:
    body = _encode_value(a, "", big)
    return {"format": _FORMAT, "summary": a.summary().splitlines(), **body}


def _encode_value(x: Any, path: str, big: dict) -> Any:
    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        out = {"__record__": type(x).__name__}
        for f in dataclasses.fields(x):
            out[f.name] = _encode_value(getattr(x, f.name), f"{path}{f.name}.", big)
        return out
    if isinstance(x, tuple) and hasattr(x, "_fields"):  # NamedTuple records
        out = {"__record__": type(x).__name__}
        for k, v in zip(x._fields, x, strict=True):
            out[k] = _encode_value(v, f"{path}{k}.", big)
        return out
    if isinstance(x, (jax.Array, np.ndarray)):
        arr = np.asarray(x)
        meta = {"shape": list(arr.shape), "dtype": arr.dtype.str}
        if arr.size > MAX_JSON_ELEMENTS:
            key = path.rstrip(".")
            big[key] = arr
            return {"npz": key, **meta}
        if arr.dtype.kind == "c":
            values = {"real": _floats(arr.real), "imag": _floats(arr.imag)}
        else:
            values = _floats(arr) if arr.dtype.kind == "f" else arr.tolist()
        return {"array": values, **meta}
    if isinstance(x, dict):
        return {str(k): _encode_value(v, f"{path}{k}.", big) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_encode_value(v, f"{path}{i}.", big) for i, v in enumerate(x)]
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, float):
        return _floats(x)
    return x


def _floats(x: Any) -> Any:
    if isinstance(x, np.ndarray):
        return _floats(x.astype(np.float64).tolist())
    if isinstance(x, list):
        return [_floats(v) for v in x]
    if isinstance(x, float) and not math.isfinite(x):
        return "nan" if math.isnan(x) else ("inf" if x > 0 else "-inf")
    return x


def _decode(x: Any, arrays: dict) -> Any:
    if isinstance(x, dict):
        if "__record__" in x:
            return _decode_record(x, arrays)
        if "npz" in x and "dtype" in x:
            if x["npz"] not in arrays:
                raise ValueError(f"array {x['npz']!r} is missing from the .npz beside the report")
            return arrays[x["npz"]]
        if "array" in x and "dtype" in x:
            return _decode_array(x)
        return {k: _decode(v, arrays) for k, v in x.items()}
    if isinstance(x, list):
        return [_decode(v, arrays) for v in x]
    if x in ("nan", "inf", "-inf"):
        return float(x)
    return x


def _decode_array(x: dict) -> np.ndarray:
    dtype = np.dtype(x["dtype"])
    v = x["array"]
    if dtype.kind == "c":
        arr = _decode_floats(v["real"]) + 1j * _decode_floats(v["imag"])
    elif dtype.kind == "f":
        arr = _decode_floats(v)
    else:
        arr = np.asarray(v)
    return arr.astype(dtype).reshape(x["shape"])


def _decode_floats(v: Any) -> np.ndarray:
    def conv(y):
        if isinstance(y, list):
            return [conv(z) for z in y]
        return float(y)

    return np.asarray(conv(v), np.float64)


def _decode_record(x: dict, arrays: dict) -> Any:
    name = x["__record__"]
    cls = Analysis if name == "Analysis" else _RECORDS.get(name)
    if cls is None:
        raise ValueError(f"unknown record type {name!r} in the report")
    fields = {k: _decode(v, arrays) for k, v in x.items() if k != "__record__"}
    for k, v in fields.items():
        if isinstance(v, list) and k in ("words", "names", "stats_items"):
            fields[k] = tuple(tuple(i) if isinstance(i, list) else i for i in v)
    return cls(**fields)
