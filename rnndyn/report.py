"""A self-contained report of an analysis: the figures as files and ``report.html``.

``write_report(analysis, out_dir, model=..., params=..., data=...)`` draws every figure
of ``rnndyn.plots.figures`` (with document trajectories, ``h0`` and the exact readout
when the model is given), writes each in the chosen formats (PNG, SVG, PDF) at the
chosen dpi, and writes a single ``report.html`` with the figures embedded. The page
opens on the verdict (``Analysis.verdict()``: what the dynamics are, each claim with
its number, the caveats) beside the main figure, then sections with links, each figure
with a caption that says what to look for, the headline numbers and a table of the
settings used. It reads on a phone as well as on a desktop (a viewport tag, no sideways
scrolling, figures in a grid that uses the width). Every file is written atomically (a
temporary file renamed into place), so a reader never sees half a report.

Needs the ``plot`` extra (matplotlib).
"""

from __future__ import annotations

import base64
import dataclasses
import html
import os
from collections.abc import Mapping, Sequence
from typing import Any

import jax.numpy as jnp
import numpy as np

from rnndyn._io import atomic_write

__all__ = [
    "CAPTIONS",
    "KEY_NUMBERS",
    "SECTIONS",
    "Setting",
    "analysis_settings",
    "figure_inputs",
    "key_rows",
    "notebook_html",
    "summary_rows",
    "trajectories",
    "write_report",
]

#: What each figure shows and what to look for (the captions of report.html).
CAPTIONS = {
    "fixed_points": "The slow points in the top two principal components of the visited "
    "states, with the trajectories of sample documents from h0 (star) to their ends (×). "
    "Look for a line of points with the trajectories running along it, each class ending "
    "at its own end; the colour is the readout at each point, so it should change steadily "
    "along the line. Large black-edged markers are certified roots, small ones slow points "
    "(q below tol); the shape is the stability at the point: circle stable, diamond "
    "marginal, cross unstable. The ring is the reference point where the linearisation is "
    "taken.",
    "fixed_points_3d": "The same in three principal components, with thin trajectories so "
    "that the points stay visible. Look for the points forming one curve, not a cloud.",
    "eigenvalues": "Eigenvalues of the recurrent Jacobian at every point, with the unit "
    "circle; the inset zooms in on λ = 1, with the marginal band dotted. Look for one "
    "eigenvalue per point in the band (a slow mode that holds the memory) and the rest well "
    "inside the circle (fast decay). Top eigenvalues outside the circle are unstable points.",
    "time_constants": "Time constants τ = 1/|log|λ|| of the slowest modes, in steps. Look "
    "for τ₁ above the median document length (dashed: the memory outlasts a document) and a "
    "gap down to τ₂ (a single slow mode).",
    "readout_geometry": "The readout (arrow, from the reference point) and each point's "
    "slowest direction (green segments) over the visited states (grey). Look for the "
    "segments running along the manifold and the arrow pointing along it: the network reads "
    "out its position on the manifold. Right: how tangent each point's slowest direction is "
    "to the manifold (1 = tangent).",
    "word_effects": "The words that move the state furthest along the slow mode at the "
    "reference point, l₁ · J_inp · x_w. Look for the evidence words of each class at opposite "
    "ends and neutral words missing.",
    "effect_vs_bow": "Each word's logit change through the slow modes against its weight in a "
    "bag-of-words logistic regression. Look for the words on a line through the origin: a high "
    "r means the network adds up its words as a bag of words does.",
    "explained_variance": "Variance per principal component of the visited states and of the "
    "slow points, next to the dimension predicted from word counts alone. Look for the series "
    "reaching the dashed threshold at the same number of components: the manifold's "
    "dimension.",
    "simplex": "The slow points in their top C − 1 principal components, coloured by the class "
    "the readout assigns, with the readout rows as arrows. Look for a triangle (3 classes) or "
    "a tetrahedron (4) with one class at each corner.",
    "linearized_accuracy": "Accuracy of the network and of its linearisations (at the "
    "reference point, around the nearest point, along the trajectory from h0), with chance "
    "dashed. Look for how much the linearised models lose: locally the dynamics are linear; "
    "over long documents the errors add up, so a loss there is expected.",
    "modifier_gains": "The gain the strongest modifiers apply to the valence of a word d tokens "
    "after them, beyond what moving the state along the line does (1: no effect, 0: erased, "
    "−1: flipped); the vertical tick marks each word's reach. Look for negators below 1 (study "
    "C: flipped; networks may only attenuate) and intensifiers above it, returning to 1 within "
    "a few tokens: how long the state stays in the modifier subspace.",
    "modifier_subspace": "Where the modifiers push the state off the line, in the top two "
    "directions of the modifier subspace; the cross is the line itself. Look for intensifiers "
    "(vermillion) and negators (blue) on opposite sides of PC1, as study C reports, and "
    "valence words absent: only the modifiers leave the line.",
    "model_accuracy": "Accuracy of the network next to simpler models: a bag of words, a bag "
    "of words extended with per-word modifier strength, reach and position gains, a linear "
    "RNN trained directly and the linearised network. Look for the extended bag of words "
    "closing most of the gap from the bag of words to the network (study C: over 90%) and "
    "the linear RNN a few points below the network (study A: about 3).",
}

#: Sections of report.html after the verdict: ``(id, heading, figure names)``; figures
#: not named here (e.g. from new stages) go to a last section, "More figures".
SECTIONS = (
    ("state-space", "Slow points in state space", ("fixed_points_3d", "readout_geometry",
                                                   "simplex")),
    ("dynamics", "Dynamics at the slow points", ("eigenvalues", "time_constants")),
    ("words", "Words", ("word_effects", "effect_vs_bow")),
    ("dimension", "Dimension", ("explained_variance",)),
    ("linearisation", "Linearisation", ("linearized_accuracy", "model_accuracy")),
    ("context", "Contextual processing", ("modifier_gains", "modifier_subspace")),
)  # fmt: skip

#: The figure beside the verdict (the first of these that was drawn).
MAIN_FIGURES = ("fixed_points", "explained_variance")


@dataclasses.dataclass(frozen=True)
class Setting:
    """One row of the settings table: the value used and what it means."""

    value: Any
    meaning: str = ""


def trajectories(
    model: Any, params: Any, data: Any, num: int = 40
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """State trajectories of the first ``num`` documents of ``data``.

    Returns:
      ``(states (B, T, S), lengths (B,), labels)`` with ``B = min(num, len(data))``.
    """
    if num < 1:
        raise ValueError(f"num must be >= 1, got {num}")
    n = min(num, len(data.lengths))
    tokens = np.asarray(data.tokens[:n])
    lengths = np.asarray(data.lengths[:n])
    mask = np.arange(tokens.shape[1])[None, :] < lengths[:, None]
    hs = model.states(params, jnp.asarray(tokens), jnp.asarray(mask))
    return np.asarray(hs), lengths, np.asarray(data.labels[:n])


def summary_rows(analysis: Any) -> list[tuple[str, str]]:
    """The headline numbers of an ``Analysis`` as ``(name, value)`` rows."""
    a = analysis
    spec, geo, lin, pred = a.spectra, a.geometry, a.linearized, a.prediction
    fpd, sd = geo.fixed_point_dimension, geo.state_dimension
    model = a.model if isinstance(a.model, Mapping) else {}
    na = "n/a, no slow point"
    lam1 = np.asarray(spec.spectral_radius)
    two = len(a.points.kept) > 1
    rows = [
        ("model", ", ".join(f"{k.replace('_', ' ')} {_value(v)}" for k, v in model.items())),
        ("dataset", str(a.dataset)),
        ("slow points", a.points.describe()),
        ("slow points analysed: merged, outliers dropped", str(len(a.points.kept))),
        (f"manifold dimension: PCs to {geo.threshold:.0%}", str(geo.manifold_dimension)),
        ("slow points: PCs to 90% / 95%, participation ratio",
         f"{fpd.pca90} / {fpd.pca95}, {fpd.participation_ratio:.2f}" if two else
         "n/a, fewer than two points"),
        ("visited states: PCs to 90% / 95%, participation ratio",
         f"{sd.pca90} / {sd.pca95}, {sd.participation_ratio:.2f}"),
        ("dimension predicted from word counts",
         f"{pred.dimension}, participation ratio {pred.participation_ratio:.2f}"),
        ("top |λ| at the slow points: median, min, max",
         f"{np.median(lam1):.4f}, {lam1.min():.4f}, {lam1.max():.4f}" if lam1.size else na),
        ("top time constant τ₁, median, steps",
         f"{np.median(spec.time_constants[:, 0]):.1f}" if lam1.size else na),
        ("median document length, tokens", str(a.word_effects.trajectory_length)),
        ("readout overlap with the manifold", f"{geo.readout_overlap:.3f}"),
        ("word effects vs bag of words, Pearson r",
         _fmt(a.word_effects.correlation, ".3f", na)),
        ("accuracy: full network", f"{lin.full:.4f}"),
        ("accuracy: bag of words, " + ("held out" if a.baseline.held_out else "training"),
         f"{a.baseline.accuracy:.4f}"),
        ("accuracy: linearised at the reference point", _fmt(lin.initial, ".4f", na)),
        ("accuracy: linearised around the nearest point", _fmt(lin.nearest, ".4f", na)),
        ("accuracy: linearised along the trajectory under x*", _fmt(lin.trajectory, ".4f", "n/a")),
        ("analysis time, s", f"{a.seconds:.1f}"),
    ]  # fmt: skip
    return rows


#: The rows of ``summary_rows`` (by the start of their names) that the notebook view
#: shows: the dimension, the slowest mode, the readout and the accuracies.
KEY_NUMBERS = (
    "slow points analysed",
    "manifold dimension",
    "top |λ|",
    "top time constant",
    "readout overlap",
    "accuracy: full network",
    "accuracy: bag of words",
    "accuracy: linearised at the reference point",
)


def key_rows(analysis: Any) -> list[tuple[str, str]]:
    """The rows of ``summary_rows`` whose names start with one of ``KEY_NUMBERS``."""
    return [row for row in summary_rows(analysis) if row[0].startswith(KEY_NUMBERS)]


def _rows_html(rows: Sequence[tuple[str, str]]) -> str:
    esc = html.escape
    return "\n".join(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in rows)


def notebook_html(analysis: Any, *, dpi: float = 72) -> str:
    """The short view of an ``Analysis`` in a notebook (``Analysis._repr_html_``).

    The same parts as the top of ``report.html``, drawn by the same helpers: the verdict
    (``Verdict.to_html``), the main figure (``MAIN_FIGURES``: the slow points in their
    top principal components) as an inline PNG at ``dpi``, the candidates per status
    (``FixedPoints.to_html``) and the key numbers (``key_rows``). Without matplotlib the
    figure is left out with a line that says so. No trajectories are drawn: the record
    holds no model; ``write_report`` draws them.

    Returns:
      An HTML fragment (no ``<html>`` or ``<style>``: it sits inside the notebook).
    """
    fig_html = ""
    try:
        from rnndyn import plots
    except ImportError:
        fig_html = "<p>No figure: matplotlib is missing (pip install 'rnndyn[plot]').</p>"
    else:
        figs = plots.figures(analysis, only=MAIN_FIGURES)
        main = next((n for n in MAIN_FIGURES if n in figs), None)
        if main is not None:
            png = plots.render(figs[main], "png", dpi=dpi)
            fig_html = (
                f'<figure style="margin:0;max-width:480px">{_img(main, {"png": png})}'
                f'<figcaption style="font-size:smaller">{html.escape(main.replace("_", " "))}'
                "</figcaption></figure>"
            )
    model = analysis.model if isinstance(analysis.model, Mapping) else {}
    cell = model.get("cell", "RNN")
    title = f"rnndyn analysis: {cell} on {analysis.dataset or 'data'}"
    flex = 'style="display:flex;flex-wrap:wrap;gap:1em;align-items:flex-start"'
    return (
        f'<div class="rnndyn-analysis"><p><b>{html.escape(title)}</b></p>\n'
        f'<div {flex}><div style="flex:1 1 320px">{analysis.verdict().to_html()}</div>\n'
        f"{fig_html}</div>\n"
        f"<div {flex}><div>{analysis.points.candidates.to_html()}</div>\n"
        f'<div><table class="numbers">\n{_rows_html(key_rows(analysis))}\n</table></div>'
        '</div>\n<p style="font-size:smaller">analysis.summary() has every number; '
        "rnndyn.report.write_report(analysis, dir) writes every figure and report.html.</p>"
        "</div>"
    )


def _fmt(x: float, spec: str, missing: str) -> str:
    return format(float(x), spec) if np.isfinite(x) else missing


def analysis_settings(analysis: Any) -> dict[str, Setting]:
    """The ``AnalysisConfig`` of ``analysis`` as settings rows, with the values that
    were actually used where a field says "default" (``None``), e.g. the tolerance."""
    cfg = analysis.settings
    if cfg is None:
        return {}
    used = {
        "tol": f"{analysis.points.candidates.tol:.2g}, the default S·1e-8/2",
        "manifold_dim": f"chosen by the rule: {analysis.geometry.manifold_dimension}",
        "neighbours": "default, max(2d + 2, 10)",
        "max_examples": "all examples",
        "key": "none",
    }
    out = {}
    for f in dataclasses.fields(cfg):
        v = getattr(cfg, f.name)
        if f.name == "key" and v is not None:
            text = " ".join(str(int(x)) for x in v)
        elif v is None:
            text = used.get(f.name, "default")
        elif f.name == "max_examples":
            text = f"{v:,}; {analysis.linearized.num_examples:,} analysed"
        elif f.name == "word_inputs" and v == 0:
            text = "0, skipped"
        else:
            text = _value(v)
        out[f.name] = Setting(text, f.metadata.get("help", ""))
    return out


def _value(v: Any) -> str:
    """A setting's value as plain text: no reprs, no absolute paths."""
    if isinstance(v, Setting):
        return _value(v.value)
    if v is None:
        return "default"
    if isinstance(v, bool) or isinstance(v, np.bool_):
        return "yes" if v else "no"
    if isinstance(v, (float, np.floating)):
        return f"{float(v):g}"
    if isinstance(v, (int, np.integer)):
        return f"{int(v)}"
    if isinstance(v, str):
        return os.path.basename(v.rstrip("/\\")) or v if os.path.isabs(v) else v
    if isinstance(v, Mapping):
        return "; ".join(f"{k} {_value(x)}" for k, x in v.items())
    if isinstance(v, (list, tuple, np.ndarray)):
        return ", ".join(_value(x) for x in v)
    return str(v)


def _settings_html(groups: Mapping[str, Mapping[str, Any]]) -> str:
    esc = html.escape
    out = []
    for heading, rows in groups.items():
        if not rows:
            continue
        body = "\n".join(
            f"<tr><th>{esc(str(k).replace('_', ' '))}</th><td>{esc(_value(v))}</td>"
            f'<td class="meaning">{esc(v.meaning if isinstance(v, Setting) else "")}</td></tr>'
            for k, v in rows.items()
        )
        out.append(f'<h3>{esc(heading)}</h3>\n<div class="scroll"><table class="settings">'
                   f"<tr><th>setting</th><th>value</th><th>meaning</th></tr>\n{body}\n"
                   "</table></div>")  # fmt: skip
    return "\n".join(out)


_CSS = """
:root { --fg: #1d1d1f; --muted: #5a5a5f; --line: #d9d9de; --ok: #00734d; --no: #b3261e;
        --warn: #8a5a00; --bg-soft: #f5f5f7; }
* { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; }
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg);
       margin: 0 auto; padding: 0 16px 2em; max-width: 1440px; line-height: 1.45;
       overflow-wrap: anywhere; }
header h1 { font-size: 1.15rem; margin: 0.6em 0 0.1em; }
@media (min-width: 600px) { header h1 { font-size: 1.35rem; } }
header .sub { color: var(--muted); margin: 0 0 0.4em; font-size: 0.92rem; }
nav { display: flex; gap: 0.2em 1em; overflow-x: auto; white-space: nowrap;
      border-bottom: 1px solid var(--line); padding: 0.3em 0 0.4em; font-size: 0.92rem;
      scrollbar-width: thin; }
nav a { color: #0b57d0; text-decoration: none; }
nav a:hover { text-decoration: underline; }
h2 { font-size: 1.15rem; margin: 1.4em 0 0.5em; border-bottom: 1px solid var(--line); }
h3 { font-size: 1rem; margin: 1.1em 0 0.4em; }
.lead { display: grid; grid-template-columns: minmax(0, 1fr); gap: 0.6em 1.6em;
        align-items: start; margin-top: 0.6em; }
@media (min-width: 900px) {
  .lead { grid-template-columns: minmax(0, 2fr) minmax(0, 3fr);
          grid-template-areas: "said figure" "how figure"; grid-template-rows: auto 1fr; }
  .lead .said { grid-area: said; } .lead figure { grid-area: figure; }
  .lead .how { grid-area: how; }
}
.verdict .headline { font-size: 1.2rem; font-weight: 650; margin: 0 0 0.3em; }
.verdict ul { list-style: none; padding: 0; margin: 0; font-size: 0.9rem; line-height: 1.35; }
@media (min-width: 600px) { .verdict ul { font-size: 0.94rem; line-height: 1.45; } }
.verdict li { padding: 0.12em 0 0.12em 1.4em; text-indent: -1.4em; }
.verdict .mark { display: inline-block; width: 1.4em; text-indent: 0; font-weight: 700; }
.verdict .holds .mark { color: var(--ok); }
.verdict .fails .mark { color: var(--no); }
.verdict .unknown .mark { color: var(--muted); }
.verdict .warning { color: var(--warn); }
.verdict .note { color: var(--muted); }
.verdict details.studies { margin-top: 0.3em; font-size: 0.9rem; }
.verdict details.studies summary { cursor: pointer; color: var(--muted); }
.how { font-size: 0.82rem; color: var(--muted); margin: 0; }
figure { margin: 0; min-width: 0; }
figure img { display: block; width: 100%; max-width: 100%; height: auto; }
.lead figure img { max-height: calc(100vh - 9rem); object-fit: contain; object-position: left top; }
figcaption { font-size: 0.88rem; color: var(--muted); margin-top: 0.3em; }
figcaption b { color: var(--fg); }
figcaption .files a { margin-right: 0.6em; }
.grid { display: grid; gap: 1.4em 1.6em;
        grid-template-columns: repeat(auto-fill, minmax(min(100%, 460px), 1fr)); }
.grid figure.wide { grid-column: 1 / -1; max-width: 1100px; }
.scroll { overflow-x: auto; max-width: 100%; }
table { border-collapse: collapse; margin: 0.4em 0; font-size: 0.9rem; }
th, td { border: 1px solid var(--line); padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: var(--bg-soft); font-weight: normal; }
td.meaning { color: var(--muted); }
details ul { font-size: 0.88rem; padding-left: 1.2em; }
footer { margin-top: 2em; font-size: 0.85rem; color: var(--muted); }
"""


def _img(name: str, rendered: Mapping[str, bytes], lead: bool = False) -> str:
    fmt = "svg" if "svg" in rendered else "png"
    mime = "image/svg+xml" if fmt == "svg" else "image/png"
    data = base64.b64encode(rendered[fmt]).decode("ascii")
    alt = html.escape(name.replace("_", " "))
    return f'<img alt="{alt}" src="data:{mime};base64,{data}">'


def _figure_html(
    name: str, rendered: Mapping[str, bytes], files: Sequence[str], wide: bool = False
) -> str:
    esc = html.escape
    links = " ".join(
        f'<a href="{esc(os.path.basename(f))}">{esc(os.path.basename(f))}</a>' for f in files
    )
    caption = CAPTIONS.get(name, "")
    cls = ' class="wide"' if wide else ""
    img = _img(name, rendered)
    if files:  # a tap or click opens the file at full size (small screens)
        img = f'<a href="{esc(os.path.basename(files[0]))}">{img}</a>'
    return (
        f'<figure id="fig-{esc(name)}"{cls}>{img}<figcaption><b>'
        f"{esc(name.replace('_', ' '))}</b>: {esc(caption)}"
        + (f' <span class="files">{links}</span>' if links else "")
        + "</figcaption></figure>"
    )


def _page(
    title: str,
    subtitle: str,
    analysis: Any,
    figs: Mapping[str, Mapping[str, bytes]],
    files: Mapping[str, Sequence[str]],
    settings: Mapping[str, Mapping[str, Any]],
    wide: frozenset[str] = frozenset(),
) -> str:
    esc = html.escape
    v = analysis.verdict()
    main = next((n for n in MAIN_FIGURES if n in figs), next(iter(figs), None))
    sections = []
    placed = {main}
    for sid, heading, names in SECTIONS:
        shown = [n for n in names if n in figs and n not in placed]
        placed.update(shown)
        if shown:
            sections.append((sid, heading, shown))
    rest = [n for n in figs if n not in placed]
    if rest:
        sections.append(("more", "More figures", rest))
    nav = [("verdict", "Verdict")] + [(sid, h) for sid, h, _ in sections]
    nav += [("numbers", "Numbers")]
    if v.caveats:
        nav.append(("caveats", "Caveats"))
    nav.append(("settings", "Settings"))
    body = []
    lead_fig = _figure_html(main, figs[main], files.get(main, ())) if main else ""
    body.append(
        f'<section id="verdict" class="lead"><div class="said">{v.to_html("#caveats")}</div>\n'
        + lead_fig
        + '\n<p class="how">✓ met, ✗ not met, · not measurable: the thresholds are in '
        "rnndyn.analysis.verdict</p></section>"
    )
    for sid, heading, names in sections:
        grid = "\n".join(_figure_html(n, figs[n], files.get(n, ()), n in wide) for n in names)
        body.append(f'<section id="{sid}"><h2>{esc(heading)}</h2><div class="grid">\n{grid}\n'
                    "</div></section>")  # fmt: skip
    rows = _rows_html(summary_rows(analysis))
    lines = "\n".join(f"<li>{esc(line)}</li>" for line in analysis.summary().splitlines())
    body.append(
        f'<section id="numbers"><h2>Numbers</h2><div class="scroll"><table>\n{rows}\n</table>'
        f"<h3>Every start of the search</h3>{analysis.points.candidates.to_html()}"
        f"</div><details><summary>The text summary</summary><ul>\n{lines}\n</ul></details>"
        "</section>"
    )
    if v.caveats:
        items = "\n".join(
            f'<li class="{esc(c.severity)}"><b>{esc(c.severity)}</b>: {esc(c.text)}</li>'
            for c in v.caveats
        )
        body.append(f'<section id="caveats"><h2>Caveats</h2><ul>\n{items}\n</ul></section>')
    body.append(f'<section id="settings"><h2>Settings</h2>\n{_settings_html(settings)}</section>')
    links = " ".join(f'<a href="#{sid}">{esc(h)}</a>' for sid, h in nav)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{esc(title)}</title>
<style>{_CSS}</style></head><body>
<header><h1>{esc(title)}</h1><p class="sub">{esc(subtitle)}</p>
<nav aria-label="sections">{links}</nav></header>
<main>
{chr(10).join(body)}
</main>
<footer>Written by rnndyn (rnndyn.report.write_report).</footer>
</body></html>
"""


def _aspect(fig: Any) -> float:
    w, h = fig.get_size_inches()
    return float(w / h)


def _majority(data: Any) -> float | None:
    """The majority class' rate in ``data`` (exclusive classes), else ``None``."""
    labels = getattr(data, "labels", None)
    if labels is None:
        return None
    labels = np.asarray(labels)
    if labels.ndim != 1 or labels.size == 0:
        return None
    return float(np.bincount(labels.astype(np.int64)).max() / labels.size)


def figure_inputs(
    analysis: Any,
    *,
    model: Any = None,
    params: Any = None,
    data: Any = None,
    num_trajectories: int = 40,
) -> dict[str, Any]:
    """The keyword arguments of ``rnndyn.plots.figures`` that ``write_report`` draws
    with: class names, ``h0``, the readout in state space, document trajectories and the
    majority class' rate as chance (each where the model, parameters and data allow)."""
    from rnndyn.analysis import readout_in_state_space

    kw: dict[str, Any] = {"max_trajectories": num_trajectories}
    kw["class_names"] = getattr(data, "class_names", None) if data is not None else None
    if model is not None and params is not None:
        kw["h0"] = np.asarray(model.cell.initial_state(), np.float64)
        if analysis.reference is not None:
            kw["readout_state"] = readout_in_state_space(model, params, analysis.reference.point)
        if data is not None:
            hs, lengths, labels = trajectories(model, params, data, num_trajectories)
            kw.update(trajectories=hs, lengths=lengths, labels=labels)
    multilabel = bool((analysis.model or {}).get("multilabel", False))
    majority = None if data is None or multilabel else _majority(data)
    if majority is not None:
        kw.update(chance=majority, chance_label="chance, majority class")
    return kw


def write_report(
    analysis: Any,
    out_dir: str | os.PathLike,
    *,
    model: Any = None,
    params: Any = None,
    data: Any = None,
    settings: Mapping[str, Any] | None = None,
    num_trajectories: int = 40,
    title: str | None = None,
    formats: Sequence[str] = ("png",),
    dpi: float = 150,
) -> dict[str, str]:
    """Write the figures of ``analysis`` and a self-contained ``report.html``.

    Args:
      analysis: an ``rnndyn.Analysis``.
      out_dir: directory to write into (created if missing).
      model, params: the analysed ``Classifier`` and its parameters; with them the
        figures use the exact readout in state space, mark ``h0`` and (with ``data``)
        draw document trajectories.
      data: a ``rnndyn.data.Dataset`` whose first ``num_trajectories`` documents are
        drawn as trajectories (its majority class gives the chance line).
      settings: more settings to show, by group: ``{"Training": {"cell": "gru", ...}}``;
        a value may be a ``Setting`` (value and meaning). The analysis settings
        (``analysis_settings``) are always shown. Absolute paths are shown by file name.
      num_trajectories: documents drawn in the state-space figures.
      title: the page title.
      formats: figure files to write, any of ``rnndyn.plots.FORMATS`` (the page embeds
        SVG if asked for, else PNG).
      dpi: resolution of the PNG files and of the embedded PNGs.

    Returns:
      ``{name: path}`` of every file written: each figure by name (its first format),
      ``"<name>.<format>"`` for the other formats, and ``"report"``.
    """
    from rnndyn import plots

    formats = tuple(dict.fromkeys(formats))
    bad = [f for f in formats if f not in plots.FORMATS]
    if not formats or bad:
        raise ValueError(f"formats must be some of {', '.join(plots.FORMATS)}, got {formats!r}")
    out_dir = os.fspath(out_dir)
    os.makedirs(out_dir, exist_ok=True)
    kw = figure_inputs(analysis, model=model, params=params, data=data,
                       num_trajectories=num_trajectories)  # fmt: skip
    figs = plots.figures(analysis, **kw)
    multilabel = bool((analysis.model or {}).get("multilabel", False))
    written: dict[str, str] = {}
    rendered: dict[str, dict[str, bytes]] = {}
    files: dict[str, list[str]] = {}
    for name, fig in figs.items():
        rendered[name] = {f: plots.render(fig, f, dpi=dpi) for f in formats}
        if "png" not in formats and "svg" not in formats:  # the page needs a picture
            rendered[name]["png"] = plots.render(fig, "png", dpi=dpi)
        for i, f in enumerate(formats):
            path = os.path.join(out_dir, f"{name}.{f}")
            atomic_write(path, rendered[name][f])
            written[name if i == 0 else f"{name}.{f}"] = path
            files.setdefault(name, []).append(path)
    model_desc = analysis.model if isinstance(analysis.model, Mapping) else {}
    cell = model_desc.get("cell", "RNN")
    title = title or f"rnndyn analysis: {cell} on {analysis.dataset or 'data'}"
    size = model_desc.get("hidden_size", model_desc.get("state_size"))
    parts = [f"{cell}" + (f", {size} units" if size else "")]
    if model_desc.get("num_classes"):
        kind = "labels" if multilabel else "classes"
        parts.append(f"{model_desc['num_classes']} {kind}")
    parts.append(f"{analysis.linearized.num_examples:,} examples analysed")
    parts.append(f"analysis {analysis.seconds:.0f} s")
    groups: dict[str, Mapping[str, Any]] = {}
    extra = dict(settings or {})
    loose = {k: v for k, v in extra.items() if not isinstance(v, Mapping)}
    if loose:
        groups["Run"] = loose
    groups.update({k: v for k, v in extra.items() if isinstance(v, Mapping)})
    groups["Analysis"] = {**analysis_settings(analysis), **dict(groups.get("Analysis", {}))}
    wide = frozenset(n for n, f in figs.items() if _aspect(f) > 1.6)
    text = _page(title, " · ".join(parts), analysis, rendered, files, groups, wide)
    path = os.path.join(out_dir, "report.html")
    atomic_write(path, text.encode("utf-8"))
    written["report"] = path
    return written
