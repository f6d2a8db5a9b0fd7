"""Settings as frozen dataclasses, one per job.

Each field carries ``metadata={"help": ...}``: a one-line description from which the
command line (``rnndyn.cli.add_config_arguments``) builds its flag, default and help,
so the defaults live here only. ``metadata["choices"]``, where present, lists the
allowed values.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from rnndyn import _checks

__all__ = ["SCHEDULES", "AnalysisConfig", "TrainConfig", "replace_config"]

#: Rules for the reference point (``AnalysisConfig.reference``).
REFERENCE_RULES = ("faithful", "stable", "nearest")
#: Learning-rate decays after warm-up (``TrainConfig.schedule``).
SCHEDULES = ("constant", "cosine", "linear")


def _field(default: Any, text: str, **metadata: Any) -> Any:
    """A field with ``default`` and ``metadata={"help": text, **metadata}``."""
    return dataclasses.field(default=default, metadata={"help": text, **metadata})


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings of ``rnndyn.train.train`` (no seed: pass it a PRNG key)."""

    steps: int = _field(500, "optimiser steps")
    """Number of optimiser steps; ignored when ``epochs`` is set."""

    epochs: float | None = _field(None, "passes over the training set (overrides steps)")
    """Passes over the training set (may be fractional); overrides ``steps``."""

    batch_size: int = _field(64, "examples per step")
    """Examples per step."""

    learning_rate: float = _field(1e-2, "peak Adam learning rate")
    """Peak learning rate of Adam."""

    warmup_steps: int = _field(20, "linear warm-up steps")
    """Linear warm-up from 0 to ``learning_rate`` over this many steps."""

    schedule: str = _field("cosine", "learning-rate decay after warm-up", choices=SCHEDULES)
    """Decay after warm-up: ``constant``, ``cosine`` or ``linear``."""

    final_lr_fraction: float = _field(0.1, "the decayed learning rate's end, as a fraction")
    """The decayed learning rate ends at this fraction of the peak."""

    clip_norm: float | None = _field(1.0, "clip gradients to this global norm (0: off)")
    """Clip gradients to this global norm (``None``: no clipping; CLI ``--clip-norm 0``)."""

    l2: float = _field(0.0, "L2 penalty on weight matrices")
    """L2 penalty ``l2/2 * ||w||^2`` on weight matrices (not biases), added to the
    gradient before Adam."""

    embedding_l2: float = _field(
        0.0,
        "extra L2 penalty on the embedding alone (keeps the trained dynamics near-linear in "
        "the inputs, e.g. 1e-2 before rnndyn analyze)",
    )
    """Extra L2 penalty on the embedding alone. It shrinks the embeddings of words that
    carry no evidence towards zero, which keeps word inputs small and the trained dynamics
    close to their linearisation (see docs/analysis.md)."""

    eval_every: int = _field(0, "evaluate every this many steps (0: at the end)")
    """Evaluate on the test set every this many steps (0: only at the end)."""

    log_every: int = _field(50, "print a progress line every this many steps")
    """Print a progress line (and record the history) every this many steps."""

    eval_batch_size: int = _field(256, "batch size for evaluation")
    """Batch size for evaluation."""

    def __post_init__(self):
        _checks.check_int("steps", self.steps, minimum=1)
        if self.epochs is not None:
            _checks.check_positive("epochs", self.epochs)
        _checks.check_int("batch_size", self.batch_size, minimum=1)
        _checks.check_positive("learning_rate", self.learning_rate)
        _checks.check_int("warmup_steps", self.warmup_steps)
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        _checks.check_positive("final_lr_fraction", self.final_lr_fraction, allow_zero=True)
        if self.clip_norm is not None:
            _checks.check_positive("clip_norm", self.clip_norm)
        _checks.check_positive("l2", self.l2, allow_zero=True)
        _checks.check_positive("embedding_l2", self.embedding_l2, allow_zero=True)
        _checks.check_int("eval_every", self.eval_every)
        _checks.check_int("log_every", self.log_every, minimum=1)
        _checks.check_int("eval_batch_size", self.eval_batch_size, minimum=1)

    def total_steps(self, num_examples: int) -> int:
        """Optimiser steps for a training set of ``num_examples``."""
        if self.epochs is None:
            return self.steps
        per_epoch = max(1, num_examples // self.batch_size)
        return max(1, math.ceil(self.epochs * per_epoch))


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
    max_steps: int = _field(10000, "Adam steps per candidate of the slow-point search")
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
        choices=REFERENCE_RULES,
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
    modifiers: int = _field(
        0, "contextual processing (ICML 2020): screen this many of the most frequent words "
        "for modifier gains, the modifier subspace, its ablation, position effects and an "
        "extended bag of words (binary classifiers; 0: skip)",
    )  # fmt: skip
    linear_steps: int = _field(
        0, "train a linear RNN (same sizes) for this many steps as a baseline (0: skip)"
    )
    key: tuple[int, ...] | None = _field(
        None,
        "the PRNG key's data (jax.random.key_data); analyze uses it when given no key",
        cli=False,
    )

    def __post_init__(self):
        for name in ("max_examples", "manifold_dim", "neighbours"):
            if getattr(self, name) is not None:
                _checks.check_int(name, getattr(self, name), minimum=1)
        for name in ("num_initial", "max_steps", "bow_steps", "batch_size"):
            _checks.check_int(name, getattr(self, name), minimum=1)
        for name in ("word_inputs", "modifiers", "linear_steps"):
            _checks.check_int(name, getattr(self, name), minimum=0)
        for name in ("learning_rate", "merge_distance", "outlier_factor"):
            _checks.check_positive(name, getattr(self, name))
        for name in ("noise", "marginal_band"):
            _checks.check_positive(name, getattr(self, name), allow_zero=True)
        if self.tol is not None:
            _checks.check_positive("tol", self.tol)
        if not (isinstance(self.threshold, (int, float)) and 0 < self.threshold <= 1):
            raise ValueError(f"threshold must be a number in (0, 1], got {self.threshold!r}")
        if self.input_star not in ("zero", "mean"):
            raise ValueError(f"input_star must be 'zero' or 'mean', got {self.input_star!r}")
        if self.reference not in REFERENCE_RULES:
            raise ValueError(
                f"reference must be one of {', '.join(REFERENCE_RULES)}, got {self.reference!r}"
            )


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
