"""The compiled per-candidate hybrid search behind ``find_fixed_points``.

One ``lax.while_loop`` (``search``: ``init``, then ``step`` until ``terminate``) moves
``K`` candidates through phases, each on its own:

- ``ADAM``: first-order steps (optax, vmapped) on the merit ``m(h)² q(h)``, projected onto
  the cell's box. A candidate leaves the phase once ``q`` is below the switch threshold,
  once its merit has stalled, or at its step cap.
- ``READY`` / ``NEWTON``: damped Newton / Levenberg–Marquardt steps on the (deflated)
  residual ``m(h) r(h)``. Only ``P = newton_batch`` candidates take a second-order step
  per iteration: they are gathered into a fixed-size buffer (static shapes), stepped
  and scattered back, so the ``S × S`` Jacobians of at most ``P`` candidates exist at
  any time. Waiting candidates do not move, so every candidate's path is independent
  of the others (chunking and sharding give the same points).
- ``DONE`` with an outcome: below ``tol`` (``Status.SLOW_POINT`` until the float64
  certificate says more), stalled, capped, diverged or outside.

``q = ½‖F(h, x) − h‖²`` and ``m(h) = Π_j (‖h − h_j‖^{-2} + 1)`` over the roots ``h_j``
being deflated (Farrell, Birkisson & Funke 2015); with no roots ``m = 1``.
"""

from __future__ import annotations

import dataclasses
import sys
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from rnndyn.fixed_points.result import Status

Array = jax.Array

# phases
ADAM, READY, NEWTON, DONE = 0, 1, 2, 3
# outcomes (a candidate below tol is a slow point until certified)
BELOW, STALLED, MAX_STEPS = int(Status.SLOW_POINT), int(Status.STALLED), int(Status.MAX_STEPS)
DIVERGED, OUTSIDE = int(Status.DIVERGED), int(Status.OUTSIDE)

_STALL_WINDOW = 500  # Adam steps between stall checks
_STALL_FACTOR = 0.99  # stalled: best merit fell by less than 1% over a window (a line
# attractor is approached slowly but steadily: 10% per 200 steps stopped most starts early)
_MAX_FAILS = 8  # second-order steps in a row without a 1% decrease: stalled
_FLOOR_STEPS = 8  # second-order steps allowed once below tol (a root needs 1-3)
_MU0 = 1.0  # initial LM damping, relative to mean(diag(AᵀA)): short, gradient-like steps
_DEFLATION_POWER = 2.0
_DEFLATION_SHIFT = 1.0


@dataclasses.dataclass(frozen=True)
class Static:
    """Compile-time settings (hashable; a change recompiles)."""

    optimizer: Any  # a hashable wrapper of an optax transformation, or None: Adam
    newton_batch: int  # P
    second_order: bool
    verbose: bool
    log_every: int
    shared_input: bool = False  # inputs are one row (1, M) that every candidate shares


class Dynamic(NamedTuple):
    """Run-time settings (traced; a change does not recompile)."""

    tol: Array
    switch_q: Array  # q below which a candidate moves to the second-order phase
    max_steps: Array  # first-order steps per candidate
    newton_steps: Array  # second-order steps per candidate
    learning_rate: Array  # of the default Adam


class Outcome(NamedTuple):
    """Per-candidate results of one search; leading axis ``K``."""

    points: Array  # (K, S)
    speeds: Array  # (K,) q, inf where non-finite
    status: Array  # (K,) int32, a Status value
    adam_steps: Array  # (K,) int32
    newton_steps: Array  # (K,) int32


class State(NamedTuple):
    """The loop's state; every field but ``it`` has leading axis ``K``."""

    it: Array  # () loop iterations so far
    h: Array  # (K, S) candidates
    opt: Any  # optimiser state per candidate
    phase: Array  # (K,) ADAM, READY, NEWTON or DONE
    status: Array  # (K,) outcome once DONE
    n_adam: Array  # (K,) first-order steps taken
    n_newton: Array  # (K,) second-order steps taken
    best: Array  # (K,) best merit of the first-order phase
    ref: Array  # (K,) best merit at the last stall check
    q: Array  # (K,) speed at h
    m: Array  # (K,) merit at h (second-order phase)
    mu: Array  # (K,) Levenberg-Marquardt damping
    fails: Array  # (K,) second-order steps in a row without a 1% decrease
    below: Array  # (K,) second-order steps taken while q < tol


class Problem(NamedTuple):
    """The residual of one search: ``cell``, its ``params``, inputs ``(K, M)`` (or ``(1, M)``
    shared by every candidate: ``shared``), the box ``lower``/``upper`` ``(K, S)``, and the
    roots being deflated ``(R, S)`` (``mask``: real rows)."""

    cell: Any
    params: Any
    inputs: Array
    lower: Array
    upper: Array
    roots: Array
    roots_mask: Array
    shared: bool = False

    def per_row(self, f, h: Array):
        """``f(h_k, x_k)`` for every row of ``h (K, S)``. A shared input enters the vmap
        unbatched, so a cell's input projection is one vector, not a ``(K, M)`` product
        repeated at every iteration (a fifth of a GRU-128 search's step)."""
        if self.shared:
            return jax.vmap(f, (0, None))(h, self.inputs[0])
        return jax.vmap(f)(h, self.inputs)

    def inputs_at(self, idx: Array) -> Array:
        """The inputs of rows ``idx (P,)``: ``(P, M)``."""
        return self.inputs[jnp.zeros_like(idx) if self.shared else idx]

    def residual(self, h: Array, x: Array) -> Array:
        return self.cell(self.params, h, x) - h

    def deflated(self, h: Array, x: Array) -> Array:
        return jnp.exp(_log_deflation(h, self.roots, self.roots_mask)) * self.residual(h, x)

    def merit(self, h: Array, x: Array) -> Array:
        r = self.deflated(h, x)
        return 0.5 * jnp.sum(r * r)

    def speed(self, h: Array, x: Array) -> Array:
        r = self.residual(h, x)
        return _finite_or_inf(0.5 * jnp.sum(r * r))


def _rows(mask: Array, new: Any, old: Any) -> Any:
    """Per-row select over a pytree whose leaves all have leading axis K."""

    def pick(a, b):
        return jnp.where(mask.reshape(mask.shape + (1,) * (a.ndim - 1)), a, b)

    return jax.tree_util.tree_map(pick, new, old)


def _finite_or_inf(q: Array) -> Array:
    return jnp.where(jnp.isfinite(q), q, jnp.inf)


def _log_deflation(h: Array, roots: Array, roots_mask: Array) -> Array:
    """``log m(h)`` for one state ``(S,)`` against ``roots (R, S)``; 0 when R = 0."""
    d2 = jnp.sum((h[None, :] - roots) ** 2, axis=-1)
    d2 = jnp.where(roots_mask, d2, 1.0)  # padding rows: keep the unused branch finite
    terms = jnp.log(d2 ** (-_DEFLATION_POWER / 2) + _DEFLATION_SHIFT)
    return jnp.sum(jnp.where(roots_mask, terms, 0.0))


def _optimizer(dyn: Dynamic, st: Static) -> optax.GradientTransformation:
    return optax.adam(dyn.learning_rate) if st.optimizer is None else st.optimizer.value


def report(it, phases, q, total) -> None:
    phases, q = np.asarray(phases), np.asarray(q)
    moving = np.isfinite(q) & (phases != DONE)
    med = np.median(q[moving]) if np.any(moving) else float("nan")
    first, done = int(np.sum(phases == ADAM)), int(np.sum(phases == DONE))
    print(
        f"[rnndyn] fixed points: iteration {int(it):>6d}  first-order {first:>6d}  "
        f"second-order {total - first - done:>6d}  done {done:>6d}/{total}  "
        f"median q (moving) {med:.2e}",
        file=sys.stderr,
        flush=True,
    )


def init(prob: Problem, h0: Array, dyn: Dynamic, st: Static) -> State:
    """Every candidate in the first-order phase at ``h0 (K, S)``."""
    k = h0.shape[0]
    zeros = jnp.zeros((k,), jnp.int32)
    inf = jnp.full((k,), jnp.inf, h0.dtype)
    return State(
        it=jnp.asarray(0, jnp.int32), h=h0, opt=jax.vmap(_optimizer(dyn, st).init)(h0),
        phase=zeros, status=jnp.full((k,), MAX_STEPS, jnp.int32), n_adam=zeros,
        n_newton=zeros, best=inf, ref=inf, q=inf, m=inf, mu=jnp.full((k,), 1e-6, h0.dtype),
        fails=zeros, below=zeros,
    )  # fmt: skip


def terminate(state: State, dyn: Dynamic) -> Array:
    """True once every candidate is done (or at a safe bound on the iterations: each
    candidate takes at most ``max_steps + newton_steps`` steps and every iteration moves
    at least one)."""
    k = state.h.shape[0]
    cap = (dyn.max_steps + 1) + (dyn.newton_steps + 1) * k + 1
    return jnp.all(state.phase == DONE) | (state.it >= cap)


def step(prob: Problem, state: State, dyn: Dynamic, st: Static) -> State:
    """One iteration: a first-order step for the candidates in that phase, then a
    second-order step for up to ``newton_batch`` of the others."""
    state = jax.lax.cond(
        jnp.any(state.phase == ADAM), lambda s: _first_order(prob, s, dyn, st), lambda s: s, state
    )
    if st.second_order:
        waiting = (state.phase == READY) | (state.phase == NEWTON)
        state = jax.lax.cond(
            jnp.any(waiting), lambda s: _second_order(prob, s, dyn, st), lambda s: s, state
        )
    if st.verbose:
        k = state.h.shape[0]
        jax.lax.cond(
            state.it % st.log_every == 0,
            lambda: jax.debug.callback(report, state.it, state.phase, state.q, k),
            lambda: None,
        )
    return state._replace(it=state.it + 1)


def _first_order(prob: Problem, s: State, dyn: Dynamic, st: Static) -> State:
    m, g = prob.per_row(jax.value_and_grad(prob.merit), s.h)
    m = _finite_or_inf(m)
    q = prob.per_row(prob.speed, s.h)
    active = s.phase == ADAM
    bad = active & ~(jnp.isfinite(m) & jnp.isfinite(q) & jnp.all(jnp.isfinite(s.h), -1))
    best = jnp.minimum(s.best, m)
    check = (s.n_adam > 0) & (s.n_adam % _STALL_WINDOW == 0)
    stalled = check & (best > _STALL_FACTOR * s.ref)
    ref = jnp.where(check, best, s.ref)
    capped = s.n_adam >= dyn.max_steps
    phase, status = s.phase, s.status
    if st.second_order:
        leave = active & ~bad & ((q < dyn.switch_q) | stalled | capped)
        phase = jnp.where(leave, READY, phase)
    else:
        below = active & ~bad & (q < dyn.tol)
        slow = active & ~bad & ~below & stalled
        cap = active & ~bad & ~below & ~slow & capped
        status = jnp.where(below, BELOW, jnp.where(slow, STALLED, status))
        status = jnp.where(cap, MAX_STEPS, status)
        phase = jnp.where(below | slow | cap, DONE, phase)
    status = jnp.where(bad, DIVERGED, status)
    phase = jnp.where(bad, DONE, phase)
    moving = phase == ADAM
    updates, new_opt = jax.vmap(_optimizer(dyn, st).update)(g, s.opt, s.h)
    new_h = jnp.clip(s.h + updates, prob.lower, prob.upper)
    return s._replace(
        h=_rows(moving, new_h, s.h), opt=_rows(moving, new_opt, s.opt), phase=phase,
        status=status, n_adam=s.n_adam + moving.astype(jnp.int32), best=best, ref=ref,
        q=jnp.where(active, q, s.q),
    )  # fmt: skip


class _Newton(NamedTuple):
    """One candidate's second-order bookkeeping (rows of ``State``)."""

    h: Array
    mu: Array
    fails: Array
    m: Array
    q: Array
    n_newton: Array
    below: Array


def _newton_one(prob: Problem, c: _Newton, x, lo, hi, dyn: Dynamic):
    """One projected Levenberg-Marquardt step (Kanzow, Yamashita & Fukushima 2004) with
    Nielsen's damping update for one candidate; returns the new rows, done and status."""
    s = c.h.shape[0]
    a = jax.jacfwd(prob.deflated)(c.h, x)
    r = prob.deflated(c.h, x)
    ata = a.T @ a
    scale = jnp.trace(ata) / s + jnp.finfo(c.h.dtype).tiny
    eye = jnp.eye(s, dtype=c.h.dtype)
    trial = jnp.clip(c.h + jnp.linalg.solve(ata + c.mu * scale * eye, -(a.T @ r)), lo, hi)
    m_trial = _finite_or_inf(prob.merit(trial, x))
    lin = r + a @ (trial - c.h)
    predicted = c.m - 0.5 * jnp.sum(lin * lin)
    rho = (c.m - m_trial) / jnp.maximum(predicted, jnp.finfo(c.h.dtype).tiny)
    better = (m_trial < c.m) & (rho > 1e-4)
    h = jnp.where(better, trial, c.h)
    q = jnp.where(better, prob.speed(trial, x), c.q)
    progress = m_trial < 0.99 * c.m
    shrink = jnp.maximum(1.0 / 3.0, 1.0 - (2.0 * rho - 1.0) ** 3)
    mu = jnp.clip(jnp.where(better, c.mu * shrink, c.mu * 4.0), 1e-12, 1e12)
    fails = jnp.where(progress, 0, c.fails + 1)
    below = jnp.where(q < dyn.tol, c.below + 1, 0)
    # below tol a root reaches the float floor in a few steps; a residual that only
    # vanishes asymptotically (no root) would keep "progressing" forever
    at_floor = (q < dyn.tol) & (~progress | (q == 0) | (below >= _FLOOR_STEPS))
    stalled = fails >= _MAX_FAILS
    capped = c.n_newton + 1 >= dyn.newton_steps
    done = at_floor | stalled | capped
    status = jnp.where(q < dyn.tol, BELOW, jnp.where(stalled, STALLED, MAX_STEPS))
    new = _Newton(h, mu, fails, jnp.where(better, m_trial, c.m), q, c.n_newton + 1, below)
    return new, done, status.astype(jnp.int32)


def _second_order(prob: Problem, s: State, dyn: Dynamic, st: Static) -> State:
    p = min(st.newton_batch, s.h.shape[0])
    waiting = (s.phase == READY) | (s.phase == NEWTON)
    prio = jnp.where(s.phase == NEWTON, 0, jnp.where(s.phase == READY, 1, 2))
    idx = jnp.argsort(prio, stable=True)[:p]
    sel = waiting[idx]
    starting = s.phase[idx] == READY
    h, x = s.h[idx], prob.inputs_at(idx)
    m0 = _finite_or_inf(jax.vmap(prob.merit)(h, x))
    rows = _Newton(
        h=h, mu=jnp.where(starting, _MU0, s.mu[idx]).astype(h.dtype),
        fails=jnp.where(starting, 0, s.fails[idx]), m=jnp.where(starting, m0, s.m[idx]),
        q=s.q[idx], n_newton=s.n_newton[idx], below=jnp.where(starting, 0, s.below[idx]),
    )  # fmt: skip
    one = lambda c, x, lo, hi: _newton_one(prob, c, x, lo, hi, dyn)  # noqa: E731
    new, done, status = jax.vmap(one)(rows, x, prob.lower[idx], prob.upper[idx])

    def put(old, value):
        return old.at[idx].set(_rows(sel, value, old[idx]))

    return s._replace(
        h=put(s.h, new.h), mu=put(s.mu, new.mu), fails=put(s.fails, new.fails),
        m=put(s.m, new.m), q=put(s.q, new.q), n_newton=put(s.n_newton, new.n_newton),
        below=put(s.below, new.below),
        status=put(s.status, jnp.where(done, status, s.status[idx])),
        phase=put(s.phase, jnp.where(done, DONE, NEWTON).astype(s.phase.dtype)),
    )  # fmt: skip


def outcome(prob: Problem, state: State, dyn: Dynamic) -> Outcome:
    """Final statuses: diverged where non-finite; a candidate pinned on the box's faces
    with ``q >= tol`` is where the unconstrained search would have left the set the cell
    cannot leave (``OUTSIDE``); any other candidate with ``q < tol`` is below tol."""
    h = state.h
    q = prob.per_row(prob.speed, h)
    finite = jnp.isfinite(q) & jnp.all(jnp.isfinite(h), axis=-1)
    status = jnp.where(finite, state.status, DIVERGED)
    on_face = jnp.any((h <= prob.lower) | (h >= prob.upper), axis=-1)
    beyond = jnp.any((h < prob.lower) | (h > prob.upper), axis=-1)
    status = jnp.where(finite & (beyond | (on_face & (q >= dyn.tol))), OUTSIDE, status)
    status = jnp.where(finite & (q < dyn.tol) & (status != OUTSIDE), BELOW, status)
    return Outcome(
        points=h, speeds=jnp.where(finite, q, jnp.inf), status=status,
        adam_steps=state.n_adam, newton_steps=state.n_newton,
    )  # fmt: skip


def search(cell, params, inputs, h0, lower, upper, roots, roots_mask, dyn: Dynamic, st: Static):
    """Run the hybrid search for ``h0 (K, S)`` with inputs ``(K, M)``; returns ``Outcome``.

    One loop, for use inside the caller's ``jit``/``vmap``; on the host ``begin`` and
    ``advance`` run the same steps in chunks."""
    prob = Problem(cell, params, inputs, lower, upper, roots, roots_mask, st.shared_input)
    state = jax.lax.while_loop(
        lambda s: ~terminate(s, dyn), lambda s: step(prob, s, dyn, st), init(prob, h0, dyn, st)
    )
    return outcome(prob, state, dyn)


def begin(cell, params, inputs, h0, lower, upper, roots, roots_mask, dyn: Dynamic, st: Static):
    """The loop's ``State`` before the first iteration (``search`` in pieces, with
    ``advance``)."""
    prob = Problem(cell, params, inputs, lower, upper, roots, roots_mask, st.shared_input)
    return init(prob, h0, dyn, st)


def advance(cell, params, inputs, lower, upper, roots, roots_mask, dyn: Dynamic, state: State,
            until: Array, st: Static) -> tuple[State, Outcome]:  # fmt: skip
    """``search``'s loop from ``state`` until it terminates or ``state.it`` reaches
    ``until``; returns the state and the outcome so far.

    Chunks of iterations take the same steps as one loop (each candidate's path depends
    on its own state only), so the host can report progress between chunks instead of
    from inside the compiled loop, whose host callbacks would keep the program out of
    the persistent compilation cache.
    """
    prob = Problem(cell, params, inputs, lower, upper, roots, roots_mask, st.shared_input)
    state = jax.lax.while_loop(
        lambda s: ~terminate(s, dyn) & (s.it < until), lambda s: step(prob, s, dyn, st), state
    )
    return state, outcome(prob, state, dyn)
