"""A synthetic sentiment task with planted modifiers (negators, intensifiers) of known
gain and reach: ``rnndyn.data.contextual.sentiment(key, n)``.

Vocabulary: positive words ``good{i}`` (valence +1), negative words ``bad{i}`` (-1),
modifier words (valence 0; ``not`` and ``very`` by default) and neutral words. A
document is an i.i.d. token sequence. Its score is

    score = Σ_t v(w_t) · Π_{m at s < t, t − s <= reach_m} gain_m

so ``not`` multiplies the valence of the words up to ``reach`` tokens after it by -1 (a
flip), ``very`` by 2; modifiers in range of the same word multiply. The label is
``score > 0``; documents with ``score = 0`` are redrawn, and the classes are balanced.
A bag of words cannot represent this; an RNN can, by holding a modifier in its state for
``reach`` tokens. ``Dataset.evidence[:, 1]`` is each word's own valence (``[:, 0]`` its
negative); the planted modifiers are the ``modifiers`` argument.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import numpy as np

from rnndyn import _checks
from rnndyn.data.dataset import PAD, UNK, Dataset

__all__ = ["DEFAULT_MODIFIERS", "sentiment", "vocabulary"]

#: ``(word, gain, reach)``: ``not`` flips the next valence words within 3 tokens, ``very``
#: doubles them within 2.
DEFAULT_MODIFIERS: tuple[tuple[str, float, int], ...] = (("not", -1.0, 3), ("very", 2.0, 2))


def vocabulary(
    num_valence: int = 6,
    num_neutral: int = 40,
    modifiers: Sequence[tuple[str, float, int]] = DEFAULT_MODIFIERS,
) -> tuple[tuple[str, ...], np.ndarray, np.ndarray, np.ndarray]:
    """``(words, valence (V,), gain (V,), reach (V,))``; gain 1 and reach 0 for
    non-modifiers."""
    mods = _check_modifiers(modifiers)
    words = [PAD, UNK]
    words += [f"good{i}" for i in range(num_valence)] + [f"bad{i}" for i in range(num_valence)]
    words += [m for m, _, _ in mods] + [f"neutral{i}" for i in range(num_neutral)]
    v = len(words)
    valence, gain, reach = np.zeros(v), np.ones(v), np.zeros(v, np.int64)
    valence[2 : 2 + num_valence] = 1.0
    valence[2 + num_valence : 2 + 2 * num_valence] = -1.0
    for j, (_, g, r) in enumerate(mods):
        gain[2 + 2 * num_valence + j], reach[2 + 2 * num_valence + j] = g, r
    return tuple(words), valence, gain, reach


def _check_modifiers(modifiers) -> tuple[tuple[str, float, int], ...]:
    mods = tuple((str(m), float(g), int(r)) for m, g, r in modifiers)
    if len({m for m, _, _ in mods}) != len(mods) or any(r < 1 for _, _, r in mods):
        raise ValueError(
            f"modifiers must be (word, gain, reach >= 1) triples with distinct words, got "
            f"{modifiers!r}"
        )
    return mods


def scores(tokens: np.ndarray, lengths: np.ndarray, valence, gain, reach) -> np.ndarray:
    """``(B,)`` scores of documents ``tokens (B, T)`` under the planted rule."""
    tokens = np.asarray(tokens)
    b, t = tokens.shape
    real = np.arange(t)[None, :] < np.asarray(lengths)[:, None]
    factor = np.ones((b, t))
    for lag in range(1, int(np.max(reach, initial=0)) + 1):
        before = np.zeros((b, t), np.int64)
        before[:, lag:] = tokens[:, :-lag]
        applies = reach[before] >= lag
        applies[:, :lag] = False
        factor *= np.where(applies, gain[before], 1.0)
    return np.sum(np.where(real, valence[tokens] * factor, 0.0), axis=1)


def sentiment(
    key: jax.Array,
    num_examples: int,
    *,
    length: int | tuple[int, int] = (20, 60),
    num_valence: int = 6,
    num_neutral: int = 40,
    modifiers: Sequence[tuple[str, float, int]] = DEFAULT_MODIFIERS,
    valence_rate: float = 0.2,
    modifier_rate: float = 0.1,
) -> Dataset:
    """Binary sentiment with planted modifiers (module docstring).

    Args:
      key: PRNG key.
      num_examples: documents (balanced: half positive).
      length: tokens per document, or a ``(min, max)`` range drawn uniformly.
      num_valence: positive and negative words (each).
      num_neutral: neutral words.
      modifiers: ``(word, gain, reach)`` triples: the valence of every word up to
        ``reach`` tokens after ``word`` is multiplied by ``gain``.
      valence_rate: fraction of tokens that are valence words (half of each sign).
      modifier_rate: fraction that are modifiers (shared equally).

    Returns:
      ``Dataset`` with ``evidence[:, 1]`` the words' own valence.
    """
    _checks.check_key("key", key)
    n = _checks.check_int("num_examples", num_examples, minimum=2)
    lo, hi = (length, length) if isinstance(length, (int, np.integer)) else length
    _checks.check_int("length", lo, minimum=1)
    _checks.check_int("length", hi, minimum=lo)
    for name, rate in (("valence_rate", valence_rate), ("modifier_rate", modifier_rate)):
        _checks.check_positive(name, rate)
    if valence_rate + modifier_rate >= 1:
        raise ValueError(
            f"valence_rate + modifier_rate must be < 1, got {valence_rate} + {modifier_rate}"
        )
    words, valence, gain, reach = vocabulary(num_valence, num_neutral, modifiers)
    mods = len(_check_modifiers(modifiers))
    probs = np.zeros(len(words))
    probs[2 : 2 + 2 * num_valence] = valence_rate / (2 * num_valence)
    probs[2 + 2 * num_valence : 2 + 2 * num_valence + mods] = modifier_rate / mods
    probs[2 + 2 * num_valence + mods :] = (1 - valence_rate - modifier_rate) / num_neutral
    rng = _checks.host_rng(key)
    want = {0: n // 2, 1: n - n // 2}
    parts: dict[int, list] = {0: [], 1: []}
    while any(sum(len(p[1]) for p in parts[c]) < want[c] for c in (0, 1)):
        m = 2 * n
        lengths = rng.integers(lo, hi + 1, m)
        tokens = rng.choice(len(words), size=(m, hi), p=probs)
        tokens = np.where(np.arange(hi)[None, :] < lengths[:, None], tokens, 0)
        s = scores(tokens, lengths, valence, gain, reach)
        for c, rows in ((0, s < 0), (1, s > 0)):
            parts[c].append((tokens[rows], lengths[rows]))
    tok, lens, labels = [], [], []
    for c in (0, 1):
        t = np.concatenate([p[0] for p in parts[c]])[: want[c]]
        ln = np.concatenate([p[1] for p in parts[c]])[: want[c]]
        tok.append(t), lens.append(ln), labels.append(np.full(len(t), c))
    order = rng.permutation(n)
    evidence = np.stack([-valence, valence], axis=1)
    return Dataset(
        np.concatenate(tok)[order], np.concatenate(lens)[order], np.concatenate(labels)[order],
        words, 2, evidence=evidence, class_names=("negative", "positive"),
        name="synthetic-contextual",
    )  # fmt: skip
