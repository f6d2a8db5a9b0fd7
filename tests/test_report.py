"""rnndyn.report, rnndyn report / demo: a page that leads with the verdict, figures as
files in the chosen formats, and the page checked in a real browser.

The report is written once per module from a real ``Analysis`` of a network with a known
answer: ``h' = diag(1, 0.5, 0.3) h + x``, whose slow points at ``x* = 0`` are the whole
first axis (a line attractor: one eigenvalue exactly 1), with each word's embedding
pushing along that axis by its valence and the readout along it. The contextual stage
and a linear RNN run too: a linear network modifies nothing (every gain exactly 1).
"""

import base64
import json
import pathlib
import re
from html.parser import HTMLParser

import jax
import jax.numpy as jnp
import numpy as np
import pytest

pytest.importorskip("matplotlib")

from figure_criteria import PASS, rate  # noqa: E402

from rnndyn import cells, cli, data, plots  # noqa: E402
from rnndyn.analysis import Analysis, analyze  # noqa: E402
from rnndyn.models import Classifier  # noqa: E402
from rnndyn.report import figure_inputs, write_report  # noqa: E402

CHROMIUM = pathlib.Path("/usr/bin/chromium")
#: Phone and desktop viewports (CSS pixels) the page is checked at.
VIEWPORTS = ((390, 844), (1280, 800))


def _line_attractor():
    ds = data.synthetic.sentiment(jax.random.key(0), 120, length=(20, 40))
    train = data.synthetic.sentiment(jax.random.key(1), 120, length=(20, 40))
    sign = {"positive": 1.0, "negative": -1.0}
    size = {"very": 2.0, "some": 1.0, "not": -1.0}
    valence = np.array(
        [size.get(w.split("_")[0], 0.0) * sign.get(w.split("_")[-1], 0.0) for w in ds.vocab]
    )
    a_mat = jnp.diag(jnp.array([1.0, 0.5, 0.3]))
    cell = cells.from_function(lambda p, h, x: a_mat @ h + x, state_size=3)
    model = Classifier(cell, ds.vocab_size, embed_size=3, num_classes=2)
    emb = np.zeros((ds.vocab_size, 3))
    emb[:, 0] = 0.1 * valence
    emb[:, 1:] = 0.05 * np.random.default_rng(0).normal(size=(ds.vocab_size, 2))
    params = {
        "embedding": jnp.asarray(emb, jnp.float32),
        "cell": {},
        "readout": {"W": jnp.array([[-1.0, 1.0], [0.0, 0.0], [0.0, 0.0]]), "b": jnp.zeros(2)},
    }
    a = analyze(model, ds, params, train_data=train, key=jax.random.key(2), num_initial=48,
                max_steps=200, word_inputs=0, bow_steps=100, reference="nearest",
                modifiers=12, linear_steps=20, verbose=False)  # fmt: skip
    return a, model, params, ds


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    a, model, params, ds = _line_attractor()
    out = tmp_path_factory.mktemp("report")
    settings = {"Data": {"dataset": "/somewhere/absolute/train.csv"}}
    written = write_report(a, out, model=model, params=params, data=ds, settings=settings,
                           formats=("png", "pdf"), dpi=80)  # fmt: skip
    return {"analysis": a, "model": model, "params": params, "data": ds, "out": out,
            "written": written, "page": (out / "report.html").read_text()}  # fmt: skip


class _Page(HTMLParser):
    """Ids, links, section order and the visible text of a page."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.ids, self.links, self.order, self.text, self.meta = [], [], [], [], []
        self._skip = 0

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids.append(attrs["id"])
            self.order.append(attrs["id"])
        if tag == "a" and attrs.get("href", "").startswith("#"):
            self.links.append(attrs["href"][1:])
        if tag == "meta":
            self.meta.append(attrs)
        if tag in ("style", "script"):
            self._skip += 1

    def handle_endtag(self, tag):
        if tag in ("style", "script"):
            self._skip -= 1

    def handle_data(self, d):
        if not self._skip:
            self.text.append(d)


def _parse(page):
    p = _Page()
    p.feed(page)
    return p


def _depth(text):
    depth = deepest = 0
    for ch in text:
        depth += ch == "("
        deepest = max(deepest, depth)
        depth -= ch == ")"
    return deepest


def test_the_page_leads_with_the_verdict_beside_the_main_figure(report):
    """The first section is the verdict (built from the record, with each claim's number)
    and the main figure; then the figure sections, the numbers and the settings, each
    linked from the nav."""
    a, page = report["analysis"], report["page"]
    v = a.verdict()
    assert v.headline == "Line attractor", v.lines()
    parsed = _parse(page)
    assert {"name": "viewport", "content": "width=device-width, initial-scale=1"} in parsed.meta
    order = parsed.order
    assert order.index("verdict") < order.index("fig-fixed_points") < order.index("numbers")
    assert order.index("numbers") < order.index("settings")
    lead = page[page.index('id="verdict"') : page.index("</section>")]
    assert "fig-fixed_points" in lead and v.headline in lead
    for claim in v.claims:
        assert claim.text.replace("'", "&#x27;") in lead
    # every nav link names a section of the page, and every section is linked
    assert set(parsed.links) <= set(parsed.ids)
    sections = re.findall(r'<section id="([^"]+)"', page)
    assert set(sections) <= set(parsed.links)
    # each figure has a caption saying what to look for
    for name in ("fixed_points", "eigenvalues", "time_constants", "readout_geometry"):
        caption = page[page.index(f'id="fig-{name}"') :].split("</figcaption>")[0]
        assert "Look for" in caption, name
    text = " ".join(parsed.text)
    assert "nan" not in text.split() and "np." not in text


def test_the_notebook_view_is_short_and_made_of_the_report_parts(report):
    """``Analysis._repr_html_``: the verdict, one inline PNG of the slow points, the
    candidates per status and the key numbers, drawn by the report's own helpers."""
    import html as html_lib

    from rnndyn import _views
    from rnndyn.report import key_rows, notebook_html

    a, page = report["analysis"], report["page"]
    view = a._repr_html_()
    assert _views.html_view("Analysis") is not None
    assert view == notebook_html(a)
    v = a.verdict()
    assert v.to_html() in view and "Line attractor" in view
    # exactly one figure, a real PNG of the slow points
    imgs = re.findall(r'<img alt="([^"]+)" src="data:image/png;base64,([^"]+)"', view)
    assert [alt for alt, _ in imgs] == ["fixed points"]
    png = base64.b64decode(imgs[0][1])
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 2000
    # the candidates per status, the same table as in the report's numbers
    table = a.points.candidates.to_html()
    assert table in view and table in page
    for name, n in a.points.candidates.counts().items():
        assert re.search(rf"<th>{name}</th><td[^>]*>{n:,}</td>", view), name
    # the key numbers, each as in the report's table, and only those
    rows = key_rows(a)
    assert len(rows) >= 7
    for k, val in rows:
        cell = f"<tr><th>{html_lib.escape(k)}</th><td>{html_lib.escape(val)}</td></tr>"
        assert cell in view and cell in page
    assert "dimension predicted from word counts" not in view
    assert len(view) < len(page) / 3 and "<section" not in view and "<style" not in view


def test_settings_are_a_table_of_what_was_used_without_absolute_paths(report):
    a, page = report["analysis"], report["page"]
    settings = _parse(page[page.index('id="settings"') :])
    text = " ".join(settings.text)
    assert "/somewhere" not in text and "train.csv" in text  # by file name
    # every AnalysisConfig field, with the tolerance actually used, and its meaning
    assert f"{a.points.candidates.tol:.2g}, the default" in text
    assert "initial states of the slow-point search" in text
    assert "{" not in text and "null" not in text  # no JSON dumps


def test_report_settings_keep_the_training_arguments_that_apply():
    """A synthetic binary task shows its own knobs, not num_classes or vocab_size; a real
    dataset shows vocab_size, not the synthetic knobs; a local file shows its path as
    the checkpoint records it (relative to it)."""
    args = cli.build_parser().parse_args(["report", "/runs/x/ck"])

    def shown(train_args, relative=()):
        meta = {"args": train_args, "paths_relative_to_checkpoint": list(relative),
                "test_accuracy": 0.9}  # fmt: skip
        groups = cli.report_settings(args, meta)
        return {k: v.value for g in groups.values() for k, v in g.items()}

    synth = shown({"dataset": "synthetic-sentiment", "num_classes": 3, "vocab_size": 20000})
    assert "num_classes" not in synth and "vocab_size" not in synth
    assert synth["num_neutral"] == 10 and synth["checkpoint"] == "ck"
    cat = shown({"dataset": "synthetic-categorical", "num_classes": 4})
    assert cat["num_classes"] == 4
    real = shown({"dataset": "imdb_reviews", "vocab_size": 5000})
    assert real["vocab_size"] == 5000 and "num_neutral" not in real and "text_field" not in real
    local = shown({"dataset": "../data/reviews.csv", "text_field": "review"}, ["dataset"])
    assert local["dataset"] == "../data/reviews.csv" and local["text_field"] == "review"
    assert "num_neutral" not in local
    assert shown({"dataset": "synthetic-sentiment", "epochs": 2.0}).get("steps") is None
    assert synth["clip_norm"] == 1.0 and shown(
        {"dataset": "synthetic-sentiment", "clip_norm": 0})["clip_norm"] == "off"  # fmt: skip


def test_figures_are_written_in_each_format_and_embedded(report):
    out, written, page = report["out"], report["written"], report["page"]
    assert (out / "fixed_points.png").exists() and (out / "fixed_points.pdf").exists()
    assert written["fixed_points"].endswith(".png")
    assert written["fixed_points.pdf"].endswith(".pdf")
    assert (out / "fixed_points.pdf").read_bytes().startswith(b"%PDF")
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    pngs = sorted(out.glob("*.png"))
    assert len(images) == len(pngs)
    assert {base64.b64decode(i) for i in images} == {p.read_bytes() for p in pngs}
    assert 'href="fixed_points.pdf"' in page  # each caption links its files
    assert not list(out.glob(".tmp-*"))


def test_report_figures_meet_their_criteria(report):
    """The figures of a real analysis, rated by tests/figure_criteria.py: at least four
    of five criteria each (title from the data, legend, axes, key marks, ≥ 8 pt)."""
    a = report["analysis"]
    kw = figure_inputs(a, model=report["model"], params=report["params"], data=report["data"])
    figs = plots.figures(a, **kw)
    p = {**plots.parts(a, readout_state=kw.get("readout_state"),
                       trajectories=kw.get("trajectories"), lengths=kw.get("lengths")),
         "h0": kw["h0"], "chance": kw.get("chance")}  # fmt: skip
    for name, fig in figs.items():
        ratings = rate(name, fig, p)
        assert sum(ratings.values()) >= PASS, (name, ratings)


def test_summary_has_no_nan_reprs_or_nested_parentheses(report):
    a = report["analysis"]
    text = a.summary()
    lines = text.splitlines()
    assert lines[: len(a.verdict().lines())] == a.verdict().lines()  # the verdict first
    assert "nan" not in text and "np." not in text and "array(" not in text
    assert all(_depth(line) <= 1 for line in lines), [ln for ln in lines if _depth(ln) > 1]
    assert "state-space units" in text  # a distance has its unit


@pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed")
def test_the_page_in_a_browser_at_phone_and_desktop_widths(report):
    """Opened in Chromium at 390 and 1280 CSS px: the document is no wider than the
    viewport (no sideways scroll); the verdict and the main figure lie within the first
    screen; every nav link scrolls its section to the top; and at 1280 px the figure
    grid puts two figures side by side."""
    from playwright.sync_api import sync_playwright

    path = report["out"] / "report.html"
    found = {}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--headless", "--no-sandbox", "--disable-background-networking"],
        )
        try:
            for width, height in VIEWPORTS:
                page = browser.new_page(viewport={"width": width, "height": height})
                outside = []
                page.route("**/*", lambda r, o=outside: r.continue_() if r.request.url.startswith(
                    ("file:", "data:")) else (o.append(r.request.url), r.abort()))  # fmt: skip
                page.goto(path.as_uri(), wait_until="load")
                found[width] = page.evaluate(
                    """() => {
                    const box = s => { const e = document.querySelector(s);
                      if (!e) return null; const r = e.getBoundingClientRect();
                      return {top: r.top, bottom: r.bottom, left: r.left, right: r.right,
                              width: r.width}; };
                    const imgs = [...document.images];
                    const grid = [...document.querySelectorAll('.grid figure')]
                      .map(f => f.getBoundingClientRect().top);
                    return {scroll: document.documentElement.scrollWidth,
                      body: document.body.scrollWidth, inner: window.innerWidth,
                      height: window.innerHeight, verdict: box('.verdict'),
                      figure: box('#verdict figure img'),
                      loaded: imgs.every(i => i.complete && i.naturalWidth > 0),
                      sameRow: grid.some((t, i) => grid.indexOf(t) !== i),
                      links: [...document.querySelectorAll('nav a')]
                        .map(a => a.getAttribute('href'))}; }"""
                )
                tops = {}
                for href in found[width]["links"]:
                    page.evaluate(f"() => document.querySelector('nav a[href=\"{href}\"]').click()")
                    tops[href] = page.evaluate(
                        f"() => document.getElementById('{href[1:]}').getBoundingClientRect().top"
                    )
                found[width]["tops"] = tops
                found[width]["outside"] = outside
                page.close()
        finally:
            browser.close()
    for width, height in VIEWPORTS:
        f = found[width]
        assert f["scroll"] <= f["inner"] == width and f["body"] <= width, f
        assert f["loaded"] and not f["outside"], f
        for key in ("verdict", "figure"):
            box = f[key]
            assert box and 0 <= box["top"] and box["bottom"] <= height, (width, key, box)
        assert len(f["links"]) >= 5
        # a link to a section near the end cannot scroll it to the top: it is on screen
        for href, top in f["tops"].items():
            assert -1 <= top < height, (width, href, top)
    assert found[1280]["sameRow"]  # two figures side by side
    assert found[1280]["figure"]["width"] > 0.45 * 1280  # the main figure uses the width
    assert found[390]["figure"]["width"] > 0.85 * 390


def test_report_rejects_bad_arguments(tmp_path, capsys):
    assert cli.main(["report", str(tmp_path), "--trajectories", "0"]) == 2
    assert "--trajectories must be >= 1, got 0" in capsys.readouterr().err
    assert cli.main(["report", str(tmp_path), "--tol", "-1"]) == 2
    assert "--tol must be a finite number > 0, got -1.0" in capsys.readouterr().err
    assert cli.main(["report", str(tmp_path), "--dpi", "0"]) == 2
    assert "--dpi must be a finite number > 0" in capsys.readouterr().err
    assert cli.main(["demo", "--steps", "0"]) == 2
    with pytest.raises(SystemExit):
        cli.main(["report", str(tmp_path), "--format", "jpg"])


@pytest.mark.slow
def test_demo_writes_figures_and_report(tmp_path, capsys):
    out = tmp_path / "demo"
    argv = ["demo", "--out", str(out), "--steps", "300", "--quiet", "--format", "png",
            "--format", "svg", "--dpi", "120"]  # fmt: skip
    assert cli.main(argv) == 0
    printed = capsys.readouterr().out
    assert str(out) in printed
    assert "\nVerdict: " in printed  # after training, the summary opens on the verdict
    pngs = sorted(p.name for p in out.glob("*.png"))
    for name in ("fixed_points", "eigenvalues", "word_effects", "explained_variance"):
        assert f"{name}.png" in pngs and (out / f"{name}.svg").exists()
    assert not list(out.glob(".tmp-*"))  # atomic writes leave no temporaries
    page = (out / "report.html").read_text()
    # with SVG asked for, the page embeds the SVG files themselves
    images = re.findall(r'src="data:image/svg\+xml;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(images) == len(pngs)
    assert (out / "eigenvalues.svg").read_bytes() in {base64.b64decode(i) for i in images}
    record = json.loads((out / "analysis.json").read_text())

    again = Analysis.from_json(out / "analysis.json")  # the JSON and its .npz read back
    assert again.linearized.full == record["linearized"]["full"]
    assert again.verdict().headline in page
    # the summary table counts the record's analysed slow points
    assert f"<td>{len(again.points.kept)}</td>" in page
    assert record["model"]["cell"] == "gru"
    # the summary table shows the record's numbers
    assert f"{record['linearized']['full']:.4f}" in page
    assert "synthetic-sentiment" in page  # the training settings are shown
    assert "vocab size" not in page.split('id="settings"')[1]  # not for a synthetic task
    # the demo's figures, rated by their own criteria
    from rnndyn.checkpoint import load_checkpoint

    ckpt = load_checkpoint(out)
    from rnndyn.cli.data import _rebuilt

    _, test = _rebuilt(cli.build_parser().parse_args(["report", str(out)]), ckpt)
    kw = figure_inputs(again, model=ckpt.model, params=ckpt.params, data=test)
    p = {**plots.parts(again, readout_state=kw.get("readout_state"),
                       trajectories=kw.get("trajectories"), lengths=kw.get("lengths")),
         "h0": kw["h0"], "chance": kw.get("chance")}  # fmt: skip
    for name, fig in plots.figures(again, **kw).items():
        ratings = rate(name, fig, p)
        assert sum(ratings.values()) >= PASS, (name, ratings)


def test_analyze_figures_goes_through_the_report(monkeypatch, tmp_path):
    seen = []
    monkeypatch.setattr(cli, "run_report", lambda args: seen.append(args) or 0)
    assert cli.main(["analyze", str(tmp_path), "--figures", "--num-initial", "64"]) == 0
    assert seen and seen[0].num_initial == 64 and seen[0].checkpoint == str(tmp_path)
    # without --figures, analyze does not draw
    seen.clear()
    cli.main(["analyze", str(tmp_path)])
    assert not seen


def test_contextual_figures_and_their_sections(report):
    """The linear network's contextual stage: its gains are all 1 (nothing modifies), the
    figures are drawn with captions and placed in their sections."""
    a, page = report["analysis"], report["page"]
    c = a.contextual
    np.testing.assert_allclose(c.gain[:, 0], 1.0, atol=1e-4)
    for name in ("modifier_gains", "model_accuracy"):
        caption = page[page.index(f'id="fig-{name}"') :].split("</figcaption>")[0]
        assert "Look for" in caption, name
    ctx = page.index('id="context"')
    assert ctx < page.index('id="fig-modifier_gains"') < page.index('id="numbers"')
    lin = page.index('id="linearisation"')
    assert lin < page.index('id="fig-model_accuracy"') < ctx
    # the summary and the verdict say there is no modifier, without a caveat for it
    assert "modifiers, gain on the next word beyond moving along the line: none" in a.summary()
    mods = [cl for cl in a.verdict().claims if cl.topic == "modifiers"]
    assert len(mods) == 1 and mods[0].holds is None and mods[0].text.startswith("no modifier")
    assert not [cl for cl in a.verdict().caveats if "modif" in cl.text]


def test_the_json_report_leads_with_the_headline_numbers_and_reads_back(report, tmp_path):
    a = report["analysis"]
    a.to_json(tmp_path / "a.json")
    record = json.loads((tmp_path / "a.json").read_text())
    one = record["one_step_error"]
    assert one["median"] == pytest.approx(a.fidelity.one_step_median)
    assert one["median"] < 1e-3  # an affine cell is its own linearisation (float32 states)
    assert one["study_a"] == 0.1 and set(one["quantiles"]) == {"0.1", "0.25", "0.5", "0.75",
                                                                 "0.9"}  # fmt: skip
    mods = record["modifiers"]
    assert [m["word"] for m in mods] == list(a.contextual.names[:10])
    assert all(m["kind"] == "weak" and abs(m["strength"]) < 1e-3 for m in mods)
    assert all(m["reach"] == "nan" or m["reach"] >= 0 for m in mods)  # no reach without a gain
    back = Analysis.from_json(tmp_path / "a.json")
    for name in ("contextual", "linear_rnn", "fidelity"):
        for key, want in vars(getattr(a, name)).items():
            got = getattr(getattr(back, name), key)
            if isinstance(want, np.ndarray):
                np.testing.assert_array_equal(got, want, err_msg=f"{name}.{key}")
            else:
                assert got == want or (want != want and got != got), (name, key)
    assert back.summary() == a.summary()
    # equal, nan reaches included
    assert repr(back.headline_numbers()) == repr(a.headline_numbers())
