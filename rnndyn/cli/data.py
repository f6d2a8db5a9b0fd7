"""The data of the commands: ``load_data`` for ``train``, the data analysed by ``analyze``
(``--data``, ``--train-data`` or the checkpoint's, rebuilt), and the checkpoint's paths."""

from __future__ import annotations

import argparse
import os
from typing import Any

from rnndyn.cli.parser import DEFAULT_TEST_FRACTION, SYNTHETIC, _where, build_parser


def _is_local(name: str) -> bool:
    from rnndyn.data.local import is_local_path

    return is_local_path(name)


def load_data(args: argparse.Namespace, key: Any) -> tuple[Any, Any]:
    """Train and test ``rnndyn.data.Dataset`` for the parsed arguments."""
    if args.dataset in SYNTHETIC:
        return _synthetic_data(args, key)
    max_length = 400 if args.max_length is None else args.max_length
    if _is_local(args.dataset):
        return _local_data(args, max_length)
    return _tfds_data(args, max_length)


def _synthetic_data(args: argparse.Namespace, key: Any) -> tuple[Any, Any]:
    """A synthetic task's train and test sets, drawn with two keys split from ``key``."""
    import jax

    from rnndyn import data

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


def _local_data(args: argparse.Namespace, max_length: int) -> tuple[Any, Any]:
    """A local corpus: --test, or a --test-fraction of --dataset held out."""
    from rnndyn import data

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


def _tfds_data(args: argparse.Namespace, max_length: int) -> tuple[Any, Any]:
    """A tensorflow-datasets set: the test split encoded with the train split's vocabulary."""
    from rnndyn import data

    kw = {"max_length": max_length, "data_dir": args.data_dir, "cache_dir": args.cache_dir}
    kw["download"] = not args.no_download
    train = data.load(args.dataset, "train", vocab_size=args.vocab_size, **kw)
    return train, data.load(args.dataset, "test", vocab=train.vocab, **kw)


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
