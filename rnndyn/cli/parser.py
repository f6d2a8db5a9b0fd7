"""The flags of ``rnndyn``: the parser, the flags of config dataclasses and their checks.

Only the settings are imported here: JAX and everything that uses it are imported by the
command that needs them, after the arguments are parsed (``rnndyn --help`` loads no JAX).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import typing
from collections.abc import Sequence
from typing import Any

from rnndyn.config import AnalysisConfig, TrainConfig

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
    _add_train_command(sub)
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


def _add_train_command(sub: Any) -> None:
    """``rnndyn train`` and its groups of flags."""
    t = sub.add_parser(
        "train",
        help="train a classifier and write a checkpoint",
        description="Train an RNN text classifier; print the test accuracy and write a "
        "checkpoint (params.msgpack + checkpoint.json) to --out.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    _add_data_flags(t.add_argument_group("data"))
    model = t.add_argument_group("model")
    model.add_argument("--cell", default="gru", help="recurrent cell: " + ", ".join(CELL_NAMES))
    model.add_argument("--hidden", type=int, default=128, help="hidden units N of the cell")
    model.add_argument("--embed-size", type=int, default=32, help="embedding size E")
    opt = t.add_argument_group("training")
    add_config_arguments(opt, TrainConfig, TRAIN_FLAGS)
    opt.add_argument("--seed", type=int, default=0, help="seed of the PRNG key (data and init)")
    _add_output_flags(t.add_argument_group("output"))


def _add_data_flags(data: Any) -> None:
    """The data flags of ``rnndyn train``: which dataset, and how to make or read it."""
    data.add_argument(
        "--dataset",
        default="synthetic-sentiment",
        help="dataset: one of " + ", ".join(list(SYNTHETIC) + list(_real_names())) + " (real "
        "datasets need tensorflow-datasets and a prepared or downloadable copy; "
        "amazon_us_reviews takes a config, e.g. amazon_us_reviews/Books_v1_02), or the PATH of "
        "a local .csv/.tsv/.jsonl file or of a directory of class folders (aclImdb layout)",
    )
    _add_synthetic_flags(data)
    data.add_argument(
        "--vocab-size",
        type=int,
        default=20000,
        help="vocabulary size incl. <pad> and <unk> (real datasets; synthetic vocabularies "
        "are fixed by the task)",
    )
    _add_tfds_flags(
        data, "cache tokenised real datasets here as .npz, so later runs skip tfds and parsing"
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


def _add_synthetic_flags(data: Any) -> None:
    """The sizes and knobs of the synthetic tasks (and --max-length, of every dataset)."""
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


def _add_tfds_flags(group: Any, cache_help: str) -> None:
    """Where tensorflow-datasets data and the tokenised cache live, and --no-download."""
    group.add_argument(
        "--data-dir", default=None, help="tensorflow-datasets data directory (real datasets)"
    )
    group.add_argument("--cache-dir", default=None, help=cache_help)
    group.add_argument(
        "--no-download",
        action="store_true",
        help="never download: a tfds dataset must already be prepared in --data-dir",
    )


def _add_output_flags(out: Any) -> None:
    """Where ``rnndyn train`` writes, how often, and whether it resumes."""
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
    _add_tfds_flags(p, "cache of tokenised real datasets")
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


def _check_at_least_one(args: argparse.Namespace, names: Sequence[str]) -> None:
    for name in names:
        if getattr(args, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")


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
