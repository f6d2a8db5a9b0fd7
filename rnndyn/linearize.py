"""Linearisation of a cell around fixed points.

Around ``(h*, x*)``::

    h_t − h* ≈ J_rec (h_{t−1} − h*) + J_inp (x_t − x*)

with ``J_rec = ∂F/∂h`` ``(S, S)`` and ``J_inp = ∂F/∂x`` ``(S, M)``. ``eig`` splits
``J_rec = R diag(λ) L`` into right eigenvectors (columns of ``R``) and left eigenvectors
(rows of ``L``) with ``L R = I``.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from rnndyn import _checks
from rnndyn.cells import Cell, validate

Array = jax.Array

__all__ = [
    "Eigen",
    "Linearization",
    "eig",
    "jacobians",
    "linear_step",
    "linearization",
    "nearest_point",
    "run_linearized",
    "simulate_linear",
    "time_constants",
]


def jacobians(cell: Cell, params: Any, points: Array, inputs: Array) -> tuple[Array, Array]:
    """Jacobians of one step at each point.

    Args:
      cell: the cell ``F``.
      params: its parameters.
      points: ``(K, S)`` states (or one state ``(S,)``).
      inputs: ``(M,)`` one input for all points, or ``(K, M)``.

    Returns:
      ``J_rec (K, S, S)`` = ∂F/∂h and ``J_inp (K, S, M)`` = ∂F/∂x (without the leading
      ``K`` axis if ``points`` was ``(S,)``).
    """
    points = _checks.as_array("points", points)
    inputs = _checks.as_array("inputs", inputs)
    _checks.check_ndim("points", points, (1, 2), "((S,) or (K, S))")
    _checks.check_ndim("inputs", inputs, (1, 2), "((M,) or (K, M))")
    single = points.ndim == 1
    pts = points[None] if single else points
    _checks.check_nonempty("points", pts)
    if inputs.ndim == 2 and inputs.shape[0] != pts.shape[0]:
        raise ValueError(
            f"inputs has {inputs.shape[0]} rows (shape {tuple(inputs.shape)}) but points has "
            f"{pts.shape[0]} (shape {tuple(pts.shape)}); expected one input per point or (M,)"
        )
    validate(cell, params, pts.shape[-1], inputs.shape[-1], state_name="points")
    dtype = jnp.result_type(pts.dtype, jnp.float32)
    xs = jnp.broadcast_to(inputs.astype(dtype), (pts.shape[0], inputs.shape[-1]))
    j_rec, j_inp = _jacobians(cell, params, pts.astype(dtype), xs)
    return (j_rec[0], j_inp[0]) if single else (j_rec, j_inp)


@functools.partial(jax.jit, static_argnums=0)
def _jacobians(cell, params, points, inputs):
    jac = jax.jacfwd(lambda h, x: cell(params, h, x), argnums=(0, 1))
    return jax.vmap(jac)(points, inputs)


class Eigen(NamedTuple):
    """Eigendecomposition ``J = R diag(values) L``, sorted by ``|values|`` descending.

    Attributes:
      values: ``(..., S)`` complex eigenvalues.
      right: ``(..., S, S)`` right eigenvectors as columns (unit norm).
      left: ``(..., S, S)`` left eigenvectors as rows, scaled so ``left @ right = I``.
    """

    values: Array
    right: Array
    left: Array


def eig(matrices: Array) -> Eigen:
    """Eigendecomposition of ``(..., S, S)`` matrices (e.g. ``J_rec`` from ``jacobians``).

    Eigenvalues are sorted by modulus, largest first. ``left = inv(right)``, so that
    ``left @ right = I`` and ``right @ diag(values) @ left = J``; for (nearly) defective
    matrices ``right`` is ill-conditioned and so is ``left``.

    JAX implements the non-symmetric eigensolver on the CPU only. Arrays on another
    device (GPU/TPU), or traced under ``jit`` for one, are decomposed on the host and
    the results come back where the input lives.
    """
    j = _checks.as_array("matrices", matrices)
    if j.ndim < 2 or j.shape[-1] != j.shape[-2]:
        raise ValueError(
            f"matrices must be square with shape (..., S, S), got shape {tuple(j.shape)}"
        )
    if j.shape[-1] == 0:
        raise ValueError(f"matrices is empty (shape {tuple(j.shape)}); expected S >= 1")
    _checks.check_finite("matrices", j)
    values, right = _eig_host(j) if _off_cpu(j) else jnp.linalg.eig(j)
    order = jnp.argsort(-jnp.abs(values), axis=-1, stable=True)
    values = jnp.take_along_axis(values, order, axis=-1)
    right = jnp.take_along_axis(right, order[..., None, :], axis=-1)
    return Eigen(values=values, right=right, left=jnp.linalg.inv(right))


def _off_cpu(x: Array) -> bool:
    if _checks.is_traced(x):
        return jax.default_backend() != "cpu"
    return any(d.platform != "cpu" for d in x.devices())


def _eig_host(j: Array) -> tuple[Array, Array]:
    # LAPACK via numpy on the host; pure_callback works both eagerly and under jit.
    ctype = jnp.complex128 if j.dtype == jnp.float64 else jnp.complex64
    shapes = (
        jax.ShapeDtypeStruct(j.shape[:-1], ctype),
        jax.ShapeDtypeStruct(j.shape, ctype),
    )

    def host(a):
        w, v = np.linalg.eig(np.asarray(a))
        return w.astype(ctype), v.astype(ctype)

    return jax.pure_callback(host, shapes, j, vmap_method="expand_dims")


def time_constants(eigenvalues: Array) -> Array:
    """Decay time ``τ = 1 / |log|λ||`` (in steps) of each mode; ``inf`` where ``|λ| = 1``.

    Args:
      eigenvalues: ``(..., S)`` real or complex.

    Returns:
      ``(..., S)`` real time constants.
    """
    lam = jnp.abs(_checks.as_array("eigenvalues", eigenvalues, complex_ok=True))
    with np.errstate(divide="ignore"):
        return 1.0 / jnp.abs(jnp.log(lam))


def linear_step(
    j_rec: Array, j_inp: Array, point: Array, input_star: Array, state: Array, x: Array
) -> Array:
    """One step of the linearised system.

    ``h_t = h* + J_rec (h_{t−1} − h*) + J_inp (x_t − x*)``, with ``j_rec (S, S)``,
    ``j_inp (S, M)``, ``point (S,)``, ``input_star (M,)``, ``state (..., S)``,
    ``x (..., M)``; returns ``(..., S)``.
    """
    return point + (state - point) @ j_rec.T + (x - input_star) @ j_inp.T


def simulate_linear(
    j_rec: Array, j_inp: Array, point: Array, input_star: Array, state0: Array, xs: Array
) -> Array:
    """Run ``linear_step`` over a sequence.

    Args:
      j_rec: ``(S, S)``; j_inp: ``(S, M)``; point: ``(S,)`` the fixed point ``h*``;
      input_star: ``(M,)`` the input ``x*`` it was found at.
      state0: ``(S,)`` starting state; xs: ``(T, M)`` inputs.

    Returns:
      ``(T, S)`` states after each input.
    """
    s = point.shape[-1]
    if j_rec.shape != (s, s):
        raise ValueError(f"j_rec has shape {tuple(j_rec.shape)}, expected ({s}, {s})")
    if j_inp.ndim != 2 or j_inp.shape[0] != s or xs.shape[-1] != j_inp.shape[1]:
        raise ValueError(
            f"j_inp has shape {tuple(j_inp.shape)} and xs {tuple(xs.shape)}; expected "
            f"j_inp ({s}, M) and xs (T, M)"
        )

    def step(h, x):
        h = linear_step(j_rec, j_inp, point, input_star, h, x)
        return h, h

    return jax.lax.scan(step, state0, xs)[1]


class Linearization(NamedTuple):
    """Linear models of a cell around ``K`` expansion points.

    Attributes:
      points: ``(K, S)`` expansion states ``h*`` (usually fixed points).
      inputs: ``(K, M)`` the input ``x*`` each was found at.
      j_rec: ``(K, S, S)`` ``∂F/∂h`` at each point.
      j_inp: ``(K, S, M)`` ``∂F/∂x`` at each point.
    """

    points: Array
    inputs: Array
    j_rec: Array
    j_inp: Array


def linearization(cell: Cell, params: Any, points: Array, inputs: Array) -> Linearization:
    """Jacobians of ``cell`` at ``points (K, S)`` with ``inputs`` ``(M,)`` or ``(K, M)``."""
    points = _checks.as_array("points", points)
    _checks.check_ndim("points", points, (2,), "(K, S)")
    j_rec, j_inp = jacobians(cell, params, points, inputs)
    inputs = jnp.broadcast_to(jnp.asarray(inputs, j_rec.dtype), (points.shape[0], j_inp.shape[-1]))
    return Linearization(points.astype(j_rec.dtype), inputs, j_rec, j_inp)


def nearest_point(points: Array, states: Array) -> Array:
    """Index ``(...,)`` of the row of ``points (K, S)`` nearest each of ``states (..., S)``."""
    d2 = jnp.sum((states[..., None, :] - points) ** 2, axis=-1)
    return jnp.argmin(d2, axis=-1)


def run_linearized(
    lin: Linearization,
    state0: Array,
    xs: Array,
    mask: Array | None = None,
    *,
    switch: str = "initial",
) -> Array:
    """Run the linearised dynamics over batches of input sequences.

    Each step is ``h_t = h*_k + J_rec,k (h_{t−1} − h*_k) + J_inp,k (x_t − x*_k)``; the
    expansion point ``k`` is

    * ``switch="initial"``: the point nearest ``state0``, fixed for the whole sequence
      (one linear system per sequence, as in Maheswaranathan et al. 2019);
    * ``switch="nearest"``: at every step, the point nearest the current state
      ``h_{t−1}`` (a piecewise-linear system).

    Steps where ``mask`` is False leave the state unchanged (padding).

    Args:
      lin: a ``Linearization`` with ``K`` points.
      state0: ``(S,)`` or ``(B, S)`` initial states.
      xs: ``(B, T, M)`` inputs (e.g. embedded tokens).
      mask: optional ``(B, T)`` bool, True at real steps.
      switch: ``"initial"`` or ``"nearest"``.

    Returns:
      ``(B, T, S)`` states after each step.
    """
    if switch not in ("initial", "nearest"):
        raise ValueError(f"switch must be 'initial' or 'nearest', got {switch!r}")
    if not isinstance(lin, Linearization):
        raise ValueError(f"lin must be a Linearization, got {type(lin).__name__}")
    k, s = lin.points.shape
    m = lin.j_inp.shape[-1]
    xs = _checks.as_array("xs", xs)
    if xs.ndim != 3 or xs.shape[-1] != m:
        raise ValueError(f"xs has shape {tuple(xs.shape)}; expected (B, T, {m})")
    b, t = xs.shape[:2]
    state0 = _checks.as_array("state0", state0)
    if state0.shape not in ((s,), (b, s)):
        raise ValueError(f"state0 has shape {tuple(state0.shape)}; expected ({s},) or ({b}, {s})")
    if mask is None:
        mask = jnp.ones((b, t), bool)
    mask = jnp.asarray(mask)
    if mask.shape != (b, t):
        raise ValueError(f"mask has shape {tuple(mask.shape)}; expected ({b}, {t}) like xs")
    dtype = lin.j_rec.dtype
    state0 = jnp.broadcast_to(state0.astype(dtype), (b, s))
    return _run_linearized(lin, state0, xs.astype(dtype), mask.astype(bool), switch)


@functools.partial(jax.jit, static_argnums=4)
def _run_linearized(lin, state0, xs, mask, switch):
    def one(h0, x_seq, m_seq):
        k0 = nearest_point(lin.points, h0)

        def step(h, inp):
            x, m = inp
            k = k0 if switch == "initial" else nearest_point(lin.points, h)
            new = linear_step(lin.j_rec[k], lin.j_inp[k], lin.points[k], lin.inputs[k], h, x)
            h = jnp.where(m, new, h)
            return h, h

        return jax.lax.scan(step, h0, (x_seq, m_seq))[1]

    return jax.vmap(one)(state0, xs, mask)
