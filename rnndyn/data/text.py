"""Tokeniser, vocabulary and encoding shared by every real-text source.

Tokenisation: HTML tags (IMDB's ``<br />``) become spaces, text is lower-cased, and the
tokens are the runs of letters/digits, optionally joined by inner apostrophes
(``don't``, ``it's``). All other punctuation is dropped.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import NamedTuple

import numpy as np

from rnndyn import _checks
from rnndyn.data.dataset import PAD, PAD_ID, UNK, UNK_ID

TOKENIZER_VERSION = 1  # part of cache keys: bump when tokenize() changes
_TAG = re.compile(r"<[^>]*>")
_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)*")


def tokenize(text: str | bytes) -> list[str]:
    """Lower-case word tokens of ``text`` (bytes are decoded as UTF-8)."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    return _WORD.findall(_TAG.sub(" ", text).lower())


def build_vocab(
    docs: Iterable[Sequence[str]], *, vocab_size: int = 20000, min_count: int = 1
) -> tuple[str, ...]:
    """Vocabulary ``("<pad>", "<unk>", most frequent words...)`` of tokenised documents.

    Keeps words seen at least ``min_count`` times, at most ``vocab_size`` entries in all
    (the two specials included). Frequency ties are broken alphabetically, so the result
    is deterministic.
    """
    vocab_size = _checks.check_int("vocab_size", vocab_size, minimum=3)
    min_count = _checks.check_int("min_count", min_count, minimum=1)
    counts = Counter(w for doc in docs for w in doc)
    counts.pop(PAD, None)
    counts.pop(UNK, None)
    words = sorted((w for w, n in counts.items() if n >= min_count), key=lambda w: (-counts[w], w))
    return (PAD, UNK, *words[: vocab_size - 2])


class Encoded(NamedTuple):
    """``encode``: ``tokens (B, T)`` int32 ids padded with 0 and ``lengths (B,)`` int32
    (``tokens, lengths = encode(...)``)."""

    tokens: np.ndarray
    lengths: np.ndarray


def encode(docs: Sequence[Sequence[str]], vocab: Sequence[str], *, max_length: int) -> Encoded:
    """Tokenised documents -> ``Encoded(tokens (B, T) int32 ids padded with 0, lengths
    (B,) int32)``.

    Unknown words map to ``<unk>``; documents longer than ``max_length`` keep their first
    ``max_length`` tokens; an empty document becomes the single token ``<unk>`` (length 1),
    so every length is >= 1. T is the longest kept length.
    """
    max_length = _checks.check_int("max_length", max_length, minimum=1)
    index = {w: i for i, w in enumerate(vocab)}
    ids = [[index.get(w, UNK_ID) for w in doc[:max_length]] or [UNK_ID] for doc in docs]
    lengths = np.asarray([len(d) for d in ids], dtype=np.int32)
    t = int(lengths.max()) if len(ids) else 1
    tokens = np.full((len(ids), t), PAD_ID, dtype=np.int32)
    for i, d in enumerate(ids):
        tokens[i, : len(d)] = d
    return Encoded(tokens, lengths)
