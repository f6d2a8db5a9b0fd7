"""Quick start: build a GRU, find its fixed points, linearise around them.

    python examples/quickstart.py            # add --quiet to silence progress

A GRU with random weights has a single fixed point; making its candidate weights
symmetric with gain 2 gives it many, most of them saddles (some |λ| > 1). The table
shows the slowest ten with their leading eigenvalue and time constant.
"""

import argparse

import jax
import jax.numpy as jnp
import numpy as np

import rnndyn


def main() -> None:
    ap = argparse.ArgumentParser(description="Find and print the fixed points of a GRU.")
    ap.add_argument("--hidden", type=int, default=64, help="number of GRU units")
    ap.add_argument("--points", type=int, default=512, help="initial states to search from")
    ap.add_argument("--seed", type=int, default=0, help="PRNG seed")
    ap.add_argument("--quiet", action="store_true", help="no progress output")
    args = ap.parse_args()

    n, m = args.hidden, 8
    key_init, key_w, key_search = jax.random.split(jax.random.key(args.seed), 3)
    cell = rnndyn.GRU(n)
    params = cell.init(key_init, input_size=m)
    a = jax.random.normal(key_w, (n, n))
    params["W_h"] = params["W_h"].at[:, 2 * n :].set(2.0 * (a + a.T) / jnp.sqrt(2.0 * n))

    fps = rnndyn.find_fixed_points(
        cell,
        params,
        jnp.zeros(m),  # x* = 0: "no input"
        key=key_search,
        num_initial=args.points,
        tol=1e-10,
        verbose=not args.quiet,
    )
    found = fps.keep_roots().merge_duplicates(1e-3).drop_outliers()
    j_rec, _ = rnndyn.jacobians(cell, params, found.points, found.inputs)
    eigen = rnndyn.eig(j_rec)
    tau = rnndyn.time_constants(eigen.values)

    print(f"{fps.describe()}; {len(found)} distinct fixed points")
    print(f"{'#':>3} {'q':>10} {'|h*|':>8} {'max |λ|':>8} {'τ1 (steps)':>11} {'stable':>7}")
    for i in np.argsort(np.asarray(found.speeds))[:10]:
        top = float(jnp.abs(eigen.values[i, 0]))
        norm = float(jnp.linalg.norm(found.points[i]))
        print(
            f"{i:>3d} {float(found.speeds[i]):>10.2e} {norm:>8.3f}"
            f" {top:>8.3f} {float(tau[i, 0]):>11.1f} {str(top < 1):>7}"
        )


if __name__ == "__main__":
    main()
