"""Training throughput (tokens/s) of rnndyn classifiers vs a flax.linen ``nn.RNN`` baseline.

Both sides run the same jitted step: embedding -> RNN over a padded batch -> linear
readout of the last real state -> softmax cross-entropy -> Adam update. Warm-up steps
(compilation included) are excluded from the timing; the two models are timed in
alternating blocks and each keeps its best block (robust to a shared, loaded machine).

    python benchmarks/train.py               # GRU and LSTM, hidden 128 and 256
    python benchmarks/train.py --steps 50 --hidden 128
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from rnndyn.models import Classifier, make_cell

VOCAB, EMBED, CLASSES = 1000, 64, 2


class FlaxClassifier(nn.Module):
    """The same model in plain flax: nn.Embed -> nn.RNN(cell) -> nn.Dense."""

    cell: str
    hidden: int

    @nn.compact
    def __call__(self, tokens, lengths):
        x = nn.Embed(VOCAB, EMBED)(tokens)
        cell = (nn.GRUCell if self.cell == "gru" else nn.LSTMCell)(features=self.hidden)
        carry, _ = nn.RNN(cell, return_carry=True)(x, seq_lengths=lengths)
        h = carry if self.cell == "gru" else carry[1]  # LSTMCell carry is (c, h)
        return nn.Dense(CLASSES)(h)


def _batch(key: jax.Array, batch: int, length: int) -> dict[str, jax.Array]:
    k_tok, k_len, k_lab = jax.random.split(key, 3)
    tokens = jax.random.randint(k_tok, (batch, length), 2, VOCAB)
    lengths = jax.random.randint(k_len, (batch,), length // 2, length + 1)
    mask = jnp.arange(length)[None, :] < lengths[:, None]
    return {
        "tokens": jnp.where(mask, tokens, 0),
        "mask": mask,
        "lengths": lengths,
        "labels": jax.random.randint(k_lab, (batch,), 0, CLASSES),
    }


def _step_fn(loss_fn: Callable, params) -> tuple[Callable, object]:
    opt = optax.adam(1e-3)

    @jax.jit
    def step(params, opt_state, batch):
        loss, grads = jax.value_and_grad(loss_fn)(params, batch)
        updates, opt_state = opt.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    return step, opt.init(params)


def rnndyn_step(cell: str, hidden: int, key: jax.Array, batch: dict):
    model = Classifier(make_cell(cell, hidden), VOCAB, EMBED, CLASSES)
    params = model.init(key)

    def loss(p, b):
        logits = model.apply_lengths(p, b["tokens"], b["lengths"])
        return optax.softmax_cross_entropy_with_integer_labels(logits, b["labels"]).mean()

    step, state = _step_fn(loss, params)
    return step, params, state


def flax_step(cell: str, hidden: int, key: jax.Array, batch: dict):
    module = FlaxClassifier(cell, hidden)
    params = module.init(key, batch["tokens"], batch["lengths"])

    def loss(p, b):
        logits = module.apply(p, b["tokens"], b["lengths"])
        return optax.softmax_cross_entropy_with_integer_labels(logits, b["labels"]).mean()

    step, state = _step_fn(loss, params)
    return step, params, state


def _timed(step, params, state, batch, steps):
    t0 = time.perf_counter()
    for _ in range(steps):
        params, state, loss = step(params, state, batch)
    jax.block_until_ready(loss)
    return time.perf_counter() - t0, params, state


def compare(cell: str, hidden: int, batch: dict, steps: int, warmup: int, rounds: int):
    """Best tokens/s (padded tokens, B*T per step) of rnndyn and of flax over ``rounds``
    alternating blocks of ``steps`` timed steps, then each step's XLA temporary memory
    (MiB: activations kept for the backward pass and other intermediates).

    Alternating the two and keeping each one's best block makes the comparison fair on a
    shared machine, where other processes slow down some blocks but not others.
    """
    runs, temp_mb = [], []
    for make in (rnndyn_step, flax_step):
        step, params, state = make(cell, hidden, jax.random.key(0), batch)
        memory = step.lower(params, state, batch).compile().memory_analysis()
        temp_mb.append(memory.temp_size_in_bytes / 2**20 if memory is not None else float("nan"))
        for _ in range(warmup):  # compile and warm caches
            params, state, loss = step(params, state, batch)
        jax.block_until_ready(loss)
        runs.append([step, params, state, float("inf")])
    for _ in range(rounds):
        for run in runs:
            elapsed, run[1], run[2] = _timed(run[0], run[1], run[2], batch, steps)
            run[3] = min(run[3], elapsed)
    return tuple(batch["tokens"].size * steps / run[3] for run in runs) + tuple(temp_mb)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=5, help="timed steps per block")
    parser.add_argument("--rounds", type=int, default=8, help="alternating blocks per model")
    parser.add_argument("--warmup", type=int, default=2, help="untimed warm-up steps")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--length", type=int, default=200)
    parser.add_argument("--hidden", type=int, nargs="+", default=[128, 256])
    parser.add_argument("--cells", nargs="+", default=["gru", "lstm"], choices=["gru", "lstm"])
    args = parser.parse_args()

    batch = _batch(jax.random.key(1), args.batch_size, args.length)
    print(f"device: {jax.devices()[0].device_kind}; batch {args.batch_size}, length {args.length}")
    print(
        f"{'cell':<6}{'hidden':>7}{'rnndyn tok/s':>15}{'flax nn.RNN tok/s':>20}{'ratio':>8}"
        f"{'rnndyn MiB':>12}{'flax MiB':>10}"
    )
    for cell in args.cells:
        for hidden in args.hidden:
            ours, base, ours_mb, base_mb = compare(
                cell, hidden, batch, args.steps, args.warmup, args.rounds
            )
            print(
                f"{cell:<6}{hidden:>7}{ours:>15,.0f}{base:>20,.0f}{ours / base:>8.2f}"
                f"{ours_mb:>12.1f}{base_mb:>10.1f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
