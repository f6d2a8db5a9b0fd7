"""rnndyn report / demo: figures and a self-contained report.html next to the JSON."""

import base64
import json
import re

import pytest

pytest.importorskip("matplotlib")

from rnndyn import cli  # noqa: E402
from rnndyn.analysis import Analysis  # noqa: E402


def test_report_rejects_bad_arguments(tmp_path, capsys):
    assert cli.main(["report", str(tmp_path), "--trajectories", "0"]) == 2
    assert "--trajectories must be >= 1, got 0" in capsys.readouterr().err
    assert cli.main(["report", str(tmp_path), "--tol", "-1"]) == 2
    assert "--tol must be a finite number > 0, got -1.0" in capsys.readouterr().err
    assert cli.main(["demo", "--steps", "0"]) == 2


@pytest.mark.slow
def test_demo_writes_figures_and_report(tmp_path, capsys):
    out = tmp_path / "demo"
    assert cli.main(["demo", "--out", str(out), "--steps", "300", "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert str(out) in printed
    pngs = sorted(p.name for p in out.glob("*.png"))
    for name in ("fixed_points", "eigenvalues", "word_effects", "explained_variance"):
        assert f"{name}.png" in pngs
    assert not list(out.glob(".tmp-*"))  # atomic writes leave no temporaries
    page = (out / "report.html").read_text()
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(images) == len(pngs)
    # the embedded images are the PNG files themselves
    embedded = {base64.b64decode(i) for i in images}
    assert (out / "eigenvalues.png").read_bytes() in embedded
    record = json.loads((out / "analysis.json").read_text())

    again = Analysis.from_json(out / "analysis.json")  # the JSON and its .npz read back
    assert again.linearized.full == record["linearized"]["full"]
    # the summary table counts the record's analysed slow points
    assert f"<td>{len(again.points.kept)}</td>" in page
    assert record["model"]["cell"] == "gru"
    # the summary table shows the record's numbers
    assert f"{record['linearized']['full']:.4f}" in page
    assert "synthetic-sentiment" in page  # the training settings are shown


def test_analyze_figures_goes_through_the_report(monkeypatch, tmp_path):
    seen = []
    monkeypatch.setattr(cli, "run_report", lambda args: seen.append(args) or 0)
    assert cli.main(["analyze", str(tmp_path), "--figures", "--num-initial", "64"]) == 0
    assert seen and seen[0].num_initial == 64 and seen[0].checkpoint == str(tmp_path)
    # without --figures, analyze does not draw
    seen.clear()
    cli.main(["analyze", str(tmp_path)])
    assert not seen
