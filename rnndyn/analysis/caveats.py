"""Where an analysis' assumptions fail: ``Caveat`` members carry their message, and
``detect`` finds them in an ``Analysis`` (stored on ``Analysis.caveats``).

A caveat that suggests a remedy suggests one that a test has shown to work
(``tests/test_analysis.py``).
"""

from __future__ import annotations

import enum
from typing import Any

import numpy as np

__all__ = ["ONE_STEP_LIMIT", "Caveat", "detect", "details"]

#: One-step relative error of the linearisation above which it is called unfaithful
#: (study A reports ~10%; a gap the study itself reports is no caveat).
ONE_STEP_LIMIT = 0.30


class Caveat(enum.Enum):
    """A known way an analysis can mislead; ``.severity`` (``"warning"`` or ``"note"``)
    and ``.message``."""

    NO_SLOW_POINTS = (
        "warning",
        "no start ended at a slow point, so there is nothing to linearise at (spectra, "
        "reference point, word effects there and the linearised models around points are "
        "missing); raise tol (--tol) to the level where the search ended",
    )
    NO_ROOTS = (
        "warning",
        "roots_only: no slow point is a certified root, so nothing is analysed at a fixed "
        "point; analyse the slow points instead (roots_only=False, the default)",
    )
    FEW_SLOW_POINTS = (
        "warning",
        "only two distinct slow points: the dimension and tangent of their set are not measurable",
    )
    POINT_ATTRACTOR = (
        "note",
        "one distinct slow point: a point attractor (fixed-point dimension 0); word effects "
        "and geometry use its slowest mode",
    )
    NEWTON_FALLBACK = (
        "note",
        "Adam alone left fewer than two slow points; the hybrid Adam + Newton search was "
        "used, which pulls slow points onto roots where it can",
    )
    UNSTABLE_REFERENCE = (
        "warning",
        "no analysed point is stable or marginal: the reference point is unstable, so word "
        "effects and the linearised model there describe dynamics the network does not rest in",
    )
    DIMENSION_DISAGREEMENT = (
        "note",
        "the visited states and the slow points need different numbers of PCs; the rule "
        "took one of them (set manifold_dim, --manifold-dim, to choose)",
    )
    LINEARISATION_ERROR = (
        "warning",
        "the one-step error of the linearisation at the nearest slow point is far above "
        "study A's ~10%: the dynamics near these points are not locally linear, so the "
        "slow points and their spectra describe the network poorly",
    )
    NO_WORD_INPUT_POINTS = (
        "note",
        "fewer than two words' inputs left a slow point, so the shift of the slow points "
        "under word inputs is not correlated with the bag of words",
    )
    BASELINE_NOT_HELD_OUT = (
        "warning",
        "the bag of words was fit on the analysed examples themselves (too few others), so "
        "its accuracy is a training accuracy; pass train_data (--train-data) to score it "
        "held out",
    )

    @property
    def severity(self) -> str:
        return self.value[0]

    @property
    def message(self) -> str:
        return self.value[1]


def detect(a: Any) -> tuple[Caveat, ...]:
    """The caveats of an ``Analysis`` (in the order of ``Caveat``)."""
    found = []
    pts = a.points
    n_kept = len(pts.kept)
    if n_kept == 0:
        if pts.roots_only and np.any(np.asarray(pts.candidates.slow)):
            found.append(Caveat.NO_ROOTS)
        else:
            found.append(Caveat.NO_SLOW_POINTS)
    elif n_kept == 1:
        found.append(Caveat.POINT_ATTRACTOR)
    elif n_kept == 2:
        found.append(Caveat.FEW_SLOW_POINTS)
    if pts.search != "adam":
        found.append(Caveat.NEWTON_FALLBACK)
    if a.reference is not None and not a.reference.qualified:
        found.append(Caveat.UNSTABLE_REFERENCE)
    if a.geometry.dimension_rule.startswith("states ") and n_kept > 2:
        found.append(Caveat.DIMENSION_DISAGREEMENT)
    if a.fidelity.one_step_median > ONE_STEP_LIMIT:
        found.append(Caveat.LINEARISATION_ERROR)
    if a.word_inputs is not None and not np.isfinite(a.word_inputs.correlation):
        found.append(Caveat.NO_WORD_INPUT_POINTS)
    if not a.baseline.held_out:
        found.append(Caveat.BASELINE_NOT_HELD_OUT)
    return tuple(c for c in Caveat if c in found)


def details(c: Caveat, a: Any) -> str:
    """The numbers behind caveat ``c`` in analysis ``a`` (may be empty)."""
    cand = a.points.candidates
    q = np.asarray(cand.speeds, np.float64)
    if c is Caveat.NO_SLOW_POINTS:
        ended = q[np.isfinite(q)]
        level = f"{np.median(ended):.2g}" if ended.size else "n/a (every start diverged)"
        counts = ", ".join(f"{k.lower()} {v}" for k, v in cand.counts().items())
        return f"median q where the search ended {level}, tol {cand.tol:.2g}; {counts}"
    if c is Caveat.UNSTABLE_REFERENCE:
        return f"|λ1| {a.reference.spectral_radius:.3f} at the reference point"
    if c is Caveat.LINEARISATION_ERROR:
        return f"median {a.fidelity.one_step_median:.0%}, limit {ONE_STEP_LIMIT:.0%}"
    if c is Caveat.DIMENSION_DISAGREEMENT:
        return a.geometry.dimension_rule
    if c is Caveat.BASELINE_NOT_HELD_OUT:
        return f"training accuracy {a.baseline.train_accuracy:.3f}"
    return ""
