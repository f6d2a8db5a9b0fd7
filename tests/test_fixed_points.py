import re

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import rnndyn
from rnndyn import cells
from rnndyn.fixed_points import run as fp_run


def tanh_cell(w: float):
    """1-D vanilla cell h -> tanh(w h)."""
    cell = cells.Vanilla(1)
    params = {"W_h": jnp.array([[w]]), "W_x": jnp.zeros((1, 1)), "b": jnp.zeros(1)}
    return cell, params


def tanh_roots(w: float) -> np.ndarray:
    """Roots of h = tanh(w h), by bisection in float64 (w > 1: 0 and ±r)."""
    lo, hi = 1e-9, 1.0
    f = lambda h: np.tanh(w * h) - h  # noqa: E731
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if f(mid) > 0 else (lo, mid)
    return np.array([-lo, 0.0, lo])


def test_tanh_fixed_points_match_analytic_roots():
    cell, params = tanh_cell(2.0)
    roots = tanh_roots(2.0)
    assert roots[2] == pytest.approx(0.957504, abs=1e-6)
    h0 = jnp.linspace(-1.5, 1.5, 31)[:, None]
    fps = rnndyn.find_fixed_points(cell, params, jnp.zeros(1), h0)
    assert fps.root.all()
    found = np.asarray(fps.points[:, 0])
    start = np.asarray(h0[:, 0])
    # descent on q has its own basins: q has maxima where F'(h) = 1, i.e. at
    # |h| = arccosh(sqrt(w)) / w; inside that the search ends at 0, outside at ±r
    edge = np.arccosh(np.sqrt(2.0)) / 2.0
    expected = np.where(np.abs(start) < edge, 0.0, np.sign(start) * roots[2])
    clear = np.abs(np.abs(start) - edge) > 0.1  # momentum may cross a near edge
    np.testing.assert_allclose(found[clear], expected[clear], atol=1e-5)
    unique = fps.keep_roots().merge_duplicates(1e-3)
    np.testing.assert_allclose(np.sort(np.asarray(unique.points[:, 0])), roots, atol=1e-5)
    assert np.all(np.asarray(fps.speeds) < 1e-8)


@pytest.mark.slow
@settings(max_examples=8, deadline=None)
@given(w=st.floats(1.3, 4.0), seed=st.integers(0, 1000))
def test_tanh_property_every_certified_root_is_a_root(w, seed):
    cell, params = tanh_cell(w)
    h0 = jax.random.uniform(jax.random.key(seed), (16, 1), minval=-2.0, maxval=2.0)
    fps = rnndyn.find_fixed_points(cell, params, jnp.zeros(1), h0, max_steps=3000)
    roots = tanh_roots(w)
    pts = np.asarray(fps.keep_roots().points[:, 0])
    assert pts.size > 0
    assert np.min(np.abs(pts[:, None] - roots[None]), axis=1).max() < 1e-4


def linear_cell(a: np.ndarray):
    """h -> A h + x + b (a from_function cell) with known fixed point (I - A)^-1 (x + b)."""
    a = jnp.asarray(a)
    return cells.from_function(lambda p, h, x: a @ h + x + p["b"], state_size=a.shape[0])


def test_linear_cell_unique_fixed_point():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(4, 4))
    a = 0.8 * a / np.max(np.abs(np.linalg.eigvals(a)))  # stable: unique fixed point
    b = rng.normal(size=4)
    x = np.array([0.3, -0.2, 0.1, 0.0])
    truth = np.linalg.solve(np.eye(4) - a, x + b)
    fps = rnndyn.find_fixed_points(
        linear_cell(a), {"b": jnp.asarray(b)}, x, key=jax.random.key(1), num_initial=32
    )
    assert fps.root.all()
    np.testing.assert_allclose(fps.points, np.broadcast_to(truth, (32, 4)), atol=1e-4)
    assert len(fps.merge_duplicates(1e-3)) == 1


def test_one_input_per_initial_state():
    # h -> 0.5 h + x has fixed point 2x, one per row of inputs
    cell = cells.from_function(lambda p, h, x: 0.5 * h + x, state_size=1)
    xs = jnp.array([[-1.0], [0.0], [0.5], [2.0]])
    fps = rnndyn.find_fixed_points(cell, {}, xs, key=jax.random.key(0))
    assert fps.points.shape == (4, 1)
    np.testing.assert_allclose(fps.points, 2 * xs, atol=1e-4)
    np.testing.assert_allclose(fps.inputs, xs)


def test_line_attractor_returns_a_continuum():
    # 2-D: h1 is kept, h2 decays through tanh: every (h1, 0) is a fixed point
    cell = cells.from_function(
        lambda p, h, x: jnp.stack([h[0], jnp.tanh(0.5 * h[1])]), state_size=2
    )
    h0 = jax.random.uniform(jax.random.key(0), (64, 2), minval=-1, maxval=1)
    fps = rnndyn.find_fixed_points(cell, {}, jnp.zeros(1), h0, tol=1e-12)
    assert fps.root.all()
    pts = np.asarray(fps.points)
    np.testing.assert_allclose(pts[:, 1], 0.0, atol=1e-5)
    # the line coordinate is free, so each point keeps its own h1: a spread of points
    np.testing.assert_allclose(pts[:, 0], np.asarray(h0[:, 0]), atol=1e-2)
    assert len(fps.merge_duplicates(1e-2)) > 30


@pytest.mark.slow
@pytest.mark.parametrize("cls", [cells.GRU, cells.LSTM])
def test_random_gated_cells_certified_roots_are_fixed(cls):
    n, m = 8, 3
    cell = cls(n)
    params = cell.init(jax.random.key(0), m)
    params["W_h"] = 3.0 * params["W_h"]
    x = 0.1 * jax.random.normal(jax.random.key(1), (m,))
    h0 = jax.random.uniform(jax.random.key(2), (32, cell.state_size), minval=-1, maxval=1)
    fps = rnndyn.find_fixed_points(cell, params, x, h0, tol=1e-10, max_steps=3000)
    conv = fps.keep_roots()
    assert len(conv) > 0
    # check with the cell evaluated in float64, independently of the optimiser's q
    with jax.enable_x64(True):
        p64 = jax.tree_util.tree_map(lambda a: jnp.asarray(np.asarray(a), jnp.float64), params)
        h = jnp.asarray(np.asarray(conv.points), jnp.float64)
        residual = cell(p64, h, jnp.asarray(np.asarray(x), jnp.float64)) - h
        norms = np.linalg.norm(np.asarray(residual), axis=1)
    assert norms.max() < 2e-5


def test_newton_polish_goes_far_below_adam_tolerance():
    cell, params = tanh_cell(2.0)
    h0 = jnp.array([[0.5], [0.8], [-0.7]])
    adam_only = rnndyn.find_fixed_points(cell, params, jnp.zeros(1), h0, tol=1e-6, polish_steps=0)
    polished = rnndyn.find_fixed_points(cell, params, jnp.zeros(1), h0, tol=1e-6)
    # Adam stops just under tol, up to ~2e-3 from the roots (|r| <= 1.4e-3, |J - I| ~ 0.8):
    # slow points, certified as roots only where the root is within merge_distance
    assert adam_only.slow.all() and polished.root.all()
    dist = np.abs(np.abs(np.asarray(adam_only.points[:, 0])) - tanh_roots(2.0)[2])
    np.testing.assert_array_equal(np.asarray(adam_only.root), dist < 1e-3)
    assert np.all(np.asarray(adam_only.speeds) > 1e-10)
    assert np.all(np.asarray(polished.speeds) < 1e-13)


def test_diverging_candidates_are_not_roots():
    # F(h) = h - log(h): root at h = 1; from h < 0 the residual is NaN
    cell = cells.from_function(lambda p, h, x: h - jnp.log(h), state_size=1)
    h0 = jnp.array([[0.5], [2.0], [-1.0], [-0.3]])
    fps = rnndyn.find_fixed_points(cell, {}, jnp.zeros(1), h0)
    np.testing.assert_array_equal(fps.root, [True, True, False, False])
    assert np.all(np.isinf(np.asarray(fps.speeds)[2:]))
    np.testing.assert_allclose(fps.keep_roots().points[:, 0], [1.0, 1.0], atol=1e-5)


def test_freezes_each_point_when_below_tolerance():
    cell, params = tanh_cell(2.0)
    roots = tanh_roots(2.0)
    h0 = jnp.array([[roots[2]], [0.3]])  # the first starts on a root
    fps = rnndyn.find_fixed_points(cell, params, jnp.zeros(1), h0, polish_steps=0)
    steps = np.asarray(fps.steps)
    assert steps[0] == 0 and steps[1] > 0
    assert fps.points[0, 0] == h0[0, 0]


def test_noise_and_defaults_need_a_key():
    cell, params = tanh_cell(2.0)
    with pytest.raises(ValueError, match="key is required"):
        rnndyn.find_fixed_points(cell, params, jnp.zeros(1))
    with pytest.raises(ValueError, match="key is required when noise"):
        rnndyn.find_fixed_points(cell, params, jnp.zeros(1), jnp.ones((2, 1)), noise=0.1)
    fps = rnndyn.find_fixed_points(
        cell,
        params,
        jnp.zeros(1),
        jnp.full((8, 1), 0.5),
        noise=0.1,
        key=jax.random.key(0),
    )
    start = np.asarray(fps.initial_states[:, 0])
    assert np.std(start) > 0.02 and np.all(np.abs(start - 0.5) < 0.6)


def test_jit_and_vmap_compatible():
    cell = cells.from_function(lambda p, h, x: 0.5 * h + p["b"], state_size=2)
    h0 = jnp.zeros((3, 2))

    @jax.jit
    def search(b):
        return rnndyn.find_fixed_points(cell, {"b": b}, jnp.zeros(1), h0)

    fps = search(jnp.array([1.0, -1.0]))
    assert isinstance(fps, rnndyn.FixedPoints)
    np.testing.assert_allclose(fps.points, [[2.0, -2.0]] * 3, atol=1e-4)
    # vmap over a batch of parameter sets: fixed point 2b for each b
    bs = jnp.array([[1.0, 0.0], [0.0, 0.5], [-0.5, 0.25]])
    points = jax.vmap(lambda b: search(b).points)(bs)
    np.testing.assert_allclose(points, np.repeat(2 * np.asarray(bs)[:, None], 3, 1), atol=1e-4)


def _result(points, speeds):
    k = len(points)
    points = jnp.asarray(points, jnp.float32)
    return rnndyn.FixedPoints(
        points=points,
        speeds=jnp.asarray(speeds, jnp.float32),
        status=jnp.where(
            jnp.asarray(speeds) < 1e-8, rnndyn.Status.SLOW_POINT, rnndyn.Status.STALLED
        ),
        steps=jnp.zeros(k, jnp.int32),
        inputs=jnp.zeros((k, 1)),
        initial_states=points,
    )


def test_merge_keeps_the_slowest_of_each_group_and_drop_outliers():
    pts = [[0.0, 0.0], [0.0005, 0.0], [1.0, 0.0], [1.0, 0.0002], [50.0, 50.0], [0.5, 0.0]]
    fps = _result(pts, [1e-9, 1e-12, 1e-12, 1e-10, 1e-11, 1e-3])
    conv = fps.keep_slow()
    assert len(conv) == 5  # the last is not slow
    merged = conv.merge_duplicates(1e-3)
    np.testing.assert_allclose(merged.points, [[0.0005, 0.0], [1.0, 0.0], [50.0, 50.0]], atol=1e-6)
    line = _result([[i * 0.1, 0.0] for i in range(10)] + [[30.0, 0.0]], [0.0] * 11)
    kept = line.drop_outliers(factor=10.0)
    assert len(kept) == 10 and float(kept.points[:, 0].max()) < 1.0
    with pytest.raises(ValueError, match="distance must be"):
        fps.merge_duplicates(-1.0)


def test_html_view_counts_each_status_with_its_q_range():
    S = rnndyn.Status
    status = [S.ROOT, S.ROOT, S.SLOW_POINT, S.STALLED, S.DIVERGED]
    speeds = [1e-12, 3e-10, 2e-9, 0.25, np.inf]
    fps = rnndyn.FixedPoints(
        points=jnp.zeros((5, 3)),
        speeds=jnp.asarray(speeds, jnp.float32),
        status=jnp.asarray(status, jnp.int32),
        steps=jnp.zeros(5, jnp.int32),
        inputs=jnp.zeros((5, 1)),
        initial_states=jnp.zeros((5, 3)),
        tol=1e-8,
    )
    html = fps._repr_html_()
    assert html == fps.to_html()
    assert fps.describe().replace("<", "&lt;") in html
    rows = dict(re.findall(r"<th>([A-Z_]+)</th><td[^>]*>([0-9,]+)</td>", html))
    assert rows == {"ROOT": "2", "SLOW_POINT": "1", "STALLED": "1", "DIVERGED": "1"}
    assert "1e-12 – 3e-10" in html  # the ROOT rows' q range
    assert "0.25 – 0.25" in html and "not finite" in html  # DIVERGED has only q = inf
    assert "5 candidates in 3 dimensions" in html and "tol 1e-08" in html
    assert "<img" not in html  # a table, no figure
    empty = fps.select(np.zeros(5, bool)).to_html()
    assert "0 candidates" in empty and "<th>ROOT</th>" not in empty


def test_sample_states_respects_mask():
    traj = jnp.arange(2 * 5 * 3, dtype=jnp.float32).reshape(2, 5, 3)
    mask = jnp.array([[1, 1, 0, 0, 0], [1, 1, 1, 0, 0]], bool)
    traj = jnp.where(mask[..., None], traj, 1e6)  # padding holds a sentinel
    s = rnndyn.sample_states(traj, 200, jax.random.key(0), mask=mask)
    assert s.shape == (200, 3)
    assert float(s.max()) < 1e6
    assert len(np.unique(np.asarray(s[:, 0]))) == 5  # every valid state gets drawn
    noisy = rnndyn.sample_states(traj[0, :2], 500, jax.random.key(1), noise=0.1)
    base = np.asarray(traj[0, :2])
    dev = np.min(np.linalg.norm(np.asarray(noisy)[:, None] - base[None], axis=-1), axis=1)
    assert 0.05 < np.median(dev) < 0.4
    jitted = jax.jit(lambda t, k: rnndyn.sample_states(t, 4, k, mask=mask))(traj, jax.random.key(2))
    assert jitted.shape == (4, 3)
    with pytest.raises(ValueError, match="mask has shape"):
        rnndyn.sample_states(traj, 3, jax.random.key(0), mask=mask[:, :4])
    with pytest.raises(ValueError, match="no valid time step"):
        rnndyn.sample_states(traj, 3, jax.random.key(0), mask=jnp.zeros((2, 5), bool))
    with pytest.raises(ValueError, match="exceeds the 5 valid states"):
        rnndyn.sample_states(traj, 6, jax.random.key(0), mask=mask, replace=False)


def test_bad_input_errors_name_the_argument():
    cell = cells.GRU(4)
    params = cell.init(jax.random.key(0), 3)
    h0 = jnp.zeros((5, 4))
    x = jnp.zeros(3)
    with pytest.raises(ValueError, match="initial_states have size 6 but GRU has state_size 4"):
        rnndyn.find_fixed_points(cell, params, x, jnp.zeros((5, 6)))
    with pytest.raises(ValueError, match="inputs have size 2 but params expect input size 3"):
        rnndyn.find_fixed_points(cell, params, jnp.zeros(2), h0)
    with pytest.raises(ValueError, match=r"inputs has 4 rows .* initial_states has 5"):
        rnndyn.find_fixed_points(cell, params, jnp.zeros((4, 3)), h0)
    bad = params | {"W_h": params["W_h"].at[0, 0].set(jnp.nan)}
    with pytest.raises(ValueError, match=r"params\['W_h'\] contains 1 non-finite"):
        rnndyn.find_fixed_points(cell, bad, x, h0)
    with pytest.raises(ValueError, match=r"initial_states is empty \(shape \(0, 4\)\)"):
        rnndyn.find_fixed_points(cell, params, x, jnp.zeros((0, 4)))
    with pytest.raises(ValueError, match="tol must be a finite number > 0, got -1"):
        rnndyn.find_fixed_points(cell, params, x, h0, tol=-1)
    with pytest.raises(ValueError, match="tol must be a finite number > 0, got nan"):
        rnndyn.find_fixed_points(cell, params, x, h0, tol=float("nan"))
    with pytest.raises(ValueError, match="max_steps must be an integer >= 1"):
        rnndyn.find_fixed_points(cell, params, x, h0, max_steps=0)
    with pytest.raises(ValueError, match=r"initial_states must have 2 dimension"):
        rnndyn.find_fixed_points(cell, params, x, jnp.zeros(4))
    with pytest.raises(ValueError, match="inputs contains 1 non-finite"):
        rnndyn.find_fixed_points(cell, params, x.at[0].set(jnp.inf), h0)
    with pytest.raises(ValueError, match="cell must be an rnndyn cell"):
        rnndyn.find_fixed_points(lambda p, h, x: h, params, x, h0)
    wrong = cells.from_function(lambda p, h, x: h[:2], state_size=None)
    with pytest.raises(ValueError, match=r"must map a state of shape \(4,\) to the same shape"):
        rnndyn.find_fixed_points(wrong, {}, x, h0)


def test_progress_is_printed_and_silenced(capsys):
    cell, params = tanh_cell(2.0)
    h0 = jnp.array([[0.3]])
    rnndyn.find_fixed_points(cell, params, jnp.zeros(1), h0, verbose=True, log_every=10)
    err = capsys.readouterr().err
    assert "iteration" in err and "1 slow points (q < 1e-08) of 1 starts: 1 certified" in err
    rnndyn.find_fixed_points(cell, params, jnp.zeros(1), h0)
    assert capsys.readouterr().err == ""


# --- statuses, bounds, deflation, clean-up ----------------------------------------------


def test_statuses_of_a_stall_a_step_cap_and_divergence():
    # h' = h + 0.1 (h² + 0.01): no root; q = ½·0.01 (h² + 0.01)² has its minimum 5e-7 > tol
    # at 0, so descent stalls there above tol
    slow = cells.from_function(lambda p, h, x: h + 0.1 * (h**2 + 0.01), state_size=1)
    fps = rnndyn.find_fixed_points(slow, {}, jnp.zeros(1), jnp.array([[0.5], [-0.3]]))
    assert _statuses(fps) == [rnndyn.Status.STALLED] * 2
    np.testing.assert_allclose(fps.points[:, 0], 0.0, atol=1e-2)
    assert not np.any(np.asarray(fps.slow))
    cell, params = tanh_cell(2.0)
    capped = rnndyn.find_fixed_points(
        cell, params, jnp.zeros(1), jnp.array([[0.7]]), max_steps=1, polish_steps=0
    )
    assert _statuses(capped) == [rnndyn.Status.MAX_STEPS]
    blowup = cells.from_function(lambda p, h, x: jnp.exp(50.0 * h) + h, state_size=1)
    out = rnndyn.find_fixed_points(blowup, {}, jnp.zeros(1), jnp.array([[20.0]]))
    assert _statuses(out) == [rnndyn.Status.DIVERGED]
    assert not np.isfinite(float(out.speeds[0]))
    assert "NaN or inf" in rnndyn.Status.DIVERGED.message


# --- known-answer systems, one per status (docs/fixed_points.md#statuses) -------------


def _statuses(fps) -> list:
    return [rnndyn.Status(int(s)) for s in np.asarray(fps.status)]


@pytest.mark.parametrize("polish_steps", [50, 0])
def test_no_root_with_a_vanishing_residual_reports_no_root(polish_steps):
    # F(h) = h + e^{-h}: the residual e^{-h} vanishes as h -> inf, and there is no root;
    # J - I = -e^{-h} vanishes with it, so a small sigma_min says nothing about roots here
    cell = cells.from_function(lambda p, h, x: h + jnp.exp(-h), state_size=1)
    h0 = jnp.linspace(0.0, 3.0, 8)[:, None]
    fps = rnndyn.find_fixed_points(cell, {}, jnp.zeros(1), h0, polish_steps=polish_steps)
    assert not np.any(np.asarray(fps.root))
    slow = np.asarray(fps.slow)
    if polish_steps:  # Levenberg-Marquardt runs down the slope until q < tol
        assert slow.all()
    # a slow point's Newton step says where the linearisation puts a root: one unit on,
    # whatever the residual, because r / (J - I) = -1 exactly
    np.testing.assert_allclose(np.asarray(fps.correction)[slow], 1.0, rtol=1e-6)
    # Adam alone descends e^{-2h}/2 ever more slowly: below tol, still going at the cap
    # (1% per 500 steps is not a stall), or stalled; never a root
    allowed = (rnndyn.Status.SLOW_POINT, rnndyn.Status.STALLED, rnndyn.Status.MAX_STEPS)
    assert all(s in allowed for s in _statuses(fps))


def test_a_uniform_slow_drift_is_a_plateau_of_slow_points_without_roots():
    # F(h) = h + 1e-5: q = 2·(1e-5)²/2 = 1e-10 < tol everywhere, J - I = 0, no root
    cell = cells.from_function(lambda p, h, x: h + 1e-5, state_size=2)
    h0 = jax.random.uniform(jax.random.key(0), (16, 2), minval=-1, maxval=1)
    fps = rnndyn.find_fixed_points(cell, {}, jnp.zeros(1), h0)
    assert _statuses(fps) == [rnndyn.Status.SLOW_POINT] * 16
    np.testing.assert_allclose(fps.certificate, 1e-10, rtol=1e-3)
    np.testing.assert_array_equal(fps.sigma_min, 0.0)
    np.testing.assert_array_equal(fps.points, h0)  # q < tol at the start: nothing moves


def test_an_exact_line_attractor_is_a_continuum():
    # A = [[3, 1], [1, 3]] / 4 (exact in binary): eigenvalue 1 along (1, 1), 1/2 along
    # (1, -1); every multiple of (1, 1) is a root
    a = jnp.array([[0.75, 0.25], [0.25, 0.75]])
    cell = cells.from_function(lambda p, h, x: a @ h, state_size=2)
    h0 = jax.random.uniform(jax.random.key(0), (32, 2), minval=-1, maxval=1)
    fps = rnndyn.find_fixed_points(cell, {}, jnp.zeros(1), h0, tol=1e-12)
    assert _statuses(fps) == [rnndyn.Status.CONTINUUM] * 32
    pts = np.asarray(fps.points)
    np.testing.assert_allclose(pts[:, 0], pts[:, 1], atol=1e-6)
    # each start relaxes along the fast direction only: it keeps its (1, 1) coordinate
    np.testing.assert_allclose(pts.sum(1), np.asarray(h0).sum(1), atol=1e-4)
    np.testing.assert_allclose(fps.sigma_min, 0.0, atol=1e-7)


def test_a_near_line_attractor_has_one_root_and_a_line_of_slow_points():
    # F(h) = A (h - h*) + h* with eigenvalues 1 - 1e-4 (along u) and 1/2: a single root h*,
    # and q = ½ (1e-4 t)² < tol = 1e-8 for |t| < 1.4 along the line h* + t u
    u = np.array([0.6, 0.8])
    a = jnp.asarray((1 - 1e-4) * np.outer(u, u) + 0.5 * np.outer([0.8, -0.6], [0.8, -0.6]))
    root = jnp.array([0.2, -0.1])
    cell = cells.from_function(lambda p, h, x: a @ (h - root) + root, state_size=2)
    t = np.linspace(-0.5, 0.5, 21)
    h0 = jnp.concatenate([root[None] + 1e-5, jnp.asarray(root + np.outer(t, u), jnp.float32)])
    fps = rnndyn.find_fixed_points(cell, {}, jnp.zeros(1), h0, tol=1e-8)
    status = np.asarray(fps.status)
    dist = np.linalg.norm(np.asarray(fps.points) - np.asarray(root), axis=1)
    assert status[0] == rnndyn.Status.ROOT  # started on the root: not a continuum
    assert not np.any(status == rnndyn.Status.CONTINUUM)
    assert np.all(dist[np.asarray(fps.root)] < 1e-3)  # no reported root is false
    assert np.all(status[dist > 1e-3] == rnndyn.Status.SLOW_POINT)
    assert np.ptp(np.asarray(fps.keep_slow().points) @ u) > 0.9  # the line is kept
    np.testing.assert_allclose(fps.sigma_min, 1e-4, rtol=1e-2)


def _face_cell(gain: float):
    """1-D ``F(h) = z h + (1 - z)(-0.5)``, ``z = σ(gain h)``, in the box [-1, 1]: one root
    at -0.5; for h > 0 the gate saturates and q falls towards the face h = 1 (and on
    beyond it, where the cell's state cannot go)."""

    def f(p, h, x):
        z = jax.nn.sigmoid(gain * h)
        return z * h + (1.0 - z) * (-0.5)

    return cells.from_function(f, state_size=1, bounds=(-1.0, 1.0))


@pytest.mark.slow
def test_a_saturated_face_of_the_box_is_outside_or_slow_never_a_root():
    h0 = jnp.linspace(-0.9, 0.9, 7)[:, None]
    # gain 5: q(1) = ½ (0.0067·1.5)² = 5e-5 > tol: descent from h > 0 pins at the face
    fps = rnndyn.find_fixed_points(_face_cell(5.0), {}, jnp.zeros(1), h0)
    status, pts = np.asarray(fps.status), np.asarray(fps.points[:, 0])
    np.testing.assert_array_equal(status[:3], rnndyn.Status.ROOT)
    np.testing.assert_allclose(pts[:3], -0.5, atol=1e-6)
    np.testing.assert_array_equal(status[-3:], rnndyn.Status.OUTSIDE)
    np.testing.assert_array_equal(pts[-3:], 1.0)
    # gain 10: q(1) = 2.3e-9 < tol: a slow point on the face; the root its Newton step
    # points to (0.1 beyond the face) is not in the box, so it is not a root
    fps = rnndyn.find_fixed_points(_face_cell(10.0), {}, jnp.zeros(1), h0)
    status, pts = np.asarray(fps.status), np.asarray(fps.points[:, 0])
    np.testing.assert_allclose(pts[np.asarray(fps.root)], -0.5, atol=1e-6)
    np.testing.assert_array_equal(status[-3:], rnndyn.Status.SLOW_POINT)
    np.testing.assert_array_equal(pts[-3:], 1.0)


def test_float32_artefacts_are_labelled_and_not_slow_points():
    # F(h) = h + 1e-4 at h ~ 1e4: float32's spacing there is 1e-3, so F(h) = h exactly in
    # float32 (q = 0), while in float64 q = 2·(1e-4)²/2 = 1e-8 > tol
    cell = cells.from_function(lambda p, h, x: h + 1e-4, state_size=2)
    h0 = jnp.full((3, 2), 1e4) + jnp.arange(3.0)[:, None]
    fps = rnndyn.find_fixed_points(cell, {}, jnp.zeros(1), h0, tol=1e-10)
    np.testing.assert_array_equal(fps.speeds, 0.0)
    assert _statuses(fps) == [rnndyn.Status.ARTEFACT] * 3
    np.testing.assert_allclose(fps.certificate, 1e-8, rtol=1e-3)
    assert not np.any(np.asarray(fps.slow))


def test_without_a_certificate_nothing_is_called_a_root():
    cell, params = tanh_cell(2.0)
    h0 = jnp.array([[0.5], [0.8], [-0.7]])
    fps = rnndyn.find_fixed_points(cell, params, jnp.zeros(1), h0, certify=False)
    assert _statuses(fps) == [rnndyn.Status.SLOW_POINT] * 3
    assert "no float64 certificate ran" in fps.describe()


def _gru_residual64(params, h):
    """``‖F(h) − h‖`` per row for ``rnndyn.GRU`` at ``x = 0``, in float64 numpy from the
    torch-style equations (gates ``[r, z, n]``, ``b_hn`` inside ``r``)."""
    p = {k: np.asarray(v, np.float64) for k, v in params.items()}
    h = np.asarray(h, np.float64)
    n = h.shape[1]
    sig = lambda a: 1 / (1 + np.exp(-a))  # noqa: E731
    gh = h @ p["W_h"]
    r = sig(p["b"][:n] + gh[:, :n])
    z = sig(p["b"][n : 2 * n] + gh[:, n : 2 * n])
    cand = np.tanh(p["b"][2 * n :] + r * (gh[:, 2 * n :] + p["b_hn"]))
    new = (1 - z) * cand + z * h
    return np.linalg.norm(new - h, axis=1)


@pytest.mark.slow
def test_no_root_outside_the_gru_box():
    # the example: saturated gates make F(h) = h hold in float32 far outside
    # [-1, 1]^N; the search stays in the box and certifies what it calls a root
    cell = rnndyn.GRU(4)
    params = cell.init(jax.random.key(1), 3)
    params["W_h"] = params["W_h"] * 2.5
    for lr in (1e-2, 1e6):
        fps = rnndyn.find_fixed_points(
            cell, params, jnp.zeros(3), key=jax.random.key(1), num_initial=64, learning_rate=lr
        )
        pts = np.asarray(fps.points)
        conv = np.asarray(fps.root)
        assert conv.any()
        assert np.all(np.abs(pts[conv]) <= 1.0)
        # every certified root is a root of the map evaluated here in float64 numpy (not
        # the certificate's own number): a GRU step written out from its equations
        assert np.all(0.5 * _gru_residual64(params, pts[conv]) ** 2 < 1e-8)  # q < tol


def test_lstm_bounds_hold_h_but_not_c():
    lo, hi = rnndyn.LSTM(3).state_bounds()
    np.testing.assert_array_equal(np.asarray(hi), [1, 1, 1, np.inf, np.inf, np.inf])
    np.testing.assert_array_equal(np.asarray(lo), -np.asarray(hi))
    with pytest.raises(ValueError, match="bounds"):
        cells.from_function(lambda p, h, x: h, state_size=2, bounds=(1.0, -1.0))


def test_deflation_reseeds_from_unstable_roots():
    # all candidates start on the unstable root 0 of h = tanh(2h): the first round finds
    # only 0; reseeding along its unstable direction finds ±r
    cell, params = tanh_cell(2.0)
    h0 = jnp.zeros((8, 1))
    plain = rnndyn.find_fixed_points(cell, params, jnp.zeros(1), h0, deflation_rounds=0)
    assert len(plain.keep_roots().merge_duplicates(1e-3)) == 1
    fps = rnndyn.find_fixed_points(cell, params, jnp.zeros(1), h0, deflation_rounds=2)
    found = np.sort(np.asarray(fps.keep_roots().merge_duplicates(1e-3).points[:, 0]))
    np.testing.assert_allclose(found, tanh_roots(2.0), atol=1e-5)
    assert fps.stats["new_roots_round_1"] == 2


def ring_cell(dt: float = 0.1):
    """2-D ``h' = h + dt·h·(1 − |h|²)``: a ring of fixed points and an isolated origin."""
    return cells.from_function(lambda p, h, x: h + dt * h * (1.0 - jnp.sum(h * h)), state_size=2)


@pytest.mark.slow
def test_ring_is_a_continuum_and_drop_outliers_keeps_the_origin():
    angles = jnp.linspace(0, 2 * jnp.pi, 64, endpoint=False)
    ring_starts = 1.2 * jnp.stack([jnp.cos(angles), jnp.sin(angles)], 1)
    h0 = jnp.concatenate([ring_starts, jnp.array([[0.1, 0.05], [-0.05, 0.1]])])
    # no deflation: it would push the duplicate at the origin onto the ring
    fps = rnndyn.find_fixed_points(ring_cell(), {}, jnp.zeros(1), h0, deflation_rounds=0)
    status = np.asarray(fps.status)
    radius = np.linalg.norm(np.asarray(fps.points), axis=1)
    assert np.all(status[:64] == rnndyn.Status.CONTINUUM)
    np.testing.assert_allclose(radius[:64], 1.0, atol=1e-4)
    assert np.all(status[64:] == rnndyn.Status.ROOT)  # σ_min(J − I) = dt at 0
    np.testing.assert_allclose(radius[64:], 0.0, atol=1e-5)
    # before merging (duplicates of the origin) and after: the origin stays
    for fp in (fps, fps.merge_duplicates(1e-3)):
        kept = fp.drop_outliers(factor=3.0)
        assert np.min(np.linalg.norm(np.asarray(kept.points), axis=1)) < 1e-5
    # a stray non-root (status unknown) far from the ring is dropped
    stray = _result(np.concatenate([np.asarray(fps.points[:64]), [[5.0, 5.0]]]), [0.0] * 65)
    assert len(stray.drop_outliers(factor=3.0)) == 64


@pytest.mark.slow
def test_chunked_search_equals_unchunked():
    cell = rnndyn.GRU(8)
    params = cell.init(jax.random.key(3), 2)
    params["W_h"] = params["W_h"] * 3.0
    h0 = jax.random.uniform(jax.random.key(4), (40, 8), minval=-1, maxval=1)
    # no deflation round: it is one more search of each kind, chunked the same way
    whole = rnndyn.find_fixed_points(cell, params, jnp.zeros(2), h0, deflation_rounds=0)
    chunked = rnndyn.find_fixed_points(
        cell, params, jnp.zeros(2), h0, batch_size=16, deflation_rounds=0
    )
    np.testing.assert_array_equal(np.asarray(whole.status), np.asarray(chunked.status))
    np.testing.assert_allclose(whole.points, chunked.points, atol=1e-6)


def test_float64_params_with_float32_states():
    with jax.enable_x64(True):
        cell, params = tanh_cell(2.0)
        params = jax.tree_util.tree_map(lambda a: a.astype(jnp.float64), params)
        h0 = jnp.array([[0.9], [-0.8]], jnp.float32)
        fps = rnndyn.find_fixed_points(cell, params, jnp.zeros(1, jnp.float32), h0)
        assert fps.points.dtype == jnp.float64  # promoted to the params' precision
        np.testing.assert_allclose(np.abs(fps.points[:, 0]), tanh_roots(2.0)[2], atol=1e-10)


def test_tolerances_and_equal_optimisers_do_not_recompile():
    traces = []

    def fn(p, h, x):
        traces.append(1)  # runs only while JAX traces (compiles) the search
        return jnp.tanh(2.0 * h)

    cell = cells.from_function(fn, state_size=1)
    h0 = jnp.array([[0.9], [-0.7]])
    kw = dict(certify=False, deflation_rounds=0)
    rnndyn.find_fixed_points(cell, {}, jnp.zeros(1), h0, tol=1e-8, **kw)
    first = len(traces)
    rnndyn.find_fixed_points(cell, {}, jnp.zeros(1), h0, tol=1e-10, learning_rate=0.05, **kw)
    assert len(traces) == first
    for _ in range(2):
        rnndyn.find_fixed_points(cell, {}, jnp.zeros(1), h0, optimizer=optax.sgd(0.1), **kw)
    second = len(traces)
    assert second > first  # a different optimiser compiles once ...
    rnndyn.find_fixed_points(cell, {}, jnp.zeros(1), h0, optimizer=optax.sgd(0.1), **kw)
    assert len(traces) == second  # ... and an equal one reuses it


MULTI_DEVICE = """
import jax, jax.numpy as jnp, numpy as np, rnndyn
assert jax.local_device_count() == 4
cell = rnndyn.GRU(6)
params = cell.init(jax.random.key(0), 2)
params["W_h"] = params["W_h"] * 3.0
h0 = jax.random.uniform(jax.random.key(1), (30, 6), minval=-1, maxval=1)
fps = rnndyn.find_fixed_points(cell, params, jnp.zeros(2), h0, batch_size=12)
# on CPU the search shards over one device fewer than there are (see _num_shards)
assert len(fps.points.sharding.device_set) == 3, fps.points.sharding
np.savez(OUT, points=np.asarray(fps.points), status=np.asarray(fps.status))
"""


def _on_four_devices(script: str, out, timeout: int, **env) -> dict:
    """Run ``script`` (which saves its arrays to ``OUT``) in a new process with 4 forced
    host devices; its saved arrays. The timeout turns a hang into a failure."""
    import os
    import subprocess
    import sys

    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4",
               JAX_PLATFORMS="cpu", **env)  # fmt: skip
    code = script.replace("OUT", repr(str(out)))
    subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=timeout)
    return dict(np.load(out))


@pytest.mark.slow
def test_multi_device_sharding_matches_one_device(tmp_path):
    multi = _on_four_devices(MULTI_DEVICE, tmp_path / "multi.npz", timeout=300)
    cell = rnndyn.GRU(6)
    params = cell.init(jax.random.key(0), 2)
    params["W_h"] = params["W_h"] * 3.0
    h0 = jax.random.uniform(jax.random.key(1), (30, 6), minval=-1, maxval=1)
    one = rnndyn.find_fixed_points(cell, params, jnp.zeros(2), h0, batch_size=12)
    status = np.asarray(one.status)
    np.testing.assert_array_equal(multi["status"], status)
    # roots agree to float32 precision; the float32 path of a non-root can shift by ~1e-5
    # with the batch shape, sharded or chunked alike (row 19, held on the box's faces,
    # moves by 2.5e-5 between batch_size=4 and 12 on one device)
    roots = np.isin(status, [rnndyn.Status.ROOT, rnndyn.Status.CONTINUUM])
    points = np.asarray(one.points)
    np.testing.assert_allclose(multi["points"][roots], points[roots], atol=1e-5)
    np.testing.assert_allclose(multi["points"], points, atol=1e-4)


SHARDED_SOLVES = """
import jax, jax.numpy as jnp, numpy as np, rnndyn
assert jax.local_device_count() == 4
cell = rnndyn.GRU(32)
params = cell.init(jax.random.key(0), 2)
params["W_h"] = params["W_h"] * 3.0
h0 = jax.random.uniform(jax.random.key(1), (512, 32), minval=-1, maxval=1)
fps = rnndyn.find_fixed_points(cell, params, jnp.zeros(2), h0, deflation_rounds=0)
assert len(fps.points.sharding.device_set) > 1, fps.points.sharding
np.savez(OUT, points=np.asarray(fps.points), status=np.asarray(fps.status))
"""


@pytest.mark.slow
def test_sharded_second_order_phase_does_not_hang(tmp_path):
    """512 starts of a GRU(32): each device's Levenberg-Marquardt solves are batched
    LAPACK calls big enough for jaxlib to split over XLA:CPU's intra-op thread pool, parking
    the calling pool thread meanwhile. Sharded over all 4 devices, the 4 programs parked
    the whole pool and the search hung at 0% CPU. ``PJRT_NPROC=1`` sizes the pool as on a
    machine with at most 4 cores (``max(cores, devices)`` = 4 threads), so this hung on any
    machine before the fix; the timeout turns a hang into a failure."""
    sharded = _on_four_devices(SHARDED_SOLVES, tmp_path / "sharded.npz", timeout=240,
                               PJRT_NPROC="1")  # fmt: skip
    cell = rnndyn.GRU(32)
    params = cell.init(jax.random.key(0), 2)
    params["W_h"] = params["W_h"] * 3.0
    h0 = jax.random.uniform(jax.random.key(1), (512, 32), minval=-1, maxval=1)
    one = rnndyn.find_fixed_points(cell, params, jnp.zeros(2), h0, deflation_rounds=0)
    status = np.asarray(one.status)
    assert np.unique(status).size > 2  # roots, slow points and more: every ending compared
    np.testing.assert_array_equal(sharded["status"], status)
    np.testing.assert_allclose(sharded["points"], np.asarray(one.points), atol=1e-5)


@pytest.mark.parametrize("polish_steps, scale, every", [(0, 1.5, 100), (50, 3.0, 10)])
def test_finished_rows_leave_the_batch_without_changing_any_path(
    monkeypatch, capsys, polish_steps, scale, every
):
    """On one device the search drops finished candidates once half of the batch is done
    (run._search_chunk); every candidate must end where the uncompacted search ends."""
    cell = rnndyn.GRU(8)
    params = cell.init(jax.random.key(3), 2)
    params["W_h"] = params["W_h"] * scale  # steps to the end spread over 250-2,000 / 10-60
    h0 = jax.random.uniform(jax.random.key(4), (96, 8), minval=-1, maxval=1)
    kw = dict(polish_steps=polish_steps, deflation_rounds=0, max_steps=2000, verbose=True,
              log_every=3 * every // 2)  # fmt: skip
    monkeypatch.setattr(fp_run, "_MIN_ROWS", 10**9)
    whole = rnndyn.find_fixed_points(cell, params, jnp.zeros(2), h0, **kw)
    progress = capsys.readouterr().err
    taken = []
    monkeypatch.setattr(fp_run, "_MIN_ROWS", 4)
    monkeypatch.setattr(fp_run, "_COMPACT_EVERY", every)
    take = fp_run._take_rows
    monkeypatch.setattr(
        fp_run, "_take_rows", lambda s, pick: taken.append(len(pick)) or take(s, pick)
    )
    shed = rnndyn.find_fixed_points(cell, params, jnp.zeros(2), h0, **kw)
    assert len(taken) >= 2 and min(taken) < 24  # the batch did shrink, more than once
    np.testing.assert_array_equal(np.asarray(whole.status), np.asarray(shed.status))
    np.testing.assert_array_equal(np.asarray(whole.steps), np.asarray(shed.steps))
    np.testing.assert_allclose(whole.points, shed.points, atol=1e-6)
    np.testing.assert_allclose(whole.speeds, shed.speeds, rtol=1e-4, atol=1e-12)
    # the progress lines count every candidate, those that left the batch too
    lines = [line for line in progress.splitlines() if "iteration" in line]
    assert len(lines) >= 3
    assert [line for line in capsys.readouterr().err.splitlines() if "iteration" in line] == lines


def test_per_candidate_inputs_match_searches_with_one_shared_input():
    """A shared input enters the search unbatched (search.Problem.per_row); per-candidate
    inputs must give the same points as one search per input."""
    cell = rnndyn.GRU(6)
    params = cell.init(jax.random.key(5), 3)
    params["W_h"] = params["W_h"] * 2.0
    h0 = jax.random.uniform(jax.random.key(6), (24, 6), minval=-1, maxval=1)
    xa, xb = jnp.array([0.3, -0.2, 0.1]), jnp.array([-0.5, 0.4, 0.0])
    kw = dict(deflation_rounds=0)
    mixed = rnndyn.find_fixed_points(
        cell, params, jnp.concatenate([jnp.tile(xa, (12, 1)), jnp.tile(xb, (12, 1))]), h0, **kw
    )
    a = rnndyn.find_fixed_points(cell, params, xa, h0[:12], **kw)
    b = rnndyn.find_fixed_points(cell, params, xb, h0[12:], **kw)
    np.testing.assert_array_equal(
        np.asarray(mixed.status), np.concatenate([np.asarray(a.status), np.asarray(b.status)])
    )
    roots = np.asarray(mixed.root)
    assert roots[:12].any() and roots[12:].any()
    # roots agree to float32 precision; a slow point's float32 path can move by ~1e-4 with
    # the shape of the arithmetic (as between chunk sizes or devices)
    separate = np.concatenate([a.points, b.points])
    np.testing.assert_allclose(np.asarray(mixed.points)[roots], separate[roots], atol=1e-5)
    np.testing.assert_allclose(mixed.points, separate, atol=1e-3)
    step = jax.vmap(cell, (None, 0, 0))(params, mixed.points, mixed.inputs)
    assert np.abs(np.asarray(step - mixed.points)[roots]).max() < 1e-5
