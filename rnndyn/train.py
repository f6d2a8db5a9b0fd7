"""Training and evaluation of ``rnndyn.models.Classifier``.

Datasets are anything with the fields of ``rnndyn.data.Dataset``: ``tokens (B, T)``
int (left-aligned, padded with 0), ``lengths (B,)``, ``labels`` (``(B,)`` class ids or
``(B, C)`` 0/1 for multi-label), ``vocab``, ``num_classes`` and ``multilabel``.

Randomness comes only from the ``key`` passed to ``train``: the same key, model, data
and config give the same parameters.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from rnndyn import _checks
from rnndyn._records import record
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


@record
class TrainResult:
    """Trained ``params`` and ``history``: a dict of lists (JSON-friendly). A record.

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
    _check_arguments(model, train_data, test_data, key, config, checkpoint_dir, save_every, resume)
    run, loop = _setup(model, train_data, test_data, key, config, devices, verbose)
    run = run._replace(checkpoint_dir=checkpoint_dir, save_every=save_every, metadata=metadata)
    if resume:
        loop = _resume(run, loop)
    loop = _place(run, loop)
    loop = _run_steps(run, loop)
    return _finish(run, loop)


# --- the stages of train ------------------------------------------------------------


class _Run(NamedTuple):
    """What stays fixed during a run."""

    model: Classifier
    config: TrainConfig
    train_data: Any
    test_data: Any
    lengths: np.ndarray  # of the training examples
    total: int  # optimiser steps
    step_fn: Callable  # (params, opt_state, batch) -> (params, opt_state, [loss, acc, finite])
    key_data: np.ndarray  # of the run's key, saved for resuming
    data_key: Array  # seeds the batch order
    vocab: tuple[str, ...]
    shardings: tuple[Any, Any]  # (batch, replicated), or (None, None) on one device
    verbose: bool
    checkpoint_dir: Any = None  # where periodic checkpoints go
    save_every: int = 0
    metadata: dict | None = None  # stored in the periodic checkpoints


class _Loop(NamedTuple):
    """What changes from step to step. A stage returns a new one; only the lists in
    ``history`` and ``pending`` grow in place (copying them would cost O(steps^2))."""

    step: int  # optimiser steps done
    params: Params
    opt_state: Any
    history: dict[str, list]
    pending: list  # [loss, accuracy, finite] of each step since the last log line
    tokens: int  # training tokens since the last log line
    clock: float  # time.perf_counter() at the last log line


def _check_arguments(
    model: Any,
    train_data: Any,
    test_data: Any,
    key: Any,
    config: Any,
    checkpoint_dir: Any,
    save_every: Any,
    resume: bool,
) -> None:
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


def _setup(
    model: Classifier,
    train_data: Any,
    test_data: Any,
    key: Array,
    config: TrainConfig,
    devices: Any,
    verbose: bool,
) -> tuple[_Run, _Loop]:
    """The run's constants and the loop at step 0: fresh parameters from ``key``."""
    key = key if _is_typed_key(key) else jax.random.wrap_key_data(key)
    k_init, k_data = jax.random.split(key)
    total = config.total_steps(len(train_data.lengths))
    optimizer = make_optimizer(config, total)
    params = model.init(k_init)
    shardings = _data_parallel(devices, min(config.batch_size, len(train_data)))
    if shardings[0] is not None:
        _log(verbose, f"data parallel over {shardings[0].mesh.size} devices")
    run = _Run(
        model=model,
        config=config,
        train_data=train_data,
        test_data=test_data,
        lengths=np.asarray(train_data.lengths),
        total=total,
        step_fn=_make_step(model, optimizer),
        key_data=np.asarray(jax.random.key_data(key)),
        data_key=k_data,
        vocab=tuple(str(w) for w in getattr(train_data, "vocab", ())),
        shardings=shardings,
        verbose=verbose,
    )
    history: dict[str, list] = {"step": [], "loss": [], "accuracy": []}
    if test_data is not None:
        history.update(eval_step=[], test_loss=[], test_accuracy=[])
    loop = _Loop(0, params, optimizer.init(params), history, [], 0, time.perf_counter())
    return run, loop


def _resume(run: _Run, loop: _Loop) -> _Loop:
    """The loop where the checkpoint in ``run.checkpoint_dir`` left it, if there is one."""
    where = run.checkpoint_dir
    if not os.path.isfile(os.path.join(where, META_FILE)):
        _log(run.verbose, f"no checkpoint to resume in {where}; starting from step 0")
        return loop
    state = load_train_state(where, run.model, loop.params, loop.opt_state)
    check_resumable(
        where,
        state,
        config=run.config,
        key_data=run.key_data,
        total=run.total,
        history=loop.history,
        vocab=run.vocab,
    )
    saved = load_checkpoint(where)
    if saved.model != run.model:
        raise ValueError(
            f"{os.path.join(where, META_FILE)}: field 'model' {describe_model(saved.model)} "
            f"differs from this run's {describe_model(run.model)}"
        )
    _log(run.verbose, f"resuming from step {state.step}/{run.total} ({where})")
    return loop._replace(
        step=state.step,
        params=saved.params,
        opt_state=state.opt_state,
        history=state.history,
        pending=[np.append(p, np.float32(1.0)) for p in state.pending],
    )


def _place(run: _Run, loop: _Loop) -> _Loop:
    """Parameters and optimiser state replicated over the devices (data parallel)."""
    replicated = run.shardings[1]
    if replicated is None:
        return loop
    params, opt_state = jax.device_put((loop.params, loop.opt_state), replicated)
    return loop._replace(params=params, opt_state=opt_state)


def _run_steps(run: _Run, loop: _Loop) -> _Loop:
    """Steps ``loop.step + 1 .. run.total``, each followed by what is due after it: a
    log line, an evaluation, a checkpoint."""
    config, rng = run.config, _checks.host_rng(run.data_key)
    if loop.step < run.total:
        _log(run.verbose, "compiling the training step...")  # the first step waits for it
    loop = loop._replace(tokens=0, clock=time.perf_counter())
    for step, index in enumerate(_train_indices(run.lengths, config.batch_size, run.total, rng), 1):
        if step <= loop.step:
            continue  # replay the batch order of the interrupted run
        loop = _step(run, loop, index)
        if step % config.log_every == 0 or step == run.total:
            loop = _log_progress(run, loop)
        if run.test_data is not None and config.eval_every and step % config.eval_every == 0:
            loop = _evaluate(run, loop)
        if run.save_every and step % run.save_every == 0 and step < run.total:
            loop = _save(run, loop)
    return loop


def _step(run: _Run, loop: _Loop, index: np.ndarray) -> _Loop:
    """One optimiser step on the training rows ``index``."""
    batch = pad_batch(run.train_data, index, min(run.config.batch_size, len(run.lengths)))
    if run.shardings[0] is not None:
        batch = jax.device_put(batch, run.shardings[0])
    params, opt_state, out = run.step_fn(loop.params, loop.opt_state, batch)
    loop.pending.append(out)  # fetched lazily: the host does not wait on every step
    return loop._replace(
        step=loop.step + 1,
        params=params,
        opt_state=opt_state,
        tokens=loop.tokens + int(run.lengths[index].sum()),
    )


def _flush(run: _Run, loop: _Loop) -> tuple[_Loop, np.ndarray]:
    """Fetch the pending step results, ``(k, 3)``; raise if any step went non-finite."""
    values = np.asarray(jax.device_get(loop.pending), np.float32).reshape(-1, 3)
    bad = np.flatnonzero(values[:, 2] == 0)
    if bad.size:
        first = loop.step - len(loop.pending) + 1 + int(bad[0])
        raise _diverged(run.config, first, float(values[bad[0], 0]))
    return loop._replace(pending=list(values)), values


def _log_progress(run: _Run, loop: _Loop) -> _Loop:
    """Record the mean loss and accuracy since the last log line, and print them."""
    loop, values = _flush(run, loop)
    losses, accs = values[:, 0], values[:, 1]
    now = time.perf_counter()
    rate = loop.tokens / max(now - loop.clock, 1e-9)  # since the last line (incl. compiling)
    _log(
        run.verbose,
        f"step {loop.step:>6}/{run.total}  loss {losses.mean():.4f}  "
        f"accuracy {accs.mean():.4f}  {rate:,.0f} tokens/s",
    )
    history = _append(
        loop.history,
        step=loop.step,
        loss=float(losses.mean()),
        accuracy=float(accs.mean()),
    )
    return loop._replace(history=history, pending=[], tokens=0, clock=now)


def _evaluate(run: _Run, loop: _Loop) -> _Loop:
    """Evaluate on the test data and record it in the history."""
    loop, _ = _flush(run, loop)
    result = evaluate(run.model, loop.params, run.test_data, run.config.eval_batch_size)
    _log(
        run.verbose,
        f"  eval @ {loop.step}: test loss {result['loss']:.4f}  "
        f"test accuracy {result['accuracy']:.4f}",
    )
    history = _append(
        loop.history,
        eval_step=loop.step,
        test_loss=result["loss"],
        test_accuracy=result["accuracy"],
    )
    return loop._replace(history=history)


def _snapshot(run: _Run, loop: _Loop) -> tuple[_Loop, TrainState]:
    """The ``TrainState`` to resume from after ``loop.step`` steps."""
    loop, values = _flush(run, loop)
    state = TrainState(
        step=loop.step,
        total_steps=run.total,
        opt_state=loop.opt_state,
        key_data=run.key_data,
        history=json.loads(json.dumps(loop.history)),
        pending=values[:, :2].copy(),
    )
    return loop, state


def _save(run: _Run, loop: _Loop) -> _Loop:
    """A checkpoint in ``run.checkpoint_dir``, with what is needed to resume."""
    loop, state = _snapshot(run, loop)
    save_checkpoint(
        run.checkpoint_dir,
        run.model,
        loop.params,
        vocab=run.vocab,
        config=run.config,
        metadata=dict(run.metadata or {}),
        train_state=state,
    )
    _log(run.verbose, f"  checkpoint @ {loop.step}: {run.checkpoint_dir}")
    return loop


def _finish(run: _Run, loop: _Loop) -> TrainResult:
    """Check the last steps, evaluate at the end if that is not done yet, and return."""
    loop, _ = _flush(run, loop)
    evals = loop.history.get("eval_step")
    if run.test_data is not None and (not evals or evals[-1] != run.total):
        loop = _evaluate(run, loop)
    loop, state = _snapshot(run, loop)
    return TrainResult(params=loop.params, history=loop.history, state=state)


def _append(history: dict[str, list], **values: Any) -> dict[str, list]:
    """``history``, with each of ``values`` appended to its list."""
    for name, value in values.items():
        history[name].append(value)
    return history


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
