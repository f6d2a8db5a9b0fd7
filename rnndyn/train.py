"""Training and evaluation of ``rnndyn.models.Classifier``.

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
import sys
import time
from collections.abc import Iterator
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from rnndyn import _checks
from rnndyn.checkpoint import (
    META_FILE,
    TrainState,
    check_resumable,
    describe_model,
    load_checkpoint,
    load_train_state,
    save_checkpoint,
)
from rnndyn.config import TrainConfig
from rnndyn.data.dataset import check_dataset, epoch_batches, pad_batch
from rnndyn.models import Classifier

Array = jax.Array
Params = Any

__all__ = [
    "TrainConfig",
    "TrainResult",
    "TrainingDivergedError",
    "evaluate",
    "make_optimizer",
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
    if resume and os.path.isfile(os.path.join(checkpoint_dir, META_FILE)):
        state = load_train_state(checkpoint_dir, model, params, opt_state)
        check_resumable(
            checkpoint_dir,
            state,
            config=config,
            key_data=key_data,
            total=total,
            history=history,
            vocab=vocab,
        )
        saved = load_checkpoint(checkpoint_dir)
        if saved.model != model:
            raise ValueError(
                f"{os.path.join(checkpoint_dir, META_FILE)}: field 'model' "
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
