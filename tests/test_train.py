"""Tests for rnndyn.train and rnndyn.checkpoint: training, evaluation, checkpoints."""

import dataclasses
import json

import jax
import numpy as np
import pytest

from rnndyn import cells
from rnndyn.checkpoint import load_checkpoint, save_checkpoint
from rnndyn.config import TrainConfig
from rnndyn.models import Classifier
from rnndyn.train import evaluate, make_optimizer, train


@dataclasses.dataclass(frozen=True)
class TinyData:
    """The fields of rnndyn.data.Dataset that training reads."""

    tokens: np.ndarray
    lengths: np.ndarray
    labels: np.ndarray
    vocab: tuple
    num_classes: int
    multilabel: bool = False

    def __len__(self):
        return len(self.lengths)


def tiny_sentiment(seed: int, n: int, length: int = 16, vocab: int = 16) -> TinyData:
    """Binary sentiment: ids 2-4 positive, 5-7 negative, the rest neutral; label = sign."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(length // 2, length + 1, n).astype(np.int32)
    tokens = np.zeros((n, length), np.int32)
    labels = np.zeros(n, np.int32)
    for i, size in enumerate(lengths):
        while True:
            t = rng.integers(2, vocab, size)
            score = np.sum((t >= 2) & (t < 5)) - np.sum((t >= 5) & (t < 8))
            if score:
                break
        tokens[i, :size] = t
        labels[i] = score > 0
    words = ("<pad>", "<unk>") + tuple(f"w{i}" for i in range(2, vocab))
    return TinyData(tokens, lengths, labels, words, 2)


def tiny_multilabel(seed: int, n: int, labels: int = 3, length: int = 10) -> TinyData:
    """Label k is on when word 2 + k occurs more often than word 2 + labels + k."""
    rng = np.random.default_rng(seed)
    vocab = 2 + 2 * labels + 2
    tokens = rng.integers(2, vocab, (n, length)).astype(np.int32)
    counts = np.stack([(tokens == w).sum(1) for w in range(2, 2 + 2 * labels)], axis=1)
    y = (counts[:, :labels] > counts[:, labels:]).astype(np.int32)
    words = ("<pad>", "<unk>") + tuple(f"w{i}" for i in range(2, vocab))
    return TinyData(tokens, np.full(n, length, np.int32), y, words, labels, multilabel=True)


def _sentiment_model(hidden=16):
    return Classifier(cells.GRU(hidden), vocab_size=16, embed_size=8, num_classes=2)


FAST = TrainConfig(steps=30, batch_size=32, learning_rate=1e-2, log_every=10)


@pytest.mark.slow
def test_train_is_reproducible_and_records_history():
    data = tiny_sentiment(0, 200)
    model = _sentiment_model()
    a = train(model, data, data, key=jax.random.key(0), config=FAST, verbose=False)
    b = train(model, data, data, key=jax.random.key(0), config=FAST, verbose=False)
    jax.tree_util.tree_map(np.testing.assert_array_equal, a.params, b.params)
    assert not np.array_equal(
        a.params["embedding"], model.init(jax.random.split(jax.random.key(0))[0])["embedding"]
    )  # trained away from the initialisation
    assert a.history["step"] == [10, 20, 30]
    assert a.history["eval_step"] == [30]
    # the recorded test accuracy is the trained params' accuracy, scored here in numpy
    logits, _ = _numpy_logits(model, a.params, data, one_by_one=False)
    assert a.history["test_accuracy"][0] == pytest.approx(
        np.mean(np.argmax(logits, 1) == data.labels), abs=1e-6
    )
    json.dumps(a.history)  # JSON-friendly


def test_verbose_prints_progress_to_stderr(capsys):
    data = tiny_sentiment(0, 64)
    config = TrainConfig(steps=4, batch_size=32, log_every=2, eval_every=2)
    train(_sentiment_model(), data, data, key=jax.random.key(0), config=config)
    err = capsys.readouterr().err
    assert "step      2/4" in err and "loss" in err and "tokens/s" in err
    assert "test accuracy" in err
    # the line saying the first step waits for the compiler comes before any step line
    lines = err.splitlines()
    assert lines[0] == "compiling the training step..."
    assert lines.index("compiling the training step...") < min(
        i for i, line in enumerate(lines) if line.startswith("step ")
    )
    train(_sentiment_model(), data, data, key=jax.random.key(0), config=config, verbose=False)
    assert capsys.readouterr().err == ""


def test_epochs_set_the_number_of_steps():
    assert TrainConfig(epochs=2, batch_size=32).total_steps(100) == 6
    assert TrainConfig(steps=7).total_steps(100) == 7


@pytest.mark.slow
def test_gru_learns_synthetic_sentiment():
    from rnndyn.data import synthetic

    train_data = synthetic.sentiment(jax.random.key(0), 2000)
    test_data = synthetic.sentiment(jax.random.key(1), 500)
    model = Classifier(cells.GRU(16), train_data.vocab_size, embed_size=8, num_classes=2)
    config = TrainConfig(steps=150, batch_size=64, learning_rate=1e-2)
    result = train(
        model, train_data, test_data, key=jax.random.key(0), config=config, verbose=False
    )
    assert result.history["test_accuracy"][-1] >= 0.95, result.history
    # the tiny in-test task also trains (no dependency on the generator's defaults)
    tiny = tiny_sentiment(0, 1000)
    result = train(_sentiment_model(), tiny, key=jax.random.key(0), config=config, verbose=False)
    assert evaluate(_sentiment_model(), result.params, tiny_sentiment(1, 300))["accuracy"] >= 0.95


def _numpy_logits(model, params, data, one_by_one=True):
    """Float64 logits of every example (one at a time and unpadded: no batching), and
    the mask."""
    mask = np.arange(data.tokens.shape[1])[None] < data.lengths[:, None]
    if not one_by_one:
        return np.asarray(model.apply(params, data.tokens, mask), np.float64), mask
    logits = [
        np.asarray(model.apply(params, data.tokens[i : i + 1, :n], mask[i : i + 1, :n]))[0]
        for i, n in enumerate(data.lengths)
    ]
    return np.asarray(logits, np.float64), mask


def test_evaluate_counts_every_example_once():
    data = tiny_sentiment(3, 70)  # 70 = 2 full batches of 32 + a padded remainder
    model = _sentiment_model()
    params = model.init(jax.random.key(0))
    got = evaluate(model, params, data, batch_size=32)
    # independent truth: each example on its own, cross-entropy and accuracy in numpy
    z, _ = _numpy_logits(model, params, data)
    log_p = z - z.max(1, keepdims=True)
    log_p = log_p - np.log(np.exp(log_p).sum(1, keepdims=True))
    np.testing.assert_allclose(got["loss"], -np.mean(log_p[np.arange(70), data.labels]), rtol=1e-5)
    np.testing.assert_allclose(got["accuracy"], np.mean(np.argmax(z, 1) == data.labels), atol=1e-6)


def test_multilabel_accuracy_is_mean_per_label():
    data = tiny_multilabel(0, 40)
    model = Classifier(cells.GRU(8), vocab_size=10, embed_size=4, num_classes=3, multilabel=True)
    params = model.init(jax.random.key(0))
    got = evaluate(model, params, data)
    z, _ = _numpy_logits(model, params, data)  # a label is predicted on where its logit > 0
    np.testing.assert_allclose(got["accuracy"], np.mean((z > 0) == data.labels), atol=1e-6)
    p = 1 / (1 + np.exp(-z))
    bce = -np.mean(data.labels * np.log(p) + (1 - data.labels) * np.log(1 - p))
    np.testing.assert_allclose(got["loss"], bce, rtol=1e-5)
    result = train(model, data, key=jax.random.key(0), config=FAST, verbose=False)
    assert np.isfinite(result.history["loss"]).all()


def test_checkpoint_round_trip(tmp_path):
    data = tiny_sentiment(0, 64)
    model = Classifier(cells.LSTM(6), vocab_size=16, embed_size=4, num_classes=2)
    config = TrainConfig(steps=3, batch_size=32)
    result = train(model, data, key=jax.random.key(0), config=config, verbose=False)
    path = save_checkpoint(
        tmp_path / "ckpt",
        model,
        result.params,
        vocab=data.vocab,
        config=config,
        metadata={"dataset": "tiny"},
    )
    ckpt = load_checkpoint(path)
    assert ckpt.model == model
    assert ckpt.vocab == data.vocab
    assert ckpt.config == config
    assert ckpt.metadata == {"dataset": "tiny"}
    mask = np.arange(16) < data.lengths[:, None]
    np.testing.assert_array_equal(
        ckpt.model.apply(ckpt.params, data.tokens, mask),
        model.apply(result.params, data.tokens, mask),
    )


def test_checkpoint_errors(tmp_path):
    model = _sentiment_model()
    params = model.init(jax.random.key(0))
    vocab = tiny_sentiment(0, 2).vocab
    with pytest.raises(ValueError, match="vocab has 3 words"):
        save_checkpoint(tmp_path / "a", model, params, vocab=("a", "b", "c"), config=None)
    other = Classifier(cells.GRU(5), vocab_size=16, embed_size=8, num_classes=2)
    with pytest.raises(ValueError, match="has shape"):
        save_checkpoint(tmp_path / "a", other, params, vocab=vocab, config=None)
    flax_model = Classifier(
        cells.from_function(lambda p, h, x: h, state_size=3),
        vocab_size=16,
        embed_size=8,
        num_classes=2,
    )
    with pytest.raises(ValueError, match="built-in cells"):
        save_checkpoint(tmp_path / "a", flax_model, params, vocab=vocab, config=None)
    with pytest.raises(ValueError, match="not a checkpoint"):
        load_checkpoint(tmp_path / "missing")


def test_train_rejects_bad_data():
    model = _sentiment_model()
    data = tiny_sentiment(0, 10)
    bad = dataclasses.replace(data, labels=data.labels + 5)
    with pytest.raises(ValueError, match="labels must lie in"):
        train(model, bad, key=jax.random.key(0), config=FAST, verbose=False)
    small = Classifier(cells.GRU(4), vocab_size=8, embed_size=4, num_classes=2)
    with pytest.raises(ValueError, match="vocab_size 8"):
        train(small, data, key=jax.random.key(0), config=FAST, verbose=False)
    with pytest.raises(ValueError, match="must be an rnndyn.data.Dataset"):
        train(model, {"tokens": 1}, key=jax.random.key(0), verbose=False)
    with pytest.raises(ValueError, match="schedule"):
        TrainConfig(schedule="step")
    with pytest.raises(ValueError, match="batch_size"):
        TrainConfig(batch_size=0)


def test_optimizer_schedule_and_l2():
    params = {"W": np.ones((2, 2), np.float32), "b": np.ones((2,), np.float32)}
    config = TrainConfig(learning_rate=0.1, warmup_steps=2, l2=0.5, clip_norm=None)
    opt = make_optimizer(config, total_steps=10)
    state = opt.init(params)
    zero = jax.tree_util.tree_map(np.zeros_like, params)
    updates, state = opt.update(zero, state, params)  # warm-up step 0: lr 0
    np.testing.assert_array_equal(updates["W"], 0.0)
    updates, state = opt.update(zero, state, params)
    assert np.all(np.asarray(updates["W"]) < 0)  # L2 pulls weights towards zero
    np.testing.assert_array_equal(updates["b"], 0.0)  # biases are not decayed


def test_embedding_l2_decays_the_embedding_only():
    params = {
        "embedding": np.ones((3, 2), np.float32),
        "cell": {"W": np.ones((2, 2), np.float32)},
        "readout": {"W": np.ones((2, 2), np.float32), "b": np.ones((2,), np.float32)},
    }
    config = TrainConfig(learning_rate=0.1, warmup_steps=0, embedding_l2=0.5, clip_norm=None)
    opt = make_optimizer(config, total_steps=10)
    zero = jax.tree_util.tree_map(np.zeros_like, params)
    updates, _ = opt.update(zero, opt.init(params), params)
    assert np.all(np.asarray(updates["embedding"]) < 0)
    for leaf in jax.tree_util.tree_leaves({k: v for k, v in updates.items() if k != "embedding"}):
        np.testing.assert_array_equal(leaf, 0.0)
    with pytest.raises(ValueError, match="embedding_l2"):
        TrainConfig(embedding_l2=-1.0)


# --- divergence, keys, resume, malformed checkpoints ----------------------------------


def test_divergence_stops_with_the_step_and_writes_no_checkpoint(tmp_path):
    from rnndyn.train import TrainingDivergedError

    data = tiny_sentiment(0, 64)
    config = TrainConfig(
        steps=20,
        batch_size=32,
        learning_rate=1e38,
        clip_norm=None,
        warmup_steps=0,
        schedule="constant",
        log_every=5,
    )
    kw = dict(key=jax.random.key(0), verbose=False)
    with pytest.raises(TrainingDivergedError, match=r"diverged at step \d+.*learning rate") as exc:
        train(
            _sentiment_model(),
            data,
            data,
            **kw,
            config=config,
            checkpoint_dir=tmp_path / "ck",
            save_every=1,
        )
    step = exc.value.step
    assert isinstance(exc.value, RuntimeError) and "clip_norm=1.0" in str(exc.value)
    assert 1 < step <= 5  # Adam moves each weight by ~lr per step: inf within a few steps
    # Every checkpoint written was finite and from before the divergence.
    ck = load_checkpoint(tmp_path / "ck")
    assert (
        json.loads((tmp_path / "ck" / "checkpoint.json").read_text())["train_state"]["step"]
        == step - 1
    )
    assert all(np.isfinite(x).all() for x in jax.tree_util.tree_leaves(ck.params))
    # The step named is the first bad one: a run of step - 1 steps (constant schedule, so
    # the same updates) ends finite.
    ok = train(_sentiment_model(), data, **kw, config=dataclasses.replace(config, steps=step - 1))
    assert all(np.isfinite(x).all() for x in jax.tree_util.tree_leaves(ok.params))


def test_non_finite_params_are_refused(tmp_path):
    model = _sentiment_model()
    params = model.init(jax.random.key(0))
    bad = jax.tree_util.tree_map(lambda a: a, params)
    bad["readout"]["b"] = bad["readout"]["b"].at[1].set(np.nan)
    data = tiny_sentiment(0, 8)
    with pytest.raises(ValueError, match=r"params\['readout'\]\['b'\].*non-finite.*learning rate"):
        evaluate(model, bad, data)
    with pytest.raises(ValueError, match="non-finite"):
        save_checkpoint(tmp_path / "c", model, bad, vocab=data.vocab, config=None)
    assert not (tmp_path / "c").exists()


@pytest.mark.parametrize("key", [0, None, np.zeros(2, np.float32), "seed"])
def test_keys_that_are_not_prng_keys_are_rejected_by_name(key):
    with pytest.raises(ValueError, match="key must be a JAX PRNG key"):
        train(_sentiment_model(), tiny_sentiment(0, 8), key=key, config=FAST, verbose=False)


def test_check_key_accepts_typed_and_raw_keys():
    from rnndyn import _checks

    _checks.check_key("key", jax.random.key(5))
    _checks.check_key("key", jax.random.PRNGKey(5))  # legacy raw uint32 (2,)
    with pytest.raises(ValueError, match="key must be a single PRNG key"):
        _checks.check_key("key", jax.random.split(jax.random.key(0)))


def test_resume_after_interruption_is_bit_identical(tmp_path, monkeypatch):
    import rnndyn.train as train_mod

    data = tiny_sentiment(0, 200)
    test = tiny_sentiment(1, 40)
    config = TrainConfig(steps=30, batch_size=32, log_every=10, eval_every=10)
    model = _sentiment_model(8)
    kw = dict(key=jax.random.key(3), config=config, verbose=False)
    full = train(model, data, test, **kw)

    real_batch, calls = train_mod.pad_batch, []

    def interrupted(*args, **kwargs):  # Ctrl-C during step 25 (checkpoints at 7, 14, 21)
        if kwargs.get("batch_size", args[2]) == 32 and len(args[1]) == 32:
            calls.append(1)
            if len(calls) == 25:
                raise KeyboardInterrupt
        return real_batch(*args, **kwargs)

    monkeypatch.setattr(train_mod, "pad_batch", interrupted)
    ck = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        train(model, data, test, **kw, checkpoint_dir=ck, save_every=7)
    monkeypatch.setattr(train_mod, "pad_batch", real_batch)
    saved = json.loads((ck / "checkpoint.json").read_text())["train_state"]
    assert saved["step"] == 21 and len(saved["pending"]) == 1  # step 21 not yet logged
    resumed = train(model, data, test, **kw, checkpoint_dir=ck, save_every=7, resume=True)
    jax.tree_util.tree_map(np.testing.assert_array_equal, resumed.params, full.params)
    jax.tree_util.tree_map(
        np.testing.assert_array_equal, resumed.state.opt_state, full.state.opt_state
    )
    assert resumed.history == full.history
    # A different run cannot resume this checkpoint.
    with pytest.raises(ValueError, match="PRNG key differs"):
        train(
            model,
            data,
            test,
            key=jax.random.key(4),
            config=config,
            verbose=False,
            checkpoint_dir=ck,
            resume=True,
        )
    with pytest.raises(ValueError, match="field 'config'"):
        train(
            model,
            data,
            test,
            key=jax.random.key(3),
            verbose=False,
            checkpoint_dir=ck,
            config=dataclasses.replace(config, learning_rate=0.5),
            resume=True,
        )


def test_save_is_atomic_and_keeps_other_files(tmp_path, monkeypatch):
    import flax.serialization

    model = _sentiment_model()
    data = tiny_sentiment(0, 4)
    p0, p1 = model.init(jax.random.key(0)), model.init(jax.random.key(1))
    path = tmp_path / "ck"
    save_checkpoint(path, model, p0, vocab=data.vocab, config=None)
    (path / "analysis.json").write_text("{}")
    real = flax.serialization.to_bytes

    def crash(*args):
        raise OSError("disk full")

    monkeypatch.setattr(flax.serialization, "to_bytes", crash)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, model, p1, vocab=data.vocab, config=None)
    monkeypatch.setattr(flax.serialization, "to_bytes", real)
    got = load_checkpoint(path)  # the old checkpoint, whole
    jax.tree_util.tree_map(np.testing.assert_array_equal, got.params, p0)
    assert sorted(x.name for x in tmp_path.iterdir()) == ["ck"]  # no temporary left over
    save_checkpoint(path, model, p1, vocab=data.vocab, config=None)
    jax.tree_util.tree_map(np.testing.assert_array_equal, load_checkpoint(path).params, p1)
    assert (path / "analysis.json").read_text() == "{}"
    assert sorted(x.name for x in tmp_path.iterdir()) == ["ck"]


def test_checkpoint_gets_the_umask_permissions(tmp_path):
    import os
    import stat

    model = _sentiment_model()
    params = model.init(jax.random.key(0))
    vocab = tiny_sentiment(0, 2).vocab
    old = os.umask(0o022)
    try:
        path = tmp_path / "ck"
        for _ in range(2):  # a new checkpoint, then one replacing it
            save_checkpoint(path, model, params, vocab=vocab, config=None)
            assert stat.S_IMODE(path.stat().st_mode) == 0o777 & ~0o022
            for file in path.iterdir():
                assert stat.S_IMODE(file.stat().st_mode) == 0o666 & ~0o022, file.name
    finally:
        os.umask(old)


def _edit_meta(path, fn):
    meta = json.loads((path / "checkpoint.json").read_text())
    fn(meta)
    (path / "checkpoint.json").write_text(json.dumps(meta))


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda m: m.pop("model"), "field 'model' is missing"),
        (lambda m: m.update(model=None), "field 'model' must be an object"),
        (lambda m: m["model"].pop("hidden_size"), "field 'model.hidden_size' is missing"),
        (lambda m: m["model"].update(hidden_size="16"), "field 'model.hidden_size' must be int"),
        (lambda m: m["model"].update(cell="rnn"), "field 'model': unknown cell"),
        (lambda m: m.update(config="abc"), "field 'config' must be an object"),
        (lambda m: m["config"].update(steps=-3), "field 'config': steps must be"),
        (lambda m: m.update(vocab="abc"), "field 'vocab' must be a list"),
        (lambda m: m.update(vocab=m["vocab"][:3]), "field 'vocab' has 3 words"),
        (lambda m: m.update(metadata=[1]), "field 'metadata' must be an object"),
    ],
)
def test_malformed_checkpoint_json_names_file_and_field(tmp_path, edit, message):
    model = _sentiment_model()
    path = tmp_path / "ck"
    save_checkpoint(
        path,
        model,
        model.init(jax.random.key(0)),
        vocab=tiny_sentiment(0, 2).vocab,
        config=TrainConfig(),
    )
    _edit_meta(path, edit)
    with pytest.raises(ValueError, match="checkpoint.json: " + message.replace("(", r"\(")):
        load_checkpoint(path)


def test_truncated_and_nan_checkpoints_name_the_file(tmp_path):
    import flax.serialization

    model = _sentiment_model()
    vocab = tiny_sentiment(0, 2).vocab
    params = model.init(jax.random.key(0))
    path = tmp_path / "ck"
    save_checkpoint(path, model, params, vocab=vocab, config=None)
    meta = (path / "checkpoint.json").read_text()
    (path / "checkpoint.json").write_text(meta[: len(meta) // 2])
    with pytest.raises(ValueError, match=r"checkpoint.json: not valid JSON.*truncated"):
        load_checkpoint(path)
    (path / "checkpoint.json").write_text(meta)
    blob = (path / "params.msgpack").read_bytes()
    (path / "params.msgpack").write_bytes(blob[: len(blob) // 2])
    with pytest.raises(ValueError, match=r"params.msgpack: not a readable msgpack"):
        load_checkpoint(path)
    bad = jax.device_get(params)
    bad["cell"] = jax.tree_util.tree_map(lambda a: np.full_like(a, np.nan), bad["cell"])
    (path / "params.msgpack").write_bytes(flax.serialization.to_bytes(bad))
    with pytest.raises(ValueError, match=r"params.msgpack: params\['cell'\].*non-finite"):
        load_checkpoint(path)


_PARALLEL_SCRIPT = """
import json, sys
import jax, numpy as np
from rnndyn import cells
from rnndyn.models import Classifier
from rnndyn.train import TrainConfig, train
sys.path.insert(0, sys.argv[1])
from test_train import tiny_sentiment

assert jax.device_count() == 4, jax.devices()
data = tiny_sentiment(0, 256)
model = Classifier(cells.GRU(8), vocab_size=16, embed_size=4, num_classes=2)
config = TrainConfig(steps=12, batch_size=32, log_every=1)
one = train(model, data, key=jax.random.key(0), config=config, devices=jax.devices()[:1],
            verbose=False)
four = train(model, data, key=jax.random.key(0), config=config)
sharding = four.params["embedding"].sharding
print(json.dumps({
    "one": one.history["loss"], "four": four.history["loss"],
    "devices": len(sharding.device_set),
    "diff": max(float(np.max(np.abs(np.asarray(a) - np.asarray(b))))
                for a, b in zip(jax.tree_util.tree_leaves(one.params),
                                jax.tree_util.tree_leaves(four.params))),
}))
"""


@pytest.mark.slow
def test_data_parallel_over_forced_host_devices_has_the_same_loss_curve():
    import os
    import pathlib
    import subprocess
    import sys

    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=4"}
    env["JAX_PLATFORMS"] = "cpu"
    here = str(pathlib.Path(__file__).parent)
    proc = subprocess.run(
        [sys.executable, "-c", _PARALLEL_SCRIPT, here],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "data parallel over 4 devices" in proc.stderr
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["devices"] == 4  # parameters replicated on all four
    assert len(got["one"]) == 12
    np.testing.assert_allclose(got["four"], got["one"], rtol=1e-4, atol=1e-5)
    assert got["diff"] < 1e-4
