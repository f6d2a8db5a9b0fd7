import jax
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rnndyn import linearize, words
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


# ------------------------------------------------------------------ dimension of spectra


def test_num_slow_modes_and_tau_rule():
    lam = np.array(
        [
            [1.0, 0.99, 0.97 + 0.1j, 0.5, -0.995],
            [0.999, 0.9, 0.5, 0.1, 0.0],
        ]
    )
    # |0.97 + 0.1j| = 0.9751 is outside tol = 0.02; -0.995 is inside (modulus 0.995).
    np.testing.assert_array_equal(linearize.num_slow_modes(lam), [3, 1])
    np.testing.assert_array_equal(linearize.num_slow_modes(lam, tol=0.2), [4, 2])
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


# ------------------------------------------------------------------------ word effects


def test_word_projections_match_einsum():
    rng = np.random.default_rng(4)
    left, j_inp, emb = (
        rng.standard_normal((3, 6)),
        rng.standard_normal((6, 4)),
        rng.standard_normal((9, 4)),
    )
    np.testing.assert_allclose(
        words.word_projections(left, j_inp, emb), np.einsum("ks,sm,vm->vk", left, j_inp, emb)
    )
    np.testing.assert_allclose(
        words.readout_projections(left[:2], j_inp, emb),
        np.einsum("cs,sm,vm->vc", left[:2], j_inp, emb),
    )
    assert np.isrealobj(words.word_projections(left.astype(complex), j_inp, emb))
    with pytest.raises(ValueError, match="do not chain"):
        words.word_projections(left, j_inp.T, emb)


def test_correlation():
    a = np.arange(10.0)
    assert words.correlation(a, 3 * a + 1) == pytest.approx(1.0)
    assert words.correlation(a, -a) == pytest.approx(-1.0)
    rng = np.random.default_rng(5)
    x, y = rng.standard_normal((2, 100))
    assert words.correlation(x, y) == pytest.approx(np.corrcoef(x, y)[0, 1])
    with pytest.raises(ValueError, match="constant"):
        words.correlation(a, np.ones(10))


# ---------------------------------------------------------------- synthetic word data


def _categorical(rng, c, b=3000, t=40):
    """The studies' reference task: words (modifier, class), valences +2, +1, 0, −1;
    uniform random documents; label = argmax of the per-class summed valence."""
    val = np.tile([2, 1, 0, -1], c)
    cls = np.repeat(np.arange(c), 4)
    ids = rng.integers(0, 4 * c, (b, t))
    scores = np.zeros((b, c))
    np.add.at(scores, (np.repeat(np.arange(b), t), cls[ids].ravel()), val[ids].ravel())
    return ids, np.argmax(scores + 1e-3 * rng.random((b, c)), axis=1), 4 * c, val


def _ordered(rng, c, b=3000, t=40):
    """Valences awful −2 … awesome +2; the summed score binned into c ordered classes."""
    ids = rng.integers(0, 5, (b, t))
    s = (np.array([-2, -1, 0, 1, 2])[ids]).sum(1)
    edges = np.quantile(s, np.linspace(0, 1, c + 1)[1:-1])
    return ids, np.searchsorted(edges, s, side="right"), 5


def _neighbour_shared(rng, c, rho=0.8, b=3000, t=40):
    """``_categorical`` where each word also counts ``rho`` times for the neighbouring
    classes ``k ± 1``: an ordered variant with strongly shared evidence."""
    val = np.tile([2, 1, 0, -1], c)
    cls = np.repeat(np.arange(c), 4)
    ids = rng.integers(0, 4 * c, (b, t))
    own = np.zeros((b, c))
    np.add.at(own, (np.repeat(np.arange(b), t), cls[ids].ravel()), val[ids].ravel())
    scores = own @ (np.eye(c) + rho * (np.eye(c, k=1) + np.eye(c, k=-1)))
    return ids, np.argmax(scores + 1e-3 * rng.random((b, c)), axis=1), 4 * c


def _multilabel(rng, n_labels, b=3000, t=40):
    """Each label has a positive and a negative word; four neutral words."""
    v = 2 * n_labels + 4
    ids = rng.integers(0, v, (b, t))
    s = np.stack([(ids == 2 * l).sum(1) - (ids == 2 * l + 1).sum(1) for l in range(n_labels)], 1)
    return ids, (s + 1e-3 * rng.standard_normal(s.shape) > 0).astype(int), v


def test_bag_of_words_recovers_word_signs():
    rng = np.random.default_rng(6)
    # Binary sentiment: word 0..2 positive, 3..5 negative, 6..11 neutral.
    val = np.array([2, 1, 1, -2, -1, -1] + [0] * 6)
    ids = rng.integers(0, 12, (1500, 30))
    lengths = rng.integers(15, 31, 1500)
    mask = np.arange(30)[None] < lengths[:, None]
    y = ((val[ids] * mask).sum(1) + 1e-3 * rng.standard_normal(1500) > 0).astype(int)
    bow = words.fit_bag_of_words(ids, y, 12, 2, lengths=lengths, key=jax.random.key(0))
    assert bow.weights.shape == (12, 2) and bow.bias.shape == (2,)
    assert bow.accuracy > 0.95
    delta = bow.weights[:, 1] - bow.weights[:, 0]
    np.testing.assert_array_equal(np.sign(delta[:6]), np.sign(val[:6]))
    assert np.all(np.abs(delta[6:]) < 0.2 * np.abs(delta[:6]).min())
    assert words.correlation(delta, val) > 0.9


def test_bag_of_words_multilabel():
    ids, y, v = _multilabel(np.random.default_rng(7), 2, b=1500)
    bow = words.fit_bag_of_words(ids, y, v, multilabel=True)
    assert bow.weights.shape == (v, 2) and bow.accuracy > 0.9  # ties (s = 0) are coin flips
    assert bow.weights[0, 0] > 0 > bow.weights[1, 0] and bow.weights[2, 1] > 0 > bow.weights[3, 1]


@pytest.mark.parametrize("c", [2, 3, 4])
def test_predict_dimension_categorical_is_c_minus_1(c):
    ids, y, v, _ = _categorical(np.random.default_rng(c), c)
    r = words.predict_dimension(ids, y, v)
    assert r.dimension == c - 1
    assert r.participation_ratio == pytest.approx(c - 1, rel=0.05)
    assert r.evidence.shape == (v, c) and r.cumulative[c - 2] > 0.99
    assert words.predict_dimension(ids, y, v, method="bow").dimension == c - 1


def test_predict_dimension_evidence_has_known_signs():
    ids, y, v, val = _categorical(np.random.default_rng(8), 3)
    r = words.predict_dimension(ids, y, v)
    own = r.evidence[np.arange(v), np.repeat(np.arange(3), 4)]
    # "very"/"some" words are commoner in their class, "not" words rarer.
    assert np.all(own[val > 0] > 0) and np.all(own[val < 0] < 0)


@pytest.mark.parametrize("c", [3, 4])
def test_predict_dimension_ordered_is_lower(c):
    ids, y, v = _ordered(np.random.default_rng(20 + c), c)
    for method in ["class_means", "bow"]:
        r = words.predict_dimension(ids, y, v, method=method)
        assert r.dimension < c - 1
        assert r.participation_ratio < c - 1.5


@pytest.mark.parametrize("c", [4, 5])
def test_predict_dimension_neighbour_shared_evidence_is_lower(c):
    ids, y, v = _neighbour_shared(np.random.default_rng(30 + c), c)
    for method in ["class_means", "bow"]:
        r = words.predict_dimension(ids, y, v, method=method)
        assert r.dimension < c - 1
        assert r.participation_ratio < c - 1.5


def test_predict_dimension_multilabel_counts_labels():
    ids, y, v = _multilabel(np.random.default_rng(9), 3)
    for method in ["class_means", "bow"]:
        r = words.predict_dimension(ids, y, v, multilabel=True, method=method)
        assert r.dimension == 3
        assert r.participation_ratio == pytest.approx(3, rel=0.1)


def test_predict_dimension_min_count_and_mask():
    rng = np.random.default_rng(10)
    ids, y, v, _ = _categorical(rng, 3, b=1000)
    ids = np.concatenate([ids, np.full((1000, 5), v)], axis=1)  # padding id v (rare word)
    mask = np.broadcast_to(np.arange(ids.shape[1])[None] < 40, ids.shape)
    r = words.predict_dimension(ids, y, v + 1, mask=mask, min_count=1)
    assert r.dimension == 2 and v not in r.words


# ------------------------------------------------------------------------------ errors


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: mf.pca(np.ones(5)), "X must have 2"),
        (lambda: mf.pca(np.ones((1, 3))), "K >= 2"),
        (lambda: mf.pca(np.array([[0.0, np.nan], [1.0, 2.0]])), "NaN"),
        (lambda: mf.num_components(np.eye(3), 1.5), "threshold"),
        (lambda: mf.participation_ratio(np.array([-1.0, 2.0])), "non-negative"),
        (lambda: linearize.num_slow_modes(np.ones((2, 2, 2))), "eigenvalues"),
        (lambda: linearize.line_attractor_score(np.ones(1)), "S >= 2"),
        (lambda: mf.fit_subspace(np.eye(3), 4), "dim=4"),
        (lambda: mf.principal_cosines(np.eye(3), np.eye(4)), "B has shape"),
        (lambda: mf.principal_cosines(np.zeros((2, 3)), np.eye(3)), "spans nothing"),
        (lambda: mf.tangent_alignment(np.eye(3), np.eye(4)), "vectors has shape"),
        (lambda: mf.tangent_alignment(np.eye(3), np.eye(3), k=9), "k=9"),
        (lambda: words.word_counts(np.array([[0, 5]]), 3), "outside"),
        (lambda: words.word_counts(np.array([[0.5]]), 3), "token_ids"),
        (lambda: words.word_counts(np.zeros((2, 3), int), 3, mask=np.ones((2, 2))), "mask"),
        (lambda: words.word_counts(np.zeros((2, 3), int), 3, lengths=[1, 4]), "lengths"),
        (lambda: words.fit_bag_of_words(np.zeros((2, 3), int), [0, 1, 1], 3), "labels"),
        (lambda: words.predict_dimension(np.zeros((2, 3), int), [0, 1], 3, method="x"), "method"),
        (lambda: words.predict_dimension(np.zeros((2, 3), int), [0, 1], 3, min_count=99), "min_c"),
        (
            lambda: words.predict_dimension(np.zeros((2, 3), int), [0, 1], 3, multilabel=True),
            "multilabel",
        ),
    ],
)
def test_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# ------------------------------------------------------------------ properties, linkage


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


def test_spectrum_tools_on_rnndyn_eig_of_known_matrices():
    import rnndyn

    rng = np.random.default_rng(11)
    lam = np.array([[0.9999, 0.99, 0.9, 0.5, 0.1], [0.999, 0.998, 0.7, 0.3, 0.05]])
    r = rng.standard_normal((2, 5, 5))
    j = r @ (lam[..., None] * np.linalg.inv(r))
    eg = rnndyn.eig(np.asarray(j, np.float32))
    np.testing.assert_array_equal(linearize.num_slow_modes(eg.values, tol=0.005), [1, 2])
    tau = 1 / -np.log(lam[:, :2])
    np.testing.assert_allclose(
        linearize.line_attractor_score(eg.values), np.log2(tau[:, 0] / tau[:, 1]), rtol=0.05
    )
    # l_1 · J_inp · x projects a word's input on the top mode: with J_inp = r_1 ⊗ e_0
    # only words with an embedding along e_0 move it, by exactly that coordinate.
    j_inp = np.outer(np.asarray(eg.right[0][:, 0].real), np.eye(3)[0])
    emb = rng.standard_normal((7, 3))
    np.testing.assert_allclose(
        words.word_projections(eg.left[0][:1], j_inp, emb)[:, 0], emb[:, 0], atol=1e-3
    )


def test_word_counts_ignore_masked_padding():
    ids = np.array([[0, 2, 2, -1], [1, 1, -1, -1]])
    counts, t = words.word_counts(ids, 3, lengths=np.array([3, 2]))
    np.testing.assert_array_equal(counts, [[1, 0, 2], [0, 2, 0]])
    np.testing.assert_array_equal(t, [3, 2])
    with pytest.raises(ValueError, match="outside"):
        words.word_counts(ids, 3)


def test_class_mean_evidence_matches_dense_formula():
    rng = np.random.default_rng(12)
    ids = rng.integers(0, 6, (40, 9))
    lengths = rng.integers(0, 10, 40)
    lengths[:3] = 0  # documents without tokens are skipped
    y = rng.integers(0, 3, 40)
    counts, t = words.word_counts(ids, 6, lengths=lengths)
    keep = t > 0
    f = counts[keep] / t[keep, None]
    yk = y[keep]
    expected = np.stack([f[yk == c].mean(0) - f.mean(0) for c in range(3)])
    got = words.class_mean_evidence(ids, y, 6, lengths=lengths)
    np.testing.assert_allclose(got, expected, atol=1e-12)
    ym = rng.integers(0, 2, (40, 2))
    ymk = ym[keep]
    expected = np.stack([f[ymk[:, l] == 1].mean(0) - f[ymk[:, l] == 0].mean(0) for l in range(2)])
    got = words.class_mean_evidence(ids, ym, 6, lengths=lengths, multilabel=True)
    np.testing.assert_allclose(got, expected, atol=1e-12)


def test_bag_of_words_logits_reproduce_accuracy():
    ids, y, v, _ = _categorical(np.random.default_rng(13), 3, b=500)
    bow = words.fit_bag_of_words(ids, y, v, steps=200)
    counts, _ = words.word_counts(ids, v)
    assert np.mean(np.argmax(bow.logits(counts), 1) == y) == pytest.approx(bow.accuracy)
    assert bow.accuracy > 0.8


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
    # The word statistics and spectra live in rnndyn.words / rnndyn.linearize only.
    for name in ("fit_bag_of_words", "predict_dimension", "word_projections", "num_slow_modes"):
        assert not hasattr(mf, name) and name not in mf.__all__
