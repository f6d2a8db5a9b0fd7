"""Pure-functional recurrent cells: ``new_state = cell(params, state, x)``.

A cell is a small immutable object that holds sizes only. Its parameters are a pytree
made by ``cell.init(key, input_size)`` and passed explicitly to every call, so cells
compose with ``jax.jit``, ``jax.vmap``, ``jax.grad`` and ``jax.jacfwd``.

Every cell sees a *flat* state vector of size ``cell.state_size``:

- ``Vanilla``, ``GRU``, ``UGRNN``: the hidden state ``h``, size ``N = hidden_size``.
- ``LSTM``: ``[h, c]`` concatenated, size ``2N``; ``cell.output(state)`` returns ``h``
  (the first ``N`` entries), which is what a readout should see.

Shapes: ``state`` is ``(..., state_size)`` and ``x`` is ``(..., input_size)``; the
built-in cells broadcast over leading batch dimensions. Cells wrapped with
``from_flax`` or ``from_function`` only need to handle one unbatched state ``(S,)``
and input ``(M,)``: every tool in rnndyn vmaps over batches.

Weights use the "row vector" convention ``h @ W_h + x @ W_x + b``: ``W_h`` is
``(N, G*N)`` and ``W_x`` is ``(M, G*N)`` with ``G`` gate blocks side by side.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from rnndyn import _checks

Array = jax.Array
Params = Any  # a pytree of arrays

__all__ = [
    "Cell",
    "Vanilla",
    "GRU",
    "LSTM",
    "UGRNN",
    "from_flax",
    "from_function",
]


class Cell:
    """Interface shared by every cell.

    Subclasses define ``state_size``, ``init`` and ``__call__``; ``output`` defaults to
    the whole state.
    """

    #: Size ``S`` of the flat state vector, or ``None`` when unknown (``from_function``).
    state_size: int | None = None

    def init(self, key: Array, input_size: int) -> Params:
        raise NotImplementedError

    def __call__(self, params: Params, state: Array, x: Array) -> Array:
        raise NotImplementedError

    def apply(self, params: Params, state: Array, x: Array) -> Array:
        """Alias of ``__call__``: one step ``(S,), (M,) -> (S,)``."""
        return self(params, state, x)

    def initial_state(self, batch_shape: tuple[int, ...] = ()) -> Array:
        """Zero state of shape ``batch_shape + (state_size,)``."""
        if self.state_size is None:
            raise ValueError(
                f"{type(self).__name__} has no known state_size; pass state_size= when creating it"
            )
        return jnp.zeros(tuple(batch_shape) + (self.state_size,))

    def output(self, state: Array) -> Array:
        """The part of the state a readout sees: ``(..., S) -> (..., N)``."""
        return state

    def input_size(self, params: Params) -> int | None:
        """Input size ``M`` implied by ``params``, or ``None`` if it cannot be read off."""
        return None

    def check_params(self, params: Params) -> None:
        """Raise ``ValueError`` if ``params`` do not fit this cell."""

    def state_bounds(self) -> tuple[Array, Array] | None:
        """The box ``lower <= state <= upper`` the cell's state cannot leave, or ``None``.

        Returns ``(lower, upper)``, each broadcastable to ``(S,)`` (entries may be
        ``±inf``), or ``None``
        when the cell declares no such set. A state started inside the box stays inside
        it, so every fixed point lies in it; ``find_fixed_points`` keeps its candidates
        there.
        """
        return None


def _orthogonal_blocks(key: Array, n: int, blocks: int) -> Array:
    keys = jax.random.split(key, blocks)
    init = jax.nn.initializers.orthogonal()
    return jnp.concatenate([init(k, (n, n)) for k in keys], axis=1)


def _check_positive_size(name: str, value: int) -> None:
    _checks.check_int(name, value, minimum=1)


@dataclasses.dataclass(frozen=True)
class _GatedCell(Cell):
    """Built-in cells: parameters ``W_h (N, G*N)``, ``W_x (M, G*N)``, ``b (G*N,)``."""

    hidden_size: int

    #: number of gate blocks G
    _blocks = 1

    def __post_init__(self):
        _check_positive_size(f"{type(self).__name__}(hidden_size)", self.hidden_size)

    @property
    def state_size(self) -> int:  # type: ignore[override]
        return self.hidden_size

    def _bias(self) -> Array:
        return jnp.zeros((self._blocks * self.hidden_size,))

    def init(self, key: Array, input_size: int) -> Params:
        """Parameters for inputs of size ``input_size``.

        ``W_x`` is LeCun-normal, ``W_h`` orthogonal per gate block, biases as documented
        by each cell.
        """
        _check_positive_size("input_size", input_size)
        k_x, k_h = jax.random.split(key)
        g = self._blocks * self.hidden_size
        return {
            "W_h": _orthogonal_blocks(k_h, self.hidden_size, self._blocks),
            "W_x": jax.nn.initializers.lecun_normal()(k_x, (input_size, g)),
            "b": self._bias(),
        }

    def input_size(self, params: Params) -> int | None:
        w_x = params.get("W_x") if isinstance(params, dict) else None
        return None if w_x is None or jnp.ndim(w_x) != 2 else int(jnp.shape(w_x)[0])

    def check_params(self, params: Params) -> None:
        name = type(self).__name__
        if not isinstance(params, dict):
            raise ValueError(
                f"params must be a dict of arrays as made by {name}.init, got "
                f"{type(params).__name__}"
            )
        m = self.input_size(params)
        if m is None:
            raise ValueError(
                f"params['W_x'] must be a 2-D array (input_size, gates*hidden); got "
                f"{None if 'W_x' not in params else jnp.shape(params['W_x'])}"
            )
        expected = jax.eval_shape(lambda key: self.init(key, m), jax.random.key(0))
        if set(params) != set(expected):
            raise ValueError(
                f"params for {name} must have keys {sorted(expected)}, got {sorted(params)}"
            )
        for k, spec in expected.items():
            if tuple(jnp.shape(params[k])) != spec.shape:
                raise ValueError(
                    f"params[{k!r}] has shape {tuple(jnp.shape(params[k]))}, expected "
                    f"{spec.shape} for {name}(hidden_size={self.hidden_size}) with "
                    f"input size {m}"
                )

    def state_bounds(self) -> tuple[Array, Array]:
        """``|h_i| <= 1``: a tanh, or a convex combination of the old state and a tanh."""
        ones = jnp.ones((self.state_size,))
        return -ones, ones

    # One step is split into its two matrix products and an elementwise update, so that
    # training (rnndyn._bptt) can run the products itself and back-propagate the update
    # by hand: ``state' = _update(extras, x W_x + b, _recurrent(state) W_h, state)``.

    def __call__(self, params: Params, state: Array, x: Array) -> Array:
        gx = x @ params["W_x"] + params["b"]
        gh = self._recurrent(state) @ params["W_h"]
        return self._update(self._extras(params), gx, gh, state)

    def _recurrent(self, state: Array) -> Array:
        """The part of the state ``(..., S)`` that ``W_h`` multiplies, ``(..., N)``."""
        return state

    @staticmethod
    def _extras(params: Params) -> Params:
        """Parameters the elementwise update reads besides ``W_x``, ``W_h``, ``b``."""
        return {k: v for k, v in params.items() if k not in ("W_x", "W_h", "b")}

    def _update(self, extras: Params, gx: Array, gh: Array, state: Array) -> Array:
        """New state from the input part ``gx`` and recurrent part ``gh`` ``(..., G*N)``
        of the gate pre-activations."""
        raise NotImplementedError

    def _update_vjp(
        self, extras: Params, gx: Array, gh: Array, state: Array, d_new: Array
    ) -> tuple[Params, Array, Array, Array]:
        """Cotangents of ``_update`` at ``(extras, gx, gh, state)`` for the new state's
        cotangent ``d_new (..., S)``: ``(d_extras, d_gx, d_gh, d_state)``, written out so
        that one fused elementwise pass computes them (autodiff of the gate slices pads
        and re-evaluates the gates several times). ``d_extras`` are summed over leading
        axes; ``d_state`` is the direct path only (not through ``gh``)."""
        raise NotImplementedError


def _sum_leading(x: Array) -> Array:
    return x.reshape(-1, x.shape[-1]).sum(0)


def _dsigmoid(s: Array) -> Array:
    return s * (1.0 - s)


@dataclasses.dataclass(frozen=True)
class Vanilla(_GatedCell):
    """Vanilla RNN: ``h' = tanh(h W_h + x W_x + b)``. Biases start at zero."""

    def _update(self, extras, gx, gh, state):
        return jnp.tanh(gx + gh)

    def _update_vjp(self, extras, gx, gh, state, d_new):
        new = jnp.tanh(gx + gh)
        d_a = d_new * (1.0 - new * new)
        return {}, d_a, d_a, jnp.zeros_like(state)


@dataclasses.dataclass(frozen=True)
class Linear(_GatedCell):
    """Linear RNN: ``h' = h W_h + x W_x + b``, i.e. ``h' = A h + B x + b`` with
    ``A = W_hᵀ``, ``B = W_xᵀ``. Study A's "linear RNN trained directly". ``W_h`` starts as
    0.9 times an orthogonal matrix (every mode decays, slowly); biases at zero. Its
    Jacobian is ``A`` everywhere, so its eigen-analysis is exact. The state is unbounded.
    """

    def init(self, key: Array, input_size: int) -> Params:
        params = super().init(key, input_size)
        return {**params, "W_h": 0.9 * params["W_h"]}

    def state_bounds(self) -> None:  # type: ignore[override]
        return None

    def _update(self, extras, gx, gh, state):
        return gx + gh

    def _update_vjp(self, extras, gx, gh, state, d_new):
        return {}, d_new, d_new, jnp.zeros_like(state)


@dataclasses.dataclass(frozen=True)
class GRU(_GatedCell):
    """Gated recurrent unit with the equations of ``flax.linen.GRUCell``.

    Gate blocks ``[r, z, n]``::

        r = σ(x W_xr + b_r + h W_hr)
        z = σ(x W_xz + b_z + h W_hz)
        n = tanh(x W_xn + b_n + r ⊙ (h W_hn + b_hn))
        h' = (1 − z) ⊙ n + z ⊙ h

    Parameters: ``W_h (N, 3N)``, ``W_x (M, 3N)``, ``b (3N,)``, ``b_hn (N,)``; biases
    start at zero.
    """

    _blocks = 3

    def init(self, key: Array, input_size: int) -> Params:
        params = super().init(key, input_size)
        params["b_hn"] = jnp.zeros((self.hidden_size,))
        return params

    def _gates(self, extras, gx, gh):
        n = self.hidden_size
        r = jax.nn.sigmoid(gx[..., :n] + gh[..., :n])
        z = jax.nn.sigmoid(gx[..., n : 2 * n] + gh[..., n : 2 * n])
        hn = gh[..., 2 * n :] + extras["b_hn"]
        return r, z, hn, jnp.tanh(gx[..., 2 * n :] + r * hn)

    def _update(self, extras, gx, gh, state):
        _, z, _, cand = self._gates(extras, gx, gh)
        return (1.0 - z) * cand + z * state

    def _update_vjp(self, extras, gx, gh, state, d_new):
        r, z, hn, cand = self._gates(extras, gx, gh)
        d_n = d_new * (1.0 - z) * (1.0 - cand * cand)
        d_z = d_new * (state - cand) * _dsigmoid(z)
        d_r = d_n * hn * _dsigmoid(r)
        d_gx = jnp.concatenate([d_r, d_z, d_n], axis=-1)
        d_gh = jnp.concatenate([d_r, d_z, d_n * r], axis=-1)
        return {"b_hn": _sum_leading(d_n * r)}, d_gx, d_gh, d_new * z


@dataclasses.dataclass(frozen=True)
class LSTM(_GatedCell):
    """Long short-term memory with the equations of ``flax.linen.LSTMCell``.

    The state is ``[h, c]`` concatenated, shape ``(..., 2N)``. Gate blocks
    ``[i, f, g, o]``::

        i, f, o = σ(·),  g = tanh(·)   of  x W_x + h W_h + b
        c' = f ⊙ c + i ⊙ g
        h' = o ⊙ tanh(c')

    Parameters: ``W_h (N, 4N)``, ``W_x (M, 4N)``, ``b (4N,)``; the forget-gate bias
    starts at 1 (so memory is kept early in training), the others at 0.
    """

    _blocks = 4

    @property
    def state_size(self) -> int:  # type: ignore[override]
        return 2 * self.hidden_size

    def _bias(self) -> Array:
        n = self.hidden_size
        return jnp.zeros((4 * n,)).at[n : 2 * n].set(1.0)

    def output(self, state: Array) -> Array:
        return state[..., : self.hidden_size]

    def state_bounds(self) -> tuple[Array, Array]:
        """``|h_i| <= 1`` (``h = o ⊙ tanh(c)``); the memory ``c`` is unbounded."""
        n = self.hidden_size
        upper = jnp.concatenate([jnp.ones((n,)), jnp.full((n,), jnp.inf)])
        return -upper, upper

    def _recurrent(self, state: Array) -> Array:
        return state[..., : self.hidden_size]

    def _gates(self, gx, gh):
        n = self.hidden_size
        a = gx + gh
        i = jax.nn.sigmoid(a[..., :n])
        f = jax.nn.sigmoid(a[..., n : 2 * n])
        g = jnp.tanh(a[..., 2 * n : 3 * n])
        o = jax.nn.sigmoid(a[..., 3 * n :])
        return i, f, g, o

    def _update(self, extras, gx, gh, state):
        i, f, g, o = self._gates(gx, gh)
        c_new = f * state[..., self.hidden_size :] + i * g
        return jnp.concatenate([o * jnp.tanh(c_new), c_new], axis=-1)

    def _update_vjp(self, extras, gx, gh, state, d_new):
        n = self.hidden_size
        i, f, g, o = self._gates(gx, gh)
        c = state[..., n:]
        tc = jnp.tanh(f * c + i * g)
        d_h, d_c = d_new[..., :n], d_new[..., n:]
        d_c = d_c + d_h * o * (1.0 - tc * tc)
        d_a = jnp.concatenate(
            [d_c * g * _dsigmoid(i), d_c * c * _dsigmoid(f), d_c * i * (1.0 - g * g),
             d_h * tc * _dsigmoid(o)],
            axis=-1,
        )  # fmt: skip
        return {}, d_a, d_a, jnp.concatenate([jnp.zeros_like(d_h), d_c * f], axis=-1)


@dataclasses.dataclass(frozen=True)
class UGRNN(_GatedCell):
    """Update-gate RNN (Collins, Sohl-Dickstein & Sussillo 2017).

    Gate blocks ``[c, g]``::

        c = tanh(h W_hc + x W_xc + b_c)
        g = σ(h W_hg + x W_xg + b_g)
        h' = g ⊙ h + (1 − g) ⊙ c

    Parameters: ``W_h (N, 2N)``, ``W_x (M, 2N)``, ``b (2N,)``; the gate bias starts at 1
    (lean towards keeping the state), the candidate bias at 0.
    """

    _blocks = 2

    def _bias(self) -> Array:
        n = self.hidden_size
        return jnp.zeros((2 * n,)).at[n:].set(1.0)

    def _gates(self, gx, gh):
        n = self.hidden_size
        a = gx + gh
        return jnp.tanh(a[..., :n]), jax.nn.sigmoid(a[..., n:])

    def _update(self, extras, gx, gh, state):
        cand, g = self._gates(gx, gh)
        return g * state + (1.0 - g) * cand

    def _update_vjp(self, extras, gx, gh, state, d_new):
        cand, g = self._gates(gx, gh)
        d_cand = d_new * (1.0 - g) * (1.0 - cand * cand)
        d_g = d_new * (state - cand) * _dsigmoid(g)
        d_a = jnp.concatenate([d_cand, d_g], axis=-1)
        return {}, d_a, d_a, d_new * g


def _generic_check(cell: Cell, params: Params, state_size: int, input_size: int) -> None:
    """Check that one step maps a ``(S,)`` state to a ``(S,)`` state."""
    h = jax.ShapeDtypeStruct((state_size,), jnp.float32)
    x = jax.ShapeDtypeStruct((input_size,), jnp.float32)
    try:
        out = jax.eval_shape(cell, params, h, x)
    except Exception as err:  # report whatever the user's function raised, with shapes
        raise ValueError(
            f"{type(cell).__name__} could not be applied to a state of shape ({state_size},) "
            f"and an input of shape ({input_size},): {type(err).__name__}: {err}"
        ) from err
    if not hasattr(out, "shape") or tuple(out.shape) != (state_size,):
        got = getattr(out, "shape", type(out).__name__)
        raise ValueError(
            f"{type(cell).__name__} must map a state of shape ({state_size},) to the same "
            f"shape, but returned {got}"
        )


@dataclasses.dataclass(frozen=True, eq=False)
class FunctionCell(Cell):
    """A cell from any ``fn(params, h, x) -> h`` (see ``from_function``)."""

    fn: Callable[[Params, Array, Array], Array]
    state_size: int | None = None  # type: ignore[assignment]
    output_fn: Callable[[Array], Array] | None = None
    bounds: tuple[Array, Array] | None = None

    def state_bounds(self) -> tuple[Array, Array] | None:
        return self.bounds

    def init(self, key: Array, input_size: int) -> Params:
        raise ValueError("a cell made by from_function has no initialiser: pass your own params")

    def __call__(self, params: Params, state: Array, x: Array) -> Array:
        return self.fn(params, state, x)

    def output(self, state: Array) -> Array:
        return state if self.output_fn is None else self.output_fn(state)


def _check_bounds(bounds: Any) -> tuple[Array, Array] | None:
    """``(lower, upper)`` as float arrays with ``lower <= upper``, or ``None``."""
    if bounds is None:
        return None
    if not (isinstance(bounds, (tuple, list)) and len(bounds) == 2):
        raise ValueError(
            f"bounds must be a pair (lower, upper) of scalars or (S,) arrays, got {bounds!r}"
        )
    lower = _checks.as_array("bounds[0] (lower)", bounds[0]).astype(jnp.float32)
    upper = _checks.as_array("bounds[1] (upper)", bounds[1]).astype(jnp.float32)
    if lower.ndim > 1 or upper.ndim > 1:
        raise ValueError(
            f"bounds must be scalars or (S,) arrays, got shapes {lower.shape} and {upper.shape}"
        )
    if bool(jnp.any(jnp.isnan(lower)) | jnp.any(jnp.isnan(upper))) or not bool(
        jnp.all(lower < upper)
    ):
        raise ValueError(f"bounds must satisfy lower < upper without NaN, got {bounds!r}")
    return lower, upper


def from_function(
    fn: Callable[[Params, Array, Array], Array],
    state_size: int | None = None,
    output: Callable[[Array], Array] | None = None,
    bounds: tuple[Any, Any] | None = None,
) -> Cell:
    """Wrap ``fn(params, h, x) -> h'`` as a cell.

    Args:
      fn: one step of the dynamics on an unbatched state ``(S,)`` and input ``(M,)``;
        must be traceable by JAX.
      state_size: ``S``; optional, needed only by ``initial_state``.
      output: optional ``state -> readout features`` map (default: identity).
      bounds: optional ``(lower, upper)``, scalars or ``(S,)`` arrays (``±inf`` allowed):
        a box the state never leaves once inside it (e.g. ``(-1, 1)`` for a tanh
        network). The fixed-point search keeps its candidates in it. Default: none.
    """
    if not callable(fn):
        raise ValueError(f"fn must be callable, got {type(fn).__name__}")
    if state_size is not None:
        _check_positive_size("state_size", state_size)
    bounds = _check_bounds(bounds)
    return FunctionCell(fn=fn, state_size=state_size, output_fn=output, bounds=bounds)


@dataclasses.dataclass(frozen=True, eq=False)
class FlaxCell(Cell):
    """A ``flax.linen`` recurrent cell seen through a flat state (see ``from_flax``)."""

    module: Any
    output_fn: Callable[[Array], Array] | None = None
    bounds: tuple[Array, Array] | None = None

    def state_bounds(self) -> tuple[Array, Array] | None:
        return self.bounds

    def _carry_template(self):
        return jax.eval_shape(lambda: self.module.initialize_carry(jax.random.key(0), (1,)))

    @property
    def state_size(self) -> int:  # type: ignore[override]
        return sum(int(leaf.size) for leaf in jax.tree_util.tree_leaves(self._carry_template()))

    def _unflatten(self, state: Array):
        template = self._carry_template()
        zeros = jax.tree_util.tree_map(lambda s: jnp.zeros(s.shape, s.dtype), template)
        _, unravel = ravel_pytree(zeros)
        return unravel(state)

    def init(self, key: Array, input_size: int) -> Params:
        """Flax variables ``{'params': ...}`` for inputs of size ``input_size``."""
        _check_positive_size("input_size", input_size)
        carry = self._unflatten(jnp.zeros((self.state_size,)))
        return self.module.init(key, carry, jnp.zeros((input_size,)))

    def __call__(self, params: Params, state: Array, x: Array) -> Array:
        if state.ndim > 1:  # flax cells take batches, but our flat layout is per state
            return jax.vmap(self.__call__, in_axes=(None, 0, 0 if x.ndim > 1 else None))(
                params, state, x
            )
        new_carry, _ = self.module.apply(params, self._unflatten(state), x)
        return ravel_pytree(new_carry)[0]

    def output(self, state: Array) -> Array:
        if self.output_fn is not None:
            return self.output_fn(state)
        leaves = jax.tree_util.tree_leaves(self._carry_template())
        last = int(leaves[-1].size)
        return state[..., state.shape[-1] - last :]


def from_flax(
    module: Any,
    output: Callable[[Array], Array] | None = None,
    bounds: tuple[Any, Any] | None = None,
) -> Cell:
    """Wrap a ``flax.linen`` recurrent cell (``nn.GRUCell``, ``nn.LSTMCell``, ...).

    The flax carry is flattened leaf by leaf into one state vector: for ``nn.LSTMCell``
    the carry ``(c, h)`` becomes ``[c, h]`` of size ``2N``. Parameters are the flax
    variables (``{'params': ...}``), as returned by ``module.init`` or by ``cell.init``.

    Args:
      module: a ``flax.linen.RNNCellBase`` instance.
      output: optional ``state -> readout features`` map. Default: the carry's last
        leaf, which is the cell's output ``h`` for flax's GRU, LSTM, simple and MGU cells.
      bounds: optional ``(lower, upper)`` box of the flat state the cell cannot leave
        (scalars or ``(S,)`` arrays, ``±inf`` allowed), as in ``from_function``. Default:
        none (flax cells are user code; rnndyn does not guess).
    """
    if not (hasattr(module, "initialize_carry") and hasattr(module, "apply")):
        raise ValueError(
            "module must be a flax.linen recurrent cell with initialize_carry and apply "
            f"(e.g. nn.GRUCell(features=64)), got {type(module).__name__}"
        )
    return FlaxCell(module=module, output_fn=output, bounds=_check_bounds(bounds))


def validate(
    cell: Cell,
    params: Params,
    state_size: int,
    input_size: int,
    state_name: str = "initial_states",
    input_name: str = "inputs",
) -> None:
    """Check ``params`` fit ``cell`` for states ``(state_size,)`` and inputs ``(input_size,)``.

    ``state_name`` and ``input_name`` are the caller's argument names, used in errors.
    """
    if not isinstance(cell, Cell):
        raise ValueError(
            "cell must be an rnndyn cell (rnndyn.cells.GRU(...), from_flax(...), "
            f"from_function(...)), got {type(cell).__name__}"
        )
    _checks.check_finite("params", params)
    if cell.state_size is not None and state_size != cell.state_size:
        raise ValueError(
            f"{state_name} have size {state_size} but {type(cell).__name__} has state_size "
            f"{cell.state_size}"
        )
    cell.check_params(params)
    m = cell.input_size(params)
    if m is not None and m != input_size:
        raise ValueError(f"{input_name} have size {input_size} but params expect input size {m}")
    _generic_check(cell, params, state_size, input_size)
