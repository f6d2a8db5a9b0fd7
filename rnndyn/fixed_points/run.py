"""Compiling and running the search: a cache of compiled searches, chunks of at most
``batch_size`` candidates, and sharding of each chunk over the local devices."""

from __future__ import annotations

import dataclasses
import functools
import sys
import types
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from rnndyn import _checks
from rnndyn.cells import Cell
from rnndyn.fixed_points import search

__all__ = ["Fingerprinted", "pad_rows", "run"]


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


class Fingerprinted:
    """An optax transformation that hashes and compares by how it was built."""

    def __init__(self, value: optax.GradientTransformation):
        self.value = value
        self.key = _fingerprint(value)

    def __hash__(self) -> int:
        return hash(self.key)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Fingerprinted) and self.key == other.key


# XLA:CPU runs the programs of all local devices on one intra-op thread pool of
# max(cores, devices) threads (at most 256). jaxlib's batched LAPACK kernels (0.10.2; here
# the LU and triangular solves of the second-order phase) split a large enough batch into
# tasks on that pool and park the pool thread that called them until the tasks are done.
# With one program per device all parked in a solve at once, no thread is left to run the
# tasks and the search hangs at 0% CPU. A program parks at most one thread (its solves run
# one after the other), so sharding over fewer devices than the pool has threads always
# leaves one free.
_CPU_POOL_CAP = 256


def num_shards() -> int:
    """How many local devices the search is sharded over (the first ones): all of them,
    except on CPU one fewer (at most 255, see above), so two CPU devices search as one."""
    devices = jax.local_devices()
    if devices[0].platform != "cpu":
        return len(devices)
    return max(1, min(len(devices), _CPU_POOL_CAP) - 1)


@functools.lru_cache(maxsize=8)
def _mesh(devices: int) -> Mesh:
    """A 1-D mesh named ``k`` over the first ``devices`` local devices."""
    return Mesh(np.asarray(jax.local_devices()[:devices]), ("k",))


@functools.lru_cache(maxsize=64)
def _compiled(cell: Cell, static: search.Static, num_devices: int):
    """The jitted ``search.begin`` and ``search.advance``; sharded over ``num_devices``
    local devices along ``K`` (the loop counter ``it`` then has one entry per device; a
    shared input row is replicated)."""
    begin = functools.partial(search.begin, cell, st=static)
    advance = functools.partial(search.advance, cell, st=static)
    if num_devices == 1:
        return jax.jit(begin), jax.jit(advance)

    def begin_shard(*args):
        state = begin(*args)
        return state._replace(it=state.it[None])

    def advance_shard(params, inputs, lower, upper, roots, roots_mask, dyn, state, until):
        state, out = advance(params, inputs, lower, upper, roots, roots_mask, dyn,
                             state._replace(it=state.it[0]), until)  # fmt: skip
        return state._replace(it=state.it[None]), out

    k, mesh = P("k"), _mesh(num_devices)
    x = P() if static.shared_input else k
    begin_sharded = jax.shard_map(
        begin_shard, mesh=mesh, in_specs=(P(), x, k, k, k, P(), P(), P()), out_specs=k,
        check_vma=False,
    )  # fmt: skip
    advance_sharded = jax.shard_map(
        advance_shard, mesh=mesh, in_specs=(P(), x, k, k, P(), P(), P(), k, P()), out_specs=k,
        check_vma=False,
    )  # fmt: skip
    return jax.jit(begin_sharded), jax.jit(advance_sharded)


#: Searches run in this process, by compiled functions and shapes (for the progress line).
_PREPARED: set = set()

#: ``until`` of a search that runs to the end in one call (the loop's own cap stops it).
_NO_STOP = np.int32(2**31 - 1)


#: A batch on one device sheds its finished rows once at most half of it is moving
#: (checked every ``_COMPACT_EVERY`` iterations), down to ``_MIN_ROWS`` rows.
_COMPACT_EVERY = 500
_MIN_ROWS = 128


def _search_chunk(fns, params, args, roots, roots_mask, dyn, verbose, log_every, compact):
    """One chunk of candidates: to the end in one call, or in pieces that stop for a
    progress line every ``log_every`` iterations (``verbose``) and a look at the finished
    rows every ``_COMPACT_EVERY`` (``compact``); the loop stops and resumes between
    iterations, so the pieces take the same steps.

    ``compact``: the search of a line attractor's slow points runs for thousands of
    iterations after most candidates are done (a GRU-128: a third done by iteration
    1,000, the last near 8,000), and a finished row costs as much as a moving one. So
    whenever at most half of the batch is moving, the moving rows continue in a batch of
    half the size (a new shape, compiled once per size). Each candidate's path depends
    on its own state only; XLA's row results can differ in the last bits with the number
    of rows, as between chunk sizes (``batch_size``)."""
    begin, advance = fns
    inputs, h0, lower, upper = args
    k = h0.shape[0]
    state = begin(params, inputs, h0, lower, upper, roots, roots_mask, dyn)
    rows, real = np.arange(k), k  # the chunk row of each batch row; the first `real` are real
    phase_all, q_all = np.zeros(k, np.int32), np.full(k, np.inf)
    shed: list = []  # (chunk rows, their final outcome) of rows that left the batch
    log_at = 1 if verbose else int(_NO_STOP)  # the first line after one iteration
    until = min(log_at, _COMPACT_EVERY if compact else int(_NO_STOP))
    while True:
        state, out = advance(params, inputs, lower, upper, roots, roots_mask, dyn, state,
                             np.int32(until))  # fmt: skip
        it = int(np.max(np.asarray(state.it)))
        if it < until:  # terminated before the stop
            break
        phase = np.asarray(state.phase)[:real]
        phase_all[rows[:real]] = phase
        if it == log_at:
            q_all[rows[:real]] = np.asarray(state.q)[:real]
            search.report(it - 1, phase_all, q_all, k)
            log_at = min(log_at + log_every, int(_NO_STOP))
        moving = np.flatnonzero(phase != search.DONE)
        if moving.size == 0:
            break
        size = len(rows)
        while compact and size // 2 >= _MIN_ROWS and moving.size <= size // 2:
            size //= 2
        if size < len(rows):
            done = np.flatnonzero(phase == search.DONE)
            shed.append((rows[done], _host_rows(out, done)))
            pick = np.concatenate([moving, np.full(size - moving.size, done[0])])
            state = _take_rows(state, pick)
            inputs = inputs if inputs.shape[0] == 1 else inputs[pick]  # shared: one row
            lower, upper, rows, real = lower[pick], upper[pick], rows[pick], moving.size
        until = min(log_at, -(-(it + 1) // _COMPACT_EVERY) * _COMPACT_EVERY if compact
                    else int(_NO_STOP))  # fmt: skip
    if not shed:
        return out
    shed.append((rows[:real], _host_rows(out, np.arange(real))))
    return _assemble(shed, k)


def _take_rows(state: search.State, pick: np.ndarray) -> search.State:
    """The loop state of rows ``pick`` (every field but the iteration counter)."""
    fields = {f: jax.tree_util.tree_map(lambda a: a[pick], getattr(state, f))
              for f in state._fields if f != "it"}  # fmt: skip
    return state._replace(**fields)


def _host_rows(out: search.Outcome, rows: np.ndarray) -> search.Outcome:
    return search.Outcome(*(np.asarray(a)[rows] for a in out))


def _assemble(parts: list, k: int) -> search.Outcome:
    """The outcome of ``k`` rows from ``(rows, outcome)`` parts that cover each once."""
    first = parts[0][1]
    full = [np.empty((k,) + a.shape[1:], a.dtype) for a in first]
    for rows, out in parts:
        for dst, a in zip(full, out, strict=True):
            dst[rows] = a
    return search.Outcome(*(jnp.asarray(a) for a in full))


def pad_rows(a: jax.Array, rows: int) -> jax.Array:
    """Pad ``a`` along axis 0 to ``rows`` by repeating its last row."""
    extra = rows - a.shape[0]
    return a if extra == 0 else jnp.concatenate([a, jnp.repeat(a[-1:], extra, axis=0)])


def run(cell, params, inputs, h0, bounds, roots, dyn, static, batch_size, verbose):
    """``search.search`` over ``h0 (K, S)`` in chunks of ``batch_size``, each sharded over
    the local devices; inside the caller's ``jit``/``vmap``, one call. Returns
    ``search.Outcome``."""
    lower, upper = bounds
    k = h0.shape[0]
    traced = any(_checks.is_traced(a) for a in jax.tree_util.tree_leaves((params, inputs, h0)))
    roots, roots_mask = roots
    if traced:  # inside the user's jit/vmap: one call, no host-side chunking
        return search.search(cell, params, inputs, h0, lower, upper, roots, roots_mask, dyn, static)
    devices = num_shards()
    chunk = k if batch_size is None else min(batch_size, k)
    chunk = -(-chunk // devices) * devices
    shared = bool(np.all(np.asarray(inputs) == np.asarray(inputs[:1])))
    # Progress is reported between chunks of iterations, not from inside the compiled
    # loop: the program has no host callback, and verbose and quiet searches share it.
    compiled = dataclasses.replace(static, verbose=False, log_every=1, shared_input=shared)
    fns = _compiled(cell, compiled, devices)
    shapes = (fns, chunk, h0.shape[1:], inputs.shape[1:], str(h0.dtype))
    if verbose and shapes not in _PREPARED:
        print(f"[rnndyn] fixed points: compiling the search for {chunk} candidates (or loading "
              "it from the compilation cache)", file=sys.stderr, flush=True)  # fmt: skip
    _PREPARED.add(shapes)
    outs = []
    for start in range(0, k, chunk):
        stop = min(start + chunk, k)
        args = [pad_rows(a[start:stop], chunk) for a in (inputs, h0, lower, upper)]
        if shared:
            args[0] = inputs[:1]
        if devices > 1:
            rows, whole = NamedSharding(_mesh(devices), P("k")), NamedSharding(_mesh(devices), P())
            args = [jax.device_put(a, whole if shared and i == 0 else rows)
                    for i, a in enumerate(args)]  # fmt: skip
        out = _search_chunk(
            fns,
            params,
            args,
            roots,
            roots_mask,
            dyn,
            verbose,
            static.log_every,
            compact=devices == 1,
        )
        outs.append(jax.tree_util.tree_map(lambda a, n=stop - start: a[:n], out))
        if verbose and k > chunk:
            print(f"[rnndyn] fixed points: {stop}/{k} candidates searched", file=sys.stderr,
                  flush=True)  # fmt: skip
    if len(outs) == 1:
        return outs[0]
    return jax.tree_util.tree_map(lambda *a: jnp.concatenate(a), *outs)
