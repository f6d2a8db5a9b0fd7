"""Deflation with re-seeding: rounds of searches that look for roots not found yet.

After a round, the candidates that ended at an already-found isolated root (all but one
per root) or that failed (stalled, capped, diverged, outside, artefact) run again with
every certified isolated root deflated (Farrell, Birkisson & Funke 2015: the residual is
multiplied by ``Π_j (‖h − h_j‖⁻² + 1)``, so the search cannot end at a known root again).
As many of them as needed start next to the found roots along their unstable
eigenvectors (saddles' unstable manifolds lead to other roots); the others restart from
their first start. Slow points and continuum roots are never rerun: they are results.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from rnndyn import linearize
from rnndyn.fixed_points.certificate import Certificate
from rnndyn.fixed_points.result import SLOW, Status, cluster, nearest_distances
from rnndyn.fixed_points.run import pad_rows
from rnndyn.fixed_points.search import Outcome

__all__ = ["Round", "count_distinct_roots", "deflate"]

_RESEED_STEPS = (0.05, 0.25)  # seed distances from a root, times sqrt(S)


def count_distinct_roots(points, inputs, status, merge_distance: float) -> int:
    """Certified roots (``ROOT`` or ``CONTINUUM``) that are ``merge_distance`` apart."""
    roots = np.isin(np.asarray(status), [Status.ROOT, Status.CONTINUUM])
    if not np.any(roots):
        return 0
    leader = cluster(np.asarray(points)[roots], np.asarray(inputs)[roots], merge_distance)
    return int(np.unique(leader).size)


class Round(NamedTuple):
    """``deflate``: the updated outcome and certificate, and how many new distinct roots
    the round found."""

    outcome: Outcome
    certificate: Certificate
    new_roots: int


def deflate(
    cell: Any,
    params: Any,
    run: Callable[..., Outcome],
    certify: Callable[[Outcome, Any, tuple], Certificate],
    out: Outcome,
    cert: Certificate,
    inputs: Any,
    h0: Any,
    bounds: tuple[Any, Any],
    merge_distance: float,
) -> Round:
    """One deflation round: a ``Round`` (the updated outcome and certificate, and the
    number of new distinct roots).

    ``run(inputs, h0, bounds, (roots, mask))`` searches; ``certify(outcome, inputs,
    bounds)`` certifies its result.
    """
    status = cert.status
    points = np.asarray(out.points)
    x_all = np.asarray(inputs)
    isolated = np.flatnonzero(status == Status.ROOT)
    if isolated.size == 0:
        return Round(out, cert, 0)
    reps = isolated[np.unique(cluster(points[isolated], x_all[isolated], merge_distance))]
    keep = np.isin(status, [int(s) for s in SLOW]) & (status != Status.ROOT)
    keep[reps] = True
    redo = np.flatnonzero(~keep)
    if redo.size == 0:
        return Round(out, cert, 0)
    known, known_x = points[reps], x_all[reps]
    rows = 1 << max(0, int(known.shape[0] - 1).bit_length())  # pad: fewer recompiles
    roots = np.zeros((rows, points.shape[1]), points.dtype)
    roots[: known.shape[0]] = known
    mask = np.arange(rows) < known.shape[0]
    sub_bounds = tuple(b[redo] for b in bounds)
    starts = _reseed(cell, params, known, known_x, np.asarray(h0)[redo], x_all[redo])
    starts = jnp.clip(jnp.asarray(starts, h0.dtype), *sub_bounds)
    # rerun at the first round's size (padding rows repeat the last): no recompilation
    pad = lambda a: pad_rows(a, len(status))  # noqa: E731
    new = run(pad(inputs[redo]), pad(starts), tuple(pad(b) for b in sub_bounds),
              (jnp.asarray(roots), jnp.asarray(mask)))  # fmt: skip
    new = jax.tree_util.tree_map(lambda a: a[: redo.size], new)
    new_cert = certify(new, inputs[redo], sub_bounds)
    # accept a rerun only where it is a root not within merge_distance of a known one
    is_root = np.isin(new_cert.status, [Status.ROOT, Status.CONTINUUM])
    far = _far_from(np.asarray(new.points), x_all[redo], known, known_x, merge_distance)
    take = is_root & far
    if not np.any(take):
        return Round(out, cert, 0)
    rows_taken = redo[take]
    out = jax.tree_util.tree_map(
        lambda a, b: jnp.asarray(a).at[rows_taken].set(jnp.asarray(b)[take]), out, new
    )
    cert = Certificate(*(_put(c, rows_taken, n[take]) for c, n in zip(cert, new_cert, strict=True)))
    found = count_distinct_roots(np.asarray(new.points)[take], x_all[rows_taken],
                                 new_cert.status[take], merge_distance)  # fmt: skip
    return Round(out, cert, found)


def _unstable_directions(a: np.ndarray) -> list[np.ndarray]:
    """Unit real directions spanning the eigenvectors of ``a (S, S)`` with |λ| > 1."""
    lam, vec = np.linalg.eig(a)
    out = []
    for i in np.flatnonzero(np.abs(lam) > 1.0):
        v = np.real(vec[:, i]) + np.imag(vec[:, i])  # a real vector of a conjugate pair's plane
        out.append(v / max(np.linalg.norm(v), 1e-30))
    return out


def _reseed(cell, params, roots, root_inputs, starts, inputs):
    """Starting states for a deflation round: each known root pushed along its unstable
    directions (± each, at a few distances), replacing the starts of rerun candidates
    with the same input; the other candidates keep their first start."""
    starts = np.array(starts, copy=True)
    jacs = np.asarray(linearize.jacobians(cell, params, roots, root_inputs)[0], np.float64)
    free = np.ones(len(starts), dtype=bool)
    scale = np.sqrt(roots.shape[1])
    for root, x, a in zip(roots, root_inputs, jacs, strict=True):
        rows = iter(np.flatnonzero(free & np.all(inputs == x, axis=1)))
        for v, eps, sign in itertools.product(_unstable_directions(a), _RESEED_STEPS, (1, -1)):
            row = next(rows, None)
            if row is None:
                break
            starts[row] = root + sign * eps * scale * v
            free[row] = False
    return starts


def _put(a: np.ndarray, rows: np.ndarray, values: np.ndarray) -> np.ndarray:
    a = np.array(a, copy=True)
    a[rows] = values
    return a


def _far_from(points, inputs, known, known_inputs, tol: float) -> np.ndarray:
    """Finite rows of ``points`` farther than ``tol`` from every known root of their input."""
    far = np.all(np.isfinite(points), axis=1)
    for x in np.unique(known_inputs, axis=0):
        rows = far & np.all(inputs == x, axis=1)
        if rows.any():
            ref = known[np.all(known_inputs == x, axis=1)]
            far[rows] = nearest_distances(points[rows], ref) >= tol
    return far
