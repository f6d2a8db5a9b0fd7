"""Linearisation of a cell around fixed points, and along a trajectory.

Around ``(h*, x*)``::

    h_t − h* ≈ J_rec (h_{t−1} − h*) + J_inp (x_t − x*)

with ``J_rec = ∂F/∂h`` ``(S, S)`` and ``J_inp = ∂F/∂x`` ``(S, M)``. ``eig`` splits
``J_rec = R diag(λ) L`` into right eigenvectors (columns of ``R``) and left eigenvectors
(rows of ``L``) with ``L R = I``. ``run_trajectory`` expands instead around the
network's own trajectory under the constant input ``x*`` (first order in ``x_t − x*``).
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from rnndyn import _blas, _checks
from rnndyn.cells import Cell, validate

Array = jax.Array

__all__ = [
    "TAU_MAX",
    "Eigen",
    "Jacobians",
    "Linearization",
    "RealModes",
    "eig",
    "jacobians",
    "linear_step",
    "line_attractor_score",
    "linearization",
    "mode_order",
    "nearest_point",
    "num_slow_modes",
    "real_modes",
    "run_linearized",
    "run_trajectory",
    "simulate_linear",
    "sort_modes",
    "time_constants",
]

#: Cap on time constants (steps) where a rule needs finite numbers: a mode with
#: ``|λ| = 1`` exactly (or within float round-off) has ``τ = ∞``, which would make ratios
#: such as the line-attractor score ``inf`` or ``nan``. 1e4 steps is far longer than any
#: document the studies analyse, so capped modes are "perfectly slow" for them.
TAU_MAX = 1e4


class Jacobians(NamedTuple):
    """``jacobians``: ``j_rec = ∂F/∂h`` and ``j_inp = ∂F/∂x``
    (``j_rec, j_inp = jacobians(...)``)."""

    j_rec: Array
    j_inp: Array


def jacobians(cell: Cell, params: Any, points: Array, inputs: Array) -> Jacobians:
    """Jacobians of one step at each point.

    Args:
      cell: the cell ``F``.
      params: its parameters.
      points: ``(K, S)`` states (or one state ``(S,)``).
      inputs: ``(M,)`` one input for all points, or ``(K, M)``.

    Returns:
      ``Jacobians(j_rec, j_inp)``: ``J_rec (K, S, S)`` = ∂F/∂h and ``J_inp (K, S, M)`` =
      ∂F/∂x (without the leading ``K`` axis if ``points`` was ``(S,)``).
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
    return Jacobians(j_rec[0], j_inp[0]) if single else Jacobians(j_rec, j_inp)


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
    with _blas.single_threaded():  # LAPACK on small matrices: one thread (rnndyn/_blas.py)
        out = _by_modulus(*(_eig_host(j) if _off_cpu(j) else jnp.linalg.eig(j)))
        # dispatch is asynchronous: wait for LAPACK before the thread count comes back
        return out if _checks.is_traced(j) else jax.block_until_ready(out)


@jax.jit  # one program, not one per operation
def _by_modulus(values: Array, right: Array) -> Eigen:
    """``Eigen`` with the modes sorted by ``|λ|``, largest first, and ``left = right⁻¹``."""
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


def time_constants(eigenvalues: Array, tau_max: float | None = None) -> Array:
    """Decay time ``τ = 1 / |log|λ||`` (in steps) of each mode.

    Args:
      eigenvalues: ``(..., S)`` real or complex.
      tau_max: cap on ``τ`` (e.g. ``TAU_MAX``); ``None`` leaves ``inf`` where ``|λ| = 1``.

    Returns:
      ``(..., S)`` real time constants (for ``|λ| > 1`` the growth time of the mode).
    """
    lam = jnp.abs(_checks.as_array("eigenvalues", eigenvalues, complex_ok=True))
    with np.errstate(divide="ignore"):
        tau = 1.0 / jnp.abs(jnp.log(lam))
    if tau_max is not None:
        _checks.check_positive("tau_max", tau_max)
        tau = jnp.minimum(tau, tau_max)
    return tau


def _host_values(name: str, eigenvalues: Any, ndims: tuple[int, ...]) -> np.ndarray:
    try:  # numpy, not jnp: float64 eigenvalues must not be cut to float32
        lam = np.asarray(eigenvalues)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} must be an array of numbers, got {type(eigenvalues)}") from err
    if lam.dtype.kind not in "biufc":
        raise ValueError(f"{name} must hold numbers, got dtype {lam.dtype}")
    _checks.check_ndim(name, lam, ndims, "(K, S) or (S,)")
    if lam.size == 0:
        raise ValueError(f"{name} is empty (shape {lam.shape}); expected at least one mode")
    _checks.check_finite(name, lam)
    return lam.astype(np.complex128)


def _capped_tau(abs_lam: np.ndarray, tau_max: float) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return np.minimum(1.0 / np.abs(np.log(abs_lam)), tau_max)


def mode_order(eigenvalues: Any) -> np.ndarray:
    """Order of the modes: by ``|λ|`` descending, conjugate pairs adjacent.

    Growing modes (``|λ| > 1``) come first, then the marginal and stable ones; among the
    stable modes (``|λ| <= 1``) this is the order of the time constants
    ``τ = 1 / |log|λ||``, descending. A mode just above 1 stays ahead of a stable one
    with a longer ``τ``: on a line attractor that is usually the mode along the line
    (``|λ1| = 1.0098`` in a trained UGRNN, whose word effects came out reversed when
    a stable mode of ``|λ| = 0.995`` was put first). A complex-conjugate pair shares
    ``|λ|`` and stays adjacent, the member with positive imaginary part first.

    Args:
      eigenvalues: ``(S,)`` or ``(K, S)`` real or complex.

    Returns:
      ``(S,)`` or ``(K, S)`` integer indices (``np.take_along_axis`` order).
    """
    lam = _host_values("eigenvalues", eigenvalues, (1, 2))
    keys = (-lam.imag, -np.abs(lam))  # np.lexsort sorts by the last key first
    if lam.ndim == 1:
        return np.lexsort(keys)
    return np.stack([np.lexsort(tuple(k[i] for k in keys)) for i in range(lam.shape[0])])


def sort_modes(eigen: Eigen, order: Any) -> Eigen:
    """``eigen`` with its modes permuted by ``order`` (e.g. from ``mode_order``)."""
    order = np.asarray(order)
    values = np.take_along_axis(np.asarray(eigen.values), order, axis=-1)
    right = np.take_along_axis(np.asarray(eigen.right), order[..., None, :], axis=-1)
    left = np.take_along_axis(np.asarray(eigen.left), order[..., :, None], axis=-2)
    return Eigen(values, right, left)


def num_slow_modes(
    eigenvalues: Any, band: float = 0.02, *, tau_min: float | None = None
) -> np.ndarray | int:
    """Number of slow modes per point.

    Rule: a mode is slow if ``| |λ| − 1 | <= band``; with ``tau_min`` given instead, if
    its time constant ``τ = 1 / |log|λ|| >= tau_min`` (``band`` is then ignored).

    Args:
      eigenvalues: ``(K, S)`` (one row per fixed point) or ``(S,)``, real or complex.
      band: distance of ``|λ|`` from 1.
      tau_min: threshold on the time constant in steps.

    Returns:
      ``(K,)`` int counts, or an ``int`` for ``(S,)`` input.
    """
    lam = np.abs(_host_values("eigenvalues", eigenvalues, (1, 2)))
    if tau_min is None:
        _checks.check_positive("band", band, allow_zero=True)
        slow = np.abs(lam - 1.0) <= band
    else:
        _checks.check_positive("tau_min", tau_min)
        slow = _capped_tau(lam, np.inf) >= tau_min
    counts = slow.sum(axis=-1)
    return int(counts) if lam.ndim == 1 else counts.astype(np.int64)


def line_attractor_score(eigenvalues: Any, *, tau_max: float = TAU_MAX) -> np.ndarray | float:
    """``log2(τ1 / τ2)``: how much the slowest mode dominates (> 1: one dominant mode).

    ``τ1 >= τ2`` are the two largest capped time constants ``min(1 / |log|λ||, tau_max)``
    of each row (a complex pair counts twice, so a slow rotation scores 0). The cap makes
    the score finite: at most ``log2(tau_max / τ2)``, and 0 when two modes are both
    slower than ``tau_max``.

    Args:
      eigenvalues: ``(K, S)`` or ``(S,)`` with ``S >= 2``, real or complex.
      tau_max: the cap (steps).

    Returns:
      ``(K,)`` scores, or a float for ``(S,)`` input.
    """
    lam = np.abs(_host_values("eigenvalues", eigenvalues, (1, 2)))
    if lam.shape[-1] < 2:
        raise ValueError(f"eigenvalues has shape {lam.shape}; expected S >= 2 per row")
    _checks.check_positive("tau_max", tau_max)
    tau = -np.sort(-_capped_tau(lam, tau_max), axis=-1)
    score = np.log2(tau[..., 0] / tau[..., 1])
    return float(score) if lam.ndim == 1 else score


class RealModes(NamedTuple):
    """A real basis of the invariant subspace of the first ``d`` modes of one matrix.

    A real eigenvalue contributes its (real) right and left eigenvectors; a complex pair
    ``λ, λ̄`` with vectors ``r, l`` contributes the plane ``[Re r, Im r]`` with dual rows
    ``[2 Re l, −2 Im l]``, so that ``right @ left`` is the exact (real) projector
    ``Σ_i r_i l_i`` over the modes, conjugates included.

    Attributes:
      values: ``(d,)`` complex eigenvalues of the included modes (pairs both included).
      right: ``(S, d)`` real basis (columns).
      left: ``(d, S)`` real dual basis (rows), ``left @ right = I``.
      block: ``(d, d)`` the matrix restricted to the subspace, ``J right = right block``:
        ``λ`` on the diagonal for a real mode, ``[[a, b], [−b, a]]`` for ``a ± ib``.
    """

    values: np.ndarray
    right: np.ndarray
    left: np.ndarray
    block: np.ndarray


def real_modes(eigen: Eigen, d: int) -> RealModes:
    """Real basis of the first ``d`` modes of one eigendecomposition, closing pairs.

    If the ``d``-th mode is the first member of a complex-conjugate pair, its partner is
    included as well (the result then has ``d + 1`` columns): cutting a pair would keep
    half of a rotation, and the real part of one member is not an invariant direction.

    Args:
      eigen: ``Eigen`` of one ``(S, S)`` real matrix (``values (S,)``), in the order the
        modes should be taken (e.g. sorted with ``mode_order``).
      d: number of modes wanted, ``1 <= d <= S``.

    Returns:
      ``RealModes`` with ``d`` or ``d + 1`` columns.
    """
    values = np.asarray(eigen.values)
    right = np.asarray(eigen.right)
    left = np.asarray(eigen.left)
    if values.ndim != 1 or right.shape != (values.size, values.size) != left.shape:
        raise ValueError(
            f"eigen must hold one decomposition (values (S,), right and left (S, S)), got "
            f"values {values.shape}, right {right.shape}, left {left.shape}"
        )
    s = values.size
    _checks.check_int("d", d, minimum=1)
    if d > s:
        raise ValueError(f"d={d} exceeds the number of modes S={s}")
    scale = np.max(np.abs(values)) if s else 1.0
    is_complex = np.abs(values.imag) > 1e-6 * max(scale, 1e-30)
    cols, rows, vals, blocks = [], [], [], []
    i = 0
    while i < d:
        lam = values[i]
        if not is_complex[i]:
            cols.append(right[:, i].real)
            rows.append(left[i].real)
            vals.append(values[i])
            blocks.append(np.array([[lam.real]]))
            i += 1
            continue
        if i + 1 >= s or not np.isclose(values[i + 1], np.conj(lam), rtol=1e-4, atol=1e-7):
            raise ValueError(
                f"mode {i} (λ = {lam:.6g}) is complex but mode {i + 1} is not its conjugate; "
                "order the modes so that conjugate pairs are adjacent (see mode_order)"
            )
        r, l = right[:, i], left[i]
        cols += [r.real, r.imag]
        rows += [2.0 * l.real, -2.0 * l.imag]
        vals += [values[i], values[i + 1]]
        a, b = lam.real, lam.imag
        blocks.append(np.array([[a, b], [-b, a]]))
        i += 2
    block = np.zeros((len(cols), len(cols)))
    k = 0
    for blk in blocks:
        n = blk.shape[0]
        block[k : k + n, k : k + n] = blk
        k += n
    return RealModes(
        np.asarray(vals, np.complex128),
        np.stack(cols, axis=1).astype(np.float64),
        np.stack(rows).astype(np.float64),
        block,
    )


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
    if lin.points.shape[0] == 1:  # one linear system for every sequence and step
        return _run_one_system(lin, state0, xs, mask)

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


def _run_one_system(lin, state0, xs, mask):
    """``_run_linearized`` with a single point: the steps of all sequences as matrix
    products (the input terms for every step at once), not a matrix gathered per
    sequence and step."""
    point, x_star, j_rec, j_inp = lin.points[0], lin.inputs[0], lin.j_rec[0], lin.j_inp[0]
    drive = jnp.swapaxes((xs - x_star) @ j_inp.T, 0, 1)  # (T, B, S)

    def step(h, inp):
        d, m = inp
        h = jnp.where(m[:, None], point + (h - point) @ j_rec.T + d, h)
        return h, h

    return jnp.swapaxes(jax.lax.scan(step, state0, (drive, mask.T))[1], 0, 1)


def run_trajectory(
    cell: Cell,
    params: Any,
    input_star: Array,
    xs: Array,
    mask: Array | None = None,
    *,
    state0: Array | None = None,
) -> Array:
    """Dynamics linearised along the nominal trajectory under the constant input ``x*``.

    The nominal trajectory starts at ``state0`` and reads ``x*`` at every step,
    ``h̄_k = F(h̄_{k−1}, x*)``; an input sequence is followed to first order in its
    deviation from it::

        h_t = h̄_n + Δ_t,   Δ_t = J_rec(h̄_{n−1}) Δ_{t−1} + J_inp(h̄_{n−1}) (x_t − x*)

    with ``n`` the number of real steps so far and the Jacobians taken at ``(h̄_{n−1},
    x*)`` (computed as Jacobian-vector products, never stored). Where the nominal
    trajectory has settled on a fixed point this is the fixed-point linearisation
    around it (``run_linearized``); before that it also covers the transient from the
    initial state, which no single expansion point describes (an LSTM starts at
    ``(h, c) = 0``, far from its fixed points). Exact for the sequence ``x* x* ...``.

    Args:
      cell, params: the cell.
      input_star: ``(M,)`` expansion input ``x*``.
      xs: ``(B, T, M)`` inputs (e.g. embedded tokens).
      mask: optional ``(B, T)`` bool, True at real steps; other steps keep the state.
      state0: ``(S,)`` start of the nominal trajectory and of every sequence
        (default ``cell.initial_state()``).

    Returns:
      ``(B, T, S)`` states after each step.
    """
    xs = _checks.as_array("xs", xs)
    x_star = _checks.as_array("input_star", input_star)
    if xs.ndim != 3 or x_star.shape != xs.shape[-1:]:
        raise ValueError(
            f"xs must have shape (B, T, M) and input_star (M,), got {tuple(xs.shape)} and "
            f"{tuple(x_star.shape)}"
        )
    b, t = xs.shape[:2]
    state0 = cell.initial_state() if state0 is None else _checks.as_array("state0", state0)
    if state0.ndim != 1:
        raise ValueError(f"state0 must be one state (S,), got shape {tuple(state0.shape)}")
    validate(cell, params, state0.shape[0], x_star.shape[0], "state0", "input_star")
    mask = jnp.ones((b, t), bool) if mask is None else jnp.asarray(mask)
    if mask.shape != (b, t):
        raise ValueError(f"mask has shape {tuple(mask.shape)}; expected ({b}, {t}) like xs")
    dtype = jnp.result_type(state0, xs, x_star)
    return _run_trajectory(
        cell, params, x_star.astype(dtype), xs.astype(dtype), mask.astype(bool),
        state0.astype(dtype),
    )  # fmt: skip


@functools.partial(jax.jit, static_argnums=0)
def _run_trajectory(cell, params, x_star, xs, mask, state0):
    def f(h, x):
        return cell(params, h, x)

    def nominal_step(h, _):
        h = f(h, x_star)
        return h, h

    _, after = jax.lax.scan(nominal_step, state0, None, length=xs.shape[1])
    nominal = jnp.concatenate([state0[None], after])  # (T + 1, S): h̄_0 ... h̄_T

    def one(x_seq, m_seq):
        def step(carry, inp):
            delta, n = carry
            x, m = inp
            _, new = jax.jvp(f, (nominal[n], x_star), (delta, x - x_star))
            delta, n = jnp.where(m, new, delta), jnp.where(m, n + 1, n)
            return (delta, n), nominal[n] + delta

        zero = (jnp.zeros_like(state0), jnp.zeros((), jnp.int32))
        return jax.lax.scan(step, zero, (x_seq, m_seq))[1]

    return jax.vmap(one)(xs, mask)
