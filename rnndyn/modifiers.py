"""Contextual processing (Maheswaranathan & Sussillo, ICML 2020): how a word changes the
effect of the words after it, measured on the network itself.

Everything is read from the network's own steps ``F(h, x)`` and a valence readout
``r(h) = w · output(h)`` (for a binary classifier the logit difference), starting from
real contexts ``h`` (states the network visits):

- **probe effect**: the change of ``r`` a probe word ``p`` causes after a path, read
  ``settle`` fillers later (once the transients it excites have relaxed onto the
  line, so what counts is the evidence the network keeps):
  ``Δ(p) = r(F_f^s(F(H, x_p))) − r(F_f^s(F(H, x_f)))`` with ``x_f`` a filler (a frequent
  neutral word) and ``F_f^s`` ``s`` filler steps;
- **gain** of a word ``w`` at distance ``d``: the paths are ``w`` then ``d`` fillers
  (modifier), ``x_f`` then ``d`` fillers (baseline), and a *control* that moves the
  state along the line attractor as far as ``w`` moves the readout, but not off it
  (``F(h, x_f) + α v`` with ``v`` the line's local direction, the slowest mode at the
  slow point nearest the context, and ``α`` matching ``r``), then ``d`` fillers. The gain
  is the
  least-squares slope of the modifier path's probe effects on the baseline's, over
  contexts and probes, divided by the control's slope. Dividing by the control removes
  what a word does only by moving the state along the line (e.g. towards a saturated
  end, where every word's effect is smaller), so valence words come out near 1;
- **strength** ``gain(0) − 1`` (above 0 intensifies; below −1 flips) and **reach**
  ``Σ_d |gain(d) − 1| / |gain(0) − 1|`` in tokens (a gain held for ``k`` tokens and then
  gone has reach ``k``; a decay ``e^{−d/τ}`` about ``τ + ½``);
- the **modifier subspace**: the principal directions of the modifiers' off-line
  displacements ``F(h, x_w) − F(h, x_f) − α v`` averaged over contexts;
- **ablation**: the same measurements with that subspace projected out after every step;
- **position effects**: how much a probe changes the final readout at each relative
  position of a real document.

Functions take the cell and its parameters; the heavy parts are jitted and batched.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from rnndyn._records import record
from rnndyn.cells import Cell

__all__ = [
    "Ablate",
    "no_ablation",
    "GainCurves",
    "ModifierSubspace",
    "final_scores",
    "gain_curves",
    "modifier_subspace",
    "position_effects",
    "reach",
    "valences",
]

Array = jax.Array


class Ablate(NamedTuple):
    """A subspace projected out after every step: ``h ← h − Bᵀ B (h − h_ref)`` with
    orthonormal rows ``basis (k, S)`` (``k = 0``: no ablation)."""

    basis: Array
    h_ref: Array


def no_ablation(s: int) -> Ablate:
    return Ablate(jnp.zeros((0, s)), jnp.zeros((s,)))


def _step(cell: Cell, params: Any, ablate: Ablate):
    """One step ``(S,), (M,) -> (S,)`` with the ablation applied."""

    def step(h, x):
        new = cell(params, h, x)
        return new - ablate.basis.T @ (ablate.basis @ (new - ablate.h_ref))

    return step


@record
class GainCurves:
    """Gain of each word on the probes after it, by distance. ``n`` words, ``D``
    distances (``0``: the probe right after the word).

    Attributes:
      gain: ``(n, D)`` modifier path relative to the control (the gain the word applies
        beyond moving the state along the line).
      raw_gain: ``(n, D)`` modifier path relative to the baseline.
      control_gain: ``(n, D)`` control path relative to the baseline.
      displacement: ``(n, S)`` mean off-line displacement the word causes (beyond the
        matched move along the line).
    """

    gain: np.ndarray
    raw_gain: np.ndarray
    control_gain: np.ndarray
    displacement: np.ndarray


def gain_curves(
    cell: Cell,
    params: Any,
    readout: Any,
    contexts: Any,
    words: Any,
    probes: Any,
    filler: Any,
    line: Any = None,
    *,
    distances: int = 8,
    settle: int = 8,
    ablate: Ablate | None = None,
) -> GainCurves:
    """Gains of ``words (n, M)`` (inputs) on ``probes (P, M)`` from ``contexts (K, S)``.

    Args:
      readout: ``(N,)`` valence direction on ``cell.output(h)``.
      filler: ``(M,)`` the neutral input between and in place of words.
      line: ``(K, S)`` the line's local direction at each context (``None``: the control
        is the baseline).
      distances: ``D``.
      settle: filler steps after the probe before the readout.
      ablate: a subspace projected out after every step (default none).
    """
    k, s = np.shape(contexts)
    ablate = no_ablation(s) if ablate is None else ablate
    line = np.zeros((k, s)) if line is None else np.asarray(line)
    out = _gains(cell, params, jnp.asarray(readout), jnp.asarray(contexts), jnp.asarray(words),
                 jnp.asarray(probes), jnp.asarray(filler), jnp.asarray(line, jnp.float32),
                 ablate, int(distances), int(settle))  # fmt: skip
    raw, control, disp = (np.asarray(a, np.float64) for a in out)
    with np.errstate(divide="ignore", invalid="ignore"):
        gain = raw / control
    return GainCurves(gain, raw, control, disp)


@functools.partial(jax.jit, static_argnums=(0, 9, 10))
def _gains(cell, params, readout, contexts, words, probes, filler, line, ablate, distances,
           settle):  # fmt: skip
    step = jax.vmap(_step(cell, params, ablate), (0, None))  # over contexts

    def score(h):
        return cell.output(h) @ readout

    def settled(h):  # the readout after ``settle`` filler steps
        return score(lax.fori_loop(0, settle, lambda _, g: step(g, filler), h))

    def effects(h):  # (K, S) -> (K, P): each probe's effect after this path
        base = settled(step(h, filler))
        return jax.vmap(lambda x: settled(step(h, x)), out_axes=1)(probes) - base[:, None]

    def curve(h0):  # (D, K, P) effects after 0..D-1 fillers
        def body(h, _):
            return step(h, filler), effects(h)

        return lax.scan(body, h0, None, length=distances)[1]

    def slope(a, b):  # least squares a ≈ g b, per distance
        return jnp.sum(a * b, axis=(1, 2)) / jnp.sum(b * b, axis=(1, 2))

    h_f = step(contexts, filler)
    base = curve(h_f)
    # how far the readout moves per unit along each context's line direction
    along = jax.vmap(lambda h, v: jax.jvp(score, (h,), (v,))[1])(h_f, line)
    safe = jnp.where(jnp.abs(along) > 1e-6, along, 1.0)

    def per_word(x):
        h_w = step(contexts, x)
        alpha = jnp.where(jnp.abs(along) > 1e-6, (score(h_w) - score(h_f)) / safe, 0.0)
        h_c = h_f + alpha[:, None] * line
        return slope(curve(h_w), base), slope(curve(h_c), base), jnp.mean(h_w - h_c, 0)

    return lax.map(per_word, words)


def valences(cell: Cell, params: Any, readout: Any, contexts: Any, words: Any, filler: Any):
    """``(n,)`` each word's own effect as a probe, ``mean_h r(F(h, x_w)) − r(F(h, x_f))``."""
    return np.asarray(_valences(cell, params, jnp.asarray(readout), jnp.asarray(contexts),
                                jnp.asarray(words), jnp.asarray(filler)), np.float64)  # fmt: skip


@functools.partial(jax.jit, static_argnums=0)
def _valences(cell, params, readout, contexts, words, filler):
    step = jax.vmap(lambda h, x: cell(params, h, x), (0, None))

    def score(h):
        return cell.output(h) @ readout

    base = score(step(contexts, filler))
    return lax.map(lambda x: jnp.mean(score(step(contexts, x)) - base), words)


def reach(gain: Any) -> np.ndarray:
    """``(n,)`` ``Σ_d |gain_d − 1| / |gain_0 − 1|`` (tokens) of gain curves ``(n, D)``."""
    dev = np.abs(np.asarray(gain, np.float64) - 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return dev.sum(axis=1) / dev[:, 0]


class ModifierSubspace(NamedTuple):
    """Principal directions ``basis (k, S)`` (orthonormal, orthogonal to the line),
    variance fractions ``explained (m,)``, and coordinates ``coords (n, k)``."""

    basis: np.ndarray
    explained: np.ndarray
    coords: np.ndarray


def modifier_subspace(
    displacement: Any, line_basis: Any = None, *, threshold: float = 0.9
) -> ModifierSubspace:
    """PCA (uncentred: directions from the line, not from their mean) of the modifiers'
    off-line displacements ``(n, S)``; ``k`` components explain ``threshold`` of their
    energy. With ``line_basis (d, S)`` the directions are made orthogonal to it."""
    u = np.asarray(displacement, np.float64)
    if line_basis is not None and np.size(line_basis):
        q, _ = np.linalg.qr(np.asarray(line_basis, np.float64).T)
        u = u - (u @ q) @ q.T
    _, sv, vt = np.linalg.svd(u, full_matrices=False)
    energy = sv**2 / max(np.sum(sv**2), 1e-300)
    k = max(1, int(np.searchsorted(np.cumsum(energy), threshold - 1e-12) + 1))
    return ModifierSubspace(vt[:k], energy, u @ vt[:k].T)


def final_scores(
    cell: Cell, params: Any, readout: Any, xs: Any, lengths: Any, ablate: Ablate | None = None
) -> np.ndarray:
    """``(B,)`` valence readout after the first ``lengths`` inputs of ``xs (B, T, M)``
    from the initial state, with ``ablate`` applied after every step."""
    s = int(cell.initial_state().shape[0])
    ablate = no_ablation(s) if ablate is None else ablate
    return np.asarray(_final(cell, params, jnp.asarray(readout), jnp.asarray(xs),
                             jnp.asarray(lengths), ablate), np.float64)  # fmt: skip


@functools.partial(jax.jit, static_argnums=0)
def _final(cell, params, readout, xs, lengths, ablate):
    step = _step(cell, params, ablate)

    def one(x_seq, n):
        def body(h, inp):
            x, t = inp
            return jnp.where(t < n, step(h, x), h), None

        t = jnp.arange(x_seq.shape[0])
        return cell.output(lax.scan(body, cell.initial_state(), (x_seq, t))[0]) @ readout

    return jax.vmap(one)(xs, lengths)


def position_effects(
    cell: Cell,
    params: Any,
    readout: Any,
    xs: Any,
    lengths: Any,
    positive: Any,
    negative: Any,
    *,
    bins: int = 10,
) -> tuple[np.ndarray, np.ndarray]:
    """Effect of a word on the final readout by relative position in real documents.

    In each document ``xs (B, T, M)`` (first ``lengths`` real), the input at the middle
    of each of ``bins`` equal parts is replaced by ``positive`` and then by ``negative``
    (``(M,)`` inputs); the effect there is half the difference of the final readouts.

    Returns:
      ``(edges (bins + 1,), effect (bins,))``: relative-position bin edges and the mean
      effect over documents.
    """
    xs = np.asarray(xs)
    lengths = np.asarray(lengths)
    edges = np.linspace(0.0, 1.0, bins + 1)
    centre = (edges[:-1] + edges[1:]) / 2
    pos = np.minimum((centre[None, :] * lengths[:, None]).astype(np.int64), lengths[:, None] - 1)
    b = xs.shape[0]
    cols = pos.reshape(-1)
    seqs = np.repeat(xs, bins, axis=0)
    lens = np.repeat(lengths, bins)
    out = []
    for word in (positive, negative):
        edited = seqs.copy()
        edited[np.arange(b * bins), cols] = np.asarray(word)
        out.append(final_scores(cell, params, readout, edited, lens))
    effect = ((out[0] - out[1]) / 2).reshape(b, bins)
    return edges, effect.mean(axis=0)
