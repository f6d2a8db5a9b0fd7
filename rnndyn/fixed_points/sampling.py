"""Initial states for a fixed-point search, drawn from the states a network visits."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from rnndyn import _checks

Array = jax.Array

__all__ = ["sample_states"]


@functools.partial(jax.jit, static_argnums=(3, 4))
def _pick(key: Array, flat: Array, weights: Array, n: int, replace: bool) -> Array:
    """``n`` rows of ``flat`` drawn with probabilities ``weights`` (one program: op by
    op, ``jax.random.choice`` compiled a dozen)."""
    idx = jax.random.choice(key, flat.shape[0], (n,), replace=replace, p=weights / weights.sum())
    return flat[idx]


def sample_states(
    trajectories: Array,
    n: int,
    key: Array,
    *,
    mask: Array | None = None,
    noise: float = 0.0,
    replace: bool = True,
) -> Array:
    """Draw ``n`` initial states for a fixed-point search from visited hidden states.

    Args:
      trajectories: ``(T, S)`` or ``(B, T, S)`` hidden states (e.g. a classifier run
        over test documents).
      n: number of states to draw.
      key: PRNG key.
      mask: ``(T,)`` or ``(B, T)``, true at real (non-padding) steps; padded steps are
        never drawn.
      noise: standard deviation of Gaussian noise added to each drawn state.
      replace: sample with replacement (default) or without (then ``n`` may not exceed
        the number of valid states).

    Returns:
      ``(n, S)`` states.
    """
    _checks.check_int("n", n, minimum=1)
    _checks.check_positive("noise", noise, allow_zero=True)
    traj = _checks.as_array("trajectories", trajectories)
    _checks.check_ndim("trajectories", traj, (2, 3), "((T, S) or (B, T, S))")
    _checks.check_nonempty("trajectories", traj)
    flat = traj.reshape(-1, traj.shape[-1])
    if flat.shape[0] == 0:
        raise ValueError(f"trajectories has no time steps (shape {tuple(traj.shape)})")
    if mask is None:
        weights = jnp.ones((flat.shape[0],), flat.dtype)
    else:
        mask = jnp.asarray(mask)
        if tuple(mask.shape) != tuple(traj.shape[:-1]):
            raise ValueError(
                f"mask has shape {tuple(mask.shape)}, expected {tuple(traj.shape[:-1])} "
                f"to match trajectories of shape {tuple(traj.shape)}"
            )
        weights = mask.reshape(-1).astype(flat.dtype)
    if not _checks.is_traced(weights):
        valid = int(np.count_nonzero(np.asarray(weights)))
        if valid == 0:
            raise ValueError("mask marks no valid time step; nothing to sample from")
        if not replace and n > valid:
            raise ValueError(
                f"n={n} exceeds the {valid} valid states; use replace=True or a smaller n"
            )
    k_pick, k_noise = jax.random.split(key)
    states = _pick(k_pick, flat, weights, n, replace)
    if noise > 0:
        states = states + noise * jax.random.normal(k_noise, states.shape, states.dtype)
    return states
