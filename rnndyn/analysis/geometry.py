"""Stage: dimension and geometry of the manifold (``geometry``)."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from rnndyn import manifold as mf
from rnndyn._records import record, static
from rnndyn.analysis._common import output_jacobian, readout_rows
from rnndyn.analysis.reference import Reference
from rnndyn.analysis.spectra import Spectra
from rnndyn.linearize import Eigen, real_modes
from rnndyn.models import Classifier

__all__ = ["MAX_PCA_STATES", "Geometry", "geometry"]

#: Visited states used for the state-space PCA (a random subset beyond this).
MAX_PCA_STATES = 20_000


#: ``jax.random.choice`` as one program (op by op it compiled a dozen)
_choice = jax.jit(jax.random.choice, static_argnums=(1, 2, 3))


@record
class Geometry:
    """Dimension and geometry of the manifold. ``d`` dimensions, ``C`` classes.

    Attributes:
      manifold_dimension: the ``d`` used for word effects and geometry (rule below).
      dimension_rule: how ``d`` was chosen: ``"given"``, ``"agree"`` (states and slow
        points need the same number of PCs), or a line giving both counts and the
        states' participation ratio; the count nearer it is taken (docs/analysis.md).
      threshold: variance fraction of the PCA rule.
      fixed_point_dimension: ``manifold.Dimension`` of the analysed slow points (all
        zero for fewer than two).
      state_dimension: ``manifold.Dimension`` of the visited hidden states (``h``; for
        an LSTM not ``c``).
      fixed_point_intrinsic: ``manifold.IntrinsicDimension`` of the slow points.
      state_intrinsic: ``manifold.IntrinsicDimension`` of the visited hidden states.
      manifold_basis: ``(d, S)`` principal directions of the visited full states.
      output_basis: ``(d, N)`` principal directions of the visited hidden states.
      readout: ``(C, N)`` readout rows (centred over classes for softmax).
      readout_alignment: ``(C, d)`` ``|cos|`` of readout rows with ``output_basis``.
      readout_overlap: mean squared cosine of the principal angles between the readout
        rows' span and ``output_basis``.
      readout_eigen_alignment: ``(C, d')`` ``|cos|`` of readout rows with the real basis
        of the top ``d`` modes at the reference point (``d' = d + 1`` when a complex pair
        is closed); nan for a mode the readout cannot see, or without a reference.
      tangent_alignment: ``(K,)`` ``‖P v‖ / ‖v‖`` of each point's slowest right
        eigenvector on the local ``d``-dimensional tangent space of the points.
      mode_values: ``(d',)`` eigenvalues of those modes at the reference point;
      mode_right: ``(S, d')`` their real basis (columns), each signed so that moving along
        it raises the logit it changes most; mode_left: ``(d', S)`` the dual rows
        (``linearize.real_modes``). ``None`` without a reference point.
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
    mode_values: Any = None
    mode_right: Any = None
    mode_left: Any = None
    dimension_rule: str = static("")


def geometry(
    model: Classifier,
    params: Any,
    points: np.ndarray,
    spec: Spectra,
    reference: Reference | None,
    visited: np.ndarray,
    *,
    key: jax.Array,
    threshold: float = 0.9,
    manifold_dim: int | None = None,
    neighbours: int | None = None,
) -> Geometry:
    """Dimension and geometry of the manifold traced by the slow points ``(K, S)`` and
    the visited states, against the readout and the slow modes at the reference point."""
    points = np.asarray(points, np.float64)
    states = visited.astype(np.float64)
    if len(states) > MAX_PCA_STATES:
        states = states[np.asarray(_choice(key, len(states), (MAX_PCA_STATES,), False))]
    # The hidden states the readout sees (h; for an LSTM not c, whose slow directions
    # can count tokens rather than evidence) define the states' dimension.
    out_states = np.asarray(jax.vmap(model.cell.output)(jnp.asarray(states, jnp.float32)))
    out_pca = mf.pca(out_states.astype(np.float64))
    d, rule = _manifold_dimension(out_pca, points, threshold)
    if manifold_dim is not None:
        d, rule = manifold_dim, "given"
    d = max(1, min(d, out_pca.components.shape[0], max(len(points) - 1, 1)))
    out_basis = out_pca.components[:d]
    w_out = readout_rows(model, params)
    modes, eigen_alignment = None, np.full((w_out.shape[0], d), np.nan)
    if reference is not None:
        modes, eigen_alignment = _reference_modes(model, reference, w_out, d)
    return Geometry(
        manifold_dimension=int(d),
        threshold=float(threshold),
        fixed_point_dimension=_dimension(points),
        state_dimension=mf.dimension(out_pca),
        fixed_point_intrinsic=mf.intrinsic_dimension(points if len(points) else np.zeros((1, 1))),
        state_intrinsic=mf.intrinsic_dimension(out_states),
        manifold_basis=mf.pca(states).components[:d],
        output_basis=out_basis,
        readout=w_out,
        readout_alignment=mf.readout_alignment(w_out, out_basis),
        readout_overlap=mf.subspace_overlap(w_out, out_basis),
        readout_eigen_alignment=eigen_alignment,
        tangent_alignment=_tangent(points, spec.slow_vectors, d, neighbours),
        mode_values=None if modes is None else modes.values,
        mode_right=None if modes is None else modes.right,
        mode_left=None if modes is None else modes.left,
        dimension_rule=rule,
    )


def _dimension(points: np.ndarray) -> mf.Dimension:
    """PCA dimension of the slow points; a single point (or none) has dimension 0."""
    return mf.dimension(points) if len(points) > 1 else mf.Dimension(0, 0, 0.0, np.zeros(0))


def _reference_modes(model, reference: Reference, w_out: np.ndarray, d: int):
    """The signed real basis of the top ``d`` modes at the reference point and the
    readout's alignment with them."""
    j_out = output_jacobian(model, reference.point)
    eigen = Eigen(reference.eigenvalues, reference.right, reference.left)
    modes = real_modes(eigen, min(d, len(reference.eigenvalues)))
    signs = sign_modes(w_out @ j_out, modes.right)
    modes = modes._replace(right=modes.right * signs, left=modes.left * signs[:, None])
    return modes, _alignment_or_nan(w_out, (j_out @ modes.right).T)


def _tangent(points: np.ndarray, vectors: np.ndarray, d: int, neighbours: int | None):
    """Tangent alignment of each point's slowest right eigenvector (nan for one point)."""
    if len(points) < 2:
        return np.full(len(points), np.nan)
    k_nb = min(neighbours if neighbours is not None else max(2 * d + 2, 10), len(points))
    if k_nb > d:
        return mf.tangent_alignment(points, vectors, manifold_dim=d, k=k_nb)
    # too few points for a local estimate: the global d-plane
    return np.linalg.norm(vectors @ mf.pca(points).components[:d].T, axis=1)


def _manifold_dimension(out_pca: mf.PCA, points: np.ndarray, threshold: float) -> tuple[int, str]:
    """The default rule when the states' and the slow points' PC counts disagree.

    The visited states include transients off the attractor (a document's first tokens,
    input-driven excursions) that add many small components without adding memory; the
    slow points trace the attractor but can miss parts the search did not reach. The
    states' participation ratio arbitrates: it counts directions of comparable variance
    and discounts a tail of small ones, so of the two counts the one nearer it is taken
    (ties: the smaller).
    """
    states_d = max(mf.num_components(out_pca, threshold), 1)
    if len(points) == 0:
        return states_d, f"no slow points: the states' {states_d} PCs"
    if len(points) == 1:
        return 1, (
            f"one slow point, a point attractor (dimension 0; states {states_d} PCs): word "
            "effects and geometry use its slowest mode"
        )
    points_d = max(mf.num_components(points, threshold), 1)
    if states_d == points_d:
        return states_d, "agree"
    pr = mf.participation_ratio(out_pca)
    lo, hi = sorted((states_d, points_d))
    d = lo if abs(lo - pr) <= abs(hi - pr) else hi
    return d, (
        f"states {states_d} PCs, slow points {points_d}; the nearer the states' "
        f"participation ratio {pr:.2f}"
    )


def sign_modes(readout: np.ndarray, right: np.ndarray) -> np.ndarray:
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
