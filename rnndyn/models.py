"""Text classifiers built on rnndyn cells: embedding -> recurrent cell -> linear readout.

``Classifier`` is an immutable description (cell and sizes); its parameters are a plain
dict made by ``Classifier.init`` and passed explicitly, so every method composes with
``jax.jit``/``jax.grad`` and the trained cell can be handed as is to the analysis tools
(``find_fixed_points(model.cell, params["cell"], ...)``).

Shapes: ``B`` batch, ``T`` time, ``V`` vocabulary, ``E`` embedding, ``S`` cell state,
``N`` readout features (``cell.output(state)``), ``C`` classes (or labels when
multi-label).
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import lax

from rnndyn import _bptt, _checks
from rnndyn.cells import GRU, LSTM, UGRNN, Cell, Linear, Vanilla

Array = jax.Array
Params = Any

__all__ = ["CELLS", "Classifier", "Outputs", "make_cell", "cell_name"]


class Outputs(NamedTuple):
    """``Classifier.apply(..., return_states=True)``: ``logits (B, C)`` and the
    ``states (B, T, S)`` after each step (``logits, states = model.apply(...)``)."""

    logits: Array
    states: Array


#: Built-in cells by lower-case name, as used by checkpoints and the command line.
CELLS: dict[str, type[Cell]] = {
    "vanilla": Vanilla, "gru": GRU, "lstm": LSTM, "ugrnn": UGRNN, "linear": Linear,
}  # fmt: skip


def make_cell(name: str, hidden_size: int) -> Cell:
    """Built-in cell from its name (``vanilla``, ``gru``, ``lstm``, ``ugrnn``, ``linear``;
    any case)."""
    key = str(name).lower()
    if key not in CELLS:
        raise ValueError(f"unknown cell {name!r}; expected one of {sorted(CELLS)}")
    return CELLS[key](hidden_size)


def cell_name(cell: Cell) -> str:
    """Inverse of ``make_cell``: the lower-case name of a built-in cell."""
    for name, cls in CELLS.items():
        if type(cell) is cls:
            return name
    raise ValueError(
        f"only the built-in cells {sorted(CELLS)} can be described by name, got "
        f"{type(cell).__name__}"
    )


def _check_tokens_mask(tokens: Any, mask: Any) -> tuple[Array, Array]:
    tokens = jnp.asarray(tokens)
    mask = jnp.asarray(mask)
    if tokens.ndim != 2:
        raise ValueError(f"tokens must have shape (batch, time), got shape {tuple(tokens.shape)}")
    if not jnp.issubdtype(tokens.dtype, jnp.integer):
        raise ValueError(f"tokens must hold integer token ids, got dtype {tokens.dtype}")
    if mask.shape != tokens.shape:
        raise ValueError(
            f"mask must have the shape of tokens {tuple(tokens.shape)}, got {tuple(mask.shape)}"
        )
    if tokens.shape[1] == 0:
        raise ValueError("tokens has no time steps (shape (batch, 0)); expected at least one")
    return tokens, mask.astype(bool)


#: Built-in cells broadcast over a leading batch axis, so a batch goes through one call
#: (the same batched matmuls that ``jax.vmap`` of the cell produces).
_BATCHED_CELLS = (Vanilla, GRU, LSTM, UGRNN, Linear)


def _batched_step(model: Classifier, params: Params) -> Any:
    """``step(h (B, S), x (B, E)) -> h'`` for any cell."""
    if type(model.cell) in _BATCHED_CELLS:
        return lambda h, x: model.cell(params["cell"], h, x)
    # Unbatched calls: wrapped cells need not broadcast over batches.
    return jax.vmap(lambda h, x: model.cell(params["cell"], h, x))


def _states(model: Classifier, params: Params, tokens: Array, mask: Array) -> Array:
    """States after each token ``(B, T, S)``; inputs already validated. Masked steps keep
    the state (any mask, not only padding at the end)."""
    cell_step = _batched_step(model, params)
    # Gather batch-major, then swap: the embedding gradient then sums in (B, T) order.
    xs = jnp.swapaxes(params["embedding"][tokens], 0, 1)  # (T, B, E)

    def step(h, inputs):
        x_t, m = inputs
        h = jnp.where(m, cell_step(h, x_t), h)
        return h, h

    h0 = model.cell.initial_state((tokens.shape[0],))
    _, hs = lax.scan(step, h0, (xs, mask.T[:, :, None]))
    return jnp.swapaxes(hs, 0, 1)


def _final_state(model: Classifier, params: Params, tokens: Array, lengths: Array) -> Array:
    """State after token ``lengths[b]`` of each row ``(B, S)`` (the initial state where
    ``lengths`` is 0), for left-aligned tokens.

    Built-in cells go through ``rnndyn._bptt.final_state`` (hand-written
    back-propagation through time: the fast training path, reverse mode only). Other
    cells run every row for all T steps without masking and pick the state at its last
    real token afterwards (as flax's ``nn.RNN`` does with ``seq_lengths``).
    """
    if type(model.cell) in _BATCHED_CELLS:
        return _bptt.final_state(model.cell, params["cell"], params["embedding"], tokens, lengths)
    cell_step = _batched_step(model, params)
    xs = jnp.swapaxes(params["embedding"][tokens], 0, 1)  # (T, B, E)

    def step(h, x_t):
        h = cell_step(h, x_t)
        return h, h

    h0 = model.cell.initial_state((tokens.shape[0],))
    _, hs = lax.scan(step, h0, xs)  # (T, B, S)
    return _bptt.last_states(hs, lengths, h0)


# The model is static (hashable frozen dataclass): eager calls reuse one compiled scan.
_scan_states = jax.jit(_states, static_argnums=0)
_scan_final = jax.jit(_final_state, static_argnums=0)


@dataclasses.dataclass(frozen=True)
class Classifier:
    """Embedding ``(V, E)`` -> ``cell`` scanned over time -> readout ``(N, C)``.

    The cell starts from ``cell.initial_state()`` (zeros) and reads one embedded token
    per step; steps where ``mask`` is False leave the state unchanged, so a padded
    sequence ends in exactly the state of the unpadded one. Logits are
    ``cell.output(final_state) @ W + b``.

    Attributes:
      cell: any rnndyn cell with a known ``state_size``.
      vocab_size: ``V``; token ids must lie in ``[0, V)``.
      embed_size: ``E``, the cell's input size.
      num_classes: ``C``: classes, or labels when ``multilabel``.
      multilabel: independent binary labels (sigmoid) instead of one class (softmax).
    """

    cell: Cell
    vocab_size: int
    embed_size: int
    num_classes: int
    multilabel: bool = False

    def __post_init__(self):
        if not isinstance(self.cell, Cell):
            raise ValueError(
                f"cell must be an rnndyn cell (e.g. rnndyn.cells.GRU(64)), got "
                f"{type(self.cell).__name__}"
            )
        if self.cell.state_size is None:
            raise ValueError("cell must have a known state_size (pass state_size= when wrapping)")
        _checks.check_int("vocab_size", self.vocab_size, minimum=1)
        _checks.check_int("embed_size", self.embed_size, minimum=1)
        # One logit per class; a binary categorical task uses num_classes=2.
        _checks.check_int("num_classes", self.num_classes, minimum=1 if self.multilabel else 2)

    @property
    def readout_size(self) -> int:
        """``N``: size of ``cell.output(state)``."""
        spec = jax.ShapeDtypeStruct((self.cell.state_size,), jnp.float32)
        return int(jax.eval_shape(self.cell.output, spec).shape[-1])

    def init(self, key: Array) -> Params:
        """Parameters ``{"embedding": (V, E), "cell": ..., "readout": {"W": (N, C), "b": (C,)}}``.

        Embeddings are standard normal, readout ``W`` LeCun-normal, ``b`` zero.
        """
        k_emb, k_cell, k_out = jax.random.split(key, 3)
        # Unit-variance embeddings keep the cell's LeCun-scaled input pre-activations O(1).
        embedding = jax.random.normal(k_emb, (self.vocab_size, self.embed_size))
        w = jax.nn.initializers.lecun_normal()(k_out, (self.readout_size, self.num_classes))
        return {
            "embedding": embedding,
            "cell": self.cell.init(k_cell, self.embed_size),
            "readout": {"W": w, "b": jnp.zeros((self.num_classes,))},
        }

    def _checked(self, tokens: Any, mask: Any) -> tuple[Array, Array]:
        raw = tokens
        tokens, mask = _check_tokens_mask(tokens, mask)
        if not _checks.is_traced(raw) and tokens.size:
            host = np.asarray(raw)  # on the host: no staging under an enclosing jit
            lo, hi = int(host.min()), int(host.max())
            if lo < 0 or hi >= self.vocab_size:
                raise ValueError(
                    f"tokens must lie in [0, {self.vocab_size - 1}] (vocab_size), got ids in "
                    f"[{lo}, {hi}]"
                )
        return tokens, mask

    def states(self, params: Params, tokens: Array, mask: Array) -> Array:
        """States after each token, ``(B, T, S)``; padded steps repeat the last state."""
        tokens, mask = self._checked(tokens, mask)
        return _scan_states(self, params, tokens, mask)

    def final_state(self, params: Params, tokens: Array, lengths: Array) -> Array:
        """States after the last real token of each row, ``(B, S)``, for left-aligned
        ``tokens (B, T)`` whose first ``lengths (B,)`` entries are real (the rest padding).

        Equal (to float rounding) to ``states(params, tokens, mask)[:, -1]`` for the
        padding mask ``arange(T) < lengths``, and faster: the path used for training.
        For the built-in cells its gradient is hand-written (``rnndyn._bptt``), so it
        supports reverse-mode differentiation only; use ``states`` for ``jax.jvp`` or
        ``jax.jacfwd``.
        """
        tokens, _ = self._checked(tokens, jnp.ones(jnp.shape(tokens), bool))
        raw_lengths, lengths = lengths, jnp.asarray(lengths)
        if lengths.shape != tokens.shape[:1] or not jnp.issubdtype(lengths.dtype, jnp.integer):
            raise ValueError(
                f"lengths must be ({tokens.shape[0]},) integers (one per row of tokens), got "
                f"shape {tuple(lengths.shape)} dtype {lengths.dtype}"
            )
        if not _checks.is_traced(raw_lengths) and lengths.size:
            host = np.asarray(raw_lengths)  # on the host: no staging under an enclosing jit
            lo, hi = int(host.min()), int(host.max())
            if lo < 0 or hi > tokens.shape[1]:
                raise ValueError(
                    f"lengths must lie in [0, {tokens.shape[1]}] (T of tokens), got values in "
                    f"[{lo}, {hi}]"
                )
        return _scan_final(self, params, tokens, lengths)

    def apply_lengths(self, params: Params, tokens: Array, lengths: Array) -> Array:
        """Logits ``(B, C)`` for left-aligned padded ``tokens`` with ``lengths``: ``apply``
        with the padding mask ``arange(T) < lengths``, computed by ``final_state``."""
        return self.readout(params, self.final_state(params, tokens, lengths))

    def readout(self, params: Params, states: Array) -> Array:
        """Logits ``(..., C)`` from states ``(..., S)``."""
        return self.cell.output(states) @ params["readout"]["W"] + params["readout"]["b"]

    def apply(
        self, params: Params, tokens: Array, mask: Array, return_states: bool = False
    ) -> Array | Outputs:
        """Logits ``(B, C)`` of the final states; with ``return_states``, ``Outputs(logits,
        states)`` with the states ``(B, T, S)``."""
        hs = self.states(params, tokens, mask)
        logits = self.readout(params, hs[:, -1])
        return Outputs(logits, hs) if return_states else logits

    __call__ = apply

    def check_labels(self, labels: Any, batch_size: int | None = None) -> Array:
        """Validate labels: ``(B,)`` ints in ``[0, C)``, or ``(B, C)`` in ``{0, 1}`` if multi-label.

        Value checks are skipped under ``jit`` (traced labels); shape checks always run.
        """
        arr = jnp.asarray(labels)
        want = f"(batch, {self.num_classes}) of 0/1" if self.multilabel else "(batch,) class ids"
        ok_shape = (
            arr.ndim == 2 and arr.shape[1] == self.num_classes if self.multilabel else arr.ndim == 1
        )
        if not ok_shape or (batch_size is not None and arr.shape[0] != batch_size):
            raise ValueError(
                f"labels must have shape {want} for batch size {batch_size}, got shape "
                f"{tuple(arr.shape)}"
            )
        if not jnp.issubdtype(arr.dtype, jnp.integer) and not _checks.is_traced(labels):
            values = np.asarray(arr)
            if not np.all(values == np.round(values)):
                raise ValueError(f"labels must be integers, got dtype {arr.dtype}")
        if not _checks.is_traced(labels) and arr.size:
            values = np.asarray(arr)
            hi = 1 if self.multilabel else self.num_classes - 1
            if values.min() < 0 or values.max() > hi:
                raise ValueError(
                    f"labels must lie in [0, {hi}] (num_classes={self.num_classes}"
                    f"{', multilabel' if self.multilabel else ''}), got values in "
                    f"[{values.min()}, {values.max()}]"
                )
        return arr.astype(jnp.int32)

    def losses(self, logits: Array, labels: Array) -> Array:
        """Per-example loss ``(B,)``.

        Softmax cross-entropy for one class per example; for multi-label, sigmoid
        cross-entropy averaged over the ``C`` labels.
        """
        if self.multilabel:
            return optax.sigmoid_binary_cross_entropy(logits, labels).mean(axis=-1)
        return optax.softmax_cross_entropy_with_integer_labels(logits, labels)

    def loss(self, params: Params, tokens: Array, mask: Array, labels: Array) -> Array:
        """Mean cross-entropy over the batch (and over labels when multi-label)."""
        tokens, mask = _check_tokens_mask(tokens, mask)
        labels = self.check_labels(labels, tokens.shape[0])
        return self.losses(self.apply(params, tokens, mask), labels).mean()

    def predict_logits(self, logits: Array) -> Array:
        """Predictions from logits: class ids ``(B,)``, or 0/1 per label ``(B, C)``."""
        if self.multilabel:
            return (logits > 0).astype(jnp.int32)
        return jnp.argmax(logits, axis=-1).astype(jnp.int32)

    def predict(self, params: Params, tokens: Array, mask: Array) -> Array:
        """Class ids ``(B,)``, or for multi-label ``(B, C)`` 0/1 (logit > 0)."""
        return self.predict_logits(self.apply(params, tokens, mask))

    def correct(self, logits: Array, labels: Array) -> Array:
        """Per-example accuracy ``(B,)``: 0/1, or the fraction of labels right if multi-label."""
        hits = self.predict_logits(logits) == labels
        return hits.mean(axis=-1) if self.multilabel else hits.astype(jnp.float32)
