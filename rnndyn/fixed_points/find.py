"""The entry point: ``find_fixed_points``."""

from __future__ import annotations

import functools
import sys
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from rnndyn import _blas, _checks
from rnndyn.cells import Cell, validate
from rnndyn.fixed_points import certificate, deflation, run, search
from rnndyn.fixed_points.result import FixedPoints, Status

Array = jax.Array

__all__ = ["find_fixed_points", "speed"]


def speed(cell: Cell, params: Any, state: Array, x: Array) -> Array:
    """``q(h) = ½ ‖F(h, x) − h‖²`` for one state ``(S,)`` and input ``(M,)``; a scalar."""
    r = cell(params, state, x) - state
    return 0.5 * jnp.sum(r * r)


@_blas.single_threaded()  # LAPACK on small matrices: one thread (rnndyn/_blas.py)
def find_fixed_points(
    cell: Cell,
    params: Any,
    inputs: Array,
    initial_states: Array | None = None,
    *,
    key: Array | None = None,
    num_initial: int = 256,
    noise: float = 0.0,
    optimizer: optax.GradientTransformation | None = None,
    learning_rate: float = 1e-2,
    tol: float = 1e-8,
    max_steps: int | None = None,
    polish_steps: int = 50,
    polish_threshold: float = 1.0,
    deflation_rounds: int = 1,
    merge_distance: float = 1e-3,
    continuum_sigma: float = 1e-3,
    certify: bool = True,
    batch_size: int | None = None,
    newton_batch: int | None = None,
    verbose: bool = False,
    log_every: int = 500,
) -> FixedPoints:
    """Find slow points and fixed points ``h* = F(h*, x*)`` of ``cell`` from many starts.

    Every candidate runs on its own inside one compiled loop: first-order steps
    (``optimizer``, Adam by default) on ``q(h) = ½ ‖F(h, x*) − h‖²`` until ``q`` is below
    ``polish_threshold``, its progress stalls, or it has taken ``max_steps``; then damped
    Newton / Levenberg–Marquardt steps until it is at the float floor below ``tol``,
    stalls, or has taken ``polish_steps``. Candidates stay inside ``cell.state_bounds()``.
    Every candidate below ``tol`` is a **slow point**; outside ``jax.jit`` a float64
    certificate then says which of them are **roots** (isolated, or on a verified
    continuum), and ``deflation_rounds`` rounds of deflated searches look for roots not
    found yet. See ``docs/fixed_points.md`` and ``Status``.

    Args:
      cell: an rnndyn cell (``rnndyn.cells.GRU(64)``, ``from_flax(...)``, ...).
      params: the cell's parameters (a pytree).
      inputs: the constant input ``x*``: ``(M,)`` for all candidates or ``(K, M)``, one
        per candidate.
      initial_states: ``(K, S)`` starting states, e.g. from ``sample_states`` on the
        network's own trajectories; projected into the cell's box. If ``None``,
        ``num_initial`` states are drawn uniformly from ``[-1, 1]^S`` with ``key``.
      key: PRNG key, needed when ``initial_states`` is ``None`` or ``noise > 0``.
      num_initial: number of random initial states when ``initial_states`` is ``None``
        (ignored if ``inputs`` is ``(K, M)``, which fixes ``K``).
      noise: standard deviation of Gaussian noise added to the initial states.
      optimizer: any ``optax.GradientTransformation``, applied per candidate; default
        ``optax.adam(learning_rate)``. Optimisers built the same way (same function,
        same hyperparameters) share one compilation.
      learning_rate: step size of the default Adam (traced: no recompilation).
      tol: a slow point has ``q < tol`` (traced).
      max_steps: cap on first-order steps per candidate (traced). Default 1,000 with the
        second-order phase, 10,000 without (``polish_steps=0``).
      polish_steps: cap on second-order steps per candidate (traced); 0 runs the
        first-order optimiser alone, as the studies did (nothing is polished: the slow
        points along a manifold stay where ``q`` first fell below ``tol``).
      polish_threshold: ``q`` below which a candidate switches to second-order steps.
      deflation_rounds: rounds of deflated re-searches (0 disables; rounds stop early
        when one finds nothing new; needs the second-order phase). Each reruns the
        candidates that ended at an already-found isolated root or failed, with every
        isolated root found so far deflated; as many as needed start at ``root ± ε v``
        along each unstable eigenvector ``v`` of each found root. Slow points are kept.
      merge_distance: roots closer than this are the same root (deflation bookkeeping);
        also how close a certified root must be to its candidate.
      continuum_sigma: a root whose ``J − I`` has a singular value below this is checked
        for a continuum of roots (``Status.CONTINUUM`` when its neighbours along those
        directions are roots too; time constant ≳ 1/continuum_sigma steps).
      certify: run the float64 certificate on the host (needs concrete arrays). Without
        it, or under ``jax.jit``, no candidate is called a root: slow points stay
        ``SLOW_POINT``.
      batch_size: search at most this many candidates at once (bounded memory; the
        results equal an unchunked search). Default: all at once.
      newton_batch: candidates taking a second-order step together (each holds an
        ``S × S`` Jacobian). Default: ``K/8``, at least 16, at most what fits in ~256 MB.
      verbose: print progress to stderr every ``log_every`` iterations, and a final line
        of counts per status.
      log_every: iterations between progress lines.

    Returns:
      ``FixedPoints``: ``points (K, S)``, ``speeds (K,)``, ``status (K,)``, ``slow`` and
      ``root`` masks, certificates, ``steps (K,)``, ``inputs (K, M)``, ``initial_states
      (K, S)``. Use ``.keep_slow()`` or ``.keep_roots()``, then ``.merge_duplicates()``.

    Raises:
      ValueError: on shapes that do not fit the cell, non-finite params or inputs,
        empty batches, or bad tolerances and step counts.
    """
    max_steps = (10_000 if polish_steps == 0 else 1_000) if max_steps is None else max_steps
    _check_settings(locals())
    inputs, h0, key = _prepare_states(cell, params, inputs, initial_states, key, num_initial)
    k, s = h0.shape
    validate(cell, params, s, inputs.shape[-1])
    dtype = _search_dtype(params, h0, inputs)
    params = jax.tree_util.tree_map(
        lambda a: a.astype(dtype) if jnp.issubdtype(jnp.result_type(a), jnp.floating) else a,
        params,
    )
    bounds = _bounds(cell, s, k, dtype)
    inputs = jnp.broadcast_to(inputs.astype(dtype), (k, inputs.shape[-1]))
    h0 = h0.astype(dtype)
    if noise > 0:
        if key is None:
            raise ValueError("key is required when noise > 0")
        h0 = h0 + noise * jax.random.normal(key, h0.shape, dtype)
    h0 = jnp.clip(h0, *bounds)

    static = search.Static(
        optimizer=None if optimizer is None else run.Fingerprinted(optimizer),
        newton_batch=_newton_batch(newton_batch, k if batch_size is None else batch_size, s),
        second_order=polish_steps > 0,
        verbose=bool(verbose),
        log_every=int(log_every),
    )
    dyn = search.Dynamic(
        *(jnp.asarray(v, dtype) for v in (tol, polish_threshold)),
        *(jnp.asarray(v, jnp.int32) for v in (max_steps, polish_steps)),
        jnp.asarray(learning_rate, dtype),
    )
    search_fn = functools.partial(run.run, cell, params, dyn=dyn, static=static,
                                  batch_size=batch_size, verbose=verbose)  # fmt: skip
    no_roots = (jnp.zeros((0, s), dtype), jnp.zeros((0,), bool))
    out = search_fn(inputs, h0, bounds, no_roots)
    tol_value = float("nan") if _checks.is_traced(tol) else float(tol)
    if any(_checks.is_traced(a) for a in jax.tree_util.tree_leaves(out)):
        return _result(out, inputs, h0, None, tol_value, ())
    certify_fn = functools.partial(_certify_outcome, cell, params, enabled=certify, tol=tol,
                                   radius=merge_distance, continuum_sigma=continuum_sigma,
                                   batch=batch_size)  # fmt: skip
    cert = certify_fn(out, inputs, bounds)
    distinct = deflation.count_distinct_roots(out.points, inputs, cert.status, merge_distance)
    stats = [("distinct_roots_round_0", distinct)]
    for round_ in range(1, deflation_rounds + 1 if static.second_order and certify else 1):
        out, cert, found = deflation.deflate(cell, params, search_fn, certify_fn, out, cert,
                                             inputs, h0, bounds, merge_distance)  # fmt: skip
        stats.append((f"new_roots_round_{round_}", found))
        if found == 0:
            break
    stats.append(("steps_total", int(np.sum(np.asarray(out.adam_steps + out.newton_steps)))))
    stalled = np.asarray(cert.status) == Status.STALLED
    adam = np.asarray(out.adam_steps)
    stats.append(("max_first_order_steps_stalled", int(adam[stalled].max(initial=0))))
    result = _result(out, inputs, h0, cert, tol_value, tuple(stats))
    if verbose:
        print(f"[rnndyn] fixed points: {result.describe()}", file=sys.stderr, flush=True)
    return result


def _certify_outcome(cell, params, out, inputs, bounds, *, enabled, tol, radius,
                     continuum_sigma, batch) -> certificate.Certificate:  # fmt: skip
    status = np.asarray(out.status)
    if not enabled:
        nan = np.full(status.shape, np.nan)
        return certificate.Certificate(status, nan, nan.copy(), nan.copy())
    return certificate.certify(
        cell, params, out.points, status, inputs, bounds, tol=tol, radius=radius,
        continuum_sigma=continuum_sigma, batch=batch,
    )  # fmt: skip


def _result(out, inputs, h0, cert, tol, stats) -> FixedPoints:
    if cert is None:
        status, extra = out.status, (None, None, None)
    else:
        status, extra = jnp.asarray(cert.status), (cert.q64, cert.correction, cert.sigma_min)
    return FixedPoints(
        points=out.points,
        speeds=out.speeds,
        status=status,
        steps=out.adam_steps + out.newton_steps,
        inputs=inputs,
        initial_states=h0,
        certificate=extra[0],
        correction=extra[1],
        sigma_min=extra[2],
        tol=tol,
        stats_items=stats,
    )


def _check_settings(args: dict) -> None:
    for name in ("tol", "polish_threshold", "learning_rate", "merge_distance",
                 "continuum_sigma"):  # fmt: skip
        _checks.check_positive(name, args[name])
    _checks.check_positive("noise", args["noise"], allow_zero=True)
    _checks.check_int("max_steps", args["max_steps"], minimum=1)
    for name in ("polish_steps", "deflation_rounds"):
        _checks.check_int(name, args[name], minimum=0)
    for name in ("num_initial", "log_every"):
        _checks.check_int(name, args[name], minimum=1)
    for name in ("batch_size", "newton_batch"):
        if args[name] is not None:
            _checks.check_int(name, args[name], minimum=1)


def _prepare_states(cell, params, inputs, initial_states, key, num_initial):
    """Validated ``inputs (M,) | (K, M)``, ``initial_states (K, S)`` and the remaining key."""
    inputs = _checks.as_array("inputs", inputs)
    _checks.check_ndim("inputs", inputs, (1, 2), "((M,) or (K, M))")
    _checks.check_nonempty("inputs", inputs, axis=-1)
    _checks.check_finite("inputs", inputs)
    if initial_states is None:
        if cell.state_size is None:
            raise ValueError(
                "initial_states is None but the cell's state_size is unknown; pass "
                "initial_states of shape (K, S) or create the cell with state_size="
            )
        if key is None:
            raise ValueError("key is required when initial_states is None (to draw them)")
        key, sub = jax.random.split(key)
        k = inputs.shape[0] if inputs.ndim == 2 else num_initial
        initial_states = jax.random.uniform(sub, (k, cell.state_size), minval=-1.0, maxval=1.0)
    h0 = _checks.as_array("initial_states", initial_states)
    _checks.check_ndim("initial_states", h0, (2,), "(K, S)")
    _checks.check_nonempty("initial_states", h0)
    _checks.check_finite("initial_states", h0)
    if inputs.ndim == 2 and inputs.shape[0] != h0.shape[0]:
        raise ValueError(
            f"inputs has {inputs.shape[0]} rows (shape {tuple(inputs.shape)}) but "
            f"initial_states has {h0.shape[0]} (shape {tuple(h0.shape)}); expected one "
            "input per initial state or a single input of shape (M,)"
        )
    return inputs, h0, key


def _search_dtype(params, h0, inputs):
    """The promoted floating dtype of params, states and inputs (at least float32)."""
    dtypes = [jnp.result_type(a) for a in jax.tree_util.tree_leaves(params)]
    floats = [d for d in dtypes if jnp.issubdtype(d, jnp.floating)]
    return jnp.result_type(jnp.float32, h0.dtype, inputs.dtype, *floats)


def _bounds(cell: Cell, s: int, k: int, dtype) -> tuple[Array, Array]:
    """The cell's box as ``(K, S)`` arrays (``±inf`` where it declares none)."""
    box = cell.state_bounds()
    lower, upper = (-jnp.inf, jnp.inf) if box is None else box
    return tuple(jnp.broadcast_to(jnp.asarray(b, dtype), (k, s)) for b in (lower, upper))  # type: ignore[return-value]


def _newton_batch(requested: int | None, k: int, s: int) -> int:
    if requested is not None:
        return min(requested, k)
    fits = max(1, (256 * 2**20) // (4 * 3 * s * s))  # Jacobian, AᵀA and a factorisation
    return max(1, min(k, max(16, k // 8), fits))
