"""``rnndyn report`` (and ``analyze --figures``) and ``rnndyn demo``: figures, report.html
and the settings it shows."""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any

from rnndyn.cli.analyze import _run_analysis
from rnndyn.cli.data import _is_local
from rnndyn.cli.parser import (
    SYNTHETIC,
    TRAIN_FLAGS,
    _check_at_least_one,
    _figure_options,
    build_parser,
)
from rnndyn.cli.train import run_train

#: Settings of ``rnndyn demo``: a GRU on synthetic sentiment with long, sparse documents
#: (the line attractor of Maheswaranathan et al. 2019 in under a minute on a CPU).
DEMO_TRAIN = (
    "--dataset", "synthetic-sentiment", "--cell", "gru", "--hidden", "16",
    "--embed-size", "16", "--max-length", "100", "--num-neutral", "100",
    "--embedding-l2", "1e-2", "--num-examples", "2000", "--num-test-examples", "500",
)  # fmt: skip


#: Training arguments shown in the report's settings for every dataset ...
_SHOWN_TRAINING = ("cell", "hidden", "embed_size", "seed", *TRAIN_FLAGS)
#: ... and those that apply to each kind of dataset (the rest are ignored for it).
_SHOWN_DATA = {
    "synthetic": ("num_examples", "num_test_examples", "max_length", "num_neutral",
                  "evidence_strength"),
    "tfds": ("vocab_size", "max_length", "data_dir", "cache_dir", "no_download"),
    "local": ("test", "test_fraction", "vocab_size", "max_length", "text_field", "label_field",
              "where", "multilabel", "encoding", "cache_dir"),
}  # fmt: skip


def _train_help() -> dict[str, str]:
    """``{dest: help}`` of the ``rnndyn train`` flags."""
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return {a.dest: a.help for a in sub.choices["train"]._actions if a.help}


def report_settings(args: argparse.Namespace, metadata: dict) -> dict[str, dict[str, Any]]:
    """The settings a report shows, by group: the run (checkpoint by name, the data
    analysed), the data and the training arguments that apply to the checkpoint's dataset
    (a synthetic task's knobs, or a real or local dataset's), with paths as the checkpoint
    records them (relative to it) or by file name. ``write_report`` adds the analysis."""
    from rnndyn.report import Setting

    name = os.path.basename(os.path.abspath(args.checkpoint))
    run = {
        "checkpoint": Setting(name, "the checkpoint's folder"),
        "analysed data": Setting(
            os.path.basename(args.data) if args.data else "the test data, rebuilt from the "
            "training arguments", "the examples analysed, --data"),
        "training data for the baseline": Setting(
            os.path.basename(args.train_data) if args.train_data else "the training data, "
            "rebuilt", "what the bag of words is fit on, --train-data"),
        "analysis seed": Setting(args.seed, "seed of the analysis PRNG key"),
    }  # fmt: skip
    if isinstance(metadata.get("test_accuracy"), (int, float)):
        run["test accuracy after training"] = Setting(f"{metadata['test_accuracy']:.4f}")
    train_args = metadata.get("args")
    if not isinstance(train_args, dict):
        return {"Run": run}
    helps = _train_help()
    values = {**vars(build_parser().parse_args(["train"])), **train_args}
    dataset = str(values.get("dataset", ""))
    kind = "synthetic" if dataset in SYNTHETIC else "local" if (
        "dataset" in (metadata.get("paths_relative_to_checkpoint") or ()) or _is_local(dataset)
    ) else "tfds"  # fmt: skip
    shown_data = list(_SHOWN_DATA[kind])
    if kind == "synthetic" and SYNTHETIC[dataset] != "sentiment":
        shown_data.insert(0, "num_classes")

    def rows(names):
        out = {}
        for n in names:
            v = values.get(n)
            if v is None and n != "max_length" or (n == "steps" and values.get("epochs")):
                continue  # an option not used
            if n == "clip_norm" and not v:
                v = "off"
            elif n == "eval_every" and v == 0:
                v = "0, at the end only"
            out[n] = Setting(v, helps.get(n, ""))
        return out

    data = {"dataset": Setting(dataset, "as recorded; a path is relative to the checkpoint"),
            **rows(shown_data)}  # fmt: skip
    return {"Run": run, "Data": data, "Model and training": rows(_SHOWN_TRAINING)}


def run_report(args: argparse.Namespace) -> int:
    """``rnndyn report`` / ``rnndyn analyze --figures``: returns the exit status."""
    try:
        from rnndyn.report import write_report
    except ImportError as err:
        raise ValueError(f"figures need matplotlib: pip install 'rnndyn[plot]' ({err})") from err
    options = _figure_options(args)  # checked before the analysis, not after it
    ckpt, test_data, result, out = _run_analysis(args)
    out_dir = os.path.dirname(os.path.abspath(out))
    if not args.quiet:
        print("[report] drawing the figures", file=sys.stderr, flush=True)
    written = write_report(
        result,
        out_dir,
        model=ckpt.model,
        params=ckpt.params,
        data=test_data,
        settings=report_settings(args, ckpt.metadata),
        num_trajectories=args.trajectories,
        **options,
    )
    print(result.summary())
    print(f"report: {out}")
    files = [p for name, p in written.items() if name != "report"]
    print(f"figures: {len(files)} files, {', '.join(options['formats'])}, in {out_dir}")
    print(f"open: {written['report']}")
    return 0


def run_demo(args: argparse.Namespace) -> int:
    """``rnndyn demo``: train, analyse, write figures; returns the exit status."""
    _check_at_least_one(args, ("steps",))
    _figure_options(args)
    t0 = time.perf_counter()
    log = not args.quiet
    if log:
        print(
            f"[demo] 1/2 training a GRU (16 units) on synthetic sentiment for {args.steps} steps",
            file=sys.stderr,
            flush=True,
        )
    parser = build_parser()
    quiet = ["--quiet"] if args.quiet else []
    targs = parser.parse_args(
        ["train", *DEMO_TRAIN, "--steps", str(args.steps), "--seed", str(args.seed)]
        + ["--out", args.out, *quiet]
    )
    run_train(targs)
    if log:
        print(
            f"[demo] 2/2 reverse engineering it ({time.perf_counter() - t0:.0f} s so far)",
            file=sys.stderr,
            flush=True,
        )
    figure_flags = [f"--format={f}" for f in args.format or ()] + [f"--dpi={args.dpi}"]
    rargs = parser.parse_args(
        ["report", args.out, "--seed", str(args.seed), "--max-examples", "500"]
        + ["--num-initial", "512", *quiet, *figure_flags]
    )
    run_report(rargs)
    print(f"demo finished in {time.perf_counter() - t0:.0f} s; everything is in {args.out}")
    return 0


_REPORT_COMMANDS = {"report": run_report, "demo": run_demo}
