"""``rnndyn train``: check the arguments, load the data, train, write the checkpoint."""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any

from rnndyn.cli.data import _is_local, _is_local_dataset, _relative_paths, load_data
from rnndyn.cli.parser import (
    CELL_NAMES,
    SYNTHETIC,
    _check_at_least_one,
    _is_real,
    _real_names,
    _where,
    config_from_args,
)
from rnndyn.config import TrainConfig


def _check_args(args: argparse.Namespace) -> None:
    local = _is_local(args.dataset) and args.dataset not in SYNTHETIC
    if local and not os.path.exists(args.dataset):
        raise ValueError(f"--dataset {args.dataset!r}: no such file or directory")
    if not local and (args.test is not None or args.test_fraction is not None):
        raise ValueError(
            f"--test and --test-fraction apply to local datasets (a PATH), not {args.dataset!r}"
        )
    if args.test is not None and args.test_fraction is not None:
        raise ValueError("give --test PATH or --test-fraction, not both")
    if args.test is not None and not os.path.exists(args.test):
        raise ValueError(f"--test {args.test!r}: no such file or directory")
    if args.test_fraction is not None and not 0 < args.test_fraction < 1:
        raise ValueError(f"--test-fraction must be in (0, 1), got {args.test_fraction}")
    if args.save_every < 0:
        raise ValueError(f"--save-every must be >= 0, got {args.save_every}")
    _where(args.where)
    if not local and args.dataset not in SYNTHETIC and not _is_real(args.dataset):
        from rnndyn.data.tfds_load import NEEDS_LOCAL

        if args.dataset in NEEDS_LOCAL:
            raise ValueError(
                f"dataset {args.dataset!r} cannot be loaded by the CLI: "
                f"{NEEDS_LOCAL[args.dataset]}; export it to a CSV/JSONL file and pass "
                "--dataset FILE"
            )
        raise ValueError(
            f"unknown dataset {args.dataset!r}; expected one of "
            f"{list(SYNTHETIC) + list(_real_names())} or the path of a local .csv/.tsv/.jsonl "
            "file or class-folder directory"
        )
    if args.cell.lower() not in CELL_NAMES:
        raise ValueError(f"unknown cell {args.cell!r}; expected one of {list(CELL_NAMES)}")
    _check_at_least_one(
        args, ("num_classes", "num_examples", "num_test_examples", "hidden", "embed_size")
    )
    if args.num_neutral < 0:
        raise ValueError(f"--num-neutral must be >= 0, got {args.num_neutral}")
    if not args.evidence_strength > 0:
        raise ValueError(f"--evidence-strength must be > 0, got {args.evidence_strength}")
    if args.max_length is not None and args.max_length < 1:
        raise ValueError(f"--max-length must be >= 1, got {args.max_length}")


def run_train(args: argparse.Namespace) -> int:
    """``rnndyn train``: returns the exit status."""
    if not args.quiet:  # a first line before JAX is imported and the data are read
        print(f"[train] loading {args.dataset}", file=sys.stderr, flush=True)
    import jax

    from rnndyn.checkpoint import check_writable, save_checkpoint
    from rnndyn.train import train

    _check_args(args)
    if _is_local_dataset(args.dataset):
        args.dataset = os.path.abspath(args.dataset)
        if args.test is not None:
            args.test = os.path.abspath(args.test)
    config = config_from_args(TrainConfig, args, clip_norm=args.clip_norm or None)
    out = args.out or _default_out(args)
    check_writable(out, directory=True)  # before any work: fail now, not after training
    k_data, k_train = jax.random.split(jax.random.key(args.seed))
    t0 = time.perf_counter()
    train_data, test_data = load_data(args, k_data)
    if not args.quiet:
        print(f"[train] {len(train_data):,} training and {len(test_data):,} test examples, "
              f"{len(train_data.vocab):,} words; {args.cell.lower()} with {args.hidden} units",
              file=sys.stderr, flush=True)  # fmt: skip
    model = _classifier(args, train_data)
    base_meta = _run_metadata(args, out)
    result = train(
        model,
        train_data,
        test_data,
        key=k_train,
        config=config,
        verbose=not args.quiet,
        checkpoint_dir=out,
        save_every=args.save_every,
        resume=args.resume,
        metadata=base_meta,
    )
    accuracy = result.history["test_accuracy"][-1]
    metadata = {
        **base_meta,
        "test_accuracy": accuracy,
        "test_loss": result.history["test_loss"][-1],
        "train_seconds": time.perf_counter() - t0,
        "history": result.history,
    }
    resumable = bool(args.save_every or args.resume)  # the optimiser state only if asked
    path = save_checkpoint(
        out,
        model,
        result.params,
        vocab=train_data.vocab,
        config=config,
        metadata=metadata,
        train_state=result.state if resumable else None,
    )
    print(f"test accuracy: {accuracy:.4f}")
    print(f"checkpoint: {path}")
    return 0


def _default_out(args: argparse.Namespace) -> str:
    """``runs/<dataset>_<cell>``, the dataset's name made safe for a folder."""
    run_name = "".join(c if c.isalnum() or c in "-_." else "-" for c in args.dataset.strip("/"))
    return os.path.join("runs", f"{os.path.basename(run_name) or 'data'}_{args.cell.lower()}")


def _classifier(args: argparse.Namespace, train_data: Any) -> Any:
    """The ``Classifier`` of --cell, --hidden and --embed-size for ``train_data``."""
    from rnndyn.models import Classifier, make_cell

    return Classifier(
        cell=make_cell(args.cell, args.hidden),
        vocab_size=len(train_data.vocab),
        embed_size=args.embed_size,
        num_classes=train_data.num_classes,
        multilabel=bool(train_data.multilabel),
    )


def _run_metadata(args: argparse.Namespace, out: str) -> dict[str, Any]:
    """What the checkpoint in ``out`` records of the run: the training arguments (how to
    run them left out), with their paths relative to ``out``."""
    keep = ("func", "out", "resume", "save_every", "quiet")  # how to run, not what was trained
    train_args, relative = _relative_paths(
        {k: v for k, v in vars(args).items() if k not in keep}, out
    )
    return {
        "dataset": train_args["dataset"],
        "args": train_args,
        "paths_relative_to_checkpoint": relative,
    }
