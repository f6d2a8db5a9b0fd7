"""Figures of an analysis: matplotlib ``Figure`` objects, never a window.

Every ``plot_*`` function takes plain arrays (the parts of an ``rnndyn.Analysis``:
slow points, eigenvalues, readout, word effects, spectra, accuracies), draws into
``ax=`` when given (a figure is created only without it) and returns the figure, built
without ``pyplot``, so nothing is shown and the user's backend is left alone. Save one
with ``save(fig, "name", formats=("png", "pdf"), dpi=300)``. ``figures(analysis, ...)``
draws them all from an ``Analysis`` (``parts`` is the one place that reads its fields)
in one principal-component basis shared by every state-space figure.

Marks are the same everywhere: a certified root is a large marker with a black edge, a
slow point a small one; the shape gives the stability at the point (circle stable,
diamond marginal, cross unstable: ``|λ1|`` below, within or above the marginal band of
1); a star is the initial state ``h0`` and a ring the reference point where the
linearisation is taken. Every figure's legend explains its marks, titles are computed
from the data, and no text is smaller than 8 pt at the saved size.

Colours are the Okabe–Ito palette (distinguishable with the common colour-vision
deficiencies); continuous quantities use a blue–grey–vermillion diverging map.
Needs the ``plot`` extra (``pip install "rnndyn[plot]"``).
"""

from __future__ import annotations

import io
import os
from collections.abc import Collection, Mapping, Sequence
from typing import Any

import numpy as np

try:
    from matplotlib.colors import LinearSegmentedColormap
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.patches import Circle
except ImportError as err:  # pragma: no cover - depends on the environment
    raise ImportError("rnndyn.plots needs matplotlib: pip install 'rnndyn[plot]'") from err

from rnndyn._io import atomic_write

__all__ = [
    "DIVERGING",
    "FORMATS",
    "MIN_FONT_PT",
    "OKABE_ITO",
    "STABILITY",
    "figures",
    "parts",
    "pca_basis",
    "plot_effect_vs_bow",
    "plot_eigenvalues",
    "plot_explained_variance",
    "plot_fixed_points",
    "plot_linearized_accuracy",
    "plot_model_accuracy",
    "plot_modifier_gains",
    "plot_modifier_subspace",
    "plot_readout_geometry",
    "plot_simplex",
    "plot_time_constants",
    "plot_word_effects",
    "render",
    "save",
]

#: Okabe & Ito (2008) colour-blind-safe palette (blue, vermillion, green, purple,
#: orange, sky blue, yellow, black).
OKABE_ITO = (
    "#0072B2",
    "#D55E00",
    "#009E73",
    "#CC79A7",
    "#E69F00",
    "#56B4E9",
    "#F0E442",
    "#000000",
)
#: Diverging colour map for signed quantities (negative blue, positive vermillion).
DIVERGING = LinearSegmentedColormap.from_list("rnndyn_diverging", ["#0072B2", "#E8E8E8", "#D55E00"])
#: File formats ``save`` writes.
FORMATS = ("png", "svg", "pdf")
#: No text of a figure is smaller than this (points, at the saved size).
MIN_FONT_PT = 8
#: ``Spectra.stability`` code -> (name, marker).
STABILITY = {0: ("stable", "o"), 1: ("marginal", "D"), 2: ("unstable", "X")}

# Readout arrows avoid green, the colour of the eigenvector segments.
_READOUT_COLOURS = (OKABE_ITO[1], OKABE_ITO[0], OKABE_ITO[3], OKABE_ITO[4], OKABE_ITO[5])
_UNSTABLE = OKABE_ITO[1]
_LEGEND = {"fontsize": MIN_FONT_PT, "frameon": False}
_ROOTS = (0, 1)  # Status.ROOT, Status.CONTINUUM


# ------------------------------------------------------------------------ helpers


def _figure(width: float = 5.0, height: float = 4.0) -> Figure:
    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def _root(ax: Any) -> Figure:
    """The top-level figure of ``ax`` (also when ``ax`` lives in a subfigure)."""
    return ax.get_figure(root=True)


def _target(ax: Any, size: tuple[float, float], dims: int = 2) -> tuple[Figure, Any]:
    """``(figure, axes)``: ``ax`` and its figure, or a new figure of ``size`` inches."""
    if ax is None:
        fig = _figure(*size)
        return fig, _axes(fig, dims)
    if dims == 3 and getattr(ax, "name", "") != "3d":
        raise ValueError("dims=3 needs a 3-D axes: ax=fig.add_subplot(projection='3d')")
    if dims == 2 and getattr(ax, "name", "") == "3d":
        raise ValueError("a 2-D figure cannot be drawn into a 3-D axes; pass dims=3 or 2-D axes")
    return _root(ax), ax


def _pair(ax: Any, size: tuple[float, float], want_second: bool) -> tuple[Figure, Any, Any]:
    """``(figure, main axes, second axes or None)`` of a figure with an optional second
    panel: ``ax`` is one axes (main panel only) or a pair."""
    if ax is None:
        fig = _figure(*size) if want_second else _figure(size[0] / 2 + 0.6, size[1])
        if want_second:
            a, b = fig.subplots(1, 2)
            return fig, a, b
        return fig, fig.add_subplot(111), None
    if isinstance(ax, (tuple, list)):
        if len(ax) != 2:
            raise ValueError(f"ax must be one Axes or a pair, got {len(ax)}")
        return _root(ax[0]), ax[0], ax[1] if want_second else None
    return _root(ax), ax, None


def _color(i: int) -> str:
    return OKABE_ITO[i % len(OKABE_ITO)]


def _array(name: str, x: Any, ndim: int | tuple[int, ...], meaning: str) -> np.ndarray:
    a = np.asarray(x)
    ndims = (ndim,) if isinstance(ndim, int) else ndim
    if a.ndim not in ndims:
        raise ValueError(f"{name} must be {meaning}, got an array of shape {a.shape}")
    if a.size == 0:
        raise ValueError(f"{name} is empty (shape {a.shape}); expected {meaning}")
    return a


def _check_dims(dims: int) -> None:
    if dims not in (2, 3):
        raise ValueError(f"dims must be 2 or 3, got {dims!r}")


def _pct(x: float) -> str:
    """A fraction as a percentage, with more digits where 0 decimals would read 0% or
    100% (a PC with 0.03% of the variance is not "0%")."""
    p = 100 * float(x)
    text = f"{p:.0f}"
    if (text == "0" and p > 0) or (text == "100" and p < 100):
        text = f"{p:.2g}" if p < 1 else f"{p:.4g}"
    return text + "%"


def pca_basis(x: Any, dims: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Top principal directions of points ``x (K, S)``.

    Returns:
      ``(mean (S,), basis (dims, S), explained_ratio (dims,))``; directions beyond the
      rank of ``x`` are zero rows with ratio 0.
    """
    x = _array("x", x, 2, "(K, S) points").astype(np.float64)
    mean = x.mean(0)
    _, s, vt = np.linalg.svd(x - mean, full_matrices=False)
    var = s**2
    total = var.sum()
    ratio = var / total if total > 0 else np.zeros_like(var)
    basis = np.zeros((dims, x.shape[1]))
    k = min(dims, vt.shape[0])
    basis[:k] = vt[:k]
    out_ratio = np.zeros(dims)
    out_ratio[:k] = ratio[:k]
    # A deterministic sign: the largest-magnitude coordinate of each direction positive.
    for i in range(k):
        j = int(np.argmax(np.abs(basis[i])))
        if basis[i, j] < 0:
            basis[i] = -basis[i]
    return mean, basis, out_ratio


def _take(basis: Any, dims: int, what: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The first ``dims`` directions of a basis ``(mean, (D, S), ratio)`` with ``D >= dims``."""
    mean, directions, ratio = basis
    directions, ratio = np.asarray(directions, np.float64), np.asarray(ratio, np.float64)
    if directions.ndim != 2 or directions.shape[0] < dims:
        raise ValueError(f"{what} needs a basis of at least {dims} directions, got "
                         f"{directions.shape}")  # fmt: skip
    return np.asarray(mean, np.float64), directions[:dims], ratio[:dims]


def _axes(fig: Figure, dims: int, position: int = 111):
    if dims == 3:
        ax = fig.add_subplot(position, projection="3d")
        ax.computed_zorder = False  # draw in zorder: points above the trajectories
        return ax
    return fig.add_subplot(position)


def _scatter(ax, xy: np.ndarray, **kw):
    if xy.shape[1] == 3:
        return ax.scatter(xy[:, 0], xy[:, 1], xy[:, 2], **kw)
    return ax.scatter(xy[:, 0], xy[:, 1], **kw)


def _plot(ax, xy: np.ndarray, *args, **kw):
    if xy.shape[1] == 3:
        return ax.plot(xy[:, 0], xy[:, 1], xy[:, 2], *args, **kw)
    return ax.plot(xy[:, 0], xy[:, 1], *args, **kw)


def _label_pcs(ax, dims: int, ratio: np.ndarray, of: str = "variance") -> None:
    names = [f"PC{i + 1}, {_pct(ratio[i])} of {of}" for i in range(dims)]
    ax.set_xlabel(names[0])
    ax.set_ylabel(names[1])
    if dims == 3:
        ax.set_zlabel(names[2], fontsize=MIN_FONT_PT + 1)
        ax.set_xlabel(names[0], fontsize=MIN_FONT_PT + 1)
        ax.set_ylabel(names[1], fontsize=MIN_FONT_PT + 1)
        ax.tick_params(labelsize=MIN_FONT_PT)


def _marker(marker: str, label: str, **kw) -> Line2D:
    """A legend entry for a scatter mark."""
    kw = {"color": "0.35", "markersize": 6, **kw}
    return Line2D([], [], ls="", marker=marker, label=label, **kw)


def _legend_below(ax, handles: list, ncol: int = 2) -> None:
    if handles:
        ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=ncol,
                  borderaxespad=0.0, **_LEGEND)  # fmt: skip


def _point_index(reference: Any, points: np.ndarray) -> np.ndarray | None:
    """The reference point as an ``(S,)`` state: ``reference`` is an index into
    ``points`` or a state."""
    if reference is None:
        return None
    ref = np.asarray(reference)
    if ref.ndim == 0:
        return points[int(ref)]
    if ref.shape != points.shape[1:]:
        raise ValueError(f"reference must be an index or a ({points.shape[1]},) state, got "
                         f"shape {ref.shape}")  # fmt: skip
    return ref.astype(np.float64)


def _band_text(band: float | None) -> dict[int, str]:
    if band is None:
        return {0: "stable, |λ1| < 1", 1: "marginal, |λ1| ≈ 1", 2: "unstable, |λ1| > 1"}
    return {
        0: f"stable, |λ1| < {1 - band:g}",
        1: f"marginal, |λ1| within {band:g} of 1",
        2: f"unstable, |λ1| > {1 + band:g}",
    }


def _trajectory_colours(labels: np.ndarray | None, num_classes: int) -> list[str]:
    """Class colours: blue and vermillion for two classes (the ends of the diverging map
    of the readout), the palette otherwise."""
    if num_classes == 2:
        return [OKABE_ITO[0], OKABE_ITO[1]]
    return [_color(c + 2) for c in range(max(num_classes, 1))]


def _trajectories(trajectories: Any, lengths: Any, size: int, max_trajectories: int):
    trajs = _array("trajectories", trajectories, 3, "(B, T, S) state trajectories")
    if trajs.shape[2] != size:
        raise ValueError(
            f"trajectories have state size {trajs.shape[2]}, points {size}; expected the same S"
        )
    trajs = trajs[:max_trajectories].astype(np.float64)
    full = np.full(len(trajs), trajs.shape[1])
    lens = full if lengths is None else np.asarray(lengths)[: len(trajs)]
    return trajs, lens


def _visited(trajs: np.ndarray, lens: np.ndarray) -> np.ndarray:
    return np.concatenate([t[:n] for t, n in zip(trajs, lens, strict=True)])


# ------------------------------------------------------------------ state space


def plot_fixed_points(
    points: Any,
    *,
    color: Any = None,
    color_label: str = "readout (logit difference)",
    status: Any = None,
    stability: Any = None,
    band: float | None = None,
    trajectories: Any = None,
    lengths: Any = None,
    labels: Any = None,
    class_names: Sequence[str] | None = None,
    h0: Any = None,
    reference: Any = None,
    dims: int = 2,
    basis: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
    max_trajectories: int = 40,
    title: str | None = None,
    ax: Any = None,
) -> Figure:
    """Slow points and sample trajectories in the top principal components.

    Args:
      points: ``(K, S)`` slow points (or fixed points).
      color: optional ``(K,)`` values colouring the points (e.g. the readout's logit
        difference at each point), drawn with a diverging map and a colour bar.
      color_label: the colour bar's label.
      status: optional ``(K,)`` ``rnndyn.Status`` codes: certified roots (``ROOT``,
        ``CONTINUUM``) are drawn large with a black edge (gid ``"roots"``), other slow
        points small (gid ``"slow_points"``). Without it every point is a ``"roots"``.
      stability: optional ``(K,)`` codes of ``rnndyn.analysis.spectra`` (0 stable, 1
        marginal, 2 unstable): the marker's shape (``STABILITY``), and unstable points
        get a vermillion edge. The collections' gids then read ``"roots.marginal"``,
        ``"slow_points.unstable"``, ...
      band: the marginal band (for the legend's thresholds).
      trajectories: optional ``(B, T, S)`` hidden-state trajectories of documents.
      lengths: ``(B,)`` real tokens per trajectory (default: all ``T``).
      labels: ``(B,)`` class ids colouring the trajectories (default: one colour).
      class_names: names of the classes, for the legend.
      h0: optional ``(S,)`` initial state: a star (gid ``"h0"``), where the
        trajectories start.
      reference: optional index into ``points`` or ``(S,)`` state of the reference point
        (the linearisation's expansion point): a ring (gid ``"reference"``).
      dims: 2 or 3 principal components.
      basis: ``(mean, directions (D, S), explained_ratio)`` with ``D >= dims`` to project
        on (``figures`` shares one between its figures; default: PCA of the
        trajectories' states if given, else of the points).
      max_trajectories: draw at most this many trajectories (the first ones).
      title: optional axes title (default: the counts drawn).
      ax: axes to draw into (3-D for ``dims=3``); default a new figure.

    Returns:
      The figure: the point collections, one line per trajectory (gid
      ``"trajectory"``) and each trajectory's end (gid ``"trajectory_end"``).
    """
    _check_dims(dims)
    points = _array("points", points, 2, "(K, S) points").astype(np.float64)
    k, s = points.shape
    roots = np.ones(k, bool)
    if status is not None:
        status = np.asarray(status)
        if status.shape != (k,):
            raise ValueError(f"status must be ({k},) codes, got shape {status.shape}")
        roots = np.isin(status, _ROOTS)
    stab = None
    if stability is not None:
        stab = np.asarray(stability, np.int64)
        if stab.shape != (k,):
            raise ValueError(f"stability must be ({k},) codes, got shape {stab.shape}")
    trajs = lens = None
    if trajectories is not None:
        trajs, lens = _trajectories(trajectories, lengths, s, max_trajectories)
    if basis is None:
        basis = pca_basis(_visited(trajs, lens) if trajs is not None else points, dims)
    mean, directions, ratio = _take(basis, dims, "plot_fixed_points")
    fig, ax = _target(ax, (5.4 if color is not None else 4.8, 5.0), dims)
    project = lambda x: (np.asarray(x, np.float64) - mean) @ directions.T  # noqa: E731
    handles: list = []
    if trajs is not None:
        labels_ = None if labels is None else np.asarray(labels)[: len(trajs)]
        by_class = labels_ is not None and labels_.ndim == 1
        n_cls = (
            max(len(class_names or ()), int(labels_.max()) + 1) if by_class and len(labels_) else 1
        )
        colours = _trajectory_colours(labels_, n_cls) if by_class else ["0.45"]
        thin = dict(lw=0.35, alpha=0.22) if dims == 3 else dict(lw=0.6, alpha=0.35)
        start = None if h0 is None else project(np.asarray(h0, np.float64)[None])
        for i, (t, n) in enumerate(zip(trajs, lens, strict=True)):
            xy = project(t[:n])
            if start is not None:
                xy = np.concatenate([start, xy])
            colour = colours[int(labels_[i]) % len(colours)] if by_class else colours[0]
            (line,) = _plot(ax, xy, color=colour, zorder=1, **thin)
            line.set_gid("trajectory")
            end = _scatter(ax, xy[-1:], color=colour, s=10, marker="x", linewidths=0.8,
                           alpha=0.7, zorder=1.5)  # fmt: skip
            end.set_gid("trajectory_end")
        if by_class:
            for c in sorted({int(c) for c in labels_}):
                name = (
                    class_names[c]
                    if class_names is not None and c < len(class_names)
                    else (f"class {c}")
                )
                handles.append(Line2D([], [], color=colours[c % len(colours)], lw=1.2,
                                      label=f"document, {name}"))  # fmt: skip
        else:
            handles.append(Line2D([], [], color=colours[0], lw=1.2, label="document"))
        handles.append(_marker("x", "end of a document", markersize=5))
    xy = project(points)
    kw: dict[str, Any] = {}
    c_values = None
    if color is not None:
        c_values = np.asarray(color, np.float64)
        if c_values.shape != (k,):
            raise ValueError(f"color must be ({k},) values, got shape {c_values.shape}")
        lim = float(np.nanmax(np.abs(c_values))) if k else 1.0
        kw = {"cmap": DIVERGING, "vmin": -(lim or 1.0), "vmax": lim or 1.0}
    groups = [None] if stab is None else sorted(set(stab.tolist()))
    mappable = None
    for kind, mask_kind in (("slow_points", ~roots), ("roots", roots)):
        for code in groups:
            mask = mask_kind if code is None else mask_kind & (stab == code)
            if not mask.any():
                continue
            big = kind == "roots"
            marker = "o" if code is None else STABILITY[code][1]
            edge = _UNSTABLE if code == 2 else ("k" if big else "0.25")
            extra = (
                dict(kw, c=c_values[mask])
                if c_values is not None
                else {"color": _UNSTABLE if (code == 2 and c_values is None) else "0.15"}
            )
            sc = _scatter(
                ax, xy[mask], s=(40 if big else 14) * (1.4 if code == 2 else 1.0), marker=marker,
                edgecolors=edge, linewidths=(1.0 if code == 2 else 0.6 if big else 0.3),
                zorder=3 if big else 2.5, **extra,
            )  # fmt: skip
            sc.set_gid(kind if code is None else f"{kind}.{STABILITY[code][0]}")
            mappable = sc if mappable is None or c_values is not None else mappable
    n_roots = int(roots.sum())
    if status is not None:
        if n_roots:
            handles.append(_marker("o", "certified root", markersize=7, markeredgecolor="k"))
        if n_roots < k:
            handles.append(_marker("o", "slow point, q < tol", markersize=4))
    else:
        handles.append(_marker("o", "fixed point", markersize=6, markeredgecolor="k"))
    if stab is not None:
        names = _band_text(band)
        for code in groups:
            handles.append(_marker(STABILITY[code][1], names[code], markersize=5,
                                   markeredgecolor=_UNSTABLE if code == 2 else "0.25"))  # fmt: skip
    ref = _point_index(reference, points)
    if ref is not None:
        r = _scatter(ax, project(ref[None]), s=180, facecolors="none", edgecolors="k",
                     linewidths=1.6, zorder=5)  # fmt: skip
        r.set_gid("reference")
        handles.append(_marker("o", "reference point, linearised here", markersize=10,
                               markerfacecolor="none", markeredgecolor="k",
                               markeredgewidth=1.5))  # fmt: skip
    if h0 is not None:
        h = _scatter(ax, project(np.asarray(h0, np.float64)[None]), s=170, marker="*",
                     color="k", edgecolors="w", linewidths=0.6, zorder=6)  # fmt: skip
        h.set_gid("h0")
        handles.append(_marker("*", "h0, initial state", markersize=10, color="k"))
    if c_values is not None and mappable is not None:
        fig.colorbar(mappable, ax=ax, label=color_label, shrink=0.7 if dims == 3 else 0.8,
                     pad=0.12 if dims == 3 else 0.02)  # fmt: skip
    _label_pcs(ax, dims, ratio, "state variance" if trajs is not None else "variance")
    if title is None:
        title = (
            f"{k:,} slow points ({n_roots:,} certified roots)"
            if status is not None
            else f"{k:,} fixed points"
        )
        if trajs is not None:
            title += f" and {len(trajs)} documents"
    ax.set_title(title)
    _legend_below(ax, handles)
    return fig


def plot_readout_geometry(
    points: Any,
    right_vectors: Any,
    readout: Any,
    *,
    tangent_alignment: Any = None,
    class_names: Sequence[str] | None = None,
    basis: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
    reference: Any = None,
    trajectories: Any = None,
    lengths: Any = None,
    max_vectors: int = 60,
    title: str | None = None,
    ax: Any = None,
) -> Figure:
    """Readout and top right eigenvectors on the manifold of slow points.

    Left: the points in the top two PCs, the visited states faintly (the manifold the
    network moves along), each point's top right eigenvector as a short segment centred
    on it (gid ``"right_eigenvectors"``, a quiver; sign-free) and the readout rows as
    arrows starting at the reference point (gid ``"readout"``). Right (with
    ``tangent_alignment``): the histogram of each point's top right eigenvector's
    alignment with the local tangent of the points (1 = tangent).

    Args:
      points: ``(K, S)`` slow points.
      right_vectors: ``(K, S)`` top right eigenvector per point (real part used).
      readout: ``(C, S)`` readout rows as directions in state space.
      tangent_alignment: optional ``(K,)`` values in ``[0, 1]``.
      class_names: names of the readout rows.
      basis: ``(mean, (D, S) directions, ratio)``, ``D >= 2`` (default: PCA of the
        trajectories' states if given, else of the points).
      reference: index into ``points`` or ``(S,)`` state where the readout arrows start
        (default: the point nearest the points' centroid, so on the manifold).
      trajectories, lengths: optional ``(B, T, S)`` visited states and their lengths,
        drawn faintly.
      max_vectors: draw at most this many eigenvector segments (evenly along PC1).
      title: optional title of the left axes.
      ax: one axes (the left panel only) or a pair (left, right); default a new figure.
    """
    points = _array("points", points, 2, "(K, S) slow points").astype(np.float64)
    right = np.real(_array("right_vectors", right_vectors, 2, "(K, S) eigenvectors"))
    w = _array("readout", readout, 2, "(C, S) readout rows").astype(np.float64)
    k, s = points.shape
    if right.shape != (k, s):
        raise ValueError(f"right_vectors must be ({k}, {s}) like points, got {right.shape}")
    if w.shape[1] != s:
        raise ValueError(f"readout must be (C, {s}) rows in state space, got {w.shape}")
    trajs = lens = None
    if trajectories is not None:
        trajs, lens = _trajectories(trajectories, lengths, s, len(trajectories))
    if basis is None:
        basis = pca_basis(_visited(trajs, lens) if trajs is not None else points, 2)
    mean, directions, ratio = _take(basis, 2, "plot_readout_geometry")
    fig, ax, ax2 = _pair(ax, (9.0, 4.4), tangent_alignment is not None)
    xy = (points - mean) @ directions.T
    handles: list = []
    if trajs is not None:
        for t, n in zip(trajs, lens, strict=True):
            (ln,) = ax.plot(*((t[:n] - mean) @ directions.T).T, color="0.6", lw=0.5, alpha=0.3,
                            zorder=0)  # fmt: skip
            ln.set_gid("trajectory")
        handles.append(Line2D([], [], color="0.6", lw=1.0, label="visited states"))
    span = float(np.ptp(np.concatenate([xy, *(
        [(_visited(trajs, lens) - mean) @ directions.T] if trajs is not None else []
    )]), axis=0).max()) or 1.0  # fmt: skip
    ax.scatter(xy[:, 0], xy[:, 1], s=14, color="0.2", zorder=2).set_gid("points")
    handles.append(_marker("o", "slow points", markersize=4, color="0.2"))
    shown = np.arange(k)
    if k > max_vectors:
        shown = np.argsort(xy[:, 0], kind="stable")[np.linspace(0, k - 1, max_vectors).astype(int)]
    v = right[shown] @ directions.T
    v = v / np.maximum(np.linalg.norm(right[shown], axis=1, keepdims=True), 1e-300)
    scale = 0.06 * span
    q = ax.quiver(
        xy[shown, 0] - scale * v[:, 0], xy[shown, 1] - scale * v[:, 1],
        2 * scale * v[:, 0], 2 * scale * v[:, 1], angles="xy", scale_units="xy", scale=1,
        color=_color(2), width=0.004, headwidth=0, headlength=0, headaxislength=0, zorder=3,
    )  # fmt: skip
    q.set_gid("right_eigenvectors")
    handles.append(Line2D([], [], color=_color(2), lw=2.5,
                          label="top right eigenvector, sign-free"))  # fmt: skip
    ref = _point_index(reference, points)
    if ref is None:
        ref = points[int(np.argmin(np.linalg.norm(xy - xy.mean(0), axis=1)))]
        start_name = "slow point nearest the centre"
    else:
        start_name = "reference point"
    start = (ref - mean) @ directions.T
    ax.scatter(*start, s=150, facecolors="none", edgecolors="k", linewidths=1.5,
               zorder=4).set_gid("reference")  # fmt: skip
    handles.append(_marker("o", start_name, markersize=10, markerfacecolor="none",
                           markeredgecolor="k", markeredgewidth=1.5))  # fmt: skip
    wp = w @ directions.T
    wp = wp / np.maximum(np.linalg.norm(w, axis=1, keepdims=True), 1e-300) * 0.4 * span
    rows = range(len(w)) if len(w) != 2 else [1]  # binary: the rows are opposite
    for i, c in enumerate(rows):
        name = class_names[c] if class_names is not None else f"class {c}"
        colour = _READOUT_COLOURS[i % len(_READOUT_COLOURS)]
        arrow = ax.annotate("", xy=start + wp[c], xytext=start, zorder=5, annotation_clip=False,
                            arrowprops=dict(arrowstyle="-|>", color=colour, lw=1.8))  # fmt: skip
        arrow.set_gid("readout")
        ax.update_datalim([start, start + wp[c]])
        handles.append(Line2D([], [], color=colour, lw=1.8, label=f"readout towards {name}"))
    ax.autoscale_view()
    ax.set_xlabel(f"PC1, {_pct(ratio[0])} of variance")
    ax.set_ylabel(f"PC2, {_pct(ratio[1])} of variance")
    ax.set_aspect("equal", adjustable="datalim")
    if title is None:
        d1 = directions[0]
        cos = np.abs(w @ d1) / np.maximum(np.linalg.norm(w, axis=1), 1e-300)
        title = f"readout |cos| with PC1 {np.max(cos[list(rows)]):.2f}, {k:,} slow points"
    ax.set_title(title)
    _legend_below(ax, handles)
    if ax2 is not None:
        t = np.asarray(tangent_alignment, np.float64)
        finite = t[np.isfinite(t)]
        ax2.hist(finite, bins=np.linspace(0, 1, 21), color=_color(2),
                 label="slow points")  # fmt: skip
        ax2.set_xlabel("|cos| of top right eigenvector with the local tangent")
        ax2.set_ylabel("slow points")
        ax2.set_xlim(0, 1)
        ax2.set_title(
            f"tangent alignment: median {np.median(finite):.2f}" if finite.size else
            "tangent alignment: not measurable"
        )  # fmt: skip
        ax2.legend(**_LEGEND)
    return fig


def plot_simplex(
    points: Any,
    readout: Any,
    *,
    class_names: Sequence[str] | None = None,
    basis: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
    reference: Any = None,
    title: str | None = None,
    ax: Any = None,
) -> Figure:
    """The slow points of a C-class network (C = 3 or 4) in their top C − 1 PCs,
    coloured by the class the readout gives them: a triangle for 3 classes, a
    tetrahedron for 4.

    Args:
      points: ``(K, S)`` slow points.
      readout: ``(C, S)`` readout rows in state space (C = 3 or 4).
      class_names: names of the classes.
      basis: projection ``(mean, (D, S) directions, ratio)``, ``D >= C − 1`` (default:
        PCA of the points).
      reference: index or ``(S,)`` state where the readout arrows start (default: the
        point nearest the centroid).
      title: optional axes title.
      ax: axes to draw into (3-D for 4 classes); default a new figure.

    Returns:
      The figure: one scatter per class present (gid ``"class_points"``), the convex
      hull of the projected points in 2-D (gid ``"hull"``), and the readout rows as
      arrows (lines in 3-D) from the reference point (gid ``"readout"``).
    """
    points = _array("points", points, 2, "(K, S) slow points").astype(np.float64)
    w = _array("readout", readout, 2, "(C, S) readout rows").astype(np.float64)
    c = w.shape[0]
    if c not in (3, 4):
        raise ValueError(f"readout must have 3 or 4 rows (classes) for a simplex, got {c}")
    if w.shape[1] != points.shape[1]:
        raise ValueError(f"readout rows have size {w.shape[1]}, points {points.shape[1]}")
    dims = c - 1
    mean, directions, ratio = _take(
        basis if basis is not None else pca_basis(points, dims), dims, "plot_simplex"
    )
    xy = (points - mean) @ directions.T
    cls = np.argmax(points @ w.T, axis=1)
    fig, ax = _target(ax, (5.0, 5.0), dims)
    names = [class_names[i] if class_names is not None else f"class {i}" for i in range(c)]
    present = 0
    for i in range(c):
        sel = cls == i
        if not np.any(sel):
            continue
        present += 1
        sc = _scatter(ax, xy[sel], color=_color(i), s=16, label=f"readout says {names[i]}")
        sc.set_gid("class_points")
    if dims == 2 and len(xy) >= 3:
        from scipy.spatial import ConvexHull, QhullError

        try:
            hull = ConvexHull(xy)
            loop = np.append(hull.vertices, hull.vertices[0])
            (ln,) = ax.plot(xy[loop, 0], xy[loop, 1], color="0.5", lw=0.8, ls=":",
                            label="convex hull of the points")  # fmt: skip
            ln.set_gid("hull")
        except QhullError:  # collinear points: no hull to draw
            pass
    span = float(np.ptp(xy, axis=0).max()) or 1.0
    wp = w @ directions.T
    wp = wp / np.maximum(np.linalg.norm(w, axis=1, keepdims=True), 1e-300) * 0.3 * span
    ref = _point_index(reference, points)
    if ref is None:
        ref = points[int(np.argmin(np.linalg.norm(xy - xy.mean(0), axis=1)))]
    start = (ref - mean) @ directions.T
    for i in range(c):
        if dims == 2:
            arrow = ax.annotate(
                "",
                xy=start + wp[i],
                xytext=start,
                annotation_clip=False,
                arrowprops=dict(arrowstyle="-|>", color=_color(i), lw=1.8),
            )
            arrow.set_gid("readout")  # fmt: skip
            ax.update_datalim([start, start + wp[i]])
        else:
            (ln,) = _plot(ax, np.stack([start, start + wp[i]]), color=_color(i), lw=2.0)
            ln.set_gid("readout")
    ax.plot([], [], color="0.3", lw=1.8, label="readout rows, from the reference point")
    _label_pcs(ax, dims, ratio)
    ax.set_title(title or f"{len(points):,} slow points, {c} classes: the readout assigns "
                 f"{present}")  # fmt: skip
    ax.legend(**_LEGEND, loc="best")
    return fig


# ------------------------------------------------------------------------ spectra


def _least_crowded_corner(z: np.ndarray, r: float) -> list[float]:
    """Inset bounds ``[x0, y0, w, h]`` (axes fraction) in the corner of the ``[-r, r]²``
    square holding the fewest eigenvalues ``z``, not the right-hand middle (near 1)."""
    size = 0.34
    corners = ((0.13, 0.58), (0.13, 0.1), (0.62, 0.58), (0.62, 0.1))
    best, count = None, None
    for pos in corners:
        x_lo = -r + (pos[0]) * 2 * r
        y_lo = -r + (pos[1]) * 2 * r
        n = int(np.sum((z.real >= x_lo) & (z.real <= x_lo + size * 2 * r) & (z.imag >= y_lo)
                       & (z.imag <= y_lo + size * 2 * r)))  # fmt: skip
        if count is None or n < count:
            best, count = pos, n
    return [best[0], best[1], size, size]


def plot_eigenvalues(
    eigenvalues: Any,
    *,
    stability: Any = None,
    band: float = 0.02,
    zoom: float = 0.06,
    title: str | None = None,
    ax: Any = None,
) -> Figure:
    """Eigenvalue spectra of ``J_rec`` at all points, overlaid, with the unit circle and
    an inset zoomed on λ = 1.

    Args:
      eigenvalues: ``(K, S)`` complex eigenvalues (one row per point) or ``(S,)``.
      stability: optional ``(K,)`` stability codes: the top eigenvalue of each point is
        drawn with its point's marker (``STABILITY``).
      band: the marginal band, drawn as circles ``|λ| = 1 ± band`` in the inset.
      zoom: half-width of the inset's window around λ = 1.
      title: optional axes title (default: the count and the median ``|λ1|``).
      ax: axes to draw into; default a new figure.

    Returns:
      The figure: one scatter of all ``K·S`` eigenvalues (gid ``"eigenvalues"``), the
      top eigenvalue of each point (gid ``"top_eigenvalues"``, or
      ``"top_eigenvalues.<stability>"``), the unit circle (gid ``"unit_circle"``) and the
      inset axes (gid ``"zoom"``) spanning ``1 ± zoom`` on both axes.
    """
    lam = _array("eigenvalues", eigenvalues, (1, 2), "(K, S) or (S,) eigenvalues")
    lam = np.atleast_2d(lam).astype(np.complex128)
    order = np.argsort(-np.abs(lam), axis=1)
    top = np.take_along_axis(lam, order[:, :1], axis=1).ravel()
    stab = None if stability is None else np.asarray(stability, np.int64)
    if stab is not None and stab.shape != top.shape:
        raise ValueError(f"stability must be ({len(top)},) codes, got shape {stab.shape}")
    fig, ax = _target(ax, (4.8, 5.0))
    allv = lam.ravel()
    r = max(1.1, float(np.abs(allv).max()) * 1.05)
    handles = []
    inset = ax.inset_axes(_least_crowded_corner(allv, r))
    inset.set_gid("zoom")
    for a, main in ((ax, True), (inset, False)):
        circle = Circle((0, 0), 1.0, fill=False, color="0.4", lw=1.0, ls="--")
        circle.set_gid("unit_circle" if main else "unit_circle_zoom")
        a.add_patch(circle)
        if not main:
            for rad in (1 - band, 1 + band):
                a.add_patch(Circle((0, 0), rad, fill=False, color="0.7", lw=0.8, ls=":"))
        sc = a.scatter(allv.real, allv.imag, s=6 if main else 10, color=_color(0), alpha=0.35,
                       edgecolors="none")  # fmt: skip
        if main:
            sc.set_gid("eigenvalues")
        groups = [(None, np.ones(len(top), bool))] if stab is None else [
            (code, stab == code) for code in sorted(set(stab.tolist()))
        ]  # fmt: skip
        for code, mask in groups:
            marker = "o" if code is None else STABILITY[code][1]
            st = a.scatter(top[mask].real, top[mask].imag, s=16 if main else 22, marker=marker,
                           color=_UNSTABLE if code == 2 else OKABE_ITO[7] if code is not None
                           else _UNSTABLE, linewidths=0.3, edgecolors="w")  # fmt: skip
            if main:
                st.set_gid("top_eigenvalues" if code is None else
                           f"top_eigenvalues.{STABILITY[code][0]}")  # fmt: skip
                name = "top mode per point" if code is None else f"top mode, {STABILITY[code][0]}"
                handles.append(
                    _marker(
                        marker,
                        name,
                        markersize=5,
                        color=_UNSTABLE if code in (None, 2) else OKABE_ITO[7],
                    )
                )
    inset.set_xlim(1 - zoom, 1 + zoom)
    inset.set_ylim(-zoom, zoom)
    inset.set_aspect("equal")
    inset.tick_params(labelsize=MIN_FONT_PT, length=2, pad=2)
    inset.locator_params(nbins=3)
    inset.set_title("zoom near λ = 1", fontsize=MIN_FONT_PT, pad=2)
    ax.indicate_inset_zoom(inset, edgecolor="0.3")
    ax.set_xlim(-r, r)
    ax.set_ylim(-r, r)
    ax.set_aspect("equal")
    ax.axhline(0, color="0.85", lw=0.5, zorder=0)
    ax.axvline(0, color="0.85", lw=0.5, zorder=0)
    ax.set_xlabel("Re λ")
    ax.set_ylabel("Im λ")
    handles = [
        _marker("o", "all modes", markersize=4, color=_color(0), alpha=0.5),
        *handles,
        Line2D([], [], color="0.4", lw=1.0, ls="--", label="|λ| = 1"),
        Line2D([], [], color="0.7", lw=0.8, ls=":", label=f"|λ| = 1 ± {band:g}, in the zoom"),
    ]
    rad = np.abs(top)
    ax.set_title(title or f"spectra at {len(lam):,} points, median |λ1| {np.median(rad):.3f}")
    _legend_below(ax, handles)
    return fig


def _time_constants(eigenvalues: np.ndarray) -> np.ndarray:
    mod = np.abs(eigenvalues)
    with np.errstate(divide="ignore"):
        tau = 1.0 / np.abs(np.log(np.maximum(mod, 1e-300)))
    return tau


def plot_time_constants(
    eigenvalues: Any,
    *,
    max_modes: int = 20,
    document_length: float | None = None,
    band: float | None = None,
    title: str | None = None,
    ax: Any = None,
) -> Figure:
    """Time constants ``τ = 1 / |log|λ||`` (steps) per mode, sorted by ``|λ|``.

    Args:
      eigenvalues: ``(K, S)`` complex eigenvalues (one row per point) or ``(S,)``.
      max_modes: show the slowest this many modes.
      document_length: optional median document length (tokens): a horizontal line
        (gid ``"document_length"``); a mode above it keeps evidence for a whole document.
      band: optional marginal band: the line ``τ`` of ``|λ| = 1 − band`` (gid
        ``"slow_threshold"``); modes above it count as slow.
      title: optional axes title (default: the median ``τ1`` and the count of points).
      ax: axes to draw into; default a new figure.

    Returns:
      The figure (log-scaled τ): one faint line per point (gid ``"point_tau"``) and the
      median over points (gid ``"median_tau"``). Modes with ``|λ| = 1`` exactly
      (τ infinite) are drawn at twice the largest finite τ.
    """
    lam = np.atleast_2d(_array("eigenvalues", eigenvalues, (1, 2), "(K, S) eigenvalues"))
    mod = -np.sort(-np.abs(lam), axis=1)[:, :max_modes]
    tau = _time_constants(mod)
    finite = tau[np.isfinite(tau)]
    cap = float(finite.max()) * 2 if finite.size else 1e3
    tau = np.where(np.isfinite(tau), tau, cap)
    modes = np.arange(1, tau.shape[1] + 1)
    fig, ax = _target(ax, (5.0, 4.2))
    for i, row in enumerate(tau):
        (ln,) = ax.plot(modes, row, color=_color(0), alpha=0.15, lw=0.6,
                        label="each point" if i == 0 else None)  # fmt: skip
        ln.set_gid("point_tau")
    median = np.median(tau, 0)
    (med,) = ax.plot(modes, median, "o-", color=_color(1), lw=1.5, ms=4,
                     label="median over points")  # fmt: skip
    med.set_gid("median_tau")
    if document_length is not None:
        line = ax.axhline(
            float(document_length),
            color="k",
            ls="--",
            lw=1.0,
            label=f"median document, {float(document_length):,.0f} tokens",
        )
        line.set_gid("document_length")  # fmt: skip
    if band is not None and 0 < band < 1:
        t_band = 1.0 / abs(np.log(1.0 - band))
        line = ax.axhline(t_band, color="0.5", ls=":", lw=1.0,
                          label=f"slow-mode threshold, |λ| = {1 - band:g}")  # fmt: skip
        line.set_gid("slow_threshold")
    ax.set_yscale("log")
    ax.set_xlabel("mode, sorted by |λ|")
    ax.set_ylabel("time constant τ, steps")
    ax.set_xticks(modes if len(modes) <= 20 else modes[::2])
    ax.set_title(title or f"τ1 median {median[0]:,.3g} steps at {len(tau):,} points")
    ax.legend(**_LEGEND, loc="lower left")
    return fig


# -------------------------------------------------------------------------- words


def plot_word_effects(
    words: Sequence[str],
    effects: Any,
    *,
    top: int = 10,
    counts: Any = None,
    xlabel: str = "effect on the integrated evidence, l₁ · J_inp · x_w",
    directions: tuple[str, str] = ("lowers the evidence", "raises the evidence"),
    title: str | None = None,
    ax: Any = None,
) -> Figure:
    """Bar chart of the ``top`` most positive and ``top`` most negative word effects.

    Args:
      words: ``(V,)`` vocabulary.
      effects: ``(V,)`` one number per word (e.g. the projection on the slow mode).
      top: bars per sign.
      counts: optional ``(V,)`` occurrences; words that never occur are left out.
      xlabel: the x-axis label.
      directions: legend names of a negative and a positive effect (e.g. ``("towards
        negative", "towards positive")``).
      title: optional axes title (default: how many words are shown of how many).
      ax: axes to draw into; default a new figure.

    Returns:
      The figure: one horizontal bar per shown word (gid ``"word_bar"``), largest effect
      on top; positive bars vermillion, negative blue.
    """
    e = _array("effects", effects, 1, "(V,) word effects").astype(np.float64)
    if len(words) != len(e):
        raise ValueError(f"words has {len(words)} entries, effects {len(e)}; expected equal")
    keep = np.isfinite(e)
    if counts is not None:
        keep &= np.asarray(counts) > 0
    idx = np.flatnonzero(keep)
    order = idx[np.argsort(e[idx])]
    neg = [i for i in order[:top] if e[i] < 0]
    pos = [i for i in order[::-1][:top] if e[i] > 0]
    shown = pos + neg[::-1]  # largest positive first, most negative last
    fig, ax = _target(ax, (5.0, max(2.8, 0.24 * len(shown) + 1.6)))
    y = np.arange(len(shown))[::-1]
    bars = ax.barh(y, e[shown], color=[_color(1) if e[i] > 0 else _color(0) for i in shown])
    for b in bars:
        b.set_gid("word_bar")
    ax.set_yticks(y, [str(words[i]) for i in shown])
    ax.axvline(0, color="0.3", lw=0.8)
    ax.set_xlabel(xlabel)
    handles = []
    if pos:
        handles.append(_marker("s", directions[1], color=_color(1), markersize=7))
    if neg:
        handles.append(_marker("s", directions[0], color=_color(0), markersize=7))
    ax.legend(handles=handles, loc="lower right" if pos else "upper left", **_LEGEND)
    ax.set_title(title or f"the {len(shown)} strongest of {len(idx):,} words seen")
    return fig


def plot_effect_vs_bow(
    effects: Any,
    bow_weights: Any,
    *,
    counts: Any = None,
    words: Sequence[str] | None = None,
    annotate: int = 4,
    xlabel: str = "bag-of-words weight",
    ylabel: str = "word effect through the slow modes",
    class_names: Sequence[str] | None = None,
    title: str | None = None,
    ax: Any = None,
) -> Figure:
    """Scatter of each word's effect against its bag-of-words weight, with Pearson r.

    Args:
      effects: ``(V,)`` or ``(V, C)`` word effects (e.g. logit changes).
      bow_weights: the same shape: the bag-of-words model's weights.
      counts: optional ``(V,)`` occurrences: words that never occur are left out, and
        the marker size grows with frequency.
      words: optional vocabulary; the ``annotate`` words with the largest |effect| are
        labelled.
      annotate: how many words to label.
      xlabel, ylabel: axis labels.
      class_names: names of the columns (``(V, C)`` inputs with C > 2), for the legend.
      title: optional title (default: ``r = ...`` over the words drawn).
      ax: axes to draw into; default a new figure.

    Returns:
      The figure; its title holds ``r = ...`` computed over the pooled entries drawn
      (gid ``"words"`` on the scatter, ``"fit"`` on the least-squares line).
    """
    e = _array("effects", effects, (1, 2), "(V,) or (V, C) effects").astype(np.float64)
    b = _array("bow_weights", bow_weights, (1, 2), "(V,) or (V, C) weights").astype(np.float64)
    if e.shape != b.shape:
        raise ValueError(f"effects {e.shape} and bow_weights {b.shape} must have the same shape")
    e2, b2 = e.reshape(len(e), -1), b.reshape(len(b), -1)
    keep = np.all(np.isfinite(e2) & np.isfinite(b2), axis=1)
    cnt = None
    if counts is not None:
        cnt = np.asarray(counts, np.float64)
        keep &= cnt > 0
    fig, ax = _target(ax, (4.8, 4.4))
    size = 10.0 if cnt is None else 6 + 40 * np.sqrt(cnt[keep] / cnt[keep].max())
    xs, ys = b2[keep], e2[keep]
    many = e2.shape[1] > 2
    for c in range(e2.shape[1]):
        name = (class_names[c] if class_names is not None else f"class {c}") if many else None
        label = (
            f"words, {name}" if many else ("words, size ∝ √count" if cnt is not None else "words")
        )
        sc = ax.scatter(xs[:, c], ys[:, c], s=size, color=_color(c if e2.shape[1] > 1 else 0),
                        alpha=0.6, edgecolors="none",
                        label=label if (many or c == 0) else None)  # fmt: skip
        sc.set_gid("words")
    x, y = xs.ravel(), ys.ravel()
    r = float(np.corrcoef(x, y)[0, 1]) if len(x) > 1 and x.std() > 0 and y.std() > 0 else np.nan
    if len(x) > 1 and x.std() > 0:
        slope, icpt = np.polyfit(x, y, 1)
        grid = np.linspace(x.min(), x.max(), 2)
        (fit,) = ax.plot(grid, slope * grid + icpt, color="0.3", lw=0.8, ls="--",
                         label="least-squares line")  # fmt: skip
        fit.set_gid("fit")
    if words is not None and annotate > 0:
        kept = np.flatnonzero(keep)
        col = e2.shape[1] - 1
        for j in np.argsort(-np.abs(ys[:, col]))[:annotate]:
            ax.annotate(str(words[kept[j]]), (xs[j, col], ys[j, col]), fontsize=MIN_FONT_PT,
                        xytext=(3, 3), textcoords="offset points")  # fmt: skip
    ax.axhline(0, color="0.85", lw=0.5, zorder=0)
    ax.axvline(0, color="0.85", lw=0.5, zorder=0)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    r_text = f"r = {r:.3f}" if np.isfinite(r) else "r not measurable"
    ax.set_title(title or f"word effects vs bag of words: {r_text}, {len(x):,} values")
    ax.legend(**_LEGEND, loc="best")
    return fig


# ---------------------------------------------------------------- dimension, accuracy


def _reach(ratio: np.ndarray, threshold: float) -> int:
    cum = np.cumsum(ratio)
    hit = np.flatnonzero(cum >= threshold - 1e-12)
    return int(hit[0]) + 1 if hit.size else len(ratio)


def plot_explained_variance(
    state_ratio: Any,
    fixed_point_ratio: Any = None,
    predicted_ratio: Any = None,
    *,
    max_components: int = 10,
    threshold: float | None = 0.9,
    title: str | None = None,
    ax: Any = None,
) -> Figure:
    """Explained variance per principal component: visited states, slow points, and
    the word-count prediction, side by side; cumulative on the right.

    Args:
      state_ratio: ``(n,)`` explained-variance ratios of the visited hidden states.
      fixed_point_ratio: optional ``(n,)`` ratios of the slow points.
      predicted_ratio: optional ``(n,)`` ratios of the word-count evidence vectors.
      max_components: show the first this many components.
      threshold: draw this cumulative fraction (the dimension rule) on the right.
      title: optional title of the left axes (default: the PCs each series needs to
        reach ``threshold``).
      ax: one axes (the bars only) or a pair (bars, cumulative); default a new figure.

    Returns:
      The figure; the left axes hold one bar per component and series (gids
      ``"states"``, ``"fixed_points"``, ``"prediction"``), the right the cumulative
      fractions, on a range that shows them (not always 0 to 1).
    """
    series = [("states", "visited states", state_ratio)]
    if fixed_point_ratio is not None:
        series.append(("fixed_points", "slow points", fixed_point_ratio))
    if predicted_ratio is not None:
        series.append(("prediction", "word-count prediction", predicted_ratio))
    fig, ax, ax2 = _pair(ax, (8.4, 3.8), True)
    width = 0.8 / len(series)
    lows, reach = [], []
    for i, (gid, name, ratio) in enumerate(series):
        full = _array(gid, ratio, 1, "(n,) explained-variance ratios").astype(np.float64)
        r = full[:max_components]
        x = np.arange(1, len(r) + 1)
        bars = ax.bar(x + (i - (len(series) - 1) / 2) * width, r, width, color=_color(i),
                      label=name)  # fmt: skip
        for patch in bars:
            patch.set_gid(gid)
        if threshold is not None:
            reach.append(f"{name.split()[0] if gid != 'prediction' else 'predicted'} "
                         f"{_reach(full, threshold)}")  # fmt: skip
        if ax2 is not None:
            cum = np.cumsum(r)
            (ln,) = ax2.plot(x, cum, "o-", color=_color(i), ms=3, label=name)
            ln.set_gid(f"cumulative_{gid}")
            lows.append(float(cum.min()))
    n = max(len(np.asarray(s[2])[:max_components]) for s in series)
    ax.set_xticks(np.arange(1, n + 1))
    ax.set_xlabel("principal component")
    ax.set_ylabel("fraction of variance")
    if title is None:
        title = (f"PCs to {_pct(threshold)}: " + ", ".join(reach)) if reach else "dimension"
    ax.set_title(title)
    ax.legend(**_LEGEND)
    if ax2 is not None:
        if threshold is not None:
            ax2.axhline(threshold, color="0.4", ls="--", lw=0.8,
                        label=f"{_pct(threshold)}, the dimension rule")  # fmt: skip
            lows.append(threshold)
        lo = max(0.0, min(lows) - 0.05 * max(1.0 - min(lows), 0.2))
        ax2.set_ylim(lo, 1.0 + 0.02 * (1.0 - lo))
        ax2.set_xticks(np.arange(1, n + 1))
        ax2.set_xlabel("number of components")
        ax2.set_ylabel("cumulative fraction of variance")
        ax2.set_title("cumulative")
        ax2.legend(**_LEGEND, loc="lower right")
    return fig


_ACCURACY_NAMES = {
    "full": "full network",
    "initial": "linearised, reference point",
    "nearest": "linearised, nearest point",
    "trajectory": "linearised, trajectory",
}


def _limits(values: Sequence[float], pad: float = 0.03) -> tuple[float, float]:
    v = np.asarray([x for x in values if x is not None and np.isfinite(x)], np.float64)
    lo, hi = (float(v.min()), float(v.max())) if v.size else (0.0, 1.0)
    margin = max(pad, 0.12 * (hi - lo))
    return max(0.0, lo - margin), min(1.0 + margin / 2, hi + margin)


def plot_linearized_accuracy(
    full: float,
    initial: float,
    nearest: float | None = None,
    trajectory: float | None = None,
    *,
    by_length: Mapping[str, Any] | None = None,
    chance: float | None = None,
    chance_label: str = "chance",
    title: str | None = None,
    ax: Any = None,
) -> Figure:
    """Accuracy of the full network next to its linearisations.

    Args:
      full, initial, nearest, trajectory: overall accuracies (full network; linearised
        around one reference point near the initial state; piecewise around the
        nearest point; along the trajectory from the initial state under ``x*``); nan
        or ``None`` is left out.
      by_length: optional ``{"length": (B,) bin centres, "full": (B,), "initial": (B,),
        "nearest": (B,), "trajectory": (B,)}`` accuracies per document-length bin (any of
        the models may be missing); then a line plot.
      chance: the accuracy of guessing (``1 / C``, or the majority class' rate): a
        dashed line (gid ``"chance"``).
      chance_label: its legend name.
      title: optional title (default: the network's accuracy and what the
        linearisation loses).
      ax: axes to draw into; default a new figure.

    Returns:
      The figure: a dot per model (gid ``"accuracy"``) on a range that shows the
      values and chance, or, with ``by_length``, one line per model (gid
      ``"accuracy_by_length"``).
    """
    fig, ax = _target(ax, (5.0, 3.4))
    legend_at = "best"
    chance_v = None if chance is None or not np.isfinite(chance) else float(chance)
    vals = [("full", full), ("initial", initial), ("nearest", nearest), ("trajectory", trajectory)]
    vals = [(k, float(v)) for k, v in vals if v is not None and np.isfinite(v)]
    if by_length is not None:
        x = np.asarray(by_length["length"], np.float64)
        ys = []
        for i, key in enumerate(("full", "initial", "nearest", "trajectory")):
            if key in by_length and by_length[key] is not None:
                y = np.asarray(by_length[key], np.float64)
                (ln,) = ax.plot(x, y, "o-", color=_color(i), ms=3, label=_ACCURACY_NAMES[key])
                ln.set_gid("accuracy_by_length")
                ys.extend(y[np.isfinite(y)].tolist())
        lo, hi = _limits(ys)
        if chance_v is not None and chance_v >= lo - max(0.1, hi - lo):
            ax.axhline(chance_v, color="0.4", ls="--", lw=0.9, label=chance_label).set_gid("chance")
            lo, hi = _limits(ys + [chance_v])
        elif chance_v is not None:  # far below the data: named in the legend, not drawn
            ax.axhline(
                chance_v,
                color="0.4",
                ls="--",
                lw=0.9,
                label=f"{chance_label} {chance_v:.2f}, below the axis",
            ).set_gid("chance")
        ax.set_ylim(lo, hi)
        ax.set_xlabel("document length, tokens")
        ax.set_ylabel("accuracy")
    else:
        y = np.arange(len(vals))[::-1]
        sc = ax.scatter([v for _, v in vals], y, s=46,
                        color=[_color(i) for i in range(len(vals))], zorder=3)  # fmt: skip
        sc.set_gid("accuracy")
        for yi, (_, v) in zip(y, vals, strict=True):
            ax.annotate(f"{v:.3f}", (v, yi), xytext=(0, 7), textcoords="offset points",
                        ha="center", fontsize=MIN_FONT_PT + 1)  # fmt: skip
            ax.axhline(yi, color="0.92", lw=0.6, zorder=0)
        ax.set_yticks(y, [_ACCURACY_NAMES[k] for k, _ in vals])
        ax.set_ylim(-0.7, len(vals) - 0.3)
        if chance_v is not None:
            ax.axvline(chance_v, color="0.4", ls="--", lw=0.9, label=chance_label).set_gid("chance")
        ax.set_xlim(*_limits([v for _, v in vals] + ([chance_v] if chance_v is not None else [])))
        ax.set_xlabel("accuracy")
        legend_at = "lower left"
    if title is None:
        title = f"network accuracy {full:.3f}"
        lin = dict(vals).get("initial", dict(vals).get("trajectory"))
        if lin is not None:
            title += f"; linearised {lin:.3f}"
    ax.set_title(title)
    if by_length is not None or chance_v is not None:
        ax.legend(**_LEGEND, loc=legend_at)
    return fig


def _accuracy_figure(acc: Mapping[str, Any], chance: float | None, label: str) -> Figure:
    """Overall accuracies (dots) and, where the record has them, accuracies per
    document length, side by side."""
    vals = (acc["full"], acc["initial"], acc["nearest"], acc["trajectory"])
    if acc.get("by_length") is None:
        return plot_linearized_accuracy(*vals, chance=chance, chance_label=label)
    fig = _figure(9.6, 3.6)
    left, right = fig.subplots(1, 2, width_ratios=[1, 1.15])
    plot_linearized_accuracy(*vals, chance=chance, chance_label=label, ax=left)
    plot_linearized_accuracy(*vals, by_length=acc["by_length"], chance=chance, chance_label=label,
                             title="per document length", ax=right)  # fmt: skip
    return fig


# ------------------------------------------------------------ contextual processing


def plot_modifier_gains(
    words: Sequence[str],
    gain: Any,
    *,
    reach: Any = None,
    top: int = 4,
    title: str | None = None,
    ax: Any = None,
) -> Figure:
    """The gain each of the strongest modifiers applies to a word ``d`` tokens after it.

    Args:
      words: ``(n,)`` the words' names.
      gain: ``(n, D)`` gain at distances ``0 .. D − 1`` (``0``: the next word).
      reach: optional ``(n,)`` reach in tokens, marked on each word's line.
      top: draw the ``top`` words with the largest ``|gain(0) − 1|``.
      title: optional title (default: the strongest modifier's gain and reach).
      ax: axes to draw into; default a new figure.

    Returns:
      The figure: one line per word (gid ``"modifier_gain"``), reference lines at gain 1
      (gid ``"gain_one"``: no modification), 0 (``"gain_zero"``: erased) and −1
      (``"gain_flip"``: flipped), and a marker at each word's reach (gid ``"reach"``).
    """
    g = _array("gain", gain, 2, "(n, D) gains by distance").astype(np.float64)
    if len(words) != len(g):
        raise ValueError(f"words has {len(words)} entries, gain {len(g)} rows; expected equal")
    r = None if reach is None else np.asarray(reach, np.float64)
    strength = np.abs(np.nan_to_num(g[:, 0] - 1.0, nan=0.0))
    shown = [int(i) for i in np.argsort(-strength, kind="stable")[:top]
             if strength[i] > 0 and np.all(np.isfinite(g[i]))]  # fmt: skip
    fig, ax = _target(ax, (6.0, 4.6))
    d = np.arange(g.shape[1])
    for ref, gid, label in ((1.0, "gain_one", "gain 1: no modification"),
                            (0.0, "gain_zero", "gain 0: erased"),
                            (-1.0, "gain_flip", "gain −1: flipped")):  # fmt: skip
        ax.axhline(ref, color="0.45", lw=0.8, ls=":" if ref else "--", zorder=0,
                   label=label).set_gid(gid)  # fmt: skip
    for j, i in enumerate(shown):
        text = f"{words[i]}: ×{g[i, 0]:.2f}"
        if r is not None and np.isfinite(r[i]):
            text += f", reach {r[i]:.1f}"
        (ln,) = ax.plot(d, g[i], "o-", ms=3.5, color=_color(j), label=text)
        ln.set_gid("modifier_gain")
        if r is not None and np.isfinite(r[i]) and r[i] <= d[-1] + 1:
            # a gain held for k tokens has reach k: it ends between d = k − 1 and d = k
            x = float(r[i]) - 0.5
            y = float(np.interp(x, d, g[i]))
            (mark,) = ax.plot([x], [y], marker="|", ms=14, mew=2, color=_color(j), ls="")
            mark.set_gid("reach")
    if r is not None and shown:
        ax.plot([], [], marker="|", ms=10, mew=2, color="0.35", ls="", label="reach (tokens)")
    ys = np.concatenate([g[shown].ravel(), [1.0, 0.0, -1.0]]) if shown else np.array([-1.0, 1.0])
    pad = 0.08 * (ys.max() - ys.min())
    ax.set_ylim(ys.min() - pad, ys.max() + pad)
    ax.set_xticks(d)
    ax.set_xlabel("tokens between the modifier and the word, d")
    ax.set_ylabel("gain on the word's valence")
    if title is None and shown:
        i = shown[0]
        title = f"strongest modifier {words[i]}: ×{g[i, 0]:.2f} on the next word"
        if r is not None and np.isfinite(r[i]):
            title += f", reach {r[i]:.1f} tokens"
    ax.set_title(title or "no modifier: every gain is 1", fontsize=MIN_FONT_PT + 2)
    _legend_below(ax, ax.get_legend_handles_labels()[0], ncol=2)
    return fig


def plot_modifier_subspace(
    words: Sequence[str],
    coords: Any,
    strength: Any,
    *,
    explained: Any = None,
    title: str | None = None,
    ax: Any = None,
) -> Figure:
    """The modifiers' displacements off the line in the modifier subspace, labelled.

    Args:
      words: ``(m,)`` the modifiers' names.
      coords: ``(m, k)`` their coordinates in the subspace (``k = 1``: drawn at 0 on
        the second axis).
      strength: ``(m,)`` ``gain(0) − 1``: above 0 an intensifier (vermillion), below a
        negator or attenuator (blue).
      explained: optional energy fraction per component, for the axis labels.
      title: optional title (default: the dimension and whether the two kinds sit on
        opposite sides of PC1).
      ax: axes to draw into; default a new figure.

    Returns:
      The figure: the intensifiers (gid ``"intensifiers"``) and the attenuators (gid
      ``"attenuators"``), each word labelled, and the line (no displacement) at the
      origin (gid ``"origin"``).
    """
    c = _array("coords", coords, 2, "(m, k) subspace coordinates").astype(np.float64)
    st = _array("strength", strength, 1, "(m,) strengths").astype(np.float64)
    if not len(words) == len(c) == len(st):
        raise ValueError(f"words ({len(words)}), coords ({len(c)}) and strength ({len(st)}) "
                         "must have one entry per word")  # fmt: skip
    xy = c[:, :2] if c.shape[1] >= 2 else np.c_[c[:, 0], np.zeros(len(c))]
    fig, ax = _target(ax, (5.0, 4.4))
    up, down = st > 0, st < 0
    for mask, gid, colour, label in ((up, "intensifiers", _color(1), "intensifies, gain > 1"),
                                     (down, "attenuators", _color(0),
                                      "attenuates or flips, gain < 1")):  # fmt: skip
        if mask.any():
            ax.scatter(xy[mask, 0], xy[mask, 1], s=36, color=colour, label=label,
                       zorder=3).set_gid(gid)  # fmt: skip
    for i, w in enumerate(words):
        ax.annotate(f"{w} ×{1 + st[i]:.2f}", xy[i], xytext=(4, 4), textcoords="offset points",
                    fontsize=MIN_FONT_PT)  # fmt: skip
    ax.scatter([0.0], [0.0], marker="+", s=80, color="0.2", label="the line: no displacement",
               zorder=2).set_gid("origin")  # fmt: skip
    ax.axhline(0, color="0.88", lw=0.5, zorder=0)
    ax.axvline(0, color="0.88", lw=0.5, zorder=0)
    pts = np.vstack([xy, [[0.0, 0.0]]])
    lo, hi = pts.min(0), pts.max(0)
    span = np.maximum(hi - lo, 1e-12 + 0.1 * np.max(hi - lo))
    ax.set_xlim(lo[0] - 0.12 * span[0], hi[0] + 0.3 * span[0])
    ax.set_ylim(lo[1] - 0.12 * span[1], hi[1] + 0.2 * span[1])
    e = None if explained is None else np.asarray(explained, np.float64)
    for i, setter in enumerate((ax.set_xlabel, ax.set_ylabel)):
        name = f"modifier PC{i + 1}"
        if c.shape[1] <= i:
            name += ", none: a 1-D subspace"
        elif e is not None and len(e) > i:
            name += f", {_pct(e[i])} of the energy"
        setter(name)
    if title is None:
        title = f"modifier subspace, {c.shape[1]}-D, {len(c)} words"
        if up.any() and down.any():
            opposite = np.mean(xy[up, 0]) * np.mean(xy[down, 0]) < 0
            title += "\nthe two kinds on " + ("opposite sides" if opposite else "one side")
    ax.set_title(title)
    ax.legend(**_LEGEND, loc="best")
    return fig


def plot_model_accuracy(
    accuracies: Mapping[str, float],
    *,
    chance: float | None = None,
    title: str | None = None,
    ax: Any = None,
) -> Figure:
    """Accuracy of the network next to simpler models, as bars.

    Args:
      accuracies: ``{name: accuracy}`` in the order to draw, top first (e.g. ``"bag of
        words"``, ``"extended bag of words"``, ``"linear RNN, trained"``, ``"linearised
        network"``, ``"network"``); nan or ``None`` is left out.
      chance: the accuracy of guessing: a dashed line (gid ``"chance"``).
      title: optional title (default: the network's accuracy and what the extended bag
        of words recovers of its gain over the bag of words, when both are given).
      ax: axes to draw into; default a new figure.

    Returns:
      The figure: one bar per model (gid ``"accuracy_bar"``), its value written at its
      end, on a range that shows the values (bars start at the left edge of the axes).
    """
    vals = [(k, float(v)) for k, v in accuracies.items() if v is not None and np.isfinite(v)]
    if not vals:
        raise ValueError("accuracies holds no finite value")
    chance_v = None if chance is None or not np.isfinite(chance) else float(chance)
    lo, hi = _limits([v for _, v in vals])
    if chance_v is not None and chance_v >= lo - max(0.1, hi - lo):
        lo, hi = _limits([v for _, v in vals] + [chance_v])
    fig, ax = _target(ax, (5.6, 0.42 * len(vals) + 1.9))
    y = np.arange(len(vals))[::-1]
    colours = [_color(i) for i in range(len(vals))]
    bars = ax.barh(y, [v - lo for _, v in vals], left=lo, height=0.6, color=colours)
    for b, (name, v) in zip(bars, vals, strict=True):
        b.set_gid("accuracy_bar")
        b.set_label(name)
        ax.annotate(f"{v:.3f}", (v, b.get_y() + b.get_height() / 2), xytext=(3, 0),
                    textcoords="offset points", va="center", fontsize=MIN_FONT_PT + 1)  # fmt: skip
    ax.set_yticks(y, [k for k, _ in vals])
    ax.set_xlim(lo, hi + 0.12 * (hi - lo))
    ax.set_xlabel("accuracy")
    handles = []
    if chance_v is not None:
        inside = lo <= chance_v <= hi
        label = "chance" if inside else f"chance {chance_v:.2f}, below the axis"
        line = ax.axvline(chance_v, color="0.4", ls="--", lw=0.9, label=label)
        line.set_gid("chance")
        handles.append(line)
    _legend_below(ax, handles, ncol=1)
    acc = dict(vals)
    if title is None:
        net = acc.get("network")
        title = "accuracy" if net is None else f"network {net:.3f}"
        bow, ext = acc.get("bag of words"), acc.get("extended bag of words")
        if net is not None and bow is not None and ext is not None and net - bow > 0.01:
            title += (f"\nthe extended bag of words recovers {(ext - bow) / (net - bow):.0%} "
                      "of its gain")  # fmt: skip
        elif net is not None and bow is not None:
            title += f"; bag of words {bow:.3f}"
    ax.set_title(title, fontsize=MIN_FONT_PT + 2)
    return fig


# ----------------------------------------------------------------------- output


def render(fig: Figure, fmt: str = "png", *, dpi: float = 150) -> bytes:
    """The figure as ``fmt`` (``"png"``, ``"svg"`` or ``"pdf"``) bytes at ``dpi``."""
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if not (isinstance(dpi, (int, float)) and np.isfinite(dpi) and dpi > 0):
        raise ValueError(f"dpi must be a number > 0, got {dpi!r}")
    buf = io.BytesIO()
    meta = {"Software": None} if fmt == "png" else {"Creator": None} if fmt == "pdf" else {}
    fig.savefig(buf, format=fmt, dpi=dpi, metadata=meta)
    return buf.getvalue()


def save(
    fig: Figure,
    path: str | os.PathLike,
    *,
    formats: Sequence[str] = ("png",),
    dpi: float = 150,
) -> dict[str, str]:
    """Write ``fig`` as ``path.<format>`` for each of ``formats`` (atomically).

    Args:
      fig: the figure.
      path: the file name without its extension (an extension of ``FORMATS`` is dropped).
      formats: any of ``FORMATS``.
      dpi: resolution of raster output (PNG; and raster parts of SVG/PDF).

    Returns:
      ``{format: path written}``.
    """
    stem = os.fspath(path)
    root, ext = os.path.splitext(stem)
    if ext.lstrip(".") in FORMATS:
        stem = root
    out = {}
    for fmt in dict.fromkeys(formats):
        target = f"{stem}.{fmt}"
        atomic_write(target, render(fig, fmt, dpi=dpi))
        out[fmt] = target
    return out


# ----------------------------------------------------------------- from an Analysis


def parts(
    analysis: Any,
    *,
    readout_state: Any = None,
    trajectories: Any = None,
    lengths: Any = None,
    max_trajectories: int = 40,
) -> dict[str, Any]:
    """The arrays the figures need, read from an ``rnndyn.Analysis``.

    This is the only function that knows the record's field names.

    Args:
      analysis: an ``rnndyn.Analysis``.
      readout_state: optional ``(C, S)`` readout rows in state space
        (``rnndyn.analysis.readout_in_state_space``). Default: the record's ``(C, N)``
        rows, zero-padded to ``S`` (exact for every built-in cell: the LSTM's output is
        the first ``N`` coordinates of its state ``[h, c]``).
      trajectories, lengths: optional ``(B, T, S)`` visited states of documents and their
        lengths: the shared basis is their PCA (else the slow points').
      max_trajectories: trajectories used for the basis (the figures draw these).

    Returns:
      A dict with ``points (K, S)`` (the analysed slow points), ``status (K,)``,
      ``stability (K,)``, ``band``, ``eigenvalues (K, S)``, ``right_vectors (K, S)``,
      ``readout (C, S)``, ``words``, ``counts``, ``mode_effects (V,)`` (or the trajectory
      effect without a reference point), ``logit_effects (V, C)``, ``bow_weights (V, C)``,
      ``state_ratio``, ``fixed_point_ratio``, ``predicted_ratio``, ``threshold``,
      ``tangent_alignment (K,)``, ``accuracy`` (``full``, ``initial``, ``nearest``,
      ``trajectory``, optional ``by_length``), ``chance`` (``1 / C`` for exclusive classes,
      else ``None``), ``num_classes``, ``multilabel``, ``reference`` (index or ``None``),
      ``reference_point (S,)`` (or ``None``), ``document_length`` (the median document's
      tokens), ``basis``: ``(mean, (D, S), ratio)`` with ``D = min(3, S)`` principal
      directions shared by every state-space figure, ``contextual`` (``None`` without
      the stage: ``names``, ``gain (n, D)``, ``reach (n,)``, ``subspace_names``,
      ``subspace_coords (m, k)``, ``subspace_strength (m,)``, ``subspace_explained``) and
      ``models``: ``{name: accuracy}`` of the network and the simpler models (bag of
      words, extended bag of words and linear RNN where measured, linearised network;
      ``None`` without either of those two stages).
    """
    kept = analysis.points.kept
    points = np.asarray(kept.points, np.float64)
    s = points.shape[1]
    geo, spec = analysis.geometry, analysis.spectra
    if readout_state is None:
        w = np.asarray(geo.readout, np.float64)
        readout_state = np.zeros((w.shape[0], s))
        readout_state[:, : w.shape[1]] = w
    we, lin, base = analysis.word_effects, analysis.linearized, analysis.baseline
    model = analysis.model if isinstance(analysis.model, Mapping) else {}
    at_reference = we.logit_effects is not None
    effects = np.asarray(we.logit_effects if at_reference else we.trajectory_effects)
    mode_effects = (
        np.asarray(we.mode_projections)[:, 0] if at_reference else effects[:, -1] - effects[:, 0]
    )
    fp_spectrum = geo.fixed_point_dimension.spectrum
    num_classes = int(model.get("num_classes", np.asarray(geo.readout).shape[0]))
    multilabel = bool(model.get("multilabel", False))
    ref = analysis.reference
    dims = min(3, s) if s >= 2 else 2
    if trajectories is not None:
        trajs, lens = _trajectories(trajectories, lengths, s, max_trajectories)
        basis = pca_basis(_visited(trajs, lens), dims)
    elif len(points):
        basis = pca_basis(points, dims)
    else:
        basis = None
    length = getattr(we, "trajectory_length", None)
    return {
        "points": points,
        "status": np.asarray(kept.status),
        "stability": np.asarray(spec.stability),
        "band": float(spec.marginal_band),
        "eigenvalues": np.asarray(spec.eigenvalues),
        "right_vectors": np.asarray(spec.slow_vectors),
        "readout": np.asarray(readout_state, np.float64),
        "words": tuple(we.words),
        "counts": np.asarray(base.counts),
        "mode_effects": mode_effects,
        "effects_at": "the reference point" if at_reference else "the trajectory",
        "logit_effects": effects,
        "bow_weights": np.asarray(base.weights),
        "state_ratio": np.asarray(geo.state_dimension.spectrum),
        # None for fewer than two points (no principal components)
        "fixed_point_ratio": np.asarray(fp_spectrum) if np.size(fp_spectrum) else None,
        "predicted_ratio": np.asarray(analysis.prediction.explained_ratio),
        "threshold": float(geo.threshold),
        "tangent_alignment": np.asarray(geo.tangent_alignment),
        "accuracy": {
            "full": float(lin.full),
            "initial": float(lin.initial),
            "nearest": float(lin.nearest),
            "trajectory": float(lin.trajectory),
            "by_length": _by_length(lin),
        },
        "chance": None if multilabel else 1.0 / max(num_classes, 1),
        "num_classes": num_classes,
        "multilabel": multilabel,
        "reference": None if ref is None else int(ref.index),
        "reference_point": None if ref is None or ref.point is None else
        np.asarray(ref.point, np.float64),
        "document_length": None if length is None else float(length),
        "basis": basis,
        "contextual": _contextual(getattr(analysis, "contextual", None)),
        "models": _models(analysis),  # None without the contextual stage or a linear RNN
    }  # fmt: skip


def _contextual(c: Any) -> dict | None:
    """The contextual-processing arrays of the figures (``None`` without the stage)."""
    if c is None or len(c.words) == 0:
        return None
    m = len(c.subspace_words)
    names = tuple(c.names) if len(c.names) == len(c.words) else tuple(map(str, c.words))
    return {
        "names": names,
        "gain": np.asarray(c.gain, np.float64),
        "reach": np.asarray(c.reach, np.float64),
        # the subspace words are the first ``m`` of the ranking
        "subspace_names": names[:m],
        "subspace_coords": np.asarray(c.subspace_coords, np.float64),
        "subspace_strength": np.asarray(c.strength, np.float64)[:m],
        "subspace_explained": np.asarray(c.subspace_explained, np.float64),
    }


def _models(a: Any) -> dict[str, float] | None:
    """``{name: accuracy}`` of the simpler models and the network, weakest kind first
    (``None`` when neither the contextual stage nor a linear RNN was run)."""
    lin = a.linearized
    c, linear = getattr(a, "contextual", None), getattr(a, "linear_rnn", None)
    if c is None and linear is None:
        return None
    out = {"bag of words": float(a.baseline.accuracy)}
    if c is not None:
        out["extended bag of words"] = float(c.extended_accuracy)
    if linear is not None:
        out["linear RNN, trained"] = float(linear.accuracy)
    lin_acc = float(lin.initial) if np.isfinite(lin.initial) else float(lin.trajectory)
    out["linearised network"] = lin_acc
    out["network"] = float(lin.full)
    return out


def _by_length(lin: Any) -> dict | None:
    """Accuracy per length bin, when the record has it (``length_edges``, ...)."""
    edges = getattr(lin, "length_edges", None)
    if edges is None:
        return None
    edges = np.asarray(edges, np.float64)
    counts = np.asarray(getattr(lin, "length_counts", np.ones(len(edges) - 1)))
    keep = counts > 0
    return {
        "length": ((edges[:-1] + edges[1:]) / 2)[keep],
        "full": np.asarray(lin.length_full)[keep],
        "initial": np.asarray(lin.length_linearized)[keep],
        "trajectory": None
        if getattr(lin, "length_trajectory", None) is None
        else np.asarray(lin.length_trajectory)[keep],
    }


def figures(
    analysis: Any,
    *,
    trajectories: Any = None,
    lengths: Any = None,
    labels: Any = None,
    class_names: Sequence[str] | None = None,
    readout_state: Any = None,
    h0: Any = None,
    chance: float | None = None,
    chance_label: str | None = None,
    max_trajectories: int = 40,
    only: Collection[str] | None = None,
) -> dict[str, Figure]:
    """Every figure of an ``Analysis``, by file-friendly name, in one shared PCA basis.

    Args:
      analysis: an ``rnndyn.Analysis``.
      trajectories, lengths, labels: optional ``(B, T, S)`` state trajectories of a few
        documents, their lengths and labels (``rnndyn.report.trajectories``).
      class_names: names of the classes.
      readout_state: see ``parts``.
      h0: optional ``(S,)`` initial state (``model.cell.initial_state()``), marked where
        the trajectories start.
      chance: accuracy of guessing for the accuracy figure (default ``1 / C``; pass the
        majority class' rate where it is known).
      chance_label: its legend name.
      max_trajectories: draw at most this many trajectories.
      only: draw only the figures of these names (e.g. ``("fixed_points",)`` for the
        notebook view); default: every figure.

    Returns:
      ``{"word_effects": ..., "effect_vs_bow": ..., "explained_variance": ...,
      "linearized_accuracy": ...}``, with at least one slow point also
      ``"fixed_points"``, ``"fixed_points_3d"``, ``"eigenvalues"`` and
      ``"time_constants"``; with two or more ``"readout_geometry"``; ``"simplex"``
      for 3 or 4 exclusive classes; with the contextual stage ``"modifier_gains"`` and
      ``"modifier_subspace"``; with it or a linear RNN ``"model_accuracy"``.
    """
    p = parts(analysis, readout_state=readout_state, trajectories=trajectories,
              lengths=lengths, max_trajectories=max_trajectories)  # fmt: skip
    pts, w, basis = p["points"], p["readout"], p["basis"]
    binary = p["num_classes"] == 2 and not p["multilabel"]
    out: dict[str, Figure] = {}

    def want(name: str) -> bool:
        return only is None or name in only

    traj_kw = dict(trajectories=trajectories, lengths=lengths, max_trajectories=max_trajectories)
    reference = p["reference"]
    if len(pts):
        for name, dims in (("fixed_points", 2), ("fixed_points_3d", 3)):
            if (dims == 3 and pts.shape[1] < 3) or not want(name):
                continue
            out[name] = plot_fixed_points(
                pts, color=(pts @ (w[-1] - w[0])) if binary else None,
                color_label="readout W·h*, logit difference without bias", status=p["status"],
                stability=p["stability"], band=p["band"], dims=dims, labels=labels,
                class_names=class_names, h0=h0, reference=reference, basis=basis, **traj_kw,
            )  # fmt: skip
        if want("eigenvalues"):
            out["eigenvalues"] = plot_eigenvalues(p["eigenvalues"], stability=p["stability"],
                                                  band=p["band"])  # fmt: skip
        if want("time_constants"):
            out["time_constants"] = plot_time_constants(
                p["eigenvalues"], document_length=p["document_length"], band=p["band"]
            )
    if len(pts) >= 2 and want("readout_geometry"):
        out["readout_geometry"] = plot_readout_geometry(
            pts, p["right_vectors"], w, tangent_alignment=p["tangent_alignment"],
            class_names=class_names, basis=basis, reference=reference,
            trajectories=None if trajectories is None else np.asarray(trajectories)[
                :max_trajectories], lengths=lengths,
        )  # fmt: skip
    names = list(class_names) if class_names is not None else None
    directions = (
        (f"towards {names[0]}", f"towards {names[-1]}") if binary and names else
        ("lowers the evidence", "raises the evidence")
    )  # fmt: skip
    if want("word_effects"):
        out["word_effects"] = plot_word_effects(p["words"], p["mode_effects"],
                                                counts=p["counts"],
                                                directions=directions)  # fmt: skip
    eff, bow = p["logit_effects"], p["bow_weights"]
    if binary:  # centred binary rows are exact opposites: one column says it all
        eff, bow = eff[:, -1], bow[:, -1]
    if want("effect_vs_bow"):
        out["effect_vs_bow"] = plot_effect_vs_bow(
            eff, bow, counts=p["counts"], words=p["words"], class_names=class_names,
            ylabel=f"logit change, linearised at {p['effects_at']}",
        )  # fmt: skip
    if want("explained_variance"):
        out["explained_variance"] = plot_explained_variance(
            p["state_ratio"], p["fixed_point_ratio"], p["predicted_ratio"],
            threshold=p["threshold"],
        )  # fmt: skip
    c = p["num_classes"]
    if c in (3, 4) and not p["multilabel"] and len(pts) >= c and want("simplex"):
        out["simplex"] = plot_simplex(pts, w, class_names=class_names, reference=reference,
                                      basis=basis if basis is not None and
                                      len(basis[1]) >= c - 1 else None)  # fmt: skip
    if want("linearized_accuracy"):
        out["linearized_accuracy"] = _accuracy_figure(
            p["accuracy"], p["chance"] if chance is None else chance,
            chance_label or ("chance, 1/C" if chance is None else "chance"),
        )  # fmt: skip
    ctx = p["contextual"]
    if ctx is not None and want("modifier_gains"):
        out["modifier_gains"] = plot_modifier_gains(ctx["names"], ctx["gain"], reach=ctx["reach"])
    if ctx is not None and len(ctx["subspace_names"]) and want("modifier_subspace"):
        out["modifier_subspace"] = plot_modifier_subspace(
            ctx["subspace_names"], ctx["subspace_coords"], ctx["subspace_strength"],
            explained=ctx["subspace_explained"],
        )  # fmt: skip
    if p["models"] is not None and want("model_accuracy"):
        out["model_accuracy"] = plot_model_accuracy(
            p["models"], chance=p["chance"] if chance is None else chance
        )
    return out
