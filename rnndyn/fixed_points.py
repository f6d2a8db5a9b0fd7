"""Batched, certified search for fixed points ``F(h, x*) = h`` of a recurrent cell.

``find_fixed_points`` runs a per-candidate hybrid in one compiled loop
(``rnndyn._search``): first-order steps (Adam or any optax optimiser) on the speed
``q(h) = ½ ‖F(h, x*) − h‖²`` until a candidate is close to a root or stalls, then
damped Newton / Levenberg–Marquardt steps for that candidate alone, stopping as soon
as it is a root or stops making progress (a slow point). Candidates stay inside the box
the cell's state cannot leave (``cell.state_bounds()``). Afterwards, on the host:

- every candidate below ``tol`` is **certified** in float64: its residual is evaluated
  again in float64, and the Newton correction ``‖(J − I)⁺ r‖`` must be small (a float32
  artefact such as a saturated gate has a tiny residual but a large correction); the
  smallest singular value of ``J − I`` tells an isolated root from a point on a
  continuum of fixed points (line or plane attractor);
- **deflation** (Farrell, Birkisson & Funke 2015) with **re-seeding**: candidates that
  ended at an already-found isolated root, or at no root, are run again with those roots
  deflated, some of them started next to the found saddles along their unstable
  directions (where further roots tend to lie); the rest from their first starts.

Each candidate ends with a ``Status``.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import itertools
import sys
import types
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P
from scipy.spatial import cKDTree

from rnndyn import _checks, _search, linearize
from rnndyn.cells import Cell, validate

Array = jax.Array

__all__ = ["FixedPoints", "Status", "find_fixed_points", "sample_states", "speed"]


class Status(enum.IntEnum):
    """How a candidate's search ended (``FixedPoints.status``)."""

    CONVERGED = _search.CONVERGED
    CONTINUUM = _search.CONTINUUM
    SLOW_POINT = _search.SLOW_POINT
    MAX_STEPS = _search.MAX_STEPS
    DIVERGED = _search.DIVERGED
    OUTSIDE = _search.OUTSIDE
    UNCERTIFIED = _search.UNCERTIFIED

    @property
    def message(self) -> str:
        return _MESSAGES[self]


_MESSAGES = {
    Status.CONVERGED: "an isolated root: q < tol, certified in float64, J - I well conditioned",
    Status.CONTINUUM: "a root on a continuum of fixed points (smallest singular value of "
    "J - I below continuum_tol): not isolated",
    Status.SLOW_POINT: "q stalled above tol: a local minimum of q (a slow point), not a root",
    Status.MAX_STEPS: "hit the step cap before converging or stalling",
    Status.DIVERGED: "the state or q became NaN or inf",
    Status.OUTSIDE: "held on the faces of the box the cell's state cannot leave without "
    "being a root there (the unconstrained search would have left the reachable set)",
    Status.UNCERTIFIED: "q < tol in the search's precision, but the float64 re-check failed "
    "(residual or Newton correction too large): a numerical artefact, e.g. saturated gates",
}

_ROOTS = (int(Status.CONVERGED), int(Status.CONTINUUM))


@dataclasses.dataclass(frozen=True)
class FixedPoints:
    """Candidates returned by ``find_fixed_points``; a pytree (can leave ``jax.jit``).

    Attributes:
      points: ``(K, S)`` final states of the search.
      speeds: ``(K,)`` final ``q = ½‖F(h, x) − h‖²``; ``inf`` where the search diverged.
      converged: ``(K,)`` bool: the candidate is a root (``Status.CONVERGED`` or
        ``Status.CONTINUUM``). Diverged, slow, capped, outside or uncertified
        candidates are never converged.
      steps: ``(K,)`` steps each candidate took (first- plus second-order).
      inputs: ``(K, M)`` the constant input ``x*`` used for each candidate.
      initial_states: ``(K, S)`` where each candidate started (after noise).
      status: ``(K,)`` int, a ``Status`` per candidate (``Status(int(s)).message``).
      certificate: ``(K,)`` float64 ``q`` re-evaluated in float64 at the point (NaN
        where not certified: not below ``tol``, or the search ran under ``jax.jit``).
      correction: ``(K,)`` float64 norm of the Newton correction ``(J − I)⁺ r`` there:
        how far the nearest root of the linearisation is (NaN where not certified).
      sigma_min: ``(K,)`` float64 smallest singular value of ``J − I`` (NaN where not
        certified); near zero on a continuum of fixed points.
      stats: ``dict`` of run statistics (rounds, roots found per round, steps).
    """

    points: Array
    speeds: Array
    converged: Array
    steps: Array
    inputs: Array
    initial_states: Array
    status: Any = None
    certificate: Any = None
    correction: Any = None
    sigma_min: Any = None
    stats_items: tuple = ()

    def __len__(self) -> int:
        return int(self.points.shape[0])

    @property
    def stats(self) -> dict:
        return dict(self.stats_items)

    @property
    def num_converged(self) -> int:
        return int(np.count_nonzero(np.asarray(self.converged)))

    def counts(self) -> dict[str, int]:
        """Number of candidates per ``Status`` name."""
        if self.status is None:
            return {}
        status = np.asarray(self.status)
        return {s.name: int(np.sum(status == s)) for s in Status if np.any(status == s)}

    def select(self, index: Any) -> FixedPoints:
        """Subset by a boolean mask ``(K,)`` or integer indices (eager, not under jit)."""
        index = np.asarray(index)
        return jax.tree_util.tree_map(lambda a: a[index], self)

    def keep_converged(self) -> FixedPoints:
        """Only the roots (``converged`` true)."""
        return self.select(np.asarray(self.converged, dtype=bool))

    def merge_duplicates(self, tol: float = 1e-3) -> FixedPoints:
        """Keep one representative per group of points closer than ``tol``.

        Rule: points are grouped by their input ``x*`` (equal rows); within a group,
        candidates are visited from the lowest speed upwards and each one not yet
        covered keeps every point within Euclidean distance ``tol`` of it. So each kept
        point is the best (lowest-q) of its cluster, and kept points are pairwise at
        least ``tol`` apart. A KD-tree makes this ``O(K log K)`` for well-separated sets.
        """
        _checks.check_positive("tol", tol)
        speeds = np.nan_to_num(np.asarray(self.speeds, dtype=np.float64), nan=np.inf)
        leader = _cluster(np.asarray(self.points), np.asarray(self.inputs), tol, speeds)
        return self.select(np.unique(leader))

    def drop_outliers(self, factor: float = 10.0) -> FixedPoints:
        """Drop isolated stray points, never a certified isolated root.

        Rule, per input ``x*``: duplicates (closer than 1e-6) count once; a point is an
        outlier if the distance to its nearest distinct neighbour exceeds ``factor``
        times the median nearest-neighbour distance of the group. Points with
        ``Status.CONVERGED`` (isolated roots, e.g. the origin inside a ring attractor)
        are kept whatever their distance. Groups of fewer than 3 distinct points are
        kept whole.
        """
        _checks.check_positive("factor", factor)
        points = np.asarray(self.points, dtype=np.float64)
        inputs = np.asarray(self.inputs)
        leader = _cluster(points, inputs, 1e-6)
        keep = np.ones(len(self), dtype=bool)
        for rows in _input_groups(inputs):
            reps = np.unique(leader[rows])
            if reps.size < 3:
                continue
            nn = nearest_neighbour_distances(points[reps])
            outlier = dict(zip(reps.tolist(), nn > factor * np.median(nn), strict=True))
            keep[rows] = [not outlier[int(leader[i])] for i in rows]
        if self.status is not None:
            keep |= np.asarray(self.status) == Status.CONVERGED
        return self.select(keep)


jax.tree_util.register_pytree_node(
    FixedPoints,
    lambda fp: (
        tuple(getattr(fp, f.name) for f in dataclasses.fields(fp) if f.name != "stats_items"),
        fp.stats_items,
    ),
    lambda stats, children: FixedPoints(*children, stats_items=stats),
)


def _input_groups(inputs: np.ndarray) -> list[np.ndarray]:
    """Row indices of each distinct input row, ``(K, M) -> [indices]``."""
    _, inverse = np.unique(np.asarray(inputs), axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    return [np.flatnonzero(inverse == g) for g in range(int(inverse.max(initial=-1)) + 1)]


def _cluster(
    points: np.ndarray, inputs: np.ndarray, radius: float, order_key: np.ndarray | None = None
) -> np.ndarray:
    """Greedy clusters of radius ``radius`` per input; ``(K,)`` index of each row's leader.

    Rows are visited in ``order_key`` order (default: index order); an unassigned row
    becomes a leader and claims every unassigned row within ``radius`` of it.
    """
    points = np.asarray(points, dtype=np.float64)
    leader = np.full(points.shape[0], -1, dtype=np.int64)
    for rows in _input_groups(inputs):
        tree = cKDTree(points[rows])
        order = rows if order_key is None else rows[np.argsort(order_key[rows], kind="stable")]
        for i in order:
            if leader[i] >= 0:
                continue
            near = rows[tree.query_ball_point(points[i], radius)]
            free = near[leader[near] < 0]
            leader[free] = i
            leader[i] = i
    return leader


def nearest_neighbour_distances(points: np.ndarray) -> np.ndarray:
    """Euclidean distance from each row of ``points (K, S)`` to its nearest other row."""
    points = np.asarray(points, dtype=np.float64)
    if points.shape[0] < 2:
        return np.full(points.shape[0], np.inf)
    dist, _ = cKDTree(points).query(points, k=2)
    return dist[:, 1]


def speed(cell: Cell, params: Any, state: Array, x: Array) -> Array:
    """``q(h) = ½ ‖F(h, x) − h‖²`` for one state ``(S,)`` and input ``(M,)``; a scalar."""
    r = cell(params, state, x) - state
    return 0.5 * jnp.sum(r * r)


# --- compilation cache keys -------------------------------------------------------


def _fingerprint(obj: Any, seen: frozenset = frozenset()) -> Any:
    """A hashable value equal for optimisers built the same way (e.g. two ``adam(1e-3)``).

    Functions are described by their code, closure contents and defaults, recursively;
    containers by their items; numbers and strings by value; arrays by their bytes. Any
    other object falls back to its identity (so it still compiles correctly, just once
    per object).
    """
    if id(obj) in seen:
        return ("cycle",)
    seen = seen | {id(obj)}
    if obj is None or isinstance(obj, (bool, int, float, complex, str, bytes)):
        return (type(obj).__name__, obj)
    if isinstance(obj, (np.ndarray, np.generic, jax.Array)) and not _checks.is_traced(obj):
        arr = np.asarray(obj)
        return ("array", arr.shape, str(arr.dtype), arr.tobytes())
    if isinstance(obj, functools.partial):
        return ("partial", _fingerprint(obj.func, seen), _fingerprint(obj.args, seen),
                _fingerprint(obj.keywords, seen))  # fmt: skip
    if isinstance(obj, types.FunctionType):
        cells = tuple(_fingerprint(c.cell_contents, seen) for c in obj.__closure__ or ())
        return ("fn", obj.__code__, cells, _fingerprint(obj.__defaults__, seen),
                _fingerprint(obj.__kwdefaults__, seen))  # fmt: skip
    if isinstance(obj, (tuple, list)):
        return (type(obj).__name__, tuple(_fingerprint(o, seen) for o in obj))
    if isinstance(obj, dict):
        return ("dict", tuple((repr(k), _fingerprint(v, seen)) for k, v in obj.items()))
    if isinstance(obj, (types.BuiltinFunctionType, type, types.ModuleType)):
        return ("named", getattr(obj, "__module__", None), getattr(obj, "__qualname__", obj))
    return ("id", id(obj))


class _Fingerprinted:
    """An optax transformation that hashes and compares by how it was built."""

    def __init__(self, value: optax.GradientTransformation):
        self.value = value
        self.key = _fingerprint(value)

    def __hash__(self) -> int:
        return hash(self.key)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Fingerprinted) and self.key == other.key


@functools.lru_cache(maxsize=8)
def _mesh(devices: int) -> Mesh:
    """A 1-D mesh named ``k`` over the first ``devices`` local devices."""
    return Mesh(np.asarray(jax.local_devices()[:devices]), ("k",))


@functools.lru_cache(maxsize=64)
def _compiled(cell: Cell, static: _search.Static, num_devices: int):
    """The jitted search; sharded over ``num_devices`` local devices along ``K``."""
    fn = functools.partial(_search.search, cell, st=static)
    if num_devices == 1:
        return jax.jit(fn)
    k = P("k")
    sharded = jax.shard_map(
        fn,
        mesh=_mesh(num_devices),
        in_specs=(P(), k, k, k, k, P(), P(), P()),
        out_specs=k,
        check_vma=False,
    )
    return jax.jit(sharded)


# --- running the search in chunks and shards ----------------------------------------


def _pad_rows(a: Array, rows: int) -> Array:
    """Pad ``a`` along axis 0 to ``rows`` by repeating its last row."""
    extra = rows - a.shape[0]
    return a if extra == 0 else jnp.concatenate([a, jnp.repeat(a[-1:], extra, axis=0)])


def _run(cell, params, inputs, h0, bounds, roots, dyn, static, batch_size, verbose):
    """``_search.search`` over ``h0 (K, S)`` in chunks of ``batch_size``, each sharded."""
    lower, upper = bounds
    k = h0.shape[0]
    traced = any(_checks.is_traced(a) for a in jax.tree_util.tree_leaves((params, inputs, h0)))
    roots, roots_mask = roots
    if traced:  # inside the user's jit/vmap: one call, no host-side chunking
        return _search.search(
            cell, params, inputs, h0, lower, upper, roots, roots_mask, dyn, static
        )
    devices = jax.local_device_count()
    chunk = k if batch_size is None else min(batch_size, k)
    chunk = -(-chunk // devices) * devices
    fn = _compiled(cell, static, devices)
    outs = []
    for start in range(0, k, chunk):
        stop = min(start + chunk, k)
        args = [_pad_rows(a[start:stop], chunk) for a in (inputs, h0, lower, upper)]
        if devices > 1:
            sharding = NamedSharding(_mesh(devices), P("k"))
            args = [jax.device_put(a, sharding) for a in args]
        out = fn(params, *args, roots, roots_mask, dyn)
        outs.append(jax.tree_util.tree_map(lambda a, n=stop - start: a[:n], out))
        if verbose and k > chunk:
            print(f"[rnndyn] fixed points: {stop}/{k} candidates searched", file=sys.stderr,
                  flush=True)  # fmt: skip
    if len(outs) == 1:
        return outs[0]
    return jax.tree_util.tree_map(lambda *a: jnp.concatenate(a), *outs)


# --- float64 certificates -----------------------------------------------------------


def _to64(tree: Any) -> Any:
    def cast(a):
        a = np.asarray(a)
        return jnp.asarray(a, jnp.float64) if a.dtype.kind == "f" else jnp.asarray(a)

    return jax.tree_util.tree_map(cast, tree)


@functools.lru_cache(maxsize=32)
def _certify_fns(cell: Cell):
    def residual(params, h, x):
        return cell(params, h, x) - h

    def rep(params, h, x):
        a = jax.jacfwd(residual, argnums=1)(params, h, x)
        u, sv, vt = jnp.linalg.svd(a)
        r = residual(params, h, x)
        cut = sv > 1e-12 * sv[0]
        delta = -vt.T @ (jnp.where(cut, 1.0 / jnp.where(cut, sv, 1.0), 0.0) * (u.T @ r))
        # a real root's Newton step lands closer to it; an artefact's does not
        after = residual(params, h + delta, x)
        return sv[-1], jnp.linalg.norm(delta), 0.5 * jnp.sum(after * after)

    def q(params, h, x):
        r = residual(params, h, x)
        return 0.5 * jnp.sum(r * r)

    return jax.jit(jax.vmap(q, (None, 0, 0))), jax.jit(jax.vmap(rep, (None, 0, 0)))


def _certify(cell, params, out, inputs, bounds, tol, distance, continuum_tol, batch):
    """Float64 re-check of the candidates the search calls converged (host side).

    Returns the final statuses and ``certificate``, ``correction``, ``sigma_min`` arrays.
    """
    status = np.asarray(out.status).copy()
    k = status.shape[0]
    cert, corr, smin = (np.full(k, np.nan) for _ in range(3))
    idx = np.flatnonzero(status == Status.CONVERGED)
    if idx.size == 0:
        return status, cert, corr, smin
    points = np.asarray(out.points, dtype=np.float64)[idx]
    xs = np.asarray(inputs, dtype=np.float64)[idx]
    # one Jacobian and SVD per cluster of coinciding candidates (radius 1e-6)
    leader = _cluster(points, xs, 1e-6)
    reps = np.unique(leader)
    where = {int(r): i for i, r in enumerate(reps)}
    q_fn, rep_fn = _certify_fns(cell)
    with jax.enable_x64(True):
        p64 = _to64(params)
        q64 = _batched(lambda h, x: q_fn(p64, h, x), points, xs, batch)
        s_rep, d_rep, q_next = _batched(
            lambda h, x: rep_fn(p64, h, x), points[reps], xs[reps], batch
        )
    member = np.array([where[int(r)] for r in leader])
    shift = np.linalg.norm(points - points[reps][member], axis=1)
    cert[idx] = q64
    corr[idx] = d_rep[member] + shift
    smin[idx] = s_rep[member]
    lower, upper = (np.asarray(b, dtype=np.float64)[idx] for b in bounds)
    on_face = np.any((points <= lower) | (points >= upper), axis=1)
    newton_ok = (corr[idx] < distance) | (q_next[member] < q64[reps][member])
    ok = (q64 < tol) & newton_ok
    status[idx] = np.where(
        ok,
        np.where(smin[idx] < continuum_tol, Status.CONTINUUM, Status.CONVERGED),
        np.where(on_face, Status.OUTSIDE, Status.UNCERTIFIED),
    )
    return status, cert, corr, smin


def _batched(fn, h: np.ndarray, x: np.ndarray, batch: int | None):
    """Apply a vmapped ``fn(h, x)`` in chunks of ``batch`` rows; numpy outputs."""
    size = h.shape[0] if batch is None else batch
    parts = [fn(h[i : i + size], x[i : i + size]) for i in range(0, h.shape[0], size)]
    return jax.tree_util.tree_map(lambda *a: np.concatenate([np.asarray(b) for b in a]), *parts)


# --- the entry point ------------------------------------------------------------------


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
    max_steps: int | None = None,
    polish_steps: int = 50,
    polish_threshold: float = 1e-3,
    deflation_rounds: int = 1,
    distinct_tol: float = 1e-3,
    continuum_tol: float = 1e-3,
    certify: bool = True,
    batch_size: int | None = None,
    newton_batch: int | None = None,
    verbose: bool = False,
    log_every: int = 500,
) -> FixedPoints:
    """Find fixed points ``h* = F(h*, x*)`` of ``cell`` from a batch of initial states.

    Every candidate runs on its own inside one compiled loop: first-order steps
    (``optimizer``, Adam by default) on ``q(h) = ½ ‖F(h, x*) − h‖²`` until ``q`` is below
    ``polish_threshold``, its progress stalls, or it has taken ``max_steps``; then damped
    Newton / Levenberg–Marquardt steps until it is a root at the float floor, stalls (a
    slow point) or has taken ``polish_steps``. Candidates stay inside
    ``cell.state_bounds()``. Then (outside ``jax.jit``) roots are certified in float64
    and ``deflation_rounds`` rounds of deflated searches look for roots not found yet.
    See ``docs/fixed_points.md``.

    Args:
      cell: an rnndyn cell (``rnndyn.cells.GRU(64)``, ``from_flax(...)``, ...).
      params: the cell's parameters (a pytree).
      inputs: the constant input ``x*``: ``(M,)`` for all candidates or ``(K, M)``, one
        per candidate.
      initial_states: ``(K, S)`` starting states, e.g. from ``sample_states`` on the
        network's own trajectories; projected into the cell's box. If ``None``,
        ``num_initial`` states are drawn uniformly from ``[-1, 1]^S`` with ``key``.
      key: PRNG key, needed when ``initial_states`` is ``None`` or ``noise_scale > 0``.
      num_initial: number of random initial states when ``initial_states`` is ``None``
        (ignored if ``inputs`` is ``(K, M)``, which fixes ``K``).
      noise_scale: standard deviation of Gaussian noise added to the initial states.
      optimizer: any ``optax.GradientTransformation``, applied per candidate; default
        ``optax.adam(learning_rate)``. Optimisers built the same way (same function,
        same hyperparameters) share one compilation.
      learning_rate: step size of the default Adam (traced: no recompilation).
      tol: a root has ``q < tol`` (traced).
      max_steps: cap on first-order steps per candidate (traced). Default 1,000 with the
        second-order phase, 10,000 without (``polish_steps=0``).
      polish_steps: cap on second-order steps per candidate (traced); 0 runs the
        first-order optimiser alone (then nothing is polished, and slow points along a
        manifold survive as points with ``q`` just under ``tol``).
      polish_threshold: ``q`` below which a candidate switches to second-order steps.
      deflation_rounds: rounds of deflated re-searches (0 disables; rounds stop early
        when one finds nothing new). Each reruns the candidates that ended at an
        already-found isolated root or at no root, with every isolated root found so far
        deflated; as many as needed start at ``root ± ε v`` along each unstable
        eigenvector ``v`` of each found root, the others at their first start.
      distinct_tol: roots closer than this are the same root (deflation bookkeeping;
        also the largest float64 Newton correction a certified root may have).
      continuum_tol: a root whose ``J − I`` has smallest singular value below this is
        reported as ``Status.CONTINUUM`` (on a line or plane of fixed points, time
        constant ≳ 1/continuum_tol steps) rather than as an isolated root.
      certify: re-check roots in float64 on the host (needs concrete arrays).
      batch_size: search at most this many candidates at once (bounded memory; the
        results equal an unchunked search). Default: all at once.
      newton_batch: candidates taking a second-order step together (each holds an
        ``S × S`` Jacobian). Default: ``K/8``, at least 16, at most what fits in ~256 MB.
      verbose: print progress to stderr every ``log_every`` iterations.
      log_every: iterations between progress lines.

    Returns:
      ``FixedPoints``: ``points (K, S)``, ``speeds (K,)``, ``converged (K,)``,
      ``status (K,)``, certificates, ``steps (K,)``, ``inputs (K, M)``,
      ``initial_states (K, S)``. Use ``.keep_converged().merge_duplicates(...)``.

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
    if noise_scale > 0:
        if key is None:
            raise ValueError("key is required when noise_scale > 0")
        h0 = h0 + noise_scale * jax.random.normal(key, h0.shape, dtype)
    h0 = jnp.clip(h0, *bounds)

    static = _search.Static(
        optimizer=None if optimizer is None else _Fingerprinted(optimizer),
        newton_batch=_newton_batch(newton_batch, k if batch_size is None else batch_size, s),
        second_order=polish_steps > 0,
        verbose=bool(verbose),
        log_every=int(log_every),
    )
    dyn = _search.Dynamic(
        *(jnp.asarray(v, dtype) for v in (tol, polish_threshold)),
        *(jnp.asarray(v, jnp.int32) for v in (max_steps, polish_steps)),
        jnp.asarray(learning_rate, dtype),
    )
    run = functools.partial(_run, cell, params, dyn=dyn, static=static,
                            batch_size=batch_size, verbose=verbose)  # fmt: skip
    no_roots = (jnp.zeros((0, s), dtype), jnp.zeros((0,), bool))
    out = run(inputs, h0, bounds, no_roots)
    if any(_checks.is_traced(a) for a in jax.tree_util.tree_leaves(out)):
        return _result(out, inputs, h0, None, ())
    cert = (np.asarray(out.status), *(np.full(k, np.nan) for _ in range(3)))
    checks = dict(tol=tol, distance=distinct_tol, continuum_tol=continuum_tol, batch=batch_size)
    if certify:
        cert = _certify(cell, params, out, inputs, bounds, **checks)
    stats = [("distinct_roots_round_0", _count_distinct(out.points, inputs, cert[0], distinct_tol))]
    for round_ in range(1, deflation_rounds + 1 if static.second_order else 1):
        out, cert, found = _deflate(cell, params, run, out, cert, inputs, h0, bounds,
                                    distinct_tol, checks if certify else None)  # fmt: skip
        stats.append((f"new_roots_round_{round_}", found))
        if found == 0:
            break
    stats.append(("steps_total", int(np.sum(np.asarray(out.adam_steps + out.newton_steps)))))
    slow = np.asarray(out.status) == Status.SLOW_POINT
    first_order = np.asarray(out.adam_steps)
    stats.append(("max_first_order_steps_slow", int(first_order[slow].max()) if slow.any() else 0))
    result = _result(out, inputs, h0, cert, tuple(stats))
    if verbose:
        counts = ", ".join(f"{n.lower()} {c}" for n, c in result.counts().items())
        print(f"[rnndyn] fixed points: {result.num_converged}/{k} converged (q < {tol:g}; "
              f"{counts})", file=sys.stderr, flush=True)  # fmt: skip
    return result


def _deflate(cell, params, run, out, cert, inputs, h0, bounds, distinct_tol, checks):
    """One deflation round: rerun non-representative candidates with known roots deflated.

    Returns the updated outcome and certificates, and the number of new distinct roots.
    """
    status = cert[0]
    points = np.asarray(out.points)
    isolated = np.flatnonzero(status == Status.CONVERGED)
    if isolated.size == 0:
        return out, cert, 0
    leader = _cluster(points[isolated], np.asarray(inputs)[isolated], distinct_tol)
    keep = np.zeros(len(status), dtype=bool)
    keep[isolated[np.unique(leader)]] = True
    keep |= status == Status.CONTINUUM
    redo = np.flatnonzero(~keep)
    if redo.size == 0:
        return out, cert, 0
    known = points[isolated[np.unique(leader)]]
    rows = 1 << max(0, int(known.shape[0] - 1).bit_length())  # pad: fewer recompiles
    roots = np.zeros((rows, points.shape[1]), points.dtype)
    roots[: known.shape[0]] = known
    mask = np.arange(rows) < known.shape[0]
    sub_bounds = tuple(b[redo] for b in bounds)
    starts = _reseed(cell, params, known, np.asarray(inputs)[isolated[np.unique(leader)]],
                     np.asarray(h0)[redo], np.asarray(inputs)[redo])  # fmt: skip
    starts = jnp.clip(jnp.asarray(starts, h0.dtype), *sub_bounds)
    # rerun at the first round's size (padding rows repeat the last): no recompilation
    pad = functools.partial(_pad_rows, rows=len(status))
    new = run(pad(inputs[redo]), pad(starts), tuple(pad(b) for b in sub_bounds),
              (jnp.asarray(roots), jnp.asarray(mask)))  # fmt: skip
    new = jax.tree_util.tree_map(lambda a: a[: redo.size], new)
    new_cert = (np.asarray(new.status), *(np.full(redo.size, np.nan) for _ in range(3)))
    if checks is not None:
        new_cert = _certify(cell, params, new, inputs[redo], sub_bounds, **checks)
    # accept a rerun's result only where it is a root not within distinct_tol of a known one
    is_root = np.isin(new_cert[0], _ROOTS)
    known_inputs = np.asarray(inputs)[isolated[np.unique(leader)]]
    far = _far_from(np.asarray(new.points), np.asarray(inputs)[redo], known, known_inputs,
                    distinct_tol)  # fmt: skip
    take = is_root & far
    if not np.any(take):
        return out, cert, 0
    rows_taken = redo[take]
    out = jax.tree_util.tree_map(
        lambda a, b: jnp.asarray(a).at[rows_taken].set(jnp.asarray(b)[take]), out, new
    )
    cert = tuple(_put(c, rows_taken, nc[take]) for c, nc in zip(cert, new_cert, strict=True))
    found = _count_distinct(np.asarray(new.points)[take], np.asarray(inputs)[rows_taken],
                            new_cert[0][take], distinct_tol)  # fmt: skip
    return out, cert, found


_RESEED_STEPS = (0.05, 0.25)  # seed distances from a root, times sqrt(S)


def _unstable_directions(a: np.ndarray) -> list[np.ndarray]:
    """Unit real directions spanning the eigenvectors of ``a (S, S)`` with |λ| > 1."""
    lam, vec = np.linalg.eig(a)
    out = []
    for i in np.flatnonzero(np.abs(lam) > 1.0):
        v = np.real(vec[:, i]) + np.imag(vec[:, i])  # a real vector of a conjugate pair's plane
        out.append(v / max(np.linalg.norm(v), 1e-30))
    return out


def _reseed(cell, params, roots, root_inputs, starts, inputs):
    """Starting states for a deflation round.

    Each known root is pushed along its unstable directions (± each, at a few distances):
    other roots tend to lie where the unstable manifolds of saddles lead. A seed replaces
    the start of a rerun candidate with the same input ``x*`` as its root; the other
    candidates keep their first start.
    """
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


def nearest_distances(points: np.ndarray, others: np.ndarray) -> np.ndarray:
    """Distance from each row of ``points (K, S)`` to the nearest row of ``others (R, S)``."""
    dist, _ = cKDTree(np.asarray(others, np.float64)).query(np.asarray(points, np.float64))
    return dist


def _count_distinct(points, inputs, status, distinct_tol: float) -> int:
    roots = np.isin(np.asarray(status), _ROOTS)
    if not np.any(roots):
        return 0
    leader = _cluster(np.asarray(points)[roots], np.asarray(inputs)[roots], distinct_tol)
    return int(np.unique(leader).size)


def _result(out, inputs, h0, cert, stats) -> FixedPoints:
    status = out.status if cert is None else jnp.asarray(cert[0])
    converged = (status == Status.CONVERGED) | (status == Status.CONTINUUM)
    extra = (None, None, None) if cert is None else cert[1:]
    return FixedPoints(
        points=out.points,
        speeds=out.speeds,
        converged=converged,
        steps=out.adam_steps + out.newton_steps,
        inputs=inputs,
        initial_states=h0,
        status=status,
        certificate=extra[0],
        correction=extra[1],
        sigma_min=extra[2],
        stats_items=stats,
    )


def _check_settings(args: dict) -> None:
    for name in ("tol", "polish_threshold", "learning_rate", "distinct_tol", "continuum_tol"):
        _checks.check_positive(name, args[name])
    _checks.check_positive("noise_scale", args["noise_scale"], allow_zero=True)
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
