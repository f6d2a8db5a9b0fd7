"""Argument validation shared by the public functions, and the one conversion of a JAX
key into a host-side numpy generator (``host_rng``).

Every check raises ``ValueError`` naming the argument, what was given and what was
expected. Checks on values (finiteness) are skipped for traced arrays, where the
values are unknown; checks on shapes always run, since shapes are static under jit.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import jax

# JAX is imported inside the functions that need it: ``rnndyn.config`` uses these checks,
# and the command line builds its parser from the configs without loading JAX.


def is_traced(x: Any) -> bool:
    import jax

    return isinstance(x, jax.core.Tracer)


def as_array(name: str, x: Any, *, complex_ok: bool = False) -> jax.Array:
    import jax.numpy as jnp

    try:
        arr = jnp.asarray(x)
    except (TypeError, ValueError) as err:
        raise ValueError(
            f"{name} must be an array-like of numbers, got {type(x).__name__}"
        ) from err
    kinds = (jnp.floating, jnp.integer) + ((jnp.complexfloating,) if complex_ok else ())
    if not any(jnp.issubdtype(arr.dtype, k) for k in kinds):
        what = "numbers" if complex_ok else "real numbers"
        raise ValueError(f"{name} must hold {what}, got dtype {arr.dtype}")
    return arr


def check_ndim(name: str, x: jax.Array, ndims: tuple[int, ...], meaning: str) -> None:
    if x.ndim not in ndims:
        raise ValueError(
            f"{name} must have {' or '.join(str(n) for n in ndims)} dimension(s) {meaning}, "
            f"got shape {tuple(x.shape)}"
        )


def check_nonempty(name: str, x: jax.Array, axis: int = 0) -> None:
    if x.ndim > 0 and x.shape[axis] == 0:
        raise ValueError(f"{name} is empty (shape {tuple(x.shape)}); expected at least one row")


def check_finite(name: str, tree: Any) -> None:
    """Raise if any concrete leaf of ``tree`` holds NaN or inf."""
    import jax

    leaves = jax.tree_util.tree_leaves_with_path(tree)
    for path, leaf in leaves:
        if is_traced(leaf):
            continue
        arr = np.asarray(leaf)
        if arr.dtype.kind in "fc" and not np.all(np.isfinite(arr)):
            where = jax.tree_util.keystr(path)
            bad = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
            raise ValueError(
                f"{name}{where} contains {bad} non-finite value(s) (NaN or inf) in an array of "
                f"shape {arr.shape}; expected finite numbers"
            )


def numeric_array(name: str, x: Any) -> np.ndarray:
    """``x`` as a numpy array of real numbers (bool, int or float), else ValueError."""
    try:
        arr = np.asarray(x)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} must be an array of numbers, got {type(x).__name__}") from err
    if arr.dtype.kind not in "biuf":
        raise ValueError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    return arr


def real_array(name: str, x: Any, ndims: tuple[int, ...], meaning: str) -> np.ndarray:
    """``x`` as a finite float64 numpy array with one of ``ndims`` dimensions, else
    ValueError (``meaning`` describes the expected shape, e.g. ``"(K, D)"``)."""
    arr = numeric_array(name, x)
    if arr.ndim not in ndims:
        want = " or ".join(str(n) for n in ndims)
        raise ValueError(
            f"{name} must have {want} dimension(s) {meaning}, got shape {tuple(arr.shape)}"
        )
    if arr.size == 0:
        raise ValueError(f"{name} is empty (shape {tuple(arr.shape)}); expected {meaning}")
    arr = arr.astype(np.float64)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or inf (shape {tuple(arr.shape)})")
    return arr


def complex_or_real_array(name: str, x: Any, ndims: tuple[int, ...], meaning: str) -> np.ndarray:
    """Like ``real_array``, but a complex ``x`` is kept complex (complex128)."""
    arr = np.asarray(x)
    if arr.dtype.kind == "c":
        if arr.ndim not in ndims or arr.size == 0:
            raise ValueError(f"{name} must be {meaning}, got shape {tuple(arr.shape)}")
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{name} contains NaN or inf (shape {tuple(arr.shape)})")
        return arr.astype(np.complex128)
    return real_array(name, arr, ndims, meaning)


def check_fraction(name: str, value: float) -> None:
    """Raise unless ``value`` is a number in ``(0, 1]`` (e.g. a variance fraction)."""
    ok = isinstance(value, (int, float, np.floating)) and 0.0 < value <= 1.0
    if not ok:
        raise ValueError(f"{name} must be a number in (0, 1], got {value!r}")


def check_positive(name: str, value: float, *, allow_zero: bool = False) -> float:
    """Raise unless ``value`` is a finite real number (not a bool) > 0 (>= 0 with
    ``allow_zero``); return it as a float."""
    ok = isinstance(value, (int, float, np.floating, np.integer)) and not isinstance(value, bool)
    ok = ok and math.isfinite(value) and (value >= 0 if allow_zero else value > 0)
    if not ok:
        kind = "a finite number >= 0" if allow_zero else "a finite number > 0"
        raise ValueError(f"{name} must be {kind}, got {value!r}")
    return float(value)


def check_int(name: str, value: int, minimum: int = 0) -> int:
    """Raise unless ``value`` is an integer (not a bool) >= ``minimum``; return it as an int."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def check_key(name: str, key: Any) -> None:
    """Raise unless ``key`` is a JAX PRNG key: a typed key (``jax.random.key``) or a raw
    ``uint32`` key of shape ``(2,)`` (``jax.random.PRNGKey``)."""
    import jax

    dtype = getattr(key, "dtype", None)
    if dtype is not None and jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key):
        if key.shape != ():
            raise ValueError(
                f"{name} must be a single PRNG key, got an array of {key.shape} keys; "
                "split it and pass one"
            )
        return
    if isinstance(key, (jax.Array, np.ndarray)) and key.dtype == np.uint32 and key.shape == (2,):
        return
    what = type(key).__name__ if dtype is None else f"{type(key).__name__} of {dtype}"
    raise ValueError(
        f"{name} must be a JAX PRNG key such as jax.random.key(0), got {key!r} ({what})"
    )


def host_rng(key: Any) -> np.random.Generator:
    """A numpy generator seeded by the bits of the JAX PRNG ``key`` (typed or raw): host-side
    randomness (batch orders, sampling) that a key reproduces."""
    import jax

    return np.random.default_rng(np.asarray(jax.random.key_data(key)).ravel().astype(np.uint32))


def check_finite_params(name: str, params: Any) -> None:
    """Refuse parameters holding NaN or inf (e.g. from a diverged training run)."""
    try:
        check_finite(name, params)
    except ValueError as err:
        raise ValueError(
            f"{err}. These parameters are unusable (a diverged training run?); retrain with a "
            "lower learning rate or gradient clipping"
        ) from None
