"""The common result type of every data source: padded token ids plus labels."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from rnndyn import _checks

if TYPE_CHECKING:
    import jax

PAD, UNK = "<pad>", "<unk>"
PAD_ID, UNK_ID = 0, 1
#: Batches are padded in time to a multiple of this, so jit compiles a few shapes only.
WIDTH_MULTIPLE = 32
#: Length bucketing sorts within chunks of this many batches: long enough to group similar
#: lengths, short enough that batch composition still varies between epochs.
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
        width_multiple: int = WIDTH_MULTIPLE,
    ) -> Iterator[dict[str, np.ndarray]]:
        """Yield every example once, as dicts of numpy arrays.

        Each dict has ``tokens`` (b, T') int32, ``mask`` (b, T') bool and ``labels`` (b,)
        (or (b, L)). T' is the longest length in the batch rounded up to a multiple of
        ``width_multiple`` (capped at T): few distinct shapes, so few jit recompilations;
        ``width_multiple=1`` trims exactly. With ``bucket``, examples are sorted by length
        within chunks of ``BUCKET_BATCHES`` batches (less padding) and, with ``shuffle``,
        the batch order is then shuffled. ``key`` seeds the shuffle; ``None`` means
        ``jax.random.key(0)``, so pass a fresh key per epoch for new orders.
        """
        batch_size = _checks.check_int("batch_size", batch_size, minimum=1)
        width_multiple = _checks.check_int("width_multiple", width_multiple, minimum=1)
        if key is None:
            import jax

            key = jax.random.key(0)
        _checks.check_key("key", key)
        rng = _checks.host_rng(key)
        for index in epoch_batches(
            self.lengths,
            batch_size,
            rng,
            shuffle=shuffle,
            bucket=bucket,
            drop_remainder=drop_remainder,
        ):
            batch = pad_batch(self, index, width_multiple=width_multiple)
            yield {name: batch[name] for name in ("tokens", "mask", "labels")}


def epoch_batches(
    lengths: np.ndarray,
    batch_size: int,
    rng: np.random.Generator,
    *,
    shuffle: bool = True,
    bucket: bool = True,
    drop_remainder: bool = True,
) -> list[np.ndarray]:
    """Row indices of one epoch's batches over examples of the given ``lengths``.

    With ``shuffle``, rows are visited in the order of ``rng.permutation(n)``. With
    ``bucket``, rows are then stably sorted by length within chunks of ``BUCKET_BATCHES``
    batches (less padding, so faster steps) and, with ``shuffle`` too, the batch order is
    shuffled by ``rng.permutation(number of batches)``. ``drop_remainder`` drops a last
    batch of fewer than ``batch_size`` rows. Only ``rng`` decides the order, and it is
    drawn from in this fixed sequence, so a run replays an order by replaying the draws.
    """
    n = len(lengths)
    order = rng.permutation(n) if shuffle else np.arange(n)
    if bucket:
        chunk = batch_size * BUCKET_BATCHES  # a multiple of batch_size: one ragged batch at most
        order = np.concatenate(
            [
                p[np.argsort(lengths[p], kind="stable")]
                for p in np.split(order, range(chunk, n, chunk))
            ]
        )
    starts = np.arange(0, n - batch_size + 1 if drop_remainder else n, batch_size)
    if shuffle and bucket:
        starts = starts[rng.permutation(len(starts))]
    return [order[start : start + batch_size] for start in starts]


def pad_batch(
    data: Any,
    index: np.ndarray,
    batch_size: int | None = None,
    width_multiple: int = WIDTH_MULTIPLE,
) -> dict[str, np.ndarray]:
    """Rows ``index`` of ``data`` as a batch of ``batch_size`` rows (``None``: ``len(index)``).

    Returns numpy ``tokens`` (b, T') int32, ``mask`` (b, T') bool, ``lengths`` (b,) int32,
    ``labels`` (b,) or (b, L) int32 and ``weight`` (b,) float32. T' is the longest length
    of the rows, rounded up to ``width_multiple`` and capped at T, so a jitted step sees
    few shapes. Rows past ``len(index)`` are padding with ``weight`` 0, length 0 and an
    all-False mask, so a fixed ``batch_size`` gives fixed shapes for the last batch too.
    """
    index = np.asarray(index)
    if batch_size is None:
        batch_size = len(index)
    lengths = np.asarray(data.lengths)[index]
    full_t = np.shape(data.tokens)[1]
    longest = max(int(lengths.max()), 1) if len(index) else 1
    t = int(min(full_t, -(-longest // width_multiple) * width_multiple))
    tokens = np.zeros((batch_size, t), np.int32)
    tokens[: len(index)] = np.asarray(data.tokens)[index, :t]
    mask = np.zeros((batch_size, t), bool)
    mask[: len(index)] = np.arange(t)[None, :] < lengths[:, None]
    labels_in = np.asarray(data.labels)[index]
    labels = np.zeros((batch_size,) + labels_in.shape[1:], np.int32)
    labels[: len(index)] = labels_in
    weight = np.zeros((batch_size,), np.float32)
    weight[: len(index)] = 1.0
    lens = np.zeros((batch_size,), np.int32)
    lens[: len(index)] = np.minimum(lengths, t)
    return {"tokens": tokens, "mask": mask, "lengths": lens, "labels": labels, "weight": weight}


def check_dataset(model: Any, data: Any, name: str) -> None:
    """Raise ``ValueError`` unless ``data`` is a non-empty dataset that ``model`` (an
    ``rnndyn.Classifier``) can read: token ids within its vocabulary, matching
    ``multilabel`` and labels it accepts. ``name`` is the argument named in messages."""
    for field in ("tokens", "lengths", "labels"):
        if not hasattr(data, field):
            raise ValueError(
                f"{name} must be an rnndyn.data.Dataset (fields tokens, lengths, labels), "
                f"got {type(data).__name__} without {field!r}"
            )
    tokens = np.asarray(data.tokens)
    if tokens.ndim != 2 or tokens.shape[0] == 0:
        raise ValueError(
            f"{name}.tokens must have shape (examples, time) with examples > 0, got {tokens.shape}"
        )
    if np.shape(data.lengths) != tokens.shape[:1]:
        raise ValueError(
            f"{name}.lengths must have shape ({tokens.shape[0]},), got {np.shape(data.lengths)}"
        )
    if tokens.max() >= model.vocab_size or tokens.min() < 0:
        raise ValueError(
            f"{name}.tokens hold ids in [{tokens.min()}, {tokens.max()}] but the model has "
            f"vocab_size {model.vocab_size}"
        )
    if bool(getattr(data, "multilabel", False)) != model.multilabel:
        raise ValueError(
            f"{name}.multilabel is {getattr(data, 'multilabel', False)} but the model has "
            f"multilabel={model.multilabel}"
        )
    model.check_labels(np.asarray(data.labels), tokens.shape[0])


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
    _checks.check_int("num_classes", c, minimum=1)
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
