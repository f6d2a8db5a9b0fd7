"""Analyse your own flax RNN: any ``flax.linen`` recurrent cell, through ``from_flax``.

    python examples/custom_flax_model.py                 # a leaky tanh RNN written in flax
    python examples/custom_flax_model.py --out runs/flax # + figures and report.html

``LeakyRNNCell`` below stands for a model you wrote yourself: rnndyn knows nothing
about it. ``rnndyn.from_flax(module)`` turns it into a cell (its carry flattened into
one state vector); from there training, the fixed-point search, the linearisation and
the whole ``rnndyn.analyze`` run as for the built-in cells. The same works for a plain
function ``fn(params, h, x) -> h`` through ``rnndyn.from_function``.

Its state is a convex combination of the old state and a tanh, so it cannot leave
[-1, 1]^N once there: passing ``bounds=(-1, 1)`` lets the search use that (optional).
"""

import _common as C
import flax.linen as nn
import jax
import jax.numpy as jnp

import rnndyn


class LeakyRNNCell(nn.RNNCellBase):
    """``h' = (1 − a) ⊙ h + a ⊙ tanh(W h + U x + b)`` with a learned leak ``a ∈ (0, 1)^N``."""

    features: int

    @nn.compact
    def __call__(self, carry, x):
        pre = nn.Dense(self.features, use_bias=False, name="recurrent")(carry)
        pre = pre + nn.Dense(self.features, name="input")(x)
        leak = nn.sigmoid(self.param("leak_logit", nn.initializers.zeros, (self.features,)))
        h = (1 - leak) * carry + leak * jnp.tanh(pre)
        return h, h

    def initialize_carry(self, rng, input_shape):
        return jnp.zeros(tuple(input_shape[:-1]) + (self.features,))

    @property
    def num_feature_axes(self) -> int:
        return 1


def main() -> None:
    ap = C.parser(__doc__.split("\n")[0])
    args = ap.parse_args()
    s = C.sizes(args)
    cell = rnndyn.from_flax(LeakyRNNCell(features=s["hidden"]), bounds=(-1.0, 1.0))
    # a quick check of the wrapper: one step of the cell equals the module's own apply
    params = cell.init(jax.random.key(0), input_size=3)
    h, x = 0.1 * jnp.ones(s["hidden"]), jnp.ones(3)
    same = jnp.allclose(cell(params, h, x), LeakyRNNCell(s["hidden"]).apply(params, h, x)[0])
    print(f"from_flax cell: state size {cell.state_size}; one step matches flax: {bool(same)}")

    if args.dataset:
        train_set, test_set = C.real(args)
    else:
        train_set, test_set = C.synthetic("sentiment", args=args)
    _, _, a = C.train_and_analyze(cell, train_set, test_set, args, name="leaky_rnn")
    if a is not None:
        print(a.summary())
        print(C.table([{"cell": "LeakyRNNCell", **C.headline(a)}],
                      [("cell", "cell", str), *C.COLUMNS]))  # fmt: skip


if __name__ == "__main__":
    main()
