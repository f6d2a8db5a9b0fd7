"""Fixed points of a ``torch.nn.GRU``, checked by torch itself (and by FixedPointFinder).

    python examples/torch_gru_fixed_points.py              # train briefly, search, verify
    python examples/torch_gru_fixed_points.py --out runs/torch_gru   # + fixed_points.json

A ``torch.nn.GRU`` is trained for a few hundred steps on a 2-bit flip-flop (two input
channels with rare ±1 pulses; each output holds the sign of its channel's last pulse),
so that it stores a few memories as fixed points under zero input. ``rnndyn.from_torch``
turns its step into an rnndyn cell with the same equations; ``rnndyn.find_fixed_points``
searches from states the network visits (``rnndyn.sample_states``, with noise). Every
certified root (``Status.ROOT`` or ``CONTINUUM``) is then fed back through the torch
module in float64: ``q = ½‖GRU(h*, 0) − h*‖²`` computed by torch's own step must be at the
float32 floor, which checks the conversion and the search together. Expected at full
size: 4 stable points, one per memory (all four sign patterns), and saddles between
them; torch's q about 1e-14 at every root.

If the ``fixed_point_finder`` package (github.com/mattgolub/fixed-point-finder, its torch
finder) is importable, it runs on the same starts and its unique fixed points are
matched to rnndyn's; otherwise the comparison is skipped with a line saying so.
docs/fixedpointfinder.md maps its hyperparameters to rnndyn's settings.
"""

import copy
import json
import os

import _common as C
import jax
import jax.numpy as jnp
import numpy as np

import rnndyn
from rnndyn.fixed_points import nearest_distances

BITS = 2


def flipflop_batch(rng: np.random.Generator, batch: int, length: int, p: float = 0.05):
    """Inputs ``(B, T, 2)`` of ±1 pulses, targets ``(B, T, 2)`` (sign of the last pulse, 0
    before the first) and the mask ``(B, T, 2)`` of defined targets, as numpy float32."""
    on = rng.random((batch, length, BITS)) < p
    u = (on * np.where(rng.random((batch, length, BITS)) < 0.5, 1.0, -1.0)).astype(np.float32)
    y = np.zeros_like(u)
    held = np.zeros((batch, BITS), np.float32)
    for t in range(length):
        held = np.where(u[:, t] != 0, u[:, t], held)
        y[:, t] = held
    return u, y, (y != 0).astype(np.float32)


def train(torch, hidden: int, steps: int, length: int, seed: int, verbose: bool):
    """A ``torch.nn.GRU`` (batch first) and its linear readout, trained with Adam."""
    torch.manual_seed(seed)
    gru = torch.nn.GRU(BITS, hidden, batch_first=True)
    readout = torch.nn.Linear(hidden, BITS)
    opt = torch.optim.Adam([*gru.parameters(), *readout.parameters()], lr=1e-2)
    rng = np.random.default_rng(seed)
    loss = float("nan")
    for i in range(steps):
        u, y, m = (torch.from_numpy(a) for a in flipflop_batch(rng, 64, length))
        hs, _ = gru(u)
        err = m * (readout(hs) - y) ** 2
        loss_t = err.sum() / m.sum().clamp(min=1.0)
        opt.zero_grad()
        loss_t.backward()
        torch.nn.utils.clip_grad_norm_(gru.parameters(), 1.0)
        opt.step()
        loss = loss_t.detach().item()
        if verbose and (i + 1) % 100 == 0:
            print(f"step {i + 1:4d}/{steps}  loss {loss:.4f}", flush=True)
    return gru, readout, loss


def torch_speed(torch, gru, points: np.ndarray) -> np.ndarray:
    """``(K,)`` ``q = ½‖F(h, 0) − h‖²`` by torch's own GRU step, in float64."""
    g64 = copy.deepcopy(gru).double()
    h = torch.tensor(np.asarray(points, np.float64))
    with torch.no_grad():
        _, h1 = g64(torch.zeros(len(h), 1, BITS, dtype=torch.float64), h[None])
    return 0.5 * ((h1[0] - h) ** 2).sum(-1).numpy()


def fixed_point_finder(gru, starts: np.ndarray):
    """The unique fixed points ``(U, N)`` that FixedPointFinder's torch finder finds from
    ``starts``, or ``None`` when the package is not installed."""
    try:
        from fixed_point_finder.FixedPointFinderTorch import FixedPointFinderTorch
    except ImportError:
        try:
            from FixedPointFinderTorch import FixedPointFinderTorch  # the repository on the path
        except ImportError:
            return None
    fpf = FixedPointFinderTorch(gru, verbose=False, super_verbose=False)
    unique, _ = fpf.find_fixed_points(starts.astype(np.float32), np.zeros((1, BITS), np.float32))
    return np.asarray(unique.xstar, np.float64)


def main() -> None:
    ap = C.parser(__doc__.split("\n")[0], dataset=False)
    ap.add_argument("--hidden", type=int, default=None, help="units (default 16, smoke 6)")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    hidden = args.hidden or (6 if args.smoke else 16)
    steps, length, num_initial = (40, 20, 64) if args.smoke else (600, 60, 512)
    gru, readout, loss = train(torch, hidden, steps, length, args.seed, not args.quiet)
    print(f"torch.nn.GRU: {hidden} units, {BITS} inputs, {steps} training steps, loss {loss:.4f}")

    u, _, _ = flipflop_batch(np.random.default_rng(args.seed + 1), 128, length)
    with torch.no_grad():
        hs, _ = gru(torch.from_numpy(u))
    cell, params = rnndyn.from_torch(gru)
    k_sample, k_search = jax.random.split(jax.random.key(args.seed))
    starts = rnndyn.sample_states(jnp.asarray(hs.numpy()), num_initial, k_sample, noise=0.05)
    fps = rnndyn.find_fixed_points(
        cell, params, jnp.zeros(BITS), starts, key=k_search, verbose=not args.quiet
    )
    print(fps.describe())
    roots = fps.keep_roots().merge_duplicates(1e-3)
    if len(roots) == 0:
        print("no certified root (train longer: drop --smoke)")
        return
    q_torch = torch_speed(torch, gru, np.asarray(roots.points))
    eigen = rnndyn.eig(rnndyn.jacobians(cell, params, roots.points, roots.inputs)[0])
    modulus = np.abs(np.asarray(eigen.values))
    unstable = np.sum(modulus > 1.0, axis=1)
    with torch.no_grad():
        memory = np.sign(readout(torch.tensor(np.asarray(roots.points))).numpy())
    print(f"{len(roots)} distinct certified roots; q by torch's own step (float64): "
          f"max {q_torch.max():.2e}")  # fmt: skip
    print(f"{'#':>3} {'status':>10} {'q (rnndyn)':>11} {'q (torch)':>10} {'max |λ|':>8} "
          f"{'kind':>9} {'memory':>7}")  # fmt: skip
    for i in np.argsort(unstable, kind="stable"):
        kind = "stable" if unstable[i] == 0 else f"saddle-{unstable[i]}"
        mem = " ".join(f"{int(v):+d}" for v in memory[i]) if unstable[i] == 0 else "-"
        status = rnndyn.Status(int(roots.status[i])).name
        print(f"{i:>3} {status:>10} {float(roots.speeds[i]):>11.1e} {q_torch[i]:>10.1e} "
              f"{modulus[i, 0]:>8.3f} {kind:>9} {mem:>7}")  # fmt: skip

    fpf_points = fixed_point_finder(gru, np.asarray(starts))
    if fpf_points is None:
        print("FixedPointFinder: skipped (the fixed_point_finder package is not installed)")
    else:
        q_fpf = torch_speed(torch, gru, fpf_points)
        near = nearest_distances(fpf_points, np.asarray(roots.points)) if len(fpf_points) else []
        matched = int(np.sum(np.asarray(near) < 1e-3))
        print(f"FixedPointFinder: {len(fpf_points)} unique fixed points from the same "
              f"{len(starts)} starts, {matched} within 1e-3 of an rnndyn root; q by torch "
              f"max {q_fpf.max() if len(q_fpf) else float('nan'):.2e}")  # fmt: skip

    if args.out:
        os.makedirs(args.out, exist_ok=True)
        out = {
            "hidden": hidden,
            "counts": fps.counts(),
            "points": np.asarray(roots.points).tolist(),
            "q_rnndyn": np.asarray(roots.speeds, np.float64).tolist(),
            "q_torch": q_torch.tolist(),
            "unstable_directions": unstable.tolist(),
        }
        path = os.path.join(args.out, "fixed_points.json")
        with open(path, "w") as f:
            json.dump(out, f, indent=1)
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
