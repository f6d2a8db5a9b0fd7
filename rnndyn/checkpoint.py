"""Checkpoints: a trained classifier on disk, and the state needed to resume its training.

A checkpoint is a directory holding ``params.msgpack`` (the parameters, flax msgpack)
and ``checkpoint.json`` (the model description, the vocabulary, the training config and
free-form metadata), plus ``opt_state.msgpack`` and a ``train_state`` entry when it is
saved for resuming. ``save_checkpoint`` writes it atomically; ``load_checkpoint`` reads
it back and names the file and the field of anything malformed.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile
from typing import Any

import flax.serialization
import jax
import jax.numpy as jnp
import numpy as np

from rnndyn import _checks, _io
from rnndyn._records import record, static
from rnndyn.config import TrainConfig
from rnndyn.models import Classifier, cell_name, make_cell

Params = Any

__all__ = [
    "META_FILE",
    "OPT_STATE_FILE",
    "PARAMS_FILE",
    "Checkpoint",
    "TrainState",
    "check_resumable",
    "check_writable",
    "describe_model",
    "load_checkpoint",
    "load_train_state",
    "model_from_description",
    "save_checkpoint",
]

#: The parameters (flax msgpack).
PARAMS_FILE = "params.msgpack"
#: Model description, vocabulary, config, metadata and, for resuming, the progress.
META_FILE = "checkpoint.json"
#: The optimiser state, written only for resuming.
OPT_STATE_FILE = "opt_state.msgpack"
_OWN_FILES = (PARAMS_FILE, META_FILE, OPT_STATE_FILE)
_FORMAT = 1


@dataclasses.dataclass(frozen=True)
class Checkpoint:
    """A model restored by ``load_checkpoint``."""

    model: Classifier
    params: Params
    vocab: tuple[str, ...]
    config: TrainConfig | None
    metadata: dict


@record
class TrainState:
    """Where a run stands, enough to continue it exactly (see ``train(resume=True)``); a
    record (``step`` and ``total_steps`` are static).

    Attributes:
      step: optimiser steps done.
      total_steps: steps the run is set to do.
      opt_state: the optimiser state after ``step`` steps.
      key_data: ``jax.random.key_data`` of the run's key (a resumed run must use the same).
      history: the history so far (as in ``TrainResult``).
      pending: ``(k, 2)`` float32 losses and accuracies of the steps since the last log line.
    """

    step: int = static()
    total_steps: int = static()
    opt_state: Any
    key_data: np.ndarray
    history: dict[str, list]
    pending: np.ndarray


def describe_model(model: Classifier) -> dict:
    """JSON description of a classifier with a built-in cell.

    Inverse: ``model_from_description``.
    """
    return {
        "cell": cell_name(model.cell),
        "hidden_size": int(model.cell.hidden_size),
        "vocab_size": model.vocab_size,
        "embed_size": model.embed_size,
        "num_classes": model.num_classes,
        "multilabel": model.multilabel,
    }


_MODEL_FIELDS = {
    "cell": str,
    "hidden_size": int,
    "vocab_size": int,
    "embed_size": int,
    "num_classes": int,
}


def model_from_description(desc: Any, where: str = "model description") -> Classifier:
    """Rebuild a ``Classifier`` from ``describe_model``'s output.

    Raises ``ValueError`` naming ``where`` and the missing or wrong-typed field.
    """
    if not isinstance(desc, dict):
        raise ValueError(f"{where}: field 'model' must be an object, got {type(desc).__name__}")
    for name, kind in _MODEL_FIELDS.items():
        if name not in desc:
            raise ValueError(f"{where}: field 'model.{name}' is missing; got keys {sorted(desc)}")
        value = desc[name]
        if isinstance(value, bool) or not isinstance(value, kind):
            raise ValueError(
                f"{where}: field 'model.{name}' must be {kind.__name__}, got {value!r}"
            )
    multilabel = desc.get("multilabel", False)
    if not isinstance(multilabel, bool):
        raise ValueError(f"{where}: field 'model.multilabel' must be bool, got {multilabel!r}")
    try:
        return Classifier(
            cell=make_cell(desc["cell"], desc["hidden_size"]),
            vocab_size=desc["vocab_size"],
            embed_size=desc["embed_size"],
            num_classes=desc["num_classes"],
            multilabel=multilabel,
        )
    except ValueError as err:
        raise ValueError(f"{where}: field 'model': {err}") from err


def check_writable(path: str | os.PathLike, *, directory: bool, what: str = "--out") -> None:
    """Raise ``OSError`` now if ``path`` cannot be written later (a file, or a directory
    when ``directory``), creating nothing: its nearest existing ancestor must be a
    writable directory, and ``path`` itself, if it exists, of the right kind."""
    path = os.path.abspath(os.fspath(path))
    if os.path.exists(path):
        if directory and not os.path.isdir(path):
            raise OSError(f"{what} {path!r} exists and is not a directory")
        if not directory and os.path.isdir(path):
            raise OSError(f"{what} {path!r} is a directory; expected a file path")
    parent = path if directory and os.path.isdir(path) else os.path.dirname(path)
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent):
        raise OSError(f"{what} {path!r} cannot be created: {parent!r} is a file, not a directory")
    try:
        fd, probe = tempfile.mkstemp(prefix=".rnndyn-write-test-", dir=parent)
    except OSError as err:
        raise OSError(f"{what} {path!r} cannot be written: {parent!r}: {err.strerror}") from err
    os.close(fd)
    os.unlink(probe)


def save_checkpoint(
    path: str | os.PathLike,
    model: Classifier,
    params: Params,
    *,
    vocab: Any,
    config: TrainConfig | None,
    metadata: dict | None = None,
    train_state: TrainState | None = None,
) -> str:
    """Write ``params.msgpack`` (flax msgpack) and ``checkpoint.json`` into directory ``path``.

    The JSON holds the model description (cell name, hidden size, vocab/embed sizes,
    classes), the vocabulary, the training config and ``metadata`` (must be
    JSON-serialisable), so ``load_checkpoint(path)`` needs nothing else. With
    ``train_state`` the optimiser state (``opt_state.msgpack``) and the progress are
    saved too, so ``train(..., resume=True)`` can continue the run.

    The write is atomic: the files go to a temporary directory next to ``path``, which
    then replaces ``path`` by rename (other files already in ``path``, such as an
    ``analysis.json``, are carried over). A crash leaves either the old checkpoint or the
    new one, never a mixed pair. Returns ``path``.

    Raises:
      ValueError: params that do not fit the model or hold NaN/inf, a vocabulary of the
        wrong size, metadata that is not JSON.
      OSError: ``path`` cannot be written.
    """
    desc = describe_model(model)
    vocab = tuple(str(w) for w in vocab)
    if len(vocab) != model.vocab_size:
        raise ValueError(
            f"vocab has {len(vocab)} words but the model has vocab_size {model.vocab_size}"
        )
    _check_params(model, params)
    _checks.check_finite_params("params", jax.device_get(params))
    meta = {
        "format": _FORMAT,
        "model": desc,
        "vocab": list(vocab),
        "config": None if config is None else dataclasses.asdict(config),
        "metadata": dict(metadata or {}),
    }
    if train_state is not None:
        meta["train_state"] = {
            "step": int(train_state.step),
            "total_steps": int(train_state.total_steps),
            "key_data": np.asarray(train_state.key_data).ravel().tolist(),
            "history": train_state.history,
            "pending": np.asarray(train_state.pending, np.float32).tolist(),
        }
    text = json.dumps(meta, indent=1, allow_nan=False)  # fails early, before writing
    path = os.path.abspath(os.fspath(path))
    if os.path.exists(path) and not os.path.isdir(path):
        raise OSError(f"checkpoint path {path!r} exists and is not a directory")
    parent = os.path.dirname(path)
    os.makedirs(parent, exist_ok=True)
    name = os.path.basename(path)
    tmp = _io.make_temp_dir(parent, f".{name}.tmp-")  # 0o777 & ~umask, unlike mkdtemp
    try:
        with open(os.path.join(tmp, PARAMS_FILE), "wb") as f:
            f.write(flax.serialization.to_bytes(jax.device_get(params)))
        if train_state is not None:
            with open(os.path.join(tmp, OPT_STATE_FILE), "wb") as f:
                state = flax.serialization.to_state_dict(jax.device_get(train_state.opt_state))
                f.write(flax.serialization.msgpack_serialize(state))
        with open(os.path.join(tmp, META_FILE), "w", encoding="utf-8") as f:
            f.write(text)
        if os.path.isdir(path):
            for entry in os.listdir(path):  # keep what is not ours (e.g. analysis.json)
                src, dst = os.path.join(path, entry), os.path.join(tmp, entry)
                if entry in _OWN_FILES or entry.startswith(".") or os.path.exists(dst):
                    continue
                if os.path.isdir(src):
                    shutil.copytree(src, dst)
                else:
                    try:
                        os.link(src, dst)
                    except OSError:
                        shutil.copy2(src, dst)
            old = _io.make_temp_dir(parent, f".{name}.old-")
            os.rename(path, os.path.join(old, "ckpt"))
            os.rename(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


def _check_params(model: Classifier, params: Params, where: str = "params") -> None:
    expected = jax.eval_shape(model.init, jax.random.key(0))
    want = jax.tree_util.tree_structure(expected)
    got = jax.tree_util.tree_structure(params)
    if want != got:
        raise ValueError(f"{where} do not fit the model: expected structure {want}, got {got}")
    for (path, e), p in zip(
        jax.tree_util.tree_leaves_with_path(expected),
        jax.tree_util.tree_leaves(params),
        strict=True,
    ):
        if tuple(np.shape(p)) != tuple(e.shape):
            raise ValueError(
                f"{where}: params{jax.tree_util.keystr(path)} has shape {tuple(np.shape(p))}, "
                f"expected {tuple(e.shape)}"
            )


def _read_meta(meta_path: str) -> dict:
    try:
        with open(meta_path, encoding="utf-8") as f:
            meta = json.load(f)
    except json.JSONDecodeError as err:
        raise ValueError(
            f"{meta_path}: not valid JSON ({err.msg} at line {err.lineno}, column {err.colno}); "
            "the file is truncated or corrupt"
        ) from err
    except UnicodeDecodeError as err:
        raise ValueError(f"{meta_path}: not UTF-8 text ({err.reason})") from err
    if not isinstance(meta, dict):
        raise ValueError(f"{meta_path}: expected a JSON object, got {type(meta).__name__}")
    return meta


def _read_msgpack(file: str) -> Any:
    with open(file, "rb") as f:
        raw = f.read()
    try:
        return flax.serialization.msgpack_restore(raw)
    except Exception as err:  # msgpack raises several types on truncated/corrupt input
        raise ValueError(
            f"{file}: not a readable msgpack file ({type(err).__name__}: {err}); the file is "
            "truncated or corrupt"
        ) from err


def load_checkpoint(path: str | os.PathLike) -> Checkpoint:
    """Restore a checkpoint written by ``save_checkpoint``.

    Raises:
      ValueError: not a checkpoint, or a malformed one (truncated file, missing or
        wrong-typed field, params that do not fit the model or hold NaN/inf); the message
        names the file and the field.
    """
    meta_path = os.path.join(path, META_FILE)
    params_path = os.path.join(path, PARAMS_FILE)
    for p in (meta_path, params_path):
        if not os.path.isfile(p):
            raise ValueError(f"{os.fspath(path)!r} is not a checkpoint: {p} is missing")
    meta = _read_meta(meta_path)
    fmt = meta.get("format", _FORMAT)
    if isinstance(fmt, bool) or not isinstance(fmt, int) or fmt > _FORMAT:
        raise ValueError(f"{meta_path}: field 'format' is {fmt!r}; this rnndyn reads <= {_FORMAT}")
    if "model" not in meta:
        raise ValueError(f"{meta_path}: field 'model' is missing; got keys {sorted(meta)}")
    model = model_from_description(meta["model"], meta_path)
    vocab = meta.get("vocab")
    if not isinstance(vocab, list) or not all(isinstance(w, str) for w in vocab):
        raise ValueError(f"{meta_path}: field 'vocab' must be a list of strings")
    if len(vocab) != model.vocab_size:
        raise ValueError(
            f"{meta_path}: field 'vocab' has {len(vocab)} words, field 'model.vocab_size' "
            f"is {model.vocab_size}"
        )
    config = meta.get("config")
    if config is not None:
        if not isinstance(config, dict):
            raise ValueError(
                f"{meta_path}: field 'config' must be an object or null, got {config!r}"
            )
        known = {f.name for f in dataclasses.fields(TrainConfig)}
        try:
            config = TrainConfig(**{k: v for k, v in config.items() if k in known})
        except (TypeError, ValueError) as err:
            raise ValueError(f"{meta_path}: field 'config': {err}") from err
    metadata = meta.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        raise ValueError(f"{meta_path}: field 'metadata' must be an object or null")
    raw = _read_msgpack(params_path)
    try:
        params = jax.tree_util.tree_map(jnp.asarray, raw)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{params_path}: holds non-array values ({err})") from err
    _check_params(model, params, params_path)
    try:
        _checks.check_finite_params("params", raw)
    except ValueError as err:
        raise ValueError(f"{params_path}: {err}") from err
    return Checkpoint(
        model=model,
        params=params,
        vocab=tuple(vocab),
        config=config,
        metadata=metadata or {},
    )


def load_train_state(
    path: str | os.PathLike, model: Classifier, params: Params, opt_state: Any
) -> TrainState:
    """The ``TrainState`` saved with a checkpoint; ``opt_state`` is the template (a fresh
    ``optimizer.init(params)``) whose structure the saved state must have."""
    meta_path = os.path.join(path, META_FILE)
    meta = _read_meta(meta_path)
    ts = meta.get("train_state")
    if not isinstance(ts, dict):
        raise ValueError(
            f"{meta_path}: field 'train_state' is missing or not an object: the checkpoint "
            "cannot be resumed (it was not saved for resuming: train(save_every=...), CLI "
            "--save-every N or --resume)"
        )
    for name, kind in (("step", int), ("total_steps", int), ("key_data", list), ("history", dict)):
        if isinstance(ts.get(name), bool) or not isinstance(ts.get(name), kind):
            raise ValueError(
                f"{meta_path}: field 'train_state.{name}' must be {kind.__name__}, got "
                f"{ts.get(name)!r}"
            )
    pending = np.asarray(ts.get("pending", []), np.float32).reshape(-1, 2)
    opt_file = os.path.join(path, OPT_STATE_FILE)
    if not os.path.isfile(opt_file):
        raise ValueError(f"{opt_file} is missing: the checkpoint cannot be resumed")
    raw = _read_msgpack(opt_file)
    try:
        restored = flax.serialization.from_state_dict(jax.device_get(opt_state), raw)
    except (KeyError, ValueError, TypeError) as err:
        raise ValueError(
            f"{opt_file}: the optimiser state does not fit this model and config ({err})"
        ) from err
    _checks.check_finite_params(opt_file, restored)
    del model, params
    return TrainState(
        step=ts["step"],
        total_steps=ts["total_steps"],
        opt_state=jax.tree_util.tree_map(jnp.asarray, restored),
        key_data=np.asarray(ts["key_data"], np.uint32),
        history=ts["history"],
        pending=pending,
    )


def check_resumable(
    path: str | os.PathLike,
    state: TrainState,
    *,
    config: TrainConfig,
    key_data: np.ndarray,
    total: int,
    history: dict,
    vocab: tuple[str, ...],
) -> None:
    """Raise ``ValueError`` unless the checkpoint in ``path``, whose ``load_train_state``
    is ``state``, belongs to this run: the same ``config``, PRNG ``key_data``, ``total``
    steps, ``vocab`` (when given) and ``history`` keys, and a step within the run."""
    meta = _read_meta(os.path.join(path, META_FILE))
    where = os.path.join(path, META_FILE)
    saved = meta.get("config")
    if saved != json.loads(json.dumps(dataclasses.asdict(config))):
        raise ValueError(
            f"{where}: field 'config' {saved} differs from this run's "
            f"{dataclasses.asdict(config)}; resume with the same settings"
        )
    if not np.array_equal(np.ravel(state.key_data), np.ravel(key_data)):
        raise ValueError(f"{where}: the run's PRNG key differs from this one (another --seed?)")
    if state.total_steps != total:
        raise ValueError(
            f"{where}: field 'train_state.total_steps' is {state.total_steps}, this run has "
            f"{total} steps (different data size?)"
        )
    if vocab and tuple(meta["vocab"]) != vocab:
        raise ValueError(f"{where}: field 'vocab' differs from the training data's vocabulary")
    if sorted(state.history) != sorted(history):
        raise ValueError(
            f"{where}: field 'train_state.history' has keys {sorted(state.history)}, expected "
            f"{sorted(history)} (test data given in one run and not the other?)"
        )
    if not 0 <= state.step <= total:
        raise ValueError(f"{where}: field 'train_state.step' {state.step} is outside [0, {total}]")
