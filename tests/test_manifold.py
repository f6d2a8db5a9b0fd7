import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rnndyn import manifold as mf

D = 20


def _embed(rng, coords, noise=1e-3):
    """Points with intrinsic ``coords (K, k)`` placed in a random k-plane of R^D."""
    q = np.linalg.qr(rng.standard_normal((D, coords.shape[1])))[0].T
    return coords @ q + noise * rng.standard_normal((coords.shape[0], D)), q


# ------------------------------------------------------------------ dimension of points


@pytest.mark.parametrize("k", [1, 2, 3])
def test_pca_counts_components_of_line_plane_simplex(k):
    rng = np.random.default_rng(k)
    # Uniform points in a k-simplex (k = 1: segment, 2: triangle, 3: tetrahedron).
    bary = rng.dirichlet(np.ones(k + 1), size=400)
    vertices = np.vstack([np.zeros(k), np.eye(k)]) - 1.0 / (k + 1)
    x, _ = _embed(rng, bary @ vertices)
    assert mf.num_components(x, 0.9) <= k
    assert mf.num_components(x, 0.999) == k
    d = mf.dimension(x)
    assert d.pca95 <= k and d.spectrum[:k].sum() > 0.999


@pytest.mark.parametrize("k", [1, 2, 3, 5])
def test_participation_ratio_of_isotropic_gaussian_is_k(k):
    rng = np.random.default_rng(10 + k)
    x, _ = _embed(rng, rng.standard_normal((4000, k)), noise=1e-4)
    assert mf.participation_ratio(x) == pytest.approx(k, rel=0.05)
    d = mf.dimension(x)
    assert d.pca95 == k and d.participation_ratio == pytest.approx(k, rel=0.05)


def test_pca_matches_covariance_and_threshold_rule():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((50, 4)) * np.array([4.0, 2.0, 1.0, 0.5])
    p = mf.pca(x)
    np.testing.assert_allclose(
        p.explained_variance, np.sort(np.linalg.eigvalsh(np.cov(x.T)))[::-1], rtol=1e-10
    )
    np.testing.assert_allclose(p.components @ p.components.T, np.eye(4), atol=1e-12)
    # Smallest k with cumulative >= threshold, for any threshold in (0, 1].
    for t in [0.01, 0.5, 0.9, 0.95, 0.999, 1.0]:
        k = mf.num_components(p, t)
        assert p.cumulative[k - 1] >= t - 1e-12 and (k == 1 or p.cumulative[k - 2] < t)
    assert mf.num_components(np.ones((5, 3))) == 0


def test_participation_ratio_of_spectrum():
    assert mf.participation_ratio(np.array([1.0, 1.0, 1.0])) == pytest.approx(3.0)
    assert mf.participation_ratio(np.array([3.0, 1.0])) == pytest.approx(16 / 10)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.floats(0, 1e3, allow_nan=False), min_size=1, max_size=12).filter(
        lambda v: sum(x * x for x in v) > 1e-12
    )
)
def test_participation_ratio_bounds(spectrum):
    lam = np.asarray(spectrum)
    pr = mf.participation_ratio(lam)
    assert 1 - 1e-9 <= pr <= np.count_nonzero(lam) + 1e-9


# --------------------------------------------------------------------------- geometry


def test_fit_subspace_recovers_known_plane():
    rng = np.random.default_rng(1)
    offset = rng.standard_normal(D)
    x, q = _embed(rng, rng.standard_normal((200, 2)) * [3.0, 1.0], noise=1e-3)
    x = x + offset
    s = mf.fit_subspace(x, 2)
    assert s.basis.shape == (2, D)
    np.testing.assert_allclose(mf.principal_cosines(s.basis, q), [1.0, 1.0], atol=1e-5)
    assert s.residual_fraction < 1e-5
    # The fitted mean lies on the plane through offset.
    r = (s.mean - offset) - (s.mean - offset) @ q.T @ q
    assert np.linalg.norm(r) < 1e-3
    np.testing.assert_allclose(s.project(x) @ s.basis + s.mean, x, atol=1e-2)


def test_order_along_line():
    rng = np.random.default_rng(2)
    t = rng.permutation(30).astype(float)
    x, _ = _embed(rng, t[:, None], noise=1e-3)
    order = mf.order_along_line(x)
    assert np.all(np.diff(t[order]) > 0) or np.all(np.diff(t[order]) < 0)


def test_principal_angles_between_known_subspaces():
    theta = 0.3
    e = np.eye(5)
    a = e[[0, 1]]
    b = np.stack([np.cos(theta) * e[0] + np.sin(theta) * e[2], 2.0 * e[1]])
    np.testing.assert_allclose(mf.principal_cosines(a, b), [1.0, np.cos(theta)], atol=1e-12)
    np.testing.assert_allclose(mf.principal_angles(a, b), [0.0, theta], atol=1e-6)
    assert mf.subspace_overlap(a, b) == pytest.approx((1 + np.cos(theta) ** 2) / 2)
    assert mf.subspace_overlap(e[[0]], e[[3, 4]]) == pytest.approx(0.0)
    assert mf.subspace_overlap(e[[0]], e[[0, 4]]) == pytest.approx(1.0)


def test_readout_alignment():
    e = np.eye(4)
    w = np.stack([2 * e[0], e[0] + e[1]])  # (C=2, D=4)
    np.testing.assert_allclose(
        mf.readout_alignment(w, e[[0, 1]]), [[1.0, 0.0], [2**-0.5, 2**-0.5]], atol=1e-12
    )
    with pytest.raises(ValueError, match="readout.T"):
        mf.readout_alignment(np.ones((4, 2)), e[[0, 1]])


def test_tangent_alignment_on_a_known_curve():
    rng = np.random.default_rng(3)
    t = np.linspace(0, np.pi, 120)
    circle = np.stack([np.cos(t), np.sin(t)], 1)
    x, q = _embed(rng, circle, noise=0.0)
    tangent = np.stack([-np.sin(t), np.cos(t)], 1) @ q
    normal_in_plane = circle @ q
    off_plane = np.tile(np.linalg.qr(np.vstack([q, rng.standard_normal(D)]).T)[0][:, 2], (120, 1))
    # Ends see a one-sided neighbourhood, whose chord is off the tangent by ~2 dt = 0.053.
    np.testing.assert_allclose(mf.tangent_alignment(x, -3 * tangent, k=5), 1.0, atol=5e-3)
    np.testing.assert_allclose(mf.tangent_alignment(x, normal_in_plane, k=5), 0.0, atol=0.06)
    np.testing.assert_allclose(mf.tangent_alignment(x, off_plane, k=5), 0.0, atol=1e-8)
    # 2-D manifold: the in-plane normal is tangent to the plane.
    np.testing.assert_allclose(
        mf.tangent_alignment(x, normal_in_plane, manifold_dim=2, k=10), 1.0, atol=1e-6
    )
    # Straight line, global PC, complex vectors reduced to their real part.
    line, ql = _embed(rng, np.linspace(-1, 1, 20)[:, None], noise=0.0)
    v = np.tile(ql[0], (20, 1)) * (1 + 5j)
    np.testing.assert_allclose(mf.tangent_alignment(line, v), 1.0, atol=1e-10)


# ------------------------------------------------------------------------------ errors


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: mf.pca(np.ones(5)), "X must have 2"),
        (lambda: mf.pca(np.ones((1, 3))), "K >= 2"),
        (lambda: mf.pca(np.array([[0.0, np.nan], [1.0, 2.0]])), "NaN"),
        (lambda: mf.num_components(np.eye(3), 1.5), "threshold"),
        (lambda: mf.participation_ratio(np.array([-1.0, 2.0])), "non-negative"),
        (lambda: mf.fit_subspace(np.eye(3), 4), "dim=4"),
        (lambda: mf.principal_cosines(np.eye(3), np.eye(4)), "B has shape"),
        (lambda: mf.principal_cosines(np.zeros((2, 3)), np.eye(3)), "spans nothing"),
        (lambda: mf.tangent_alignment(np.eye(3), np.eye(4)), "vectors has shape"),
        (lambda: mf.tangent_alignment(np.eye(3), np.eye(3), k=9), "k=9"),
    ],
)
def test_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# ------------------------------------------------------------------------ properties


@settings(max_examples=25, deadline=None)
@given(
    st.integers(2, 12),
    st.integers(1, 6),
    st.integers(1, 6),
    st.floats(0.05, 1.0),
    st.integers(0, 2**31 - 1),
)
def test_points_pr_and_components_bounds(k, d, rank, threshold, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((k, rank)) @ rng.standard_normal((rank, d))
    true_rank = np.linalg.matrix_rank(x - x.mean(0))
    if true_rank == 0:
        return
    assert 1 - 1e-9 <= mf.participation_ratio(x) <= true_rank + 1e-6
    n = mf.num_components(x, threshold)
    assert 1 <= n <= true_rank and n <= mf.num_components(x, 1.0)


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 4), st.integers(1, 4), st.integers(0, 2**31 - 1))
def test_principal_cosines_symmetric_and_bounded(a, b, seed):
    rng = np.random.default_rng(seed)
    A, B = rng.standard_normal((a, 5)), rng.standard_normal((b, 5))
    c = mf.principal_cosines(A, B)
    assert c.shape == (min(a, b),) and np.all((c >= 0) & (c <= 1))
    np.testing.assert_allclose(c, mf.principal_cosines(B, A), atol=1e-10)


# ------------------------------------------------------- intrinsic dimension (study B)


def _flat(rng, k, n=1000):
    return _embed(rng, rng.uniform(-1, 1, (n, k)), noise=0.0)[0]


def _sphere(rng, k, n=1000):
    z = rng.standard_normal((n, k + 1))
    return _embed(rng, z / np.linalg.norm(z, axis=1, keepdims=True), noise=0.0)[0]


def _curve(rng, n=1000):
    # a closed curve that winds through 10 of the 20 dimensions (not in any plane)
    t = rng.uniform(0, 2 * np.pi, n)
    coords = [np.cos(j * t) / j for j in range(1, 6)] + [np.sin(j * t) / j for j in range(1, 6)]
    return _embed(rng, np.stack(coords, 1), noise=0.0)[0]


SETS = [
    ("line", 1, lambda r: _flat(r, 1)),
    ("plane", 2, lambda r: _flat(r, 2)),
    ("cube3", 3, lambda r: _flat(r, 3)),
    ("circle", 1, lambda r: _sphere(r, 1)),
    ("sphere2", 2, lambda r: _sphere(r, 2)),
    ("sphere3", 3, lambda r: _sphere(r, 3)),
    ("curve", 1, _curve),
]


@pytest.mark.parametrize("name,dim,make", SETS, ids=[s[0] for s in SETS])
def test_intrinsic_dimension_estimators_recover_known_dimensions(name, dim, make):
    x = make(np.random.default_rng(dim))
    assert x.shape == (1000, D)
    # PCA would see 10 dimensions in the curve and dim + 1 for the spheres; these don't.
    assert abs(mf.levina_bickel(x, k=10) - dim) < 0.5
    assert abs(mf.correlation_dimension(x) - dim) < 0.5
    assert abs(mf.local_pca_dimension(x, k=20) - dim) < 0.5
    est = mf.intrinsic_dimension(x)
    assert est.num_points == 1000 and abs(est.dimension - dim) < 0.5
    if name == "curve":
        assert mf.num_components(x, 0.9) >= 3  # global PCA overestimates a curved set


def test_intrinsic_dimension_estimator_details():
    rng = np.random.default_rng(0)
    x = _flat(rng, 2, n=400)
    # duplicates carry no distance information and are dropped, not a log(0)
    assert mf.levina_bickel(np.concatenate([x, x[:50]]), k=8) == pytest.approx(
        mf.levina_bickel(x, k=8)
    )
    # an explicit scaling range on a uniform square: C(r) ∝ r^2 for r much below its side
    assert mf.correlation_dimension(x, radii=(0.05, 0.2)) == pytest.approx(2.0, abs=0.3)
    with pytest.raises(ValueError, match="radii must satisfy"):
        mf.correlation_dimension(x, radii=(0.2, 0.1))
    with pytest.raises(ValueError, match="k must be an integer >= 3"):
        mf.levina_bickel(x, k=2)
    with pytest.raises(ValueError, match="expected at least 11"):
        mf.levina_bickel(x[:5], k=10)
    nan = mf.intrinsic_dimension(np.zeros((20, 3)))  # one distinct point: no estimate
    assert np.isnan(nan.levina_bickel) and np.isnan(nan.dimension) and nan.num_points == 1


def test_manifold_holds_geometry_only():
    # Word statistics live in rnndyn.words, spectra in rnndyn.linearize; none here.
    for name in ("fit_bag_of_words", "predict_dimension", "word_projections", "num_slow_modes"):
        assert not hasattr(mf, name) and name not in mf.__all__
