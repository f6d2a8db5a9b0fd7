"""Benchmark the batched fixed-point search on random GRUs.

Prints, for each hidden size N: time per optimiser step, total time to converge
(optimiser + Newton polish), converged points per second (q < 1e-10), and the worst
speed q among converged points. On a CPU, N = 1024 uses an eighth of the points. The
GRU's candidate weights are random and symmetric with gain 2, which gives it many fixed
points, mostly saddles (the "distinct" column counts those found).

    python benchmarks/fixed_points.py                 # N = 64, 256, 1024
    python benchmarks/fixed_points.py --sizes 256 --points 1024
    python benchmarks/fixed_points.py --sizes 1024 --max-steps 6000 --learning-rate 3e-2
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np

import rnndyn


def random_gru(n: int, input_size: int, gain: float, key: jax.Array):
    """GRU with random symmetric candidate weights ``W_hn`` of the given gain."""
    cell = rnndyn.GRU(n)
    k_init, k_w = jax.random.split(key)
    params = cell.init(k_init, input_size)
    a = jax.random.normal(k_w, (n, n))
    params["W_h"] = params["W_h"].at[:, 2 * n :].set(gain * (a + a.T) / jnp.sqrt(2.0 * n))
    return cell, params


def run(n: int, k: int, max_steps: int, gain: float, seed: int, lr: float) -> dict:
    key = jax.random.key(seed)
    cell, params = random_gru(n, 8, gain, key)
    h0 = jax.random.uniform(jax.random.fold_in(key, 1), (k, n), minval=-1.0, maxval=1.0)
    x = jnp.zeros(8)
    kwargs = dict(tol=1e-10, max_steps=max_steps, learning_rate=lr)

    # compile once per configuration, then time the runs themselves
    for polish in (0, 10):
        rnndyn.find_fixed_points(cell, params, x, h0[:2], max_steps=1, polish_steps=polish)

    t = time.perf_counter()
    adam = rnndyn.find_fixed_points(cell, params, x, h0, polish_steps=0, **kwargs)
    adam.points.block_until_ready()
    t_adam = time.perf_counter() - t
    total_steps = int(np.max(adam.steps))

    t = time.perf_counter()
    fps = rnndyn.find_fixed_points(cell, params, x, h0, polish_steps=10, **kwargs)
    fps.points.block_until_ready()
    t_total = time.perf_counter() - t

    conv = fps.keep_converged()
    q = np.asarray(conv.speeds)
    return {
        "N": n,
        "K": k,
        "steps": total_steps,
        "ms/step": 1e3 * t_adam / max(total_steps, 1),
        "total s": t_total,
        "converged": len(conv),
        "points/s": len(conv) / t_total,
        "max q": float(q.max()) if q.size else float("nan"),
        "distinct": len(conv.merge_duplicates(1e-3)),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[64, 256, 1024])
    ap.add_argument("--points", type=int, default=1024, help="initial states per search")
    ap.add_argument("--max-steps", type=int, default=2000)
    ap.add_argument("--gain", type=float, default=2.0)
    ap.add_argument("--learning-rate", type=float, default=1e-2, help="Adam step size")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    print(f"backend: {jax.default_backend()}  devices: {jax.devices()}")
    header = ("N", "K", "steps", "ms/step", "total s", "converged", "points/s", "max q", "distinct")
    print(" ".join(f"{h:>10s}" for h in header))
    for n in args.sizes:
        # the Newton polish costs O(N^3) per point: fewer points at N = 1024 on a CPU
        k = args.points if n <= 256 or jax.default_backend() != "cpu" else args.points // 8
        r = run(n, k, args.max_steps, args.gain, args.seed, args.learning_rate)
        print(
            f"{r['N']:>10d} {r['K']:>10d} {r['steps']:>10d} {r['ms/step']:>10.2f} "
            f"{r['total s']:>10.2f} {r['converged']:>10d} {r['points/s']:>10.1f} "
            f"{r['max q']:>10.2e} {r['distinct']:>10d}",
            flush=True,
        )


if __name__ == "__main__":
    main()
