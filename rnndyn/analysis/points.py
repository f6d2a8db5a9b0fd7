"""Stage: the slow points of the network at ``x*`` (``search_slow_points``)."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from rnndyn._records import record, static
from rnndyn.fixed_points import FixedPoints, find_fixed_points, sample_states
from rnndyn.models import Classifier

__all__ = ["POLISH_STEPS", "SlowPoints", "search_slow_points"]

#: Newton/LM steps of the hybrid retry when Adam alone keeps fewer than two points:
#: isolated roots far from where Adam stalls (a 16-unit LSTM on ratings5 at zero input)
#: take a few hundred.
POLISH_STEPS = 300


@record
class SlowPoints:
    """Every start of the search and the points analysed.

    Attributes:
      candidates: ``FixedPoints`` of every start: each keeps its ``q`` and ``Status``
        (slow point, certified root, or why neither).
      kept: the analysed points: the slow points (``q < tol``; with ``roots_only``, the
        certified roots only), merged closer than ``merge_distance`` and with outliers
        dropped (FixedPointFinder's rule), each with its status.
      search: ``"adam"`` (the studies' first-order search), or ``"adam+newton"`` when Adam
        alone left fewer than two points and the hybrid search kept more.
      roots_only: whether ``kept`` holds certified roots only.
    """

    candidates: FixedPoints
    kept: FixedPoints
    search: str = static("adam")
    roots_only: bool = static(False)

    def describe(self) -> str:
        """``candidates.describe()``: slow points, certified roots, and the rest."""
        return self.candidates.describe()


def search_slow_points(
    model: Classifier,
    params: Any,
    visited: np.ndarray,
    x_star: Any,
    *,
    key: jax.Array,
    num_initial: int,
    noise: float,
    tol: float,
    max_steps: int,
    learning_rate: float,
    merge_distance: float,
    outlier_factor: float,
    roots_only: bool = False,
    verbose: bool = False,
) -> SlowPoints:
    """Slow points at ``x_star`` from ``num_initial`` visited states plus noise.

    Adam only, as in the studies (polishing would pull the slow points that trace a
    manifold onto its few exact roots), with the float64 certificate labelling which
    are roots. If fewer than two points are kept, the same starts are searched again
    with the hybrid Adam + Newton/LM search, which reaches ``tol`` where Adam alone is
    too slow; the search that kept more points is used. Zero, one or two points are a
    result (the analysis reports the caveat), never an error.
    """
    k_sample, k_search = jax.random.split(key)
    h0 = sample_states(jnp.asarray(visited), num_initial, k_sample, noise=noise)
    best = None
    for how, polish in (("adam", 0), ("adam+newton", POLISH_STEPS)):
        found = find_fixed_points(
            model.cell, params["cell"], x_star, h0, key=k_search, tol=tol,
            learning_rate=learning_rate, max_steps=max_steps, polish_steps=polish,
            merge_distance=merge_distance, verbose=verbose,
        )  # fmt: skip
        kept = found.keep_roots() if roots_only else found.keep_slow()
        if len(kept) >= 2:
            kept = kept.merge_duplicates(merge_distance).drop_outliers(outlier_factor)
        if best is None or len(kept) > len(best.kept):
            best = SlowPoints(found, kept, how, bool(roots_only))
        if len(best.kept) >= 2:
            break
    return jax.tree_util.tree_map(np.asarray, best)
