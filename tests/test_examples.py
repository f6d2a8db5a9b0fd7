"""Every example runs end to end at --smoke sizes (in this process: one JAX import), and the
numbers it prints are checked: against truth where the smoke sizes allow one (the
dimension predicted from word counts is C − 1 for exclusive classes, one per label for
independent labels, computed here in numpy from the regenerated training data), against
what every point set must satisfy (a participation ratio between 1 and the rank), and
against the JSON report the example writes.

(examples/quickstart.py runs in .ci/run; examples/attractor_manifolds.py has no smoke
size.) The smoke sizes are too small for the science of the full runs (that is what
docs/reproducing.md is for): the trained networks are weak, so their accuracies are only
checked for consistency.
"""

import json
import pathlib
import re
import runpy
import sys

import numpy as np
import pytest

pytest.importorskip("matplotlib")

EXAMPLES = pathlib.Path(__file__).resolve().parents[1] / "examples"


def _run(name, argv, monkeypatch, capsys):
    monkeypatch.syspath_prepend(str(EXAMPLES))
    monkeypatch.setattr(sys, "argv", [name, *argv])
    runpy.run_path(str(EXAMPLES / name), run_name="__main__")
    captured = capsys.readouterr()
    return captured.out + captured.err


def _table(out, first_column):
    """The rows of the plain-text table whose header starts with ``first_column``, as
    dicts of strings (columns are separated by two or more spaces)."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.split() and
                 line.split()[0] == first_column)  # fmt: skip
    header = re.split(r"\s{2,}", lines[start].strip())
    rows = []
    for line in lines[start + 1 :]:
        cells = re.split(r"\s{2,}", line.strip())
        if len(cells) != len(header):
            break
        rows.append(dict(zip(header, cells, strict=True)))
    return rows


def _class_mean_dimension(tokens, lengths, labels, vocab_size, threshold=0.9):
    """The dimension predicted from word counts (docs/manifold.md), in plain numpy: PCs
    of the class-mean word frequencies minus the overall mean to ``threshold`` of the
    variance; multi-label: per label, documents with it minus those without."""
    n = len(lengths)
    f = np.zeros((n, vocab_size))
    for d in range(n):
        np.add.at(f[d], tokens[d, : lengths[d]], 1.0 / lengths[d])
    if labels.ndim == 2:
        rows = [f[labels[:, k] == 1].mean(0) - f[labels[:, k] == 0].mean(0)
                for k in range(labels.shape[1])]  # fmt: skip
    else:
        rows = [f[labels == c].mean(0) - f.mean(0) for c in range(labels.max() + 1)]
    lam = np.linalg.svd(np.stack(rows), compute_uv=False) ** 2
    return int(np.searchsorted(np.cumsum(lam / lam.sum()), threshold - 1e-12) + 1)


def _training_set(kind, *extra, seed=0):
    """The training set an example draws at --smoke (examples/_common.synthetic)."""
    sys.path.insert(0, str(EXAMPLES))
    try:
        import _common as C

        args = C.parser("x").parse_args(["--smoke", "--seed", str(seed)])
        return C.synthetic(kind, *extra, args=args)[0]
    finally:
        sys.path.remove(str(EXAMPLES))


def _check_row_against_report(row, report, hidden=6):
    """A table row of examples/_common.COLUMNS against the analysis.json it came from."""
    kept = report["points"]["kept"]["points"]["shape"][0]
    assert int(row["points"]) == kept
    assert int(row["pred"]) == report["prediction"]["dimension"]
    assert int(row["dim"]) == report["geometry"]["manifold_dimension"] >= 1
    assert float(row["acc"]) == pytest.approx(report["linearized"]["full"], abs=5e-4)
    assert float(row["lin"]) == pytest.approx(
        report["linearized"]["initial"], abs=5e-4, nan_ok=True
    )
    assert float(row["lin traj"]) == pytest.approx(report["linearized"]["trajectory"], abs=5e-4)
    assert 0.0 <= float(row["acc"]) <= 1.0
    if "fp PR" in row and kept > 1:  # 1 <= PR <= rank <= min(K - 1, S)
        assert 1.0 - 1e-9 <= float(row["fp PR"]) <= min(kept - 1, hidden) + 1e-9
    if "|λ1|" in row:
        radius = report["spectra"]["spectral_radius"]["array"]
        assert float(row["|λ1|"]) == pytest.approx(np.median(radius), abs=5e-4)


def _report(folder):
    return json.loads((folder / "analysis.json").read_text())


@pytest.mark.slow
def test_line_attractor_smoke(tmp_path, monkeypatch, capsys):
    # two cells keep it short: the script's loop is the same for all four
    argv = ["--smoke", "--quiet", "--cells", "vanilla", "gru", "--out", str(tmp_path)]
    rows = _table(_run("line_attractor.py", argv, monkeypatch, capsys), "cell")
    assert [r["cell"] for r in rows] == ["vanilla", "gru"]
    train = _training_set("sentiment")
    truth = _class_mean_dimension(train.tokens, train.lengths, train.labels, train.vocab_size)
    assert truth == 1  # two classes: the class-mean contrasts have rank C - 1 = 1
    for row in rows:
        assert int(row["pred"]) == truth
        _check_row_against_report(row, _report(tmp_path / row["cell"]))


@pytest.mark.slow
def test_categorical_manifold_smoke(tmp_path, monkeypatch, capsys):
    argv = ["--smoke", "--quiet", "--classes", "3", "--out", str(tmp_path)]
    (row,) = _table(_run("categorical_manifold.py", argv, monkeypatch, capsys), "task")
    assert row["task"] == "3 classes"
    train = _training_set("categorical", 3)
    truth = _class_mean_dimension(train.tokens, train.lengths, train.labels, train.vocab_size)
    assert int(row["pred"]) == truth == 3 - 1  # C - 1 for exclusive classes
    report = _report(tmp_path / "3_classes")
    _check_row_against_report(row, report)
    fp90 = int(row["fp 90%"])
    assert fp90 == report["geometry"]["fixed_point_dimension"]["pca90"]
    assert fp90 <= max(int(row["points"]) - 1, 0)


@pytest.mark.slow
def test_ordered_manifold_smoke(monkeypatch, capsys):
    out = _run("ordered_manifold.py", ["--smoke", "--quiet"], monkeypatch, capsys)
    rows = {r["task"]: r for r in _table(out, "task")}
    exclusive, ordered = rows["5 exclusive classes"], rows["5 ordered ratings"]
    # word counts alone: C - 1 = 4 for exclusive classes, fewer for ordered ratings
    assert int(exclusive["pred"]) == 4
    assert int(ordered["pred"]) < 4
    train = _training_set("ratings", 5)
    truth = _class_mean_dimension(train.tokens, train.lengths, train.labels, train.vocab_size)
    assert int(ordered["pred"]) == truth
    for r in (exclusive, ordered):  # 1 <= PR <= rank <= C - 1
        assert 1.0 <= float(r["PR"]) <= 4.0 + 1e-9
    (net,) = _table(out, "cell")  # the trained network, on the same ratings
    assert int(net["pred"]) == truth


@pytest.mark.slow
def test_multilabel_manifold_smoke(tmp_path, monkeypatch, capsys):
    argv = ["--smoke", "--quiet", "--out", str(tmp_path)]
    (row,) = _table(_run("multilabel_manifold.py", argv, monkeypatch, capsys), "task")
    assert row["task"] == "3 labels"
    train = _training_set("multilabel", 3)
    truth = _class_mean_dimension(train.tokens, train.lengths, train.labels, train.vocab_size)
    assert int(row["pred"]) == truth == 3  # one dimension per independent label
    report = _report(tmp_path / "3_labels")
    _check_row_against_report(row, report)
    shares = [float(v) for v in row["state PCs"].split("/")]
    spectrum = report["geometry"]["state_dimension"]["spectrum"]["array"]
    np.testing.assert_allclose(shares, spectrum[:4], atol=5e-3)
    assert sorted(shares, reverse=True) == shares and sum(shares) <= 1.0 + 1e-9
    assert float(row["state PR"]) == pytest.approx(
        report["geometry"]["state_dimension"]["participation_ratio"], abs=5e-3
    )


@pytest.mark.slow
def test_custom_flax_model_smoke(tmp_path, monkeypatch, capsys):
    argv = ["--smoke", "--quiet", "--out", str(tmp_path)]
    out = _run("custom_flax_model.py", argv, monkeypatch, capsys)
    assert "one step matches flax: True" in out
    assert (tmp_path / "leaky_rnn" / "report.html").exists()
    (row,) = _table(out, "cell")
    assert row["cell"] == "LeakyRNNCell"
    report = _report(tmp_path / "leaky_rnn")
    assert report["model"]["state_size"] == 6
    _check_row_against_report(row, report)
    assert int(row["pred"]) == 1  # binary sentiment: C - 1


@pytest.mark.slow
def test_flipflop_smoke(tmp_path, monkeypatch, capsys):
    """The flip-flop figure is rated by five criteria and must meet at least four: its
    title counts the stable points and saddles the run found (not a number written in);
    the legend names every stability drawn, h0 and the documents; no axis reads "0%" for
    a PC with some variance; the markers count the stable points found; no text under
    8 pt."""
    from figure_criteria import PASS, by_gid, legend_text, min_font

    from rnndyn import plots

    saved = {}
    original = plots.save

    def capture(fig, path, **kw):
        saved[pathlib.Path(path).name] = fig
        return original(fig, path, **kw)

    monkeypatch.setattr(plots, "save", capture)
    out = _run("flipflop.py", ["--smoke", "--quiet", "--out", str(tmp_path)], monkeypatch, capsys)
    assert "trained vanilla RNN (6 units)" in out
    counts = re.search(r"^(\d+) candidates: (\{.*\})$", out, re.M)
    assert int(counts.group(1)) == 32  # the smoke search's starts
    tally = json.loads(counts.group(2).replace("'", '"'))
    assert sum(tally.values()) == 32
    if "distinct certified fixed points" not in out:
        assert "ROOT" not in tally
        return
    summary = json.loads((tmp_path / "fixed_points.json").read_text())
    assert summary["counts"] == tally
    distinct = int(re.search(r"^(\d+) distinct certified", out, re.M).group(1))
    assert distinct == summary["distinct"] == len(summary["points"]) <= tally["ROOT"]
    # every distinct point is stable or a saddle with k unstable directions, once
    assert summary["stable"] + sum(summary["saddles"].values()) == distinct
    assert summary["stable"] <= 8 and len(summary["stable_memories"]) <= summary["stable"]
    rows = _table(out, "#")
    assert len(rows) == distinct
    for r in rows:  # certified roots: below the search's tol of 1e-12; kinds match |λ|
        assert float(r["q"]) < 1e-12
        assert (float(r["max |λ|"]) <= 1.0) == (r["kind"] == "stable")
    assert (tmp_path / "flipflop_fixed_points.png").exists()
    found = summary
    stable, saddles = found["stable"], found["distinct"] - found["stable"]
    fig = saved["flipflop_fixed_points"]
    ax = fig.axes[0]
    legend = legend_text(fig)
    labels = [ax.get_xlabel(), ax.get_ylabel()] + ([ax.get_zlabel()] if ax.name == "3d" else [])
    drawn_stable = sum(len(c.get_offsets()) for g in ("roots.stable", "slow_points.stable")
                       for c in by_gid(fig, g))  # fmt: skip
    criteria = {
        "title": ax.get_title() == f"flip-flop: {stable} stable point{'s' * (stable != 1)}, "
        f"{saddles} saddle{'s' * (saddles != 1)}",
        "legend": (not stable or "stable" in legend)
        and (not saddles or "unstable" in legend)
        and "h0" in legend
        and "document" in legend,
        "axes": not any(re.search(r"\b0% of", label) for label in labels),
        "marks": drawn_stable == stable,
        "readable": min_font(fig) >= plots.MIN_FONT_PT,
    }
    assert sum(criteria.values()) >= PASS, criteria


@pytest.mark.slow
def test_torch_gru_fixed_points_smoke(tmp_path, monkeypatch, capsys):
    """The torch example: every certified root, fed back through torch's own GRU step in
    float64, is a fixed point to the float32 floor; the JSON holds what was printed."""
    pytest.importorskip("torch")
    argv = ["--smoke", "--quiet", "--out", str(tmp_path)]
    out = _run("torch_gru_fixed_points.py", argv, monkeypatch, capsys)
    assert "torch.nn.GRU: 6 units, 2 inputs, 40 training steps" in out
    starts = re.search(r"^(\d+) slow points \(q < ([0-9.e+-]+)\) of (\d+) starts", out, re.M)
    assert starts and int(starts.group(3)) == 64
    if "no certified root" in out:
        return
    line = re.search(r"^(\d+) distinct certified roots; q by torch.*max ([0-9.e+-]+)$", out, re.M)
    n, q_max = int(line.group(1)), float(line.group(2))
    assert 1 <= n <= 64 and q_max < 1e-8
    rows = _table(out, "#")
    assert len(rows) == n
    for r in rows:
        assert r["status"] in ("ROOT", "CONTINUUM")
        assert float(r["q (torch)"]) < 1e-8 and float(r["q (rnndyn)"]) < float(starts.group(2))
        assert (float(r["max |λ|"]) <= 1.0) == (r["kind"] == "stable")
    saved = json.loads((tmp_path / "fixed_points.json").read_text())
    assert len(saved["points"]) == n and max(saved["q_torch"]) == pytest.approx(q_max, rel=0.01)
    assert sum(saved["counts"].values()) == 64 and len(saved["points"][0]) == 6
    # the comparison ran, or says that it was skipped (package not installed)
    assert re.search(r"^FixedPointFinder: (skipped|\d+ unique fixed points)", out, re.M)


def test_every_example_takes_smoke_and_out():
    """All examples (but the quick start and the issue-10 table) document both flags."""
    for path in EXAMPLES.glob("*.py"):
        if path.name.startswith("_") or path.name in ("quickstart.py", "attractor_manifolds.py"):
            continue
        text = path.read_text()
        assert "C.parser(" in text or "--smoke" in text, path.name
