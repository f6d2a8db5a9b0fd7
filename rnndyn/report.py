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
import tempfile
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from rnndyn.linearize import eig, linearization

__all__ = [
    "CAPTIONS",
    "right_vectors",
    "slow_points",
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


def slow_points(
    model: Any,
    params: Any,
    states: Any,
    lengths: Any,
    key: Any,
    *,
    tol: float = 1e-5,
    num: int = 512,
    max_steps: int = 3000,
) -> np.ndarray:
    """Slow points ``(K2, S)`` at zero input: states where ``q = ½‖F(h) − h‖² < tol``.

    A first-order search (Adam, no Newton polish, no certification) from ``num`` states
    drawn (with noise 0.01) from the trajectories ``states (B, T, S)`` (the first
    ``lengths`` steps of each). On a line or plane attractor these points trace the
    manifold, where the certified fixed points may be few.
    """
    from rnndyn.fixed_points import find_fixed_points, sample_states

    states = jnp.asarray(states)
    mask = jnp.arange(states.shape[1])[None, :] < jnp.asarray(lengths)[:, None]
    k_sample, k_search = jax.random.split(key)
    h0 = sample_states(states, num, k_sample, mask=mask, noise=0.01)
    found = find_fixed_points(
        model.cell,
        params["cell"],
        jnp.zeros((model.embed_size,), jnp.float32),
        h0,
        key=k_search,
        tol=tol,
        max_steps=max_steps,
        polish_steps=0,
        certify=False,
        deflation_rounds=0,
    )
    speeds = np.asarray(found.speeds)
    return np.asarray(found.points)[np.isfinite(speeds) & (speeds < tol)]


def right_vectors(cell: Any, cell_params: Any, points: Any, inputs: Any) -> np.ndarray:
    """Top right eigenvector ``(K, S)`` (real part) of ``J_rec`` at each point."""
    lin = linearization(cell, cell_params, jnp.asarray(points), jnp.asarray(inputs))
    return np.asarray(eig(lin.j_rec).right)[:, :, 0].real


def summary_rows(analysis: Any) -> list[tuple[str, str]]:
    """The headline numbers of an ``Analysis`` as ``(name, value)`` rows."""
    a = analysis
    lam1 = np.abs(np.asarray(a.eigenvalues)[:, 0])
    tau1 = np.asarray(a.time_constants)[:, 0]
    fpd, sd, pred, lin = a.fixed_point_dimension, a.state_dimension, a.prediction, a.linearized
    model = a.model if isinstance(a.model, Mapping) else {}
    return [
        ("model", ", ".join(f"{k} {v}" for k, v in model.items())),
        ("dataset", str(a.dataset)),
        ("fixed points kept", f"{len(a.fixed_points.points)} "
         f"({a.num_converged} of {a.num_candidates} candidates converged)"),
        ("manifold dimension (visited states, PCs to "
         f"{a.threshold:.0%})", str(a.manifold_dimension)),
        ("fixed points: PCs to 90% / 95%, participation ratio",
         f"{fpd.pca90} / {fpd.pca95}, {fpd.participation_ratio:.2f}"),
        ("visited states: PCs to 90% / 95%, participation ratio",
         f"{sd.pca90} / {sd.pca95}, {sd.participation_ratio:.2f}"),
        ("dimension predicted from word counts",
         f"{pred.dimension} (participation ratio {pred.participation_ratio:.2f})"),
        ("top |λ| at the fixed points (median, min, max)",
         f"{np.median(lam1):.4f}, {lam1.min():.4f}, {lam1.max():.4f}"),
        ("top time constant τ₁ (median, steps)", f"{np.median(tau1):.1f}"),
        ("slow modes per point (median)", f"{np.median(np.asarray(a.slow_modes)):.0f}"),
        ("line-attractor score log₂(τ₁/τ₂) (median)",
         f"{_nanmedian(a.line_attractor_score):.2f}"),
        ("readout overlap with the manifold", f"{a.readout_overlap:.3f}"),
        ("top right eigenvector vs local tangent (median |cos|)",
         f"{_nanmedian(a.tangent_alignment):.3f}"),
        ("word effects vs bag-of-words (Pearson r)", f"{a.word_effects.correlation:.3f}"),
        ("accuracy: full network", f"{lin.full:.4f}"),
        ("accuracy: linearised around the initial point", f"{lin.initial:.4f}"),
        ("accuracy: linearised around the nearest point", f"{lin.nearest:.4f}"),
        ("accuracy: linearised along the trajectory under x*", f"{lin.trajectory:.4f}"),
        ("distance from h0 to the reference fixed point", f"{a.reference_distance:.3g}"),
        ("analysis time (s)", f"{a.seconds:.1f}"),
    ]  # fmt: skip


def _nanmedian(x: Any) -> float:
    """Median of the finite entries; nan (without a warning) when there are none, e.g.
    the tangent alignment of a single fixed point."""
    x = np.asarray(x, np.float64)
    x = x[np.isfinite(x)]
    return float(np.median(x)) if x.size else float("nan")


def _atomic_write(path: str, data: bytes) -> None:
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=os.path.basename(path))
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


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
    key: Any = None,
    slow_tol: float = 1e-5,
    title: str | None = None,
) -> dict[str, str]:
    """Write the figures of ``analysis`` as PNGs and a self-contained ``report.html``.

    Args:
      analysis: an ``rnndyn.Analysis``.
      out_dir: directory to write into (created if missing).
      model, params: the analysed ``Classifier`` and its parameters; with them the
        figures include the top right eigenvectors, the exact readout in state space,
        and (with ``data``) document trajectories.
      data: a ``rnndyn.data.Dataset`` whose first ``num_trajectories`` documents are
        drawn as trajectories.
      settings: the settings used (shown in the report), e.g. training and analysis
        arguments.
      num_trajectories: documents drawn in the state-space figures.
      key: PRNG key of the slow-point search (``slow_points``) started from those
        documents' states; without it (or without ``model``, ``params``, ``data``) no
        slow points are drawn.
      slow_tol: the slow points' tolerance on ``q``.
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
        fp = analysis.fixed_points
        kw["right_vectors"] = right_vectors(model.cell, params["cell"], fp.points, fp.inputs)
        ref = int(analysis.word_effects.reference_point)
        kw["readout_state"] = readout_in_state_space(model, params, fp.points[ref])
        if data is not None:
            hs, lengths, labels = trajectories(model, params, data, num_trajectories)
            kw.update(trajectories=hs, lengths=lengths, labels=labels)
            if key is not None:
                kw["slow_points"] = slow_points(model, params, hs, lengths, key, tol=slow_tol)
                kw["slow_label"] = f"slow points (q < {slow_tol:g})"
    figs = plots.figures(analysis, class_names=class_names, **kw)
    written: dict[str, str] = {}
    images: dict[str, bytes] = {}
    for name, fig in figs.items():
        images[name] = _png(fig)
        path = os.path.join(out_dir, f"{name}.png")
        _atomic_write(path, images[name])
        written[name] = path
    model_desc = analysis.model if isinstance(analysis.model, Mapping) else {}
    title = title or (
        f"rnndyn analysis: {model_desc.get('cell', 'RNN')} on {analysis.dataset or 'data'}"
    )
    text = _html(title, summary_rows(analysis), analysis.summary(), images, settings or {})
    path = os.path.join(out_dir, "report.html")
    _atomic_write(path, text.encode("utf-8"))
    written["report"] = path
    return written
