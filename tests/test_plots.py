"""rnndyn.plots: each function returns a Figure holding what it promises.

Tiny fake inputs with known content: the tests count the artists (points, bars, lines)
and check values drawn against numbers computed here independently. Every figure of
``figures`` is also rated by its own five criteria (tests/figure_criteria.py: title from
the data, a legend naming every mark, axes that show the data, its key reference marks
in place, no text under 8 pt) and must meet all five here.
"""

import io
import types

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")
from figure_criteria import by_gid, legend_text, min_font, rate  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.patches import Circle  # noqa: E402

from rnndyn import plots  # noqa: E402


def _by_gid(fig, gid, prefix=False):
    return by_gid(fig, gid, prefix)


def _line_points(k=7, s=5, seed=0):
    """Points on a line in R^s (plus tiny noise): PC1 carries everything."""
    rng = np.random.default_rng(seed)
    direction = rng.normal(size=s)
    direction /= np.linalg.norm(direction)
    t = np.linspace(-1, 1, k)
    return t[:, None] * direction + 1e-4 * rng.normal(size=(k, s)), direction, t


def test_pca_basis_recovers_the_line_direction():
    pts, direction, _ = _line_points(20, 6)
    mean, basis, ratio = plots.pca_basis(pts, 2)
    assert abs(abs(basis[0] @ direction) - 1) < 1e-6
    assert ratio[0] > 0.999
    np.testing.assert_allclose(mean, pts.mean(0))


@pytest.mark.parametrize("dims", [2, 3])
def test_fixed_points_plots_every_point_and_trajectory(dims):
    pts, direction, t = _line_points(9, 5)
    trajs = np.stack([np.outer(np.linspace(0, s, 6), direction) for s in (-1, 1, 0.5)])
    fig = plots.plot_fixed_points(
        pts,
        color=t,
        trajectories=trajs,
        lengths=[6, 4, 6],
        labels=[0, 1, 1],
        class_names=("neg", "pos"),
        dims=dims,
    )
    assert isinstance(fig, Figure)
    (sc,) = _by_gid(fig, "roots")  # without statuses every point is drawn as a root
    assert len(sc.get_offsets()) == 9
    lines = _by_gid(fig, "trajectory")
    assert len(lines) == 3
    # the second trajectory is cut at its length
    assert len(lines[1].get_data()[0] if dims == 2 else lines[1].get_data_3d()[0]) == 4
    if dims == 2:
        # points on a line through the PCA basis of the trajectories: PC2 ~ 0
        assert np.abs(sc.get_offsets()[:, 1]).max() < 1e-3
        # the projection along PC1 preserves the spacing of t (up to sign)
        x = np.asarray(sc.get_offsets()[:, 0])
        assert abs(abs(np.corrcoef(x, t)[0, 1]) - 1) < 1e-8
    assert len(fig.axes) == 2  # axes + colour bar


def test_fixed_points_marks_roots_slow_points_and_stability_on_one_scale():
    """Roots large, slow points small; the marker's shape is the stability (stable o,
    marginal D, unstable X with a vermillion edge); every mark is in the legend."""
    pts, direction, t = _line_points(11, 4)
    status = np.where(np.arange(11) % 3 == 0, 0, 2)  # ROOT every third, else SLOW_POINT
    stability = np.where(np.arange(11) == 5, 2, np.where(np.arange(11) == 0, 0, 1))
    fig = plots.plot_fixed_points(pts, color=t, status=status, stability=stability, band=0.02)
    roots, slow = _by_gid(fig, "roots", True), _by_gid(fig, "slow_points", True)
    assert sum(len(c.get_offsets()) for c in roots) == 4
    assert sum(len(c.get_offsets()) for c in slow) == 7
    assert all(c.get_clim() == (-1.0, 1.0) for c in roots + slow)  # one colour scale
    (unstable,) = _by_gid(fig, "slow_points.unstable")
    (stable,) = _by_gid(fig, "roots.stable")  # point 0: a root, stable
    np.testing.assert_allclose(unstable.get_offsets(), (pts[[5]] - pts.mean(0)) @ plots.pca_basis(
        pts, 2)[1].T, atol=1e-12)  # fmt: skip
    assert len(stable.get_offsets()) == 1
    assert fig.axes[0].get_title() == "11 slow points (4 certified roots)"
    legend = legend_text(fig)
    for name in ("certified root", "slow point", "stable, |λ1| < 0.98", "marginal, |λ1| within "
                 "0.02 of 1", "unstable, |λ1| > 1.02"):  # fmt: skip
        assert name in legend, legend
    with pytest.raises(ValueError, match="status"):
        plots.plot_fixed_points(pts, status=[0, 1])
    with pytest.raises(ValueError, match="stability"):
        plots.plot_fixed_points(pts, stability=[0, 1])


def test_fixed_points_mark_h0_and_the_reference_point_where_they_are():
    pts, direction, t = _line_points(9, 5)
    h0 = 0.3 * direction
    trajs = np.stack([np.outer(np.linspace(0.1, s, 6), direction) for s in (-1, 1)])
    basis = plots.pca_basis(trajs.reshape(-1, 5), 2)
    fig = plots.plot_fixed_points(pts, trajectories=trajs, h0=h0, reference=4, basis=basis,
                                  labels=[0, 1], class_names=("neg", "pos"))  # fmt: skip
    project = lambda x: (x - basis[0]) @ basis[1].T  # noqa: E731
    (star,), (ring,) = _by_gid(fig, "h0"), _by_gid(fig, "reference")
    np.testing.assert_allclose(star.get_offsets()[0], project(h0), atol=1e-12)
    np.testing.assert_allclose(ring.get_offsets()[0], project(pts[4]), atol=1e-12)
    # each trajectory starts at h0
    for line in _by_gid(fig, "trajectory"):
        np.testing.assert_allclose(np.array(line.get_data())[:, 0], project(h0), atol=1e-12)
    legend = legend_text(fig)
    assert "h0" in legend and "reference point" in legend and "document, pos" in legend
    assert "end of a document" in legend


def test_pc_labels_give_small_fractions_more_digits():
    """A PC with 0.03% of the variance reads "0.03%", never "0%"."""
    rng = np.random.default_rng(0)
    pts = np.c_[rng.normal(size=50), 0.01 * rng.normal(size=50), np.zeros(50)]
    fig = plots.plot_fixed_points(pts)
    ratio = plots.pca_basis(pts, 2)[2][1]
    label = fig.axes[0].get_ylabel()
    assert label == f"PC2, {100 * ratio:.2g}% of variance" and not label.startswith("PC2, 0%")


def test_fixed_points_rejects_bad_shapes():
    with pytest.raises(ValueError, match="points"):
        plots.plot_fixed_points(np.zeros(3))
    with pytest.raises(ValueError, match="dims"):
        plots.plot_fixed_points(np.zeros((3, 3)), dims=4)
    with pytest.raises(ValueError, match="color"):
        plots.plot_fixed_points(np.eye(3), color=[1, 2])


def test_eigenvalues_with_unit_circle_and_a_zoom_on_one():
    """The inset zooms on λ = 1: every eigenvalue within 0.05 of 1 (here 1.017, which the
    whole circle hides) lies inside its limits."""
    lam = np.array([[0.99, 0.5 + 0.2j, 0.5 - 0.2j], [1.0, 0.3, -0.1], [1.017, 0.98 + 0.03j,
                    0.98 - 0.03j]])  # fmt: skip
    fig = plots.plot_eigenvalues(lam[:2])
    (circle,) = _by_gid(fig, "unit_circle")
    assert isinstance(circle, Circle) and circle.get_radius() == 1.0
    (allv,) = _by_gid(fig, "eigenvalues")
    assert len(allv.get_offsets()) == 6
    (top,) = _by_gid(fig, "top_eigenvalues")
    np.testing.assert_allclose(np.asarray(top.get_offsets())[:, 0], [0.99, 1.0])
    ax = fig.axes[0]
    assert ax.get_xlabel() == "Re λ" and ax.get_ylabel() == "Im λ"
    fig = plots.plot_eigenvalues(lam, stability=[1, 1, 1], band=0.02)
    (zoom,) = _by_gid(fig, "zoom")
    near = lam.ravel()[np.abs(lam.ravel() - 1) <= 0.05]
    assert len(near) == 5
    x0, x1 = zoom.get_xlim()
    y0, y1 = zoom.get_ylim()
    assert np.all((near.real > x0) & (near.real < x1) & (near.imag > y0) & (near.imag < y1))
    assert x1 - x0 <= 0.2  # a zoom, not the whole circle
    (marginal,) = _by_gid(fig, "top_eigenvalues.marginal")
    np.testing.assert_allclose(np.asarray(marginal.get_offsets())[:, 0], [0.99, 1.0, 1.017])


def test_time_constants_median_matches_formula():
    """The median line is 1/|log|λ|| per mode; the dashed line is the median document
    length; the per-point lines are in the legend."""
    lam = np.array([[0.9, 0.5], [0.99, 0.1], [0.95, -0.5]])
    fig = plots.plot_time_constants(lam, document_length=210, band=0.02)
    (med,) = _by_gid(fig, "median_tau")
    expected = np.median(1 / np.abs(np.log(np.abs(lam))), axis=0)
    np.testing.assert_allclose(med.get_ydata(), expected)
    assert len(_by_gid(fig, "point_tau")) == 3
    assert fig.axes[0].get_yscale() == "log"
    assert "steps" in fig.axes[0].get_ylabel()
    (doc,) = _by_gid(fig, "document_length")
    assert list(doc.get_ydata()) == [210, 210]
    y0, y1 = fig.axes[0].get_ylim()
    assert y0 < 210 < y1
    (slow,) = _by_gid(fig, "slow_threshold")
    np.testing.assert_allclose(slow.get_ydata()[0], 1 / abs(np.log(0.98)))
    legend = legend_text(fig)
    assert "each point" in legend and "median document, 210 tokens" in legend
    assert fig.axes[0].get_title() == f"τ1 median {expected[0]:,.3g} steps at 3 points"


def test_time_constants_marks_exact_unit_modulus_finite():
    fig = plots.plot_time_constants(np.array([[1.0, 0.5], [0.9, 0.5]]))
    (med,) = _by_gid(fig, "median_tau")
    assert np.all(np.isfinite(med.get_ydata()))


def test_readout_geometry_draws_each_eigenvector_and_readout():
    """The eigenvector segments lie along the line; the readout arrow starts on the
    manifold, at the reference point (not at the origin or the centroid)."""
    pts, direction, _ = _line_points(6, 4)
    right = np.tile(direction, (6, 1))
    readout = np.stack([-direction, direction])
    fig = plots.plot_readout_geometry(pts, right, readout, tangent_alignment=np.ones(6),
                                      reference=1)  # fmt: skip
    (q,) = _by_gid(fig, "right_eigenvectors")
    uv = np.stack([q.U, q.V], 1)
    assert len(uv) == 6
    # eigenvectors along the line: horizontal in the PC1/PC2 plane
    assert np.abs(uv[:, 1]).max() < 1e-3 * np.abs(uv[:, 0]).max()
    (arrow,) = _by_gid(fig, "readout")  # binary: one arrow
    mean, basis, _ = plots.pca_basis(pts, 2)
    np.testing.assert_allclose(arrow.xyann, (pts[1] - mean) @ basis.T, atol=1e-12)
    # along the line, towards the positive row, 0.4 of the span long
    head = np.asarray(arrow.xy) - np.asarray(arrow.xyann)
    assert abs(head[1]) < 1e-3 * abs(head[0])
    assert len(fig.axes) == 2
    x0, x1 = fig.axes[0].get_xlim()
    assert x0 <= arrow.xy[0] <= x1  # the arrow head is inside the axes
    # many points: at most max_vectors segments
    many, _, _ = _line_points(200, 4)
    fig = plots.plot_readout_geometry(many, np.tile(direction, (200, 1)), readout, max_vectors=30)
    (q,) = _by_gid(fig, "right_eigenvectors")
    assert len(q.U) == 30
    with pytest.raises(ValueError, match="right_vectors"):
        plots.plot_readout_geometry(pts, right[:3], readout)


def test_word_effects_bars_sorted_by_sign():
    words = ["a", "b", "c", "d", "e", "f"]
    effects = np.array([0.5, -1.0, 0.1, 2.0, -0.2, 0.3])
    fig = plots.plot_word_effects(words, effects, top=2, counts=[1, 1, 1, 1, 1, 0])
    bars = _by_gid(fig, "word_bar")
    assert [b.get_width() for b in bars] == [2.0, 0.5, -0.2, -1.0]
    ticks = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert ticks == ["d", "a", "e", "b"]  # f never occurs
    with pytest.raises(ValueError, match="words"):
        plots.plot_word_effects(words[:3], effects)


def test_effect_vs_bow_reports_pearson_r():
    rng = np.random.default_rng(1)
    bow = rng.normal(size=30)
    eff = 2 * bow + 0.5 * rng.normal(size=30)
    counts = np.ones(30)
    counts[:3] = 0
    fig = plots.plot_effect_vs_bow(eff, bow, counts=counts, words=[str(i) for i in range(30)])
    r = np.corrcoef(eff[3:], bow[3:])[0, 1]
    assert f"r = {r:.3f}" in fig.axes[0].get_title()
    (sc,) = _by_gid(fig, "words")
    assert len(sc.get_offsets()) == 27
    with pytest.raises(ValueError, match="same shape"):
        plots.plot_effect_vs_bow(eff, bow[:5])


def test_effect_vs_bow_pools_classes():
    eff = np.array([[1.0, -1.0, 0.0], [0.0, 2.0, -2.0], [0.5, 0.5, -1.0]])
    fig = plots.plot_effect_vs_bow(eff, 2 * eff)
    assert len(_by_gid(fig, "words")) == 3
    assert "r = 1.000" in fig.axes[0].get_title()


def test_explained_variance_bars_and_cumulative():
    fig = plots.plot_explained_variance([0.9, 0.1], [0.95, 0.05], [1.0, 0.0], threshold=0.9)
    assert len(_by_gid(fig, "states")) == 2
    assert len(_by_gid(fig, "fixed_points")) == 2
    assert [p.get_height() for p in _by_gid(fig, "prediction")] == [1.0, 0.0]
    cum = fig.axes[1].get_lines()[0].get_ydata()
    np.testing.assert_allclose(cum, [0.9, 1.0])


def _simplex_points(c, per=5, s=6, seed=0):
    """Points along the edges of a (c-1)-simplex embedded in R^s; readout rows = vertices."""
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.normal(size=(s, c)))
    vertices = (np.eye(c) - 1.0 / c) @ q.T  # centred simplex vertices in R^s
    pts = [
        vertices[i] * (1 - u) + vertices[j] * u
        for i in range(c)
        for j in range(i + 1, c)
        for u in np.linspace(0, 1, per)
    ]
    return np.array(pts), vertices


@pytest.mark.parametrize("c", [3, 4])
def test_simplex_colours_points_by_readout_class(c):
    pts, vertices = _simplex_points(c)
    fig = plots.plot_simplex(pts, vertices)
    scatters = _by_gid(fig, "class_points")
    assert len(scatters) == c
    assert sum(len(sc.get_offsets()) for sc in scatters) == len(pts)
    if c == 3:
        (hull,) = _by_gid(fig, "hull")
        assert len(hull.get_xdata()) == 4  # a triangle: 3 vertices, closed
    else:
        assert fig.axes[0].name == "3d"


def test_simplex_rejects_two_classes():
    with pytest.raises(ValueError, match="3 or 4"):
        plots.plot_simplex(np.eye(4), np.eye(4)[:2])


def test_linearized_accuracy_dots_chance_and_by_length():
    """Values in 0.8-0.95 fill the axis (not a 0-1 range); chance is a dashed line in
    the legend, drawn where it fits and named "below the axis" where it would squash."""
    fig = plots.plot_linearized_accuracy(0.95, 0.9, 0.93, chance=0.5)
    (dots,) = _by_gid(fig, "accuracy")
    np.testing.assert_allclose(np.asarray(dots.get_offsets())[:, 0], [0.95, 0.9, 0.93])
    (chance,) = _by_gid(fig, "chance")
    assert chance.get_xdata()[0] == 0.5 and "chance" in legend_text(fig)
    fig = plots.plot_linearized_accuracy(0.95, 0.85, 0.9)
    x0, x1 = fig.axes[0].get_xlim()
    assert 0.7 < x0 < 0.85 and 0.95 < x1 < 1.05
    assert fig.axes[0].get_title() == "network accuracy 0.950; linearised 0.850"
    fig = plots.plot_linearized_accuracy(
        0.95, 0.9, by_length={"length": [10, 20], "full": [1, 0.9], "initial": [0.9, 0.8]},
        chance=0.5,
    )  # fmt: skip
    lines = _by_gid(fig, "accuracy_by_length")
    assert len(lines) == 2
    assert list(lines[1].get_ydata()) == [0.9, 0.8]
    y0, _ = fig.axes[0].get_ylim()
    assert y0 > 0.5  # chance 0.5 would squash 0.8-1.0: it is named, not drawn in range
    assert "below the axis" in legend_text(fig)
    nan = plots.plot_linearized_accuracy(0.9, float("nan"), trajectory=0.8)
    assert len(_by_gid(nan, "accuracy")[0].get_offsets()) == 2  # a missing value left out


def test_explained_variance_cumulative_axis_shows_the_data():
    fig = plots.plot_explained_variance([0.93, 0.05, 0.02], threshold=0.9)
    y0, y1 = fig.axes[1].get_ylim()
    assert 0.8 < y0 < 0.9 and y1 >= 1.0  # not 0 to 1
    assert fig.axes[0].get_title() == "PCs to 90%: visited 1"


def _fake_analysis(c=2, k=8, s=4, v=6, context=False):
    """An object with the fields ``parts`` reads (the record's layout)."""
    if c == 2:
        pts, direction, _ = _line_points(k, s)
        readout = np.stack([-direction, direction])
    else:
        pts, readout = _simplex_points(c, per=3, s=s)
        k = len(pts)
    rng = np.random.default_rng(0)
    lam = np.concatenate([np.full((k, 1), 0.999), rng.uniform(0, 0.5, (k, s - 1))], 1)
    ns = types.SimpleNamespace
    # every point a certified root but the last, a slow point; the first unstable
    status = np.r_[np.zeros(k - 1, int), 2]
    stability = np.r_[2, np.ones(k - 1, int)]
    return ns(
        points=ns(kept=ns(points=pts, status=status)),
        spectra=ns(eigenvalues=lam.astype(complex), stability=stability, marginal_band=0.02,
                   slow_vectors=np.tile(readout[-1], (k, 1))),
        geometry=ns(
            readout=readout, state_dimension=ns(spectrum=np.array([0.9, 0.1])),
            fixed_point_dimension=ns(spectrum=np.array([0.99, 0.01])), threshold=0.9,
            tangent_alignment=np.ones(k),
        ),
        word_effects=ns(
            words=tuple(f"w{i}" for i in range(v)),
            mode_projections=rng.normal(size=(v, 1)),
            logit_effects=rng.normal(size=(v, c)),
            trajectory_effects=rng.normal(size=(v, c)), trajectory_length=40,
        ),
        baseline=ns(counts=np.ones(v), weights=rng.normal(size=(v, c)), accuracy=0.8),
        prediction=ns(explained_ratio=np.array([1.0])),
        linearized=_lin(),
        reference=ns(index=1, point=pts[1]),
        model={"num_classes": c, "multilabel": False},
        contextual=_contextual() if context else None,
        linear_rnn=ns(accuracy=0.84) if context else None,
    )  # fmt: skip


def _contextual():
    """Planted modifiers: not ×−1 for 3 tokens, very ×2 for 2, never ×0.5 for 1, and a
    valence word (gain 1); the first three span the subspace."""
    ns = types.SimpleNamespace
    gain = np.array([[-1, -1, -1, 1, 1, 1], [2, 2, 1, 1, 1, 1], [0.5, 1, 1, 1, 1, 1],
                     [1, 1, 1, 1, 1, 1]], float)  # fmt: skip
    strength = gain[:, 0] - 1
    with np.errstate(divide="ignore", invalid="ignore"):
        reach = np.abs(gain - 1).sum(1) / np.abs(gain[:, 0] - 1)
    return ns(words=np.array([7, 8, 9, 3]), names=("not", "very", "never", "good"), gain=gain,
              strength=strength, reach=reach, subspace_words=np.array([7, 8, 9]),
              subspace_coords=np.array([[-2.0, 0.5], [1.5, 0.2], [-0.8, -1.0]]),
              subspace_explained=np.array([0.7, 0.3]), extended_accuracy=0.86)  # fmt: skip


def _lin(**kw):
    base = dict(full=0.9, initial=0.8, nearest=0.85, trajectory=0.88,
                length_edges=np.array([10.0, 80.0]), length_counts=np.array([4]),
                length_full=np.array([0.9]), length_linearized=np.array([0.8]),
                length_trajectory=np.array([0.88]))  # fmt: skip
    return types.SimpleNamespace(**{**base, **kw})


def test_figures_only_draws_the_named_ones():
    a = _fake_analysis()
    assert set(plots.figures(a, only=("fixed_points", "word_effects"))) == {
        "fixed_points", "word_effects"}  # fmt: skip
    assert plots.figures(a, only=("simplex",)) == {}  # binary: no simplex to draw
    assert set(plots.figures(a, only=())) == set()


def test_figures_from_an_analysis_binary():
    a = _fake_analysis()
    figs = plots.figures(a)
    assert set(figs) == {
        "fixed_points", "fixed_points_3d", "eigenvalues", "time_constants",
        "readout_geometry", "word_effects", "effect_vs_bow", "explained_variance",
        "linearized_accuracy",
    }  # fmt: skip
    assert all(isinstance(f, Figure) for f in figs.values())
    fig = figs["fixed_points"]
    unstable, marginal = _by_gid(fig, "roots.unstable"), _by_gid(fig, "roots.marginal")
    (slow,) = _by_gid(fig, "slow_points", True)
    # coloured by the logit difference W·h (rows ±d): 2 d·h
    expected = a.points.kept.points @ (2 * a.geometry.readout[1])
    np.testing.assert_allclose(unstable[0].get_array(), expected[:1])
    np.testing.assert_allclose(marginal[0].get_array(), expected[1:-1])
    np.testing.assert_allclose(slow.get_array(), expected[-1:])
    (unstable,) = _by_gid(figs["fixed_points"], "roots.unstable")
    assert len(unstable.get_offsets()) == 1
    assert "8 slow points (7 certified roots)" in figs["fixed_points"].axes[0].get_title()


def test_figures_pads_an_lstm_readout_to_the_state():
    a = _fake_analysis(c=3, s=6)
    a.geometry.readout = a.geometry.readout[:, :3]  # (C, N) rows of an LSTM-like h = state[:N]
    p = plots.parts(a)
    assert p["readout"].shape == (3, 6)
    np.testing.assert_array_equal(p["readout"][:, 3:], 0)
    figs = plots.figures(a)
    assert "simplex" in figs


def test_figures_draw_accuracy_by_length_when_the_record_has_it():
    a = _fake_analysis()
    a.linearized = _lin(
        length_edges=np.array([10.0, 20.0, 40.0, 80.0]),
        length_counts=np.array([5, 0, 7]),
        length_full=np.array([1.0, np.nan, 0.8]),
        length_linearized=np.array([0.9, np.nan, 0.7]),
        length_trajectory=np.array([0.9, np.nan, 0.75]),
    )
    fig = plots.figures(a)["linearized_accuracy"]
    assert len(fig.axes) == 2  # overall accuracies and per length, side by side
    full, lin, traj = _by_gid(fig, "accuracy_by_length")
    np.testing.assert_allclose(full.get_xdata(), [15.0, 60.0])  # empty bin left out
    np.testing.assert_allclose(lin.get_ydata(), [0.9, 0.7])
    np.testing.assert_allclose(traj.get_ydata(), [0.9, 0.75])


def _line_trajectories(a, b=6, t=12):
    """Trajectories along the fake analysis' line, from 0 outwards."""
    pts = a.points.kept.points
    ends = np.linspace(-1, 1, b)[:, None] * (pts[-1] - pts[0])[None] / 2
    return np.stack([np.outer(np.linspace(0, 1, t), e) for e in ends]) + pts.mean(0)


FIGURE_NAMES = [
    ("fixed_points", 2), ("fixed_points_3d", 2), ("eigenvalues", 2), ("time_constants", 2),
    ("readout_geometry", 2), ("word_effects", 2), ("effect_vs_bow", 2),
    ("explained_variance", 2), ("linearized_accuracy", 2), ("simplex", 3),
    ("modifier_gains", 2), ("modifier_subspace", 2), ("model_accuracy", 2),
]  # fmt: skip


@pytest.mark.parametrize("name, c", FIGURE_NAMES)
def test_each_figure_meets_its_five_criteria(name, c):
    """Rated by tests/figure_criteria.py, all five must hold on a fake analysis of known
    content. What a reader can check, per figure:

    - fixed points (2-D, 3-D): the title counts the points and the certified roots; the
      legend names roots, slow points, each stability drawn, documents, h0 and the
      reference point; the points fill the axes; the ring and the star sit at the
      reference point and h0; no text under 8 pt;
    - eigenvalues: the title gives the count and the median |λ1|; the inset holds every
      eigenvalue within 0.05 of 1; the unit circle has radius 1;
    - time constants: the title's τ1 is the median line's first value; the dashed line is
      at the median document length; "each point" is in the legend;
    - readout geometry: the arrow starts at the reference point and its head is inside
      the axes;
    - word effects: the title counts the bars and the words seen; the legend says which
      colour pushes where;
    - effect vs bag of words: the title's r is the correlation of the dots drawn;
    - explained variance: the cumulative axis starts near the data, not at 0; the
      threshold line is at the analysis' threshold;
    - simplex: one readout arrow per class, from the reference point;
    - linearised accuracy: the chance line is at 1/C, the dots fill the axis;
    - modifier gains: the title names the strongest modifier and its gain; the gain 1 and
      −1 lines are in place; each reach marker sits at a word's reach;
    - modifier subspace: the title gives the dimension and the words; each word is
      labelled and coloured by the sign of its strength; the line is at the origin;
    - model accuracy: each bar ends at its model's accuracy, the title gives the
      network's.
    """
    a = _fake_analysis(c=c, s=4, context=True)
    h0 = a.points.kept.points.mean(0)
    trajs = _line_trajectories(a)
    figs = plots.figures(a, trajectories=trajs, h0=h0)
    p = {**plots.parts(a, trajectories=trajs), "h0": h0}
    assert name in figs
    ratings = rate(name, figs[name], p)
    assert all(ratings.values()), ratings


def test_every_plot_draws_into_given_axes():
    """With ax=, a function draws into it, creates no figure and returns ax's figure."""
    from matplotlib.figure import Figure as F

    a = _fake_analysis()
    p = plots.parts(a)
    pts = p["points"]
    fig = F(figsize=(12, 8))
    grid = fig.subplots(3, 4)
    ax3d = fig.add_subplot(3, 4, 12, projection="3d")
    calls = [
        lambda ax: plots.plot_fixed_points(pts, ax=ax),
        lambda ax: plots.plot_eigenvalues(p["eigenvalues"], ax=ax),
        lambda ax: plots.plot_time_constants(p["eigenvalues"], ax=ax),
        lambda ax: plots.plot_readout_geometry(pts, p["right_vectors"], p["readout"], ax=ax),
        lambda ax: plots.plot_word_effects(p["words"], p["mode_effects"], ax=ax),
        lambda ax: plots.plot_effect_vs_bow(p["logit_effects"], p["bow_weights"], ax=ax),
        lambda ax: plots.plot_explained_variance(p["state_ratio"], ax=ax),
        lambda ax: plots.plot_linearized_accuracy(0.9, 0.8, ax=ax),
        lambda ax: plots.plot_simplex(*_simplex_points(3), ax=ax),
    ]
    for call, ax in zip(calls, grid.ravel(), strict=False):
        assert call(ax) is fig
        assert ax.has_data() or ax.patches or ax.texts, call
    assert plots.plot_fixed_points(pts, dims=3, ax=ax3d) is fig
    both = fig.subplots(1, 2)  # a two-panel figure into a pair of axes
    assert plots.plot_explained_variance(p["state_ratio"], [0.9, 0.1], ax=tuple(both)) is fig
    assert len(both[1].get_lines()) >= 2
    with pytest.raises(ValueError, match="3-D axes"):
        plots.plot_fixed_points(pts, dims=3, ax=grid[0, 0])


@pytest.mark.parametrize("fmt, magic", [("png", b"\x89PNG"), ("svg", b"<?xml"), ("pdf", b"%PDF")])
def test_save_writes_each_format_at_the_chosen_dpi(tmp_path, fmt, magic):
    fig = plots.plot_linearized_accuracy(0.9, 0.8)
    written = plots.save(fig, tmp_path / "acc.png", formats=(fmt,), dpi=200)
    assert written == {fmt: str(tmp_path / f"acc.{fmt}")}
    data = (tmp_path / f"acc.{fmt}").read_bytes()
    assert data.startswith(magic)
    if fmt == "png":
        from PIL import Image

        w, h = Image.open(io.BytesIO(data)).size
        assert (w, h) == tuple(round(200 * x) for x in fig.get_size_inches())
    with pytest.raises(ValueError, match="format"):
        plots.render(fig, "jpg")
    with pytest.raises(ValueError, match="dpi"):
        plots.render(fig, "png", dpi=0)


def test_figures_share_one_pca_basis():
    """The fixed-point, readout and 3-D figures project on the same directions: the
    reference point lands on the same coordinates in each."""
    a = _fake_analysis()
    trajs = _line_trajectories(a)
    figs = plots.figures(a, trajectories=trajs)
    p = plots.parts(a, trajectories=trajs)
    mean, directions, _ = p["basis"]
    want = (a.reference.point - mean) @ directions[:2].T
    (ring,) = _by_gid(figs["fixed_points"], "reference")
    np.testing.assert_allclose(ring.get_offsets()[0], want, atol=1e-12)
    (ring,) = _by_gid(figs["readout_geometry"], "reference")
    np.testing.assert_allclose(ring.get_offsets()[0], want, atol=1e-12)
    (ring3,) = _by_gid(figs["fixed_points_3d"], "reference")
    np.testing.assert_allclose(np.asarray(ring3._offsets3d)[:2, 0], want, atol=1e-12)
    assert figs["fixed_points"].axes[0].get_xlabel() == figs["readout_geometry"].axes[
        0].get_xlabel().replace("variance", "state variance")  # fmt: skip


def test_no_text_smaller_than_8pt_at_the_saved_size():
    a = _fake_analysis()
    for name, fig in plots.figures(a, trajectories=_line_trajectories(a)).items():
        assert min_font(fig) >= plots.MIN_FONT_PT, name


def test_modifier_gains_draw_the_strongest_with_their_reach():
    ctx = _contextual()
    fig = plots.plot_modifier_gains(ctx.names, ctx.gain, reach=ctx.reach, top=3)
    lines = _by_gid(fig, "modifier_gain")
    assert len(lines) == 3  # good (gain 1) is no modifier: not among the top 3
    for ln, i in zip(lines, (0, 1, 2), strict=True):  # by |gain(0) − 1|: not, very, never
        np.testing.assert_array_equal(ln.get_ydata(), ctx.gain[i])
        np.testing.assert_array_equal(ln.get_xdata(), np.arange(6))
    # reach 3, 2, 1 tokens: the marker between the last modified and the first free word
    marks = [float(m.get_xdata()[0]) for m in _by_gid(fig, "reach")]
    np.testing.assert_allclose(marks, [2.5, 1.5, 0.5])
    assert [float(_by_gid(fig, g)[0].get_ydata()[0]) for g in ("gain_one", "gain_zero",
            "gain_flip")] == [1.0, 0.0, -1.0]  # fmt: skip
    assert fig.axes[0].get_title() == (
        "strongest modifier not: ×-1.00 on the next word, reach 3.0 tokens"
    )
    legend = legend_text(fig)
    assert "very: ×2.00, reach 2.0" in legend and "gain −1: flipped" in legend
    with pytest.raises(ValueError, match="words"):
        plots.plot_modifier_gains(ctx.names[:2], ctx.gain)


def test_modifier_subspace_colours_words_by_the_sign_of_their_strength():
    ctx = _contextual()
    coords = ctx.subspace_coords
    fig = plots.plot_modifier_subspace(ctx.names[:3], coords, ctx.strength[:3],
                                       explained=ctx.subspace_explained)  # fmt: skip
    (up,) = _by_gid(fig, "intensifiers")
    (down,) = _by_gid(fig, "attenuators")
    np.testing.assert_array_equal(up.get_offsets(), coords[[1]])  # very
    np.testing.assert_array_equal(down.get_offsets(), coords[[0, 2]])  # not, never
    ax = fig.axes[0]
    labels = {t.get_text() for t in ax.texts}
    assert labels == {"not ×-1.00", "very ×2.00", "never ×0.50"}
    # intensifier PC1 mean 1.5 > 0, attenuators' −1.4 < 0
    assert ax.get_title() == "modifier subspace, 2-D, 3 words\nthe two kinds on opposite sides"
    assert ax.get_xlabel() == "modifier PC1, 70% of the energy"
    one = plots.plot_modifier_subspace(["a", "b"], np.array([[1.0], [1.0]]), [0.5, -0.5])
    assert "one side" in one.axes[0].get_title()
    assert "1-D subspace" in one.axes[0].get_ylabel()


def test_model_accuracy_bars_end_at_each_value():
    acc = {"bag of words": 0.8, "extended bag of words": 0.86, "linear RNN, trained": 0.84,
           "linearised network": float("nan"), "network": 0.9}  # fmt: skip
    fig = plots.plot_model_accuracy(acc, chance=0.5)
    bars = _by_gid(fig, "accuracy_bar")
    ends = [b.get_x() + b.get_width() for b in bars]
    np.testing.assert_allclose(ends, [0.8, 0.86, 0.84, 0.9])  # the nan is left out
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == [
        "bag of words", "extended bag of words", "linear RNN, trained", "network"]  # fmt: skip
    # (0.86 − 0.8) / (0.9 − 0.8) = 60% of the network's gain
    assert ax.get_title() == ("network 0.900\nthe extended bag of words recovers 60% of its gain")
    assert "below the axis" in legend_text(fig)  # chance 0.5 far below 0.8-0.9
    with pytest.raises(ValueError, match="finite"):
        plots.plot_model_accuracy({"network": float("nan")})


def test_figures_draw_the_contextual_ones_only_with_the_data():
    plain = plots.figures(_fake_analysis())
    assert not {"modifier_gains", "modifier_subspace", "model_accuracy"} & set(plain)
    a = _fake_analysis(context=True)
    figs = plots.figures(a)
    assert {"modifier_gains", "modifier_subspace", "model_accuracy"} <= set(figs)
    p = plots.parts(a)
    assert p["models"] == {"bag of words": 0.8, "extended bag of words": 0.86,
                           "linear RNN, trained": 0.84, "linearised network": 0.8,
                           "network": 0.9}  # fmt: skip
    a.contextual = None  # a linear RNN alone: only the accuracy bars
    figs = plots.figures(a)
    assert "model_accuracy" in figs and "modifier_gains" not in figs
    assert "extended bag of words" not in plots.parts(a)["models"]
