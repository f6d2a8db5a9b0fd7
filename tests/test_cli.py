"""Tests for the ``rnndyn`` command line."""

import numpy as np
import pytest

from rnndyn.cli import build_parser, main
from rnndyn.train import evaluate, load_checkpoint

TINY = [
    "--hidden",
    "8",
    "--embed-size",
    "8",
    "--steps",
    "4",
    "--batch-size",
    "32",
    "--num-examples",
    "64",
    "--num-test-examples",
    "32",
    "--quiet",
]


def _train_flags():
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    return [s for a in sub.choices["train"]._actions for s in a.option_strings]


def test_help_lists_every_flag(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["train", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    flags = _train_flags()
    for flag in (
        "--dataset",
        "--cell",
        "--hidden",
        "--embed-size",
        "--steps",
        "--epochs",
        "--batch-size",
        "--learning-rate",
        "--seed",
        "--max-length",
        "--vocab-size",
        "--data-dir",
        "--quiet",
        "--out",
        "--num-classes",
    ):
        assert flag in flags
    for flag in flags:
        assert flag in out, flag


def test_top_level_help(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "train" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--cell", "transformer"], "unknown cell 'transformer'"),
        (["--dataset", "mnist"], "unknown dataset 'mnist'"),
        (["--hidden", "0"], "--hidden must be >= 1"),
        (["--batch-size", "0"], "batch_size must be"),
        (["--num-neutral", "-1"], "--num-neutral must be >= 0"),
        (["--evidence-strength", "0"], "--evidence-strength must be > 0"),
    ],
)
def test_bad_arguments_give_clear_errors(argv, message, capsys, tmp_path):
    assert main(["train", *TINY, "--out", str(tmp_path / "x"), *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize(
    "dataset, multilabel", [("synthetic-sentiment", False), ("synthetic-multilabel", True)]
)
def test_train_writes_loadable_checkpoint(dataset, multilabel, tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["train", "--dataset", dataset, "--cell", "lstm", *TINY, "--out", str(out)]
    assert main(argv) == 0
    stdout = capsys.readouterr().out
    assert "test accuracy:" in stdout and f"checkpoint: {out}" in stdout
    ckpt = load_checkpoint(out)
    assert ckpt.model.multilabel == multilabel
    assert ckpt.model.cell.hidden_size == 8
    assert ckpt.config.steps == 4
    assert ckpt.metadata["dataset"] == dataset
    assert len(ckpt.vocab) == ckpt.model.vocab_size
    printed = float(stdout.split("test accuracy:")[1].split()[0])
    np.testing.assert_allclose(printed, ckpt.metadata["test_accuracy"], atol=1e-4)


@pytest.mark.slow
def test_default_synthetic_sentiment_run_reaches_95_percent(tmp_path, capsys):
    # The acceptance run: defaults only (GRU 128, 400 steps), well under 2 minutes on CPU.
    out = tmp_path / "run"
    assert (
        main(
            [
                "train",
                "--dataset",
                "synthetic-sentiment",
                "--cell",
                "gru",
                "--quiet",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    ckpt = load_checkpoint(out)
    assert ckpt.metadata["test_accuracy"] >= 0.95
    import jax

    from rnndyn.data import synthetic

    fresh = synthetic.sentiment(jax.random.key(123), 300)
    assert fresh.vocab == ckpt.vocab
    assert evaluate(ckpt.model, ckpt.params, fresh)["accuracy"] >= 0.95


def test_analyze_rebuilds_the_data_and_writes_a_json_report(tmp_path, capsys):
    import json

    out = tmp_path / "run"
    train_argv = ["train", "--cell", "gru", "--hidden", "8", "--embed-size", "8"]
    train_argv += ["--steps", "150", "--num-examples", "400", "--num-test-examples", "100"]
    train_argv += ["--num-neutral", "20", "--embedding-l2", "1e-2", "--quiet"]
    assert main([*train_argv, "--out", str(out)]) == 0
    ckpt = load_checkpoint(out)
    assert ckpt.config.embedding_l2 == 1e-2
    assert len(ckpt.vocab) == 2 + 6 + 20  # <pad>, <unk>, 3 words per class, 20 neutral
    capsys.readouterr()
    argv = ["analyze", str(out), "--num-initial", "64", "--max-examples", "50", "--quiet"]
    assert main(argv) == 0
    stdout = capsys.readouterr().out
    assert "fixed points kept" in stdout and f"report: {out / 'analysis.json'}" in stdout
    report = json.loads((out / "analysis.json").read_text())
    assert report["model"]["cell"] == "gru"
    assert report["linearized"]["num_examples"] == 50
    assert report["num_candidates"] == 64
    assert len(report["word_effects"]["words"]) == len(ckpt.vocab)


def test_analyze_errors(tmp_path, capsys):
    import jax

    from rnndyn import GRU, Classifier
    from rnndyn.train import save_checkpoint

    assert main(["analyze", str(tmp_path / "missing"), "--quiet"]) == 2
    assert "is not a checkpoint" in capsys.readouterr().err
    model = Classifier(GRU(4), vocab_size=5, embed_size=3, num_classes=2)
    path = tmp_path / "bare"
    save_checkpoint(path, model, model.init(jax.random.key(0)), vocab="abcde", config=None)
    assert main(["analyze", str(path), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "no training arguments" in err and "Traceback" not in err
    assert main(["analyze", str(path), "--num-initial", "0"]) == 2
    assert "--num-initial must be >= 1" in capsys.readouterr().err
