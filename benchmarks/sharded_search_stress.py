"""Stress check: the sharded fixed-point search finishes and agrees with one device.

``find_fixed_points`` on ``rnndyn.GRU(32)`` with ``K = 512`` starts (defaults: second-order
phase, float64 certificates, one deflation round) hung for ever on XLA:CPU with forced host
devices (two to four devices on a two-core machine): every device's program parked a
thread of the shared intra-op pool in a batched LAPACK solve, and none was left to run the
solve's tasks. The recurrent weights are scaled by ``--gain`` (3 by default: several roots,
slow points, capped and outside candidates, so the comparison covers every ending).

This script runs that search in fresh processes on ``--devices`` forced host devices,
``--parallel`` processes at once (the load the hang first showed under), ``--rounds``
times, each process searching ``--repeats`` times (the first call compiles). Each run
must end within ``--timeout`` seconds and equal a one-device reference: the same
statuses, points within ``--atol``.

    python benchmarks/sharded_search_stress.py                  # 10 rounds of 2 x 4 devices
    python benchmarks/sharded_search_stress.py --devices 3 --rounds 3

Prints one line per run (round, process, wall time of each search, agreement) and exits
non-zero if a run timed out, failed or disagreed.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def worker(out: str, repeats: int, gain: float) -> None:
    """One process: ``repeats`` searches (each must equal the first); saves the first result,
    every search's wall time and how many devices the result lives on."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    import rnndyn

    cell = rnndyn.GRU(32)
    params = cell.init(jax.random.key(0), 2)
    params["W_h"] = params["W_h"] * gain
    h0 = jax.random.uniform(jax.random.key(1), (512, 32), minval=-1, maxval=1)
    times, results = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        fps = rnndyn.find_fixed_points(cell, params, jnp.zeros(2), h0)
        status = np.asarray(fps.status)
        times.append(time.perf_counter() - start)
        results.append((status, np.asarray(fps.points)))
    for status, points in results[1:]:  # repeats within a process agree exactly
        assert np.array_equal(status, results[0][0]) and np.array_equal(points, results[0][1])
    used = len(fps.points.sharding.device_set)
    np.savez(out, status=results[0][0], points=results[0][1], times=np.asarray(times),
             devices=jax.local_device_count(), used=used)  # fmt: skip


def launch(out: Path, devices: int, repeats: int, gain: float) -> subprocess.Popen:
    env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=str(ROOT),
               XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}")  # fmt: skip
    cmd = [sys.executable, __file__, "--worker", str(out), "--repeats", str(repeats),
           "--gain", str(gain)]  # fmt: skip
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)  # fmt: skip


def finish(proc: subprocess.Popen, started: float, timeout: float) -> tuple[str, float]:
    """Wait for ``proc`` until ``started + timeout``; ``(problem or "", wall seconds)``."""
    try:
        log, _ = proc.communicate(timeout=max(0.0, started + timeout - time.perf_counter()))
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        return f"TIMED OUT after {timeout:.0f} s", time.perf_counter() - started
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        return f"FAILED (exit {proc.returncode}): {log.strip()[-500:]}", wall
    return "", wall


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=4)
    parser.add_argument("--parallel", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument("--gain", type=float, default=3.0)
    parser.add_argument("--atol", type=float, default=1e-5)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.repeats, args.gain)
        return 0

    import numpy as np

    sys.path.insert(0, str(ROOT))  # this checkout's rnndyn, as in the workers
    from rnndyn import Status

    print(f"{os.cpu_count()} CPU(s); GRU(32), W_h x {args.gain:g}, K = 512, defaults; "
          f"{args.parallel} processes at once on {args.devices} forced host devices, "
          f"{args.rounds} rounds, {args.repeats} searches per process", flush=True)  # fmt: skip
    bad = 0
    with tempfile.TemporaryDirectory() as tmp:
        ref_path = Path(tmp) / "ref.npz"
        started = time.perf_counter()
        problem, wall = finish(launch(ref_path, 1, 1, args.gain), started, args.timeout)
        if problem:
            print(f"reference (1 device): {problem}")
            return 1
        ref = np.load(ref_path)
        values, counts = np.unique(ref["status"], return_counts=True)
        counts = {Status(int(v)).name: int(c) for v, c in zip(values, counts, strict=True)}
        print(f"reference (1 device): {wall:.1f} s process, statuses {counts}", flush=True)
        for round_ in range(1, args.rounds + 1):
            paths = [Path(tmp) / f"r{round_}p{i}.npz" for i in range(args.parallel)]
            started = time.perf_counter()
            procs = [launch(p, args.devices, args.repeats, args.gain) for p in paths]
            for i, (proc, path) in enumerate(zip(procs, paths, strict=True)):
                problem, wall = finish(proc, started, args.timeout)
                line = f"round {round_:2d} process {i}: "
                if problem:
                    bad += 1
                    print(line + problem, flush=True)
                    continue
                got = np.load(path)
                same_status = np.array_equal(got["status"], ref["status"])
                points, ref_points = got["points"], ref["points"]
                finite = np.isfinite(points) & np.isfinite(ref_points)
                diff = float(np.max(np.abs(points - ref_points), initial=0.0, where=finite))
                rest = np.array_equal(points[~finite], ref_points[~finite], equal_nan=True)
                ok = same_status and rest and diff <= args.atol
                bad += not ok
                times = " ".join(f"{t:.2f}" for t in got["times"])
                print(f"{line}{wall:5.1f} s process, searches [{times}] s on "
                      f"{int(got['used'])}/{int(got['devices'])} devices; statuses "
                      f"{'equal' if same_status else 'DIFFER'}, max |points - ref| {diff:.1e}"
                      f" -> {'agrees' if ok else 'DISAGREES'}", flush=True)  # fmt: skip
    print(f"{'all runs finished and agree' if bad == 0 else f'{bad} run(s) bad'}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
