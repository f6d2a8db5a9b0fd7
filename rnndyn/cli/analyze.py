"""``rnndyn analyze``: load a checkpoint and its data, run ``rnndyn.analyze``, write JSON."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from rnndyn.cli.data import _analysis_data
from rnndyn.cli.parser import _check_at_least_one, _where, config_from_args
from rnndyn.config import AnalysisConfig


def _run_analysis(args: argparse.Namespace) -> tuple[Any, Any, Any, str]:
    """Checks, data, ``rnndyn.analyze`` and the JSON of ``analyze``/``report``.

    Returns the checkpoint, the analysed data, the ``Analysis`` and the JSON path.
    """
    if not args.quiet:  # a first line before JAX is imported and the data are read
        print(f"[analyze] loading {args.checkpoint} and its data", file=sys.stderr, flush=True)
    import jax

    from rnndyn.analysis import analyze
    from rnndyn.checkpoint import check_writable, load_checkpoint

    _check_at_least_one(args, ("trajectories",))
    config = _analysis_config(args)
    _where(args.where)
    out = args.out or os.path.join(args.checkpoint, "analysis.json")
    ckpt = load_checkpoint(args.checkpoint)
    check_writable(out, directory=False)  # before the analysis, not after it
    train_data, test_data = _analysis_data(args, ckpt)
    result = analyze(
        ckpt,
        test_data,
        key=jax.random.key(args.seed),
        train_data=train_data,
        config=config,
        verbose=not args.quiet,
    )
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    result.to_json(out)  # atomic, with the big arrays in out + ".npz"
    return ckpt, test_data, result, out


def _analysis_config(args: argparse.Namespace) -> Any:
    """The ``AnalysisConfig`` of the flags; a bad value names its flag."""
    try:
        return config_from_args(AnalysisConfig, args)
    except ValueError as err:
        flag = str(err).split(" ", 1)
        name = "--" + flag[0].replace("_", "-")
        raise ValueError(f"{name} {flag[1]}" if len(flag) == 2 else str(err)) from None


def run_analyze(args: argparse.Namespace) -> int:
    """``rnndyn analyze``: returns the exit status."""
    _, _, result, out = _run_analysis(args)
    print(result.summary())
    print(f"report: {out}")
    return 0
