"""rnndyn.words: word effects, word counts, the bag-of-words baseline and the dimension
predicted from word counts, checked against hand-computed values, brute-force loops and
numpy."""

import jax
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import rnndyn
from rnndyn import words as wd
from rnndyn.linearize import RealModes

# ------------------------------------------------------------------------ word effects


def test_word_projections_match_einsum():
    rng = np.random.default_rng(4)
    left, j_inp, emb = (
        rng.standard_normal((3, 6)),
        rng.standard_normal((6, 4)),
        rng.standard_normal((9, 4)),
    )
    np.testing.assert_allclose(
        wd.word_projections(left, j_inp, emb), np.einsum("ks,sm,vm->vk", left, j_inp, emb)
    )
    np.testing.assert_allclose(
        wd.readout_projections(left[:2], j_inp, emb),
        np.einsum("cs,sm,vm->vc", left[:2], j_inp, emb),
    )
    assert np.isrealobj(wd.word_projections(left.astype(complex), j_inp, emb))
    with pytest.raises(ValueError, match="do not chain"):
        wd.word_projections(left, j_inp.T, emb)


def test_mode_and_logit_effects_of_a_hand_computed_case():
    # One real slow mode along e_0 of S = 2: its dual row is e_0, its column e_0.
    modes = RealModes(
        values=np.array([0.99 + 0j]),
        right=np.array([[1.0], [0.0]]),
        left=np.array([[1.0, 0.0]]),
        block=np.array([[0.99]]),
    )
    j_inp = np.array([[2.0, 0.0], [0.0, 3.0]])
    x = np.array([[1.0, 1.0], [0.0, 1.0]])  # pushes J_inp x = (2, 3) and (0, 3)
    np.testing.assert_allclose(wd.mode_projections(modes, j_inp, x), [[2.0], [0.0]])
    readout = np.array([[1.0, 1.0], [-1.0, 5.0]])  # W R = [[1], [-1]]
    np.testing.assert_allclose(
        wd.logit_effects(readout, modes, j_inp, x), [[2.0, -2.0], [0.0, 0.0]]
    )
    with pytest.raises(ValueError, match="readout has shape"):
        wd.logit_effects(np.ones((2, 3)), modes, j_inp, x)


def test_word_projections_on_rnndyn_eig_of_a_known_matrix():
    rng = np.random.default_rng(11)
    lam = np.array([0.9999, 0.99, 0.9, 0.5, 0.1])
    r = rng.standard_normal((5, 5))
    eg = rnndyn.eig(np.asarray(r @ (lam[:, None] * np.linalg.inv(r)), np.float32))
    # l_1 · J_inp · x projects a word's input on the top mode: with J_inp = r_1 ⊗ e_0
    # only words with an embedding along e_0 move it, by exactly that coordinate.
    j_inp = np.outer(np.asarray(eg.right[:, 0].real), np.eye(3)[0])
    emb = rng.standard_normal((7, 3))
    np.testing.assert_allclose(
        wd.word_projections(eg.left[:1], j_inp, emb)[:, 0], emb[:, 0], atol=1e-3
    )


def test_correlation():
    a = np.arange(10.0)
    assert wd.correlation(a, 3 * a + 1) == pytest.approx(1.0)
    assert wd.correlation(a, -a) == pytest.approx(-1.0)
    rng = np.random.default_rng(5)
    x, y = rng.standard_normal((2, 100))
    assert wd.correlation(x, y) == pytest.approx(np.corrcoef(x, y)[0, 1])
    with pytest.raises(ValueError, match="constant"):
        wd.correlation(a, np.ones(10))


@settings(max_examples=40, deadline=None)
@given(st.integers(2, 40), st.integers(0, 2**31 - 1), st.floats(-3, 3))
def test_correlation_equals_numpy_corrcoef(n, seed, slope):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal(n)
    b = slope * a + rng.standard_normal(n)
    assert wd.correlation(a, b) == pytest.approx(np.corrcoef(a, b)[0, 1], abs=1e-12)
    # shape does not matter, only the flattened values
    assert wd.correlation(a.reshape(-1, 1), b) == pytest.approx(np.corrcoef(a, b)[0, 1])


# ------------------------------------------------------------------------- word counts


def test_word_counts_ignore_masked_padding():
    ids = np.array([[0, 2, 2, -1], [1, 1, -1, -1]])
    counts, t = wd.word_counts(ids, 3, lengths=np.array([3, 2]))
    np.testing.assert_array_equal(counts, [[1, 0, 2], [0, 2, 0]])
    np.testing.assert_array_equal(t, [3, 2])
    with pytest.raises(ValueError, match="outside"):
        wd.word_counts(ids, 3)


@settings(max_examples=40, deadline=None)
@given(
    st.integers(1, 6),
    st.integers(1, 8),
    st.integers(1, 7),
    st.sampled_from(["none", "mask", "lengths"]),
    st.integers(0, 2**31 - 1),
)
def test_word_counts_equal_a_brute_force_loop(b, t, v, which, seed):
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, v, (b, t))
    mask = rng.random((b, t)) < 0.7
    lengths = rng.integers(0, t + 1, b)
    keep = {
        "none": np.ones((b, t), bool),
        "mask": mask,
        "lengths": np.arange(t)[None] < lengths[:, None],
    }[which]
    if which != "none":
        ids = np.where(keep, ids, -7)  # padding outside the vocabulary is fine where masked
    want, want_t = np.zeros((b, v)), np.zeros(b)
    for d in range(b):
        for i in range(t):
            if keep[d, i]:
                want[d, ids[d, i]] += 1
                want_t[d] += 1
    kwargs = {"none": {}, "mask": {"mask": mask}, "lengths": {"lengths": lengths}}[which]
    counts, counted = wd.word_counts(ids, v, **kwargs)
    np.testing.assert_array_equal(counts, want)
    np.testing.assert_array_equal(counted, want_t)


def test_class_mean_evidence_matches_dense_formula():
    rng = np.random.default_rng(12)
    ids = rng.integers(0, 6, (40, 9))
    lengths = rng.integers(0, 10, 40)
    lengths[:3] = 0  # documents without tokens are skipped
    y = rng.integers(0, 3, 40)
    counts = np.zeros((40, 6))  # dense counts with numpy, not wd.word_counts
    for d in range(40):
        np.add.at(counts[d], ids[d, : lengths[d]], 1)
    t = lengths.astype(float)
    keep = t > 0
    f = counts[keep] / t[keep, None]
    yk = y[keep]
    expected = np.stack([f[yk == c].mean(0) - f.mean(0) for c in range(3)])
    got = wd.class_mean_evidence(ids, y, 6, lengths=lengths)
    np.testing.assert_allclose(got, expected, atol=1e-12)
    ym = rng.integers(0, 2, (40, 2))
    ymk = ym[keep]
    expected = np.stack([f[ymk[:, l] == 1].mean(0) - f[ymk[:, l] == 0].mean(0) for l in range(2)])
    got = wd.class_mean_evidence(ids, ym, 6, lengths=lengths, multilabel=True)
    np.testing.assert_allclose(got, expected, atol=1e-12)


def test_class_mean_evidence_of_a_hand_computed_set():
    # doc 0 (class 0): words 0 0 1 -> f = (2/3, 1/3, 0); doc 1 (class 1): 2 -> (0, 0, 1);
    # doc 2 (class 1): 1 2 -> (0, 1/2, 1/2). Mean over documents: (2/9, 5/18, 1/2).
    ids = np.array([[0, 0, 1], [2, 9, 9], [1, 2, 9]])
    got = wd.class_mean_evidence(ids, np.array([0, 1, 1]), 3, lengths=np.array([3, 1, 2]))
    overall = np.array([2 / 9, 5 / 18, 1 / 2])
    want = np.stack([[2 / 3, 1 / 3, 0.0], [0.0, 1 / 4, 3 / 4]]) - overall
    np.testing.assert_allclose(got, want, atol=1e-12)


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
    """Each label has a positive and a negative word; four neutral wd."""
    v = 2 * n_labels + 4
    ids = rng.integers(0, v, (b, t))
    s = np.stack([(ids == 2 * l).sum(1) - (ids == 2 * l + 1).sum(1) for l in range(n_labels)], 1)
    return ids, (s + 1e-3 * rng.standard_normal(s.shape) > 0).astype(int), v


# ------------------------------------------------------------------------ bag of words


def test_bag_of_words_recovers_word_signs():
    rng = np.random.default_rng(6)
    # Binary sentiment: word 0..2 positive, 3..5 negative, 6..11 neutral.
    val = np.array([2, 1, 1, -2, -1, -1] + [0] * 6)
    ids = rng.integers(0, 12, (1500, 30))
    lengths = rng.integers(15, 31, 1500)
    mask = np.arange(30)[None] < lengths[:, None]
    y = ((val[ids] * mask).sum(1) + 1e-3 * rng.standard_normal(1500) > 0).astype(int)
    bow = wd.fit_bag_of_words(ids, y, 12, 2, lengths=lengths, key=jax.random.key(0))
    assert bow.weights.shape == (12, 2) and bow.bias.shape == (2,)
    assert bow.accuracy > 0.95
    delta = bow.weights[:, 1] - bow.weights[:, 0]
    np.testing.assert_array_equal(np.sign(delta[:6]), np.sign(val[:6]))
    assert np.all(np.abs(delta[6:]) < 0.2 * np.abs(delta[:6]).min())
    assert wd.correlation(delta, val) > 0.9


def test_bag_of_words_multilabel():
    ids, y, v = _multilabel(np.random.default_rng(7), 2, b=1500)
    bow = wd.fit_bag_of_words(ids, y, v, multilabel=True)
    assert bow.weights.shape == (v, 2) and bow.accuracy > 0.9  # ties (s = 0) are coin flips
    assert bow.weights[0, 0] > 0 > bow.weights[1, 0] and bow.weights[2, 1] > 0 > bow.weights[3, 1]


def test_bag_of_words_is_the_convex_optimum_and_reports_its_accuracy():
    # Independent truth: the same convex objective (mean softmax cross-entropy of
    # counts @ W + b, plus l2 ‖W‖²) minimised by scipy's L-BFGS in float64 numpy, on
    # counts built with numpy.
    from scipy.optimize import minimize

    ids, y, v, _ = _categorical(np.random.default_rng(13), 3, b=500)
    l2, n, c = 1e-2, len(y), 3
    bow = wd.fit_bag_of_words(ids, y, v, steps=200, l2=l2)
    counts = np.zeros((n, v))
    np.add.at(counts, (np.repeat(np.arange(n), ids.shape[1]), ids.ravel()), 1)

    def objective(theta):
        w, b = theta[: v * c].reshape(v, c), theta[v * c :]
        z = counts @ w + b
        z = z - z.max(1, keepdims=True)
        p = np.exp(z) / np.exp(z).sum(1, keepdims=True)
        value = np.mean(np.log(np.exp(z).sum(1)) - z[np.arange(n), y]) + l2 * np.sum(w**2)
        p[np.arange(n), y] -= 1
        grad = np.concatenate([(counts.T @ p / n + 2 * l2 * w).ravel(), p.sum(0) / n])
        return value, grad

    best = minimize(objective, np.zeros(v * c + c), jac=True, method="L-BFGS-B",
                    options={"gtol": 1e-12, "maxiter": 5000})  # fmt: skip
    ours = objective(np.concatenate([bow.weights.ravel(), bow.bias]))[0]
    assert ours - best.fun < 1e-3
    centred = lambda w: w - w.mean(1, keepdims=True)  # noqa: E731 (softmax: shift-free)
    w_best = best.x[: v * c].reshape(v, c)
    np.testing.assert_allclose(centred(bow.weights), centred(w_best), atol=0.02)
    # the accuracy it reports is its logits' accuracy on the labels
    assert np.mean(np.argmax(counts @ bow.weights + bow.bias, 1) == y) == bow.accuracy
    np.testing.assert_allclose(bow.logits(counts), counts @ bow.weights + bow.bias)
    assert bow.accuracy > 0.8


@settings(max_examples=4, deadline=None)  # each example compiles the fit anew
@given(st.integers(2, 4), st.integers(4, 30), st.integers(0, 2**31 - 1))
def test_bag_of_words_separates_separable_data(c, b, seed):
    # Word k < c occurs only in documents of class k (at least once); words c..c+3 are
    # noise anywhere. Counts of the marker words separate the classes linearly.
    rng = np.random.default_rng(seed)
    y = np.concatenate([np.arange(c), rng.integers(0, c, b)])  # every class present
    t = 6
    ids = rng.integers(c, c + 4, (len(y), t))
    ids[:, 0] = y
    ids[:, 1:] = np.where(rng.random((len(y), t - 1)) < 0.3, y[:, None], ids[:, 1:])
    bow = wd.fit_bag_of_words(ids, y, c + 4, c)
    assert bow.accuracy == 1.0
    counts = np.zeros((len(y), c + 4))
    np.add.at(counts, (np.repeat(np.arange(len(y)), t), ids.ravel()), 1)
    np.testing.assert_array_equal(np.argmax(counts @ bow.weights + bow.bias, 1), y)


# ------------------------------------------------------------- predicted dimension


@pytest.mark.parametrize("c", [2, 3, 4])
def test_predict_dimension_categorical_is_c_minus_1(c):
    ids, y, v, _ = _categorical(np.random.default_rng(c), c)
    r = wd.predict_dimension(ids, y, v)
    assert r.dimension == c - 1
    assert r.participation_ratio == pytest.approx(c - 1, rel=0.05)
    assert r.evidence.shape == (v, c) and r.cumulative[c - 2] > 0.99
    assert wd.predict_dimension(ids, y, v, method="bow").dimension == c - 1


def test_predict_dimension_evidence_has_known_signs():
    ids, y, v, val = _categorical(np.random.default_rng(8), 3)
    r = wd.predict_dimension(ids, y, v)
    own = r.evidence[np.arange(v), np.repeat(np.arange(3), 4)]
    # "very"/"some" words are commoner in their class, "not" words rarer.
    assert np.all(own[val > 0] > 0) and np.all(own[val < 0] < 0)


@pytest.mark.parametrize(
    "make, c, seed",
    [(_ordered, 3, 23), (_ordered, 4, 24), (_neighbour_shared, 4, 34), (_neighbour_shared, 5, 35)],
    ids=["ordered-3", "ordered-4", "neighbour-shared-4", "neighbour-shared-5"],
)
def test_predict_dimension_shared_evidence_is_lower(make, c, seed):
    # ordered classes, or neighbours sharing their evidence: fewer than C - 1 dimensions
    ids, y, v = make(np.random.default_rng(seed), c)
    for method in ["class_means", "bow"]:
        r = wd.predict_dimension(ids, y, v, method=method)
        assert r.dimension < c - 1
        assert r.participation_ratio < c - 1.5


def test_predict_dimension_multilabel_counts_labels():
    ids, y, v = _multilabel(np.random.default_rng(9), 3)
    for method in ["class_means", "bow"]:
        r = wd.predict_dimension(ids, y, v, multilabel=True, method=method)
        assert r.dimension == 3
        assert r.participation_ratio == pytest.approx(3, rel=0.1)


def test_predict_dimension_min_count_and_mask():
    rng = np.random.default_rng(10)
    ids, y, v, _ = _categorical(rng, 3, b=1000)
    ids = np.concatenate([ids, np.full((1000, 5), v)], axis=1)  # padding id v (rare word)
    mask = np.broadcast_to(np.arange(ids.shape[1])[None] < 40, ids.shape)
    r = wd.predict_dimension(ids, y, v + 1, mask=mask, min_count=1)
    assert r.dimension == 2 and v not in r.words


def test_predict_dimension_of_two_classes_is_one():
    # Two classes: the class-mean contrasts are M_1 = -(n_0 / n_1) M_0, rank 1, so one
    # component holds all the variance and the participation ratio is exactly 1.
    ids = np.array([[2, 2, 3], [2, 4, 4], [3, 3, 4], [4, 4, 4]])
    r = wd.predict_dimension(ids, np.array([0, 0, 1, 1]), 5, min_count=1)
    assert r.dimension == 1 and r.participation_ratio == pytest.approx(1.0)
    np.testing.assert_allclose(r.explained_ratio, [1.0, 0.0], atol=1e-12)
    np.testing.assert_array_equal(r.words, [2, 3, 4])  # words 0 and 1 never occur
    # evidence of word 2 for class 0: mean f over class 0 (1/2) minus overall (1/4)
    assert r.evidence[0, 0] == pytest.approx(2 / 3 / 2 + 1 / 3 / 2 - 0.25)


# ------------------------------------------------------------------------------ errors


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: wd.word_counts(np.array([[0, 5]]), 3), "outside"),
        (lambda: wd.word_counts(np.array([[0.5]]), 3), "token_ids"),
        (lambda: wd.word_counts(np.zeros((2, 3), int), 3, mask=np.ones((2, 2))), "mask"),
        (lambda: wd.word_counts(np.zeros((2, 3), int), 3, lengths=[1, 4]), "lengths"),
        (lambda: wd.fit_bag_of_words(np.zeros((2, 3), int), [0, 1, 1], 3), "labels"),
        (lambda: wd.predict_dimension(np.zeros((2, 3), int), [0, 1], 3, method="x"), "method"),
        (lambda: wd.predict_dimension(np.zeros((2, 3), int), [0, 1], 3, min_count=99), "min_c"),
        (lambda: wd.predict_dimension(np.zeros((2, 3), int), [0, 1], 3, threshold=0), "thresh"),
        (
            lambda: wd.predict_dimension(np.zeros((2, 3), int), [0, 1], 3, multilabel=True),
            "multilabel",
        ),
        (lambda: wd.word_projections(np.ones((1, 2)), np.ones((2, 2)), np.ones(2)), "embed"),
    ],
)
def test_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()
