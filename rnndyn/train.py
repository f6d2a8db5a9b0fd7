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
import math
import os
import sys
import time
from collections.abc import Iterator
from typing import Any

import flax.serialization
import jax
import jax.numpy as jnp
import numpy as np
import optax

from rnndyn import _checks
from rnndyn.models import Classifier, cell_name, make_cell

Array = jax.Array
Params = Any

__all__ = [
    "Checkpoint",
    "TrainConfig",
    "TrainResult",
    "evaluate",
    "load_checkpoint",
    "make_optimizer",
    "save_checkpoint",
    "train",
]

#: Batches are padded in time to a multiple of this, so jit compiles a few shapes only.
TIME_BUCKET = 32

#: Length bucketing sorts examples within chunks of this many batches.
BUCKET_BATCHES = 50

_SCHEDULES = ("constant", "cosine", "linear")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings (no seed: pass a PRNG key to ``train``).

    Attributes:
      steps: number of optimiser steps; ignored when ``epochs`` is set.
      epochs: passes over the training set (may be fractional); overrides ``steps``.
      batch_size: examples per step.
      learning_rate: peak learning rate of Adam.
      warmup_steps: linear warm-up from 0 to ``learning_rate``.
      schedule: decay after warm-up: ``constant``, ``cosine`` or ``linear``.
      final_lr_fraction: the decayed learning rate ends at this fraction of the peak.
      clip_norm: clip gradients to this global norm (``None``: no clipping).
      l2: L2 penalty ``l2/2 * ||w||^2`` on weight matrices (not biases), added to the
        gradient before Adam.
      embedding_l2: extra L2 penalty on the embedding alone. It shrinks the embeddings
        of words that carry no evidence towards zero, which keeps word inputs small and
        the trained dynamics close to their linearisation (see docs/analysis.md).
      eval_every: evaluate on the test set every this many steps (0: only at the end).
      log_every: print a progress line every this many steps.
      eval_batch_size: batch size for evaluation.
    """

    steps: int = 500
    epochs: float | None = None
    batch_size: int = 64
    learning_rate: float = 1e-2
    warmup_steps: int = 20
    schedule: str = "cosine"
    final_lr_fraction: float = 0.1
    clip_norm: float | None = 1.0
    l2: float = 0.0
    embedding_l2: float = 0.0
    eval_every: int = 0
    log_every: int = 50
    eval_batch_size: int = 256

    def __post_init__(self):
        _checks.check_int("steps", self.steps, minimum=1)
        if self.epochs is not None:
            _checks.check_positive("epochs", self.epochs)
        _checks.check_int("batch_size", self.batch_size, minimum=1)
        _checks.check_positive("learning_rate", self.learning_rate)
        _checks.check_int("warmup_steps", self.warmup_steps)
        if self.schedule not in _SCHEDULES:
            raise ValueError(f"schedule must be one of {_SCHEDULES}, got {self.schedule!r}")
        _checks.check_positive("final_lr_fraction", self.final_lr_fraction, allow_zero=True)
        if self.clip_norm is not None:
            _checks.check_positive("clip_norm", self.clip_norm)
        _checks.check_positive("l2", self.l2, allow_zero=True)
        _checks.check_positive("embedding_l2", self.embedding_l2, allow_zero=True)
        _checks.check_int("eval_every", self.eval_every)
        _checks.check_int("log_every", self.log_every, minimum=1)
        _checks.check_int("eval_batch_size", self.eval_batch_size, minimum=1)

    def total_steps(self, num_examples: int) -> int:
        """Optimiser steps for a training set of ``num_examples``."""
        if self.epochs is None:
            return self.steps
        per_epoch = max(1, num_examples // self.batch_size)
        return max(1, math.ceil(self.epochs * per_epoch))


@dataclasses.dataclass(frozen=True)
class TrainResult:
    """Trained ``params`` and ``history``: a dict of lists (JSON-friendly).

    ``history`` keys: ``step``, ``loss``, ``accuracy`` (training batches, averaged since
    the previous log line), and ``eval_step``, ``test_loss``, ``test_accuracy`` when
    test data were given.
    """

    params: Params
    history: dict[str, list]


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


def _check_data(model: Classifier, data: Any, name: str) -> None:
    for field in ("tokens", "lengths", "labels"):
        if not hasattr(data, field):
            raise ValueError(
                f"{name} must be an rnndyn.data.Dataset (fields tokens, lengths, labels), "
                f"got {type(data).__name__} without {field!r}"
            )
    tokens = np.asarray(data.tokens)
    if tokens.ndim != 2 or tokens.shape[0] == 0:
        raise ValueError(
            f"{name}.tokens must have shape (examples, time) with examples > 0, got {tokens.shape}"
        )
    if np.shape(data.lengths) != tokens.shape[:1]:
        raise ValueError(
            f"{name}.lengths must have shape ({tokens.shape[0]},), got {np.shape(data.lengths)}"
        )
    if tokens.max() >= model.vocab_size or tokens.min() < 0:
        raise ValueError(
            f"{name}.tokens hold ids in [{tokens.min()}, {tokens.max()}] but the model has "
            f"vocab_size {model.vocab_size}"
        )
    if bool(getattr(data, "multilabel", False)) != model.multilabel:
        raise ValueError(
            f"{name}.multilabel is {getattr(data, 'multilabel', False)} but the model has "
            f"multilabel={model.multilabel}"
        )
    model.check_labels(np.asarray(data.labels), tokens.shape[0])


def _batch(data: Any, index: np.ndarray, batch_size: int) -> dict[str, np.ndarray]:
    """Rows ``index`` as a batch of exactly ``batch_size`` rows (fixed shapes for jit).

    Time is cut to the longest sequence, rounded up to ``TIME_BUCKET``; missing rows are
    padding with ``weight`` 0 and an all-False mask.
    """
    lengths = np.asarray(data.lengths)[index]
    full_t = np.shape(data.tokens)[1]
    t = int(min(full_t, max(1, math.ceil(max(int(lengths.max()), 1) / TIME_BUCKET) * TIME_BUCKET)))
    tokens = np.zeros((batch_size, t), np.int32)
    tokens[: len(index)] = np.asarray(data.tokens)[index, :t]
    mask = np.zeros((batch_size, t), bool)
    mask[: len(index)] = np.arange(t)[None, :] < lengths[:, None]
    labels_in = np.asarray(data.labels)[index]
    labels = np.zeros((batch_size,) + labels_in.shape[1:], np.int32)
    labels[: len(index)] = labels_in
    weight = np.zeros((batch_size,), np.float32)
    weight[: len(index)] = 1.0
    return {"tokens": tokens, "mask": mask, "labels": labels, "weight": weight}


def _train_batches(
    data: Any, batch_size: int, steps: int, rng: np.random.Generator
) -> Iterator[dict[str, np.ndarray]]:
    """``steps`` shuffled batches; each epoch is a fresh permutation, the tail is dropped.

    Within chunks of ``BUCKET_BATCHES`` batches, examples are sorted by length (less
    padding, so faster steps), then the batch order is shuffled.
    """
    lengths = np.asarray(data.lengths)
    n = len(lengths)
    batch_size = min(batch_size, n)
    chunk = batch_size * BUCKET_BATCHES
    done = 0
    while True:
        order = rng.permutation(n)
        order = np.concatenate(
            [
                p[np.argsort(lengths[p], kind="stable")]
                for p in np.split(order, range(chunk, n, chunk))
            ]
        )
        starts = rng.permutation(np.arange(0, n - batch_size + 1, batch_size))
        for start in starts:
            if done == steps:
                return
            yield _batch(data, order[start : start + batch_size], batch_size)
            done += 1


def _weighted_metrics(model: Classifier, params: Params, batch: dict) -> tuple[Array, Array]:
    logits = model.apply(params, batch["tokens"], batch["mask"])
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
        return optax.apply_updates(params, updates), opt_state, loss, acc

    return jax.jit(step)


def evaluate(model: Classifier, params: Params, data: Any, batch_size: int = 256) -> dict:
    """Mean loss and accuracy over every example of ``data``.

    ``accuracy`` is the fraction of examples classified correctly; for multi-label data
    it is the mean per-label accuracy (the fraction of all example-label pairs right).
    """
    _checks.check_int("batch_size", batch_size, minimum=1)
    _check_data(model, data, "data")
    n = len(data.lengths)
    batch_size = min(batch_size, n)
    loss_sum = acc_sum = 0.0
    for start in range(0, n, batch_size):
        index = np.arange(start, min(start + batch_size, n))
        loss, acc = _metrics_jit(model, params, _batch(data, index, batch_size))
        loss_sum += float(loss) * len(index)
        acc_sum += float(acc) * len(index)
    return {"loss": loss_sum / n, "accuracy": acc_sum / n}


def _log(verbose: bool, message: str) -> None:
    if verbose:
        print(message, file=sys.stderr, flush=True)


def train(
    model: Classifier,
    train_data: Any,
    test_data: Any = None,
    *,
    key: Array,
    config: TrainConfig = TrainConfig(),
    verbose: bool = True,
) -> TrainResult:
    """Train ``model`` from a fresh initialisation drawn from ``key``.

    Args:
      model: the classifier to train.
      train_data: a ``rnndyn.data.Dataset`` (or anything with its fields).
      test_data: optional dataset evaluated every ``config.eval_every`` steps and at the end.
      key: PRNG key; it alone sets the initialisation and the batch order.
      config: optimisation settings.
      verbose: print progress lines (step, loss, accuracy, tokens/s) to stderr.

    Returns:
      ``TrainResult(params, history)``.
    """
    if not isinstance(model, Classifier):
        raise ValueError(f"model must be an rnndyn.models.Classifier, got {type(model).__name__}")
    if not isinstance(config, TrainConfig):
        raise ValueError(f"config must be a TrainConfig, got {type(config).__name__}")
    _check_data(model, train_data, "train_data")
    if test_data is not None:
        _check_data(model, test_data, "test_data")
    k_init, k_data = jax.random.split(key)
    # Batch order from a numpy generator seeded by the key: host-side and reproducible.
    seed = np.asarray(jax.random.key_data(k_data)).ravel().astype(np.uint32)
    rng = np.random.default_rng(seed)
    total = config.total_steps(len(train_data.lengths))
    optimizer = make_optimizer(config, total)
    params = model.init(k_init)
    opt_state = optimizer.init(params)
    step_fn = _make_step(model, optimizer)

    history: dict[str, list] = {"step": [], "loss": [], "accuracy": []}
    if test_data is not None:
        history.update(eval_step=[], test_loss=[], test_accuracy=[])
    pending: list[tuple[Array, Array]] = []
    tokens_seen, t_last = 0, time.perf_counter()

    def run_eval(step: int) -> None:
        result = evaluate(model, params, test_data, config.eval_batch_size)
        history["eval_step"].append(step)
        history["test_loss"].append(result["loss"])
        history["test_accuracy"].append(result["accuracy"])
        _log(
            verbose,
            f"  eval @ {step}: test loss {result['loss']:.4f}  "
            f"test accuracy {result['accuracy']:.4f}",
        )

    for i, batch in enumerate(_train_batches(train_data, config.batch_size, total, rng), 1):
        params, opt_state, loss, acc = step_fn(params, opt_state, batch)
        pending.append((loss, acc))
        tokens_seen += int(batch["mask"].sum())
        if i % config.log_every == 0 or i == total:
            # Fetch losses only when logging, so the host does not wait on every step.
            losses, accs = np.asarray(jax.device_get(pending)).T
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
    if test_data is not None and (not history["eval_step"] or history["eval_step"][-1] != total):
        run_eval(total)
    return TrainResult(params=params, history=history)


# --- checkpoints -------------------------------------------------------------------

_PARAMS_FILE = "params.msgpack"
_META_FILE = "checkpoint.json"
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


def model_from_description(desc: dict) -> Classifier:
    """Rebuild a ``Classifier`` from ``describe_model``'s output."""
    try:
        return Classifier(
            cell=make_cell(desc["cell"], int(desc["hidden_size"])),
            vocab_size=int(desc["vocab_size"]),
            embed_size=int(desc["embed_size"]),
            num_classes=int(desc["num_classes"]),
            multilabel=bool(desc.get("multilabel", False)),
        )
    except KeyError as err:
        raise ValueError(f"model description lacks {err}; got keys {sorted(desc)}") from err


def save_checkpoint(
    path: str | os.PathLike,
    model: Classifier,
    params: Params,
    *,
    vocab: Any,
    config: TrainConfig | None,
    metadata: dict | None = None,
) -> str:
    """Write ``params.msgpack`` (flax msgpack) and ``checkpoint.json`` into directory ``path``.

    The JSON holds the model description (cell name, hidden size, vocab/embed sizes,
    classes), the vocabulary, the training config and ``metadata`` (must be
    JSON-serialisable), so ``load_checkpoint(path)`` needs nothing else. Returns ``path``.
    """
    desc = describe_model(model)
    vocab = tuple(str(w) for w in vocab)
    if len(vocab) != model.vocab_size:
        raise ValueError(
            f"vocab has {len(vocab)} words but the model has vocab_size {model.vocab_size}"
        )
    _check_params(model, params)
    meta = {
        "format": _FORMAT,
        "model": desc,
        "vocab": list(vocab),
        "config": None if config is None else dataclasses.asdict(config),
        "metadata": dict(metadata or {}),
    }
    text = json.dumps(meta, indent=1)  # fails early on non-JSON metadata, before writing
    os.makedirs(path, exist_ok=True)
    with open(os.path.join(path, _PARAMS_FILE), "wb") as f:
        f.write(flax.serialization.to_bytes(jax.device_get(params)))
    with open(os.path.join(path, _META_FILE), "w", encoding="utf-8") as f:
        f.write(text)
    return os.fspath(path)


def _check_params(model: Classifier, params: Params) -> None:
    expected = jax.eval_shape(model.init, jax.random.key(0))
    want = jax.tree_util.tree_structure(expected)
    got = jax.tree_util.tree_structure(params)
    if want != got:
        raise ValueError(f"params do not fit the model: expected structure {want}, got {got}")
    for (where, e), p in zip(
        jax.tree_util.tree_leaves_with_path(expected),
        jax.tree_util.tree_leaves(params),
        strict=True,
    ):
        if tuple(np.shape(p)) != tuple(e.shape):
            raise ValueError(
                f"params{jax.tree_util.keystr(where)} has shape {tuple(np.shape(p))}, "
                f"expected {tuple(e.shape)}"
            )


def load_checkpoint(path: str | os.PathLike) -> Checkpoint:
    """Restore a checkpoint written by ``save_checkpoint``."""
    meta_path = os.path.join(path, _META_FILE)
    params_path = os.path.join(path, _PARAMS_FILE)
    for p in (meta_path, params_path):
        if not os.path.isfile(p):
            raise ValueError(f"{os.fspath(path)!r} is not a checkpoint: {p} is missing")
    with open(meta_path, encoding="utf-8") as f:
        meta = json.load(f)
    model = model_from_description(meta["model"])
    with open(params_path, "rb") as f:
        raw = flax.serialization.msgpack_restore(f.read())
    params = jax.tree_util.tree_map(jnp.asarray, raw)
    _check_params(model, params)
    config = meta.get("config")
    if config is not None:
        known = {f.name for f in dataclasses.fields(TrainConfig)}
        config = TrainConfig(**{k: v for k, v in config.items() if k in known})
    return Checkpoint(
        model=model,
        params=params,
        vocab=tuple(meta["vocab"]),
        config=config,
        metadata=meta.get("metadata") or {},
    )
