"""The common result type of every data source: padded token ids plus labels."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import jax
import numpy as np

from rnndyn import _checks

PAD, UNK = "<pad>", "<unk>"
PAD_ID, UNK_ID = 0, 1
# Length bucketing sorts within chunks of this many batches: long enough to group similar
# lengths, short enough that batch composition still varies between epochs.
BUCKET_BATCHES = 50


# eq=False: identity equality and hashing (field-wise == is ambiguous for arrays).
@dataclasses.dataclass(frozen=True, eq=False)
class Dataset:
    """A tokenised text-classification set.

    Attributes:
        tokens: (B, T) int32 token ids, padded with 0 (``<pad>``).
        lengths: (B,) int32 number of real tokens per example (>= 1).
        labels: (B,) int32 class ids in [0, C); for multi-label data (B, L) int32 in {0, 1}.
        vocab: id -> word; ``vocab[0] == "<pad>"``, ``vocab[1] == "<unk>"``.
        num_classes: C, or L for multi-label data.
        multilabel: whether labels are (B, L) independent binary labels.
        ordered: whether class ids are ordered (e.g. star ratings).
        evidence: (V, C) true class evidence of each word (synthetic data only); rows 0, 1 zero.
        class_names: optional names of the C classes / L labels.
        name: free-form description.
    """

    tokens: np.ndarray
    lengths: np.ndarray
    labels: np.ndarray
    vocab: tuple[str, ...]
    num_classes: int
    multilabel: bool = False
    ordered: bool = False
    evidence: np.ndarray | None = None
    class_names: tuple[str, ...] | None = None
    name: str = ""

    def __post_init__(self) -> None:
        # Coerce dtypes once so every consumer can rely on int32 arrays and a tuple vocab.
        set_ = object.__setattr__
        set_(self, "tokens", np.asarray(self.tokens, dtype=np.int32))
        set_(self, "lengths", np.asarray(self.lengths, dtype=np.int32))
        set_(self, "labels", np.asarray(self.labels, dtype=np.int32))
        set_(self, "vocab", tuple(self.vocab))
        if self.class_names is not None:
            set_(self, "class_names", tuple(self.class_names))
        if self.evidence is not None:
            set_(self, "evidence", np.asarray(self.evidence, dtype=np.float32))
        _validate(self)

    @property
    def mask(self) -> np.ndarray:
        """(B, T) bool, True at real tokens."""
        return np.arange(self.tokens.shape[1])[None, :] < self.lengths[:, None]

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def __len__(self) -> int:
        return int(self.tokens.shape[0])

    def subset(self, index: Any) -> Dataset:
        """The examples selected by ``index`` (int array, slice or (B,) bool mask)."""
        if isinstance(index, (int, np.integer)):
            index = [index]
        return dataclasses.replace(
            self,
            tokens=self.tokens[index],
            lengths=self.lengths[index],
            labels=self.labels[index],
        )

    def batches(
        self,
        batch_size: int,
        *,
        key: jax.Array | None = None,
        shuffle: bool = True,
        drop_remainder: bool = False,
        bucket: bool = True,
        width_multiple: int = 16,
    ) -> Iterator[dict[str, np.ndarray]]:
        """Yield every example once, as dicts of numpy arrays.

        Each dict has ``tokens`` (b, T') int32, ``mask`` (b, T') bool and ``labels`` (b,)
        (or (b, L)). T' is the longest length in the batch rounded up to a multiple of
        ``width_multiple`` (capped at T): few distinct shapes, so few jit recompilations;
        ``width_multiple=1`` trims exactly. With ``bucket``, examples are
        sorted by length within chunks of 50 batches (less padding) and, with ``shuffle``,
        the batch order is then shuffled. ``key`` seeds the shuffle; ``None`` means
        ``jax.random.key(0)``, so pass a fresh key per epoch for new orders.
        """
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)):
            raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
        if isinstance(width_multiple, bool) or not isinstance(width_multiple, (int, np.integer)):
            raise ValueError(f"width_multiple must be an integer >= 1, got {width_multiple!r}")
        if width_multiple < 1:
            raise ValueError(f"width_multiple must be an integer >= 1, got {width_multiple!r}")
        t = self.tokens.shape[1]
        for idx in _batch_indices(
            self.lengths, int(batch_size), key, shuffle, drop_remainder, bucket
        ):
            longest = int(self.lengths[idx].max())
            width = min(-(-longest // width_multiple) * width_multiple, t)
            lengths = self.lengths[idx]
            yield {
                "tokens": self.tokens[idx, :width],
                "mask": np.arange(width)[None, :] < lengths[:, None],
                "labels": self.labels[idx],
            }


def _batch_indices(
    lengths: np.ndarray,
    batch_size: int,
    key: jax.Array | None,
    shuffle: bool,
    drop_remainder: bool,
    bucket: bool,
) -> list[np.ndarray]:
    n = lengths.shape[0]
    if n == 0:
        return []
    if key is None:
        key = jax.random.key(0)
    _checks.check_key("key", key)
    k_order, k_batches = jax.random.split(key)
    order = np.asarray(jax.random.permutation(k_order, n)) if shuffle else np.arange(n)
    if bucket:
        chunk = batch_size * BUCKET_BATCHES  # a multiple of batch_size: one ragged batch at most
        parts = [order[i : i + chunk] for i in range(0, n, chunk)]
        order = np.concatenate([p[np.argsort(lengths[p], kind="stable")] for p in parts])
    out = [order[i : i + batch_size] for i in range(0, n, batch_size)]
    if drop_remainder and out[-1].shape[0] < batch_size:
        out = out[:-1]
    if shuffle and bucket and out:
        perm = np.asarray(jax.random.permutation(k_batches, len(out)))
        out = [out[i] for i in perm]
    return out


def _validate(ds: Dataset) -> None:
    tok, lens, lab = ds.tokens, ds.lengths, ds.labels
    if tok.ndim != 2:
        raise ValueError(f"tokens must have shape (B, T), got {tok.shape}")
    b, t = tok.shape
    if lens.shape != (b,):
        raise ValueError(f"lengths must have shape ({b},) to match tokens, got {lens.shape}")
    if b and (lens.min() < 1 or lens.max() > t):
        raise ValueError(
            f"lengths must lie in [1, {t}] (T of tokens), got range [{lens.min()}, {lens.max()}]"
        )
    if len(ds.vocab) < 2 or ds.vocab[0] != PAD or ds.vocab[1] != UNK:
        raise ValueError(f"vocab must start with ({PAD!r}, {UNK!r}), got {ds.vocab[:2]!r}")
    if b and (tok.min() < 0 or tok.max() >= len(ds.vocab)):
        raise ValueError(
            f"tokens must be ids in [0, {len(ds.vocab)}) (vocab size), "
            f"got range [{tok.min()}, {tok.max()}]"
        )
    c = ds.num_classes
    if isinstance(c, bool) or not isinstance(c, (int, np.integer)) or c < 1:
        raise ValueError(f"num_classes must be an integer >= 1, got {c!r}")
    want = (b, c) if ds.multilabel else (b,)
    if lab.shape != want:
        raise ValueError(f"labels must have shape {want}, got {lab.shape}")
    hi = 2 if ds.multilabel else c
    if b and (lab.min() < 0 or lab.max() >= hi):
        raise ValueError(f"labels must lie in [0, {hi}), got range [{lab.min()}, {lab.max()}]")
    if ds.evidence is not None and ds.evidence.shape != (len(ds.vocab), c):
        raise ValueError(
            f"evidence must have shape (vocab size, num_classes) = {(len(ds.vocab), c)}, "
            f"got {ds.evidence.shape}"
        )
    if ds.class_names is not None and len(ds.class_names) != c:
        raise ValueError(f"class_names must have {c} entries, got {len(ds.class_names)}")
