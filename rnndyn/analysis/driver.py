"""``analyze``: reverse engineer a trained classifier, as a list of named stages."""

from __future__ import annotations

import dataclasses
import os
from concurrent.futures import ThreadPoolExecutor, wait
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from rnndyn import _blas, _checks
from rnndyn import words as wd
from rnndyn.analysis._common import Log, same_prediction, token_counts
from rnndyn.analysis.baseline import bag_of_words
from rnndyn.analysis.caveats import detect
from rnndyn.analysis.context import contextual_processing
from rnndyn.analysis.fidelity import fidelity
from rnndyn.analysis.geometry import geometry
from rnndyn.analysis.linear_rnn import train_linear_rnn
from rnndyn.analysis.linearized import linearized, linearized_logits, select_points
from rnndyn.analysis.network import run_network
from rnndyn.analysis.points import search_slow_points
from rnndyn.analysis.reference import choose_reference, linearise_reference
from rnndyn.analysis.result import Analysis
from rnndyn.analysis.spectra import spectra
from rnndyn.analysis.word_effects import word_effects
from rnndyn.analysis.word_inputs import word_input_fixed_points
from rnndyn.checkpoint import Checkpoint, describe_model, load_checkpoint
from rnndyn.config import AnalysisConfig, replace_config
from rnndyn.data.dataset import check_dataset
from rnndyn.linearize import Linearization, linearization
from rnndyn.models import Classifier

__all__ = ["SELECTION_EXAMPLES", "analyze"]

#: Runs a stage beside those after it (the bag of words beside the slow-point search, the
#: word-input searches beside the linearised models): each compiled stage keeps about one
#: core busy, and XLA runs the programs of two threads at once. The results are the same.
_BESIDE = ThreadPoolExecutor(max_workers=2, thread_name_prefix="rnndyn-analyze")


def _beside(fn, *args, **kwargs):
    """``fn(*args, **kwargs)`` on ``_BESIDE`` under the caller's thread-local JAX settings
    (``jax.enable_x64``, ``jax.default_device``), which a new thread would not see."""
    x64, device = jax.config.jax_enable_x64, jax.config.jax_default_device

    def call():
        with jax.enable_x64(x64), jax.default_device(device):
            return fn(*args, **kwargs)

    return _BESIDE.submit(call)


#: Examples (of ``train_data``) on which the faithful reference is chosen and the
#: readout recentred.
SELECTION_EXAMPLES = 256


@_blas.single_threaded()  # LAPACK on small matrices: one thread (rnndyn/_blas.py)
def analyze(
    model: Classifier | Checkpoint | str | os.PathLike,
    data: Any,
    params: Any = None,
    *,
    key: jax.Array | None = None,
    train_data: Any = None,
    config: AnalysisConfig | dict | None = None,
    verbose: bool = True,
    **settings: Any,
) -> Analysis:
    """Reverse engineer a trained classifier on a dataset.

    Stages: run the network (visited states, accuracy); fit the bag-of-words baseline on
    the training data; search slow points at ``x*`` from visited states and certify which
    are roots; linearise there (spectra); choose the reference point; measure the
    manifold's dimension and geometry; word effects at the reference point and along the
    trajectory; the linearised classifiers' accuracy; slow points under word inputs; the
    dimension predicted from word counts. Where an assumption fails the result carries a
    ``Caveat`` instead of a silent number.

    Args:
      model: a ``Classifier`` (then ``params`` is needed), a ``Checkpoint``, or a
        checkpoint directory.
      data: a ``rnndyn.data.Dataset`` to analyse (e.g. the test set).
      params: the classifier's parameters (defaults to the checkpoint's).
      key: PRNG key for every random choice (default: ``config.key``).
      train_data: the training set: the bag of words, the dimension prediction, the mean
        embedding and the held-out selection examples come from it (default: ``data``,
        with the bag of words fit on the examples not analysed).
      config: an ``AnalysisConfig`` (or its fields as a dict, e.g. ``a.settings`` of an
        earlier analysis); ``settings`` override single fields (``num_initial=512``).
      verbose: progress lines on stderr.

    Returns:
      ``Analysis``; ``Analysis.settings`` records every setting and the key.

    Raises:
      ValueError: bad arguments or data that do not fit the model.
    """
    config, key = _resolve_config(config, settings, key)
    log = Log(verbose)
    model, params = _resolve_model(model, params)
    _checks.check_finite_params("params", jax.device_get(params))
    train_data = _check_inputs(model, data, train_data, config)
    k_sub, k_init, k_pca, k_words, k_linear, k_context = jax.random.split(key, 6)
    index, sel_index, rng = _subsets(data, train_data, config.max_examples, k_sub)
    batch = min(config.batch_size, len(index))
    run = run_network(model, params, data, index, batch_size=batch, rng=rng)
    log(f"{len(index)} examples, {len(run.visited)} visited states, acc {run.accuracy:.4f}")
    baseline = _beside(bag_of_words, model, train_data, data, index, steps=config.bow_steps)
    x_star = _input_star(model, params, train_data, config.input_star)
    tol = 0.5e-8 * model.cell.state_size if config.tol is None else config.tol
    points = search_slow_points(
        model, params, run.visited, x_star, key=k_init, num_initial=config.num_initial,
        noise=config.noise, tol=tol, max_steps=config.max_steps,
        learning_rate=config.learning_rate, merge_distance=config.merge_distance,
        outlier_factor=config.outlier_factor, roots_only=config.roots_only, verbose=verbose,
    )  # fmt: skip
    log(f"{points.describe()}; {len(points.kept)} analysed")
    vocab = tuple(getattr(train_data, "vocab", ()))
    lin = _linearise(model, params, points.kept, x_star)
    spec = spectra(lin, marginal_band=config.marginal_band)
    sel_full = run_network(model, params, train_data, sel_index, batch_size=batch, rng=rng).logits
    ref = _reference(model, params, train_data, sel_index, sel_full, lin, spec, config)
    if ref is not None:
        log(f"reference point {ref.index}: {ref.reason}")
    baseline = baseline.result()
    # Beside the stages from here on, none of which runs batched LAPACK in XLA: two
    # XLA:CPU programs in batched LAPACK at once (here the word inputs' LU solves and the
    # eigendecompositions of spectra or reference) can park every pool thread on 2 cores
    # and hang (fixed_points/run.py; seen in CI when this started right after the search).
    inputs = _beside(_word_inputs, model, params, points, baseline, vocab, k_words, tol, config)
    try:
        geo = geometry(
            model, params, np.asarray(points.kept.points), spec, ref, run.visited, key=k_pca,
            threshold=config.threshold, manifold_dim=config.manifold_dim,
            neighbours=config.neighbours,
        )  # fmt: skip
        length = max(1, int(np.median(np.asarray(train_data.lengths))))
        effects = word_effects(model, params, ref, geo, baseline, np.asarray(x_star), vocab=vocab,
                               length=length)  # fmt: skip
        log(f"manifold dimension {geo.manifold_dimension} ({geo.dimension_rule})")
        lin_acc = linearized(
            model, params, data, lin, None if ref is None else ref.index, run, x_star,
            batch_size=batch, selection=(train_data, sel_index, sel_full),
        )  # fmt: skip
        fid = fidelity(model, params, data, index, lin, x_star, rng=rng, batch_size=batch)
        log(f"one-step linearisation error: median {fid.one_step_median:.3f}")
        linear = None
        if config.linear_steps:
            linear = train_linear_rnn(model, train_data, data, index, key=k_linear,
                                      steps=config.linear_steps, batch_size=batch)  # fmt: skip
            log(f"linear RNN trained directly: accuracy {linear.accuracy:.4f}")
        context = None
        if config.modifiers:
            context = contextual_processing(
                model, params, data, index, train_data, run, points.kept.points, spec, ref, geo,
                baseline, x_star,
                key=k_context, candidates=config.modifiers, bow_steps=config.bow_steps,
            )  # fmt: skip
            if context is not None:
                log(f"contextual processing: {len(context.words)} words screened")
    finally:  # a stage that raised must not leave the search running beside what follows
        wait([inputs])
    inputs = inputs.result()
    prediction = wd.predict_dimension(
        train_data.tokens, train_data.labels, model.vocab_size, lengths=train_data.lengths,
        num_classes=model.num_classes, multilabel=model.multilabel, threshold=config.threshold,
    )  # fmt: skip
    result = Analysis(
        points=points, spectra=spec, reference=ref, geometry=geo, baseline=baseline,
        word_effects=effects, linearized=lin_acc, word_inputs=inputs, prediction=prediction,
        fidelity=fid, linear_rnn=linear, contextual=context,
        seconds=log.seconds, model=_describe(model),
        dataset=str(getattr(data, "name", "") or ""), settings=config,
    )  # fmt: skip
    result = dataclasses.replace(result, caveats=detect(result))
    log("done")
    return result


# ------------------------------------------------------------------------ stages


def _linearise(model, params, kept, x_star) -> Linearization:
    """Jacobians at the analysed points (an empty ``Linearization`` without any)."""
    s, m = model.cell.state_size, model.embed_size
    if len(kept) == 0:
        z = np.zeros
        return Linearization(z((0, s)), z((0, m)), z((0, s, s)), z((0, s, m)))
    return linearization(model.cell, params["cell"], jnp.asarray(kept.points),
                         jnp.asarray(kept.inputs))  # fmt: skip


def _reference(model, params, train_data, sel_index, sel_full, lin, spec, config):
    """The reference point with its linearisation, or ``None`` without points."""
    if len(lin.points) == 0:
        return None

    def agreement(i: int) -> float:
        one = select_points(lin, [i])
        lg = linearized_logits(model, params, train_data, lin=one, switch="initial",
                               index=sel_index, batch_size=min(256, len(sel_index)))  # fmt: skip
        pred = np.asarray(model.predict_logits(jnp.asarray(lg)))
        return same_prediction(pred, np.asarray(model.predict_logits(jnp.asarray(sel_full))))

    ref = choose_reference(
        np.asarray(lin.points), spec.spectral_radius, np.asarray(model.cell.initial_state()),
        band=config.marginal_band, rule=config.reference, score=agreement,
    )  # fmt: skip
    return linearise_reference(ref, lin)


def _word_inputs(model, params, points, baseline, vocab, key, tol, config):
    """Slow points under word inputs (``None`` when skipped or without slow points)."""
    if not config.word_inputs or len(points.kept) == 0:
        return None
    # The hybrid search converges within a few hundred steps where a root exists; a cap
    # keeps words without one (inputs that saturate the state) from costing 5000.
    return word_input_fixed_points(
        model, params, np.asarray(points.kept.points), baseline.weights, baseline.counts,
        vocab, key=key, num_words=config.word_inputs, tol=tol,
        max_steps=min(config.max_steps, 1000), learning_rate=config.learning_rate,
    )  # fmt: skip


# ------------------------------------------------------------------------ settings


def _resolve_config(config: Any, settings: dict, key: Any) -> tuple[AnalysisConfig, jax.Array]:
    """The config with ``settings`` applied and the key recorded in it."""
    if config is None:
        config = AnalysisConfig()
    elif isinstance(config, dict):
        config = replace_config(AnalysisConfig(), config, "config")
    elif not isinstance(config, AnalysisConfig):
        raise ValueError(
            f"config must be an AnalysisConfig or a dict of its fields, got {type(config).__name__}"
        )
    config = replace_config(config, settings, "analyze")
    if key is None:
        if config.key is None:
            raise ValueError("key is required (a JAX PRNG key such as jax.random.key(0))")
        key = jax.random.wrap_key_data(np.asarray(config.key, np.uint32))
    _checks.check_key("key", key)
    if not jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key):
        key = jax.random.wrap_key_data(key)
    data = tuple(int(v) for v in np.asarray(jax.random.key_data(key)).ravel())
    config = dataclasses.replace(config, key=data)
    return config, key


def _check_inputs(model, data, train_data, config):
    check_dataset(model, data, "data")
    train_data = data if train_data is None else train_data
    if train_data is not data:
        check_dataset(model, train_data, "train_data")
    return train_data


def _subsets(data, train_data, max_examples, key):
    """Scored examples of ``data``, held-out selection examples of ``train_data`` (not
    among the scored ones when they are the same dataset, if enough remain), and a host
    RNG for state subsampling."""
    k_index, k_sel, k_rng = jax.random.split(key, 3)
    n = len(data.lengths)
    index = np.arange(n)
    if max_examples is not None and n > max_examples:
        index = np.sort(np.asarray(jax.random.permutation(k_index, n)[:max_examples]))
    pool = np.arange(len(train_data.lengths))
    if train_data is data and len(pool) - len(index) >= 16:
        pool = np.setdiff1d(pool, index)
    pick = np.asarray(jax.random.permutation(k_sel, len(pool)))[:SELECTION_EXAMPLES]
    return index, np.sort(pool[pick]), _checks.host_rng(k_rng)


def _input_star(model, params, train_data, input_star) -> jax.Array:
    if input_star == "zero":
        return jnp.zeros((model.embed_size,), jnp.float32)
    counts = token_counts(train_data.tokens, train_data.lengths, model.vocab_size)
    emb = np.asarray(params["embedding"], np.float64)
    return jnp.asarray(counts @ emb / max(counts.sum(), 1.0), jnp.float32)


def _resolve_model(model: Any, params: Any) -> tuple[Classifier, Any]:
    if isinstance(model, (str, os.PathLike)):
        model = load_checkpoint(model)
    if isinstance(model, Checkpoint):
        return model.model, model.params if params is None else params
    if not isinstance(model, Classifier):
        raise ValueError(
            "model must be an rnndyn.Classifier (with params), a Checkpoint or a checkpoint "
            f"directory, got {type(model).__name__}"
        )
    if params is None:
        raise ValueError("params is required when model is a Classifier")
    return model, params


def _describe(model: Classifier) -> dict:
    try:
        return describe_model(model)
    except ValueError:  # a wrapped cell (from_flax / from_function): describe it by size
        return {
            "cell": type(model.cell).__name__,
            "state_size": int(model.cell.state_size),
            "vocab_size": model.vocab_size,
            "embed_size": model.embed_size,
            "num_classes": model.num_classes,
            "multilabel": model.multilabel,
        }
