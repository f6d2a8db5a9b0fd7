"""Tests for the ``rnndyn`` command line."""

import os

import numpy as np
import pytest

from rnndyn.checkpoint import load_checkpoint
from rnndyn.cli import build_parser, main
from rnndyn.train import evaluate

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


def test_train_flags_take_defaults_and_help_from_train_config():
    import argparse
    import dataclasses

    from rnndyn.cli import TRAIN_FLAGS, config_from_args
    from rnndyn.config import TrainConfig

    args = build_parser().parse_args(["train"])
    default = TrainConfig()
    assert args.steps == default.steps == 500  # the CLI used to say 400
    assert config_from_args(TrainConfig, args) == default
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    actions = {a.dest: a for a in sub.choices["train"]._actions}
    for field in dataclasses.fields(TrainConfig):
        if field.name in TRAIN_FLAGS:
            action = actions[field.name]
            assert action.option_strings == ["--" + field.name.replace("_", "-")]
            assert action.default == field.default and action.help == field.metadata["help"]
    assert actions["schedule"].choices == ("constant", "cosine", "linear")
    args = build_parser().parse_args(["train", "--epochs", "1.5", "--clip-norm", "0"])
    assert config_from_args(TrainConfig, args, clip_norm=None).epochs == 1.5

    @dataclasses.dataclass(frozen=True)
    class Toy:
        size: int = dataclasses.field(default=3, metadata={"help": "a size"})
        scale: float | None = None
        flag: bool = False

    from rnndyn.cli import add_config_arguments

    parser = argparse.ArgumentParser()
    add_config_arguments(parser, Toy)
    assert vars(parser.parse_args([])) == {"size": 3, "scale": None, "flag": False}
    got = parser.parse_args(["--size", "4", "--scale", "0.5", "--flag"])
    assert config_from_args(Toy, got) == Toy(4, 0.5, True)
    with pytest.raises(ValueError, match="no field 'nope'"):
        add_config_arguments(argparse.ArgumentParser(), Toy, ["nope"])


def test_top_level_help(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "train" in capsys.readouterr().out


def _modules_after(code):
    """The modules a fresh interpreter has imported after running ``code``."""
    import json
    import subprocess
    import sys

    script = f"import json, sys\n{code}\nprint(json.dumps(sorted(sys.modules)))"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         env=env, check=True).stdout  # fmt: skip
    return set(json.loads(out.strip().splitlines()[-1]))


def test_help_imports_no_jax():
    # `rnndyn --help` (and every subcommand's --help) answers before JAX is imported.
    code = (
        "from rnndyn import cli\n"
        "for argv in (['--help'], ['train', '--help'], ['analyze', '--help'], "
        "['demo', '--help']):\n"
        "    try:\n"
        "        cli.main(argv)\n"
        "    except SystemExit:\n"
        "        pass"
    )
    modules = _modules_after(code)
    assert "rnndyn.cli" in modules
    heavy = {"jax", "jaxlib", "flax", "optax", "scipy", "rnndyn.models", "rnndyn.analysis"}
    assert not heavy & modules, sorted(heavy & modules)


def test_import_rnndyn_is_lazy():
    assert "jax" not in _modules_after("import rnndyn")
    assert "jax" in _modules_after("import rnndyn; rnndyn.GRU")
    import rnndyn

    assert rnndyn.GRU is rnndyn.cells.GRU and rnndyn.analyze is rnndyn.analysis.analyze
    assert set(rnndyn.__all__) <= set(dir(rnndyn))
    for name in rnndyn.__all__:
        assert getattr(rnndyn, name) is not None
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        rnndyn.nope  # noqa: B018


def test_cell_names_are_the_models_cells():
    from rnndyn.cli import CELL_NAMES
    from rnndyn.models import CELLS

    assert sorted(CELL_NAMES) == sorted(CELLS)


@pytest.mark.slow
def test_progress_comes_before_the_slow_work(tmp_path, capsys):
    # Each command says what it does before it reads data or compiles: the order of the
    # lines on stderr, not their timing, is checked.
    rows = [f"good film number {i},1" if i % 2 else f"bad film number {i},0" for i in range(60)]
    path = _csv_rows(tmp_path / "films.csv", rows)
    tiny = ["--hidden", "4", "--embed-size", "4", "--steps", "4", "--batch-size", "8"]
    run = tmp_path / "run"
    assert main(["train", "--dataset", str(path), *tiny, "--out", str(run)]) == 0
    err = capsys.readouterr().err.splitlines()

    def first(prefix):
        return next(i for i, line in enumerate(err) if line.startswith(prefix))

    assert first("[train] loading") < first(f"[data] reading {path}") < first("[data] read ")
    assert first("[data] read ") < first("[data] tokenising") < first("[train] 48 training")
    assert first("[train] 48 training") < first("compiling the training step") < first("step ")
    argv = ["analyze", str(run), "--num-initial", "16", "--max-examples", "8", "--word-inputs"]
    assert main([*argv, "0", "--max-steps", "200"]) == 0
    err = capsys.readouterr().err.splitlines()
    compiling = first("[rnndyn] fixed points: compiling the search for 16 candidates")
    assert first("[analyze] loading") < first("[data] reading") < first("[analyze ")
    assert first("[analyze ") < compiling < first("[rnndyn] fixed points: iteration      0")


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


@pytest.mark.slow
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
    # Independent truth: the test set rebuilt from the checkpoint, scored here in numpy
    # from the model's logits (not by rnndyn.train.evaluate, which printed the number).
    from rnndyn.cli.data import _analysis_data

    _, test = _analysis_data(build_parser().parse_args(["analyze", str(out)]), ckpt)
    assert len(test) == 32
    mask = np.arange(test.tokens.shape[1])[None] < test.lengths[:, None]
    logits = np.asarray(ckpt.model.apply(ckpt.params, test.tokens, mask))
    if multilabel:
        accuracy = np.mean((logits > 0) == (test.labels == 1))
    else:
        accuracy = np.mean(np.argmax(logits, axis=1) == test.labels)
    np.testing.assert_allclose(printed, accuracy, atol=1e-4)
    np.testing.assert_allclose(ckpt.metadata["test_accuracy"], accuracy, atol=1e-6)


@pytest.mark.slow
def test_default_synthetic_sentiment_run_reaches_95_percent(tmp_path, capsys):
    # The acceptance run: defaults only (GRU 128, 500 steps), well under 2 minutes on CPU.
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


@pytest.mark.slow
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
    # the stages are tested in test_analysis.py; here the flags must reach the analysis
    # (optional stages off, to keep it short)
    argv = ["analyze", str(out), "--num-initial", "32", "--max-examples", "50", "--quiet"]
    argv += ["--word-inputs", "0", "--bow-steps", "50", "--reference", "nearest"]
    assert main(argv) == 0
    stdout = capsys.readouterr().out
    assert "32 slow points (q < " in stdout and f"report: {out / 'analysis.json'}" in stdout
    report = json.loads((out / "analysis.json").read_text())
    assert report["model"]["cell"] == "gru"
    assert report["linearized"]["num_examples"] == 50
    assert report["points"]["candidates"]["tol"] > 0
    assert report["points"]["candidates"]["speeds"]["shape"] == [32]
    settings = report["settings"]
    assert (settings["word_inputs"], settings["bow_steps"], settings["reference"]) == (
        0, 50, "nearest"
    )  # fmt: skip
    assert report["word_inputs"] is None
    assert len(report["word_effects"]["words"]) == len(ckpt.vocab)


def test_analyze_errors(tmp_path, capsys):
    import jax

    from rnndyn import GRU, Classifier
    from rnndyn.checkpoint import save_checkpoint

    assert main(["analyze", str(tmp_path / "missing"), "--quiet"]) == 2
    assert "is not a checkpoint" in capsys.readouterr().err
    model = Classifier(GRU(4), vocab_size=5, embed_size=3, num_classes=2)
    path = tmp_path / "bare"
    save_checkpoint(path, model, model.init(jax.random.key(0)), vocab="abcde", config=None)
    assert main(["analyze", str(path), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "no training arguments" in err and "Traceback" not in err
    assert main(["analyze", str(path), "--num-initial", "0"]) == 2
    assert "--num-initial must be an integer >= 1, got 0" in capsys.readouterr().err


# --- local corpora, failures, checkpoints ------------------------------------------------


def _sentiment_csv(path, n, seed, bom=True):
    """A real-looking CSV (text, label) from the synthetic sentiment task's documents."""
    import jax

    from rnndyn.data import synthetic

    ds = synthetic.sentiment(jax.random.key(seed), n, num_neutral=20)
    lines = ["text,label"]
    for i in range(n):
        # One token per synthetic word (the tokeniser splits at "_").
        words = [ds.vocab[t].replace("_", "") for t in ds.tokens[i, : ds.lengths[i]]]
        lines.append(f'"{" ".join(words)}",{int(ds.labels[i])}')
    path.write_text(("\ufeff" if bom else "") + "\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.mark.slow
def test_train_and_analyze_a_bom_csv_end_to_end(tmp_path, capsys, monkeypatch):
    import json

    from rnndyn.checkpoint import save_checkpoint

    reviews = _sentiment_csv(tmp_path / "reviews.csv", 500, 0)
    monkeypatch.chdir(tmp_path)  # the checkpoint records absolute paths: analyze from anywhere
    argv = ["train", "--dataset", "reviews.csv", "--cell", "gru", "--hidden", "8"]
    argv += ["--embed-size", "8", "--steps", "150", "--embedding-l2", "1e-2", "--quiet"]
    assert main([*argv, "--out", "run"]) == 0
    out = capsys.readouterr().out
    ckpt = load_checkpoint(tmp_path / "run")
    assert ckpt.metadata["args"]["dataset"] == os.path.join("..", reviews.name)  # from run/
    assert ckpt.metadata["args"]["test_fraction"] is None  # default held-out fraction used
    assert ckpt.metadata["test_accuracy"] >= 0.9, out
    assert ckpt.vocab[:2] == ("<pad>", "<unk>") and "text" not in ckpt.vocab  # BOM header
    monkeypatch.chdir(tmp_path.parent)
    analyze = ["analyze", str(tmp_path / "run"), "--num-initial", "64", "--max-examples", "50"]
    assert main([*analyze, "--quiet"]) == 0
    report = json.loads((tmp_path / "run" / "analysis.json").read_text())
    assert report["linearized"]["num_examples"] == 50  # 20 % of 500 held out, 50 analysed
    # The same model saved from Python (no training arguments): analyze --data PATH.
    bare = tmp_path / "bare"
    save_checkpoint(bare, ckpt.model, ckpt.params, vocab=ckpt.vocab, config=None)
    assert main(["analyze", str(bare), "--quiet"]) == 2
    assert "--data PATH" in capsys.readouterr().err
    held = _sentiment_csv(tmp_path / "held.csv", 60, 9, bom=False)
    assert main([*analyze[:1], str(bare), *analyze[2:], "--data", str(held), "--quiet"]) == 0
    report = json.loads((bare / "analysis.json").read_text())
    assert report["linearized"]["num_examples"] == 50
    assert report["linearized"]["full"] >= 0.85  # the model trained on the CSV generalises


def _csv_rows(path, rows, header="text,label"):
    path.write_text(header + "\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return path


def test_local_dataset_flags(tmp_path, capsys):
    rows = [f"good film {i},1" if i % 2 else f"bad film {i},0" for i in range(40)]
    rows = [f"{r},{'imdb' if i % 4 else 'yelp'}" for i, r in enumerate(rows)]
    path = _csv_rows(tmp_path / "mixed.csv", rows, "review,stars,source")
    tiny = ["--hidden", "4", "--embed-size", "4", "--steps", "2", "--batch-size", "8", "--quiet"]
    argv = ["train", "--dataset", str(path), "--text-field", "review", "--label-field", "stars"]
    argv += [*tiny, "--where", "source=imdb", "--test-fraction", "0.25", "--out"]
    assert main([*argv, str(tmp_path / "run")]) == 0
    ck = load_checkpoint(tmp_path / "run")
    assert ck.metadata["args"]["where"] == ["source=imdb"]
    assert ck.metadata["history"]["step"] == [2]
    assert main(["train", "--dataset", str(path), *tiny, "--out", str(tmp_path / "x")]) == 2
    assert "no field 'text'" in capsys.readouterr().err
    assert main([*argv[:-1], "--where", "source", "--out", str(tmp_path / "y")]) == 2
    assert "--where must look like FIELD=VALUE" in capsys.readouterr().err
    assert main(["train", "--dataset", str(tmp_path / "none.csv"), *tiny]) == 2
    assert "no such file" in capsys.readouterr().err
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


@pytest.mark.slow
def test_optimiser_state_only_when_resuming_is_asked_and_paths_are_relative(tmp_path, capsys):
    import json
    import shutil

    from rnndyn.cli.data import _analysis_data

    project = tmp_path / "project"
    project.mkdir()
    rows = [f"good film {i},1" if i % 2 else f"bad film {i},0" for i in range(40)]
    path = _csv_rows(project / "reviews.csv", rows)
    tiny = ["--hidden", "4", "--embed-size", "4", "--steps", "2", "--batch-size", "8", "--quiet"]
    base = ["train", "--dataset", str(path), *tiny, "--cache-dir", str(project / "cache")]
    runs = project / "runs"
    assert main([*base, "--out", str(runs / "plain")]) == 0
    assert sorted(p.name for p in (runs / "plain").iterdir()) == [
        "checkpoint.json",
        "params.msgpack",
    ]  # no opt_state.msgpack: resuming was not asked for
    meta = json.loads((runs / "plain" / "checkpoint.json").read_text())
    assert "train_state" not in meta
    info = meta["metadata"]
    assert info["args"]["dataset"] == info["dataset"] == os.path.join("..", "..", "reviews.csv")
    assert info["args"]["cache_dir"] == os.path.join("..", "..", "cache")
    assert info["paths_relative_to_checkpoint"] == ["dataset", "cache_dir"]
    assert main([*base, "--resume", "--out", str(runs / "plain")]) == 2
    assert "cannot be resumed" in capsys.readouterr().err
    for flags in (["--save-every", "1"], ["--resume"], ["--resume"]):  # --resume twice
        out = runs / flags[0].strip("-")
        assert main([*base, *flags, "--out", str(out)]) == 0
        assert (out / "opt_state.msgpack").is_file()
        assert "train_state" in json.loads((out / "checkpoint.json").read_text())
    # The project, moved elsewhere, still finds its data from the checkpoint.
    shutil.move(project, tmp_path / "moved")
    checkpoint = tmp_path / "moved" / "runs" / "plain"
    ckpt = load_checkpoint(checkpoint)
    train, test = _analysis_data(build_parser().parse_args(["analyze", str(checkpoint)]), ckpt)
    assert train.vocab == ckpt.vocab and len(train) == 32 and len(test) == 8


def test_bad_rows_and_encodings_exit_2_naming_file_and_line(tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "a b", "label": 1}\n{"text": "c", "label": 0.7}\n', encoding="utf-8")
    assert main(["train", "--dataset", str(bad), *TINY[:-1], "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    *progress, error = err.strip().splitlines()  # progress lines, then the one-line error
    assert error.startswith("rnndyn train: error:") and f"{bad}:2: label 0.7" in error
    assert all(line.startswith(("[train] ", "[data] ")) for line in progress)
    latin = tmp_path / "latin.csv"
    latin.write_bytes("text,label\ncaf\xe9,1\nthé,0\n".encode("latin-1"))
    assert main(["train", "--dataset", str(latin), "--quiet", "--out", str(tmp_path / "o")]) == 2
    assert f"{latin}:2: cannot decode" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_unwritable_out_fails_before_any_work(tmp_path, capsys, monkeypatch):
    import rnndyn.cli.train as cli_train

    blocker = tmp_path / "file"
    blocker.write_text("x")

    def no_work(*args, **kwargs):
        raise AssertionError("data were loaded before --out was checked")

    monkeypatch.setattr(cli_train, "load_data", no_work)
    assert main(["train", *TINY, "--out", str(blocker / "run")]) == 2
    err = capsys.readouterr().err
    assert "--out" in err and "is a file" in err and len(err.strip().splitlines()) == 1
    assert main(["train", *TINY, "--out", str(blocker)]) == 2
    assert "not a directory" in capsys.readouterr().err


def test_analyze_out_is_checked_before_the_analysis(tmp_path, capsys, monkeypatch):
    import jax

    import rnndyn.cli.analyze as cli_analyze
    from rnndyn import GRU, Classifier
    from rnndyn.checkpoint import save_checkpoint

    model = Classifier(GRU(4), vocab_size=5, embed_size=3, num_classes=2)
    vocab = ("<pad>", "<unk>", "a", "b", "c")
    save_checkpoint(tmp_path / "ck", model, model.init(jax.random.key(0)), vocab=vocab, config=None)
    (tmp_path / "file").write_text("x")
    monkeypatch.setattr(
        cli_analyze, "_analysis_data", lambda *a: (_ for _ in ()).throw(AssertionError)
    )
    argv = ["analyze", str(tmp_path / "ck"), "--out", str(tmp_path / "file" / "r.json")]
    assert main([*argv, "--quiet"]) == 2
    assert "cannot be created" in capsys.readouterr().err


def test_malformed_checkpoint_gives_one_line_and_exit_2(tmp_path, capsys):
    import json

    import jax

    from rnndyn import GRU, Classifier
    from rnndyn.checkpoint import save_checkpoint

    model = Classifier(GRU(4), vocab_size=5, embed_size=3, num_classes=2)
    vocab = ("<pad>", "<unk>", "a", "b", "c")
    path = tmp_path / "ck"
    save_checkpoint(path, model, model.init(jax.random.key(0)), vocab=vocab, config=None)
    meta = json.loads((path / "checkpoint.json").read_text())
    for bad in ({**meta, "model": None}, {**meta, "config": "abc"}):
        (path / "checkpoint.json").write_text(json.dumps(bad))
        assert main(["analyze", str(path), "--quiet"]) == 2
        err = capsys.readouterr().err
        assert "checkpoint.json: field" in err and len(err.strip().splitlines()) == 1


def test_diverging_training_exits_nonzero_without_a_checkpoint(tmp_path, capsys):
    argv = ["train", *TINY, "--steps", "20", "--learning-rate", "1e38", "--clip-norm", "0"]
    argv += ["--warmup-steps", "0", "--schedule", "constant", "--out", str(tmp_path / "run")]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "diverged at step" in err and "learning rate" in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_interrupted_run_resumes_to_the_same_checkpoint(tmp_path, capsys, monkeypatch):
    import jax

    import rnndyn.train as train_mod

    argv = ["train", *TINY, "--steps", "4", "--save-every", "2"]
    assert main([*argv, "--out", str(tmp_path / "full")]) == 0
    real, calls = train_mod.pad_batch, []

    def interrupted(data, index, batch_size):
        if len(index) == 32:  # training batches (evaluation batches differ)
            calls.append(1)
            if len(calls) == 4:  # during step 4, after the checkpoint of step 2
                raise KeyboardInterrupt
        return real(data, index, batch_size)

    monkeypatch.setattr(train_mod, "pad_batch", interrupted)
    capsys.readouterr()
    assert main([*argv, "--out", str(tmp_path / "cut")]) == 130
    assert "--resume" in capsys.readouterr().err
    monkeypatch.setattr(train_mod, "pad_batch", real)
    assert main([*argv, "--resume", "--out", str(tmp_path / "cut")]) == 0
    full, cut = load_checkpoint(tmp_path / "full"), load_checkpoint(tmp_path / "cut")
    jax.tree_util.tree_map(np.testing.assert_array_equal, full.params, cut.params)
    assert full.metadata["history"] == cut.metadata["history"]
