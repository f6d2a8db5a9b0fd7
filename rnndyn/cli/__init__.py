"""The ``rnndyn`` command line.

``rnndyn train --dataset ... --cell ... --out DIR`` trains a classifier, prints the final
test accuracy and writes a checkpoint that ``rnndyn.checkpoint.load_checkpoint`` restores;
``rnndyn analyze DIR`` reverse engineers it (``rnndyn.analyze``) and writes a JSON report.

Modules: ``parser`` (the flags and their checks), ``data`` (the data of each command),
``train``, ``analyze`` and ``report`` (the commands; ``report`` also runs ``demo``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from rnndyn.cli.analyze import run_analyze
from rnndyn.cli.data import load_data
from rnndyn.cli.parser import (
    ANALYSIS_FLAGS,
    CELL_NAMES,
    DEFAULT_TEST_FRACTION,
    FIGURE_FORMATS,
    SYNTHETIC,
    TRAIN_FLAGS,
    add_config_arguments,
    build_parser,
    config_from_args,
)
from rnndyn.cli.report import _REPORT_COMMANDS, DEMO_TRAIN, report_settings, run_demo, run_report
from rnndyn.cli.train import run_train

__all__ = [
    "ANALYSIS_FLAGS",
    "CELL_NAMES",
    "DEFAULT_TEST_FRACTION",
    "DEMO_TRAIN",
    "FIGURE_FORMATS",
    "SYNTHETIC",
    "TRAIN_FLAGS",
    "add_config_arguments",
    "build_parser",
    "config_from_args",
    "load_data",
    "main",
    "report_settings",
    "run_analyze",
    "run_demo",
    "run_report",
    "run_train",
]


def _compilation_cache(args: argparse.Namespace) -> None:
    """Turn JAX's persistent compilation cache on unless the flag or the environment
    says not to: a later run loads what this one compiled. A folder that cannot be
    created costs a warning, not the run."""
    from rnndyn import compilation_cache

    if getattr(args, "no_compilation_cache", False) or compilation_cache.env_disabled():
        return
    try:
        compilation_cache.enable_compilation_cache()
    except OSError as err:
        print(f"rnndyn: warning: no compilation cache ({_one_line(err)})", file=sys.stderr)


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split())
    return text or type(err).__name__


def _resume_hint(args: argparse.Namespace) -> str:
    """What an interrupted ``train`` can do next ("" for the other commands)."""
    if args.command != "train":
        return ""
    if getattr(args, "save_every", 0):
        return "; rerun with --resume to continue from the last checkpoint"
    return "; use --save-every N to be able to --resume"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``rnndyn`` console script; returns the exit status.

    Exit status: 0 success; 2 a user error (bad argument, data or checkpoint, unwritable
    output: ``ValueError``/``OSError``), with one line on stderr; 1 any other failure
    (e.g. training diverged, a download failed), also one line; 130 interrupted (Ctrl-C).
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    prefix = f"rnndyn {args.command}: error:"
    try:
        _compilation_cache(args)
        from rnndyn import _blas

        with _blas.single_threaded():  # LAPACK on small matrices: one thread (rnndyn/_blas.py)
            if args.command == "train":
                return run_train(args)
            if args.command in _REPORT_COMMANDS or getattr(args, "figures", False):
                return _REPORT_COMMANDS.get(args.command, run_report)(args)
            if args.command == "analyze":
                return run_analyze(args)
    except (ValueError, OSError) as err:  # bad arguments, data, files: no traceback
        print(f"{prefix} {_one_line(err)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"rnndyn {args.command}: interrupted{_resume_hint(args)}", file=sys.stderr)
        return 130
    except Exception as err:  # noqa: BLE001 - diverged training, failed download, ...
        print(f"{prefix} {type(err).__name__}: {_one_line(err)}", file=sys.stderr)
        return 1
    parser.error(f"unknown command {args.command!r}")
    return 2
