"""A self-contained report of an analysis: PNG figures and ``report.html``.

``write_report(analysis, out_dir, model=..., params=..., data=...)`` draws every figure
of ``rnndyn.plots.figures`` (with document trajectories and the top right
eigenvectors when the model is given), writes them as PNG files and a single
``report.html`` with the figures embedded (base64), the headline numbers and the
settings used. Every file is written atomically (a temporary file renamed into place),
so a reader never sees half a report.

Needs the ``plot`` extra (matplotlib).
"""

from __future__ import annotations

import base64
import html
import io
import json
import os
from collections.abc import Mapping
from typing import Any

import jax.numpy as jnp
import numpy as np

from rnndyn._io import atomic_write

__all__ = [
    "CAPTIONS",
    "summary_rows",
    "trajectories",
    "write_report",
]

#: What each figure shows (used as the caption in report.html).
CAPTIONS = {
    "fixed_points": "Fixed points (large dots, coloured by the readout), slow points (small "
    "dots: states where the dynamics nearly stop, q below the slow-point tolerance, not "
    "certified roots) and the hidden-state trajectories of sample documents, in the top two "
    "principal components of the visited states. A line attractor is a line of points with "
    "the trajectories running along it.",
    "fixed_points_3d": "The same in three principal components.",
    "eigenvalues": "Eigenvalues of the recurrent Jacobian at every fixed point, overlaid, with "
    "the unit circle. A line attractor has one eigenvalue at 1 per point; the rest decay.",
    "time_constants": "Time constants τ = 1/|log|λ|| of the slowest modes (steps); the median "
    "over points in colour.",
    "readout_geometry": "Top right eigenvector at each fixed point (green segments) and the "
    "readout direction (arrow), projected on the points' top two PCs; right: how tangent each "
    "point's top eigenvector is to the manifold.",
    "word_effects": "Words that push the state furthest along the slow mode, at the reference "
    "fixed point: l₁ · J_inp · x_w.",
    "effect_vs_bow": "Each word's logit change through the slow modes against its weight in a "
    "bag-of-words logistic regression, with Pearson r.",
    "explained_variance": "Variance explained per principal component of the visited states and "
    "of the fixed points, next to the dimension predicted from word counts alone.",
    "simplex": "Fixed points in their top C − 1 principal components, coloured by the class "
    "the readout assigns: a triangle for 3 classes, a tetrahedron for 4.",
    "linearized_accuracy": "Accuracy of the full network and of its linearisation around one "
    "reference fixed point (near the initial state), and piecewise around the nearest point; "
    "per document length when the record has it.",
}


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
    na = "n/a (no slow point)"
    lam1 = np.asarray(spec.spectral_radius)
    rows = [
        ("model", ", ".join(f"{k} {v}" for k, v in model.items())),
        ("dataset", str(a.dataset)),
        ("slow points", a.points.describe()),
        ("slow points analysed (merged, outliers dropped)", str(len(a.points.kept))),
        (f"manifold dimension (PCs to {geo.threshold:.0%})", str(geo.manifold_dimension)),
        ("slow points: PCs to 90% / 95%, participation ratio",
         f"{fpd.pca90} / {fpd.pca95}, {fpd.participation_ratio:.2f}"),
        ("visited states: PCs to 90% / 95%, participation ratio",
         f"{sd.pca90} / {sd.pca95}, {sd.participation_ratio:.2f}"),
        ("dimension predicted from word counts",
         f"{pred.dimension} (participation ratio {pred.participation_ratio:.2f})"),
        ("top |λ| at the slow points (median, min, max)",
         f"{np.median(lam1):.4f}, {lam1.min():.4f}, {lam1.max():.4f}" if lam1.size else na),
        ("top time constant τ₁ (median, steps)",
         f"{np.median(spec.time_constants[:, 0]):.1f}" if lam1.size else na),
        ("readout overlap with the manifold", f"{geo.readout_overlap:.3f}"),
        ("word effects vs bag of words (Pearson r)",
         _fmt(a.word_effects.correlation, ".3f", na)),
        ("accuracy: full network", f"{lin.full:.4f}"),
        ("accuracy: bag of words" + (" (held out)" if a.baseline.held_out else " (training)"),
         f"{a.baseline.accuracy:.4f}"),
        ("accuracy: linearised at the reference point", _fmt(lin.initial, ".4f", na)),
        ("accuracy: linearised around the nearest point", _fmt(lin.nearest, ".4f", na)),
        ("accuracy: linearised along the trajectory under x*", f"{lin.trajectory:.4f}"),
        ("analysis time (s)", f"{a.seconds:.1f}"),
    ]  # fmt: skip
    return rows


def _fmt(x: float, spec: str, missing: str) -> str:
    return format(float(x), spec) if np.isfinite(x) else missing


def _nanmedian(x: Any) -> float:
    """Median of the finite entries; nan (without a warning) when there are none, e.g.
    the tangent alignment of a single fixed point."""
    x = np.asarray(x, np.float64)
    x = x[np.isfinite(x)]
    return float(np.median(x)) if x.size else float("nan")


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    return buf.getvalue()


def _html(title: str, rows, summary: str, images: dict[str, bytes], settings: Mapping) -> str:
    esc = html.escape
    table = "\n".join(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in rows)
    figs = "\n".join(
        f'<figure id="{esc(name)}"><img alt="{esc(name)}" '
        f'src="data:image/png;base64,{base64.b64encode(png).decode("ascii")}">'
        f"<figcaption><b>{esc(name)}</b>: {esc(CAPTIONS.get(name, ''))}</figcaption></figure>"
        for name, png in images.items()
    )
    settings_rows = "\n".join(
        f"<tr><th>{esc(str(k))}</th><td>{esc(json.dumps(v, default=str))}</td></tr>"
        for k, v in settings.items()
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; color: #222; }}
table {{ border-collapse: collapse; margin: 1em 0; }}
th, td {{ border: 1px solid #ccc; padding: 3px 8px; text-align: left; vertical-align: top; }}
th {{ background: #f4f4f4; font-weight: normal; }}
figure {{ display: inline-block; margin: 1em; max-width: 1000px; vertical-align: top; }}
img {{ max-width: 100%; }}
figcaption {{ font-size: 0.9em; max-width: 640px; }}
pre {{ background: #f7f7f7; padding: 0.8em; overflow-x: auto; }}
</style></head><body>
<h1>{esc(title)}</h1>
<h2>Summary</h2>
<table>
{table}
</table>
<pre>{esc(summary)}</pre>
<h2>Figures</h2>
{figs}
<h2>Settings</h2>
<table>
{settings_rows}
</table>
<p>Written by rnndyn (rnndyn.report.write_report).</p>
</body></html>
"""


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
) -> dict[str, str]:
    """Write the figures of ``analysis`` as PNGs and a self-contained ``report.html``.

    Args:
      analysis: an ``rnndyn.Analysis``.
      out_dir: directory to write into (created if missing).
      model, params: the analysed ``Classifier`` and its parameters; with them the
        figures use the exact readout in state space and (with ``data``) draw document
        trajectories.
      data: a ``rnndyn.data.Dataset`` whose first ``num_trajectories`` documents are
        drawn as trajectories.
      settings: the settings used (shown in the report), e.g. training and analysis
        arguments.
      num_trajectories: documents drawn in the state-space figures.
      title: the page title.

    Returns:
      ``{name: path}`` of every file written (the figures by name, and ``"report"``).
    """
    from rnndyn import plots
    from rnndyn.analysis import readout_in_state_space

    out_dir = os.fspath(out_dir)
    os.makedirs(out_dir, exist_ok=True)
    kw: dict[str, Any] = {}
    class_names = getattr(data, "class_names", None) if data is not None else None
    if model is not None and params is not None:
        if analysis.reference is not None:
            kw["readout_state"] = readout_in_state_space(model, params, analysis.reference.point)
        if data is not None:
            hs, lengths, labels = trajectories(model, params, data, num_trajectories)
            kw.update(trajectories=hs, lengths=lengths, labels=labels)
    figs = plots.figures(analysis, class_names=class_names, **kw)
    written: dict[str, str] = {}
    images: dict[str, bytes] = {}
    for name, fig in figs.items():
        images[name] = _png(fig)
        path = os.path.join(out_dir, f"{name}.png")
        atomic_write(path, images[name])
        written[name] = path
    model_desc = analysis.model if isinstance(analysis.model, Mapping) else {}
    title = title or (
        f"rnndyn analysis: {model_desc.get('cell', 'RNN')} on {analysis.dataset or 'data'}"
    )
    text = _html(title, summary_rows(analysis), analysis.summary(), images, settings or {})
    path = os.path.join(out_dir, "report.html")
    atomic_write(path, text.encode("utf-8"))
    written["report"] = path
    return written
