"""Stage: the point the linearisation is taken at (``choose_reference``)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np

from rnndyn import _checks
from rnndyn._records import record, static
from rnndyn.config import REFERENCE_RULES
from rnndyn.linearize import Linearization, eig, mode_order, sort_modes

__all__ = ["RULES", "Reference", "choose_reference", "linearise_reference"]

RULES = REFERENCE_RULES


@record
class Reference:
    """The slow point the linearisation (word effects, ``initial`` accuracy) uses.

    Attributes:
      index: into ``Analysis.points.kept``.
      spectral_radius: ``|λ1|`` there.
      distance: ``‖h0 − h*‖`` from the initial state (a distance in state space).
      qualified: whether any analysed point is stable or marginal (``|λ1| <= 1 + band``);
        if not, the nearest point is used and the analysis carries the caveat.
      candidates: stable / marginal points considered (the nearest ``max_candidates``).
      agreement: for ``rule="faithful"``, the chosen linearisation's agreement with the
        full network's predictions on held-out examples (nan otherwise).
      band: the band on ``|λ1|``.
      point: ``(S,)`` the state ``h*``; input: ``(M,)`` the expansion input ``x*``.
      eigenvalues: ``(S,)`` of ``J_rec`` there (``linearize.mode_order``); right:
        ``(S, S)`` right eigenvectors (columns); left: ``(S, S)`` left eigenvectors
        (rows, ``left @ right = I``); j_inp: ``(S, M)`` ``∂F/∂x``.
      rule: ``"faithful"``, ``"stable"`` or ``"nearest"``.
      reason: one line saying why this point.
    """

    index: int
    spectral_radius: float
    distance: float
    qualified: bool
    candidates: int
    agreement: float
    band: float
    point: Any = None
    input: Any = None
    eigenvalues: Any = None
    right: Any = None
    left: Any = None
    j_inp: Any = None
    rule: str = static("faithful")
    reason: str = static("")


def choose_reference(
    points: Any,
    spectral_radius: Any,
    h0: Any,
    *,
    band: float = 0.02,
    rule: str = "faithful",
    score: Callable[[int], float] | None = None,
    max_candidates: int = 8,
) -> Reference:
    """Choose the point to linearise at.

    Rules (``rule``):

    * ``"stable"``: the point nearest ``h0`` among the stable or marginal ones
      (``|λ1| <= 1 + band``): a point the network can rest near;
    * ``"faithful"`` (default): of the ``max_candidates`` stable or marginal points
      nearest ``h0``, the one whose ``score`` (e.g. the linearised model's agreement with
      the network on held-out examples) is highest, ties to the nearer; without a
      ``score`` this is ``"stable"``;
    * ``"nearest"``: the point nearest ``h0`` whatever its stability (study A's rule).

    If no point is stable or marginal, every rule falls back to the nearest point and
    the record says so (``qualified`` false).

    Args:
      points: ``(K, S)`` with ``K >= 1``; spectral_radius: ``(K,)`` ``|λ1|`` per point;
        h0: ``(S,)``.
      band, rule, score, max_candidates: as above.

    Returns:
      ``Reference`` (without the linearisation: see ``linearise_reference``).
    """
    pts = np.asarray(points, np.float64)
    rad = np.asarray(spectral_radius, np.float64)
    if pts.ndim != 2 or len(pts) == 0 or rad.shape != (len(pts),) or np.shape(h0) != pts.shape[1:]:
        raise ValueError(
            f"points {pts.shape}, spectral_radius {rad.shape} and h0 {np.shape(h0)} must "
            "be (K, S) with K >= 1, (K,) and (S,)"
        )
    if rule not in RULES:
        raise ValueError(f"rule must be one of {', '.join(map(repr, RULES))}, got {rule!r}")
    _checks.check_positive("band", band, allow_zero=True)
    _checks.check_int("max_candidates", max_candidates, minimum=1)
    dist = np.linalg.norm(pts - np.asarray(h0, np.float64), axis=1)
    ok = rad <= 1.0 + band
    qualified = bool(np.any(ok))
    agreement = float("nan")
    order = np.argsort(dist, kind="stable")
    cands = [int(i) for i in order if ok[i]][:max_candidates]
    if not qualified:
        index = int(order[0])
        reason = (
            f"no analysed point is stable or marginal, the smallest |λ1| is {rad.min():.3f} > "
            f"1 + {band:g}; the point nearest h0, which is unstable"
        )
    elif rule == "nearest":
        index = int(order[0])
        reason = "the point nearest h0, rule 'nearest': stability not required"
    elif rule == "stable" or score is None or len(cands) == 1:
        index = cands[0]
        reason = f"the stable or marginal point nearest h0, with |λ1| ≤ 1 + {band:g}"
    else:
        scores = np.array([score(i) for i in cands])
        best = int(np.argmax(scores))  # first maximum: the nearest of the best
        index, agreement = cands[best], float(scores[best])
        reason = (
            f"the most faithful of the {len(cands)} stable or marginal points nearest h0: "
            f"agreement {agreement:.3f} with the network on held-out examples, the nearest "
            f"scored {scores[0]:.3f}"
        )
    return Reference(
        index=index, spectral_radius=float(rad[index]), distance=float(dist[index]),
        qualified=qualified, candidates=len(cands), agreement=agreement, band=float(band),
        rule=rule, reason=reason,
    )  # fmt: skip


def linearise_reference(ref: Reference, lin: Linearization) -> Reference:
    """``ref`` with the linearisation at its point: eigendecomposition and ``J_inp``."""
    i = ref.index
    eg = eig(np.asarray(lin.j_rec[i]))
    eg = sort_modes(eg, mode_order(eg.values))
    return dataclasses.replace(
        ref,
        point=np.asarray(lin.points[i], np.float64),
        input=np.asarray(lin.inputs[i], np.float64),
        eigenvalues=np.asarray(eg.values),
        right=np.asarray(eg.right),
        left=np.asarray(eg.left),
        j_inp=np.asarray(lin.j_inp[i], np.float64),
    )
