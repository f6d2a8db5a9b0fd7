"""Geometry and dimension of attractor manifolds.

Everything here works on plain arrays (fixed points, hidden states), so it needs no
trained network:

* dimension of a point set: ``pca``, ``num_components``, ``participation_ratio``,
  ``dimension`` (PCA), and estimators beyond PCA (study B): ``levina_bickel``
  (nearest-neighbour maximum likelihood), ``correlation_dimension``
  (Grassberger–Procaccia), ``local_pca_dimension`` (participation ratio of local
  neighbourhoods), all at once with ``intrinsic_dimension``;
* geometry: ``fit_subspace``, ``order_along_line``, ``principal_cosines``,
  ``principal_angles``, ``subspace_overlap``, ``readout_alignment``,
  ``tangent_alignment``.

Spectra (``num_slow_modes``, ``line_attractor_score``) live in ``rnndyn.linearize``
beside the eigendecomposition, and word statistics (bag of words, ``predict_dimension``,
word projections) in ``rnndyn.words``, which builds on this module (never the reverse).

Analysis is done in float64 numpy (small matrices, exact rules).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.spatial import cKDTree

from rnndyn._checks import check_fraction, check_int, real_array
from rnndyn._records import record, static

__all__ = [
    "PCA",
    "Dimension",
    "IntrinsicDimension",
    "Subspace",
    "correlation_dimension",
    "dimension",
    "fit_subspace",
    "intrinsic_dimension",
    "levina_bickel",
    "local_pca_dimension",
    "num_components",
    "order_along_line",
    "participation_ratio",
    "pca",
    "principal_angles",
    "principal_cosines",
    "readout_alignment",
    "subspace_overlap",
    "tangent_alignment",
]

# ------------------------------------------------------------------ dimension of points


@record
class PCA:
    """Principal components of a point set ``X (K, D)``; ``D' = min(K, D)`` (a record).

    Attributes:
      explained_variance: ``(D',)`` variance along each component (``s² / (K − 1)``,
        with ``s`` the singular values of the centred points), descending.
      explained_ratio: ``(D',)`` ``explained_variance / total variance`` (zeros if the
        points do not vary).
      cumulative: ``(D',)`` running sum of ``explained_ratio``.
      components: ``(D', D)`` orthonormal directions as rows; the sign of each is fixed so
        that its largest-magnitude entry is positive (deterministic output).
      mean: ``(D,)`` the centre of the points.
    """

    explained_variance: np.ndarray
    explained_ratio: np.ndarray
    cumulative: np.ndarray
    components: np.ndarray
    mean: np.ndarray


def pca(X: Any) -> PCA:
    """PCA of the rows of ``X (K, D)`` (``K >= 2`` points in ``D`` dimensions)."""
    x = real_array("X", X, (2,), "(K points, D dimensions)")
    if x.shape[0] < 2:
        raise ValueError(f"X has shape {x.shape}; expected (K, D) with K >= 2 points")
    mean = x.mean(axis=0)
    return _pca_of_centred(x - mean, mean, ddof=1)


def _pca_of_centred(xc: np.ndarray, mean: np.ndarray, ddof: int) -> PCA:
    _, s, vt = np.linalg.svd(xc, full_matrices=False)
    var = s**2 / max(xc.shape[0] - ddof, 1)
    total = var.sum()
    ratio = var / total if total > 0 else np.zeros_like(var)
    # Fix each component's sign (SVD's is arbitrary) so results are reproducible.
    flip = np.sign(vt[np.arange(vt.shape[0]), np.argmax(np.abs(vt), axis=1)])
    vt = vt * np.where(flip == 0, 1.0, flip)[:, None]
    return PCA(var, ratio, np.cumsum(ratio), vt, mean)


def _as_pca(X: Any) -> PCA:
    return X if isinstance(X, PCA) else pca(X)


def num_components(X: Any, threshold: float = 0.9) -> int:
    """Smallest ``k`` with ``cumulative[k − 1] >= threshold``: #PCs to explain it.

    Args:
      X: points ``(K, D)`` or a ``PCA``.
      threshold: fraction of variance in ``(0, 1]`` (0.9 and 0.95 are the usual ones).

    Returns:
      ``k`` in ``1 … D'``; 0 if the points do not vary at all.
    """
    check_fraction("threshold", threshold)
    p = _as_pca(X)
    if p.explained_variance.sum() <= 0:
        return 0
    # The tolerance stops threshold = 1.0 from failing on round-off in the cumsum.
    return int(np.searchsorted(p.cumulative, threshold - 1e-12) + 1)


def participation_ratio(X: Any) -> float:
    """Participation ratio ``PR = (Σ λ_i)² / Σ λ_i²`` of a variance spectrum.

    Args:
      X: points ``(K, D)`` (their PCA variances are used), a ``PCA``, or a spectrum
        ``(n,)`` of non-negative variances / eigenvalues of a covariance.

    Returns:
      ``PR`` in ``[1, rank]``: ``k`` for ``k`` equal variances, near 1 when one
      dominates; ``nan`` if the spectrum is all zeros.
    """
    if isinstance(X, PCA):
        lam = X.explained_variance
    else:
        arr = real_array("X", X, (1, 2), "((K, D) points or (n,) spectrum)")
        lam = pca(arr).explained_variance if arr.ndim == 2 else arr
        if arr.ndim == 1 and np.any(lam < 0):
            raise ValueError("X as a spectrum must be non-negative (variances), got negatives")
    sq = float(np.sum(lam**2))
    return float(np.sum(lam) ** 2 / sq) if sq > 0 else float("nan")


@record
class Dimension:
    """Summary of a point set's dimension (a record).

    Attributes:
      pca90: #PCs to explain 90% of the variance.
      pca95: #PCs to explain 95%.
      participation_ratio: ``(Σλ)² / Σλ²`` of the PCA variances.
      spectrum: ``(D',)`` explained-variance ratios, descending.
    """

    pca90: int
    pca95: int
    participation_ratio: float
    spectrum: np.ndarray


def dimension(X: Any) -> Dimension:
    """``Dimension`` summary of points ``X (K, D)`` (or of a ``PCA``)."""
    p = _as_pca(X)
    return Dimension(
        num_components(p, 0.9), num_components(p, 0.95), participation_ratio(p), p.explained_ratio
    )


# ------------------------------------------------------- intrinsic dimension (study B)


def _subsample(x: np.ndarray, max_points: int) -> np.ndarray:
    """At most ``max_points`` rows, evenly spaced (deterministic), duplicates removed."""
    check_int("max_points", max_points, 3)
    if x.shape[0] > max_points:
        x = x[np.linspace(0, x.shape[0] - 1, max_points).round().astype(np.int64)]
    return np.unique(x, axis=0)


def _points(points: Any, max_points: int, need: int) -> np.ndarray:
    x = _subsample(real_array("points", points, (2,), "(K points, D dimensions)"), max_points)
    if x.shape[0] < need:
        raise ValueError(
            f"points has {x.shape[0]} distinct rows (after subsampling to at most "
            f"{max_points}); expected at least {need}"
        )
    return x


def levina_bickel(points: Any, k: int = 10, *, max_points: int = 5000) -> float:
    """Maximum-likelihood intrinsic dimension (Levina & Bickel 2004).

    With ``T_j(x)`` the distance from ``x`` to its ``j``-th nearest neighbour, the local
    estimate is ``m_k(x) = [1/(k−1) Σ_{j<k} log(T_k(x) / T_j(x))]^{-1}``; the global one
    averages the inverses over the points before inverting (MacKay & Ghahramani's
    correction, less biased than averaging ``m_k``).

    Args:
      points: ``(K, D)``; duplicates are dropped, and at most ``max_points`` evenly
        spaced rows are used.
      k: neighbours per point, ``k >= 3`` (5–20 is usual; larger sees more curvature).

    Returns:
      The dimension estimate (a float, ``>= 0``).
    """
    check_int("k", k, 3)
    x = _points(points, max_points, k + 1)
    dist, _ = cKDTree(x).query(x, k=k + 1)  # column 0 is the point itself
    t = dist[:, 1:]
    inv = np.mean(np.log(t[:, -1:] / t[:, :-1]), axis=1)
    return float(1.0 / np.mean(inv))


def _pair_distances(x: np.ndarray, i: np.ndarray, j: np.ndarray, chunk: int = 8192):
    """``‖x[i] − x[j]‖`` row by row, in chunks of pairs: the same numbers as one
    vectorised expression without its ``(pairs, D)`` temporaries (gigabytes for 2
    million pairs in 128 dimensions)."""
    out = np.empty(i.size)
    for start in range(0, i.size, chunk):
        a, b = i[start : start + chunk], j[start : start + chunk]
        out[start : start + chunk] = np.linalg.norm(x[a] - x[b], axis=1)
    return out


def correlation_dimension(
    points: Any,
    *,
    radii: tuple[float, float] | None = None,
    quantiles: tuple[float, float] = (0.005, 0.05),
    num_radii: int = 12,
    max_points: int = 3000,
) -> float:
    """Correlation dimension (Grassberger & Procaccia 1983).

    ``C(r)`` is the fraction of point pairs closer than ``r``; on a ``d``-dimensional set
    ``C(r) ∝ r^d`` at small ``r``. The estimate is the least-squares slope of
    ``log C(r)`` against ``log r`` over ``num_radii`` log-spaced radii between
    ``radii`` (default: the ``quantiles`` of all pair distances, i.e. small scales that
    still hold enough pairs).

    Args:
      points: ``(K, D)``; duplicates are dropped, at most ``max_points`` rows used.
      radii: ``(r_min, r_max)`` of the scaling range, ``0 < r_min < r_max``.
      quantiles: pair-distance quantiles for the default range, ``0 < q1 < q2 < 1``.
      num_radii: radii in the fit, ``>= 2``.

    Returns:
      The slope (a float).
    """
    check_int("num_radii", num_radii, 2)
    x = _points(points, max_points, 3)
    tree = cKDTree(x)
    if radii is None:
        q1, q2 = quantiles
        if not 0.0 < q1 < q2 < 1.0:
            raise ValueError(f"quantiles must satisfy 0 < q1 < q2 < 1, got {quantiles!r}")
        i, j = np.triu_indices(x.shape[0], 1)
        if i.size > 2_000_000:  # enough pairs for the quantiles
            pick = np.linspace(0, i.size - 1, 2_000_000).round().astype(np.int64)
            i, j = i[pick], j[pick]
        d = _pair_distances(x, i, j)
        r_min, r_max = np.quantile(d, [q1, q2])
    else:
        r_min, r_max = radii
        if not 0.0 < r_min < r_max:
            raise ValueError(f"radii must satisfy 0 < r_min < r_max, got {radii!r}")
    r = np.geomspace(r_min, r_max, num_radii)
    pairs = np.asarray(tree.count_neighbors(tree, r), np.float64) - x.shape[0]
    if np.any(pairs <= 0):
        raise ValueError(
            f"no pair of points closer than r_min={r_min:.3g}; widen radii or quantiles"
        )
    return float(np.polyfit(np.log(r), np.log(pairs), 1)[0])


def local_pca_dimension(points: Any, k: int = 20, *, max_points: int = 2000) -> float:
    """Local-PCA dimension: participation ratio of nearest-neighbour patches.

    For each point, the PCA variances of its ``k`` nearest neighbours (itself included)
    give a participation ratio ``(Σλ)² / Σλ²``; ``p`` is their mean. A few samples of a
    ``d``-dimensional isotropic cloud have a lower PR than ``d`` (sample covariances
    spread their eigenvalues): for ``m = k − 1`` degrees of freedom the Wishart moments
    give ``E PR ≈ (m d + 2) / (m + d + 1)``. The result inverts that,
    ``d = (p k − 2) / (k − 1 − p)``, so flat ``d``-dimensional patches give about ``d``
    (without the correction 20 neighbours in 5-D read 3.9). Curvature inside a
    neighbourhood adds a little (keep ``k`` small against the curvature radius).

    Args:
      points: ``(K, D)``; duplicates are dropped, at most ``max_points`` rows used.
      k: neighbourhood size, ``k >= 3``.

    Returns:
      The corrected mean local participation ratio (a float ``>= 1``).
    """
    check_int("k", k, 3)
    x = _points(points, max_points, k)
    _, idx = cKDTree(x).query(x, k=k)
    nb = x[idx] - x[idx].mean(axis=1, keepdims=True)  # (K, k, D)
    lam = np.linalg.svd(nb, compute_uv=False) ** 2
    p = float(np.mean(lam.sum(1) ** 2 / np.sum(lam**2, axis=1)))
    return max(1.0, (p * k - 2.0) / (k - 1.0 - p))


@record
class IntrinsicDimension:
    """Dimension estimates of one point set beyond global PCA (a record; ``num_points`` is
    static).

    Attributes:
      levina_bickel: ``levina_bickel`` (nan if it could not be computed).
      correlation: ``correlation_dimension`` (nan if it could not be computed).
      local_pca: ``local_pca_dimension`` (nan if it could not be computed).
      num_points: distinct points used.
    """

    levina_bickel: float
    correlation: float
    local_pca: float
    num_points: int = static()

    @property
    def dimension(self) -> float:
        """The median of the available estimates."""
        vals = [v for v in (self.levina_bickel, self.correlation, self.local_pca) if v == v]
        return float(np.median(vals)) if vals else float("nan")


def intrinsic_dimension(
    points: Any, k: int = 10, *, max_points: int = 2000, min_points: int = 50
) -> IntrinsicDimension:
    """All three estimators on ``points (K, D)``; an estimate that cannot be computed
    (fewer than ``min_points`` distinct points, all points equal) is nan, not an error:
    nearest-neighbour statistics of a handful of points are noise."""
    x = _subsample(real_array("points", points, (2,), "(K points, D dimensions)"), max_points)
    if x.shape[0] < min_points:
        nan = float("nan")
        return IntrinsicDimension(nan, nan, nan, int(x.shape[0]))

    def safe(fn, *args, **kw) -> float:
        try:
            return fn(*args, **kw)
        except (ValueError, np.linalg.LinAlgError, ZeroDivisionError, FloatingPointError):
            return float("nan")

    with np.errstate(divide="ignore", invalid="ignore"):
        return IntrinsicDimension(
            levina_bickel=safe(levina_bickel, x, k),
            correlation=safe(correlation_dimension, x),
            local_pca=safe(local_pca_dimension, x, max(2 * k, 3)),
            num_points=int(x.shape[0]),
        )


# ------------------------------------------------------------------ dimension of spectra


# ``num_slow_modes`` and ``line_attractor_score`` live beside the eigendecomposition in
# ``rnndyn.linearize``.


# --------------------------------------------------------------------------- geometry


@record
class Subspace:
    """Affine subspace ``mean + span(basis)`` (a record).

    Attributes:
      mean: ``(D,)`` a point on it (the centre of the fitted points).
      basis: ``(dim, D)`` orthonormal rows.
      residual_fraction: fraction of the points' variance off the subspace.
    """

    mean: np.ndarray
    basis: np.ndarray
    residual_fraction: float

    def project(self, points: Any) -> np.ndarray:
        """Coordinates ``(K, dim)`` of ``points (K, D)`` in the basis."""
        x = real_array("points", points, (2,), "(K, D)")
        if x.shape[1] != self.mean.shape[0]:
            raise ValueError(f"points has shape {x.shape}; expected (K, {self.mean.shape[0]})")
        return (x - self.mean) @ self.basis.T


def fit_subspace(points: Any, dim: int) -> Subspace:
    """Least-squares affine subspace of dimension ``dim`` through ``points (K, D)``.

    The top ``dim`` principal components around the mean (Eckart–Young optimal).
    """
    p = pca(points)
    check_int("dim", dim, 1)
    if dim > p.components.shape[0]:
        raise ValueError(
            f"dim={dim} exceeds min(K, D)={p.components.shape[0]} for points of shape "
            f"({len(np.asarray(points))}, {p.mean.shape[0]})"
        )
    resid = 1.0 - float(p.cumulative[dim - 1]) if p.explained_variance.sum() > 0 else 0.0
    return Subspace(p.mean, p.components[:dim], max(resid, 0.0))


def order_along_line(points: Any) -> np.ndarray:
    """Indices ``(K,)`` sorting ``points (K, D)`` by their coordinate on the first PC.

    The direction is the (sign-fixed) first component of ``pca``; reverse the result
    for the other end first.
    """
    p = pca(points)
    x = np.asarray(points, dtype=np.float64)
    return np.argsort((x - p.mean) @ p.components[0], kind="stable")


def _orthonormal_rows(name: str, A: Any, dim: int | None = None) -> np.ndarray:
    a = real_array(name, A, (1, 2), "(n, D) spanning rows")
    a = np.atleast_2d(a)
    if dim is not None and a.shape[1] != dim:
        raise ValueError(f"{name} has shape {a.shape}; expected (n, {dim}) to match")
    u, s, _ = np.linalg.svd(a.T, full_matrices=False)
    rank = int(np.sum(s > s.max() * 1e-10)) if s.size and s.max() > 0 else 0
    if rank == 0:
        raise ValueError(f"{name} (shape {a.shape}) spans nothing: all rows are zero")
    return u[:, :rank].T


def principal_cosines(A: Any, B: Any) -> np.ndarray:
    """Cosines of the principal angles between the row spaces of ``A (a, D)``, ``B (b, D)``.

    Rows need not be orthonormal. Returns ``(min(rank A, rank B),)`` values in ``[0, 1]``,
    descending (1 = a shared direction, 0 = orthogonal).
    """
    qa = _orthonormal_rows("A", A)
    qb = _orthonormal_rows("B", B, qa.shape[1])
    return np.clip(np.linalg.svd(qa @ qb.T, compute_uv=False), 0.0, 1.0)


def principal_angles(A: Any, B: Any) -> np.ndarray:
    """Principal angles (radians, ascending) between the row spaces of ``A`` and ``B``."""
    return np.arccos(principal_cosines(A, B))


def subspace_overlap(A: Any, B: Any) -> float:
    """Mean squared cosine of the principal angles: 1 if one space contains the other,
    0 if they are orthogonal."""
    return float(np.mean(principal_cosines(A, B) ** 2))


def readout_alignment(readout: Any, basis: Any) -> np.ndarray:
    """``|cos|`` between each readout row and each manifold direction.

    Args:
      readout: ``W (C, D)``, one row per class as in ``logits = W h + b`` (transpose a
        flax ``Dense`` kernel, which is ``(D, C)``).
      basis: ``(k, D)`` directions of the manifold (e.g. ``Subspace.basis`` or the
        ``components`` of a ``PCA``); need not be normalised.

    Returns:
      ``(C, k)`` ``|cos|`` values in ``[0, 1]``.
    """
    w = real_array("readout", readout, (1, 2), "(C, D) readout rows")
    b = real_array("basis", basis, (1, 2), "(k, D) directions")
    w, b = np.atleast_2d(w), np.atleast_2d(b)
    if w.shape[1] != b.shape[1]:
        hint = " (pass readout.T: readout must be (C, D))" if w.shape[0] == b.shape[1] else ""
        raise ValueError(
            f"readout has shape {w.shape} and basis {b.shape}; expected (C, D) and (k, D) "
            f"with the same D{hint}"
        )
    return np.clip(np.abs(_unit_rows("readout", w) @ _unit_rows("basis", b).T), 0.0, 1.0)


def _unit_rows(name: str, x: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(x, axis=-1, keepdims=True)
    if np.any(n == 0):
        raise ValueError(f"{name} has a zero row (shape {x.shape}); directions must be non-zero")
    return x / n


def tangent_alignment(
    points: Any, vectors: Any, *, manifold_dim: int = 1, k: int | None = None
) -> np.ndarray:
    """How tangent each point's vector is to the manifold through the points.

    Rule: the local tangent space at point ``i`` is spanned by the top ``manifold_dim``
    principal components of its ``k`` nearest neighbours (itself included); the result
    is ``‖P_i v_i‖ / ‖v_i‖`` with ``P_i`` the projector on it (= ``|cos|`` with the
    tangent when ``manifold_dim = 1``). With ``k=None`` and ``manifold_dim=1`` the global
    first PC is used as the tangent of a straight line attractor.

    Args:
      points: ``(K, D)`` fixed points.
      vectors: ``(K, D)`` one vector per point, e.g. the top right eigenvector
        ``Eigen.right[:, :, 0]``; complex vectors are reduced to their real part.
      manifold_dim: dimension of the manifold.
      k: neighbourhood size, ``manifold_dim < k <= K``.

    Returns:
      ``(K,)`` values in ``[0, 1]``: 1 = tangent, 0 = normal.
    """
    x = real_array("points", points, (2,), "(K, D)")
    v = np.asarray(vectors)
    v = real_array("vectors", v.real if v.dtype.kind == "c" else v, (2,), "(K, D)")
    if v.shape != x.shape:
        raise ValueError(f"vectors has shape {v.shape}; expected {x.shape} like points")
    check_int("manifold_dim", manifold_dim, 1)
    v = _unit_rows("vectors", v)
    if k is None:
        if manifold_dim != 1:
            raise ValueError(f"k is required for manifold_dim={manifold_dim} (local PCA)")
        return np.clip(np.abs(v @ pca(x).components[0]), 0.0, 1.0)
    check_int("k", k, manifold_dim + 1)
    if k > x.shape[0]:
        raise ValueError(f"k={k} exceeds the number of points K={x.shape[0]}")
    # Gram form: O(K² + K D) memory instead of a (K, K, D) difference tensor.
    sq = np.sum(x**2, axis=1)
    d2 = sq[:, None] + sq[None, :] - 2.0 * (x @ x.T)
    np.fill_diagonal(d2, -np.inf)  # each point is its own first neighbour
    neighbours = np.argsort(d2, axis=1, kind="stable")[:, :k]
    out = np.empty(x.shape[0])
    for i, idx in enumerate(neighbours):
        nb = x[idx] - x[idx].mean(axis=0)
        basis = np.linalg.svd(nb, full_matrices=False)[2][:manifold_dim]
        out[i] = np.linalg.norm(basis @ v[i])
    return np.clip(out, 0.0, 1.0)
