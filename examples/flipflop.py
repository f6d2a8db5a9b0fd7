"""The 3-bit flip-flop of Sussillo & Barak (2013): a known answer outside text.

    python examples/flipflop.py                  # train, find the fixed points, print them
    python examples/flipflop.py --out runs/ff    # + figures and fixed_points.json

Three input channels receive rare +1 / −1 pulses; each of three outputs must hold the
sign of its channel's last pulse. A vanilla tanh RNN that solves this stores 2³ = 8
memories, so with no input it has 8 stable fixed points (the corners of a cube in its
state space) and unstable saddles between them (on the edges, faces and centre).
``rnndyn.find_fixed_points`` finds them from states the trained network visits; each
candidate is certified (``Status.ROOT``: a root in float64 with ``J − I`` well
conditioned) and classified by its eigenvalues: stable when every ``|λ| < 1``, a saddle
with k unstable directions otherwise. The readout at each stable point gives its
memory; all 8 sign patterns should appear once.
"""

import json
import os

import _common as C
import jax
import jax.numpy as jnp
import numpy as np
import optax

import rnndyn
from rnndyn import plots

BITS = 3


def flipflop_batch(key, batch: int, length: int, p: float = 0.05):
    """Inputs ``(B, T, 3)`` of ±1 pulses (probability ``p`` per step and channel),
    targets ``(B, T, 3)`` = sign of the last pulse (0 before the first), mask of the
    steps with a defined target."""
    k_on, k_sign = jax.random.split(key)
    on = jax.random.bernoulli(k_on, p, (batch, length, BITS))
    sign = jnp.where(jax.random.bernoulli(k_sign, 0.5, (batch, length, BITS)), 1.0, -1.0)
    u = on * sign

    def hold(y, u_t):
        y = jnp.where(u_t != 0, u_t, y)
        return y, y

    _, y = jax.lax.scan(hold, jnp.zeros((batch, BITS)), jnp.swapaxes(u, 0, 1))
    y = jnp.swapaxes(y, 0, 1)
    return u, y, y != 0


def run(cell, params, u):
    """States ``(B, T, N)`` and outputs ``(B, T, 3)`` from a zero initial state."""
    step = jax.vmap(lambda h, x: cell(params["cell"], h, x))

    def body(h, u_t):
        h = step(h, u_t)
        return h, h

    h0 = jnp.zeros((u.shape[0], cell.state_size))
    _, hs = jax.lax.scan(body, h0, jnp.swapaxes(u, 0, 1))
    hs = jnp.swapaxes(hs, 0, 1)
    return hs, hs @ params["W_out"] + params["b_out"]


def train(cell, key, steps: int, batch: int, length: int, verbose: bool):
    k_init, k_out, k_data = jax.random.split(key, 3)
    params = {
        "cell": cell.init(k_init, BITS),
        "W_out": jax.random.normal(k_out, (cell.state_size, BITS)) / np.sqrt(cell.state_size),
        "b_out": jnp.zeros(BITS),
    }
    opt = optax.chain(optax.clip_by_global_norm(1.0), optax.adam(1e-2))
    state = opt.init(params)

    def loss_fn(p, k):
        u, y, m = flipflop_batch(k, batch, length)
        _, out = run(cell, p, u)
        return jnp.sum(m * (out - y) ** 2) / jnp.maximum(m.sum(), 1)

    @jax.jit
    def update(p, s, k):
        loss, g = jax.value_and_grad(loss_fn)(p, k)
        upd, s = opt.update(g, s, p)
        return optax.apply_updates(p, upd), s, loss

    for i in range(steps):
        params, state, loss = update(params, state, jax.random.fold_in(k_data, i))
        if verbose and (i + 1) % 500 == 0:
            print(f"step {i + 1:5d}/{steps}  loss {float(loss):.4f}", flush=True)
    return params


def main() -> None:
    ap = C.parser(__doc__.split("\n")[0], dataset=False)
    ap.add_argument("--hidden", type=int, default=None, help="units (default 24, smoke 6)")
    args = ap.parse_args()
    hidden = args.hidden or (6 if args.smoke else 24)
    steps, length, num_initial = (30, 20, 32) if args.smoke else (2500, 100, 1024)
    k_train, k_test, k_sample, k_search = jax.random.split(jax.random.key(args.seed), 4)
    cell = rnndyn.Vanilla(hidden)
    params = train(cell, k_train, steps, 64, length, not args.quiet)

    u, y, m = flipflop_batch(k_test, 256, length)
    hs, out = run(cell, params, u)
    accuracy = float(jnp.sum(m * (jnp.sign(out) == y)) / m.sum())
    print(f"trained vanilla RNN ({hidden} units): {accuracy:.3f} of held bits correct")

    h0 = rnndyn.sample_states(hs, num_initial, k_sample, noise=0.1)
    fps = rnndyn.find_fixed_points(
        cell, params["cell"], jnp.zeros(BITS), h0, key=k_search, tol=1e-12, verbose=not args.quiet
    )
    certified = fps.select(np.asarray(fps.status) == int(rnndyn.Status.ROOT))
    print(f"{len(fps)} candidates: {fps.counts()}")
    if len(certified) == 0:
        print("no certified fixed point (train longer: drop --smoke)")
        return
    found = certified.merge_duplicates(1e-3)
    eigen = rnndyn.eig(rnndyn.jacobians(cell, params["cell"], found.points, found.inputs)[0])
    modulus = np.abs(np.asarray(eigen.values))
    unstable = np.sum(modulus > 1.0, axis=1)
    stable = unstable == 0
    memories = np.sign(np.asarray(found.points) @ np.asarray(params["W_out"]) + params["b_out"])
    patterns = {tuple(int(v) for v in row) for row in memories[stable]}
    saddles = {k: int(np.sum(unstable == k)) for k in range(1, BITS + 1) if np.any(unstable == k)}
    if np.any(unstable > BITS):
        saddles[f">{BITS}"] = int(np.sum(unstable > BITS))
    print(f"{len(found)} distinct certified fixed points (Status.ROOT)")
    print(f"stable: {int(stable.sum())} (expected 8); their memories cover "
          f"{len(patterns)} of the 8 sign patterns")  # fmt: skip
    print(f"saddles by number of unstable directions: {saddles}")
    print(f"{'#':>3} {'kind':>10} {'max |λ|':>8} {'memory':>12} {'q':>9}")
    for i in np.argsort(unstable, kind="stable"):
        kind = "stable" if stable[i] else f"saddle-{unstable[i]}"
        mem = " ".join(f"{int(v):+d}" for v in memories[i]) if stable[i] else "-"
        print(f"{i:>3} {kind:>10} {modulus[i, 0]:>8.3f} {mem:>12} {float(found.speeds[i]):>9.1e}")

    if args.out:
        os.makedirs(args.out, exist_ok=True)
        pts = np.asarray(found.points)
        basis = plots.pca_basis(pts, 3)
        fig = plots.plot_fixed_points(
            pts[stable], trajectories=np.asarray(hs[:8]), basis=basis, dims=3,
            title="flip-flop: 8 stable points (black), saddles (vermillion)",
        )  # fmt: skip
        ax = fig.axes[0]
        for artist in fig.findobj(
            lambda a: getattr(a, "get_gid", lambda: None)() == "roots"
        ):
            artist.set_label("stable fixed points")
        xyz = (pts[~stable] - basis[0]) @ basis[1].T
        ax.scatter(xyz[:, 0], xyz[:, 1], xyz[:, 2], color=plots.OKABE_ITO[1], marker="^", s=24,
                   label="saddles")  # fmt: skip
        ax.legend(fontsize=7, frameon=False)
        fig.savefig(os.path.join(args.out, "flipflop_fixed_points.png"))
        plots.plot_eigenvalues(eigen.values).savefig(os.path.join(args.out, "eigenvalues.png"))
        summary = {
            "accuracy": accuracy,
            "counts": fps.counts(),
            "distinct": len(found),
            "stable": int(stable.sum()),
            "stable_memories": sorted(patterns),
            "saddles": {str(k): v for k, v in saddles.items()},
            "points": pts.tolist(),
            "unstable_directions": unstable.tolist(),
        }
        with open(os.path.join(args.out, "fixed_points.json"), "w") as f:
            json.dump(summary, f, indent=1)
        print(f"figures and fixed_points.json in {args.out}")


if __name__ == "__main__":
    main()
