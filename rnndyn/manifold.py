"""Geometry and dimension of attractor manifolds, and word-count predictions of it.

Everything here works on plain arrays (fixed points, hidden states, eigenvalues,
Jacobians, embeddings, token ids), so it needs no trained network:

* dimension estimates of a point set: ``pca``, ``num_components``,
  ``participation_ratio``, ``dimension``; of a spectrum: ``num_slow_modes``,
  ``line_attractor_score``;
* geometry: ``fit_subspace``, ``order_along_line``, ``principal_cosines``,
  ``principal_angles``, ``subspace_overlap``, ``readout_alignment``,
  ``tangent_alignment``;
* word effects: ``word_projections``, ``readout_projections``, ``fit_bag_of_words``,
  ``correlation``;
* the dimension predicted from word counts alone: ``predict_dimension``.

Analysis is done in float64 numpy (small matrices, exact rules); the bag-of-words fit
uses optax under ``jax.jit``.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Literal, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

__all__ = [
    "PCA",
    "BagOfWords",
    "Dimension",
    "DimensionPrediction",
    "Subspace",
    "class_mean_evidence",
    "correlation",
    "dimension",
    "fit_bag_of_words",
    "fit_subspace",
    "line_attractor_score",
    "num_components",
    "num_slow_modes",
    "order_along_line",
    "participation_ratio",
    "pca",
    "predict_dimension",
    "principal_angles",
    "principal_cosines",
    "readout_alignment",
    "readout_projections",
    "subspace_overlap",
    "tangent_alignment",
    "word_counts",
    "word_projections",
]

# ----------------------------------------------------------------------------- checks


def _real(name: str, x: Any, ndims: tuple[int, ...], meaning: str) -> np.ndarray:
    """``x`` as a finite float64 array with one of ``ndims`` dimensions, else ValueError."""
    try:
        arr = np.asarray(x)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} must be an array of numbers, got {type(x).__name__}") from err
    if arr.dtype.kind not in "biuf":
        raise ValueError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    if arr.ndim not in ndims:
        want = " or ".join(str(n) for n in ndims)
        raise ValueError(
            f"{name} must have {want} dimension(s) {meaning}, got shape {tuple(arr.shape)}"
        )
    if arr.size == 0:
        raise ValueError(f"{name} is empty (shape {tuple(arr.shape)}); expected {meaning}")
    arr = arr.astype(np.float64)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or inf (shape {tuple(arr.shape)})")
    return arr


def _complex(name: str, x: Any, ndims: tuple[int, ...], meaning: str) -> np.ndarray:
    arr = np.asarray(x)
    if arr.dtype.kind == "c":
        if arr.ndim not in ndims or arr.size == 0:
            raise ValueError(f"{name} must be {meaning}, got shape {tuple(arr.shape)}")
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{name} contains NaN or inf (shape {tuple(arr.shape)})")
        return arr.astype(np.complex128)
    return _real(name, arr, ndims, meaning)


def _check_threshold(threshold: float) -> None:
    ok = isinstance(threshold, (int, float, np.floating)) and 0.0 < threshold <= 1.0
    if not ok:
        raise ValueError(f"threshold must be a number in (0, 1], got {threshold!r}")


def _check_int(name: str, value: Any, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")


# ------------------------------------------------------------------ dimension of points


class PCA(NamedTuple):
    """Principal components of a point set ``X (K, D)``; ``D' = min(K, D)``.

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
    x = _real("X", X, (2,), "(K points, D dimensions)")
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
    _check_threshold(threshold)
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
        arr = _real("X", X, (1, 2), "((K, D) points or (n,) spectrum)")
        lam = pca(arr).explained_variance if arr.ndim == 2 else arr
        if arr.ndim == 1 and np.any(lam < 0):
            raise ValueError("X as a spectrum must be non-negative (variances), got negatives")
    sq = float(np.sum(lam**2))
    return float(np.sum(lam) ** 2 / sq) if sq > 0 else float("nan")


class Dimension(NamedTuple):
    """Summary of a point set's dimension.

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


# ------------------------------------------------------------------ dimension of spectra


def num_slow_modes(
    eigenvalues: Any, tol: float = 0.02, *, tau_min: float | None = None
) -> np.ndarray | int:
    """Number of slow modes per point.

    Rule: a mode is slow if ``| |λ| − 1 | <= tol``; with ``tau_min`` given instead, if its
    time constant ``τ = 1 / |log|λ|| >= tau_min`` (``tol`` is then ignored).

    Args:
      eigenvalues: ``(K, S)`` (one row per fixed point) or ``(S,)``, real or complex.
      tol: distance of ``|λ|`` from 1.
      tau_min: threshold on the time constant in steps.

    Returns:
      ``(K,)`` int counts, or an ``int`` for ``(S,)`` input.
    """
    lam = np.abs(_complex("eigenvalues", eigenvalues, (1, 2), "(K, S) or (S,)"))
    if tau_min is None:
        if not (isinstance(tol, (int, float, np.floating)) and tol >= 0):
            raise ValueError(f"tol must be a number >= 0, got {tol!r}")
        slow = np.abs(lam - 1.0) <= tol
    else:
        if not (isinstance(tau_min, (int, float, np.floating)) and tau_min > 0):
            raise ValueError(f"tau_min must be a number > 0, got {tau_min!r}")
        slow = _tau(lam) >= tau_min
    counts = slow.sum(axis=-1)
    return int(counts) if lam.ndim == 1 else counts.astype(np.int64)


def _tau(abs_lam: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return 1.0 / np.abs(np.log(abs_lam))


def line_attractor_score(eigenvalues: Any) -> np.ndarray | float:
    """``log2(τ1 / τ2)``: how much the slowest mode dominates (> 1: one dominant mode).

    ``τ1 >= τ2`` are the two largest time constants ``τ = 1 / |log|λ||`` of each row.
    ``inf`` if ``|λ1| = 1`` exactly and ``|λ2| != 1``; ``nan`` if both are 1.

    Args:
      eigenvalues: ``(K, S)`` or ``(S,)`` with ``S >= 2``, real or complex.

    Returns:
      ``(K,)`` scores, or a float for ``(S,)`` input.
    """
    lam = np.abs(_complex("eigenvalues", eigenvalues, (1, 2), "(K, S) or (S,)"))
    if lam.shape[-1] < 2:
        raise ValueError(f"eigenvalues has shape {lam.shape}; expected S >= 2 per row")
    tau = -np.sort(-_tau(lam), axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        score = np.log2(tau[..., 0] / tau[..., 1])
    return float(score) if lam.ndim == 1 else score


# --------------------------------------------------------------------------- geometry


class Subspace(NamedTuple):
    """Affine subspace ``mean + span(basis)``.

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
        x = _real("points", points, (2,), "(K, D)")
        if x.shape[1] != self.mean.shape[0]:
            raise ValueError(f"points has shape {x.shape}; expected (K, {self.mean.shape[0]})")
        return (x - self.mean) @ self.basis.T


def fit_subspace(points: Any, dim: int) -> Subspace:
    """Least-squares affine subspace of dimension ``dim`` through ``points (K, D)``.

    The top ``dim`` principal components around the mean (Eckart–Young optimal).
    """
    p = pca(points)
    _check_int("dim", dim, 1)
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
    a = _real(name, A, (1, 2), "(n, D) spanning rows")
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
    w = _real("readout", readout, (1, 2), "(C, D) readout rows")
    b = _real("basis", basis, (1, 2), "(k, D) directions")
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
    x = _real("points", points, (2,), "(K, D)")
    v = np.asarray(vectors)
    v = _real("vectors", v.real if v.dtype.kind == "c" else v, (2,), "(K, D)")
    if v.shape != x.shape:
        raise ValueError(f"vectors has shape {v.shape}; expected {x.shape} like points")
    _check_int("manifold_dim", manifold_dim, 1)
    v = _unit_rows("vectors", v)
    if k is None:
        if manifold_dim != 1:
            raise ValueError(f"k is required for manifold_dim={manifold_dim} (local PCA)")
        return np.clip(np.abs(v @ pca(x).components[0]), 0.0, 1.0)
    _check_int("k", k, manifold_dim + 1)
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


# ------------------------------------------------------------------------ word effects


def word_projections(left_vecs: Any, j_inp: Any, embeddings: Any) -> np.ndarray:
    """Effect of each word on each slow mode: ``P[w, i] = l_i · J_inp · x_w``.

    Args:
      left_vecs: ``(k, S)`` left eigenvectors as rows (``Eigen.left[:k]`` at one point).
      j_inp: ``(S, M)`` input Jacobian at that point.
      embeddings: ``(V, M)`` word embeddings ``x_w`` (minus ``x*`` if it is non-zero).

    Returns:
      ``(V, k)``; real unless ``left_vecs`` is complex with a non-negligible imaginary
      part (a complex mode), then complex.
    """
    l = _complex("left_vecs", left_vecs, (1, 2), "(k, S)")
    l = np.atleast_2d(l)
    j = _real("j_inp", j_inp, (2,), "(S, M)")
    e = _real("embeddings", embeddings, (2,), "(V, M)")
    _check_chain(l.shape, j.shape, e.shape, "left_vecs", "(k, S)")
    out = e @ j.T @ l.T
    if np.iscomplexobj(out) and np.all(np.abs(out.imag) <= 1e-12 * (1 + np.abs(out.real))):
        out = out.real
    return out


def readout_projections(readout: Any, j_inp: Any, embeddings: Any) -> np.ndarray:
    """Direct effect of each word on the logits: ``P[w, c] = W_c · J_inp · x_w``.

    Args:
      readout: ``W (C, S)`` readout rows; j_inp: ``(S, M)``; embeddings: ``(V, M)``.

    Returns:
      ``(V, C)``.
    """
    w = np.atleast_2d(_real("readout", readout, (1, 2), "(C, S)"))
    j = _real("j_inp", j_inp, (2,), "(S, M)")
    e = _real("embeddings", embeddings, (2,), "(V, M)")
    _check_chain(w.shape, j.shape, e.shape, "readout", "(C, S)")
    return e @ j.T @ w.T


def _check_chain(a: tuple, j: tuple, e: tuple, name: str, a_meaning: str) -> None:
    if a[1] != j[0] or j[1] != e[1]:
        raise ValueError(
            f"shapes do not chain: {name} {a}, j_inp {j}, embeddings {e}; expected "
            f"{name} {a_meaning}, j_inp (S, M), embeddings (V, M)"
        )


def correlation(a: Any, b: Any) -> float:
    """Pearson correlation of two equally long (flattened) arrays."""
    x = _real("a", np.ravel(np.asarray(a)), (1,), "(n,) values")
    y = _real("b", np.ravel(np.asarray(b)), (1,), "(n,) values")
    if x.shape != y.shape or x.size < 2:
        raise ValueError(f"a and b must have the same size >= 2, got {x.size} and {y.size}")
    x, y = x - x.mean(), y - y.mean()
    den = np.sqrt(np.sum(x**2) * np.sum(y**2))
    if den == 0:
        raise ValueError("a or b is constant; the correlation is undefined")
    return float(np.sum(x * y) / den)


# ---------------------------------------------------------------------- word counts


def word_counts(
    token_ids: Any, vocab_size: int, *, mask: Any = None, lengths: Any = None
) -> tuple[np.ndarray, np.ndarray]:
    """Per-document word counts.

    Args:
      token_ids: ``(B, T)`` integer ids in ``[0, vocab_size)``.
      vocab_size: ``V``.
      mask: optional ``(B, T)``, true at real tokens.
      lengths: optional ``(B,)`` number of real tokens (a prefix of each row); give at
        most one of ``mask`` and ``lengths``; with neither, every token counts.

    Returns:
      ``counts (B, V)`` float64 and ``T_d (B,)`` the number of counted tokens.
    """
    pairs = _doc_word_pairs(token_ids, vocab_size, mask, lengths)
    counts = np.zeros((pairs.lengths.shape[0], vocab_size))
    counts[pairs.doc, pairs.word] = pairs.count
    return counts, pairs.lengths


class _Pairs(NamedTuple):
    """Sparse word counts: ``count[i]`` occurrences of ``word[i]`` in document ``doc[i]``
    (sorted by document), and ``lengths (B,)`` the counted tokens per document. Memory is
    ``O(B T)``, never ``O(B V)``, so real vocabularies fit."""

    doc: np.ndarray
    word: np.ndarray
    count: np.ndarray
    lengths: np.ndarray


def _doc_word_pairs(token_ids: Any, vocab_size: int, mask: Any, lengths: Any) -> _Pairs:
    ids = np.asarray(token_ids)
    if ids.ndim != 2 or ids.dtype.kind not in "iu" or ids.size == 0:
        raise ValueError(
            f"token_ids must be a non-empty (B, T) integer array, got shape {ids.shape} "
            f"dtype {ids.dtype}"
        )
    _check_int("vocab_size", vocab_size, 1)
    keep = _token_mask(ids.shape, mask, lengths)
    # Ids outside the vocabulary are allowed only where masked out (e.g. padding).
    if np.any(keep & ((ids < 0) | (ids >= vocab_size))):
        raise ValueError(f"token_ids has ids outside [0, vocab_size={vocab_size}) at real tokens")
    b = ids.shape[0]
    flat = (np.arange(b, dtype=np.int64)[:, None] * vocab_size + ids.astype(np.int64))[keep]
    uniq, count = np.unique(flat, return_counts=True)
    return _Pairs(
        uniq // vocab_size,
        uniq % vocab_size,
        count.astype(np.float64),
        keep.sum(axis=1).astype(np.float64),
    )


def _token_mask(shape: tuple, mask: Any, lengths: Any) -> np.ndarray:
    if mask is not None and lengths is not None:
        raise ValueError("give at most one of mask and lengths")
    if mask is not None:
        m = np.asarray(mask)
        if m.shape != shape:
            raise ValueError(f"mask has shape {m.shape}; expected {shape} like token_ids")
        return m.astype(bool)
    if lengths is not None:
        n = np.asarray(lengths)
        if n.shape != shape[:1] or n.dtype.kind not in "iu" or np.any((n < 0) | (n > shape[1])):
            raise ValueError(
                f"lengths must be ({shape[0]},) integers in [0, {shape[1]}], got shape "
                f"{n.shape} dtype {n.dtype}"
            )
        return np.arange(shape[1])[None, :] < n[:, None]
    return np.ones(shape, dtype=bool)


def _labels(labels: Any, batch: int, num_classes: int | None, multilabel: bool):
    """Validated labels and the number of classes / labels."""
    y = np.asarray(labels)
    if multilabel:
        if y.ndim != 2 or y.shape[0] != batch or not np.all((y == 0) | (y == 1)):
            raise ValueError(
                f"labels for multilabel must be ({batch}, L) of 0/1, got shape {y.shape}"
            )
        if num_classes is not None and num_classes != y.shape[1]:
            raise ValueError(f"num_classes={num_classes} but labels has {y.shape[1]} columns")
        return y.astype(np.float64), y.shape[1]
    if y.shape != (batch,) or y.dtype.kind not in "iu":
        raise ValueError(
            f"labels must be ({batch},) integer class ids, got shape {y.shape} dtype {y.dtype}"
        )
    c = int(y.max()) + 1 if num_classes is None else num_classes
    _check_int("num_classes", c, 2)
    if np.any((y < 0) | (y >= c)):
        raise ValueError(f"labels must lie in [0, num_classes={c})")
    return y.astype(np.int64), c


# ------------------------------------------------------------------- bag of words


@dataclasses.dataclass(frozen=True)
class BagOfWords:
    """Bag-of-words logistic regression ``logits = counts @ weights + bias``.

    Attributes:
      weights: ``(V, C)``; row ``w`` is word ``w``'s Δlogit per occurrence.
      bias: ``(C,)``.
      accuracy: training accuracy (multi-label: mean over labels of per-label accuracy).
      multilabel: sigmoid per label (true) or softmax over classes (false).
    """

    weights: np.ndarray
    bias: np.ndarray
    accuracy: float
    multilabel: bool = False

    def logits(self, counts: Any) -> np.ndarray:
        """``(B, C)`` logits of ``counts (B, V)`` (see ``word_counts``)."""
        return np.asarray(counts, np.float64) @ self.weights + self.bias


def fit_bag_of_words(
    token_ids: Any,
    labels: Any,
    vocab_size: int,
    num_classes: int | None = None,
    *,
    mask: Any = None,
    lengths: Any = None,
    multilabel: bool = False,
    l2: float = 1e-4,
    steps: int = 500,
    learning_rate: float = 0.05,
    key: jax.Array | None = None,
) -> BagOfWords:
    """Fit a bag-of-words logistic regression on word counts (full-batch Adam, jit).

    Model: ``logits = n_d W + b`` with ``n_d`` the ``(V,)`` word counts of document
    ``d``; loss = mean softmax cross-entropy (or, ``multilabel``, mean sigmoid binary
    cross-entropy over labels) ``+ l2 · ‖W‖²``. The problem is convex, so starting from
    zeros (``key=None``) is fine; a ``key`` starts from small random weights instead.

    Args:
      token_ids: ``(B, T)`` ids; mask / lengths: which tokens count (see ``word_counts``).
      labels: ``(B,)`` class ids, or ``(B, L)`` 0/1 with ``multilabel=True``.
      vocab_size: ``V``; num_classes: ``C`` (default ``max(labels) + 1``).
      l2, steps, learning_rate: regularisation and optimiser settings.
      key: optional PRNG key for the initial weights.

    Returns:
      ``BagOfWords`` with ``weights (V, C)``, ``bias (C,)`` and training accuracy.
    """
    pairs = _doc_word_pairs(token_ids, vocab_size, mask, lengths)
    num_docs = pairs.lengths.shape[0]
    y, c = _labels(labels, num_docs, num_classes, multilabel)
    _check_int("steps", steps, 1)
    if not (isinstance(l2, (int, float, np.floating)) and l2 >= 0):
        raise ValueError(f"l2 must be a number >= 0, got {l2!r}")
    if not (isinstance(learning_rate, (int, float, np.floating)) and learning_rate > 0):
        raise ValueError(f"learning_rate must be a number > 0, got {learning_rate!r}")
    w0 = jnp.zeros((vocab_size, c), jnp.float32)
    if key is not None:
        w0 = 0.01 * jax.random.normal(key, (vocab_size, c), jnp.float32)
    sparse = (
        jnp.asarray(pairs.doc, jnp.int32),
        jnp.asarray(pairs.word, jnp.int32),
        jnp.asarray(pairs.count, jnp.float32),
    )
    w, b = _fit_bow(
        sparse,
        jnp.asarray(y),
        w0,
        float(l2),
        int(steps),
        float(learning_rate),
        bool(multilabel),
        num_docs,
    )
    w, b = np.asarray(w, np.float64), np.asarray(b, np.float64)
    logits = np.zeros((num_docs, c)) + b
    np.add.at(logits, pairs.doc, pairs.count[:, None] * w[pairs.word])
    if multilabel:
        acc = float(np.mean((logits > 0) == (y > 0.5)))
    else:
        acc = float(np.mean(np.argmax(logits, axis=1) == y))
    return BagOfWords(w, b, acc, multilabel)


@functools.partial(jax.jit, static_argnums=(4, 5, 6, 7))
def _fit_bow(sparse, y, w0, l2, steps, learning_rate, multilabel, num_docs):
    doc, word, count = sparse

    def loss(params):
        w, b = params
        # Sparse n_d W: sum count * W[word] per document (documents are sorted).
        logits = jax.ops.segment_sum(
            count[:, None] * w[word], doc, num_segments=num_docs, indices_are_sorted=True
        )
        logits = logits + b
        if multilabel:
            data = optax.sigmoid_binary_cross_entropy(logits, y).mean()
        else:
            data = optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
        return data + l2 * jnp.sum(w**2)

    opt = optax.adam(learning_rate)
    params = (w0, jnp.zeros(w0.shape[1], w0.dtype))

    def step(carry, _):
        params, state = carry
        grads = jax.grad(loss)(params)
        updates, state = opt.update(grads, state, params)
        return (optax.apply_updates(params, updates), state), None

    (params, _), _ = jax.lax.scan(step, (params, opt.init(params)), None, length=steps)
    return params


# ------------------------------------------------------------- predicted dimension


def class_mean_evidence(
    token_ids: Any,
    labels: Any,
    vocab_size: int,
    *,
    mask: Any = None,
    lengths: Any = None,
    num_classes: int | None = None,
    multilabel: bool = False,
) -> np.ndarray:
    """Class-mean word-frequency contrasts ``M (C, V)`` (or ``(L, V)`` for multi-label).

    With ``f_d = n_d / T_d`` a document's word frequencies and ``f̄`` their mean over all
    documents: categorical ``M_c = mean_{d ∈ c} f_d − f̄``; multi-label
    ``M_l = mean_{d: y_dl = 1} f_d − mean_{d: y_dl = 0} f_d``. Documents with no counted
    tokens are skipped; a class (or label side) with no documents gives a zero row.
    """
    pairs = _doc_word_pairs(token_ids, vocab_size, mask, lengths)
    return _class_means(pairs, labels, vocab_size, num_classes, multilabel)


def _class_means(
    pairs: _Pairs, labels: Any, vocab_size: int, num_classes: int | None, multilabel: bool
) -> np.ndarray:
    y, c = _labels(labels, pairs.lengths.shape[0], num_classes, multilabel)
    has_tokens = pairs.lengths > 0
    if not np.any(has_tokens):
        raise ValueError("no document has any counted token")
    freq = pairs.count / pairs.lengths[pairs.doc]  # entries of f_d = n_d / T_d

    def mean_f(doc_weight: np.ndarray) -> np.ndarray | None:
        """Weighted mean of f_d over the documents with tokens (None if weight 0)."""
        total = doc_weight[has_tokens].sum()
        if total == 0:
            return None
        return np.bincount(pairs.word, freq * doc_weight[pairs.doc], vocab_size) / total

    rows = []
    if multilabel:
        for l in range(c):
            on, off = mean_f(y[:, l]), mean_f(1.0 - y[:, l])
            rows.append(np.zeros(vocab_size) if on is None or off is None else on - off)
    else:
        overall = mean_f(np.ones(y.shape[0]))
        for k in range(c):
            m = mean_f((y == k).astype(np.float64))
            rows.append(np.zeros(vocab_size) if m is None else m - overall)
    return np.stack(rows)


class DimensionPrediction(NamedTuple):
    """Manifold dimension predicted from word counts.

    Attributes:
      dimension: #components of the evidence vectors to reach ``threshold``.
      explained_ratio: ``(n,)`` variance fractions of those components, descending.
      cumulative: ``(n,)`` running sum of ``explained_ratio``.
      participation_ratio: ``(Σλ)² / Σλ²`` of the component variances.
      evidence: ``(V', C)`` evidence vector of each kept word (rows follow ``words``).
      words: ``(V',)`` ids of the kept words (total count ``>= min_count``).
    """

    dimension: int
    explained_ratio: np.ndarray
    cumulative: np.ndarray
    participation_ratio: float
    evidence: np.ndarray
    words: np.ndarray


def predict_dimension(
    token_ids: Any,
    labels: Any,
    vocab_size: int,
    *,
    mask: Any = None,
    lengths: Any = None,
    num_classes: int | None = None,
    multilabel: bool = False,
    threshold: float = 0.9,
    method: Literal["class_means", "bow"] = "class_means",
    min_count: int = 1,
    bow: BagOfWords | None = None,
    bow_kwargs: dict | None = None,
) -> DimensionPrediction:
    """Predict the attractor-manifold dimension from word-count statistics alone.

    The dimension is the number of principal components of the words' class-evidence
    vectors needed to explain ``threshold`` of their variance. Only words with total
    count ``>= min_count`` are used (``V'`` of them).

    ``method="class_means"`` (METHODS §7, item 1): with ``f_d = n_d / T_d``,
    ``M_c = mean_{d∈c} f_d − mean_d f_d`` (``C`` rows; multi-label: one row per label,
    ``mean_{d: y_l=1} f_d − mean_{d: y_l=0} f_d``). The PCA is the SVD of ``M``
    restricted to the kept words, ``λ_i = s_i²`` (not re-centred: the rows are already
    contrasts with the overall mean, so a categorical ``M`` has rank ``C − 1``).
    Frequent words weigh more by construction (their frequencies move more).
    ``evidence = Mᵀ``.

    ``method="bow"`` (METHODS §7, item 2): fit ``fit_bag_of_words`` (or use ``bow``);
    word ``w``'s evidence is its Δlogit ``W_w (C,)``, centred over classes for softmax
    (a common shift of all logits changes nothing). With ``p_w`` the word's share of all
    tokens, the PCA is of the rows ``√p_w (W_w − W̄)`` with ``W̄ = Σ p_w W_w / Σ p_w``
    (frequency-weighted PCA of the evidence vectors).

    Args:
      token_ids: ``(B, T)`` ids; mask / lengths: see ``word_counts``.
      labels: ``(B,)`` class ids, or ``(B, L)`` 0/1 with ``multilabel=True``.
      vocab_size: ``V``; num_classes: ``C`` (default ``max(labels) + 1``).
      threshold: variance fraction in ``(0, 1]``.
      method: ``"class_means"`` or ``"bow"``.
      min_count: minimum total count of a word to be used.
      bow: an already fitted model for ``method="bow"``.
      bow_kwargs: extra arguments for ``fit_bag_of_words`` (e.g. ``key``, ``steps``).

    Returns:
      ``DimensionPrediction``.
    """
    _check_threshold(threshold)
    _check_int("min_count", min_count, 1)
    pairs = _doc_word_pairs(token_ids, vocab_size, mask, lengths)
    freq = np.bincount(pairs.word, pairs.count, vocab_size)
    words = np.flatnonzero(freq >= min_count)
    if words.size == 0:
        raise ValueError(f"no word occurs at least min_count={min_count} times")
    if method == "class_means":
        evidence = _class_means(pairs, labels, vocab_size, num_classes, multilabel).T[words]
        rows = evidence
    elif method == "bow":
        if bow is None:
            bow = fit_bag_of_words(
                token_ids,
                labels,
                vocab_size,
                num_classes,
                mask=mask,
                lengths=lengths,
                multilabel=multilabel,
                **(bow_kwargs or {}),
            )
        if bow.weights.shape[0] != vocab_size:
            raise ValueError(
                f"bow.weights has shape {bow.weights.shape}; expected ({vocab_size}, C)"
            )
        evidence = bow.weights[words]
        if not bow.multilabel:
            evidence = evidence - evidence.mean(axis=1, keepdims=True)
        p = freq[words] / freq[words].sum()
        rows = np.sqrt(p)[:, None] * (evidence - p @ evidence)
    else:
        raise ValueError(f"method must be 'class_means' or 'bow', got {method!r}")
    lam = np.linalg.svd(rows, compute_uv=False) ** 2
    total = lam.sum()
    ratio = lam / total if total > 0 else np.zeros_like(lam)
    cumulative = np.cumsum(ratio)
    dim = int(np.searchsorted(cumulative, threshold - 1e-12) + 1) if total > 0 else 0
    pr = float(total**2 / np.sum(lam**2)) if total > 0 else float("nan")
    return DimensionPrediction(dim, ratio, cumulative, pr, evidence, words)
