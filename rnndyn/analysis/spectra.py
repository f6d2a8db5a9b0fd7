"""Stage: eigendecompositions at the slow points (``spectra``)."""

from __future__ import annotations

import numpy as np

from rnndyn._records import record
from rnndyn.linearize import (
    TAU_MAX,
    Linearization,
    eig,
    line_attractor_score,
    mode_order,
    num_slow_modes,
    sort_modes,
    time_constants,
)

__all__ = ["MARGINAL", "STABLE", "UNSTABLE", "Spectra", "spectra", "stability"]

#: ``Spectra.stability`` codes.
STABLE, MARGINAL, UNSTABLE = 0, 1, 2


@record
class Spectra:
    """Eigenvalues of ``J_rec`` at the ``K`` analysed points, slowest mode first.

    Attributes:
      eigenvalues: ``(K, S)`` complex, in ``linearize.mode_order`` (by ``|λ|``: growing
        modes first, stable modes ordered by ``τ``, conjugate pairs adjacent).
      time_constants: ``(K, S)`` ``min(1 / |log|λ||, tau_max)`` in steps, same order.
      spectral_radius: ``(K,)`` ``|λ1|`` per point.
      stability: ``(K,)`` ``STABLE`` (``|λ1| < 1 − band``), ``MARGINAL`` (within the band
        of 1) or ``UNSTABLE`` (``|λ1| > 1 + band``).
      slow_modes: ``(K,)`` modes with ``| |λ| − 1 | <= band``.
      slow_vectors: ``(K, S)`` the slowest mode's right eigenvector at each point (real
        part, unit length): the direction the dynamics are slowest along.
      line_attractor_score: ``(K,)`` ``log2(τ1 / τ2)`` of the capped time constants (nan
        for a one-dimensional state).
      marginal_band: the band.
      tau_max: the cap (``linearize.TAU_MAX``).
    """

    eigenvalues: np.ndarray
    time_constants: np.ndarray
    spectral_radius: np.ndarray
    stability: np.ndarray
    slow_modes: np.ndarray
    slow_vectors: np.ndarray
    line_attractor_score: np.ndarray
    marginal_band: float
    tau_max: float


def stability(spectral_radius: np.ndarray, band: float) -> np.ndarray:
    """``(K,)`` ``STABLE`` / ``MARGINAL`` / ``UNSTABLE`` codes of the points with these
    ``|λ1|``."""
    rad = np.asarray(spectral_radius, np.float64)
    return np.where(rad > 1 + band, UNSTABLE, np.where(rad < 1 - band, STABLE, MARGINAL)).astype(
        np.int8
    )


def spectra(lin: Linearization, *, marginal_band: float = 0.02) -> Spectra:
    """Eigendecompositions at every point of ``lin``, slowest mode first."""
    k, s = np.shape(lin.points)
    if k == 0:
        empty = np.zeros((0, s))
        return Spectra(empty.astype(complex), empty, np.zeros(0), np.zeros(0, np.int8),
                       np.zeros(0, np.int64), empty, np.zeros(0), float(marginal_band),
                       float(TAU_MAX))  # fmt: skip
    eg = eig(lin.j_rec)
    eg = sort_modes(eg, mode_order(eg.values))
    values = np.asarray(eg.values)
    score = np.asarray(line_attractor_score(values)) if s >= 2 else np.full(k, np.nan)
    radius = np.max(np.abs(values), axis=1)
    vec = np.asarray(eg.right)[:, :, 0].real
    vec = vec / np.maximum(np.linalg.norm(vec, axis=1, keepdims=True), 1e-300)
    return Spectra(
        eigenvalues=values,
        time_constants=np.asarray(time_constants(values, TAU_MAX), np.float64),
        spectral_radius=radius,
        stability=stability(radius, marginal_band),
        slow_modes=np.asarray(num_slow_modes(values, marginal_band)),
        slow_vectors=vec,
        line_attractor_score=score,
        marginal_band=float(marginal_band),
        tau_max=float(TAU_MAX),
    )
