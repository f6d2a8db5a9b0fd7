"""Tests for rnndyn.train: training, evaluation, checkpoints."""

import dataclasses
import json

import jax
import numpy as np
import pytest

from rnndyn import cells
from rnndyn.models import Classifier
from rnndyn.train import (
    TrainConfig,
    evaluate,
    load_checkpoint,
    make_optimizer,
    save_checkpoint,
    train,
)


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
    assert 0.0 <= a.history["test_accuracy"][0] <= 1.0
    json.dumps(a.history)  # JSON-friendly


def test_verbose_prints_progress_to_stderr(capsys):
    data = tiny_sentiment(0, 64)
    config = TrainConfig(steps=4, batch_size=32, log_every=2, eval_every=2)
    train(_sentiment_model(), data, data, key=jax.random.key(0), config=config)
    err = capsys.readouterr().err
    assert "step      2/4" in err and "loss" in err and "tokens/s" in err
    assert "test accuracy" in err
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


def test_evaluate_counts_every_example_once():
    data = tiny_sentiment(3, 70)  # 70 = 2 full batches of 32 + a padded remainder
    model = _sentiment_model()
    params = model.init(jax.random.key(0))
    got = evaluate(model, params, data, batch_size=32)
    pred = model.predict(params, data.tokens, np.arange(16) < data.lengths[:, None])
    np.testing.assert_allclose(got["accuracy"], np.mean(pred == data.labels), atol=1e-6)
    mask = np.arange(16) < data.lengths[:, None]
    np.testing.assert_allclose(
        got["loss"], model.loss(params, data.tokens, mask, data.labels), rtol=1e-5
    )


def test_multilabel_accuracy_is_mean_per_label():
    data = tiny_multilabel(0, 40)
    model = Classifier(cells.GRU(8), vocab_size=10, embed_size=4, num_classes=3, multilabel=True)
    params = model.init(jax.random.key(0))
    got = evaluate(model, params, data)
    pred = model.predict(params, data.tokens, np.ones(data.tokens.shape, bool))
    np.testing.assert_allclose(got["accuracy"], np.mean(pred == data.labels), atol=1e-6)
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
