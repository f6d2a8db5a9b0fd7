"""The compiled per-candidate hybrid search behind ``find_fixed_points``.

One ``lax.while_loop`` moves ``K`` candidates through phases, each on its own:

- ``ADAM``: first-order steps (optax, vmapped) on the merit ``m(h)² q(h)``, projected onto
  the cell's box. A candidate leaves the phase once ``q`` is below the switch threshold,
  once its merit has stalled, or at its step cap.
- ``READY`` / ``NEWTON``: damped Newton / Levenberg–Marquardt steps on the (deflated)
  residual ``m(h) r(h)``. Only ``P = newton_batch`` candidates take a second-order step
  per iteration: they are gathered into a fixed-size buffer (static shapes), stepped
  and scattered back, so the ``S × S`` Jacobians of at most ``P`` candidates exist at
  any time. Waiting candidates do not move, so every candidate's path is independent
  of the others (chunking and sharding give the same points).
- ``DONE`` with a status.

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

Array = jax.Array

# phases
ADAM, READY, NEWTON, DONE = 0, 1, 2, 3
# statuses, in the order of rnndyn.fixed_points.Status
CONVERGED, CONTINUUM, SLOW_POINT, MAX_STEPS, DIVERGED, OUTSIDE, UNCERTIFIED = range(7)

_STALL_WINDOW = 200  # Adam steps between stall checks
_STALL_FACTOR = 0.9  # stalled: best merit fell by less than 10% over a window
_MAX_FAILS = 8  # second-order steps in a row without a 1% decrease: stalled
_MU0 = 1.0  # initial LM damping, relative to mean(diag(AᵀA)): short, gradient-like steps
_DEFLATION_POWER = 2.0
_DEFLATION_SHIFT = 1.0


@dataclasses.dataclass(frozen=True)
class Static:
    """Compile-time settings (hashable; a change recompiles)."""

    optimizer: Any  # a _Fingerprinted optax transformation, or None for Adam(learning_rate)
    newton_batch: int  # P
    second_order: bool
    verbose: bool
    log_every: int


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
    status: Array  # (K,) int32
    adam_steps: Array  # (K,) int32
    newton_steps: Array  # (K,) int32


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


def _project(h: Array, lower: Array, upper: Array) -> Array:
    return jnp.clip(h, lower, upper)


def _report(it, phases, q, total) -> None:
    phases = np.asarray(phases)
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


def search(cell, params, inputs, h0, lower, upper, roots, roots_mask, dyn: Dynamic, st: Static):
    """Run the hybrid search for ``h0 (K, S)`` with inputs ``(K, M)``; returns ``Outcome``."""
    k, s = h0.shape
    p = min(st.newton_batch, k)
    optimizer = optax.adam(dyn.learning_rate) if st.optimizer is None else st.optimizer.value

    def residual(h, x):
        return cell(params, h, x) - h

    def deflated(h, x):
        return jnp.exp(_log_deflation(h, roots, roots_mask)) * residual(h, x)

    def merit(h, x):
        r = deflated(h, x)
        return 0.5 * jnp.sum(r * r)

    def speed(h, x):
        r = residual(h, x)
        return _finite_or_inf(0.5 * jnp.sum(r * r))

    merit_and_grad = jax.vmap(jax.value_and_grad(merit))
    speeds = jax.vmap(speed)

    def adam_part(c):
        h, opt, phase, status, n_adam, best, ref = (
            c["h"], c["opt"], c["phase"], c["status"], c["n_adam"], c["best"], c["ref"]
        )  # fmt: skip
        m, g = merit_and_grad(h, inputs)
        m = _finite_or_inf(m)
        q = speeds(h, inputs)
        active = phase == ADAM
        bad = active & ~(jnp.isfinite(m) & jnp.isfinite(q) & jnp.all(jnp.isfinite(h), -1))
        best = jnp.minimum(best, m)
        check = (n_adam > 0) & (n_adam % _STALL_WINDOW == 0)
        stalled = check & (best > _STALL_FACTOR * ref)
        ref = jnp.where(check, best, ref)
        capped = n_adam >= dyn.max_steps
        if st.second_order:
            leave = active & ~bad & ((q < dyn.switch_q) | stalled | capped)
            phase = jnp.where(leave, READY, phase)
        else:
            conv = active & ~bad & (q < dyn.tol)
            slow = active & ~bad & ~conv & stalled
            cap = active & ~bad & ~conv & ~slow & capped
            status = jnp.where(conv, CONVERGED, jnp.where(slow, SLOW_POINT, status))
            status = jnp.where(cap, MAX_STEPS, status)
            phase = jnp.where(conv | slow | cap, DONE, phase)
        status = jnp.where(bad, DIVERGED, status)
        phase = jnp.where(bad, DONE, phase)
        step = phase == ADAM
        updates, new_opt = jax.vmap(optimizer.update)(g, opt, h)
        new_h = _project(h + updates, lower, upper)
        c = dict(c)
        c["h"] = _rows(step, new_h, h)
        c["opt"] = _rows(step, new_opt, opt)
        c["n_adam"] = n_adam + step.astype(jnp.int32)
        c.update(phase=phase, status=status, best=best, ref=ref, q=jnp.where(active, q, c["q"]))
        return c

    def newton_one(h, x, lo, hi, mu, fails, m, q, n_newton):
        """One damped Newton / LM step for one candidate."""
        a = jax.jacfwd(deflated)(h, x)
        r = deflated(h, x)
        ata = a.T @ a
        scale = jnp.trace(ata) / s + jnp.finfo(h.dtype).tiny
        eye = jnp.eye(s, dtype=h.dtype)
        # projected Levenberg-Marquardt (Kanzow, Yamashita & Fukushima 2004)
        trial = _project(h + jnp.linalg.solve(ata + mu * scale * eye, -(a.T @ r)), lo, hi)
        m_trial = _finite_or_inf(merit(trial, x))
        lin = r + a @ (trial - h)
        predicted = m - 0.5 * jnp.sum(lin * lin)
        rho = (m - m_trial) / jnp.maximum(predicted, jnp.finfo(h.dtype).tiny)
        better = (m_trial < m) & (rho > 1e-4)
        h = jnp.where(better, trial, h)
        q = jnp.where(better, speed(trial, x), q)
        progress = m_trial < 0.99 * m
        m = jnp.where(better, m_trial, m)
        # Nielsen's damping update: shrink on a good gain ratio, grow on a rejection
        shrink = jnp.maximum(1.0 / 3.0, 1.0 - (2.0 * rho - 1.0) ** 3)
        mu = jnp.where(better, mu * shrink, mu * 4.0)
        mu = jnp.clip(mu, 1e-12, 1e12)
        fails = jnp.where(progress, 0, fails + 1)
        n_newton = n_newton + 1
        at_floor = (q < dyn.tol) & (~progress | (q == 0))
        stalled = fails >= _MAX_FAILS
        capped = n_newton >= dyn.newton_steps
        done = at_floor | stalled | capped
        status = jnp.where(
            q < dyn.tol, CONVERGED, jnp.where(stalled, SLOW_POINT, MAX_STEPS)
        ).astype(jnp.int32)
        return h, mu, fails, m, q, n_newton, done, status

    def newton_part(c):
        phase = c["phase"]
        waiting = (phase == READY) | (phase == NEWTON)
        prio = jnp.where(phase == NEWTON, 0, jnp.where(phase == READY, 1, 2))
        idx = jnp.argsort(prio, stable=True)[:p]
        sel = waiting[idx]
        starting = phase[idx] == READY
        h = c["h"][idx]
        x = inputs[idx]
        m0 = jax.vmap(merit)(h, x)
        mu = jnp.where(starting, _MU0, c["mu"][idx]).astype(h.dtype)
        fails = jnp.where(starting, 0, c["fails"][idx])
        m = jnp.where(starting, _finite_or_inf(m0), c["m"][idx])
        q = c["q"][idx]
        out = jax.vmap(newton_one)(
            h, x, lower[idx], upper[idx], mu, fails, m, q, c["n_newton"][idx]
        )
        h, mu, fails, m, q, n_newton, done, status = out
        c = dict(c)

        def put(name, value):
            c[name] = c[name].at[idx].set(_rows(sel, value, c[name][idx]))

        put("h", h)
        put("mu", mu)
        put("fails", fails)
        put("m", m)
        put("q", q)
        put("n_newton", n_newton)
        put("status", jnp.where(done, status, c["status"][idx]))
        put("phase", jnp.where(done, DONE, NEWTON).astype(c["phase"].dtype))
        return c

    def body(c):
        any_adam = jnp.any(c["phase"] == ADAM)
        c = jax.lax.cond(any_adam, adam_part, lambda c: c, c)
        if st.second_order:
            any_newton = jnp.any((c["phase"] == READY) | (c["phase"] == NEWTON))
            c = jax.lax.cond(any_newton, newton_part, lambda c: c, c)
        if st.verbose:
            jax.lax.cond(
                c["it"] % st.log_every == 0,
                lambda: jax.debug.callback(_report, c["it"], c["phase"], c["q"], k),
                lambda: None,
            )
        c = dict(c)
        c["it"] = c["it"] + 1
        return c

    def cond(c):
        return jnp.any(c["phase"] != DONE) & (c["it"] < c["cap"])

    dtype = h0.dtype
    zeros_i = jnp.zeros((k,), jnp.int32)
    carry = {
        "it": jnp.asarray(0, jnp.int32),
        # every candidate takes at most max_steps + newton_steps steps, and every
        # iteration moves at least one candidate: a safe bound on the iterations
        "cap": (dyn.max_steps + 1) + (dyn.newton_steps + 1) * k + 1,
        "h": h0,
        "opt": jax.vmap(optimizer.init)(h0),
        "phase": zeros_i,
        "status": jnp.full((k,), MAX_STEPS, jnp.int32),
        "n_adam": zeros_i,
        "n_newton": zeros_i,
        "best": jnp.full((k,), jnp.inf, dtype),
        "ref": jnp.full((k,), jnp.inf, dtype),
        "q": jnp.full((k,), jnp.inf, dtype),
        "m": jnp.full((k,), jnp.inf, dtype),
        "mu": jnp.full((k,), 1e-6, dtype),
        "fails": zeros_i,
    }
    c = jax.lax.while_loop(cond, body, carry)
    h = c["h"]
    q = speeds(h, inputs)
    finite = jnp.isfinite(q) & jnp.all(jnp.isfinite(h), axis=-1)
    status = jnp.where(finite, c["status"], DIVERGED)
    # a non-root pinned to the box's faces is where the unconstrained search would
    # have left the set the cell cannot leave
    on_face = jnp.any((h <= lower) | (h >= upper), axis=-1)
    outside = jnp.any((h < lower) | (h > upper), axis=-1)
    status = jnp.where(finite & (outside | (on_face & (q >= dyn.tol))), OUTSIDE, status)
    status = jnp.where(finite & (q < dyn.tol) & (status != OUTSIDE), CONVERGED, status)
    return Outcome(
        points=h,
        speeds=jnp.where(finite, q, jnp.inf),
        status=status,
        adam_steps=c["n_adam"],
        newton_steps=c["n_newton"],
    )
