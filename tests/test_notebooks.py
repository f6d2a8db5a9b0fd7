"""examples/notebooks/*.ipynb run headless in a real Jupyter kernel (nbclient), and their
outputs hold what a reader should see: the verdict and the inline figure.

The kernel is ``python3``, which ipykernel provides for the interpreter that runs the
tests (the venv's); it inherits this process' environment (``PYTHONPATH`` included) and
runs in a temporary directory, so a notebook writes nothing into the repository.
"""

import base64
import os
import pathlib
import re

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")
pytest.importorskip("matplotlib")

NOTEBOOKS = pathlib.Path(__file__).resolve().parents[1] / "examples" / "notebooks"
ROOT = NOTEBOOKS.parents[1]


def _execute(nb, cwd):
    env_path = os.environ.get("PYTHONPATH", "")
    if str(ROOT) not in env_path.split(os.pathsep):  # the kernel imports this checkout
        os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env_path) if p)
    try:
        client = nbclient.NotebookClient(
            nb, kernel_name="python3", timeout=300, resources={"metadata": {"path": str(cwd)}}
        )
        client.execute()
    finally:
        if env_path:
            os.environ["PYTHONPATH"] = env_path
        else:
            os.environ.pop("PYTHONPATH", None)
    return nb


def _outputs(nb):
    """Every output of every code cell, as ``(mime type or stream, text)``."""
    out = []
    for cell in nb.cells:
        for o in cell.get("outputs", ()):
            if o["output_type"] == "stream":
                out.append((o["name"], o["text"]))
            elif o["output_type"] == "error":
                out.append(("error", "\n".join(o["traceback"])))
            else:
                out.extend((mime, value) for mime, value in o.get("data", {}).items())
    return out


def _check_quickstart(nb):
    outputs = _outputs(nb)
    assert not [t for kind, t in outputs if kind in ("error", "stderr") and "Error" in t]
    html = "\n".join(t for kind, t in outputs if kind == "text/html")
    text = "\n".join(t for kind, t in outputs if kind in ("stdout", "text/plain"))
    # the verdict, in the notebook view and printed: the same headline
    headline = re.search(r'<p class="headline">([^<]+)</p>', html)
    assert headline, html[:500]
    assert f"Verdict: {headline.group(1)}".replace("&#x27;", "'") in text
    assert re.search(r"attractor|slow point", headline.group(1))
    # the slow points as an inline PNG
    pngs = re.findall(r'<img alt="fixed points" src="data:image/png;base64,([^"]+)"', html)
    assert len(pngs) == 1
    assert base64.b64decode(pngs[0])[:8] == b"\x89PNG\r\n\x1a\n"
    # the candidates per status (FixedPoints' table) and the key numbers
    assert '<table class="statuses">' in html and "accuracy: full network" in html
    assert re.search(r"<th>(ROOT|CONTINUUM|SLOW_POINT)</th><td[^>]*>[1-9]", html)


def test_the_shipped_quickstart_keeps_its_outputs():
    """The file in the repository was saved executed: a reader on GitHub sees the
    verdict and the figure without running it."""
    _check_quickstart(nbformat.read(NOTEBOOKS / "quickstart.ipynb", as_version=4))


@pytest.mark.slow
def test_quickstart_notebook_shows_the_verdict_and_the_figure(tmp_path):
    nb = nbformat.read(NOTEBOOKS / "quickstart.ipynb", as_version=4)
    for cell in nb.cells:  # run from scratch: nothing of the saved outputs counts
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    assert _outputs(nb) == []
    _check_quickstart(_execute(nb, tmp_path))
    assert list(tmp_path.iterdir()) == []  # it ran there and wrote nothing
