"""Benchmark ``rnndyn.find_fixed_points`` against vmapped optimistix Levenberg–Marquardt.

System (the issue's): a GRU with torch-style equations (``rnndyn.GRU``), recurrent
weights ``gain · normal / sqrt(N)``, biases uniform in ``±1/sqrt(N)``, ``x* = 0``, and
``K`` starts drawn from ``N(0, 0.5²)``; an LSTM built the same way. Both tools start from
the same states and count roots at ``q = ½‖F(h) − h‖² < 1e-10``; a peer's root counts
only inside the cell's box (``|h_i| ≤ 1``: a GRU has no fixed point outside it), and
ours only when certified in float64 (``Status.ROOT`` or ``CONTINUUM``). Distinct
roots are merged at 1e-3. Both are timed after a warm-up call (compilation excluded).

Columns: ``ours s`` / ``peer s`` wall time, ``speed-up`` = peer / ours, ``roots`` and
``distinct`` per tool, ``stalled Adam`` = the most first-order steps any candidate that
ended stalled above the tolerance took (``Status.STALLED``; rnndyn 0.1 called these slow
points: the budget spent on them), ``RSS GB`` the process's peak resident memory after
the row.

    python benchmarks/fixed_points.py --quick     # N = 64, K = 256, GRU and LSTM (minutes)
    python benchmarks/fixed_points.py             # + N = 256, K = 1024 (ours only)
    python benchmarks/fixed_points.py --scale     # + K = 65,536 in chunks of 4,096 (ours only)

Needs the ``bench`` extra (``pip install -e ".[bench]"``) for the peer.
"""

from __future__ import annotations

import argparse
import platform
import resource
import time

import jax
import jax.numpy as jnp
import numpy as np

import rnndyn

TOL = 1e-10


def system(cell_name: str, n: int, k: int, gain: float, seed: int):
    """Random cell, params, ``x* (M,)`` and starts ``(K, S)``."""
    cell = {"gru": rnndyn.GRU, "lstm": rnndyn.LSTM}[cell_name](n)
    keys = jax.random.split(jax.random.key(seed), 4)
    params = cell.init(keys[0], 8)
    params["W_h"] = gain * jax.random.normal(keys[1], params["W_h"].shape) / np.sqrt(n)
    for name in ("b", "b_hn"):
        if name in params:
            shape = params[name].shape
            params[name] = jax.random.uniform(keys[2], shape, minval=-1, maxval=1) / np.sqrt(n)
    h0 = 0.5 * jax.random.normal(keys[3], (k, cell.state_size))
    return cell, params, jnp.zeros(8), h0


def distinct(points: np.ndarray, inputs: np.ndarray) -> int:
    if len(points) == 0:
        return 0
    fps = rnndyn.FixedPoints(
        points=jnp.asarray(points),
        speeds=jnp.zeros(len(points)),
        status=jnp.full(len(points), int(rnndyn.Status.ROOT), jnp.int32),
        steps=jnp.zeros(len(points), jnp.int32),
        inputs=jnp.asarray(inputs),
        initial_states=jnp.asarray(points),
    )
    return len(fps.merge_duplicates(1e-3))


def timed(fn):
    fn()  # compile
    t = time.perf_counter()
    out = fn()
    jax.block_until_ready(out)
    return out, time.perf_counter() - t


def ours(cell, params, x, h0, batch_size=None):
    def call():
        return rnndyn.find_fixed_points(cell, params, x, h0, tol=TOL, batch_size=batch_size)

    fps, seconds = timed(call)
    roots = fps.keep_roots()
    return {
        "seconds": seconds,
        "roots": len(roots),
        "distinct": distinct(np.asarray(roots.points), np.asarray(roots.inputs)),
        "stalled_adam": fps.stats["max_first_order_steps_stalled"],
    }


def peer(cell, params, x, h0):
    import optimistix as optx

    solver = optx.LevenbergMarquardt(rtol=1e-6, atol=1e-6)
    lower, upper = cell.state_bounds()

    def residual(h, _):
        return cell(params, h, x) - h

    @jax.jit
    def solve(h0):
        def one(h):
            return optx.least_squares(residual, solver, h, max_steps=256, throw=False).value

        return jax.vmap(one)(h0)

    points, seconds = timed(lambda: solve(h0))
    r = jax.vmap(lambda h: residual(h, None))(points)
    q = np.asarray(0.5 * jnp.sum(r * r, axis=-1))
    inside = np.all((np.asarray(points) >= lower) & (np.asarray(points) <= upper), axis=-1)
    ok = (q < TOL) & inside
    pts = np.asarray(points)[ok]
    return {
        "seconds": seconds,
        "roots": int(ok.sum()),
        "distinct": distinct(pts, np.zeros((len(pts), 8))),
    }


def row(cell_name, n, k, gain, seed, with_peer=True, batch_size=None):
    cell, params, x, h0 = system(cell_name, n, k, gain, seed)
    a = ours(cell, params, x, h0, batch_size)
    b = peer(cell, params, x, h0) if with_peer else None
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    cols = [cell_name, n, k, f"{a['seconds']:.2f}"]
    cols += [f"{b['seconds']:.2f}", f"{b['seconds'] / a['seconds']:.2f}"] if b else ["-", "-"]
    cols += [a["roots"], b["roots"] if b else "-", a["distinct"], b["distinct"] if b else "-"]
    cols += [a["stalled_adam"], f"{rss:.2f}"]
    print(" ".join(f"{c!s:>9}" for c in cols), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="N = 64, K = 256 only")
    ap.add_argument("--scale", action="store_true", help="add K = 65,536 (batch_size 4,096)")
    ap.add_argument("--peer-all", action="store_true", help="run the peer at N = 256 too")
    ap.add_argument("--gain", type=float, default=3.0)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = ap.parse_args()
    print(f"{platform.processor() or platform.machine()}, {jax.default_backend()}, "
          f"{jax.local_device_count()} device(s), jax {jax.__version__}")  # fmt: skip
    head = ["cell", "N", "K", "ours s", "peer s", "speed-up", "roots", "peer", "distinct",
            "peer", "stalled Adam", "RSS GB"]  # fmt: skip
    print(" ".join(f"{h:>9}" for h in head))
    sizes = [(64, 256)] if args.quick else [(64, 256), (256, 1024)]
    for n, k in sizes:
        for cell_name in ("gru", "lstm"):
            for seed in args.seeds if n == 64 else args.seeds[:1]:
                # the peer's N = 256 rows take tens of minutes on a CPU
                row(cell_name, n, k, args.gain, seed, with_peer=n == 64 or args.peer_all)
    if args.scale:
        row("gru", 64, 65536, args.gain, 0, with_peer=False, batch_size=4096)


if __name__ == "__main__":
    main()
