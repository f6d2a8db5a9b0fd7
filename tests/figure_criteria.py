"""Rating criteria for the figures of ``rnndyn.plots``: five per figure, each a check a
reader could make by looking at the figure.

``rate(name, fig, p)`` returns ``{criterion: met}`` for the figure ``name`` drawn from
``p`` (``rnndyn.plots.parts`` of the analysis, plus ``h0`` where the figure marks it).
The criteria of every figure are of five kinds:

1. ``title``: the title is computed from the data (its numbers equal the record's);
2. ``legend``: the legend names every kind of mark drawn;
3. ``axes``: the axis ranges show the data (all of it inside, and not squashed into a
   small part of a 0-1 range);
4. ``marks``: the figure's key reference marks are where the data put them (e.g. the
   readout arrow starts at the reference point; the eigenvalue inset holds every
   eigenvalue within 0.05 of 1; the document-length line is at the median length);
5. ``readable``: no text is smaller than ``MIN_FONT_PT`` at the saved size.

The tests of test_plots.py require all five on figures of known content; the demo's and
the examples' figures must meet at least four (``PASS``).
"""

from __future__ import annotations

import numpy as np
from matplotlib.text import Text

from rnndyn import plots

#: Criteria a figure of a demo or an example must meet.
PASS = 4


def by_gid(fig, gid, prefix=False):
    """Artists of ``fig`` with this gid (or, with ``prefix``, gid ``gid`` or ``gid.*``)."""

    def match(a):
        g = getattr(a, "get_gid", lambda: None)()
        return isinstance(g, str) and (g == gid or (prefix and g.startswith(gid + ".")))

    return fig.findobj(match)


def texts(fig):
    """Every visible, non-empty text of ``fig`` (titles, labels, ticks, legends, notes)."""
    return [
        t
        for t in fig.findobj(Text)
        if t.get_visible() and t.get_text().strip() and t.get_figure(root=True) is fig
    ]


def min_font(fig) -> float:
    fig.canvas.draw()  # tick labels exist once drawn
    return min(t.get_fontsize() for t in texts(fig))


def legend_text(fig) -> str:
    """All legend entries of ``fig``, joined."""
    out = []
    for ax in fig.axes:
        leg = ax.get_legend()
        if leg is not None:
            out += [t.get_text() for t in leg.get_texts()]
    return " | ".join(out)


def inside(ax, xy, pad=1e-9) -> bool:
    x0, x1 = sorted(ax.get_xlim())
    y0, y1 = sorted(ax.get_ylim())
    xy = np.atleast_2d(np.asarray(xy, np.float64))
    return bool(
        np.all((xy[:, 0] >= x0 - pad) & (xy[:, 0] <= x1 + pad))
        and np.all((xy[:, 1] >= y0 - pad) & (xy[:, 1] <= y1 + pad))
    )


def fills(ax, xy, fraction=0.3) -> bool:
    """The data span at least ``fraction`` of both axis ranges (not squashed)."""
    xy = np.atleast_2d(np.asarray(xy, np.float64))
    spans = np.ptp(xy, axis=0)
    ranges = [abs(np.diff(ax.get_xlim())[0]), abs(np.diff(ax.get_ylim())[0])]
    return all(s >= fraction * r or s == 0 for s, r in zip(spans[:2], ranges, strict=True))


def _project(p, x, dims=2):
    mean, directions, _ = p["basis"]
    return (np.asarray(x, np.float64) - mean) @ np.asarray(directions)[:dims].T


def _offsets(fig, gid, prefix=False):
    cols = by_gid(fig, gid, prefix)
    if not cols:
        return np.zeros((0, 2))
    return np.concatenate([np.asarray(c.get_offsets()) for c in cols])


# --------------------------------------------------------------------------- figures


def _fixed_points(fig, p):
    ax = fig.axes[0]
    pts, status, stab = p["points"], p["status"], p["stability"]
    k, n_roots = len(pts), int(np.isin(status, (0, 1)).sum())
    legend = legend_text(fig)
    xy = _project(p, pts)
    drawn = {g for g in ("roots", "slow_points") if by_gid(fig, g, prefix=True)}
    names = {0: "stable", 1: "marginal", 2: "unstable"}
    legend_ok = all(
        [
            "roots" not in drawn or "certified root" in legend,
            "slow_points" not in drawn or "slow point" in legend,
            all(names[int(c)] in legend for c in set(stab.tolist())),
            not by_gid(fig, "reference") or "reference point" in legend,
            not by_gid(fig, "h0") or "h0" in legend,
            not by_gid(fig, "trajectory") or "document" in legend,
        ]
    )
    marks = []
    for c, name in names.items():
        drawn_c = len(_offsets(fig, f"roots.{name}")) + len(_offsets(fig, f"slow_points.{name}"))
        marks.append(drawn_c == int(np.sum(stab == c)))
    if p.get("reference") is not None and ax.name != "3d":
        (ring,) = by_gid(fig, "reference")
        marks.append(np.allclose(ring.get_offsets()[0], xy[p["reference"]]))
    if p.get("h0") is not None and ax.name != "3d":
        (star,) = by_gid(fig, "h0")
        marks.append(np.allclose(star.get_offsets()[0], _project(p, p["h0"])))
    return {
        "title": f"{k:,} slow points ({n_roots:,} certified roots)" in ax.get_title(),
        "legend": legend_ok,
        "axes": ax.name == "3d" or (inside(ax, xy) and fills(ax, xy, 0.2)),
        "marks": all(marks),
        "readable": min_font(fig) >= plots.MIN_FONT_PT,
    }


def _eigenvalues(fig, p):
    ax = fig.axes[0]
    lam = np.asarray(p["eigenvalues"]).ravel()
    top = np.abs(np.asarray(p["eigenvalues"])).max(axis=1)
    (zoom,) = by_gid(fig, "zoom")
    near = lam[np.abs(lam - 1) <= 0.05]
    legend = legend_text(fig)
    (circle,) = by_gid(fig, "unit_circle")
    return {
        "title": f"{len(top):,} points" in ax.get_title()
        and f"{np.median(top):.3f}" in ax.get_title(),
        "legend": all(s in legend for s in ("all modes", "top mode", "|λ| = 1")),
        "axes": inside(ax, np.c_[lam.real, lam.imag]),
        "marks": circle.get_radius() == 1.0 and inside(zoom, np.c_[near.real, near.imag]),
        "readable": min_font(fig) >= plots.MIN_FONT_PT,
    }


def _time_constants(fig, p):
    ax = fig.axes[0]
    (med,) = by_gid(fig, "median_tau")
    tau = np.asarray(med.get_ydata())
    legend = legend_text(fig)
    length = p.get("document_length")
    lines = by_gid(fig, "document_length")
    y0, y1 = sorted(ax.get_ylim())
    return {
        "title": f"{tau[0]:,.3g} steps" in ax.get_title(),
        "legend": all(s in legend for s in ("each point", "median over points"))
        and (length is None or "median document" in legend),
        "axes": y0 <= tau.min() and tau.max() <= y1 and (length is None or y0 <= length <= y1),
        "marks": length is None or (len(lines) == 1 and lines[0].get_ydata()[0] == length),
        "readable": min_font(fig) >= plots.MIN_FONT_PT,
    }


def _readout_geometry(fig, p):
    ax = fig.axes[0]
    xy = _project(p, p["points"])
    arrows = by_gid(fig, "readout")
    start = _project(p, p["reference_point"]) if p.get("reference_point") is not None else None
    legend = legend_text(fig)
    heads = [np.asarray(a.xy) for a in arrows]
    return {
        "title": f"{len(xy):,} slow points" in ax.get_title(),
        "legend": all(s in legend for s in ("slow points", "eigenvector", "readout")),
        "axes": inside(ax, xy) and inside(ax, np.array(heads)),
        "marks": bool(arrows)
        and (start is None or all(np.allclose(a.xyann, start) for a in arrows)),
        "readable": min_font(fig) >= plots.MIN_FONT_PT,
    }


def _word_effects(fig, p):
    ax = fig.axes[0]
    bars = by_gid(fig, "word_bar")
    widths = np.array([b.get_width() for b in bars])
    legend = legend_text(fig)
    seen = int(np.sum((np.asarray(p["counts"]) > 0) & np.isfinite(p["mode_effects"])))
    x0, x1 = ax.get_xlim()
    return {
        "title": f"the {len(bars)} strongest of {seen:,} words" in ax.get_title(),
        "legend": (not np.any(widths > 0) or "towards" in legend or "raises" in legend)
        and (not np.any(widths < 0) or "towards" in legend or "lowers" in legend),
        "axes": x0 <= widths.min() and widths.max() <= x1,
        "marks": any(ln.get_xdata()[0] == 0 for ln in ax.get_lines()),
        "readable": min_font(fig) >= plots.MIN_FONT_PT,
    }


def _effect_vs_bow(fig, p):
    ax = fig.axes[0]
    xy = _offsets(fig, "words")
    r = np.corrcoef(xy[:, 0], xy[:, 1])[0, 1]
    legend = legend_text(fig)
    return {
        "title": f"r = {r:.3f}" in ax.get_title(),
        "legend": "words" in legend and (not by_gid(fig, "fit") or "least-squares" in legend),
        "axes": inside(ax, xy) and fills(ax, xy, 0.5),
        "marks": len(by_gid(fig, "fit")) == 1,
        "readable": min_font(fig) >= plots.MIN_FONT_PT,
    }


def _explained_variance(fig, p):
    ax, ax2 = fig.axes[:2]
    cums = [ln.get_ydata() for ln in ax2.get_lines() if str(ln.get_gid()).startswith("cum")]
    lo = min(float(np.min(c)) for c in cums)
    y0, y1 = ax2.get_ylim()
    legend = legend_text(fig)
    thr = p["threshold"]
    states = int(np.searchsorted(np.cumsum(p["state_ratio"]), thr - 1e-12) + 1)
    return {
        "title": f"visited {states}" in ax.get_title(),
        "legend": "visited states" in legend and f"{thr:.0%}" in legend,
        # the cumulative axis starts near the lowest value, not at 0
        "axes": y0 <= min(lo, thr) and y1 >= 1.0 and (y0 > 0 or lo < 0.3),
        "marks": any(np.allclose(ln.get_ydata(), thr) for ln in ax2.get_lines()),
        "readable": min_font(fig) >= plots.MIN_FONT_PT,
    }


def _simplex(fig, p):
    ax = fig.axes[0]
    k = len(p["points"])
    legend = legend_text(fig)
    arrows = by_gid(fig, "readout")
    return {
        "title": f"{k:,} slow points, {p['num_classes']} classes" in ax.get_title(),
        "legend": "readout says" in legend and "readout rows" in legend,
        "axes": ax.name == "3d" or inside(ax, _offsets(fig, "class_points")),
        "marks": len(arrows) == p["num_classes"],
        "readable": min_font(fig) >= plots.MIN_FONT_PT,
    }


def _linearized_accuracy(fig, p):
    ax = fig.axes[0]
    acc = p["accuracy"]
    (dots,) = by_gid(fig, "accuracy")
    values = np.asarray(dots.get_offsets())[:, 0]
    chance = by_gid(fig, "chance")
    x0, x1 = ax.get_xlim()
    legend = legend_text(fig)
    return {
        "title": f"network accuracy {acc['full']:.3f}" in ax.get_title(),
        "legend": not chance or "chance" in legend,
        # the values fill at least a fifth of the range: not squashed into 0-1
        "axes": x0 <= values.min() and values.max() <= x1 and (x0 > 0 or values.min() < 0.3),
        "marks": p.get("chance") is None
        or any(np.isclose(c.get_xdata()[0], p["chance"]) for c in chance),
        "readable": min_font(fig) >= plots.MIN_FONT_PT,
    }


def _modifier_gains(fig, p):
    ax = fig.axes[0]
    ctx = p["contextual"]
    lines = by_gid(fig, "modifier_gain")
    g = np.asarray(ctx["gain"])
    top = int(np.argmax(np.abs(np.nan_to_num(g[:, 0] - 1))))
    if not lines:  # no word modifies: the reference lines alone, and the title says so
        y0, y1 = sorted(ax.get_ylim())
        return {
            "title": "no modifier" in ax.get_title(),
            "legend": "no modification" in legend_text(fig),
            "axes": y0 <= -1 and y1 >= 1,
            "marks": len(by_gid(fig, "gain_one")) == 1 and not by_gid(fig, "reach"),
            "readable": min_font(fig) >= plots.MIN_FONT_PT,
        }
    ys = np.concatenate([ln.get_ydata() for ln in lines])
    y0, y1 = sorted(ax.get_ylim())
    legend = legend_text(fig)
    refs = {gid: by_gid(fig, gid) for gid in ("gain_one", "gain_zero", "gain_flip")}
    reach = np.asarray(ctx["reach"])
    marks = [
        len(refs["gain_one"]) == 1 and refs["gain_one"][0].get_ydata()[0] == 1.0,
        len(refs["gain_flip"]) == 1 and refs["gain_flip"][0].get_ydata()[0] == -1.0,
    ]
    # each reach marker sits at the reach of one of the words drawn (between d = k − 1, k)
    drawn = {float(ln.get_xdata()[0]) + 0.5 for ln in by_gid(fig, "reach")}
    marks.append(all(any(np.isclose(x, r) for r in reach) for x in drawn))
    return {
        "title": f"{ctx['names'][top]}: ×{g[top, 0]:.2f}" in ax.get_title(),
        "legend": f"{ctx['names'][top]}: ×" in legend
        and "no modification" in legend
        and (not drawn or "reach" in legend),
        "axes": y0 <= ys.min() and ys.max() <= y1 and y0 <= -1 and y1 >= 1,
        "marks": all(marks),
        "readable": min_font(fig) >= plots.MIN_FONT_PT,
    }


def _modifier_subspace(fig, p):
    ax = fig.axes[0]
    ctx = p["contextual"]
    coords, st = np.asarray(ctx["subspace_coords"]), np.asarray(ctx["subspace_strength"])
    xy = coords[:, :2] if coords.shape[1] >= 2 else np.c_[coords[:, 0], np.zeros(len(coords))]
    legend = legend_text(fig)
    up, down = _offsets(fig, "intensifiers"), _offsets(fig, "attenuators")
    (origin,) = by_gid(fig, "origin")
    labels = {t.get_text().split(" ×")[0] for t in ax.texts}
    return {
        "title": f"{coords.shape[1]}-D, {len(coords)} words" in ax.get_title(),
        "legend": (not len(up) or "intensifies" in legend)
        and (not len(down) or "flips" in legend)
        and "the line" in legend,
        "axes": inside(ax, xy) and fills(ax, xy, 0.3),
        "marks": np.allclose(origin.get_offsets()[0], 0.0)
        and len(up) == int(np.sum(st > 0))
        and len(down) == int(np.sum(st < 0))
        and labels == set(ctx["subspace_names"]),
        "readable": min_font(fig) >= plots.MIN_FONT_PT,
    }


def _model_accuracy(fig, p):
    ax = fig.axes[0]
    models = {k: v for k, v in p["models"].items() if np.isfinite(v)}
    bars = by_gid(fig, "accuracy_bar")
    ends = np.array([b.get_x() + b.get_width() for b in bars])
    x0, x1 = ax.get_xlim()
    ticks = [t.get_text() for t in ax.get_yticklabels()]
    chance = by_gid(fig, "chance")
    return {
        "title": f"network {models['network']:.3f}" in ax.get_title(),
        "legend": ticks == list(models) and (not chance or "chance" in legend_text(fig)),
        "axes": x0 <= ends.min() and ends.max() <= x1 and (x0 > 0 or ends.min() < 0.3),
        "marks": np.allclose(ends, list(models.values()))
        and (
            p.get("chance") is None
            or any(np.isclose(c.get_xdata()[0], p["chance"]) for c in chance)
        ),
        "readable": min_font(fig) >= plots.MIN_FONT_PT,
    }


RATERS = {
    "fixed_points": _fixed_points,
    "fixed_points_3d": _fixed_points,
    "eigenvalues": _eigenvalues,
    "time_constants": _time_constants,
    "readout_geometry": _readout_geometry,
    "word_effects": _word_effects,
    "effect_vs_bow": _effect_vs_bow,
    "explained_variance": _explained_variance,
    "simplex": _simplex,
    "linearized_accuracy": _linearized_accuracy,
    "modifier_gains": _modifier_gains,
    "modifier_subspace": _modifier_subspace,
    "model_accuracy": _model_accuracy,
}


def rate(name: str, fig, p: dict) -> dict[str, bool]:
    """``{criterion: met}`` of figure ``name`` (five criteria)."""
    return {k: bool(v) for k, v in RATERS[name](fig, p).items()}
