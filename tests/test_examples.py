"""Every example runs end to end at --smoke sizes (in this process: one JAX import).

(examples/quickstart.py runs in .ci/run; examples/attractor_manifolds.py has no
smoke size.) The smoke sizes are too small for the science (that is what the full runs and
docs/reproducing.md are for); these tests check that each script runs, prints its table
and writes its files.
"""

import json
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
    # two cells keep it short: the script's loop is the same for all four
    argv = ["--smoke", "--quiet", "--cells", "vanilla", "gru"]
    out = _run("line_attractor.py", argv, monkeypatch, capsys)
    rows = re.findall(r"^\s*(vanilla|ugrnn|gru|lstm)\s", out, re.M)
    assert rows == ["vanilla", "gru"]


@pytest.mark.slow
def test_categorical_manifold_smoke(monkeypatch, capsys):
    argv = ["--smoke", "--quiet", "--classes", "3"]
    out = _run("categorical_manifold.py", argv, monkeypatch, capsys)
    assert re.search(r"^\s*3 classes", out, re.M)


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
    assert "32 candidates" in out
    if "distinct certified fixed points" not in out:
        return
    assert (tmp_path / "fixed_points.json").exists()
    assert (tmp_path / "flipflop_fixed_points.png").exists()
    found = json.loads((tmp_path / "fixed_points.json").read_text())
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


def test_every_example_takes_smoke_and_out():
    """All examples (but the quick start and the issue-10 table) document both flags."""
    for path in EXAMPLES.glob("*.py"):
        if path.name.startswith("_") or path.name in ("quickstart.py", "attractor_manifolds.py"):
            continue
        text = path.read_text()
        assert "C.parser(" in text or "--smoke" in text, path.name
