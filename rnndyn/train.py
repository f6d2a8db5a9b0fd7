"""Training, evaluation and checkpoints for ``rnndyn.models.Classifier``.

Datasets are anything with the fields of ``rnndyn.data.Dataset``: ``tokens (B, T)``
int (left-aligned, padded with 0), ``lengths (B,)``, ``labels`` (``(B,)`` class ids or
``(B, C)`` 0/1 for multi-label), ``vocab``, ``num_classes`` and ``multilabel``.

Randomness comes only from the ``key`` passed to ``train``: the same key, model, data
and config give the same parameters.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from typing import Any

import flax.serialization
import jax
import jax.numpy as jnp
import numpy as np
import optax

from rnndyn import _checks
from rnndyn.config import TrainConfig
from rnndyn.data.dataset import check_dataset, epoch_batches, pad_batch
from rnndyn.models import Classifier, cell_name, make_cell

Array = jax.Array
Params = Any

__all__ = [
    "Checkpoint",
    "TrainConfig",
    "TrainResult",
    "TrainState",
    "TrainingDivergedError",
    "check_writable",
    "evaluate",
    "load_checkpoint",
    "make_optimizer",
    "save_checkpoint",
    "train",
]


@dataclasses.dataclass(frozen=True)
class TrainResult:
    """Trained ``params`` and ``history``: a dict of lists (JSON-friendly).

    ``history`` keys: ``step``, ``loss``, ``accuracy`` (training batches, averaged since
    the previous log line), and ``eval_step``, ``test_loss``, ``test_accuracy`` when
    test data were given.
    """

    params: Params
    history: dict[str, list]
    state: Any = None  # TrainState: what save_checkpoint(train_state=...) needs to resume


@dataclasses.dataclass(frozen=True)
class Checkpoint:
    """A model restored by ``load_checkpoint``."""

    model: Classifier
    params: Params
    vocab: tuple[str, ...]
    config: TrainConfig | None
    metadata: dict


def make_optimizer(config: TrainConfig, total_steps: int) -> optax.GradientTransformation:
    """Clip -> L2 on weight matrices (and on the embedding) -> Adam, with warm-up then the
    chosen decay."""
    peak = config.learning_rate
    warmup = min(config.warmup_steps, max(total_steps - 1, 0))
    decay_steps = max(total_steps - warmup, 1)
    end = peak * config.final_lr_fraction
    if config.schedule == "cosine":
        decay = optax.cosine_decay_schedule(peak, decay_steps, alpha=config.final_lr_fraction)
    elif config.schedule == "linear":
        decay = optax.linear_schedule(peak, end, decay_steps)
    else:
        decay = optax.constant_schedule(peak)
    schedule = (
        optax.join_schedules([optax.linear_schedule(0.0, peak, warmup), decay], [warmup])
        if warmup
        else decay
    )
    parts = []
    if config.clip_norm is not None:
        parts.append(optax.clip_by_global_norm(config.clip_norm))
    if config.l2:
        # Decay matrices only: penalising biases would bias the readout's class priors.
        parts.append(
            optax.add_decayed_weights(
                config.l2, mask=lambda p: jax.tree_util.tree_map(lambda a: a.ndim >= 2, p)
            )
        )
    if config.embedding_l2:
        parts.append(optax.add_decayed_weights(config.embedding_l2, mask=_embedding_only))
    parts.append(optax.adam(schedule))
    return optax.chain(*parts)


def _embedding_only(params: Params) -> Any:
    """Mask selecting ``params["embedding"]`` (a classifier's parameter dict)."""
    if not isinstance(params, dict) or "embedding" not in params:
        raise ValueError("embedding_l2 needs classifier parameters with an 'embedding' entry")
    return {
        k: jax.tree_util.tree_map(lambda _, k=k: k == "embedding", v) for k, v in params.items()
    }


def _train_indices(
    lengths: np.ndarray, batch_size: int, steps: int, rng: np.random.Generator
) -> Iterator[np.ndarray]:
    """Row indices of ``steps`` batches: epoch after epoch of ``epoch_batches`` (shuffled,
    length-bucketed, the tail dropped). Only ``rng`` decides the order, so a resumed run
    replays it by drawing the same numbers.
    """
    batch_size = min(batch_size, len(lengths))
    done = 0
    while True:
        for index in epoch_batches(lengths, batch_size, rng, drop_remainder=True):
            if done == steps:
                return
            yield index
            done += 1


def _weighted_metrics(model: Classifier, params: Params, batch: dict) -> tuple[Array, Array]:
    # Batches from pad_batch are left-aligned (mask = arange(T) < lengths): the fast path.
    logits = model.apply_lengths(params, batch["tokens"], batch["lengths"])
    w = batch["weight"]
    total = jnp.maximum(w.sum(), 1.0)
    loss = (model.losses(logits, batch["labels"]) * w).sum() / total
    acc = (model.correct(logits, batch["labels"]) * w).sum() / total
    return loss, acc


# ``model`` is static (a hashable frozen dataclass): one compilation per model and shape.
_metrics_jit = jax.jit(_weighted_metrics, static_argnums=0)


def _make_step(model: Classifier, optimizer: optax.GradientTransformation):
    def step(params, opt_state, batch):
        (loss, acc), grads = jax.value_and_grad(
            lambda p: _weighted_metrics(model, p, batch), has_aux=True
        )(params)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        params = optax.apply_updates(params, updates)
        finite = jnp.isfinite(loss)
        for leaf in jax.tree_util.tree_leaves(params):
            finite &= jnp.all(jnp.isfinite(leaf))
        return params, opt_state, jnp.stack([loss, acc, finite.astype(loss.dtype)])

    # The old parameters and optimiser state are not needed after a step: reuse their buffers.
    return jax.jit(step, donate_argnums=(0, 1))


def evaluate(model: Classifier, params: Params, data: Any, batch_size: int = 256) -> dict:
    """Mean loss and accuracy over every example of ``data``.

    ``accuracy`` is the fraction of examples classified correctly; for multi-label data
    it is the mean per-label accuracy (the fraction of all example-label pairs right).
    """
    _checks.check_int("batch_size", batch_size, minimum=1)
    _checks.check_finite_params("params", params)
    check_dataset(model, data, "data")
    n = len(data.lengths)
    batch_size = min(batch_size, n)
    loss_sum = acc_sum = 0.0
    for start in range(0, n, batch_size):
        index = np.arange(start, min(start + batch_size, n))
        loss, acc = _metrics_jit(model, params, pad_batch(data, index, batch_size))
        loss_sum += float(loss) * len(index)
        acc_sum += float(acc) * len(index)
    return {"loss": loss_sum / n, "accuracy": acc_sum / n}


def _log(verbose: bool, message: str) -> None:
    if verbose:
        print(message, file=sys.stderr, flush=True)


class TrainingDivergedError(RuntimeError):
    """The loss or the parameters became non-finite (NaN or inf) during training.

    Attributes:
      step: the first optimiser step (1-based) whose loss or updated parameters were
        non-finite.
    """

    def __init__(self, message: str, step: int):
        super().__init__(message)
        self.step = step


@dataclasses.dataclass(frozen=True)
class TrainState:
    """Where a run stands, enough to continue it exactly (see ``train(resume=True)``).

    Attributes:
      step: optimiser steps done.
      total_steps: steps the run is set to do.
      opt_state: the optimiser state after ``step`` steps.
      key_data: ``jax.random.key_data`` of the run's key (a resumed run must use the same).
      history: the history so far (as in ``TrainResult``).
      pending: ``(k, 2)`` float32 losses and accuracies of the steps since the last log line.
    """

    step: int
    total_steps: int
    opt_state: Any
    key_data: np.ndarray
    history: dict[str, list]
    pending: np.ndarray


def _diverged(config: TrainConfig, step: int, loss: float) -> TrainingDivergedError:
    clip = (
        "enable gradient clipping (clip_norm=1.0, CLI --clip-norm 1)"
        if config.clip_norm is None
        else f"clip gradients harder (clip_norm is {config.clip_norm:g})"
    )
    return TrainingDivergedError(
        f"training diverged at step {step}: the loss or the parameters became non-finite "
        f"(loss {loss}). Lower the learning rate (it is {config.learning_rate:g}; try 10x "
        f"smaller) or {clip}. No checkpoint was written for the diverged parameters.",
        step,
    )


def train(
    model: Classifier,
    train_data: Any,
    test_data: Any = None,
    *,
    key: Array,
    config: TrainConfig = TrainConfig(),
    verbose: bool = True,
    checkpoint_dir: str | os.PathLike | None = None,
    save_every: int = 0,
    resume: bool = False,
    metadata: dict | None = None,
    devices: Any = None,
) -> TrainResult:
    """Train ``model`` from a fresh initialisation drawn from ``key``.

    Args:
      model: the classifier to train.
      train_data: a ``rnndyn.data.Dataset`` (or anything with its fields).
      test_data: optional dataset evaluated every ``config.eval_every`` steps and at the end.
      key: PRNG key; it alone sets the initialisation and the batch order.
      config: optimisation settings.
      verbose: print progress lines (step, loss, accuracy, tokens/s) to stderr.
      checkpoint_dir: where periodic checkpoints go (with the state needed to resume).
      save_every: write a checkpoint to ``checkpoint_dir`` every this many steps (0: never).
      resume: continue from the checkpoint in ``checkpoint_dir`` if there is one (the same
        model, data, key and config are required); the result is bit-identical to an
        uninterrupted run. Without a checkpoint there, training starts from step 0.
      metadata: JSON-serialisable metadata stored in the periodic checkpoints.
      devices: devices to train on (default: all local devices). With several, each
        batch is split over them (data parallel, ``jax.sharding``; parameters
        replicated): the largest number of them that divides the batch size is used.
        The loss curve is that of one device up to floating-point summation order.

    Returns:
      ``TrainResult(params, history, state)``.

    Raises:
      TrainingDivergedError: the loss or the parameters became NaN or inf; the message
        names the first such step. No checkpoint of non-finite parameters is written.
      ValueError: bad arguments, or a checkpoint that does not match this run.
    """
    if not isinstance(model, Classifier):
        raise ValueError(f"model must be an rnndyn.models.Classifier, got {type(model).__name__}")
    if not isinstance(config, TrainConfig):
        raise ValueError(f"config must be a TrainConfig, got {type(config).__name__}")
    _checks.check_key("key", key)
    _checks.check_int("save_every", save_every)
    if (save_every or resume) and checkpoint_dir is None:
        raise ValueError(
            f"save_every={save_every} and resume={resume} need checkpoint_dir (a directory), "
            "got None"
        )
    check_dataset(model, train_data, "train_data")
    if test_data is not None:
        check_dataset(model, test_data, "test_data")
    key = jax.random.wrap_key_data(key) if not _is_typed_key(key) else key
    key_data = np.asarray(jax.random.key_data(key))
    k_init, k_data = jax.random.split(key)
    # Batch order from a numpy generator seeded by the key: host-side and reproducible.
    rng = _checks.host_rng(k_data)
    total = config.total_steps(len(train_data.lengths))
    optimizer = make_optimizer(config, total)
    params = model.init(k_init)
    opt_state = optimizer.init(params)
    step_fn = _make_step(model, optimizer)
    vocab = tuple(str(w) for w in getattr(train_data, "vocab", ()))
    place_batch, replicate = _data_parallel(devices, min(config.batch_size, len(train_data)))
    if place_batch is not None:
        _log(verbose, f"data parallel over {place_batch.mesh.size} devices")

    history: dict[str, list] = {"step": [], "loss": [], "accuracy": []}
    if test_data is not None:
        history.update(eval_step=[], test_loss=[], test_accuracy=[])
    pending: list[Any] = []  # (3,) [loss, accuracy, finite] per step, fetched lazily
    start = 0
    if resume and os.path.isfile(os.path.join(checkpoint_dir, _META_FILE)):
        state = load_train_state(checkpoint_dir, model, params, opt_state)
        _check_resumable(checkpoint_dir, state, config, key_data, total, history, vocab)
        saved = load_checkpoint(checkpoint_dir)
        if saved.model != model:
            raise ValueError(
                f"{os.path.join(checkpoint_dir, _META_FILE)}: field 'model' "
                f"{describe_model(saved.model)} differs from this run's {describe_model(model)}"
            )
        params = saved.params
        opt_state, start, history = state.opt_state, state.step, state.history
        pending = [np.append(p, np.float32(1.0)) for p in state.pending]
        _log(verbose, f"resuming from step {start}/{total} ({checkpoint_dir})")
    elif resume:
        _log(verbose, f"no checkpoint to resume in {checkpoint_dir}; starting from step 0")
    tokens_seen, t_last = 0, time.perf_counter()
    lengths = np.asarray(train_data.lengths)
    if replicate is not None:
        params, opt_state = jax.device_put((params, opt_state), replicate)

    def flush() -> np.ndarray:
        """Fetch the pending step results; raise if any step went non-finite."""
        nonlocal pending
        values = np.asarray(jax.device_get(pending), np.float32).reshape(-1, 3)
        bad = np.flatnonzero(values[:, 2] == 0)
        if bad.size:
            first = i - len(pending) + 1 + int(bad[0])
            raise _diverged(config, first, float(values[bad[0], 0]))
        pending = [v for v in values]
        return values

    def snapshot() -> TrainState:
        values = flush()
        return TrainState(
            step=i,
            total_steps=total,
            opt_state=opt_state,
            key_data=key_data,
            history=json.loads(json.dumps(history)),
            pending=values[:, :2].copy(),
        )

    def run_eval(step: int) -> None:
        flush()
        result = evaluate(model, params, test_data, config.eval_batch_size)
        history["eval_step"].append(step)
        history["test_loss"].append(result["loss"])
        history["test_accuracy"].append(result["accuracy"])
        _log(
            verbose,
            f"  eval @ {step}: test loss {result['loss']:.4f}  "
            f"test accuracy {result['accuracy']:.4f}",
        )

    i = start
    for i, index in enumerate(_train_indices(lengths, config.batch_size, total, rng), 1):
        if i <= start:
            continue  # replay the batch order of the interrupted run
        batch = pad_batch(train_data, index, min(config.batch_size, len(lengths)))
        if place_batch is not None:
            batch = jax.device_put(batch, place_batch)
        params, opt_state, out = step_fn(params, opt_state, batch)
        pending.append(out)
        tokens_seen += int(lengths[index].sum())
        if i % config.log_every == 0 or i == total:
            # Fetch losses only when logging, so the host does not wait on every step.
            values = flush()
            losses, accs = values[:, 0], values[:, 1]
            pending = []
            history["step"].append(i)
            history["loss"].append(float(losses.mean()))
            history["accuracy"].append(float(accs.mean()))
            now = time.perf_counter()
            rate = tokens_seen / max(now - t_last, 1e-9)  # since the last line (incl. compiling)
            tokens_seen, t_last = 0, now
            _log(
                verbose,
                f"step {i:>6}/{total}  loss {losses.mean():.4f}  accuracy {accs.mean():.4f}  "
                f"{rate:,.0f} tokens/s",
            )
        if test_data is not None and config.eval_every and i % config.eval_every == 0:
            run_eval(i)
        if save_every and i % save_every == 0 and i < total:
            save_checkpoint(
                checkpoint_dir,
                model,
                params,
                vocab=vocab,
                config=config,
                metadata=dict(metadata or {}),
                train_state=snapshot(),
            )
            _log(verbose, f"  checkpoint @ {i}: {checkpoint_dir}")
    i = max(i, start)
    flush()
    if test_data is not None and (not history["eval_step"] or history["eval_step"][-1] != total):
        run_eval(total)
    return TrainResult(params=params, history=history, state=snapshot())


def _data_parallel(devices: Any, batch_size: int) -> tuple[Any, Any]:
    """``(batch sharding, replicated sharding)`` over the devices, or ``(None, None)`` for
    a single device."""
    from jax.sharding import Mesh, NamedSharding, PartitionSpec

    devices = list(jax.local_devices() if devices is None else devices)
    if not devices:
        raise ValueError("devices must hold at least one device, got an empty sequence")
    count = max(d for d in range(1, len(devices) + 1) if batch_size % d == 0)
    if count == 1:
        return None, None
    mesh = Mesh(np.array(devices[:count]), ("data",))
    return NamedSharding(mesh, PartitionSpec("data")), NamedSharding(mesh, PartitionSpec())


def _is_typed_key(key: Any) -> bool:
    return jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key)


def _check_resumable(
    path: Any,
    state: TrainState,
    config: TrainConfig,
    key_data: np.ndarray,
    total: int,
    history: dict,
    vocab: tuple[str, ...],
) -> None:
    """Refuse to continue a checkpoint that belongs to another run."""
    meta = _read_meta(os.path.join(path, _META_FILE))
    where = os.path.join(path, _META_FILE)
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


# --- checkpoints -------------------------------------------------------------------

_PARAMS_FILE = "params.msgpack"
_META_FILE = "checkpoint.json"
_OPT_FILE = "opt_state.msgpack"
_OWN_FILES = (_PARAMS_FILE, _META_FILE, _OPT_FILE)
_FORMAT = 1


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
    tmp = tempfile.mkdtemp(prefix=f".{os.path.basename(path)}.tmp-", dir=parent)
    try:
        with open(os.path.join(tmp, _PARAMS_FILE), "wb") as f:
            f.write(flax.serialization.to_bytes(jax.device_get(params)))
        if train_state is not None:
            with open(os.path.join(tmp, _OPT_FILE), "wb") as f:
                state = flax.serialization.to_state_dict(jax.device_get(train_state.opt_state))
                f.write(flax.serialization.msgpack_serialize(state))
        with open(os.path.join(tmp, _META_FILE), "w", encoding="utf-8") as f:
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
            old = tempfile.mkdtemp(prefix=f".{os.path.basename(path)}.old-", dir=parent)
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
    meta_path = os.path.join(path, _META_FILE)
    params_path = os.path.join(path, _PARAMS_FILE)
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
    meta_path = os.path.join(path, _META_FILE)
    meta = _read_meta(meta_path)
    ts = meta.get("train_state")
    if not isinstance(ts, dict):
        raise ValueError(
            f"{meta_path}: field 'train_state' is missing or not an object: the checkpoint "
            "cannot be resumed (it was not written with save_every/--save-every)"
        )
    for name, kind in (("step", int), ("total_steps", int), ("key_data", list), ("history", dict)):
        if isinstance(ts.get(name), bool) or not isinstance(ts.get(name), kind):
            raise ValueError(
                f"{meta_path}: field 'train_state.{name}' must be {kind.__name__}, got "
                f"{ts.get(name)!r}"
            )
    pending = np.asarray(ts.get("pending", []), np.float32).reshape(-1, 2)
    opt_file = os.path.join(path, _OPT_FILE)
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
