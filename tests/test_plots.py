"""rnndyn.plots: each function returns a Figure holding what it promises.

Tiny fake inputs with known content: the tests count the artists (points, bars, lines)
and check values drawn against numbers computed here independently.
"""

import types

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.patches import Circle  # noqa: E402

from rnndyn import plots  # noqa: E402


def _by_gid(fig, gid):
    return fig.findobj(lambda a: getattr(a, "get_gid", lambda: None)() == gid)


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


def test_fixed_points_marks_roots_slow_points_and_unstable_points_on_one_scale():
    pts, direction, t = _line_points(11, 4)
    status = np.where(np.arange(11) % 3 == 0, 0, 2)  # ROOT every third, else SLOW_POINT
    stability = np.where(np.arange(11) == 5, 2, 1)
    fig = plots.plot_fixed_points(pts, color=t, status=status, stability=stability)
    (roots,), (slow,) = _by_gid(fig, "roots"), _by_gid(fig, "slow_points")
    assert len(roots.get_offsets()) == 4 and len(slow.get_offsets()) == 7
    assert roots.get_clim() == slow.get_clim() == (-1.0, 1.0)
    (unstable,) = _by_gid(fig, "unstable")
    np.testing.assert_allclose(unstable.get_offsets(), slow.get_offsets()[[3]])  # point 5
    assert fig.axes[0].get_title() == "11 slow points (4 certified roots)"
    with pytest.raises(ValueError, match="status"):
        plots.plot_fixed_points(pts, status=[0, 1])


def test_fixed_points_rejects_bad_shapes():
    with pytest.raises(ValueError, match="points"):
        plots.plot_fixed_points(np.zeros(3))
    with pytest.raises(ValueError, match="dims"):
        plots.plot_fixed_points(np.zeros((3, 3)), dims=4)
    with pytest.raises(ValueError, match="color"):
        plots.plot_fixed_points(np.eye(3), color=[1, 2])


def test_eigenvalues_with_unit_circle():
    lam = np.array([[0.99, 0.5 + 0.2j, 0.5 - 0.2j], [1.0, 0.3, -0.1]])
    fig = plots.plot_eigenvalues(lam)
    (circle,) = _by_gid(fig, "unit_circle")
    assert isinstance(circle, Circle) and circle.get_radius() == 1.0
    (allv,) = _by_gid(fig, "eigenvalues")
    assert len(allv.get_offsets()) == 6
    (top,) = _by_gid(fig, "top_eigenvalues")
    np.testing.assert_allclose(np.asarray(top.get_offsets())[:, 0], [0.99, 1.0])
    ax = fig.axes[0]
    assert ax.get_xlabel() == "Re λ" and ax.get_ylabel() == "Im λ"


def test_time_constants_median_matches_formula():
    lam = np.array([[0.9, 0.5], [0.99, 0.1], [0.95, -0.5]])
    fig = plots.plot_time_constants(lam)
    (med,) = _by_gid(fig, "median_tau")
    expected = np.median(1 / np.abs(np.log(np.abs(lam))), axis=0)
    np.testing.assert_allclose(med.get_ydata(), expected)
    assert len(_by_gid(fig, "point_tau")) == 3
    assert fig.axes[0].get_yscale() == "log"
    assert "steps" in fig.axes[0].get_ylabel()


def test_time_constants_marks_exact_unit_modulus_finite():
    fig = plots.plot_time_constants(np.array([[1.0, 0.5], [0.9, 0.5]]))
    (med,) = _by_gid(fig, "median_tau")
    assert np.all(np.isfinite(med.get_ydata()))


def test_readout_geometry_draws_each_eigenvector_and_readout():
    pts, direction, _ = _line_points(6, 4)
    right = np.tile(direction, (6, 1))
    readout = np.stack([-direction, direction])
    fig = plots.plot_readout_geometry(pts, right, readout, tangent_alignment=np.ones(6))
    (q,) = _by_gid(fig, "right_eigenvectors")
    uv = np.stack([q.U, q.V], 1)
    assert len(uv) == 6
    # eigenvectors along the line: horizontal in the PC1/PC2 plane
    assert np.abs(uv[:, 1]).max() < 1e-3 * np.abs(uv[:, 0]).max()
    assert len(_by_gid(fig, "readout")) == 1  # binary: one arrow
    assert len(fig.axes) == 2
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


def test_linearized_accuracy_bars_and_by_length():
    fig = plots.plot_linearized_accuracy(0.95, 0.9, 0.93)
    assert [p.get_height() for p in _by_gid(fig, "accuracy_bars")] == [0.95, 0.9, 0.93]
    fig = plots.plot_linearized_accuracy(
        0.95, 0.9, by_length={"length": [10, 20], "full": [1, 0.9], "initial": [0.9, 0.8]}
    )
    lines = _by_gid(fig, "accuracy_by_length")
    assert len(lines) == 2
    assert list(lines[1].get_ydata()) == [0.9, 0.8]


def _fake_analysis(c=2, k=8, s=4, v=6):
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
        spectra=ns(eigenvalues=lam.astype(complex), stability=stability,
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
            trajectory_effects=rng.normal(size=(v, c)),
        ),
        baseline=ns(counts=np.ones(v), weights=rng.normal(size=(v, c))),
        prediction=ns(explained_ratio=np.array([1.0])),
        linearized=_lin(),
        reference=ns(index=0),
        model={"num_classes": c, "multilabel": False},
    )  # fmt: skip


def _lin(**kw):
    base = dict(full=0.9, initial=0.8, nearest=0.85, trajectory=0.88,
                length_edges=np.array([10.0, 80.0]), length_counts=np.array([4]),
                length_full=np.array([0.9]), length_linearized=np.array([0.8]),
                length_trajectory=np.array([0.88]))  # fmt: skip
    return types.SimpleNamespace(**{**base, **kw})


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
    (roots,), (slow,) = _by_gid(fig, "roots"), _by_gid(fig, "slow_points")
    # coloured by the logit difference W·h (rows ±d): 2 d·h
    expected = a.points.kept.points @ (2 * a.geometry.readout[1])
    np.testing.assert_allclose(roots.get_array(), expected[:-1])
    np.testing.assert_allclose(slow.get_array(), expected[-1:])
    (unstable,) = _by_gid(figs["fixed_points"], "unstable")
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
    full, lin, traj = _by_gid(fig, "accuracy_by_length")
    np.testing.assert_allclose(full.get_xdata(), [15.0, 60.0])  # empty bin left out
    np.testing.assert_allclose(lin.get_ydata(), [0.9, 0.7])
    np.testing.assert_allclose(traj.get_ydata(), [0.9, 0.75])
