"""Word statistics: word effects on a linearised network, word counts, the bag-of-words
baseline, and the manifold dimension predicted from word counts alone.

* word effects at one expansion point: ``word_projections`` (``l_i · J_inp · x_w``),
  ``readout_projections`` (``W J_inp x_w``), and, on a real basis of the slow modes that
  never splits a complex pair, ``mode_projections`` and ``logit_effects``;
* ``correlation`` (Pearson), ``word_counts``, ``fit_bag_of_words`` (logistic regression
  on counts, optax under ``jax.jit``);
* ``class_mean_evidence`` and ``predict_dimension`` (METHODS.md §7).

Word statistics build on the geometry of ``rnndyn.manifold`` (never the reverse).
"""

from __future__ import annotations

import functools
from typing import Any, Literal, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from rnndyn._checks import check_fraction, check_int, complex_or_real_array, real_array
from rnndyn._fit import adam_fit, class_loss
from rnndyn._records import record, static
from rnndyn.linearize import RealModes
from rnndyn.manifold import participation_ratio

__all__ = [
    "BagOfWords",
    "DimensionPrediction",
    "WordCounts",
    "class_mean_evidence",
    "correlation",
    "fit_bag_of_words",
    "logit_effects",
    "mode_projections",
    "predict_dimension",
    "readout_projections",
    "word_counts",
    "word_projections",
]


# ------------------------------------------------------------------------ word effects


def word_projections(left_vecs: Any, j_inp: Any, embeddings: Any) -> np.ndarray:
    """Effect of each word on each slow mode: ``P[w, i] = l_i · J_inp · x_w``.

    Args:
      left_vecs: ``(k, S)`` left eigenvectors as rows (``Eigen.left[:k]`` at one point).
      j_inp: ``(S, M)`` input Jacobian at that point.
      embeddings: ``(V, M)`` word embeddings ``x_w`` (minus ``x*`` if it is non-zero).

    Returns:
      ``(V, k)``; real unless ``left_vecs`` is complex with a non-negligible imaginary
      part (a complex mode), then complex.
    """
    l = complex_or_real_array("left_vecs", left_vecs, (1, 2), "(k, S)")
    l = np.atleast_2d(l)
    j = real_array("j_inp", j_inp, (2,), "(S, M)")
    e = real_array("embeddings", embeddings, (2,), "(V, M)")
    _check_chain(l.shape, j.shape, e.shape, "left_vecs", "(k, S)")
    out = e @ j.T @ l.T
    if np.iscomplexobj(out) and np.all(np.abs(out.imag) <= 1e-12 * (1 + np.abs(out.real))):
        out = out.real
    return out


def readout_projections(readout: Any, j_inp: Any, embeddings: Any) -> np.ndarray:
    """Direct effect of each word on the logits: ``P[w, c] = W_c · J_inp · x_w``.

    Args:
      readout: ``W (C, S)`` readout rows; j_inp: ``(S, M)``; embeddings: ``(V, M)``.

    Returns:
      ``(V, C)``.
    """
    w = np.atleast_2d(real_array("readout", readout, (1, 2), "(C, S)"))
    j = real_array("j_inp", j_inp, (2,), "(S, M)")
    e = real_array("embeddings", embeddings, (2,), "(V, M)")
    _check_chain(w.shape, j.shape, e.shape, "readout", "(C, S)")
    return e @ j.T @ w.T


def mode_projections(modes: RealModes, j_inp: Any, inputs: Any) -> np.ndarray:
    """Coordinates ``(V, d)`` of each input's first-order push on the slow modes.

    ``P = (left J_inp x_w)`` on the real basis of ``real_modes``: a real mode's
    coordinate is ``l_i · J_inp · x_w``; a complex pair contributes two coordinates, the
    push's components along ``Re r`` and ``Im r`` (both members, not half of one).

    Args:
      modes: ``RealModes`` (``left (d, S)``).
      j_inp: ``(S, M)``; inputs: ``(V, M)`` word embeddings minus the expansion input ``x*``.
    """
    left = real_array("modes.left", modes.left, (2,), "(d, S)")
    j = real_array("j_inp", j_inp, (2,), "(S, M)")
    e = real_array("inputs", inputs, (2,), "(V, M)")
    _check_chain(left.shape, j.shape, e.shape, "modes.left", "(d, S)")
    return e @ j.T @ left.T


def logit_effects(readout: Any, modes: RealModes, j_inp: Any, inputs: Any) -> np.ndarray:
    """Logit change ``(V, C)`` each input leaves on the slow modes.

    ``W R_d L_d J_inp x_w`` with ``R_d L_d`` the real projector on the modes' invariant
    subspace (``real_modes``), i.e. the part of the push that the slow dynamics keep.

    Args:
      readout: ``(C, S)`` readout rows in state space; modes: ``RealModes``;
      j_inp: ``(S, M)``; inputs: ``(V, M)`` (minus ``x*``).
    """
    w = np.atleast_2d(real_array("readout", readout, (1, 2), "(C, S)"))
    right = real_array("modes.right", modes.right, (2,), "(S, d)")
    if w.shape[1] != right.shape[0]:
        raise ValueError(f"readout has shape {w.shape}; expected (C, {right.shape[0]})")
    return mode_projections(modes, j_inp, inputs) @ (w @ right).T


def _check_chain(a: tuple, j: tuple, e: tuple, name: str, a_meaning: str) -> None:
    if a[1] != j[0] or j[1] != e[1]:
        raise ValueError(
            f"shapes do not chain: {name} {a}, j_inp {j}, embeddings {e}; expected "
            f"{name} {a_meaning}, j_inp (S, M), embeddings (V, M)"
        )


def correlation(a: Any, b: Any) -> float:
    """Pearson correlation of two equally long (flattened) arrays."""
    x = real_array("a", np.ravel(np.asarray(a)), (1,), "(n,) values")
    y = real_array("b", np.ravel(np.asarray(b)), (1,), "(n,) values")
    if x.shape != y.shape or x.size < 2:
        raise ValueError(f"a and b must have the same size >= 2, got {x.size} and {y.size}")
    x, y = x - x.mean(), y - y.mean()
    den = np.sqrt(np.sum(x**2) * np.sum(y**2))
    if den == 0:
        raise ValueError("a or b is constant; the correlation is undefined")
    return float(np.sum(x * y) / den)


# ---------------------------------------------------------------------- word counts


class WordCounts(NamedTuple):
    """``word_counts``: ``counts (B, V)`` float64 and ``lengths (B,)`` the counted tokens
    per document (``counts, lengths = word_counts(...)``)."""

    counts: np.ndarray
    lengths: np.ndarray


def word_counts(
    token_ids: Any, vocab_size: int, *, mask: Any = None, lengths: Any = None
) -> WordCounts:
    """Per-document word counts.

    Args:
      token_ids: ``(B, T)`` integer ids in ``[0, vocab_size)``.
      vocab_size: ``V``.
      mask: optional ``(B, T)``, true at real tokens.
      lengths: optional ``(B,)`` number of real tokens (a prefix of each row); give at
        most one of ``mask`` and ``lengths``; with neither, every token counts.

    Returns:
      ``WordCounts(counts, lengths)``: ``counts (B, V)`` float64 and ``lengths (B,)``
      the number of counted tokens ``T_d``.
    """
    pairs = _doc_word_pairs(token_ids, vocab_size, mask, lengths)
    counts = np.zeros((pairs.lengths.shape[0], vocab_size))
    counts[pairs.doc, pairs.word] = pairs.count
    return WordCounts(counts, pairs.lengths)


class _Pairs(NamedTuple):
    """Sparse word counts: ``count[i]`` occurrences of ``word[i]`` in document ``doc[i]``
    (sorted by document), and ``lengths (B,)`` the counted tokens per document. Memory is
    ``O(B T)``, never ``O(B V)``, so real vocabularies fit."""

    doc: np.ndarray
    word: np.ndarray
    count: np.ndarray
    lengths: np.ndarray


def _doc_word_pairs(token_ids: Any, vocab_size: int, mask: Any, lengths: Any) -> _Pairs:
    ids = np.asarray(token_ids)
    if ids.ndim != 2 or ids.dtype.kind not in "iu" or ids.size == 0:
        raise ValueError(
            f"token_ids must be a non-empty (B, T) integer array, got shape {ids.shape} "
            f"dtype {ids.dtype}"
        )
    check_int("vocab_size", vocab_size, 1)
    keep = _token_mask(ids.shape, mask, lengths)
    # Ids outside the vocabulary are allowed only where masked out (e.g. padding).
    if np.any(keep & ((ids < 0) | (ids >= vocab_size))):
        raise ValueError(f"token_ids has ids outside [0, vocab_size={vocab_size}) at real tokens")
    b = ids.shape[0]
    flat = (np.arange(b, dtype=np.int64)[:, None] * vocab_size + ids.astype(np.int64))[keep]
    uniq, count = np.unique(flat, return_counts=True)
    return _Pairs(
        uniq // vocab_size,
        uniq % vocab_size,
        count.astype(np.float64),
        keep.sum(axis=1).astype(np.float64),
    )


def _token_mask(shape: tuple, mask: Any, lengths: Any) -> np.ndarray:
    if mask is not None and lengths is not None:
        raise ValueError("give at most one of mask and lengths")
    if mask is not None:
        m = np.asarray(mask)
        if m.shape != shape:
            raise ValueError(f"mask has shape {m.shape}; expected {shape} like token_ids")
        return m.astype(bool)
    if lengths is not None:
        n = np.asarray(lengths)
        if n.shape != shape[:1] or n.dtype.kind not in "iu" or np.any((n < 0) | (n > shape[1])):
            raise ValueError(
                f"lengths must be ({shape[0]},) integers in [0, {shape[1]}], got shape "
                f"{n.shape} dtype {n.dtype}"
            )
        return np.arange(shape[1])[None, :] < n[:, None]
    return np.ones(shape, dtype=bool)


def _labels(labels: Any, batch: int, num_classes: int | None, multilabel: bool):
    """Validated labels and the number of classes / labels."""
    y = np.asarray(labels)
    if multilabel:
        if y.ndim != 2 or y.shape[0] != batch or not np.all((y == 0) | (y == 1)):
            raise ValueError(
                f"labels for multilabel must be ({batch}, L) of 0/1, got shape {y.shape}"
            )
        if num_classes is not None and num_classes != y.shape[1]:
            raise ValueError(f"num_classes={num_classes} but labels has {y.shape[1]} columns")
        return y.astype(np.float64), y.shape[1]
    if y.shape != (batch,) or y.dtype.kind not in "iu":
        raise ValueError(
            f"labels must be ({batch},) integer class ids, got shape {y.shape} dtype {y.dtype}"
        )
    c = int(y.max()) + 1 if num_classes is None else num_classes
    check_int("num_classes", c, 2)
    if np.any((y < 0) | (y >= c)):
        raise ValueError(f"labels must lie in [0, num_classes={c})")
    return y.astype(np.int64), c


# ------------------------------------------------------------------- bag of words


@record
class BagOfWords:
    """Bag-of-words logistic regression ``logits = counts @ weights + bias`` (a record:
    ``multilabel`` is static).

    Attributes:
      weights: ``(V, C)``; row ``w`` is word ``w``'s Δlogit per occurrence.
      bias: ``(C,)``.
      accuracy: training accuracy (multi-label: mean over labels of per-label accuracy).
      multilabel: sigmoid per label (true) or softmax over classes (false).
    """

    weights: np.ndarray
    bias: np.ndarray
    accuracy: float
    multilabel: bool = static(False)

    def logits(self, counts: Any) -> np.ndarray:
        """``(B, C)`` logits of ``counts (B, V)`` (see ``word_counts``)."""
        return np.asarray(counts, np.float64) @ self.weights + self.bias


def fit_bag_of_words(
    token_ids: Any,
    labels: Any,
    vocab_size: int,
    num_classes: int | None = None,
    *,
    mask: Any = None,
    lengths: Any = None,
    multilabel: bool = False,
    l2: float = 1e-4,
    steps: int = 500,
    learning_rate: float = 0.05,
    key: jax.Array | None = None,
) -> BagOfWords:
    """Fit a bag-of-words logistic regression on word counts (full-batch Adam, jit).

    Model: ``logits = n_d W + b`` with ``n_d`` the ``(V,)`` word counts of document
    ``d``; loss = mean softmax cross-entropy (or, ``multilabel``, mean sigmoid binary
    cross-entropy over labels) ``+ l2 · ‖W‖²``. The problem is convex, so starting from
    zeros (``key=None``) is fine; a ``key`` starts from small random weights instead.

    Args:
      token_ids: ``(B, T)`` ids; mask / lengths: which tokens count (see ``word_counts``).
      labels: ``(B,)`` class ids, or ``(B, L)`` 0/1 with ``multilabel=True``.
      vocab_size: ``V``; num_classes: ``C`` (default ``max(labels) + 1``).
      l2, steps, learning_rate: regularisation and optimiser settings.
      key: optional PRNG key for the initial weights.

    Returns:
      ``BagOfWords`` with ``weights (V, C)``, ``bias (C,)`` and training accuracy.
    """
    pairs = _doc_word_pairs(token_ids, vocab_size, mask, lengths)
    num_docs = pairs.lengths.shape[0]
    y, c = _labels(labels, num_docs, num_classes, multilabel)
    check_int("steps", steps, 1)
    if not (isinstance(l2, (int, float, np.floating)) and l2 >= 0):
        raise ValueError(f"l2 must be a number >= 0, got {l2!r}")
    if not (isinstance(learning_rate, (int, float, np.floating)) and learning_rate > 0):
        raise ValueError(f"learning_rate must be a number > 0, got {learning_rate!r}")
    w0 = jnp.zeros((vocab_size, c), jnp.float32)
    if key is not None:
        w0 = 0.01 * jax.random.normal(key, (vocab_size, c), jnp.float32)
    sparse = (
        jnp.asarray(pairs.doc, jnp.int32),
        jnp.asarray(pairs.word, jnp.int32),
        jnp.asarray(pairs.count, jnp.float32),
    )
    w, b = _fit_bow(
        sparse,
        jnp.asarray(y),
        w0,
        float(l2),
        int(steps),
        float(learning_rate),
        bool(multilabel),
        num_docs,
    )
    w, b = np.asarray(w, np.float64), np.asarray(b, np.float64)
    logits = np.zeros((num_docs, c)) + b
    np.add.at(logits, pairs.doc, pairs.count[:, None] * w[pairs.word])
    if multilabel:
        acc = float(np.mean((logits > 0) == (y > 0.5)))
    else:
        acc = float(np.mean(np.argmax(logits, axis=1) == y))
    return BagOfWords(w, b, acc, multilabel)


@functools.partial(jax.jit, static_argnums=(4, 5, 6, 7))
def _fit_bow(sparse, y, w0, l2, steps, learning_rate, multilabel, num_docs):
    doc, word, count = sparse

    def loss(params):
        w, b = params
        # Sparse n_d W: sum count * W[word] per document (documents are sorted).
        logits = jax.ops.segment_sum(
            count[:, None] * w[word], doc, num_segments=num_docs, indices_are_sorted=True
        )
        return class_loss(logits + b, y, multilabel) + l2 * jnp.sum(w**2)

    return adam_fit(loss, (w0, jnp.zeros(w0.shape[1], w0.dtype)), steps, learning_rate)


# ------------------------------------------------------------- predicted dimension


def class_mean_evidence(
    token_ids: Any,
    labels: Any,
    vocab_size: int,
    *,
    mask: Any = None,
    lengths: Any = None,
    num_classes: int | None = None,
    multilabel: bool = False,
) -> np.ndarray:
    """Class-mean word-frequency contrasts ``M (C, V)`` (or ``(L, V)`` for multi-label).

    With ``f_d = n_d / T_d`` a document's word frequencies and ``f̄`` their mean over all
    documents: categorical ``M_c = mean_{d ∈ c} f_d − f̄``; multi-label
    ``M_l = mean_{d: y_dl = 1} f_d − mean_{d: y_dl = 0} f_d``. Documents with no counted
    tokens are skipped; a class (or label side) with no documents gives a zero row.
    """
    pairs = _doc_word_pairs(token_ids, vocab_size, mask, lengths)
    return _class_means(pairs, labels, vocab_size, num_classes, multilabel)


def _class_means(
    pairs: _Pairs, labels: Any, vocab_size: int, num_classes: int | None, multilabel: bool
) -> np.ndarray:
    y, c = _labels(labels, pairs.lengths.shape[0], num_classes, multilabel)
    has_tokens = pairs.lengths > 0
    if not np.any(has_tokens):
        raise ValueError("no document has any counted token")
    freq = pairs.count / pairs.lengths[pairs.doc]  # entries of f_d = n_d / T_d

    def mean_f(doc_weight: np.ndarray) -> np.ndarray | None:
        """Weighted mean of f_d over the documents with tokens (None if weight 0)."""
        total = doc_weight[has_tokens].sum()
        if total == 0:
            return None
        return np.bincount(pairs.word, freq * doc_weight[pairs.doc], vocab_size) / total

    rows = []
    if multilabel:
        for l in range(c):
            on, off = mean_f(y[:, l]), mean_f(1.0 - y[:, l])
            rows.append(np.zeros(vocab_size) if on is None or off is None else on - off)
    else:
        overall = mean_f(np.ones(y.shape[0]))
        for k in range(c):
            m = mean_f((y == k).astype(np.float64))
            rows.append(np.zeros(vocab_size) if m is None else m - overall)
    return np.stack(rows)


@record
class DimensionPrediction:
    """Manifold dimension predicted from word counts (a record).

    Attributes:
      dimension: #components of the evidence vectors to reach ``threshold``.
      explained_ratio: ``(n,)`` variance fractions of those components, descending.
      cumulative: ``(n,)`` running sum of ``explained_ratio``.
      participation_ratio: ``(Σλ)² / Σλ²`` of the component variances.
      evidence: ``(V', C)`` evidence vector of each kept word (rows follow ``words``).
      words: ``(V',)`` ids of the kept words (total count ``>= min_count``).
    """

    dimension: int
    explained_ratio: np.ndarray
    cumulative: np.ndarray
    participation_ratio: float
    evidence: np.ndarray
    words: np.ndarray


def predict_dimension(
    token_ids: Any,
    labels: Any,
    vocab_size: int,
    *,
    mask: Any = None,
    lengths: Any = None,
    num_classes: int | None = None,
    multilabel: bool = False,
    threshold: float = 0.9,
    method: Literal["class_means", "bow"] = "class_means",
    min_count: int = 1,
    bow: BagOfWords | None = None,
    bow_kwargs: dict | None = None,
) -> DimensionPrediction:
    """Predict the attractor-manifold dimension from word-count statistics alone.

    The dimension is the number of principal components of the words' class-evidence
    vectors needed to explain ``threshold`` of their variance. Only words with total
    count ``>= min_count`` are used (``V'`` of them).

    ``method="class_means"`` (METHODS §7, item 1): with ``f_d = n_d / T_d``,
    ``M_c = mean_{d∈c} f_d − mean_d f_d`` (``C`` rows; multi-label: one row per label,
    ``mean_{d: y_l=1} f_d − mean_{d: y_l=0} f_d``). The PCA is the SVD of ``M``
    restricted to the kept words, ``λ_i = s_i²`` (not re-centred: the rows are already
    contrasts with the overall mean, so a categorical ``M`` has rank ``C − 1``).
    Frequent words weigh more by construction (their frequencies move more).
    ``evidence = Mᵀ``.

    ``method="bow"`` (METHODS §7, item 2): fit ``fit_bag_of_words`` (or use ``bow``);
    word ``w``'s evidence is its Δlogit ``W_w (C,)``, centred over classes for softmax
    (a common shift of all logits changes nothing). With ``p_w`` the word's share of all
    tokens, the PCA is of the rows ``√p_w (W_w − W̄)`` with ``W̄ = Σ p_w W_w / Σ p_w``
    (frequency-weighted PCA of the evidence vectors).

    Args:
      token_ids: ``(B, T)`` ids; mask / lengths: see ``word_counts``.
      labels: ``(B,)`` class ids, or ``(B, L)`` 0/1 with ``multilabel=True``.
      vocab_size: ``V``; num_classes: ``C`` (default ``max(labels) + 1``).
      threshold: variance fraction in ``(0, 1]``.
      method: ``"class_means"`` or ``"bow"``.
      min_count: minimum total count of a word to be used.
      bow: an already fitted model for ``method="bow"``.
      bow_kwargs: extra arguments for ``fit_bag_of_words`` (e.g. ``key``, ``steps``).

    Returns:
      ``DimensionPrediction``.
    """
    check_fraction("threshold", threshold)
    check_int("min_count", min_count, 1)
    pairs = _doc_word_pairs(token_ids, vocab_size, mask, lengths)
    freq = np.bincount(pairs.word, pairs.count, vocab_size)
    words = np.flatnonzero(freq >= min_count)
    if words.size == 0:
        raise ValueError(f"no word occurs at least min_count={min_count} times")
    if method == "class_means":
        evidence = _class_means(pairs, labels, vocab_size, num_classes, multilabel).T[words]
        rows = evidence
    elif method == "bow":
        if bow is None:
            bow = fit_bag_of_words(
                token_ids,
                labels,
                vocab_size,
                num_classes,
                mask=mask,
                lengths=lengths,
                multilabel=multilabel,
                **(bow_kwargs or {}),
            )
        if bow.weights.shape[0] != vocab_size:
            raise ValueError(
                f"bow.weights has shape {bow.weights.shape}; expected ({vocab_size}, C)"
            )
        evidence = bow.weights[words]
        if not bow.multilabel:
            evidence = evidence - evidence.mean(axis=1, keepdims=True)
        p = freq[words] / freq[words].sum()
        rows = np.sqrt(p)[:, None] * (evidence - p @ evidence)
    else:
        raise ValueError(f"method must be 'class_means' or 'bow', got {method!r}")
    lam = np.linalg.svd(rows, compute_uv=False) ** 2
    total = lam.sum()
    ratio = lam / total if total > 0 else np.zeros_like(lam)
    cumulative = np.cumsum(ratio)
    dim = int(np.searchsorted(cumulative, threshold - 1e-12) + 1) if total > 0 else 0
    pr = participation_ratio(lam)
    return DimensionPrediction(dim, ratio, cumulative, pr, evidence, words)
