"""The ``rnndyn`` command line.

``rnndyn train --dataset ... --cell ... --out DIR`` trains a classifier, prints the final
test accuracy and writes a checkpoint that ``rnndyn.checkpoint.load_checkpoint`` restores;
``rnndyn analyze DIR`` reverse engineers it (``rnndyn.analyze``) and writes a JSON report.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
import typing
from collections.abc import Sequence
from typing import Any

# Only the settings here: JAX and everything that uses it are imported by the command
# that needs them, after the arguments are parsed (``rnndyn --help`` loads no JAX).
from rnndyn.config import AnalysisConfig, TrainConfig

__all__ = [
    "CELL_NAMES",
    "DEFAULT_TEST_FRACTION",
    "SYNTHETIC",
    "TRAIN_FLAGS",
    "add_config_arguments",
    "build_parser",
    "config_from_args",
    "main",
]

#: The built-in cells' names (``rnndyn.models.CELLS``, which needs JAX; a test keeps the
#: two equal).
CELL_NAMES = ("gru", "linear", "lstm", "ugrnn", "vanilla")

#: Held-out fraction of a local --dataset when no --test file is given.
DEFAULT_TEST_FRACTION = 0.2

#: The ``TrainConfig`` fields that ``rnndyn train`` has flags for (defaults and help come
#: from ``rnndyn.config.TrainConfig``).
TRAIN_FLAGS = (
    "steps",
    "epochs",
    "batch_size",
    "learning_rate",
    "warmup_steps",
    "schedule",
    "clip_norm",
    "l2",
    "embedding_l2",
    "eval_every",
)

#: Synthetic datasets: CLI name -> generator name in ``rnndyn.data.synthetic``.
SYNTHETIC = {
    "synthetic-sentiment": "sentiment",
    "synthetic-categorical": "categorical",
    "synthetic-ordered": "ordered",
    "synthetic-multilabel": "multilabel",
    "synthetic-ratings": "ratings",
    "synthetic-contextual": "contextual",
}


def _real_names() -> tuple[str, ...]:
    """tensorflow-datasets names that ``rnndyn.data.load`` supports."""
    from rnndyn.data import SUPPORTED

    return tuple(SUPPORTED)


def _is_real(name: str) -> bool:
    # tfds names may carry a config: "amazon_us_reviews/Books_v1_02"
    return name.split("/")[0] in _real_names()


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``rnndyn`` (every flag documented in ``--help``)."""
    parser = argparse.ArgumentParser(
        prog="rnndyn", description="Train and reverse engineer recurrent text classifiers."
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    t = sub.add_parser(
        "train",
        help="train a classifier and write a checkpoint",
        description="Train an RNN text classifier; print the test accuracy and write a "
        "checkpoint (params.msgpack + checkpoint.json) to --out.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    data = t.add_argument_group("data")
    data.add_argument(
        "--dataset",
        default="synthetic-sentiment",
        help="dataset: one of " + ", ".join(list(SYNTHETIC) + list(_real_names())) + " (real "
        "datasets need tensorflow-datasets and a prepared or downloadable copy; "
        "amazon_us_reviews takes a config, e.g. amazon_us_reviews/Books_v1_02), or the PATH of "
        "a local .csv/.tsv/.jsonl file or of a directory of class folders (aclImdb layout)",
    )
    data.add_argument(
        "--num-classes",
        type=int,
        default=3,
        help="classes (synthetic-categorical, synthetic-ordered, synthetic-ratings) or "
        "labels (synthetic-multilabel); ignored otherwise",
    )
    data.add_argument(
        "--num-examples",
        type=int,
        default=4000,
        help="training examples to generate (synthetic datasets)",
    )
    data.add_argument(
        "--num-test-examples",
        type=int,
        default=1000,
        help="test examples to generate (synthetic datasets)",
    )
    data.add_argument(
        "--max-length",
        type=int,
        default=None,
        help="maximum tokens per document: real data are truncated to it (default 400); "
        "synthetic documents get lengths in [max_length/2, max_length] (default 20-40)",
    )
    data.add_argument(
        "--num-neutral",
        type=int,
        default=10,
        help="neutral (no-evidence) words in the vocabulary (synthetic datasets)",
    )
    data.add_argument(
        "--evidence-strength",
        type=float,
        default=1.0,
        help="how strongly a document's class favours its evidence words (synthetic)",
    )
    data.add_argument(
        "--vocab-size",
        type=int,
        default=20000,
        help="vocabulary size incl. <pad> and <unk> (real datasets; synthetic vocabularies "
        "are fixed by the task)",
    )
    data.add_argument(
        "--data-dir", default=None, help="tensorflow-datasets data directory (real datasets)"
    )
    data.add_argument(
        "--cache-dir",
        default=None,
        help="cache tokenised real datasets here as .npz, so later runs skip tfds and parsing",
    )
    data.add_argument(
        "--no-download",
        action="store_true",
        help="never download: a tfds dataset must already be prepared in --data-dir",
    )
    _add_local_flags(data)
    data.add_argument(
        "--test",
        default=None,
        metavar="PATH",
        help="local test file/directory (same format as --dataset), encoded with the "
        "training vocabulary",
    )
    data.add_argument(
        "--test-fraction",
        type=float,
        default=None,
        help="hold out this fraction of the local --dataset rows as the test set, chosen with "
        f"--seed (default {DEFAULT_TEST_FRACTION} when --test is not given)",
    )

    model = t.add_argument_group("model")
    model.add_argument("--cell", default="gru", help="recurrent cell: " + ", ".join(CELL_NAMES))
    model.add_argument("--hidden", type=int, default=128, help="hidden units N of the cell")
    model.add_argument("--embed-size", type=int, default=32, help="embedding size E")

    opt = t.add_argument_group("training")
    add_config_arguments(opt, TrainConfig, TRAIN_FLAGS)
    opt.add_argument("--seed", type=int, default=0, help="seed of the PRNG key (data and init)")

    out = t.add_argument_group("output")
    out.add_argument(
        "--out", default=None, help="checkpoint directory (default runs/<dataset>_<cell>)"
    )
    out.add_argument(
        "--save-every",
        type=int,
        default=0,
        help="also write the checkpoint (with the optimiser state) every N steps (0: at the end "
        "only)",
    )
    out.add_argument(
        "--resume",
        action="store_true",
        help="continue the interrupted run whose checkpoint is in --out (same arguments); "
        "the result is identical to an uninterrupted run",
    )
    out.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    _add_cache_flag(out)

    a = sub.add_parser(
        "analyze",
        help="reverse engineer a trained checkpoint and write a JSON report",
        description="Run rnndyn.analyze on a checkpoint written by 'rnndyn train': fixed "
        "points, spectra, manifold dimension and geometry, word effects, linearised "
        "accuracy and the dimension predicted from word counts. The data are rebuilt "
        "from the checkpoint's training arguments (same seed, same synthetic sets, same "
        "local files), or read from --data PATH (any checkpoint, including ones saved "
        "from Python).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    _add_analysis_arguments(a)
    _add_report_commands(sub, a)
    return parser


def add_config_arguments(
    parser: Any, config_class: type, fields: Sequence[str] | None = None
) -> None:
    """Add a flag to ``parser`` (a parser or an argument group) for each field of the
    dataclass ``config_class``, or for those named in ``fields``, in that order.

    The field ``name`` becomes ``--name`` with ``-`` for ``_``; its default is the
    field's default, its help ``metadata["help"]``, its choices ``metadata["choices"]``
    and its type the annotation (``X | None`` reads as ``X``; ``bool`` gives a
    ``--name/--no-name`` pair). ``config_from_args`` builds the config back.
    """
    known = {f.name: f for f in dataclasses.fields(config_class)}
    hints = typing.get_type_hints(config_class)
    for name in known if fields is None else fields:
        if name not in known:
            raise ValueError(f"{config_class.__name__} has no field {name!r}")
        field = known[name]
        kind = _flag_type(hints[name])
        kw: dict[str, Any] = {"default": field.default, "help": field.metadata.get("help")}
        if "choices" in field.metadata:
            kw["choices"] = field.metadata["choices"]
        if kind is bool:
            kw["action"] = argparse.BooleanOptionalAction
        else:
            kw["type"] = kind
        parser.add_argument("--" + name.replace("_", "-"), **kw)


def config_from_args(config_class: type, args: argparse.Namespace, **overrides: Any) -> Any:
    """``config_class`` from the parsed ``args`` (the fields that have a flag) and
    ``overrides`` (values the command line spells differently, e.g. 0 for ``None``)."""
    names = {f.name for f in dataclasses.fields(config_class)}
    values = {k: v for k, v in vars(args).items() if k in names}
    return config_class(**{**values, **overrides})


def _flag_type(hint: Any) -> type:
    """The argparse type of a field annotated ``hint``: ``int``, ``float``, ``str`` or
    ``bool``, also inside ``X | None``."""
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    kind = args[0] if len(args) == 1 else hint
    if kind not in (int, float, str, bool):
        raise TypeError(f"no command-line type for a field annotated {hint!r}")
    return kind


#: ``AnalysisConfig`` fields that are ``rnndyn analyze`` flags (all but the key: --seed).
ANALYSIS_FLAGS = tuple(
    f.name for f in dataclasses.fields(AnalysisConfig) if f.metadata.get("cli", True)
)


def _add_analysis_arguments(p: argparse.ArgumentParser) -> None:
    """The arguments of ``rnndyn analyze`` and ``rnndyn report``."""
    p.add_argument("checkpoint", help="checkpoint directory (from rnndyn train --out)")
    p.add_argument(
        "--out", default=None, help="JSON report path (default CHECKPOINT/analysis.json)"
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the analysis PRNG key")
    add_config_arguments(p.add_argument_group("analysis settings"), AnalysisConfig,
                         ANALYSIS_FLAGS)  # fmt: skip
    p.add_argument(
        "--data-dir", default=None, help="tensorflow-datasets data directory (real datasets)"
    )
    p.add_argument("--cache-dir", default=None, help="cache of tokenised real datasets")
    p.add_argument(
        "--no-download",
        action="store_true",
        help="never download: a tfds dataset must already be prepared in --data-dir",
    )
    p.add_argument(
        "--data",
        default=None,
        metavar="PATH",
        help="analyse on this local .csv/.tsv/.jsonl file or class-folder directory (encoded "
        "with the checkpoint's vocabulary) instead of the rebuilt test data",
    )
    p.add_argument(
        "--train-data",
        default=None,
        metavar="PATH",
        help="training data (local file, read like --data) for the bag-of-words baseline and "
        "the word-count prediction; default: the checkpoint's training data, rebuilt",
    )
    _add_local_flags(p)
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    _add_cache_flag(p)
    p.add_argument(
        "--trajectories", type=int, default=40, help="documents drawn as state trajectories"
    )
    _add_figure_flags(p)


#: Figure file formats of ``--format`` (``rnndyn.plots.FORMATS``).
FIGURE_FORMATS = ("png", "svg", "pdf")


def _add_figure_flags(p: argparse.ArgumentParser) -> None:
    """``--format`` and ``--dpi`` of the figures (report, demo, analyze --figures)."""
    p.add_argument(
        "--format",
        action="append",
        choices=FIGURE_FORMATS,
        default=None,
        help="figure file format; repeat for several, e.g. --format png --format pdf "
        "(default png; the page embeds SVG when asked for, else PNG)",
    )
    p.add_argument(
        "--dpi", type=float, default=150, help="resolution of the PNG figures (and embedded PNGs)"
    )


def _figure_options(args: argparse.Namespace) -> dict[str, Any]:
    """``formats`` and ``dpi`` for ``write_report`` from ``--format``/``--dpi``."""
    if not args.dpi > 0 or args.dpi != args.dpi or args.dpi == float("inf"):
        raise ValueError(f"--dpi must be a finite number > 0, got {args.dpi}")
    return {"formats": tuple(args.format or ("png",)), "dpi": args.dpi}


def _add_cache_flag(group: Any) -> None:
    group.add_argument(
        "--no-compilation-cache",
        action="store_true",
        help="do not keep compiled programs for later runs (default: kept in "
        "$RNNDYN_COMPILATION_CACHE, else $XDG_CACHE_HOME/rnndyn/jax or ~/.cache/rnndyn/jax; "
        "RNNDYN_COMPILATION_CACHE=0 also turns it off)",
    )


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


def _add_local_flags(group: Any) -> None:
    """Flags that say how to read a local corpus (train --dataset PATH, analyze --data)."""
    group.add_argument("--text-field", default="text", help="text column/key of local data")
    group.add_argument("--label-field", default="label", help="label column/key of local data")
    group.add_argument(
        "--where",
        action="append",
        default=None,
        metavar="FIELD=VALUE",
        help="keep only local rows whose FIELD equals VALUE (repeat for several conditions)",
    )
    group.add_argument(
        "--multilabel",
        action="store_true",
        help="local labels are lists of label ids per row (multi-label classification)",
    )
    group.add_argument(
        "--encoding", default="utf-8", help="text encoding of local files (a UTF-8 BOM is fine)"
    )


def _where(items: Sequence[str] | None) -> dict[str, list[str]] | None:
    if not items:
        return None
    out: dict[str, list[str]] = {}
    for item in items:
        field, sep, value = item.partition("=")
        if not sep or not field:
            raise ValueError(f"--where must look like FIELD=VALUE, got {item!r}")
        out.setdefault(field, []).append(value)
    return out


def _is_local(name: str) -> bool:
    from rnndyn.data.local import is_local_path

    return is_local_path(name)


def _check_at_least_one(args: argparse.Namespace, names: Sequence[str]) -> None:
    for name in names:
        if getattr(args, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")


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


def load_data(args: argparse.Namespace, key: Any) -> tuple[Any, Any]:
    """Train and test ``rnndyn.data.Dataset`` for the parsed arguments."""
    import jax

    from rnndyn import data

    if args.dataset in SYNTHETIC:
        kind = SYNTHETIC[args.dataset]
        gen = data.contextual.sentiment if kind == "contextual" else getattr(data.synthetic, kind)
        kw: dict[str, Any] = {}
        if args.max_length is not None:
            kw["length"] = (max(1, args.max_length // 2), args.max_length)
        kw["num_neutral"] = args.num_neutral
        if kind != "contextual":  # its evidence is planted, not drawn with a strength
            kw["evidence_strength"] = args.evidence_strength
        extra = () if kind in ("sentiment", "contextual") else (args.num_classes,)
        # Different keys, same vocabulary: the vocabulary depends only on the task's sizes.
        k_train, k_test = jax.random.split(key)
        train = gen(k_train, *extra, args.num_examples, **kw)
        test = gen(k_test, *extra, args.num_test_examples, **kw)
        return train, test
    max_length = 400 if args.max_length is None else args.max_length
    if _is_local(args.dataset):
        fraction = args.test_fraction
        if args.test is None and fraction is None:
            fraction = DEFAULT_TEST_FRACTION
        return data.load_local(
            args.dataset,
            args.text_field,
            args.label_field,
            test=args.test,
            test_fraction=fraction,
            seed=args.seed,
            where=_where(args.where),
            multilabel=args.multilabel,
            encoding=args.encoding,
            max_length=max_length,
            vocab_size=args.vocab_size,
            cache_dir=args.cache_dir,
            verbose=not getattr(args, "quiet", False),
        )
    download = not args.no_download
    train = data.load(
        args.dataset,
        "train",
        vocab_size=args.vocab_size,
        max_length=max_length,
        data_dir=args.data_dir,
        cache_dir=args.cache_dir,
        download=download,
    )
    test = data.load(
        args.dataset,
        "test",
        vocab=train.vocab,
        max_length=max_length,
        data_dir=args.data_dir,
        cache_dir=args.cache_dir,
        download=download,
    )
    return train, test


def run_train(args: argparse.Namespace) -> int:
    """``rnndyn train``: returns the exit status."""
    if not args.quiet:  # a first line before JAX is imported and the data are read
        print(f"[train] loading {args.dataset}", file=sys.stderr, flush=True)
    import jax

    from rnndyn.checkpoint import check_writable, save_checkpoint
    from rnndyn.models import Classifier, make_cell
    from rnndyn.train import train

    _check_args(args)
    if _is_local_dataset(args.dataset):
        args.dataset = os.path.abspath(args.dataset)
        if args.test is not None:
            args.test = os.path.abspath(args.test)
    config = config_from_args(TrainConfig, args, clip_norm=args.clip_norm or None)
    run_name = "".join(c if c.isalnum() or c in "-_." else "-" for c in args.dataset.strip("/"))
    run_name = f"{os.path.basename(run_name) or 'data'}_{args.cell.lower()}"
    out = args.out or os.path.join("runs", run_name)
    check_writable(out, directory=True)  # before any work: fail now, not after training
    k_data, k_train = jax.random.split(jax.random.key(args.seed))
    t0 = time.perf_counter()
    train_data, test_data = load_data(args, k_data)
    if not args.quiet:
        print(f"[train] {len(train_data):,} training and {len(test_data):,} test examples, "
              f"{len(train_data.vocab):,} words; {args.cell.lower()} with {args.hidden} units",
              file=sys.stderr, flush=True)  # fmt: skip
    model = Classifier(
        cell=make_cell(args.cell, args.hidden),
        vocab_size=len(train_data.vocab),
        embed_size=args.embed_size,
        num_classes=train_data.num_classes,
        multilabel=bool(train_data.multilabel),
    )
    keep = ("func", "out", "resume", "save_every", "quiet")  # how to run, not what was trained
    train_args, relative = _relative_paths(
        {k: v for k, v in vars(args).items() if k not in keep}, out
    )
    base_meta = {
        "dataset": train_args["dataset"],
        "args": train_args,
        "paths_relative_to_checkpoint": relative,
    }
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


#: ``rnndyn train`` arguments that may name files or folders. The checkpoint stores them
#: relative to its own directory and lists them in ``paths_relative_to_checkpoint``.
_PATH_ARGS = ("dataset", "test", "data_dir", "cache_dir")


def _is_local_dataset(name: str) -> bool:
    return name not in SYNTHETIC and _is_local(name)


def _relative_paths(train_args: dict, folder: str) -> tuple[dict, list[str]]:
    """``train_args`` with its paths (``_PATH_ARGS`` that are set; ``dataset`` when it is a
    local corpus) relative to ``folder``, and their names."""
    out, names = dict(train_args), []
    for name in _PATH_ARGS:
        value = out.get(name)
        if value is None or (name == "dataset" and not _is_local_dataset(value)):
            continue
        target = os.path.abspath(os.path.expanduser(value))
        try:
            out[name] = os.path.relpath(target, os.path.abspath(folder))
        except ValueError:  # another drive (Windows): no relative path
            out[name] = target
            continue
        names.append(name)
    return out, names


def _resolve_paths(metadata: dict, checkpoint: str) -> tuple[dict, list[str]]:
    """The training arguments recorded in a checkpoint's ``metadata``, with the paths
    stored relative to the checkpoint made absolute, and their names. (Checkpoints
    from before relative paths hold absolute ones, and no list.)"""
    train_args = metadata.get("args")
    if not isinstance(train_args, dict):
        return {}, []
    relative = metadata.get("paths_relative_to_checkpoint")
    names = (
        [n for n in relative if isinstance(train_args.get(n), str)]
        if isinstance(relative, list)
        else []
    )
    folder = os.path.abspath(checkpoint)
    resolved = {n: os.path.normpath(os.path.join(folder, train_args[n])) for n in names}
    return {**train_args, **resolved}, names


def _analysis_data(args: argparse.Namespace, ckpt: Any) -> tuple[Any, Any]:
    """(train, test) data for ``rnndyn analyze``.

    Test: ``--data``, else the checkpoint's test data, rebuilt. Train: ``--train-data``,
    else the checkpoint's training data, rebuilt where the checkpoint records how (with
    ``--data`` and no record: ``None``, and the analysis holds out part of ``--data``).
    """
    test = None if args.data is None else _local_for_analysis(args, ckpt, args.data, "--data")
    if args.train_data is not None:
        train = _local_for_analysis(args, ckpt, args.train_data, "--train-data")
        return train, test if test is not None else _rebuilt(args, ckpt)[1]
    if test is None:
        return _rebuilt(args, ckpt)
    try:
        return _rebuilt(args, ckpt)[0], test
    except ValueError:  # no record of the training data: hold part of --data out
        return None, test


def _local_for_analysis(args: argparse.Namespace, ckpt: Any, path: str, flag: str) -> Any:
    """A local corpus encoded with the checkpoint's vocabulary."""
    from rnndyn import data

    if not os.path.exists(path):
        raise ValueError(f"{flag} {path!r}: no such file or directory")
    model = ckpt.model
    ds = data.load_local(
        path, args.text_field, args.label_field, where=_where(args.where),
        multilabel=model.multilabel or args.multilabel,
        num_classes=None if _is_dir(path) else model.num_classes, encoding=args.encoding,
        vocab=ckpt.vocab, max_length=int(ckpt.metadata.get("args", {}).get("max_length") or 400),
        cache_dir=args.cache_dir, verbose=not args.quiet,
    )  # fmt: skip
    if ds.num_classes != model.num_classes:
        raise ValueError(
            f"{flag} {path!r} has {ds.num_classes} classes, the checkpoint's model "
            f"{model.num_classes}"
        )
    return ds


def _rebuilt(args: argparse.Namespace, ckpt: Any) -> tuple[Any, Any]:
    """The checkpoint's (train, test) data, rebuilt from its recorded arguments."""
    import jax

    train_args, relative = _resolve_paths(ckpt.metadata, args.checkpoint)
    if not train_args:
        raise ValueError(
            f"{args.checkpoint!r} has no training arguments in its metadata (it was not "
            "written by 'rnndyn train'); pass the data to analyse with --data PATH"
        )
    defaults = vars(build_parser().parse_args(["train"]))
    targs = argparse.Namespace(**{**defaults, **train_args})
    for name in ("data_dir", "cache_dir"):  # where the data live here, not where trained
        if getattr(args, name) is not None:
            setattr(targs, name, getattr(args, name))
    targs.no_download = targs.no_download or args.no_download
    targs.quiet = args.quiet  # progress lines while the data are read
    local = "dataset" in relative or _is_local(targs.dataset)
    if local and not os.path.exists(targs.dataset):
        raise ValueError(
            f"the training data {targs.dataset!r} recorded in the checkpoint are not there; "
            "pass --data PATH"
        )
    k_data, _ = jax.random.split(jax.random.key(targs.seed))
    train_data, test_data = load_data(targs, k_data)
    if tuple(train_data.vocab) != tuple(ckpt.vocab):
        raise ValueError(
            f"the rebuilt {targs.dataset!r} data do not have the checkpoint's vocabulary "
            f"({len(train_data.vocab)} vs {len(ckpt.vocab)} words); the files changed? "
            "pass --data PATH"
        )
    return train_data, test_data


def _is_dir(path: str) -> bool:
    return os.path.isdir(path)


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


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split())
    return text or type(err).__name__


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
        hint = ""
        if args.command == "train":
            hint = (
                "; rerun with --resume to continue from the last checkpoint"
                if getattr(args, "save_every", 0)
                else "; use --save-every N to be able to --resume"
            )
        print(f"rnndyn {args.command}: interrupted{hint}", file=sys.stderr)
        return 130
    except Exception as err:  # noqa: BLE001 - diverged training, failed download, ...
        print(f"{prefix} {type(err).__name__}: {_one_line(err)}", file=sys.stderr)
        return 1
    parser.error(f"unknown command {args.command!r}")
    return 2


# ------------------------------------------------------------ report and demo commands

#: Settings of ``rnndyn demo``: a GRU on synthetic sentiment with long, sparse documents
#: (the line attractor of Maheswaranathan et al. 2019 in under a minute on a CPU).
DEMO_TRAIN = (
    "--dataset", "synthetic-sentiment", "--cell", "gru", "--hidden", "16",
    "--embed-size", "16", "--max-length", "100", "--num-neutral", "100",
    "--embedding-l2", "1e-2", "--num-examples", "2000", "--num-test-examples", "500",
)  # fmt: skip


def _add_report_commands(sub: Any, analyze_parser: argparse.ArgumentParser) -> None:
    """``rnndyn analyze --figures``, ``rnndyn report`` and ``rnndyn demo``."""
    analyze_parser.add_argument(
        "--figures",
        action="store_true",
        help="also write the figures (--format, --dpi) and a self-contained report.html next "
        "to the JSON (needs matplotlib: the plot extra)",
    )
    r = sub.add_parser(
        "report",
        help="analyze a checkpoint and write figures + report.html next to the JSON",
        description="rnndyn analyze CHECKPOINT --figures: run rnndyn.analyze, write the JSON, "
        "the figures (PNG, SVG or PDF: --format, --dpi) and a self-contained report.html (the "
        "verdict, figures with captions, numbers, settings) in the JSON's directory. Needs "
        "matplotlib.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    _add_analysis_arguments(r)
    d = sub.add_parser(
        "demo",
        help="train a GRU on synthetic sentiment, analyse it, write figures + report.html",
        description="The main job end to end: train a GRU on the embedded synthetic sentiment "
        "task, reverse engineer it (fixed points, spectra, manifold, word effects, "
        "linearisation) and write the figures and report.html to --out. Under a minute on "
        "a 2-core CPU.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    d.add_argument("--out", default=os.path.join("runs", "demo"), help="output directory")
    d.add_argument("--steps", type=int, default=1000, help="training steps")
    d.add_argument("--seed", type=int, default=0, help="seed of the data, training and analysis")
    d.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    _add_cache_flag(d)
    _add_figure_flags(d)


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
