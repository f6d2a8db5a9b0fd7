import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import rnndyn
from rnndyn import cells, linearize
from rnndyn.linearize import _eig_host

N, M = 4, 3


@pytest.mark.parametrize("cls", [cells.Vanilla, cells.GRU, cells.LSTM, cells.UGRNN])
def test_jacobians_match_central_finite_differences(cls):
    with jax.enable_x64(True):
        cell = cls(N)
        params = jax.tree_util.tree_map(
            lambda a: jnp.asarray(a, jnp.float64), cell.init(jax.random.key(0), M)
        )
        params["b"] = 0.3 * jax.random.normal(jax.random.key(9), params["b"].shape, jnp.float64)
        pts = 0.5 * jax.random.normal(jax.random.key(1), (3, cell.state_size), jnp.float64)
        xs = jax.random.normal(jax.random.key(2), (3, M), jnp.float64)
        j_rec, j_inp = rnndyn.jacobians(cell, params, pts, xs)
        assert j_rec.shape == (3, cell.state_size, cell.state_size)
        assert j_inp.shape == (3, cell.state_size, M)
        eps = 1e-6
        f = lambda h, x: np.asarray(cell(params, h, x))  # noqa: E731
        for k in range(3):
            h, x = pts[k], xs[k]
            fd_rec = np.stack(
                [(f(h + eps * e, x) - f(h - eps * e, x)) / (2 * eps) for e in jnp.eye(h.size)],
                axis=1,
            )
            fd_inp = np.stack(
                [(f(h, x + eps * e) - f(h, x - eps * e)) / (2 * eps) for e in jnp.eye(M)],
                axis=1,
            )
            np.testing.assert_allclose(j_rec[k], fd_rec, atol=1e-8)
            np.testing.assert_allclose(j_inp[k], fd_inp, atol=1e-8)


def test_jacobians_of_one_point_and_shared_input():
    cell = cells.GRU(N)
    params = cell.init(jax.random.key(0), M)
    j_rec, j_inp = rnndyn.jacobians(cell, params, jnp.zeros(N), jnp.zeros(M))
    assert j_rec.shape == (N, N) and j_inp.shape == (N, M)
    # at h = 0, x = 0 with zero biases: r = z = 1/2, so J_rec = ½ W_hn ⊙ ... + ½ I
    w_hn = np.asarray(params["W_h"][:, 2 * N :])
    np.testing.assert_allclose(j_rec, 0.5 * np.eye(N) + 0.25 * w_hn.T, atol=1e-6)
    with pytest.raises(ValueError, match="points have size 5 but GRU has state_size 4"):
        rnndyn.jacobians(cell, params, jnp.zeros((3, 5)), jnp.zeros(M))
    with pytest.raises(ValueError, match="inputs has 2 rows"):
        rnndyn.jacobians(cell, params, jnp.zeros((3, N)), jnp.zeros((2, M)))


def test_eig_known_matrix_sorted_with_biorthogonal_vectors():
    theta, r = 0.3, 0.9
    rot = r * np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    j = np.zeros((4, 4), np.float32)
    j[:2, :2] = rot
    j[2, 2], j[3, 3] = 0.99, -0.2
    basis = np.array([[1, 0.2, 0, 0], [0, 1, 0.3, 0], [0.1, 0, 1, 0], [0, 0, 0.4, 1]], np.float32)
    a = basis @ j @ np.linalg.inv(basis)
    e = rnndyn.eig(a)
    np.testing.assert_allclose(np.abs(e.values), [0.99, 0.9, 0.9, 0.2], atol=1e-5)
    np.testing.assert_allclose(np.sort(np.angle(e.values[1:3])), [-theta, theta], atol=1e-5)
    np.testing.assert_allclose(e.left @ e.right, np.eye(4), atol=1e-5)
    np.testing.assert_allclose(e.right @ np.diag(e.values) @ e.left, a, atol=1e-5)
    # left eigenvectors: l J = λ l
    np.testing.assert_allclose(e.left @ a, np.diag(e.values) @ e.left, atol=1e-5)


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.sampled_from([1, 2, 5, 12]))  # few shapes: compiles
def test_eig_reconstructs_random_batches(seed, n):
    j = np.random.default_rng(seed).normal(size=(3, n, n)).astype(np.float32)
    e = rnndyn.eig(j)
    recon = e.right @ (e.values[..., None] * e.left)
    np.testing.assert_allclose(recon, j, atol=2e-4 * n)
    mod = np.abs(np.asarray(e.values))
    assert np.all(np.diff(mod, axis=-1) <= 1e-6)


def test_eig_host_path_agrees_and_works_under_jit():
    j = np.random.default_rng(0).normal(size=(5, 6, 6)).astype(np.float32)
    w_dev, _ = jnp.linalg.eig(j)
    w_host, v_host = jax.jit(_eig_host)(j)
    key = lambda w: np.sort_complex(np.round(np.asarray(w), 4))  # noqa: E731
    for a, b in zip(w_dev, w_host, strict=True):
        np.testing.assert_allclose(key(a), key(b), atol=1e-3)
    np.testing.assert_allclose(v_host @ (w_host[..., None] * np.linalg.inv(v_host)), j, atol=1e-4)
    # also vmappable through the callback
    w_vm, _ = jax.vmap(_eig_host)(j)
    np.testing.assert_allclose(np.abs(w_vm), np.abs(w_host), atol=1e-5)


def test_eig_errors():
    with pytest.raises(ValueError, match=r"square with shape \(\.\.\., S, S\), got shape \(2, 3\)"):
        rnndyn.eig(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="non-finite"):
        rnndyn.eig(np.full((2, 2), np.nan))


def test_time_constants_analytic():
    tau = np.array([1.0, 10.0, 1000.0])
    lam = np.exp(-1.0 / tau)
    np.testing.assert_allclose(rnndyn.time_constants(lam), tau, rtol=1e-4)
    np.testing.assert_allclose(rnndyn.time_constants(-lam * 1j), tau, rtol=1e-4)
    assert np.isinf(rnndyn.time_constants(jnp.array([1.0])))[0]
    # unstable modes grow on the same time scale
    np.testing.assert_allclose(rnndyn.time_constants(jnp.array([np.e])), [1.0], rtol=1e-6)


@pytest.mark.slow
def test_linear_simulation_exact_for_linear_cell_and_close_for_gru():
    a = jnp.array([[0.5, 0.1], [0.0, 0.8]])
    b = jnp.array([[1.0], [-1.0]])
    lin = cells.from_function(lambda p, h, x: a @ h + b @ x, state_size=2)
    xs = jax.random.normal(jax.random.key(0), (20, 1))
    j_rec, j_inp = rnndyn.jacobians(lin, {}, jnp.zeros(2), jnp.zeros(1))
    sim = rnndyn.simulate_linear(j_rec, j_inp, jnp.zeros(2), jnp.zeros(1), jnp.ones(2), xs)
    h, full = jnp.ones(2), []
    for x in xs:
        h = lin({}, h, x)
        full.append(h)
    np.testing.assert_allclose(sim, jnp.stack(full), atol=1e-5)

    # GRU around its fixed point: error shrinks quadratically with the input size
    cell = cells.GRU(8)
    params = cell.init(jax.random.key(1), 2)
    fps = rnndyn.find_fixed_points(cell, params, jnp.zeros(2), jnp.zeros((1, 8)))
    h_star = fps.points[0]
    j_rec, j_inp = rnndyn.jacobians(cell, params, h_star, jnp.zeros(2))
    errs = []
    for scale in (1e-2, 1e-3):
        us = scale * jax.random.normal(jax.random.key(2), (10, 2))
        sim = rnndyn.simulate_linear(j_rec, j_inp, h_star, jnp.zeros(2), h_star, us)
        h, full = h_star, []
        for u in us:
            h = cell(params, h, u)
            full.append(h)
        errs.append(float(jnp.abs(sim - jnp.stack(full)).max()))
    assert errs[1] < errs[0] / 30  # O(ε²): a tenfold smaller input, ~100x smaller error
    with pytest.raises(ValueError, match="j_rec has shape"):
        rnndyn.simulate_linear(j_rec[:2], j_inp, h_star, jnp.zeros(2), h_star, us)


def _affine_cell():
    a = jnp.array([[0.5, 0.1], [0.0, 0.8]])
    b = jnp.array([[1.0], [-1.0]])
    return cells.from_function(lambda p, h, x: a @ h + b @ x, state_size=2)


def test_run_linearized_is_exact_for_an_affine_cell_and_holds_padding():
    cell = _affine_cell()
    lin = rnndyn.linearization(cell, {}, jnp.zeros((1, 2)), jnp.zeros(1))
    xs = jax.random.normal(jax.random.key(0), (3, 7, 1))
    mask = jnp.arange(7)[None, :] < jnp.array([[7], [4], [1]])
    h0 = jnp.array([[1.0, -1.0], [0.5, 0.5], [0.0, 2.0]])
    for switch in ("initial", "nearest"):
        hs = rnndyn.run_linearized(lin, h0, xs, mask, switch=switch)
        assert hs.shape == (3, 7, 2)
        for i in range(3):
            h = h0[i]
            for t in range(7):
                if mask[i, t]:
                    h = cell({}, h, xs[i, t])
                np.testing.assert_allclose(hs[i, t], h, atol=1e-5)


def test_run_linearized_switches_to_the_nearest_point():
    # 1-D piecewise-linear system: slow map around +1, fast map around -1.
    lin = rnndyn.Linearization(
        points=jnp.array([[-1.0], [1.0]]),
        inputs=jnp.zeros((2, 1)),
        j_rec=jnp.array([[[0.2]], [[0.9]]]),
        j_inp=jnp.array([[[1.0]], [[2.0]]]),
    )
    xs = jnp.array([[[0.3], [0.5], [-1.5], [-0.4], [0.1], [0.9]]])
    h0 = jnp.array([0.8])
    pts, a, b = [-1.0, 1.0], [0.2, 0.9], [1.0, 2.0]
    h, want_nearest = 0.8, []
    for x in np.asarray(xs[0, :, 0]):
        k = int(np.argmin([abs(h - p) for p in pts]))
        h = pts[k] + a[k] * (h - pts[k]) + b[k] * x
        want_nearest.append(h)
    h, want_initial = 0.8, []
    for x in np.asarray(xs[0, :, 0]):  # h0 = 0.8 is nearest +1 and stays on that map
        h = 1.0 + 0.9 * (h - 1.0) + 2.0 * x
        want_initial.append(h)
    assert len({np.sign(v) for v in want_nearest}) == 2  # the path crosses between maps
    got = rnndyn.run_linearized(lin, h0, xs, switch="nearest")[0, :, 0]
    np.testing.assert_allclose(got, want_nearest, rtol=1e-6)
    got = rnndyn.run_linearized(lin, h0, xs, switch="initial")[0, :, 0]
    np.testing.assert_allclose(got, want_initial, rtol=1e-6)
    np.testing.assert_array_equal(
        rnndyn.linearize.nearest_point(lin.points, jnp.array([[0.1], [-3.0]])), [1, 0]
    )


def _central_differences(f, h, x, eps=1e-6):
    """``(∂f/∂h, ∂f/∂x)`` of ``f(h, x)`` by central differences (float64 numpy)."""
    d_h = [(f(h + eps * e, x) - f(h - eps * e, x)) / (2 * eps) for e in np.eye(h.size)]
    d_x = [(f(h, x + eps * e) - f(h, x - eps * e)) / (2 * eps) for e in np.eye(x.size)]
    return np.stack(d_h, axis=1), np.stack(d_x, axis=1)


def test_linearization_matches_finite_differences_and_checks_arguments():
    cell = cells.GRU(N)
    params = cell.init(jax.random.key(0), M)
    pts = 0.3 * jax.random.normal(jax.random.key(1), (5, N))
    x_star = jnp.asarray([0.2, -0.1, 0.4])
    lin = rnndyn.linearization(cell, params, pts, x_star)
    assert lin.inputs.shape == (5, M)
    np.testing.assert_array_equal(lin.points, pts)
    np.testing.assert_array_equal(lin.inputs, np.broadcast_to(x_star, (5, M)))
    # the Jacobians against central differences of the cell in float64 (not against
    # rnndyn.jacobians, which linearization calls)
    with jax.enable_x64(True):
        p64 = jax.tree_util.tree_map(lambda a: jnp.asarray(np.asarray(a), jnp.float64), params)
        f = lambda h, x: np.asarray(cell(p64, jnp.asarray(h), jnp.asarray(x)))  # noqa: E731
        for k in range(5):
            fd_rec, fd_inp = _central_differences(
                f, np.asarray(pts[k], np.float64), np.asarray(x_star, np.float64)
            )
            np.testing.assert_allclose(lin.j_rec[k], fd_rec, atol=1e-5)
            np.testing.assert_allclose(lin.j_inp[k], fd_inp, atol=1e-5)
    with pytest.raises(ValueError, match="points must have 2 dimension"):
        rnndyn.linearization(cell, params, pts[0], jnp.zeros(M))
    xs = jnp.zeros((2, 3, M))
    with pytest.raises(ValueError, match="switch must be"):
        rnndyn.run_linearized(lin, jnp.zeros(N), xs, switch="closest")
    with pytest.raises(ValueError, match=r"xs has shape \(2, 3, 4\); expected \(B, T, 3\)"):
        rnndyn.run_linearized(lin, jnp.zeros(N), jnp.zeros((2, 3, 4)))
    with pytest.raises(ValueError, match="state0 has shape"):
        rnndyn.run_linearized(lin, jnp.zeros(N + 1), xs)
    with pytest.raises(ValueError, match="mask has shape"):
        rnndyn.run_linearized(lin, jnp.zeros(N), xs, jnp.ones((2, 4), bool))


@settings(max_examples=12, deadline=None)
@given(
    # a few shapes (each compiles), the edge cases among them; the values vary freely
    shape=st.sampled_from([(1, 1, 1), (2, 3, 6), (4, 2, 4)]),
    seed=st.integers(0, 2**31 - 1),
)
def test_run_linearized_matches_a_reference_loop(shape, seed):
    k, s, t = shape
    rng = np.random.default_rng(seed)
    lin = rnndyn.Linearization(
        points=jnp.asarray(rng.standard_normal((k, s))),
        inputs=jnp.asarray(rng.standard_normal((k, 2))),
        j_rec=jnp.asarray(0.5 * rng.standard_normal((k, s, s))),
        j_inp=jnp.asarray(rng.standard_normal((k, s, 2))),
    )
    xs = rng.standard_normal((2, t, 2))
    mask = rng.random((2, t)) < 0.7
    h0 = rng.standard_normal((2, s))
    pts, ins = np.asarray(lin.points), np.asarray(lin.inputs)
    a, b = np.asarray(lin.j_rec), np.asarray(lin.j_inp)
    for switch in ("initial", "nearest"):
        got = np.asarray(rnndyn.run_linearized(lin, h0, xs, mask, switch=switch))
        for i in range(2):
            h = h0[i].astype(np.float32)
            first = int(np.argmin(((pts - h) ** 2).sum(1)))
            for j in range(t):
                if mask[i, j]:
                    c = first if switch == "initial" else int(np.argmin(((pts - h) ** 2).sum(1)))
                    h = pts[c] + a[c] @ (h - pts[c]) + b[c] @ (xs[i, j] - ins[c])
                np.testing.assert_allclose(got[i, j], h, rtol=1e-4, atol=1e-4)


# ---------------------------------------------------------- mode order and real modes


def _known_matrix(seed=0):
    """4x4 J with eigenvalues {0.99, 0.9 e^{±0.5i}, 0.3}, built from a real block form
    ``J = B diag(0.99, rot, 0.3) B^{-1}`` so that the invariant subspaces are known:
    B[:, :1] (the real slow mode), B[:, 1:3] (the rotation plane), B[:, 3:] (fast)."""
    rng = np.random.default_rng(seed)
    b = rng.standard_normal((4, 4))
    a, w = 0.9 * np.cos(0.5), 0.9 * np.sin(0.5)
    blocks = np.zeros((4, 4))
    blocks[0, 0], blocks[3, 3] = 0.99, 0.3
    blocks[1:3, 1:3] = [[a, w], [-w, a]]
    return b @ blocks @ np.linalg.inv(b), b


def test_real_modes_close_the_conjugate_pair_and_give_the_exact_projector():
    from rnndyn import words

    j, b = _known_matrix()
    eg = linearize.eig(jnp.asarray(j, jnp.float32))
    eg = linearize.sort_modes(eg, linearize.mode_order(eg.values))
    np.testing.assert_allclose(np.abs(eg.values), [0.99, 0.9, 0.9, 0.3], rtol=1e-5)
    modes = linearize.real_modes(eg, 2)  # the cut at 2 would split the pair: 3 columns
    assert modes.right.shape == (4, 3) and modes.left.shape == (3, 4)
    np.testing.assert_allclose(modes.left @ modes.right, np.eye(3), atol=1e-4)
    np.testing.assert_allclose(j @ modes.right, modes.right @ modes.block, atol=1e-4)
    block_eigs = np.sort_complex(np.linalg.eigvals(modes.block))
    want_eigs = np.sort_complex(np.array([0.99, 0.9 * np.exp(0.5j), 0.9 * np.exp(-0.5j)]))
    np.testing.assert_allclose(block_eigs, want_eigs, atol=1e-5)
    # Independent truth: the projector on the 3 slow modes is B[:, :3] (B^-1)[:3].
    binv = np.linalg.inv(b)
    projector = b[:, :3] @ binv[:3]
    np.testing.assert_allclose(modes.right @ modes.left, projector, atol=1e-4)
    readout = np.array([[1.0, -2.0, 0.5, 1.5], [0.3, 0.0, -1.0, 2.0]])
    j_inp = np.eye(4)
    x = np.array([[1.0, 0.5, -0.25, 2.0], [0.0, 1.0, 0.0, 0.0]])
    want = x @ (readout @ projector).T  # logit change kept by the slow modes
    got = words.logit_effects(readout, modes, j_inp, x)
    np.testing.assert_allclose(got, want, atol=1e-4)
    # The old rule (real part of one member of the pair, the other dropped) differs.
    r, l = np.asarray(eg.right), np.asarray(eg.left)
    wrong = (x @ (readout @ (r[:, :2] @ l[:2])).T).real
    assert np.max(np.abs(wrong - want)) > 0.1
    # d = 1 and d = 3 need no closing; d = 4 is the identity
    assert linearize.real_modes(eg, 1).right.shape == (4, 1)
    assert linearize.real_modes(eg, 3).right.shape == (4, 3)
    full = linearize.real_modes(eg, 4)
    np.testing.assert_allclose(full.right @ full.left, np.eye(4), atol=1e-4)


def test_mode_order_by_modulus_keeps_pairs_and_stable_modes_by_tau():
    lam = np.array([0.5, 1.0005, 0.999, 1.2, 0.9 + 0.1j, 0.9 - 0.1j, -0.9995])
    order = linearize.mode_order(lam)
    # 1.2, 1.0005 (growing), then 0.9995 (τ 2000), 0.999 (τ 1000), the pair (+ first), 0.5
    np.testing.assert_array_equal(order, [3, 1, 6, 2, 4, 5, 0])
    stable = order[np.abs(lam[order]) <= 1]
    tau = 1 / np.abs(np.log(np.abs(lam[stable])))
    assert np.all(np.diff(tau) <= 0)
    two = linearize.mode_order(np.stack([lam, lam[::-1]]))
    np.testing.assert_array_equal(lam[::-1][two[1]], lam[order])


def test_time_constants_cap_and_slow_mode_counts():
    lam = np.array([1.0, np.exp(-1 / 50.0), 0.0])
    np.testing.assert_allclose(linearize.time_constants(lam), [np.inf, 50.0, 0.0], rtol=1e-5)
    np.testing.assert_allclose(
        linearize.time_constants(lam, tau_max=1e4), [1e4, 50.0, 0.0], rtol=1e-5
    )
    assert linearize.num_slow_modes(lam, tau_min=40.0) == 2
    with pytest.raises(ValueError, match="tau_max must be"):
        linearize.time_constants(lam, tau_max=0.0)


def test_real_modes_errors():
    eg = linearize.Eigen(
        np.array([0.5 + 0.5j, 0.3, 0.5 - 0.5j]), np.eye(3, dtype=complex), np.eye(3, dtype=complex)
    )
    with pytest.raises(ValueError, match="not its conjugate"):
        linearize.real_modes(eg, 1)
    with pytest.raises(ValueError, match="d=4 exceeds"):
        linearize.real_modes(eg, 4)
    with pytest.raises(ValueError, match="one decomposition"):
        linearize.real_modes(linearize.Eigen(np.ones((2, 3)), np.eye(3), np.eye(3)), 1)


def _nonlinear_run(cell, params, xs, mask, state0):
    """The network itself, one step at a time (independent of the linearisation)."""
    out = np.zeros(xs.shape[:2] + state0.shape)
    for b in range(xs.shape[0]):
        h = state0
        for t in range(xs.shape[1]):
            if mask[b, t]:
                h = cell(params, h, xs[b, t])
            out[b, t] = h
    return out


def test_run_trajectory_is_exact_on_the_nominal_input_and_for_an_affine_cell():
    cell = cells.LSTM(N)
    params = cell.init(jax.random.key(0), M)
    x_star = 0.3 * jax.random.normal(jax.random.key(1), (M,))
    h0 = cell.initial_state()
    mask = np.ones((1, 7), bool)
    nominal = jnp.broadcast_to(x_star, (1, 7, M))
    got = linearize.run_trajectory(cell, params, x_star, nominal, mask)
    np.testing.assert_allclose(got, _nonlinear_run(cell, params, nominal, mask, h0), atol=1e-6)
    # an affine cell is its own linearisation: exact for any input and any start
    a = 0.4 * jax.random.normal(jax.random.key(2), (N, N))
    bmat = jax.random.normal(jax.random.key(3), (N, M))
    affine = cells.from_function(lambda p, h, x: p[0] @ h + p[1] @ x + 0.1, state_size=N)
    xs = jax.random.normal(jax.random.key(4), (3, 5, M))
    mask = np.array([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0], [1, 0, 1, 1, 0]], bool)
    start = jnp.full((N,), 0.2)
    got = linearize.run_trajectory(affine, (a, bmat), x_star, xs, mask, state0=start)
    np.testing.assert_allclose(got, _nonlinear_run(affine, (a, bmat), xs, mask, start), atol=1e-5)


def test_run_trajectory_error_is_second_order_and_matches_the_fixed_point_model():
    with jax.enable_x64(True):
        cell = cells.GRU(N)
        params = jax.tree_util.tree_map(
            lambda v: jnp.asarray(v, jnp.float64), cell.init(jax.random.key(5), M)
        )
        x_star = jnp.zeros((M,), jnp.float64)
        u = jax.random.normal(jax.random.key(6), (2, 6, M), jnp.float64)
        mask = np.ones((2, 6), bool)
        h0 = 0.3 * jnp.ones((N,), jnp.float64)  # not a fixed point: a transient first
        errors = []
        for eps in (1e-2, 5e-3):
            xs = x_star + eps * u
            exact = _nonlinear_run(cell, params, xs, mask, h0)
            lin = linearize.run_trajectory(cell, params, x_star, xs, mask, state0=h0)
            errors.append(np.abs(np.asarray(lin) - exact).max())
        assert errors[1] > 0 and 3.5 < errors[0] / errors[1] < 4.5  # O(eps^2)
        # Started at a fixed point the nominal trajectory stays there: the fixed-point
        # linearisation (explicit Jacobian matrices) is the same model.
        star = rnndyn.find_fixed_points(
            cell, params, x_star, jnp.zeros((1, N), jnp.float64), key=jax.random.key(0),
            tol=1e-20,
        ).points[0]  # fmt: skip
        xs = x_star + 0.1 * u
        lin = linearize.linearization(cell, params, star[None], x_star[None])
        want = linearize.run_linearized(lin, star, xs, mask)
        got = linearize.run_trajectory(cell, params, x_star, xs, mask, state0=star)
        np.testing.assert_allclose(got, want, atol=1e-10)


def test_run_trajectory_errors():
    cell = cells.GRU(N)
    params = cell.init(jax.random.key(0), M)
    xs = jnp.zeros((2, 3, M))
    with pytest.raises(ValueError, match="input_star"):
        linearize.run_trajectory(cell, params, jnp.zeros((M + 1,)), xs)
    with pytest.raises(ValueError, match="mask"):
        linearize.run_trajectory(cell, params, jnp.zeros((M,)), xs, np.ones((2, 4), bool))
    with pytest.raises(ValueError, match="state0"):
        linearize.run_trajectory(cell, params, jnp.zeros((M,)), xs, state0=jnp.zeros((2, N)))


def test_num_slow_modes_and_tau_rule():
    lam = np.array(
        [
            [1.0, 0.99, 0.97 + 0.1j, 0.5, -0.995],
            [0.999, 0.9, 0.5, 0.1, 0.0],
        ]
    )
    # |0.97 + 0.1j| = 0.9751 is outside tol = 0.02; -0.995 is inside (modulus 0.995).
    np.testing.assert_array_equal(linearize.num_slow_modes(lam), [3, 1])
    np.testing.assert_array_equal(linearize.num_slow_modes(lam, band=0.2), [4, 2])
    # τ = 1/|log|λ||: τ(0.99) ≈ 99.5, τ(0.999) ≈ 999.5, τ(0.995) ≈ 199.5.
    np.testing.assert_array_equal(linearize.num_slow_modes(lam, tau_min=150), [2, 1])
    assert linearize.num_slow_modes(lam[1]) == 1


def test_line_attractor_score_is_log2_tau_ratio():
    # |λ| = exp(-1/τ) gives time constants τ exactly.
    lam = np.exp(-1.0 / np.array([1000.0, 100.0, 3.0]))
    assert linearize.line_attractor_score(lam) == pytest.approx(np.log2(10.0))
    both = linearize.line_attractor_score(np.stack([lam, lam[[1, 0, 2]]]))
    np.testing.assert_allclose(both, np.log2(10.0))
    # |λ1| = 1 exactly: τ1 is capped at TAU_MAX, so the score is finite, log2(1e4 / τ2).
    tau2 = 1 / np.log(2.0)
    assert linearize.line_attractor_score(np.array([1.0, 0.5])) == pytest.approx(
        np.log2(1e4 / tau2)
    )
    # two perfectly slow modes: no single dominant one
    assert linearize.line_attractor_score(np.array([1.0, -1.0, 0.5])) == 0.0
    # an unstable mode growing over 50 steps does not outrank a stable one of τ = 1000
    lam3 = np.array([np.exp(1 / 50), np.exp(-1 / 1000), 0.1])
    assert linearize.line_attractor_score(lam3) == pytest.approx(np.log2(1000 / 50))


def test_spectrum_tools_on_eig_of_known_matrices():
    rng = np.random.default_rng(11)
    lam = np.array([[0.9999, 0.99, 0.9, 0.5, 0.1], [0.999, 0.998, 0.7, 0.3, 0.05]])
    r = rng.standard_normal((2, 5, 5))
    j = r @ (lam[..., None] * np.linalg.inv(r))
    eg = rnndyn.eig(np.asarray(j, np.float32))
    np.testing.assert_array_equal(linearize.num_slow_modes(eg.values, band=0.005), [1, 2])
    tau = 1 / -np.log(lam[:, :2])
    np.testing.assert_allclose(
        linearize.line_attractor_score(eg.values), np.log2(tau[:, 0] / tau[:, 1]), rtol=0.05
    )


def test_spectrum_errors():
    with pytest.raises(ValueError, match="eigenvalues"):
        linearize.num_slow_modes(np.ones((2, 2, 2)))
    with pytest.raises(ValueError, match="S >= 2"):
        linearize.line_attractor_score(np.ones(1))
