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

__all__ = ["SCHEDULES", "TrainConfig"]

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
