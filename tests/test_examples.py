"""Every example runs end to end at --smoke sizes (in this process: one JAX import).

(examples/quickstart.py runs in .ci/run; examples/attractor_manifolds.py has no
smoke size.) The smoke sizes are too small for the science (that is what the full runs and
docs/reproducing.md are for); these tests check that each script runs, prints its table
and writes its files.
"""

import pathlib
import re
import runpy
import sys

import pytest

pytest.importorskip("matplotlib")

EXAMPLES = pathlib.Path(__file__).resolve().parents[1] / "examples"


def _run(name, argv, monkeypatch, capsys):
    monkeypatch.syspath_prepend(str(EXAMPLES))
    monkeypatch.setattr(sys, "argv", [name, *argv])
    runpy.run_path(str(EXAMPLES / name), run_name="__main__")
    captured = capsys.readouterr()
    return captured.out + captured.err


@pytest.mark.slow
def test_line_attractor_smoke(monkeypatch, capsys):
    out = _run("line_attractor.py", ["--smoke", "--quiet"], monkeypatch, capsys)
    rows = [line.split()[0] for line in out.strip().splitlines()[1:]]
    assert rows == ["vanilla", "ugrnn", "gru", "lstm"]


@pytest.mark.slow
def test_categorical_manifold_smoke(monkeypatch, capsys):
    out = _run("categorical_manifold.py", ["--smoke", "--quiet"], monkeypatch, capsys)
    assert re.search(r"^\s*3 classes", out, re.M) and re.search(r"^\s*4 classes", out, re.M)


@pytest.mark.slow
def test_ordered_manifold_smoke(monkeypatch, capsys):
    out = _run("ordered_manifold.py", ["--smoke", "--quiet"], monkeypatch, capsys)
    exclusive = re.search(r"5 exclusive classes\s+5\s+(\d+)", out)
    ordered = re.search(r"5 ordered ratings\s+5\s+(\d+)", out)
    # word counts alone: C - 1 = 4 for exclusive classes, fewer for ordered ratings
    assert int(exclusive.group(1)) == 4
    assert int(ordered.group(1)) < 4


@pytest.mark.slow
def test_multilabel_manifold_smoke(monkeypatch, capsys):
    out = _run("multilabel_manifold.py", ["--smoke", "--quiet"], monkeypatch, capsys)
    assert re.search(r"^\s*3 labels", out, re.M)


@pytest.mark.slow
def test_custom_flax_model_smoke(tmp_path, monkeypatch, capsys):
    argv = ["--smoke", "--quiet", "--out", str(tmp_path)]
    out = _run("custom_flax_model.py", argv, monkeypatch, capsys)
    assert "one step matches flax: True" in out
    if "analysis failed" not in out:  # too few fixed points at smoke sizes is allowed
        assert (tmp_path / "leaky_rnn" / "report.html").exists()


@pytest.mark.slow
def test_flipflop_smoke(tmp_path, monkeypatch, capsys):
    out = _run("flipflop.py", ["--smoke", "--quiet", "--out", str(tmp_path)], monkeypatch, capsys)
    assert "trained vanilla RNN (6 units)" in out
    assert "32 candidates" in out
    if "distinct certified fixed points" in out:
        assert (tmp_path / "fixed_points.json").exists()


def test_every_example_takes_smoke_and_out():
    """All examples (but the quick start and the issue-10 table) document both flags."""
    for path in EXAMPLES.glob("*.py"):
        if path.name.startswith("_") or path.name in ("quickstart.py", "attractor_manifolds.py"):
            continue
        text = path.read_text()
        assert "C.parser(" in text or "--smoke" in text, path.name
