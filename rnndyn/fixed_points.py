"""Batched search for fixed points ``F(h, x*) = h`` of a recurrent cell.

The search minimises the speed ``q(h) = ½ ‖F(h, x*) − h‖²`` from many initial states
at once: one jit-compiled ``lax.while_loop`` over a vmapped optimiser step, in which
each point stops moving once its speed is below ``tol``. Points already near a root
can then be polished by damped Newton (Levenberg–Marquardt) steps on
``F(h, x*) − h = 0``, which reach speeds many orders of magnitude below what a
first-order optimiser reaches in the same time.
"""

from __future__ import annotations

import dataclasses
import functools
import sys
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from rnndyn import _checks
from rnndyn.cells import Cell, validate

Array = jax.Array

__all__ = ["FixedPoints", "find_fixed_points", "sample_states", "speed"]


@dataclasses.dataclass(frozen=True)
class FixedPoints:
    """Candidates returned by ``find_fixed_points``; a pytree (can leave ``jax.jit``).

    Attributes:
      points: ``(K, S)`` final states of the search.
      speeds: ``(K,)`` final ``q = ½‖F(h, x) − h‖²``; ``inf`` where the search diverged.
      converged: ``(K,)`` bool, ``speeds < tol`` with finite state. Only these are
        fixed points; diverged (NaN/inf) candidates are never marked converged.
      steps: ``(K,)`` optimiser steps each candidate took before it froze.
      inputs: ``(K, M)`` the constant input ``x*`` used for each candidate.
      initial_states: ``(K, S)`` where each candidate started (after noise).
    """

    points: Array
    speeds: Array
    converged: Array
    steps: Array
    inputs: Array
    initial_states: Array

    def __len__(self) -> int:
        return int(self.points.shape[0])

    @property
    def num_converged(self) -> int:
        return int(np.count_nonzero(np.asarray(self.converged)))

    def select(self, index: Any) -> FixedPoints:
        """Subset by a boolean mask ``(K,)`` or integer indices (eager, not under jit)."""
        index = np.asarray(index)
        return jax.tree_util.tree_map(lambda a: a[index], self)

    def keep_converged(self) -> FixedPoints:
        """Only the candidates with ``converged`` true."""
        return self.select(np.asarray(self.converged, dtype=bool))

    def merge_duplicates(self, tol: float = 1e-3) -> FixedPoints:
        """Keep one representative per group of points closer than ``tol``.

        Rule: candidates are visited from slowest speed upwards; a candidate is dropped
        if its state lies within Euclidean distance ``tol`` of an already kept one
        with an input within ``tol`` too. So each kept point is the best (lowest-q)
        of its group, and kept points are pairwise more than ``tol`` apart.
        """
        _checks.check_positive("tol", tol)
        points = np.asarray(self.points, dtype=np.float64)
        inputs = np.asarray(self.inputs, dtype=np.float64)
        speeds = np.nan_to_num(np.asarray(self.speeds, dtype=np.float64), nan=np.inf)
        kept: list[int] = []
        for i in np.argsort(speeds, kind="stable"):
            if kept:
                dh = np.linalg.norm(points[kept] - points[i], axis=1)
                dx = np.linalg.norm(inputs[kept] - inputs[i], axis=1)
                if np.any((dh < tol) & (dx < tol)):
                    continue
            kept.append(int(i))
        return self.select(np.sort(np.asarray(kept, dtype=np.int64)))

    def drop_outliers(self, factor: float = 10.0) -> FixedPoints:
        """Drop isolated points.

        Rule: a point is an outlier if the distance to its nearest neighbour exceeds
        ``factor`` times the median nearest-neighbour distance of the set. Sets of
        fewer than 3 points are returned unchanged.
        """
        _checks.check_positive("factor", factor)
        if len(self) < 3:
            return self
        nn = nearest_neighbour_distances(np.asarray(self.points, dtype=np.float64))
        return self.select(nn <= factor * np.median(nn))


jax.tree_util.register_pytree_node(
    FixedPoints,
    lambda fp: (tuple(getattr(fp, f.name) for f in dataclasses.fields(fp)), None),
    lambda _, children: FixedPoints(*children),
)


def nearest_neighbour_distances(points: np.ndarray, chunk: int = 1024) -> np.ndarray:
    """Euclidean distance from each row of ``points (K, S)`` to its nearest other row."""
    sq = np.sum(points**2, axis=1)
    out = np.empty(points.shape[0])
    for start in range(0, points.shape[0], chunk):
        block = points[start : start + chunk]
        d2 = sq[start : start + chunk, None] + sq[None, :] - 2.0 * block @ points.T
        d2[np.arange(block.shape[0]), start + np.arange(block.shape[0])] = np.inf
        out[start : start + chunk] = np.sqrt(np.maximum(d2.min(axis=1), 0.0))
    return out


def speed(cell: Cell, params: Any, state: Array, x: Array) -> Array:
    """``q(h) = ½ ‖F(h, x) − h‖²`` for one state ``(S,)`` and input ``(M,)``; a scalar."""
    r = cell(params, state, x) - state
    return 0.5 * jnp.sum(r * r)


@dataclasses.dataclass(frozen=True)
class _Config:
    optimizer: optax.GradientTransformation
    tol: float
    max_steps: int
    polish_steps: int
    polish_threshold: float
    verbose: bool
    log_every: int


def _where_rows(mask: Array, new: Any, old: Any) -> Any:
    """Per-row select over a pytree whose leaves all have leading axis K."""

    def pick(a, b):
        m = mask.reshape(mask.shape + (1,) * (a.ndim - 1))
        return jnp.where(m, a, b)

    return jax.tree_util.tree_map(pick, new, old)


def _report(step, active, finite, speeds, total) -> None:
    med = np.median(speeds[finite]) if np.any(finite) else float("nan")
    print(
        f"[rnndyn] fixed points: step {int(step):>6d}  still moving {int(active):>6d}/{total}  "
        f"median q {med:.2e}",
        file=sys.stderr,
        flush=True,
    )


def _adam_phase(cell, params, inputs, h0, cfg: _Config):
    """Optimiser steps until every point is below tol (or diverged) or max_steps."""
    value_and_grad = jax.vmap(jax.value_and_grad(functools.partial(speed, cell, params)))
    k = h0.shape[0]

    def moving(q):
        return jnp.isfinite(q) & (q >= cfg.tol)

    def body(carry):
        step, h, opt_state, q, steps, _ = carry
        q, g = value_and_grad(h, inputs)
        active = moving(q)
        updates, new_opt_state = jax.vmap(cfg.optimizer.update)(g, opt_state, h)
        h = _where_rows(active, h + updates, h)
        opt_state = _where_rows(active, new_opt_state, opt_state)
        steps = steps + active.astype(steps.dtype)
        if cfg.verbose:
            jax.lax.cond(
                step % cfg.log_every == 0,
                lambda: jax.debug.callback(_report, step, active.sum(), jnp.isfinite(q), q, k),
                lambda: None,
            )
        return step + 1, h, opt_state, q, steps, active.any()

    def cond(carry):
        step, *_, any_active = carry
        return (step < cfg.max_steps) & any_active

    opt_state = jax.vmap(cfg.optimizer.init)(h0)
    q0 = jnp.full((k,), jnp.inf, h0.dtype)
    steps0 = jnp.zeros((k,), jnp.int32)
    carry = (jnp.asarray(0), h0, opt_state, q0, steps0, jnp.asarray(True))
    _, h, _, _, steps, _ = jax.lax.while_loop(cond, body, carry)
    return h, steps


def _polish(cell, params, inputs, h, cfg: _Config):
    """Damped Newton on r(h) = F(h) − h for points with q < polish_threshold.

    Each step tries two updates with ``A = ∂F/∂h − I``: the Newton step ``A δ = −r``
    (LU on ``A``, accurate when ``A`` is well conditioned) and the Levenberg–Marquardt
    step ``(AᵀA + μI) δ = −Aᵀr`` (defined even when ``A`` is singular, as on a continuum
    of fixed points). The better of the two is kept only if it lowers q; μ shrinks
    after an LM success and grows after a failure. So q never increases.
    """
    n = h.shape[-1]
    eye = jnp.eye(n, dtype=h.dtype)

    def residual(state, x):
        return cell(params, state, x) - state

    def half_sq(r):
        q = 0.5 * jnp.sum(r * r)
        return jnp.where(jnp.isfinite(q), q, jnp.inf)

    def one(state, x):
        r0 = residual(state, x)
        q0 = half_sq(r0)
        eligible = q0 < cfg.polish_threshold

        def step(carry):
            i, fails, state, r, q, mu = carry
            a = jax.jacfwd(residual)(state, x)
            ata = a.T @ a
            scale = jnp.trace(ata) / n
            trial_n = state + jnp.linalg.solve(a, -r)
            trial_lm = state + jnp.linalg.solve(ata + mu * scale * eye, -(a.T @ r))
            r_n, r_lm = residual(trial_n, x), residual(trial_lm, x)
            q_n, q_lm = half_sq(r_n), half_sq(r_lm)
            use_n = q_n < q_lm
            trial = jnp.where(use_n, trial_n, trial_lm)
            r_trial = jnp.where(use_n, r_n, r_lm)
            q_trial = jnp.minimum(q_n, q_lm)
            better = (q_trial < q) & eligible
            lm_ok = q_lm < q
            state = jnp.where(better, trial, state)
            r = jnp.where(better, r_trial, r)
            q = jnp.where(better, q_trial, q)
            mu = jnp.where(lm_ok, jnp.maximum(mu * 0.1, 1e-12), jnp.minimum(mu * 10.0, 1e8))
            fails = jnp.where(better, 0, fails + 1)
            return i + 1, fails, state, r, q, mu

        def cond(carry):
            i, fails, *_ = carry
            # stop once q stalls (eight failed steps in a row, μ having grown 1e8-fold:
            # at the float floor, or at a slow point that is not a root), or at the cap
            return eligible & (i < cfg.polish_steps) & (fails < 8)

        init = (0, 0, state, r0, q0, jnp.asarray(1e-6, state.dtype))
        return jax.lax.while_loop(cond, step, init)[2]

    return jax.vmap(one)(h, inputs)


@functools.partial(jax.jit, static_argnames=("cell", "cfg"))
def _search(cell, params, inputs, h0, cfg: _Config) -> FixedPoints:
    h, steps = _adam_phase(cell, params, inputs, h0, cfg)
    if cfg.polish_steps > 0:
        h = _polish(cell, params, inputs, h, cfg)
    q = jax.vmap(functools.partial(speed, cell, params))(h, inputs)
    finite = jnp.isfinite(q) & jnp.all(jnp.isfinite(h), axis=-1)
    q = jnp.where(finite, q, jnp.inf)
    return FixedPoints(
        points=h,
        speeds=q,
        converged=finite & (q < cfg.tol),
        steps=steps,
        inputs=inputs,
        initial_states=h0,
    )


def find_fixed_points(
    cell: Cell,
    params: Any,
    inputs: Array,
    initial_states: Array | None = None,
    *,
    key: Array | None = None,
    num_initial: int = 256,
    noise_scale: float = 0.0,
    optimizer: optax.GradientTransformation | None = None,
    learning_rate: float = 1e-2,
    tol: float = 1e-8,
    max_steps: int = 10_000,
    polish_steps: int = 50,
    polish_threshold: float = 1e-3,
    verbose: bool = False,
    log_every: int = 500,
) -> FixedPoints:
    """Find fixed points ``h* = F(h*, x*)`` of ``cell`` from a batch of initial states.

    Minimises ``q(h) = ½ ‖F(h, x*) − h‖²`` for every initial state at once (vmapped
    optimiser inside one jit-compiled ``lax.while_loop``). Each candidate freezes once
    ``q < tol``; the loop stops when all have frozen or diverged, or after
    ``max_steps``. Candidates with ``q < polish_threshold`` are then refined by
    damped Newton steps on ``F(h) − h = 0``.

    Args:
      cell: an rnndyn cell (``rnndyn.cells.GRU(64)``, ``from_flax(...)``, ...).
      params: the cell's parameters (a pytree).
      inputs: the constant input ``x*``: ``(M,)`` for all candidates or ``(K, M)``, one
        per candidate.
      initial_states: ``(K, S)`` starting states, e.g. from ``sample_states`` on the
        network's own trajectories. If ``None``, ``num_initial`` states are drawn
        uniformly from ``[-1, 1]^S`` (the range of tanh units) with ``key``.
      key: PRNG key, needed when ``initial_states`` is ``None`` or ``noise_scale > 0``.
      num_initial: number of random initial states when ``initial_states`` is ``None``
        (ignored if ``inputs`` is ``(K, M)``, which fixes ``K``).
      noise_scale: standard deviation of Gaussian noise added to the initial states.
      optimizer: any ``optax.GradientTransformation`` applied per candidate; default
        ``optax.adam(learning_rate)``. Pass the same object again to reuse compilation.
      learning_rate: step size of the default Adam.
      tol: a candidate has converged when ``q < tol``.
      max_steps: cap on optimiser steps.
      polish_steps: cap on Newton / Levenberg–Marquardt steps after the optimiser (a
        point stops earlier once eight steps in a row fail to lower q); 0 disables.
        Each step costs one ``(S, S)`` Jacobian and two solves per candidate.
      polish_threshold: only candidates with ``q`` below this are polished.
      verbose: print progress to stderr every ``log_every`` steps.
      log_every: steps between progress lines.

    Returns:
      ``FixedPoints`` with ``points (K, S)``, ``speeds (K,)``, ``converged (K,)``,
      ``steps (K,)``, ``inputs (K, M)`` and ``initial_states (K, S)``. Use
      ``.keep_converged().merge_duplicates(...).drop_outliers()`` to clean up.

    Raises:
      ValueError: on shapes that do not fit the cell, non-finite params or inputs,
        empty batches, or bad tolerances and step counts.
    """
    _checks.check_positive("tol", tol)
    _checks.check_positive("polish_threshold", polish_threshold)
    _checks.check_positive("learning_rate", learning_rate)
    _checks.check_positive("noise_scale", noise_scale, allow_zero=True)
    _checks.check_int("max_steps", max_steps, minimum=1)
    _checks.check_int("polish_steps", polish_steps, minimum=0)
    _checks.check_int("num_initial", num_initial, minimum=1)
    _checks.check_int("log_every", log_every, minimum=1)

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
    k, s = h0.shape
    if inputs.ndim == 2 and inputs.shape[0] != k:
        raise ValueError(
            f"inputs has {inputs.shape[0]} rows (shape {tuple(inputs.shape)}) but "
            f"initial_states has {k} (shape {tuple(h0.shape)}); expected one input per "
            "initial state or a single input of shape (M,)"
        )
    validate(cell, params, s, inputs.shape[-1])

    dtype = jnp.result_type(h0.dtype, jnp.float32)
    h0 = h0.astype(dtype)
    inputs = jnp.broadcast_to(inputs.astype(dtype), (k, inputs.shape[-1]))
    if noise_scale > 0:
        if key is None:
            raise ValueError("key is required when noise_scale > 0")
        h0 = h0 + noise_scale * jax.random.normal(key, h0.shape, dtype)

    cfg = _Config(
        optimizer=optimizer if optimizer is not None else _default_adam(learning_rate),
        tol=float(tol),
        max_steps=int(max_steps),
        polish_steps=int(polish_steps),
        polish_threshold=float(polish_threshold),
        verbose=bool(verbose),
        log_every=int(log_every),
    )
    result = _search(cell, params, inputs, h0, cfg)
    if verbose:
        print(
            f"[rnndyn] fixed points: {int(result.converged.sum())}/{k} converged (q < {tol:g})",
            file=sys.stderr,
            flush=True,
        )
    return result


@functools.lru_cache(maxsize=32)
def _default_adam(learning_rate: float) -> optax.GradientTransformation:
    # cached so that repeated calls share one object and hence one compilation
    return optax.adam(learning_rate)


def sample_states(
    trajectories: Array,
    n: int,
    key: Array,
    *,
    mask: Array | None = None,
    noise: float = 0.0,
    replace: bool = True,
) -> Array:
    """Draw ``n`` initial states for a fixed-point search from visited hidden states.

    Args:
      trajectories: ``(T, S)`` or ``(B, T, S)`` hidden states (e.g. a classifier run
        over test documents).
      n: number of states to draw.
      key: PRNG key.
      mask: ``(T,)`` or ``(B, T)``, true at real (non-padding) steps; padded steps are
        never drawn.
      noise: standard deviation of Gaussian noise added to each drawn state.
      replace: sample with replacement (default) or without (then ``n`` may not exceed
        the number of valid states).

    Returns:
      ``(n, S)`` states.
    """
    _checks.check_int("n", n, minimum=1)
    _checks.check_positive("noise", noise, allow_zero=True)
    traj = _checks.as_array("trajectories", trajectories)
    _checks.check_ndim("trajectories", traj, (2, 3), "((T, S) or (B, T, S))")
    _checks.check_nonempty("trajectories", traj)
    flat = traj.reshape(-1, traj.shape[-1])
    if flat.shape[0] == 0:
        raise ValueError(f"trajectories has no time steps (shape {tuple(traj.shape)})")
    if mask is None:
        weights = jnp.ones((flat.shape[0],), flat.dtype)
    else:
        mask = jnp.asarray(mask)
        if tuple(mask.shape) != tuple(traj.shape[:-1]):
            raise ValueError(
                f"mask has shape {tuple(mask.shape)}, expected {tuple(traj.shape[:-1])} "
                f"to match trajectories of shape {tuple(traj.shape)}"
            )
        weights = mask.reshape(-1).astype(flat.dtype)
    if not _checks.is_traced(weights):
        valid = int(np.count_nonzero(np.asarray(weights)))
        if valid == 0:
            raise ValueError("mask marks no valid time step; nothing to sample from")
        if not replace and n > valid:
            raise ValueError(
                f"n={n} exceeds the {valid} valid states; use replace=True or a smaller n"
            )
    k_pick, k_noise = jax.random.split(key)
    idx = jax.random.choice(k_pick, flat.shape[0], (n,), replace=replace, p=weights / weights.sum())
    states = flat[idx]
    if noise > 0:
        states = states + noise * jax.random.normal(k_noise, states.shape, states.dtype)
    return states
