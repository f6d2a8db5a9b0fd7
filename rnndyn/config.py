"""Settings as frozen dataclasses: one source of truth for the library's defaults, the
command line's flags (``add_config_arguments``) and what a report records.

Each field's ``metadata["help"]`` is its one-line description.
"""

from __future__ import annotations

import dataclasses
from typing import Any

__all__ = ["AnalysisConfig", "config_fields", "replace_config"]


def _field(default: Any, help: str, **kw: Any) -> Any:
    return dataclasses.field(default=default, metadata={"help": help, **kw})


@dataclasses.dataclass(frozen=True)
class AnalysisConfig:
    """Settings of ``rnndyn.analyze`` (every one is recorded in ``Analysis.settings``)."""

    max_examples: int | None = _field(1000, "analyse a random subset of at most this many examples")
    num_initial: int = _field(1024, "initial states of the slow-point search")
    noise: float = _field(0.01, "std of the Gaussian noise added to the sampled initial states")
    tol: float | None = _field(
        None, "slow points have q = ½‖F(h) − h‖² below this (default S·1e-8/2: the studies' "
        "per-dimension criterion (1/S)‖F(h) − h‖² < 1e-8)",
    )  # fmt: skip
    max_steps: int = _field(5000, "Adam steps per candidate of the slow-point search")
    learning_rate: float = _field(1e-2, "Adam step size of the slow-point search")
    merge_distance: float = _field(1e-3, "slow points closer than this are merged")
    outlier_factor: float = _field(
        10.0, "drop a slow point whose nearest neighbour is farther than this times the median "
        "nearest-neighbour distance",
    )  # fmt: skip
    roots_only: bool = _field(False, "analyse the certified roots only, not every slow point")
    input_star: str = _field(
        "zero", "expansion input x*: 'zero' (no word, study A) or 'mean' (frequency-weighted "
        "mean embedding)", choices=("zero", "mean"),
    )  # fmt: skip
    reference: str = _field(
        "faithful", "rule for the reference point: 'faithful', 'stable' or 'nearest'",
        choices=("faithful", "stable", "nearest"),
    )  # fmt: skip
    marginal_band: float = _field(
        0.02, "a mode with | |λ| − 1 | below this is slow (marginal); a point with |λ1| <= 1 + "
        "this is stable or marginal",
    )  # fmt: skip
    threshold: float = _field(0.9, "variance fraction of the PCA dimension rule")
    manifold_dim: int | None = _field(None, "use this manifold dimension instead of the rule")
    neighbours: int | None = _field(None, "neighbourhood size of the local tangent estimate")
    bow_steps: int = _field(500, "optimiser steps of the bag-of-words fit")
    batch_size: int = _field(256, "examples per batch when running the network")
    word_inputs: int = _field(
        16, "words whose embedding is used as constant input for a slow-point search (0: skip)"
    )
    key: tuple[int, ...] | None = _field(
        None,
        "the PRNG key's data (jax.random.key_data); analyze uses it when given no key",
        cli=False,
    )


def config_fields(cls: type) -> tuple[dataclasses.Field, ...]:
    """The dataclass fields of a config class, in order."""
    return dataclasses.fields(cls)


def replace_config(config: Any, overrides: dict[str, Any], what: str) -> Any:
    """``config`` with ``overrides`` applied; a name that is not a field raises a
    ``ValueError`` listing the valid ones."""
    names = {f.name for f in dataclasses.fields(config)}
    unknown = sorted(set(overrides) - names)
    if unknown:
        raise ValueError(
            f"{what} got unknown setting(s) {', '.join(unknown)}; expected some of "
            f"{', '.join(sorted(names))}"
        )
    return dataclasses.replace(config, **overrides)
