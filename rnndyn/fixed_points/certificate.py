"""Float64 certificates: what a candidate below ``tol`` is.

A candidate the search left with ``q < tol`` (in its own precision) is re-examined on the
host with the parameters and the point cast to float64:

1. ``q`` again in float64. Not below ``tol``: ``ARTEFACT`` (the float32 arithmetic made
   ``F(h) = h`` hold where it does not). This is the only way a candidate below ``tol``
   loses its slow-point label.
2. Newton steps ``δ = −(J − I)⁺ r`` (pseudo-inverse: singular directions of a continuum
   are left alone). A root is certified when the steps contract (each at most half the
   last), reach the float64 floor of the residual, stay inside the cell's box, and add up
   to at most ``radius`` (``merge_distance``): a root lies that close to the point. A slow
   point on a near-continuum (``σ_min(J − I) ≈ 1e-4``, the residual along the near-null
   direction), a residual that only vanishes asymptotically (``h ↦ h + e^{−h}``) or a
   plateau (``F(h) = h + δ``) fails this and stays a ``SLOW_POINT``.
3. A certified root with ``σ_min(J − I) < continuum_sigma`` is checked for a continuum:
   from the root, step ``±ε`` along each near-null right singular vector and refine; if
   both neighbours along a direction are roots where they stand (their Newton
   displacement is at most a tenth of ``ε``, curvature allowed), the root lies on a
   manifold of roots (``CONTINUUM``). On a near-continuum with a single root the
   neighbours slide back to it (``ROOT``).
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from rnndyn.cells import Cell
from rnndyn.fixed_points.result import Status, cluster

__all__ = ["Certificate", "certify"]

NEWTON_ITERS = 6  # float64 Newton steps from a candidate (a root needs 2-4)
NEIGHBOUR_ITERS = 3  # Newton steps from a neighbour in the continuum check
RCOND = 1e-10  # singular values below this times the largest are treated as zero
FLOOR = 1e-12  # per-component float64 residual of a root, times max(1, ‖h‖∞)
NEIGHBOUR_STEP = 1e-3  # ε of the continuum check, times max(1, ‖h‖∞)
MAX_NULL = 2  # near-null directions tried in the continuum check


class Certificate(NamedTuple):
    """Per candidate ``(K,)``: final status, float64 ``q``, Newton correction (distance to
    the certified root, or the first Newton step), and ``σ_min(J − I)`` (NaN where not
    evaluated)."""

    status: np.ndarray
    q64: np.ndarray
    correction: np.ndarray
    sigma_min: np.ndarray


def _to64(tree: Any) -> Any:
    def cast(a):
        a = np.asarray(a)
        return jnp.asarray(a, jnp.float64) if a.dtype.kind == "f" else jnp.asarray(a)

    return jax.tree_util.tree_map(cast, tree)


class _Kernels(NamedTuple):
    q: Any  # (params, h (B, S), x (B, M)) -> (B,)
    first: Any  # -> sigma_min (B,), first step (B, S)
    refine: Any  # -> root (B, S), step norms (B, NEWTON_ITERS), q at the root (B,)
    neighbours: Any  # (params, root, x, eps (B,), tol) -> verified (B,)


@functools.lru_cache(maxsize=32)
def _kernels(cell: Cell) -> _Kernels:
    def residual(params, h, x):
        return cell(params, h, x) - h

    def q(params, h, x):
        r = residual(params, h, x)
        return 0.5 * jnp.sum(r * r)

    def svd(params, h, x):
        return jnp.linalg.svd(jax.jacfwd(residual, argnums=1)(params, h, x))

    def newton(params, h, x):
        u, sv, vt = svd(params, h, x)
        keep = sv > RCOND * sv[0]
        inv = jnp.where(keep, 1.0 / jnp.where(keep, sv, 1.0), 0.0)
        return -vt.T @ (inv * (u.T @ residual(params, h, x))), sv, vt

    def first(params, h, x):
        delta, sv, _ = newton(params, h, x)
        return sv[-1], delta

    def refine(params, h, x, iters=NEWTON_ITERS):
        def body(h, _):
            delta = newton(params, h, x)[0]
            return h + delta, jnp.linalg.norm(delta)

        root, steps = jax.lax.scan(body, h, None, length=iters)
        return root, steps, q(params, root, x)

    def neighbours(params, root, x, eps, tol):
        _, sv, vt = svd(params, root, x)
        dirs = vt[::-1][:MAX_NULL]  # the smallest singular values' directions
        valid = sv[::-1][:MAX_NULL] < tol
        starts = root + eps * jnp.concatenate([dirs, -dirs])  # (2D, S)
        ends, _, q_end = jax.vmap(lambda h: refine(params, h, x, NEIGHBOUR_ITERS))(starts)
        scale = jnp.maximum(1.0, jnp.max(jnp.abs(starts), axis=1))
        floor = 0.5 * root.shape[0] * (FLOOR * scale) ** 2
        stays = (jnp.linalg.norm(ends - starts, axis=1) <= 0.1 * eps) & (q_end <= floor)
        both = stays[:MAX_NULL] & stays[MAX_NULL:]
        return jnp.any(both & valid)

    batch = functools.partial(jax.vmap, in_axes=(None, 0, 0))
    return _Kernels(
        q=jax.jit(batch(q)),
        first=jax.jit(batch(first)),
        refine=jax.jit(batch(refine)),
        neighbours=jax.jit(jax.vmap(neighbours, in_axes=(None, 0, 0, 0, None))),
    )


def _bucketed(fn, arrays: tuple, batch: int | None) -> Any:
    """``fn(*arrays)`` over rows in chunks of ``batch``, each padded to a power of two
    (few distinct shapes, few compilations); numpy outputs."""
    n = arrays[0].shape[0]
    size = n if batch is None else max(1, min(batch, n))
    parts = []
    for start in range(0, n, size):
        rows = [a[start : start + size] for a in arrays]
        m = rows[0].shape[0]
        pad = (1 << max(0, (m - 1).bit_length())) - m
        rows = [np.concatenate([r, np.repeat(r[-1:], pad, axis=0)]) if pad else r for r in rows]
        out = fn(*rows)
        parts.append(jax.tree_util.tree_map(lambda a, m=m: np.asarray(a)[:m], out))
    return jax.tree_util.tree_map(lambda *a: np.concatenate(a), *parts)


def _floor(points: np.ndarray, tol: float) -> np.ndarray:
    scale = np.maximum(1.0, np.max(np.abs(points), axis=1))
    return np.minimum(tol, 0.5 * points.shape[1] * (FLOOR * scale) ** 2)


def certify(
    cell: Cell,
    params: Any,
    points: Any,
    status: Any,
    inputs: Any,
    bounds: tuple[Any, Any],
    *,
    tol: float,
    radius: float,
    continuum_sigma: float,
    batch: int | None = None,
) -> Certificate:
    """Certify the candidates with ``status == SLOW_POINT`` (below ``tol`` in the search).

    Args:
      cell, params: the cell.
      points: ``(K, S)`` candidates; status: ``(K,)`` their search outcomes.
      inputs: ``(K, M)``; bounds: ``(lower, upper)`` ``(K, S)`` of the cell's box.
      tol: threshold on ``q``; radius: how close a certified root must be to the point;
      continuum_sigma: ``σ_min(J − I)`` below which a root is checked for a continuum.
      batch: rows per call (memory), default all.

    Returns:
      ``Certificate``.
    """
    status = np.array(status, copy=True)
    k = status.shape[0]
    q64, corr, smin = (np.full(k, np.nan) for _ in range(3))
    idx = np.flatnonzero(status == Status.SLOW_POINT)
    if idx.size == 0:
        return Certificate(status, q64, corr, smin)
    pts = np.asarray(points, np.float64)[idx]
    xs = np.asarray(inputs, np.float64)[idx]
    lower, upper = (np.asarray(b, np.float64)[idx] for b in bounds)
    leader = cluster(pts, xs, 1e-6)  # coinciding candidates share the work
    reps = np.unique(leader)
    member = np.searchsorted(reps, leader)
    kern = _kernels(cell)
    with jax.enable_x64(True):
        p64 = _to64(params)
        q_all = _bucketed(lambda h, x: kern.q(p64, h, x), (pts, xs), batch)
        s_rep, d_rep = _bucketed(lambda h, x: kern.first(p64, h, x), (pts[reps], xs[reps]), batch)
        first = np.linalg.norm(d_rep, axis=1)
        root, cont = np.zeros(reps.size, bool), np.zeros(reps.size, bool)
        dist = first.copy()
        try_ = np.flatnonzero((first <= radius) & (q_all[reps] < tol))
        if try_.size:
            r_pts, steps, q_end = _bucketed(
                lambda h, x: kern.refine(p64, h, x), (pts[reps][try_], xs[reps][try_]), batch
            )
            ok = _converged(r_pts, steps, q_end, tol, radius, lower[reps][try_],
                            upper[reps][try_])  # fmt: skip
            root[try_] = ok
            dist[try_] = np.where(ok, np.linalg.norm(r_pts - pts[reps][try_], axis=1), first[try_])
            check = try_[ok & (s_rep[try_] < continuum_sigma)]
            if check.size:
                r_check = r_pts[np.searchsorted(try_, check)]
                eps = NEIGHBOUR_STEP * np.maximum(1.0, np.max(np.abs(r_check), axis=1))
                cont[check] = _bucketed(
                    lambda h, x, e: kern.neighbours(p64, h, x, e, continuum_sigma),
                    (r_check, xs[reps][check], eps), batch,
                )  # fmt: skip
    q64[idx] = q_all
    smin[idx] = s_rep[member]
    shift = np.linalg.norm(pts - pts[reps][member], axis=1)  # to the cluster's representative
    corr[idx] = dist[member] + np.where(root[member], shift, 0.0)
    new = np.where(root[member], Status.ROOT, Status.SLOW_POINT)
    new = np.where(root[member] & cont[member], Status.CONTINUUM, new)
    status[idx] = np.where(q_all < tol, new, Status.ARTEFACT)
    return Certificate(status, q64, corr, smin)


def _converged(root, steps, q_end, tol, radius, lower, upper) -> np.ndarray:
    """Newton runs that certify a root: contracting steps, the float64 floor, inside the
    box (up to rounding), and a total displacement of at most ``radius``."""
    scale = np.maximum(1.0, np.max(np.abs(root), axis=1))
    tiny = FLOOR * scale * np.sqrt(root.shape[1])
    contracting = np.all((steps[:, 1:] <= 0.5 * steps[:, :-1]) | (steps[:, 1:] <= tiny[:, None]),
                         axis=1)  # fmt: skip
    slack = 1e-9 * np.maximum(1.0, np.abs(root))
    inside = np.all((root >= lower - slack) & (root <= upper + slack), axis=1)
    return (
        contracting
        & (q_end <= _floor(root, tol))
        & (steps.sum(axis=1) <= radius)
        & inside
        & np.all(np.isfinite(root), axis=1)
    )
