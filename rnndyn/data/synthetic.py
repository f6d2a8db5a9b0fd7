"""Synthetic text-classification tasks with known answers, generated from a JAX PRNG key.

The vocabulary follows the studies' reference task: for every class ``c`` there are
evidence words ``"{modifier}_{class}"`` with valences ``very = +2``, ``some = +1``,
``not = -1`` (``words_per_class`` cycles through them), plus neutral words of valence 0.
``evidence[w, c]`` is the valence word ``w`` gives to class ``c``; the vocabulary and the
evidence depend only on the knobs, never on the key, so sets drawn with different keys
share them.

A document of (latent) class ``y`` is a sequence of i.i.d. tokens with
``p(w | y) ∝ exp(evidence_strength * evidence[w, y])``. Its label is the argmax of the
per-class summed valence ``counts @ evidence``; documents whose argmax is tied or differs
from ``y`` are redrawn (``MAX_ROUNDS`` times at most), so labels are balanced over
classes and are an exact function of the bag of words.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from rnndyn import _checks
from rnndyn.data.dataset import PAD, UNK, Dataset

DEFAULT_MODIFIERS: tuple[tuple[str, float], ...] = (("very", 2.0), ("some", 1.0), ("not", -1.0))
# Redraw rounds for documents whose bag-of-words label disagrees with their latent class.
# After them the remaining documents keep their bag-of-words label (ties broken at random),
# which only happens for very weak evidence or many labels.
MAX_ROUNDS = 100

Length = int | tuple[int, int]


class Vocabulary(NamedTuple):
    """``vocabulary`` and ``rating_vocabulary``: the ``words`` and their ``(V, C)``
    ``evidence`` (``vocab, evidence = vocabulary(...)``)."""

    words: tuple[str, ...]
    evidence: np.ndarray


# ---------------------------------------------------------------- validation


def _check_length(length: object) -> tuple[int, int]:
    if isinstance(length, (int, np.integer)) and not isinstance(length, bool):
        lo = hi = int(length)
    elif (
        isinstance(length, (tuple, list))
        and len(length) == 2
        and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in length)
    ):
        lo, hi = int(length[0]), int(length[1])
    else:
        raise ValueError(f"length must be an int or a (min, max) pair of ints, got {length!r}")
    if lo < 1 or hi < lo:
        raise ValueError(f"length must satisfy 1 <= min <= max, got {length!r}")
    return lo, hi


def _check_modifiers(modifiers: Sequence[tuple[str, float]]) -> tuple[tuple[str, float], ...]:
    mods = tuple((str(m), float(v)) for m, v in modifiers)
    if not mods or not any(v > 0 for _, v in mods):
        raise ValueError(
            f"modifiers must hold (name, valence) pairs with at least one valence > 0, "
            f"got {modifiers!r}"
        )
    if len({m for m, _ in mods}) != len(mods):
        raise ValueError(f"modifiers must have distinct names, got {modifiers!r}")
    return mods


# ---------------------------------------------------------------- vocabulary


def vocabulary(
    class_names: Sequence[str],
    words_per_class: int = 3,
    num_neutral: int = 10,
    modifiers: Sequence[tuple[str, float]] = DEFAULT_MODIFIERS,
    ordering: float = 0.0,
) -> Vocabulary:
    """Deterministic vocabulary and (V, C) evidence matrix for the given knobs.

    Word ``"{mod}_{class}"`` has ``evidence[w, c] = valence * (ordering / 2) ** |c - c_w|``:
    with ``ordering > 0`` it also supports neighbouring classes (half its valence per step
    at ``ordering = 1``). Repeats beyond the modifier list get a numeric suffix
    (``very2_pos``). Rows 0, 1 (``<pad>``, ``<unk>``) and neutral words are zero.
    """
    mods = _check_modifiers(modifiers)
    c = len(class_names)
    words, valence, owner = [PAD, UNK], [0.0, 0.0], [-1, -1]
    for k, name in enumerate(class_names):
        for j in range(words_per_class):
            mod, val = mods[j % len(mods)]
            rep = j // len(mods)
            words.append(f"{mod}{rep + 1 if rep else ''}_{name}")
            valence.append(val)
            owner.append(k)
    words += [f"neutral{i}" for i in range(num_neutral)]
    valence += [0.0] * num_neutral
    owner += [-1] * num_neutral
    own, val = np.asarray(owner), np.asarray(valence)
    dist = np.abs(own[:, None] - np.arange(c)[None, :])
    spread = np.where(dist == 0, 1.0, (ordering / 2.0) ** dist)
    evidence = np.where(own[:, None] >= 0, val[:, None] * spread, 0.0).astype(np.float32)
    return Vocabulary(tuple(words), evidence)


# ---------------------------------------------------------------- sampling


def _rng(key: jax.Array) -> np.random.Generator:
    """A numpy generator seeded from a JAX key.

    Sampling runs in numpy: the redraw loop has changing shapes, which would recompile
    every jax.random call.
    """
    _checks.check_key("key", key)
    return np.random.default_rng(np.asarray(jax.random.bits(key, (4,), jnp.uint32)))


def _draw_tokens(rng: np.random.Generator, probs: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """(n, V) per-document word probabilities -> (n, T) tokens, 0 past each length."""
    t = int(lengths.max())
    cdf = np.cumsum(probs, axis=1)
    u = rng.random((len(lengths), t, 1)) * cdf[:, None, -1:]
    tok = np.minimum((u >= cdf[:, None, :]).sum(axis=2), probs.shape[1] - 1)
    return np.where(np.arange(t)[None, :] < lengths[:, None], tok, 0).astype(np.int32)


def _scores(tokens: np.ndarray, evidence: np.ndarray) -> np.ndarray:
    """(n, T) tokens -> (n, C) summed evidence (pad rows of evidence are zero)."""
    counts = np.zeros((tokens.shape[0], evidence.shape[0]), np.float32)
    np.add.at(counts, (np.arange(tokens.shape[0])[:, None], tokens), 1.0)
    return counts @ evidence


def _balanced(rng: np.random.Generator, n: int, k: int) -> np.ndarray:
    """n draws of {0..k-1}, each value equally often (up to one), in random order."""
    return rng.permutation(np.arange(n) % k)


def _sample(
    rng: np.random.Generator,
    latent: np.ndarray,
    lengths: np.ndarray,
    evidence: np.ndarray,
    strength: float,
    multilabel: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """Draw documents for latent labels; redraw until their bag-of-words label matches.

    latent: (n,) class ids, or (n, L) {0,1} for multi-label. Returns (tokens, labels).
    """
    n, t = len(lengths), int(lengths.max())
    # Target direction in class space: +1 for the class (present labels), -1 for absent ones.
    if multilabel:
        direction = 2.0 * latent - 1.0
    else:
        direction = np.eye(evidence.shape[1])[latent]
    logits = strength * (direction @ evidence.T)
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs[:, :2] = 0.0  # never draw <pad> or <unk>
    tokens = np.zeros((n, t), np.int32)
    labels = np.zeros_like(latent)
    pending = np.arange(n)
    for _ in range(MAX_ROUNDS):
        if pending.size == 0:
            break
        draw = _draw_tokens(rng, probs[pending], lengths[pending])
        tokens[pending] = 0
        tokens[pending, : draw.shape[1]] = draw
        lab, ok = _label(_scores(draw, evidence), latent[pending], multilabel)
        labels[pending] = lab
        pending = pending[~ok]
    if pending.size:  # fall back to the bag-of-words label, ties broken at random
        s = _scores(tokens[pending], evidence)
        if multilabel:
            labels[pending] = np.where(s == 0, latent[pending], s > 0)
        else:
            labels[pending] = np.argmax(s + rng.random(s.shape) * 1e-3, axis=1)
    return tokens, labels.astype(np.int32)


def _label(s: np.ndarray, latent: np.ndarray, multilabel: bool) -> tuple[np.ndarray, np.ndarray]:
    """Bag-of-words labels from (n, C) scores, and whether they match the latent labels."""
    if multilabel:
        lab = (s > 0).astype(latent.dtype)
        return lab, np.all((lab == latent) & (s != 0), axis=1)
    best = s.max(axis=1, keepdims=True)
    unique = (s == best).sum(axis=1) == 1
    lab = np.argmax(s, axis=1)
    return lab, unique & (lab == latent)


# ---------------------------------------------------------------- public generators


def _generate(
    key: jax.Array,
    class_names: Sequence[str],
    num_examples: int,
    *,
    length: Length,
    words_per_class: int,
    num_neutral: int,
    evidence_strength: float,
    modifiers: Sequence[tuple[str, float]],
    ordering: float,
    multilabel: bool,
    name: str,
    vocab_evidence: tuple[tuple[str, ...], np.ndarray] | None = None,
) -> Dataset:
    _checks.check_int("num_examples", num_examples, 1)
    _checks.check_int("words_per_class", words_per_class, 1)
    _checks.check_int("num_neutral", num_neutral, 0)
    strength = _checks.check_positive("evidence_strength", evidence_strength)
    lo, hi = _check_length(length)
    if vocab_evidence is None:
        vocab_evidence = vocabulary(class_names, words_per_class, num_neutral, modifiers, ordering)
    vocab, evidence = vocab_evidence
    rng = _rng(key)
    lengths = rng.integers(lo, hi + 1, size=num_examples).astype(np.int32)
    c = len(class_names)
    if multilabel:
        # Balanced over the 2^L combinations: equal counts of each combination's index.
        combo = _balanced(rng, num_examples, 2**c)
        latent = (combo[:, None] >> np.arange(c)[None, :]) & 1
    else:
        latent = _balanced(rng, num_examples, c)
    tokens, labels = _sample(rng, latent, lengths, evidence, strength, multilabel)
    return Dataset(
        tokens=tokens,
        lengths=lengths,
        labels=labels,
        vocab=vocab,
        num_classes=c,
        multilabel=multilabel,
        ordered=ordering > 0,
        evidence=evidence,
        class_names=tuple(class_names),
        name=name,
    )


def categorical(
    key: jax.Array,
    num_classes: int = 3,
    num_examples: int = 1000,
    *,
    length: Length = (20, 40),
    words_per_class: int = 3,
    num_neutral: int = 10,
    evidence_strength: float = 1.0,
    modifiers: Sequence[tuple[str, float]] = DEFAULT_MODIFIERS,
    class_names: Sequence[str] | None = None,
) -> Dataset:
    """C mutually exclusive classes; each evidence word belongs to one class.

    Args:
        key: JAX PRNG key; only the documents depend on it.
        num_classes: C >= 2.
        num_examples: B >= 1.
        length: document length, an int or an inclusive (min, max) range drawn uniformly.
        words_per_class: evidence words per class (cycling through ``modifiers``).
        num_neutral: words with zero evidence for every class.
        evidence_strength: > 0; how much a document's class favours its evidence words.
        modifiers: (name, valence) pairs of the evidence words.
        class_names: names used in the words; default ``c0, c1, ...``.

    Returns:
        Dataset with (B, T) tokens, (B,) labels, (V, C) evidence.
    """
    _checks.check_int("num_classes", num_classes, 2)
    names = _class_names(class_names, num_classes, "c")
    return _generate(
        key,
        names,
        num_examples,
        length=length,
        words_per_class=words_per_class,
        num_neutral=num_neutral,
        evidence_strength=evidence_strength,
        modifiers=modifiers,
        ordering=0.0,
        multilabel=False,
        name=f"categorical{num_classes}",
    )


def ordered(
    key: jax.Array,
    num_classes: int = 5,
    num_examples: int = 1000,
    *,
    ordering: float = 0.5,
    length: Length = (20, 40),
    words_per_class: int = 3,
    num_neutral: int = 10,
    evidence_strength: float = 1.0,
    modifiers: Sequence[tuple[str, float]] = DEFAULT_MODIFIERS,
    class_names: Sequence[str] | None = None,
) -> Dataset:
    """C ordered classes (like star ratings) whose evidence words spill onto neighbours.

    ``ordering`` in [0, 1] is the correlation knob: a word of class c gives
    ``valence * (ordering / 2) ** |c - c'|`` to class c'. 0 is the categorical task; 1 gives
    half the valence to adjacent classes. Other arguments as in :func:`categorical`;
    class names default to ``1, 2, ..., C``.
    """
    _checks.check_int("num_classes", num_classes, 2)
    ok = isinstance(ordering, (int, float, np.integer, np.floating)) and not isinstance(
        ordering, bool
    )
    if not ok or not 0.0 <= float(ordering) <= 1.0:
        raise ValueError(f"ordering must be a number in [0, 1], got {ordering!r}")
    names = _class_names(class_names, num_classes, "")
    ds = _generate(
        key,
        names,
        num_examples,
        length=length,
        words_per_class=words_per_class,
        num_neutral=num_neutral,
        evidence_strength=evidence_strength,
        modifiers=modifiers,
        ordering=float(ordering),
        multilabel=False,
        name=f"ordered{num_classes}",
    )
    # Ordered even at ordering=0: the class ids still carry an order for the consumer.
    return _replace_ordered(ds)


def multilabel(
    key: jax.Array,
    num_labels: int = 3,
    num_examples: int = 1000,
    *,
    length: Length = (20, 40),
    words_per_class: int = 3,
    num_neutral: int = 10,
    evidence_strength: float = 1.0,
    modifiers: Sequence[tuple[str, float]] = DEFAULT_MODIFIERS,
    class_names: Sequence[str] | None = None,
) -> Dataset:
    """L independent binary labels; label l is present iff its summed valence is > 0.

    Latent label combinations are balanced over the 2^L combinations; documents favour the
    positive words of present labels and the negative (``not``) words of absent ones.
    Returns a Dataset with (B, L) {0,1} labels. Other arguments as in :func:`categorical`;
    ``modifiers`` needs a negative valence so that absent labels can be evidenced.
    """
    _checks.check_int("num_labels", num_labels, 1)
    if not any(float(v) < 0 for _, v in modifiers):
        raise ValueError(
            f"modifiers must include a negative valence for multilabel data, got {modifiers!r}"
        )
    names = _class_names(class_names, num_labels, "l")
    return _generate(
        key,
        names,
        num_examples,
        length=length,
        words_per_class=words_per_class,
        num_neutral=num_neutral,
        evidence_strength=evidence_strength,
        modifiers=modifiers,
        ordering=0.0,
        multilabel=True,
        name=f"multilabel{num_labels}",
    )


def sentiment(
    key: jax.Array,
    num_examples: int = 1000,
    *,
    length: Length = (20, 40),
    words_per_class: int = 3,
    num_neutral: int = 10,
    evidence_strength: float = 1.0,
    modifiers: Sequence[tuple[str, float]] = DEFAULT_MODIFIERS,
) -> Dataset:
    """Binary sentiment: :func:`categorical` with classes ``("negative", "positive")``."""
    ds = categorical(
        key,
        2,
        num_examples,
        length=length,
        words_per_class=words_per_class,
        num_neutral=num_neutral,
        evidence_strength=evidence_strength,
        modifiers=modifiers,
        class_names=("negative", "positive"),
    )
    return _renamed(ds, "sentiment")


DEFAULT_VALENCES: tuple[tuple[str, float], ...] = (
    ("awful", -2.0),
    ("bad", -1.0),
    ("good", 1.0),
    ("awesome", 2.0),
)


def rating_vocabulary(
    num_classes: int = 5,
    num_neutral: int = 10,
    valences: Sequence[tuple[str, float]] = DEFAULT_VALENCES,
    evidence_strength: float = 1.0,
) -> Vocabulary:
    """Vocabulary and ``(V, C)`` evidence of :func:`ratings` (deterministic).

    Class ``y`` tilts word probabilities by ``a_y = linspace(−1, 1, C)[y]``:
    ``p(w | y) ∝ exp(evidence_strength · a_y · v_w)`` over the drawable words (valence
    ``v_w``, 0 for neutral words). ``m_y = Σ_w p(w | y) v_w`` is the class's expected
    mean valence and ``e_c = (m_{c−1} + m_c) / 2`` the ``C − 1`` bin edges. The evidence
    ``evidence[w, c] = a_c v_w − β_c`` with ``β_c = Δa Σ_{j<=c} e_j`` (``Δa`` the step of
    ``a``) makes ``argmax_c counts @ evidence`` exactly the bin of the mean valence
    ``S / T`` among the edges; rows 0, 1 (``<pad>``, ``<unk>``) are zero.
    """
    c = _checks.check_int("num_classes", num_classes, 2)
    _checks.check_int("num_neutral", num_neutral, 0)
    strength = _checks.check_positive("evidence_strength", evidence_strength)
    vals = tuple((str(w), float(v)) for w, v in valences)
    if not any(v > 0 for _, v in vals) or not any(v < 0 for _, v in vals):
        raise ValueError(
            f"valences must hold (word, valence) pairs with positive and negative valences, "
            f"got {valences!r}"
        )
    if len({w for w, _ in vals}) != len(vals):
        raise ValueError(f"valences must have distinct words, got {valences!r}")
    words = (
        (PAD, UNK) + tuple(w for w, _ in vals) + tuple(f"neutral{i}" for i in range(num_neutral))
    )
    v = np.array([v for _, v in vals] + [0.0] * num_neutral)
    a = np.linspace(-1.0, 1.0, c)
    logits = strength * a[:, None] * v[None, :]
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    m = p @ v  # expected mean valence per class, increasing in a
    edges = (m[1:] + m[:-1]) / 2.0
    beta = np.concatenate([[0.0], np.cumsum(edges)]) * (a[1] - a[0])
    evidence = np.zeros((len(words), c))
    evidence[2:] = a[None, :] * v[:, None] - beta[None, :]
    return Vocabulary(words, evidence.astype(np.float32))


def ratings(
    key: jax.Array,
    num_classes: int = 5,
    num_examples: int = 1000,
    *,
    length: Length = (20, 40),
    num_neutral: int = 10,
    evidence_strength: float = 1.0,
    valences: Sequence[tuple[str, float]] = DEFAULT_VALENCES,
) -> Dataset:
    """Star ratings: one valence scale (awful −2 … awesome +2) binned into C ordered classes.

    The studies' ordered task: a document's label is its mean word valence ``S / T``
    binned into ``C`` classes (edges between the classes' expected means, see
    :func:`rating_vocabulary`), so neighbouring classes share all their evidence: the
    dimension predicted from word counts is about 2 instead of ``C − 1`` (the valence
    and, since the mean is binned, the length). Documents of latent class ``y`` draw words
    with ``p(w | y) ∝ exp(evidence_strength · a_y · v_w)`` and are redrawn until their
    bin is ``y`` (as in :func:`categorical`), so classes are balanced.
    """
    vocab_evidence = rating_vocabulary(num_classes, num_neutral, valences, evidence_strength)
    ds = _generate(
        key,
        tuple(str(i + 1) for i in range(num_classes)),
        num_examples,
        length=length,
        words_per_class=1,
        num_neutral=num_neutral,
        # The tilt is already in the evidence: sampling uses strength · evidence[:, y].
        evidence_strength=evidence_strength,
        modifiers=DEFAULT_MODIFIERS,
        ordering=0.0,
        multilabel=False,
        name=f"ratings{num_classes}",
        vocab_evidence=vocab_evidence,
    )
    return _replace_ordered(ds)


def _class_names(names: Sequence[str] | None, c: int, prefix: str) -> tuple[str, ...]:
    if names is None:
        return tuple(f"{prefix}{i + (0 if prefix else 1)}" for i in range(c))
    names = tuple(str(n) for n in names)
    if len(names) != c or len(set(names)) != c:
        raise ValueError(f"class_names must be {c} distinct names, got {names!r}")
    return names


def _replace_ordered(ds: Dataset) -> Dataset:
    return dataclasses.replace(ds, ordered=True)


def _renamed(ds: Dataset, name: str) -> Dataset:
    return dataclasses.replace(ds, name=name)
