"""Recurrent networks from PyTorch and equinox as rnndyn cells: ``(cell, params)``.

``from_torch`` reads the weights of a ``torch.nn`` RNN, GRU or LSTM (a module, a
single-step cell, or their ``state_dict()``) into an rnndyn cell with the same
equations; ``from_equinox`` wraps an equinox module called as ``module(x, h)``, with
the module's arrays as the parameters. Either result goes straight into
``find_fixed_points``, ``jacobians`` and the rest of rnndyn.

Neither framework is imported by ``import rnndyn``: ``from_torch`` never imports torch
(it reads tensors through their own ``detach().cpu().numpy()``, and a state dict of
numpy arrays needs no torch at all), and ``from_equinox`` imports equinox only when
called.

How torch's equations land in rnndyn (torch writes ``W x``, rnndyn ``x W``, so every
matrix is transposed; gate blocks keep torch's order; the two biases are added):

- ``RNN`` / ``RNNCell`` with tanh: ``cells.Vanilla(N)``, ``b = b_ih + b_hh``.
- ``RNN`` / ``RNNCell`` with relu: a ``from_function`` cell ``relu(h W_h + x W_x + b)``
  with the state box ``[0, inf)`` (no built-in cell has a relu).
- ``GRU`` / ``GRUCell``: ``cells.GRU(N)``, gates ``[r, z, n]``; torch's candidate
  ``tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn))`` is rnndyn's, so
  ``b = b_ih + [b_hr, b_hz, 0]`` and ``b_hn`` stays apart, inside ``r``.
- ``LSTM`` / ``LSTMCell``: ``cells.LSTM(N)``, gates ``[i, f, g, o]``,
  ``b = b_ih + b_hh``; torch's state ``(h, c)`` is the flat ``[h, c]``.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from rnndyn import _checks
from rnndyn.cells import GRU, LSTM, Cell, Vanilla, from_function

Array = jax.Array
Params = Any

__all__ = ["Converted", "from_equinox", "from_torch"]


class Converted(NamedTuple):
    """``from_torch`` and ``from_equinox``: the rnndyn ``cell`` and its ``params``
    (``cell, params = from_torch(...)``)."""

    cell: Cell
    params: Params


# --- PyTorch --------------------------------------------------------------------------

#: torch.nn classes ``from_torch`` reads, and whether they are stacked (``_l{k}`` keys)
_TORCH_CLASSES = {
    "RNN": True,
    "GRU": True,
    "LSTM": True,
    "RNNCell": False,
    "GRUCell": False,
    "LSTMCell": False,
}

#: gate blocks per kind
_GATES = {"rnn_tanh": 1, "rnn_relu": 1, "gru": 3, "lstm": 4}

_KIND_ALIASES = {"rnn": "rnn_tanh", "tanh": "rnn_tanh", "relu": "rnn_relu"}

_KEY = re.compile(r"^(weight|bias)_(ih|hh|hr)(?:_l(\d+))?(_reverse)?$")


def _normalise_kind(kind: Any) -> str:
    """``"GRU"``, ``"gru_cell"``, ``"RNN_TANH"``, ``"relu"``... -> a key of ``_GATES``."""
    if not isinstance(kind, str):
        raise ValueError(f"kind must be one of {sorted(_GATES)} (a string), got {kind!r}")
    name = kind.strip().lower().replace("-", "_").replace(" ", "_").removeprefix("nn.")
    name = name.removesuffix("cell").removesuffix("_")
    name = _KIND_ALIASES.get(name, name)
    if name not in _GATES:
        raise ValueError(
            f"kind={kind!r} is not a recurrent network from_torch can convert; expected one "
            f"of {sorted(_GATES)} (aliases: 'rnn' and 'tanh' for 'rnn_tanh', 'relu' for "
            "'rnn_relu'; a 'cell' suffix is allowed)"
        )
    return name


def _torch_class(obj: Any) -> str | None:
    """The supported ``torch.nn`` class ``obj`` is an instance of (by name), or ``None``.

    Duck-typed on the class hierarchy, so that torch is never imported here.
    """
    for klass in type(obj).__mro__:
        if klass.__module__.startswith("torch.nn") and klass.__name__ in _TORCH_CLASSES:
            return klass.__name__
    return None


def _module_kind(module: Any, klass: str) -> str:
    """The kind of a torch module: from ``mode`` (``RNNBase``) or the cell's class."""
    if klass in ("RNN", "RNNCell"):
        nonlinearity = getattr(module, "nonlinearity", "tanh")
        return _normalise_kind(f"rnn_{nonlinearity}")
    return _normalise_kind(klass)


def _check_module(module: Any, klass: str) -> None:
    """Refuse settings an rnndyn cell cannot represent (named in the error)."""
    if not _TORCH_CLASSES[klass]:
        return
    if getattr(module, "bidirectional", False):
        raise ValueError(
            f"from_torch cannot convert nn.{klass} with bidirectional=True: its reverse "
            "direction runs backwards in time, so the network is not one recurrent map "
            "forward in time; convert a unidirectional network"
        )
    proj = int(getattr(module, "proj_size", 0) or 0)
    if proj > 0:
        raise ValueError(
            f"from_torch cannot convert nn.{klass} with proj_size={proj}: the projected "
            "LSTM's state is not one of rnndyn's cells; use proj_size=0"
        )


def _to_numpy(value: Any, name: str) -> np.ndarray:
    """A tensor (any device, any float dtype) or array-like as a numpy array.

    Half-precision floats (``float16``, ``bfloat16``) are promoted to ``float32``.
    """
    if hasattr(value, "detach"):  # a torch tensor: read it without importing torch
        value = value.detach().cpu()
        if "bfloat16" in str(getattr(value, "dtype", "")):
            value = value.float()
        value = value.numpy()
    arr = _checks.numeric_array(f"state_dict[{name!r}]", value)
    if arr.dtype.kind != "f" or arr.dtype.itemsize < 4:
        arr = arr.astype(np.float32)
    return arr


def _stacked_layout(keys: list[str], what: str) -> bool:
    """Whether a state dict's keys are a stacked network's (``weight_ih_l0``) or a
    single cell's (``weight_ih``); refuse anything else, projections and reverse
    directions."""
    parsed = {k: _KEY.match(k) for k in keys}
    unknown = sorted(k for k, m in parsed.items() if m is None)
    if unknown:
        raise ValueError(
            f"{what} has keys that are not a torch RNN/GRU/LSTM's: {unknown}; expected "
            "weight_ih_l0, weight_hh_l0, bias_ih_l0, bias_hh_l0, ... (a stacked network) or "
            "weight_ih, weight_hh, bias_ih, bias_hh (a cell). For a model holding one, pass "
            "the recurrent submodule's state_dict, or strip its prefix from the keys"
        )
    if any(m.group(2) == "hr" for m in parsed.values()):
        raise ValueError(
            f"{what} has projection weights (weight_hr_*): an LSTM with proj_size > 0, which "
            "from_torch cannot convert; use proj_size=0"
        )
    if any(m.group(4) for m in parsed.values()):
        raise ValueError(
            f"{what} has reverse-direction weights (*_reverse): a network with "
            "bidirectional=True, which from_torch cannot convert (its reverse direction "
            "runs backwards in time); convert a unidirectional network"
        )
    stacked = {m.group(3) is not None for m in parsed.values()}
    if stacked == {True, False}:
        raise ValueError(
            f"{what} mixes a stacked network's keys (weight_ih_l0) and a cell's (weight_ih)"
        )
    if not stacked:
        raise ValueError(f"{what} is empty; expected weight_ih, weight_hh, ... of an RNN")
    return stacked.pop()


def _layer_weights(
    sd: Mapping[str, np.ndarray], layer: int, stacked: bool, what: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
    """``(W_ih (G*N, M), W_hh (G*N, N), b_ih (G*N,) | None, b_hh (G*N,) | None)`` of
    ``layer`` (biases ``None`` when the network has ``bias=False``)."""
    if stacked:
        layers = sorted({int(_KEY.match(k).group(3)) for k in sd})
        if layer not in layers:
            raise ValueError(
                f"layer={layer} does not exist: {what} has {len(layers)} layer(s) "
                f"(layer=0..{len(layers) - 1})"
            )
        suffix = f"_l{layer}"
    else:
        if layer != 0:
            raise ValueError(
                f"layer={layer} does not exist: {what} is a single cell (layer=0 only)"
            )
        suffix = ""
    names = [f"{w}_{m}{suffix}" for w in ("weight", "bias") for m in ("ih", "hh")]
    missing = [n for n in names[:2] if n not in sd]
    if missing:
        raise ValueError(f"{what} lacks {missing} (found {sorted(sd)})")
    has_bias = [n in sd for n in names[2:]]
    if any(has_bias) and not all(has_bias):
        raise ValueError(
            f"{what} has only one of {names[2:]}; a torch network has both biases or none "
            "(bias=False)"
        )
    w_ih, w_hh = sd[names[0]], sd[names[1]]
    b_ih, b_hh = (sd[names[2]], sd[names[3]]) if all(has_bias) else (None, None)
    return w_ih, w_hh, b_ih, b_hh


def _check_shapes(kind: str, w_ih, w_hh, b_ih, b_hh, what: str) -> int:
    """Check the weights fit ``kind``; return the hidden size ``N``."""
    gates = _GATES[kind]
    if w_hh.ndim != 2 or w_ih.ndim != 2:
        raise ValueError(
            f"{what}: weight_ih and weight_hh must be 2-D, got shapes {w_ih.shape} and {w_hh.shape}"
        )
    n = w_hh.shape[1]
    if w_hh.shape[0] != gates * n or w_ih.shape[0] != gates * n:
        found = w_hh.shape[0] / n if n else float("nan")
        raise ValueError(
            f"{what}: kind={kind!r} has {gates} gate block(s), so weight_ih and weight_hh "
            f"need {gates}*N = {gates * n} rows for hidden size N = {n}; got shapes "
            f"{w_ih.shape} and {w_hh.shape} ({found:g} blocks): wrong kind?"
        )
    for name, b in (("bias_ih", b_ih), ("bias_hh", b_hh)):
        if b is not None and b.shape != (gates * n,):
            raise ValueError(f"{what}: {name} has shape {b.shape}, expected ({gates * n},)")
    return n


def _relu_rnn_step(params: Params, h: Array, x: Array) -> Array:
    """torch's relu RNN: ``h' = relu(h W_h + x W_x + b)`` for ``(N,)``, ``(M,)``."""
    return jax.nn.relu(h @ params["W_h"] + x @ params["W_x"] + params["b"])


@functools.lru_cache(maxsize=64)
def _relu_cell(hidden_size: int) -> Cell:
    """One cell object per size, so that repeated conversions share compilations."""
    return from_function(_relu_rnn_step, state_size=hidden_size, bounds=(0.0, jnp.inf))


def _build(kind: str, w_ih, w_hh, b_ih, b_hh) -> Converted:
    """The rnndyn cell and parameters with torch's equations for one layer.

    ``w_ih (G*N, M)``, ``w_hh (G*N, N)``, biases ``(G*N,)`` or ``None`` (zero).
    """
    gn, n = w_hh.shape
    zeros = np.zeros((gn,), w_hh.dtype)
    b_ih = zeros if b_ih is None else b_ih
    b_hh = zeros if b_hh is None else b_hh
    params = {"W_h": jnp.asarray(w_hh.T), "W_x": jnp.asarray(w_ih.T)}
    if kind == "gru":
        # torch: n = tanh(W_in x + b_in + r * (W_hn h + b_hn)); b_hn stays inside r
        params["b"] = jnp.asarray(b_ih + np.concatenate([b_hh[: 2 * n], zeros[:n]]))
        params["b_hn"] = jnp.asarray(b_hh[2 * n :])
        return Converted(GRU(n), params)
    params["b"] = jnp.asarray(b_ih + b_hh)
    if kind == "lstm":
        return Converted(LSTM(n), params)
    if kind == "rnn_tanh":
        return Converted(Vanilla(n), params)
    return Converted(_relu_cell(n), params)


def from_torch(rnn: Any, layer: int = 0, *, kind: str | None = None) -> Converted:
    """A torch recurrent network's step as an rnndyn cell and its parameters.

    Reads ``torch.nn.RNN`` (tanh or relu), ``GRU``, ``LSTM``, ``RNNCell``, ``GRUCell``
    and ``LSTMCell``, or the ``state_dict()`` of one (names to tensors or numpy arrays).
    The cell computes exactly torch's equations, so fixed points and Jacobians are
    torch's:

    - tanh RNN -> ``cells.Vanilla``, GRU -> ``cells.GRU`` (torch's ``r ⊙ (W_hn h +
      b_hn)``, its gate order ``[r, z, n]``; ``b_hn`` is kept apart), LSTM ->
      ``cells.LSTM`` (gate order ``[i, f, g, o]``; the state is ``[h, c]``, size
      ``2N``, like torch's ``(h, c)``); their state boxes are the built-in ones.
    - relu RNN -> a ``from_function`` cell ``relu(h W_h + x W_x + b)`` whose state box
      is ``[0, inf)`` (no built-in cell has a relu).

    torch's two biases are added (``b = b_ih + b_hh``; for the GRU only in the ``r``
    and ``z`` blocks). ``bias=False`` gives zero biases; ``batch_first`` and ``dropout``
    do not change one step (dropout acts between layers in training only). Tensors may
    live on any device; half-precision weights become ``float32``. torch itself is
    never imported.

    Stacked networks (``num_layers > 1``): the cell is layer ``layer``'s own map
    ``(h_layer, input) -> h_layer'``, whose input is the previous layer's hidden state
    ``h_{layer-1}`` at the same step (size ``N``), not the network's input. To find its
    fixed points under a constant network input, hold the layers below at their own
    fixed points and pass that of layer ``layer - 1`` as ``inputs``.

    Args:
      rnn: a torch module above (subclasses too: their weights and settings are read,
        an overridden ``forward`` is not), or its ``state_dict()``.
      layer: which layer of a stacked network, ``0 <= layer < num_layers``; ``0`` for a
        cell.
      kind: needed with a state dict, which does not say its nonlinearity: ``"rnn_tanh"``
        (or ``"rnn"``, ``"tanh"``), ``"rnn_relu"`` (or ``"relu"``), ``"gru"``,
        ``"lstm"``; case, ``nn.`` and a ``cell`` suffix are ignored (``"GRUCell"``).
        With a module, optional; if given it must match the module.

    Returns:
      ``Converted(cell, params)``: ``params`` is a dict ``W_h (N, G*N)``, ``W_x (M, G*N)``,
      ``b (G*N,)`` (and ``b_hn (N,)`` for the GRU) with ``G`` gate blocks and input size
      ``M`` (``N`` for ``layer > 0``); ``cell(params, state, x)`` is one torch step on
      ``state (S,)``, ``S = N`` (``2N`` for the LSTM: ``[h, c]``).

    Raises:
      ValueError: for anything it cannot represent, naming the module and setting:
        ``proj_size > 0`` (or ``weight_hr_*`` keys), ``bidirectional=True`` (or
        ``*_reverse`` keys), a layer that does not exist, an unknown or mismatched
        ``kind``, a state dict without ``kind`` or with shapes that do not fit it.
    """
    _checks.check_int("layer", layer)
    klass = _torch_class(rnn)
    if klass is not None:
        what = f"nn.{klass}"
        _check_module(rnn, klass)
        module_kind = _module_kind(rnn, klass)
        if kind is not None and _normalise_kind(kind) != module_kind:
            raise ValueError(
                f"kind={kind!r} does not match the module: {what} is {module_kind!r}; leave "
                "kind out for a module"
            )
        kind = module_kind
        sd = rnn.state_dict()
        stacked = _TORCH_CLASSES[klass]
    elif isinstance(rnn, Mapping):
        what = "state_dict"
        if kind is None:
            raise ValueError(
                f"kind is required with a state_dict (one of {sorted(_GATES)}): the weights "
                "do not say whether an RNN uses tanh or relu"
            )
        kind = _normalise_kind(kind)
        sd = rnn
        bad = [k for k in sd if not isinstance(k, str)]
        if bad:
            raise ValueError(f"state_dict keys must be strings, got {bad!r}")
        stacked = _stacked_layout(list(sd), what)
    else:
        raise ValueError(
            "rnn must be a torch.nn.RNN, GRU, LSTM, RNNCell, GRUCell or LSTMCell, or the "
            f"state_dict() of one, got {type(rnn).__name__}; for a model that holds one, "
            "pass the recurrent submodule (e.g. model.rnn)"
        )
    sd = {k: _to_numpy(v, k) for k, v in sd.items()}
    if klass is not None:
        _stacked_layout(list(sd), what)
    w_ih, w_hh, b_ih, b_hh = _layer_weights(sd, int(layer), stacked, what)
    _check_shapes(kind, w_ih, w_hh, b_ih, b_hh, f"{what} layer {layer}")
    return _build(kind, w_ih, w_hh, b_ih, b_hh)


# --- equinox --------------------------------------------------------------------------


def _import_equinox():
    try:
        import equinox
    except ImportError as err:  # pragma: no cover - equinox is in the dev extra
        raise ImportError("from_equinox needs equinox: pip install 'rnndyn[equinox]'") from err
    return equinox


def _template(state: Any) -> Any:
    """An example state as a pytree of ``jax.ShapeDtypeStruct``; an int ``N`` is ``(N,)``."""
    if isinstance(state, (int, np.integer)) and not isinstance(state, bool):
        _checks.check_int("state", state, minimum=1)
        return jax.ShapeDtypeStruct((int(state),), jnp.float32)
    leaves = jax.tree_util.tree_leaves(state)
    if not leaves or not all(hasattr(leaf, "shape") for leaf in leaves):
        raise ValueError(
            "state must be the state size N (an int) or an example state: an array or a "
            f"pytree of arrays such as (h, c); got {type(state).__name__}"
        )
    return jax.tree_util.tree_map(lambda a: jax.ShapeDtypeStruct(jnp.shape(a), a.dtype), state)


def _unflatten(flat: Array, template: Any) -> Any:
    """``(S,)`` -> a pytree shaped like ``template`` (leaves in flattening order)."""
    leaves, treedef = jax.tree_util.tree_flatten(template)
    sizes = np.cumsum([int(np.prod(leaf.shape)) for leaf in leaves])[:-1]
    parts = jnp.split(flat, sizes)
    return treedef.unflatten([p.reshape(leaf.shape) for p, leaf in zip(parts, leaves, strict=True)])


def _flatten(tree: Any, template: Any, name: str) -> Array:
    """A pytree shaped like ``template`` -> ``(S,)``."""
    leaves, treedef = jax.tree_util.tree_flatten(tree)
    expected = jax.tree_util.tree_structure(template)
    shapes = [jnp.shape(leaf) for leaf in leaves]
    wanted = [leaf.shape for leaf in jax.tree_util.tree_leaves(template)]
    if treedef != expected or shapes != wanted:
        raise ValueError(
            f"{name}(x, h) must return a new state shaped like h ({expected} with shapes "
            f"{wanted}), got {treedef} with shapes {shapes}"
        )
    return jnp.concatenate([jnp.ravel(leaf) for leaf in leaves])


def _lstm_bounds(n: int) -> tuple[Array, Array]:
    """``|h| <= 1``, ``c`` free, for the flat state ``[h, c]``."""
    upper = jnp.concatenate([jnp.ones((n,)), jnp.full((n,), jnp.inf)])
    return -upper, upper


def from_equinox(
    module: Any,
    state: Any = None,
    *,
    output: Callable[[Array], Array] | None = None,
    bounds: tuple[Any, Any] | None = None,
) -> Converted:
    """An equinox recurrent module as an rnndyn cell and its parameters.

    Works for ``equinox.nn.GRUCell``, ``equinox.nn.LSTMCell`` and any equinox module
    called as ``module(x, h)`` that returns the new state (an array or a pytree of
    arrays shaped like ``h``). The state is flattened leaf by leaf into one vector: for
    ``LSTMCell`` the state ``(h, c)`` becomes ``[h, c]`` of size ``2N``, as in
    rnndyn's ``LSTM``. The parameters are the module's array leaves
    (``equinox.partition(module, equinox.is_array)[0]``, a pytree with the module's
    structure), so ``find_fixed_points``, ``jacobians`` and friends take them as they
    are; the rest of the module is held by the cell.

    Args:
      module: an ``equinox.Module``.
      state: the state's layout, needed except for ``GRUCell`` and ``LSTMCell`` (read
        from ``hidden_size``): an int ``N`` for a state array ``(N,)``, or an example
        state (an array or a pytree of arrays; only shapes and dtypes are used).
      output: optional ``flat state -> readout features`` map. Default: ``h`` (the first
        ``N`` entries) for ``LSTMCell``, the whole state otherwise.
      bounds: optional ``(lower, upper)`` box of the flat state the module cannot leave
        (scalars or ``(S,)`` arrays, ``±inf`` allowed), as in ``from_function``.
        Default: ``[-1, 1]`` for ``GRUCell``, ``|h| <= 1`` with ``c`` free for
        ``LSTMCell``, none otherwise.

    Returns:
      ``Converted(cell, params)``; ``cell(params, state (S,), x (M,)) -> (S,)``.

    Raises:
      ImportError: if equinox is not installed.
      ValueError: if ``module`` is not an equinox module, ``state`` is missing for a
        module other than ``GRUCell``/``LSTMCell``, or (when called) the module
        returns a state of another layout.
    """
    eqx = _import_equinox()
    if not isinstance(module, eqx.Module):
        raise ValueError(
            "module must be an equinox.Module called as module(x, h) (e.g. "
            f"equinox.nn.GRUCell), got {type(module).__name__}"
        )
    name = type(module).__name__
    default_output, default_bounds = None, None
    if isinstance(module, eqx.nn.LSTMCell):
        n = module.hidden_size
        default_state = (jnp.zeros((n,)), jnp.zeros((n,)))
        default_output, default_bounds = (lambda s: s[..., :n]), _lstm_bounds(n)
    elif isinstance(module, eqx.nn.GRUCell):
        default_state = jnp.zeros((module.hidden_size,))
        default_bounds = (-1.0, 1.0)
    elif state is None:
        raise ValueError(
            f"state is required for {name}: pass the state size N (an int) or an example "
            "state such as jnp.zeros(N) or (h, c)"
        )
    template = _template(default_state if state is None else state)
    params, static = eqx.partition(module, eqx.is_array)

    def step(params: Params, h: Array, x: Array) -> Array:
        new = eqx.combine(params, static)(x, _unflatten(h, template))
        return _flatten(new, template, name)

    size = sum(int(np.prod(leaf.shape)) for leaf in jax.tree_util.tree_leaves(template))
    cell = from_function(
        step,
        state_size=size,
        output=default_output if output is None else output,
        bounds=default_bounds if bounds is None else bounds,
    )
    return Converted(cell, params)
