"""``from_torch`` and ``from_equinox`` against the other framework's own numbers.

torch's numbers come from fixtures written by ``tests/fixtures/make_torch_fixtures.py``
(weights, inputs, torch's trajectories, fixed points with torch's ``q`` at them), so
these tests run without torch; where torch is installed, the ``live`` tests also run
torch now. equinox is light: its tests run it directly.
"""

import functools
import importlib.util
import json
import pathlib
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rnndyn

FIXTURES = pathlib.Path(__file__).resolve().parent / "fixtures"
CASES = sorted(p.stem.removeprefix("torch_") for p in FIXTURES.glob("torch_*.npz"))


def _layers_of(case):
    meta = json.loads(str(np.load(FIXTURES / f"torch_{case}.npz")["meta"]))
    return meta["settings"].get("num_layers", 1)


LAYERS = [(case, layer) for case in CASES for layer in range(_layers_of(case))]
Q_TOL = 1e-8


@functools.cache
def _fixture(case):
    with np.load(FIXTURES / f"torch_{case}.npz") as z:
        data = {k: z[k] for k in z.files}
    meta = json.loads(str(data.pop("meta")))
    sd = {k.removeprefix("sd:"): data.pop(k) for k in list(data) if k.startswith("sd:")}
    return meta, sd, data


def _torch_reference(skip=True):
    """The fixture script's torch helpers; if torch is missing, skip the test (or return
    ``None`` with ``skip=False``)."""
    if importlib.util.find_spec("torch") is None:
        if skip:
            pytest.skip("torch is not installed: live checks against torch not run")
        return None
    path = FIXTURES / "make_torch_fixtures.py"
    spec = importlib.util.spec_from_file_location("make_torch_fixtures", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _initial_states(meta, data, layer):
    """``(B, S)``: the fixture's initial states of ``layer``, ``[h, c]`` for LSTMs."""
    h0 = data["h0"][layer]
    return np.concatenate([h0, data["c0"][layer]], -1) if "c0" in data else h0


def _layer_inputs(meta, data, layer):
    """``(B, T, M)``: the network input, or torch's trajectory of the layer below."""
    if layer == 0:
        return data["inputs"]
    return data["states"][:, :, layer - 1, : meta["hidden_size"]]


@functools.partial(jax.jit, static_argnums=0)
def _trajectory(cell, params, h0, xs):
    """``(B, T, S)`` states after each step, from ``h0 (B, S)`` over ``xs (B, T, M)``."""

    def one(h, x_seq):
        return jax.lax.scan(lambda h, x: (cell(params, h, x),) * 2, h, x_seq)[1]

    return jax.vmap(one)(h0, xs)


def _roots(case, layer):
    """The certified isolated roots rnndyn finds for the fixture's problem, ``(P, S)``."""
    meta, sd, data = _fixture(case)
    cell, params = rnndyn.from_torch(sd, layer, kind=meta["kind"])
    fps = rnndyn.find_fixed_points(
        cell, params, data[f"fp_x_l{layer}"], data[f"fp_starts_l{layer}"], deflation_rounds=0
    )
    return np.asarray(fps.points)[np.asarray(fps.status) == rnndyn.Status.ROOT]


def _search_groups():
    """Fixture problems grouped by compiled search (same cell and input size): one test
    per group compiles once."""
    groups = {}
    for case, layer in LAYERS:
        meta, _, data = _fixture(case)
        key = f"{meta['kind']}-input{data[f'fp_x_l{layer}'].shape[0]}"
        groups.setdefault(key, []).append((case, layer))
    return groups


SEARCH_GROUPS = _search_groups()


# --- import hygiene ------------------------------------------------------------------


def test_import_needs_neither_torch_nor_equinox():
    """``import rnndyn`` imports neither; a numpy state dict converts with torch blocked."""
    code = (
        "import sys, numpy as np, rnndyn\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'equinox'}))\n"
        "sys.modules['torch'] = None  # any import of torch now fails\n"
        "sd = {'weight_ih': np.ones((2, 3)), 'weight_hh': np.ones((2, 2)),\n"
        "      'bias_ih': np.ones(2), 'bias_hh': np.ones(2)}\n"
        "cell, params = rnndyn.from_torch(sd, kind='relu')\n"
        "print(type(cell).__name__, sorted(params), [float(b) for b in cell.state_bounds()])\n"
    )
    root = str(pathlib.Path(__file__).resolve().parents[1])
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=root)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["[]", "FunctionCell ['W_h', 'W_x', 'b'] [0.0, inf]"]


# --- torch: trajectories ----------------------------------------------------------------


@pytest.mark.parametrize("case, layer", LAYERS)
def test_trajectory_matches_torch_fixture(case, layer):
    meta, sd, data = _fixture(case)
    cell, params = rnndyn.from_torch(sd, layer, kind=meta["kind"])
    got = _trajectory(cell, params, _initial_states(meta, data, layer),
                      _layer_inputs(meta, data, layer))  # fmt: skip
    np.testing.assert_allclose(got, data["states"][:, :, layer], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("case, layer", LAYERS)
def test_trajectory_matches_torch_live(case, layer):
    ref = _torch_reference()
    meta, sd, data = _fixture(case)
    module = ref.build_module(meta, sd)
    expected = ref.torch_states(module, meta, data["inputs"], data["h0"], data.get("c0"))
    cell, params = rnndyn.from_torch(module, layer)  # the module itself, not its weights
    xs = data["inputs"] if layer == 0 else expected[:, :, layer - 1, : meta["hidden_size"]]
    got = _trajectory(cell, params, _initial_states(meta, data, layer), xs)
    np.testing.assert_allclose(got, expected[:, :, layer], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("case, layer", LAYERS)
def test_torch_states_stay_in_the_cells_box(case, layer):
    """Every state torch visits after its first step lies in ``cell.state_bounds()``."""
    meta, sd, data = _fixture(case)
    cell, _ = rnndyn.from_torch(sd, layer, kind=meta["kind"])
    lower, upper = (np.asarray(b) for b in cell.state_bounds())
    states = data["states"][:, :, layer]
    assert np.all(states >= lower) and np.all(states <= upper)


# --- torch: fixed points ------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("group", sorted(SEARCH_GROUPS))
def test_fixed_points_are_torchs(group):
    """rnndyn's certified roots are torch's fixed points: each lies at a point where torch
    computed q = ½‖F(h) − h‖² < 1e-8 (fixture), and where torch is installed, torch's own
    step (the whole stack, layers below at their fixed points) gives q < 1e-8 there now."""
    ref = _torch_reference(skip=False)
    for case, layer in SEARCH_GROUPS[group]:
        meta, sd, data = _fixture(case)
        fixture_points, fixture_q = data[f"fp_points_l{layer}"], data[f"fp_q_l{layer}"]
        assert len(fixture_points) >= 1 and np.all(fixture_q < Q_TOL), (case, layer)
        roots = _roots(case, layer)
        assert len(roots) >= 1, (case, layer)
        distance = np.linalg.norm(roots[:, None] - fixture_points[None], axis=-1).min(axis=1)
        assert np.all(distance < 1e-4), (case, layer, distance)
        if ref is not None:
            module = ref.build_module(meta, sd)
            q = ref.torch_q(module, meta, data["fp_input"], data[f"fp_below_l{layer}"], roots)
            assert np.all(q < Q_TOL), (case, layer, q)


def test_torch_is_installed_for_the_live_checks():
    """Visible when the live halves of the fixed-point tests could not run."""
    _torch_reference()


# --- torch: forms and settings ------------------------------------------------------


def test_torch_state_dict_of_tensors_and_batch_first_give_the_same_cell():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    module = torch.nn.GRU(3, 4, num_layers=2, batch_first=True)
    cell, params = rnndyn.from_torch(module, 1)
    cell_sd, params_sd = rnndyn.from_torch(module.state_dict(), 1, kind="GRU")
    assert cell == cell_sd and params.keys() == params_sd.keys()
    for k in params:
        np.testing.assert_array_equal(params[k], params_sd[k])
    # layer 1 is driven by torch's layer-0 output
    layer0 = torch.nn.GRU(3, 4, batch_first=True)
    layer0.load_state_dict({k: v for k, v in module.state_dict().items() if k.endswith("_l0")})
    x = torch.randn(2, 6, 3)  # batch_first: (B, T, M)
    with torch.no_grad():
        expected, below = module(x)[0].numpy(), layer0(x)[0].numpy()
    got = _trajectory(cell, params, np.zeros((2, 4), np.float32), below)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


# --- torch: refusals ----------------------------------------------------------------


def _sd(kind_gates=3, n=2, m=3, layers=1, **extra):
    sd = {}
    for layer in range(layers):
        sd[f"weight_ih_l{layer}"] = np.zeros((kind_gates * n, m if layer == 0 else n))
        sd[f"weight_hh_l{layer}"] = np.zeros((kind_gates * n, n))
    sd.update(extra)
    return sd


@pytest.mark.parametrize(
    "sd, kwargs, match",
    [
        (_sd(4, weight_hr_l0=np.zeros((1, 2))), {"kind": "lstm"}, "proj_size"),
        (_sd(3, weight_ih_l0_reverse=np.zeros((6, 3))), {"kind": "gru"}, "bidirectional"),
        (_sd(3, layers=2), {"kind": "gru", "layer": 2}, r"layer=2 does not exist.*2 layer"),
        (_sd(3), {"kind": "transformer"}, "kind='transformer'"),
        (_sd(3), {}, "kind is required"),
        (_sd(3), {"kind": "lstm"}, "kind='lstm' has 4 gate"),
        ({"weight_ih": np.zeros((2, 3)), "weight_hh": np.zeros((2, 2))},
         {"kind": "rnn", "layer": 1}, "single cell"),
        ({"rnn.weight_ih_l0": np.zeros((2, 3))}, {"kind": "rnn"}, "strip its prefix"),
        (_sd(3, bias_ih_l0=np.zeros(6)), {"kind": "gru"}, "both biases or none"),
        (_sd(3), {"kind": "gru", "layer": -1}, "layer must be an integer >= 0"),
    ],
)  # fmt: skip
def test_from_torch_state_dict_refusals(sd, kwargs, match):
    with pytest.raises(ValueError, match=match):
        rnndyn.from_torch(sd, **kwargs)


def test_from_torch_refuses_other_objects():
    with pytest.raises(ValueError, match="rnn must be a torch.nn.RNN"):
        rnndyn.from_torch(np.zeros(3))


def test_from_torch_module_refusals():
    torch = pytest.importorskip("torch")
    nn = torch.nn
    with pytest.raises(ValueError, match=r"nn.LSTM with proj_size=2"):
        rnndyn.from_torch(nn.LSTM(3, 4, proj_size=2))
    with pytest.raises(ValueError, match=r"nn.GRU with bidirectional=True"):
        rnndyn.from_torch(nn.GRU(3, 4, bidirectional=True))
    with pytest.raises(ValueError, match=r"layer=2 does not exist: nn.RNN has 2 layer"):
        rnndyn.from_torch(nn.RNN(3, 4, num_layers=2), layer=2)
    with pytest.raises(ValueError, match=r"layer=1 does not exist: nn.GRUCell"):
        rnndyn.from_torch(nn.GRUCell(3, 4), layer=1)
    with pytest.raises(ValueError, match=r"nn.GRU is 'gru'"):
        rnndyn.from_torch(nn.GRU(3, 4), kind="lstm")
    with pytest.raises(ValueError, match=r"kind='rnn_weird'"):
        rnndyn.from_torch(nn.GRU(3, 4), kind="rnn_weird")
    with pytest.raises(ValueError, match=r"got Linear.*model.rnn"):
        rnndyn.from_torch(nn.Linear(3, 4))


def test_from_torch_bias_false_module_is_torchs_step():
    torch = pytest.importorskip("torch")
    torch.manual_seed(1)
    module = torch.nn.LSTMCell(3, 4, bias=False)
    cell, params = rnndyn.from_torch(module)
    x, h, c = torch.randn(5, 3), torch.randn(5, 4), torch.randn(5, 4)
    with torch.no_grad():
        h1, c1 = module(x, (h, c))
    got = cell(params, jnp.concatenate([h.numpy(), c.numpy()], -1), x.numpy())
    np.testing.assert_allclose(got, np.concatenate([h1, c1], -1), rtol=1e-5, atol=1e-6)


# --- equinox ------------------------------------------------------------------------


@functools.cache
def _eqx(kind, m=3, n=5, gain=3.0, seed=0):
    """An equinox cell with strong random recurrence, and its conversion (one per worker:
    building and compiling them is most of these tests' time)."""
    eqx = pytest.importorskip("equinox")
    klass = {"gru": eqx.nn.GRUCell, "lstm": eqx.nn.LSTMCell}[kind]
    module = klass(m, n, key=jax.random.key(seed))
    w_hh = gain * jax.random.normal(jax.random.key(seed + 1), module.weight_hh.shape) / n**0.5
    module = eqx.tree_at(lambda mod: mod.weight_hh, module, w_hh)
    return module, *rnndyn.from_equinox(module)


def _eqx_flat(state):
    return jnp.concatenate([jnp.ravel(s) for s in jax.tree_util.tree_leaves(state)])


def _eqx_state(kind, flat, n):
    """A flat ``(S,)`` state in equinox's layout: ``h``, or ``(h, c)`` for the LSTM."""
    return (flat[:n], flat[n:]) if kind == "lstm" else flat


@pytest.mark.parametrize("kind", ["gru", "lstm"])
def test_equinox_trajectory_matches_equinox(kind):
    module, cell, params = _eqx(kind)
    n = module.hidden_size
    assert cell.state_size == (2 * n if kind == "lstm" else n)
    key_x, key_h = jax.random.split(jax.random.key(2))
    xs = jax.random.normal(key_x, (50, 3))
    h0 = jnp.stack([jnp.zeros(cell.state_size), jax.random.uniform(key_h, (cell.state_size,),
                                                                   minval=-1.0)])  # fmt: skip

    def step(state, x):  # equinox's own step, on the state in its own layout
        new = module(x, state)
        return new, (_eqx_flat(new), new[0] if kind == "lstm" else new)

    run = jax.jit(jax.vmap(lambda h: jax.lax.scan(step, _eqx_state(kind, h, n), xs)[1]))
    expected, expected_h = run(h0)
    got = _trajectory(cell, params, h0, jnp.broadcast_to(xs, (2, *xs.shape)))
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
    # the readout sees equinox's h; equinox's states stay in the cell's box
    np.testing.assert_array_equal(cell.output(expected), expected_h)
    lower, upper = cell.state_bounds()
    assert np.all((expected >= lower) & (expected <= upper))


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["gru", "lstm"])
def test_equinox_fixed_points_are_equinoxs(kind):
    module, cell, params = _eqx(kind)
    n = module.hidden_size
    x_star = 0.2 * jax.random.normal(jax.random.key(3), (3,))
    fps = rnndyn.find_fixed_points(
        cell, params, x_star, key=jax.random.key(4), num_initial=48, deflation_rounds=0
    )
    roots = np.asarray(fps.points)[np.asarray(fps.status) == rnndyn.Status.ROOT]
    assert len(roots) >= 1
    step = jax.jit(jax.vmap(lambda h: _eqx_flat(module(x_star, _eqx_state(kind, h, n)))))
    r = np.asarray(step(jnp.asarray(roots)), np.float64) - roots  # equinox's own F(h) - h
    assert np.all(0.5 * np.sum(r * r, axis=1) < Q_TOL)
    # Jacobians on the same parameters: equinox's own derivative of its step
    j_rec, _ = rnndyn.jacobians(cell, params, roots[:1], np.asarray(x_star)[None])
    expected = jax.jacfwd(lambda h: _eqx_flat(module(x_star, _eqx_state(kind, h, n))))
    np.testing.assert_allclose(j_rec[0], expected(jnp.asarray(roots[0])), rtol=1e-5, atol=1e-6)


def test_equinox_generic_module():
    eqx = pytest.importorskip("equinox")

    class Leaky(eqx.Module):
        w: jax.Array
        u: jax.Array
        alpha: float = eqx.field(static=True)

        def __call__(self, x, state):
            h, v = state["h"], state["v"]
            new = (1 - self.alpha) * h + self.alpha * jnp.tanh(self.w @ h + self.u @ x + v)
            return {"h": new, "v": 0.5 * v}

    k1, k2 = jax.random.split(jax.random.key(5))
    module = Leaky(jax.random.normal(k1, (3, 3)), jax.random.normal(k2, (3, 2)), 0.3)
    with pytest.raises(ValueError, match="state is required for Leaky"):
        rnndyn.from_equinox(module)
    template = {"h": jnp.zeros(3), "v": jnp.zeros(3)}
    cell, params = rnndyn.from_equinox(module, template, bounds=(-jnp.inf, jnp.inf))
    assert cell.state_size == 6
    state = {"h": jnp.array([0.1, -0.2, 0.3]), "v": jnp.array([1.0, 2.0, -1.0])}
    x = jnp.array([0.5, -1.0])
    new = module(x, state)
    flat = jnp.concatenate([state["h"], state["v"]])  # dict leaves in key order
    np.testing.assert_allclose(cell(params, flat, x), jnp.concatenate([new["h"], new["v"]]),
                               rtol=1e-6)  # fmt: skip
    np.testing.assert_allclose(
        rnndyn.jacobians(cell, params, flat[None], x[None])[0][0],
        jax.jacfwd(lambda f: jnp.concatenate(jax.tree_util.tree_leaves(
            module(x, {"h": f[:3], "v": f[3:]}))))(flat),
        rtol=1e-5, atol=1e-6,
    )  # fmt: skip
    bad, bad_params = rnndyn.from_equinox(module, 6)  # a flat (6,) state: module fails on it
    with pytest.raises(ValueError, match="could not be applied"):
        rnndyn.find_fixed_points(bad, bad_params, x, jnp.zeros((2, 6)))


def test_from_equinox_refuses_other_objects():
    pytest.importorskip("equinox")
    with pytest.raises(ValueError, match="equinox.Module"):
        rnndyn.from_equinox(lambda x, h: h)
