"""Figures of an analysis: matplotlib ``Figure`` objects, never a window.

Every ``plot_*`` function takes plain arrays (the parts of an ``rnndyn.Analysis``:
fixed points, eigenvalues, readout, word effects, spectra, accuracies) and returns a
``matplotlib.figure.Figure`` built without ``pyplot``, so nothing is shown and the
user's backend is left alone; save one with ``fig.savefig("name.png")``.
``figures(analysis, ...)`` draws them all from an ``Analysis`` (``parts`` is the one
place that reads its fields).

Colours are the Okabe–Ito palette (distinguishable with the common colour-vision
deficiencies); continuous quantities use a blue–grey–vermillion diverging map.
Needs the ``plot`` extra (``pip install "rnndyn[plot]"``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

try:
    from matplotlib.colors import LinearSegmentedColormap
    from matplotlib.figure import Figure
    from matplotlib.patches import Circle
except ImportError as err:  # pragma: no cover - depends on the environment
    raise ImportError("rnndyn.plots needs matplotlib: pip install 'rnndyn[plot]'") from err

__all__ = [
    "OKABE_ITO",
    "DIVERGING",
    "figures",
    "parts",
    "pca_basis",
    "plot_effect_vs_bow",
    "plot_eigenvalues",
    "plot_explained_variance",
    "plot_fixed_points",
    "plot_linearized_accuracy",
    "plot_readout_geometry",
    "plot_simplex",
    "plot_time_constants",
    "plot_word_effects",
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


# Readout arrows avoid green, the colour of the eigenvector segments.
_READOUT_COLOURS = (OKABE_ITO[1], OKABE_ITO[0], OKABE_ITO[3], OKABE_ITO[4], OKABE_ITO[5])


def _figure(width: float = 5.0, height: float = 4.0) -> Figure:
    fig = Figure(figsize=(width, height), dpi=110, layout="constrained")
    return fig


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


def _axes(fig: Figure, dims: int, position: int = 111):
    if dims == 3:
        return fig.add_subplot(position, projection="3d")
    return fig.add_subplot(position)


def _scatter(ax, xy: np.ndarray, **kw):
    if xy.shape[1] == 3:
        return ax.scatter(xy[:, 0], xy[:, 1], xy[:, 2], **kw)
    return ax.scatter(xy[:, 0], xy[:, 1], **kw)


def _plot(ax, xy: np.ndarray, *args, **kw):
    if xy.shape[1] == 3:
        return ax.plot(xy[:, 0], xy[:, 1], xy[:, 2], *args, **kw)
    return ax.plot(xy[:, 0], xy[:, 1], *args, **kw)


def _label_pcs(ax, dims: int, ratio: np.ndarray) -> None:
    names = [f"PC{i + 1} ({100 * ratio[i]:.0f}% var.)" for i in range(dims)]
    ax.set_xlabel(names[0])
    ax.set_ylabel(names[1])
    if dims == 3:
        ax.set_zlabel(names[2])


def plot_fixed_points(
    points: Any,
    *,
    color: Any = None,
    color_label: str = "readout (logit difference)",
    status: Any = None,
    stability: Any = None,
    trajectories: Any = None,
    lengths: Any = None,
    labels: Any = None,
    class_names: Sequence[str] | None = None,
    dims: int = 2,
    basis: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
    max_trajectories: int = 40,
    title: str | None = None,
) -> Figure:
    """Slow points and sample trajectories in the top principal components.

    Args:
      points: ``(K, S)`` slow points (or fixed points).
      color: optional ``(K,)`` values colouring the points (e.g. the readout's logit
        difference at each point), drawn with a diverging map and a colour bar.
      color_label: the colour bar's label.
      status: optional ``(K,)`` ``rnndyn.Status`` codes: certified roots (``ROOT``,
        ``CONTINUUM``) are drawn large with a black edge (``gid="roots"``), other slow
        points small (``gid="slow_points"``). Without it every point is drawn large.
      stability: optional ``(K,)`` codes of ``rnndyn.analysis.spectra`` (0 stable, 1
        marginal, 2 unstable): unstable points get a red cross (``gid="unstable"``).
      trajectories: optional ``(B, T, S)`` hidden-state trajectories of documents.
      lengths: ``(B,)`` real tokens per trajectory (default: all ``T``).
      labels: ``(B,)`` class ids colouring the trajectories (default: one colour).
      class_names: names of the classes, for the legend.
      dims: 2 or 3 principal components.
      basis: ``(mean, directions (dims, S), explained_ratio)`` to project on (default:
        PCA of the trajectories' states if given, else of the points).
      max_trajectories: draw at most this many trajectories (the first ones).
      title: optional axes title (default: the counts drawn).

    Returns:
      A ``Figure`` with one axes: the points (scatter collections ``gid="roots"`` and
      ``gid="slow_points"``) and one line per trajectory (``gid="trajectory"``).
    """
    _check_dims(dims)
    points = _array("points", points, 2, "(K, S) points").astype(np.float64)
    k = len(points)
    roots = np.ones(k, bool)
    if status is not None:
        status = np.asarray(status)
        if status.shape != (k,):
            raise ValueError(f"status must be ({k},) codes, got shape {status.shape}")
        roots = np.isin(status, [0, 1])  # Status.ROOT, Status.CONTINUUM
    trajs, lens = None, None
    if trajectories is not None:
        trajs = _array("trajectories", trajectories, 3, "(B, T, S) state trajectories")
        if trajs.shape[2] != points.shape[1]:
            raise ValueError(
                f"trajectories have state size {trajs.shape[2]}, points {points.shape[1]}; "
                "expected the same S"
            )
        trajs = trajs[:max_trajectories].astype(np.float64)
        lens = (
            np.full(len(trajs), trajs.shape[1])
            if lengths is None
            else np.asarray(lengths)[: len(trajs)]
        )
    if basis is None:
        if trajs is not None:
            visited = np.concatenate([t[:n] for t, n in zip(trajs, lens, strict=True)])
            basis = pca_basis(visited, dims)
        else:
            basis = pca_basis(points, dims)
    mean, directions, ratio = basis
    fig = _figure(5.6 if color is not None else 5.0, 4.4)
    ax = _axes(fig, dims)
    if trajs is not None:
        labels_ = None if labels is None else np.asarray(labels)[: len(trajs)]
        seen: set[int] = set()
        for i, (t, n) in enumerate(zip(trajs, lens, strict=True)):
            xy = (t[:n] - mean) @ directions.T
            c = 0 if labels_ is None or labels_.ndim != 1 else int(labels_[i])
            name = None
            if labels_ is not None and labels_.ndim == 1 and c not in seen:
                seen.add(c)
                name = class_names[c] if class_names is not None else f"class {c}"
                name = f"trajectory ({name})"
            (line,) = _plot(ax, xy, color=_color(c + 2), lw=0.6, alpha=0.35, label=name)
            line.set_gid("trajectory")
            _scatter(ax, xy[-1:], color=_color(c + 2), s=8, marker="x", alpha=0.8)
    xy = (points - mean) @ directions.T
    kw: dict[str, Any] = {"color": "0.3"}
    if color is not None:
        c = np.asarray(color, np.float64)
        if c.shape != (k,):
            raise ValueError(f"color must be ({k},) values, got shape {c.shape}")
        lim = float(np.nanmax(np.abs(c))) if k else 1.0
        kw = {"cmap": DIVERGING, "vmin": -(lim or 1.0), "vmax": lim or 1.0}
    mappable = None
    for gid, mask, size, label in (
        ("slow_points", ~roots, 12, "slow points (q < tol)"),
        ("roots", roots, 28, "certified roots" if status is not None else "fixed points"),
    ):
        extra = dict(kw, c=c[mask]) if color is not None else kw
        sc = _scatter(ax, xy[mask], s=size, edgecolors="k" if gid == "roots" else "0.25",
                      linewidths=0.6 if gid == "roots" else 0.25, label=label if mask.any()
                      else None, zorder=3 if gid == "roots" else 2.5, **extra)  # fmt: skip
        sc.set_gid(gid)
        mappable = sc if mask.any() or mappable is None else mappable
    if stability is not None:
        unstable = np.asarray(stability) == 2
        if unstable.any():
            sc = _scatter(ax, xy[unstable], marker="x", color="#D55E00", s=30, linewidths=1.0,
                          label="unstable (|λ1| > 1)", zorder=4)  # fmt: skip
            sc.set_gid("unstable")
    if color is not None:
        fig.colorbar(mappable, ax=ax, label=color_label, shrink=0.8)
    _label_pcs(ax, dims, ratio)
    if title is None:
        n_roots = int(roots.sum())
        title = (
            f"{k} slow points ({n_roots} certified roots)"
            if status is not None
            else f"{k} fixed points"
        )
        if trajs is not None:
            title += " and trajectories"
    ax.set_title(title)
    ax.legend(loc="best", fontsize=7, frameon=False)
    return fig


def plot_eigenvalues(eigenvalues: Any, *, title: str | None = None) -> Figure:
    """Eigenvalue spectra of ``J_rec`` at all points, overlaid, with the unit circle.

    Args:
      eigenvalues: ``(K, S)`` complex eigenvalues (one row per fixed point) or ``(S,)``.
      title: optional axes title.

    Returns:
      A ``Figure``: one scatter of all ``K·S`` eigenvalues (``gid="eigenvalues"``), the
      top eigenvalue of each point highlighted (``gid="top_eigenvalues"``), and the unit
      circle (a patch with ``gid="unit_circle"``).
    """
    lam = _array("eigenvalues", eigenvalues, (1, 2), "(K, S) or (S,) eigenvalues")
    lam = np.atleast_2d(lam).astype(np.complex128)
    order = np.argsort(-np.abs(lam), axis=1)
    top = np.take_along_axis(lam, order[:, :1], axis=1).ravel()
    fig = _figure(4.6, 4.4)
    ax = fig.add_subplot(111)
    circle = Circle((0, 0), 1.0, fill=False, color="0.4", lw=1.0, ls="--", label="|λ| = 1")
    circle.set_gid("unit_circle")
    ax.add_patch(circle)
    allv = lam.ravel()
    sc = ax.scatter(allv.real, allv.imag, s=6, color=_color(0), alpha=0.35, label="all modes")
    sc.set_gid("eigenvalues")
    st = ax.scatter(top.real, top.imag, s=14, color=_color(1), label="top mode per point")
    st.set_gid("top_eigenvalues")
    r = max(1.1, float(np.abs(allv).max()) * 1.05)
    ax.set_xlim(-r, r)
    ax.set_ylim(-r, r)
    ax.set_aspect("equal")
    ax.axhline(0, color="0.85", lw=0.5, zorder=0)
    ax.axvline(0, color="0.85", lw=0.5, zorder=0)
    ax.set_xlabel("Re λ")
    ax.set_ylabel("Im λ")
    ax.set_title(title or f"J_rec spectra at {len(lam)} fixed points")
    ax.legend(loc="lower left", fontsize=7, frameon=False)
    return fig


def _time_constants(eigenvalues: np.ndarray) -> np.ndarray:
    mod = np.abs(eigenvalues)
    with np.errstate(divide="ignore"):
        tau = 1.0 / np.abs(np.log(np.maximum(mod, 1e-300)))
    return tau


def plot_time_constants(
    eigenvalues: Any, *, max_modes: int = 20, title: str | None = None
) -> Figure:
    """Time constants ``τ = 1 / |log|λ||`` (steps) per mode, sorted by ``|λ|``.

    Args:
      eigenvalues: ``(K, S)`` complex eigenvalues (one row per point) or ``(S,)``.
      max_modes: show the slowest this many modes.
      title: optional axes title.

    Returns:
      A ``Figure`` (log-scaled τ): one faint line per point (``gid="point_tau"``) and
      the median over points (``gid="median_tau"``). Modes with ``|λ| = 1`` exactly
      (τ infinite) are drawn at the top of the axes.
    """
    lam = np.atleast_2d(_array("eigenvalues", eigenvalues, (1, 2), "(K, S) eigenvalues"))
    mod = -np.sort(-np.abs(lam), axis=1)[:, :max_modes]
    tau = _time_constants(mod)
    finite = tau[np.isfinite(tau)]
    cap = float(finite.max()) * 2 if finite.size else 1e3
    tau = np.where(np.isfinite(tau), tau, cap)
    modes = np.arange(1, tau.shape[1] + 1)
    fig = _figure(5.0, 3.8)
    ax = fig.add_subplot(111)
    for row in tau:
        (ln,) = ax.plot(modes, row, color=_color(0), alpha=0.15, lw=0.6)
        ln.set_gid("point_tau")
    (med,) = ax.plot(
        modes, np.median(tau, 0), "o-", color=_color(1), lw=1.5, ms=4, label="median over points"
    )
    med.set_gid("median_tau")
    ax.set_yscale("log")
    ax.set_xlabel("mode (sorted by |λ|)")
    ax.set_ylabel("time constant τ (steps)")
    ax.set_xticks(modes if len(modes) <= 20 else modes[::2])
    ax.set_title(title or "time constants per mode")
    ax.legend(fontsize=7, frameon=False)
    return fig


def plot_readout_geometry(
    points: Any,
    right_vectors: Any,
    readout: Any,
    *,
    tangent_alignment: Any = None,
    class_names: Sequence[str] | None = None,
    basis: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
    title: str | None = None,
) -> Figure:
    """Readout and top right eigenvectors against the manifold of fixed points.

    Left: the points in their top two PCs with each point's top right eigenvector
    (``gid="right_eigenvectors"``, a quiver; sign-free, drawn as a short segment) and
    the readout rows as arrows from the points' centroid (``gid="readout"``). Right
    (if ``tangent_alignment`` is given): histogram of the alignment of each point's top
    right eigenvector with the local tangent of the points (1 = tangent).

    Args:
      points: ``(K, S)`` fixed points.
      right_vectors: ``(K, S)`` top right eigenvector per point (real part used).
      readout: ``(C, S)`` readout rows as directions in state space.
      tangent_alignment: optional ``(K,)`` values in ``[0, 1]``.
      class_names: names of the readout rows.
      basis: projection ``(mean, (2, S) directions, ratio)`` (default: PCA of points).
      title: optional title of the left axes.
    """
    points = _array("points", points, 2, "(K, S) fixed points").astype(np.float64)
    right = np.real(_array("right_vectors", right_vectors, 2, "(K, S) eigenvectors"))
    w = _array("readout", readout, 2, "(C, S) readout rows").astype(np.float64)
    k, s = points.shape
    if right.shape != (k, s):
        raise ValueError(f"right_vectors must be ({k}, {s}) like points, got {right.shape}")
    if w.shape[1] != s:
        raise ValueError(f"readout must be (C, {s}) rows in state space, got {w.shape}")
    mean, directions, ratio = basis if basis is not None else pca_basis(points, 2)
    xy = (points - mean) @ directions.T
    span = float(np.ptp(xy, axis=0).max()) or 1.0
    v = right @ directions.T
    v = v / np.maximum(np.linalg.norm(right, axis=1, keepdims=True), 1e-300)
    fig = _figure(8.8 if tangent_alignment is not None else 5.0, 4.0)
    ax = fig.add_subplot(121 if tangent_alignment is not None else 111)
    ax.scatter(xy[:, 0], xy[:, 1], s=14, color="0.2", label="fixed points", zorder=2)
    scale = 0.08 * span
    q = ax.quiver(
        xy[:, 0] - scale * v[:, 0],
        xy[:, 1] - scale * v[:, 1],
        2 * scale * v[:, 0],
        2 * scale * v[:, 1],
        angles="xy",
        scale_units="xy",
        scale=1,
        color=_color(2),
        width=0.004,
        headwidth=0,
        headlength=0,
        headaxislength=0,
        label="top right eigenvector",
    )
    q.set_gid("right_eigenvectors")
    centre = xy.mean(0)
    wp = w @ directions.T
    wn = np.linalg.norm(w, axis=1, keepdims=True)
    wp = wp / np.maximum(wn, 1e-300) * 0.4 * span
    rows = range(len(w)) if len(w) != 2 else [1]  # binary: the rows are opposite
    for i, c in enumerate(rows):
        name = class_names[c] if class_names is not None else f"class {c}"
        colour = _READOUT_COLOURS[i % len(_READOUT_COLOURS)]
        arrow = ax.annotate(
            "",
            xy=centre + wp[c],
            xytext=centre,
            arrowprops=dict(arrowstyle="-|>", color=colour, lw=1.8),
        )
        arrow.set_gid("readout")
        ax.plot([], [], color=colour, lw=1.8, label=f"readout ({name})")
    ax.set_xlabel(f"PC1 ({100 * ratio[0]:.0f}% var.)")
    ax.set_ylabel(f"PC2 ({100 * ratio[1]:.0f}% var.)")
    ax.set_aspect("equal", adjustable="datalim")
    ax.set_title(title or "readout and top right eigenvectors")
    ax.legend(fontsize=7, frameon=False, loc="best")
    if tangent_alignment is not None:
        t = np.asarray(tangent_alignment, np.float64)
        ax2 = fig.add_subplot(122)
        ax2.hist(t[np.isfinite(t)], bins=np.linspace(0, 1, 21), color=_color(2))
        ax2.set_xlabel("|cos| of top right eigenvector with local tangent")
        ax2.set_ylabel("fixed points")
        ax2.set_title(f"median {np.nanmedian(t):.3f}")
    return fig


def plot_word_effects(
    words: Sequence[str],
    effects: Any,
    *,
    top: int = 10,
    counts: Any = None,
    xlabel: str = "effect on the integrated evidence (l₁ · J_inp · x_w)",
    title: str | None = None,
) -> Figure:
    """Bar chart of the ``top`` most positive and ``top`` most negative word effects.

    Args:
      words: ``(V,)`` vocabulary.
      effects: ``(V,)`` one number per word (e.g. the projection on the slow mode).
      top: bars per sign.
      counts: optional ``(V,)`` occurrences; words that never occur are left out.
      xlabel: the x-axis label.
      title: optional axes title.

    Returns:
      A ``Figure`` with one horizontal bar per shown word (``gid="word_bar"``), largest
      effect on top; positive bars vermillion, negative blue.
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
    fig = _figure(5.0, max(2.5, 0.22 * len(shown) + 1.2))
    ax = fig.add_subplot(111)
    y = np.arange(len(shown))[::-1]
    bars = ax.barh(y, e[shown], color=[_color(1) if e[i] > 0 else _color(0) for i in shown])
    for b in bars:
        b.set_gid("word_bar")
    ax.set_yticks(y, [str(words[i]) for i in shown])
    ax.axvline(0, color="0.3", lw=0.8)
    ax.set_xlabel(xlabel)
    ax.set_title(title or "words that push the state along the slow mode")
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
    title: str | None = None,
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
      xlabel, ylabel, title: texts.

    Returns:
      A ``Figure``; its title holds ``r = ...`` computed over the pooled entries drawn
      (``gid="words"`` on the scatter).
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
    fig = _figure(4.8, 4.2)
    ax = fig.add_subplot(111)
    size = 10.0 if cnt is None else 6 + 40 * np.sqrt(cnt[keep] / cnt[keep].max())
    xs, ys = b2[keep], e2[keep]
    for c in range(e2.shape[1]):
        sc = ax.scatter(
            xs[:, c],
            ys[:, c],
            s=size,
            color=_color(c if e2.shape[1] > 1 else 0),
            alpha=0.6,
            edgecolors="none",
            label=f"class {c}" if e2.shape[1] > 2 else None,
        )
        sc.set_gid("words")
    x, y = xs.ravel(), ys.ravel()
    r = float(np.corrcoef(x, y)[0, 1]) if len(x) > 1 and x.std() > 0 and y.std() > 0 else np.nan
    if len(x) > 1 and x.std() > 0:
        slope, icpt = np.polyfit(x, y, 1)
        grid = np.linspace(x.min(), x.max(), 2)
        ax.plot(grid, slope * grid + icpt, color="0.3", lw=0.8, ls="--")
    if words is not None and annotate > 0:
        kept = np.flatnonzero(keep)
        col = e2.shape[1] - 1
        for j in np.argsort(-np.abs(ys[:, col]))[:annotate]:
            ax.annotate(
                str(words[kept[j]]),
                (xs[j, col], ys[j, col]),
                fontsize=7,
                xytext=(3, 3),
                textcoords="offset points",
            )
    ax.axhline(0, color="0.85", lw=0.5, zorder=0)
    ax.axvline(0, color="0.85", lw=0.5, zorder=0)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title or f"word effects vs bag-of-words: r = {r:.3f}")
    if e2.shape[1] > 2:
        ax.legend(fontsize=7, frameon=False)
    return fig


def plot_explained_variance(
    state_ratio: Any,
    fixed_point_ratio: Any = None,
    predicted_ratio: Any = None,
    *,
    max_components: int = 10,
    threshold: float | None = 0.9,
    title: str | None = None,
) -> Figure:
    """Explained variance per principal component: visited states, fixed points, and
    the word-count prediction, side by side; cumulative on the right.

    Args:
      state_ratio: ``(n,)`` explained-variance ratios of the visited hidden states.
      fixed_point_ratio: optional ``(n,)`` ratios of the fixed points.
      predicted_ratio: optional ``(n,)`` ratios of the word-count evidence vectors.
      max_components: show the first this many components.
      threshold: draw this cumulative fraction (the dimension rule) on the right.
      title: optional title of the left axes.

    Returns:
      A ``Figure`` with two axes; the left holds one bar per component and given series
      (``gid`` ``"states"``, ``"fixed_points"``, ``"prediction"``).
    """
    series = [("states", "visited states", state_ratio)]
    if fixed_point_ratio is not None:
        series.append(("fixed_points", "fixed points", fixed_point_ratio))
    if predicted_ratio is not None:
        series.append(("prediction", "word-count prediction", predicted_ratio))
    fig = _figure(8.4, 3.6)
    ax, ax2 = fig.add_subplot(121), fig.add_subplot(122)
    width = 0.8 / len(series)
    for i, (gid, name, ratio) in enumerate(series):
        r = _array(gid, ratio, 1, "(n,) explained-variance ratios").astype(np.float64)
        r = r[:max_components]
        x = np.arange(1, len(r) + 1)
        bars = ax.bar(
            x + (i - (len(series) - 1) / 2) * width, r, width, color=_color(i), label=name
        )
        for patch in bars:
            patch.set_gid(gid)
        ax2.plot(x, np.cumsum(r), "o-", color=_color(i), ms=3, label=name)
    n = max(len(np.asarray(s[2])[:max_components]) for s in series)
    ax.set_xticks(np.arange(1, n + 1))
    ax.set_xlabel("principal component")
    ax.set_ylabel("fraction of variance")
    ax.set_title(title or "dimension: measured and predicted")
    ax.legend(fontsize=7, frameon=False)
    if threshold is not None:
        ax2.axhline(threshold, color="0.4", ls="--", lw=0.8, label=f"{threshold:.0%}")
    ax2.set_xticks(np.arange(1, n + 1))
    ax2.set_ylim(0, 1.05)
    ax2.set_xlabel("number of components")
    ax2.set_ylabel("cumulative fraction of variance")
    ax2.legend(fontsize=7, frameon=False, loc="lower right")
    return fig


def plot_simplex(
    points: Any,
    readout: Any,
    *,
    class_names: Sequence[str] | None = None,
    basis: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
    title: str | None = None,
) -> Figure:
    """The fixed points of a C-class network (C = 3 or 4) in their top C − 1 PCs,
    coloured by the class the readout gives them: a triangle for 3 classes, a
    tetrahedron for 4.

    Args:
      points: ``(K, S)`` fixed points.
      readout: ``(C, S)`` readout rows in state space (C = 3 or 4).
      class_names: names of the classes.
      basis: projection ``(mean, (C − 1, S) directions, ratio)`` (default: PCA).
      title: optional axes title.

    Returns:
      A ``Figure``: one scatter per class present (``gid="class_points"``), the convex
      hull of the projected points in 2-D (``gid="hull"``), and the readout rows
      projected as arrows from the centroid.
    """
    points = _array("points", points, 2, "(K, S) fixed points").astype(np.float64)
    w = _array("readout", readout, 2, "(C, S) readout rows").astype(np.float64)
    c = w.shape[0]
    if c not in (3, 4):
        raise ValueError(f"readout must have 3 or 4 rows (classes) for a simplex, got {c}")
    if w.shape[1] != points.shape[1]:
        raise ValueError(f"readout rows have size {w.shape[1]}, points {points.shape[1]}")
    dims = c - 1
    mean, directions, ratio = basis if basis is not None else pca_basis(points, dims)
    xy = (points - mean) @ directions.T
    cls = np.argmax(points @ w.T, axis=1)
    fig = _figure(5.0, 4.4)
    ax = _axes(fig, dims)
    for k in range(c):
        sel = cls == k
        if not np.any(sel):
            continue
        name = class_names[k] if class_names is not None else f"class {k}"
        sc = _scatter(ax, xy[sel], color=_color(k), s=16, label=f"readout says {name}")
        sc.set_gid("class_points")
    if dims == 2 and len(xy) >= 3:
        from scipy.spatial import ConvexHull, QhullError

        try:
            hull = ConvexHull(xy)
            loop = np.append(hull.vertices, hull.vertices[0])
            (ln,) = ax.plot(xy[loop, 0], xy[loop, 1], color="0.5", lw=0.8, ls=":")
            ln.set_gid("hull")
        except QhullError:  # collinear points: no hull to draw
            pass
    span = float(np.ptp(xy, axis=0).max()) or 1.0
    wp = w @ directions.T
    wp = wp / np.maximum(np.linalg.norm(w, axis=1, keepdims=True), 1e-300) * 0.3 * span
    centre = xy.mean(0)
    for k in range(c):
        seg = np.stack([centre, centre + wp[k]])
        _plot(ax, seg, color=_color(k), lw=2.0)
    _label_pcs(ax, dims, ratio)
    ax.set_title(title or f"fixed points, {c} classes (lines: readout rows)")
    ax.legend(fontsize=7, frameon=False)
    return fig


def plot_linearized_accuracy(
    full: float,
    initial: float,
    nearest: float | None = None,
    trajectory: float | None = None,
    *,
    by_length: Mapping[str, Any] | None = None,
    title: str | None = None,
) -> Figure:
    """Accuracy of the full network next to its linearisations.

    Args:
      full, initial, nearest, trajectory: overall accuracies (full network; linearised
        around one reference fixed point near the initial state; piecewise around the
        nearest point; along the trajectory from the initial state under ``x*``).
      by_length: optional ``{"length": (B,) bin centres, "full": (B,), "initial": (B,),
        "nearest": (B,), "trajectory": (B,)}`` accuracies per document-length bin (any of
        the models may be missing); then a line plot.
      title: optional title.

    Returns:
      A ``Figure``: bars (``gid="accuracy_bars"``) or, with ``by_length``, one line per
      model (``gid="accuracy_by_length"``).
    """
    fig = _figure(4.6, 3.6)
    ax = fig.add_subplot(111)
    names = {
        "full": "full network",
        "initial": "linearised (reference point)",
        "nearest": "linearised (nearest point)",
        "trajectory": "linearised (trajectory)",
    }
    if by_length is not None:
        x = np.asarray(by_length["length"], np.float64)
        for i, key in enumerate(("full", "initial", "nearest", "trajectory")):
            if key in by_length and by_length[key] is not None:
                (ln,) = ax.plot(
                    x, np.asarray(by_length[key]), "o-", color=_color(i), ms=3, label=names[key]
                )
                ln.set_gid("accuracy_by_length")
        ax.set_xlabel("document length (tokens)")
        ax.legend(fontsize=7, frameon=False)
    else:
        vals = [("full", full), ("initial", initial), ("nearest", nearest)]
        vals += [("trajectory", trajectory)]
        vals = [(k, v) for k, v in vals if v is not None]
        bars = ax.bar(
            range(len(vals)), [v for _, v in vals], color=[_color(i) for i in range(len(vals))]
        )
        for patch in bars:
            patch.set_gid("accuracy_bars")
        for i, (_, v) in enumerate(vals):
            ax.text(i, v + 0.01, f"{v:.3f}", ha="center", fontsize=8)
        ax.set_xticks(range(len(vals)), [names[k].replace(" (", "\n(") for k, _ in vals])
    ax.set_ylim(0, 1.08)
    ax.set_ylabel("accuracy")
    ax.set_title(title or "full vs linearised dynamics")
    return fig


# ----------------------------------------------------------------- from an Analysis


def parts(analysis: Any, *, readout_state: Any = None) -> dict[str, Any]:
    """The arrays the figures need, read from an ``rnndyn.Analysis``.

    This is the only function that knows the record's field names.

    Args:
      analysis: an ``rnndyn.Analysis``.
      readout_state: optional ``(C, S)`` readout rows in state space
        (``rnndyn.analysis.readout_in_state_space``). Default: the record's ``(C, N)``
        rows, zero-padded to ``S`` (exact for every built-in cell: the LSTM's output is
        the first ``N`` coordinates of its state ``[h, c]``).

    Returns:
      A dict with ``points (K, S)`` (the analysed slow points), ``status (K,)``,
      ``stability (K,)``, ``eigenvalues (K, S)``, ``right_vectors (K, S)``,
      ``readout (C, S)``, ``words``, ``counts``, ``mode_effects (V,)`` (or the trajectory
      effect without a reference point), ``logit_effects (V, C)``, ``bow_weights (V, C)``,
      ``state_ratio``, ``fixed_point_ratio``, ``predicted_ratio``, ``threshold``,
      ``tangent_alignment (K,)``, ``accuracy`` (``full``, ``initial``, ``nearest``,
      optional ``by_length``), ``num_classes``, ``multilabel``, ``reference`` (index or
      ``None``).
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
    return {
        "points": points,
        "status": np.asarray(kept.status),
        "stability": np.asarray(spec.stability),
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
        "num_classes": int(model.get("num_classes", np.asarray(geo.readout).shape[0])),
        "multilabel": bool(model.get("multilabel", False)),
        "reference": None if analysis.reference is None else int(analysis.reference.index),
    }


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


def _optional_float(x: Any) -> float | None:
    return None if x is None else float(x)


def figures(
    analysis: Any,
    *,
    trajectories: Any = None,
    lengths: Any = None,
    labels: Any = None,
    class_names: Sequence[str] | None = None,
    readout_state: Any = None,
) -> dict[str, Figure]:
    """Every figure of an ``Analysis``, by file-friendly name.

    Args:
      analysis: an ``rnndyn.Analysis``.
      trajectories, lengths, labels: optional ``(B, T, S)`` state trajectories of a few
        documents, their lengths and labels (``rnndyn.report.trajectories``).
      class_names: names of the classes.
      readout_state: see ``parts``.

    Returns:
      ``{"word_effects": ..., "effect_vs_bow": ..., "explained_variance": ...,
      "linearized_accuracy": ...}``, with at least one slow point also
      ``"fixed_points"``, ``"fixed_points_3d"``, ``"eigenvalues"`` and
      ``"time_constants"``; with two or more ``"readout_geometry"``; and ``"simplex"``
      for 3 or 4 exclusive classes.
    """
    p = parts(analysis, readout_state=readout_state)
    pts, w = p["points"], p["readout"]
    binary = p["num_classes"] == 2 and not p["multilabel"]
    out: dict[str, Figure] = {}
    if len(pts):
        for name, dims in (("fixed_points", 2), ("fixed_points_3d", 3)):
            if dims == 3 and pts.shape[1] < 3:
                continue
            out[name] = plot_fixed_points(
                pts, color=(pts @ (w[-1] - w[0])) if binary else None,
                color_label="readout W·h* (logit difference, no bias)", status=p["status"],
                stability=p["stability"], dims=dims, trajectories=trajectories,
                lengths=lengths, labels=labels, class_names=class_names,
            )  # fmt: skip
        out["eigenvalues"] = plot_eigenvalues(p["eigenvalues"])
        out["time_constants"] = plot_time_constants(p["eigenvalues"])
    if len(pts) >= 2:
        out["readout_geometry"] = plot_readout_geometry(
            pts, p["right_vectors"], w, tangent_alignment=p["tangent_alignment"],
            class_names=class_names,
        )  # fmt: skip
    out["word_effects"] = plot_word_effects(p["words"], p["mode_effects"], counts=p["counts"])
    eff, bow = p["logit_effects"], p["bow_weights"]
    if binary:  # centred binary rows are exact opposites: one column says it all
        eff, bow = eff[:, -1], bow[:, -1]
    out["effect_vs_bow"] = plot_effect_vs_bow(
        eff, bow, counts=p["counts"], words=p["words"],
        ylabel=f"logit change, linearised at {p['effects_at']}",
    )  # fmt: skip
    out["explained_variance"] = plot_explained_variance(
        p["state_ratio"], p["fixed_point_ratio"], p["predicted_ratio"], threshold=p["threshold"]
    )
    if p["num_classes"] in (3, 4) and not p["multilabel"] and len(pts) >= p["num_classes"]:
        out["simplex"] = plot_simplex(pts, w, class_names=class_names)
    acc = p["accuracy"]
    out["linearized_accuracy"] = plot_linearized_accuracy(
        acc["full"], acc["initial"], acc["nearest"], acc["trajectory"],
        by_length=acc["by_length"],
    )  # fmt: skip
    return out
