"""What a fixed-point search returns: ``FixedPoints`` and the ``Status`` of each candidate.

Two tiers, each true by definition:

- **slow points** (``FixedPoints.slow``): ``q = ½‖F(h, x*) − h‖² < tol``, also when ``q`` is
  evaluated again in float64. The studies' approximate fixed points; an approximate line
  attractor is a set of them. Statuses ``ROOT``, ``CONTINUUM`` and ``SLOW_POINT``.
- **certified roots** (``FixedPoints.root``): slow points next to which a root of
  ``F(h) = h`` is proven numerically (``ROOT``: isolated; ``CONTINUUM``: on a verified
  manifold of roots). See ``rnndyn.fixed_points.certificate``.

Every other candidate says why it is neither (stalled, capped, diverged, outside the box,
or a float32 artefact).
"""

from __future__ import annotations

import enum
import html
import warnings
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from scipy.spatial import cKDTree

from rnndyn import _checks
from rnndyn._records import record, static

Array = jax.Array

__all__ = ["FixedPoints", "Status", "nearest_distances", "nearest_neighbour_distances"]


class Status(enum.IntEnum):
    """How a candidate ended (``FixedPoints.status``); ``Status(s).message`` says what it
    means. ``ROOT``, ``CONTINUUM`` and ``SLOW_POINT`` are the slow points (``q < tol``)."""

    ROOT = 0
    CONTINUUM = 1
    SLOW_POINT = 2
    STALLED = 3
    MAX_STEPS = 4
    DIVERGED = 5
    OUTSIDE = 6
    ARTEFACT = 7

    @property
    def message(self) -> str:
        return _MESSAGES[self]


_MESSAGES = {
    Status.ROOT: "an isolated root: q < tol, and float64 Newton steps from the point converge "
    "quadratically to a root within merge_distance of it",
    Status.CONTINUUM: "a root on a continuum of roots (line or plane attractor): a certified "
    "root whose neighbours along the near-null directions of J - I are roots too",
    Status.SLOW_POINT: "a slow point: q < tol (also in float64) but no root is certified "
    "within merge_distance (near a continuum, an asymptotic no-root, or a plateau of q)",
    Status.STALLED: "q stalled above tol: a local minimum of q that is not slow enough",
    Status.MAX_STEPS: "hit the step cap with q still above tol and decreasing",
    Status.DIVERGED: "the state or q became NaN or inf",
    Status.OUTSIDE: "pinned on the faces of the box the cell's state cannot leave with q "
    "above tol: the unconstrained search would have left the reachable set",
    Status.ARTEFACT: "q < tol in the search's precision but not in float64: a numerical "
    "artefact (e.g. rounding in saturated gates)",
}

SLOW = (Status.ROOT, Status.CONTINUUM, Status.SLOW_POINT)
ROOTS = (Status.ROOT, Status.CONTINUUM)


def _in(status: Any, members: tuple) -> Any:
    xp = jnp if isinstance(status, jax.Array) else np
    return xp.isin(status, xp.asarray([int(s) for s in members]))


@record
class FixedPoints:
    """Candidates of ``find_fixed_points``; a pytree (it can leave ``jax.jit``).

    Attributes:
      points: ``(K, S)`` where each candidate's search ended.
      speeds: ``(K,)`` ``q = ½‖F(h, x) − h‖²`` there in the search's precision (``inf``
        where it diverged).
      status: ``(K,)`` int, a ``Status`` per candidate.
      steps: ``(K,)`` steps each candidate took (first- plus second-order).
      inputs: ``(K, M)`` the constant input ``x*`` of each candidate.
      initial_states: ``(K, S)`` where each candidate started (after noise).
      certificate: ``(K,)`` float64 ``q`` at the point (NaN where not evaluated: not a
        slow point, or no certificate ran: ``certify=False`` or under ``jax.jit``).
      correction: ``(K,)`` float64 distance from the point to the root its Newton steps
        reached (certified roots), or the length of the first Newton step (other slow
        points: how far the linearisation puts the nearest root); NaN where not evaluated.
      sigma_min: ``(K,)`` float64 smallest singular value of ``J − I`` at the point (NaN
        where not evaluated); near zero on and near a continuum of fixed points.
      tol: the threshold on ``q`` of the search.
      stats_items: run statistics as ``(name, value)`` pairs (``stats`` as a dict).
    """

    points: Array
    speeds: Array
    status: Array
    steps: Array
    inputs: Array
    initial_states: Array
    certificate: Any = None
    correction: Any = None
    sigma_min: Any = None
    tol: float = static(float("nan"))
    stats_items: tuple = static(())

    def __len__(self) -> int:
        return int(self.points.shape[0])

    @property
    def stats(self) -> dict:
        return dict(self.stats_items)

    @property
    def slow(self) -> Array:
        """``(K,)`` bool: a slow point, ``q < tol`` (``ROOT``, ``CONTINUUM``, ``SLOW_POINT``)."""
        return _in(self.status, SLOW)

    @property
    def root(self) -> Array:
        """``(K,)`` bool: a certified root (``ROOT`` or ``CONTINUUM``)."""
        return _in(self.status, ROOTS)

    @property
    def certified(self) -> bool:
        """Whether the float64 certificate ran on every slow point (else none is a root)."""
        if self.certificate is None:
            return False
        cert = np.asarray(self.certificate, np.float64)
        return bool(np.all(np.isfinite(cert[np.asarray(self.slow, dtype=bool)])))

    def counts(self) -> dict[str, int]:
        """Number of candidates per ``Status`` name (statuses that occur)."""
        status = np.asarray(self.status)
        return {s.name: int(np.sum(status == s)) for s in Status if np.any(status == s)}

    def describe(self) -> str:
        """One line: how many slow points of how many starts, and what the rest are, e.g.
        ``"995 slow points (q < 6.4e-07) of 1,024 starts: 64 certified roots (ROOT 64);
        23 outside the reachable box, 6 stalled"``."""
        c = self.counts()
        n_slow = sum(c.get(s.name, 0) for s in SLOW)
        n_root = sum(c.get(s.name, 0) for s in ROOTS)
        roots = ", ".join(f"{s.name} {c[s.name]}" for s in ROOTS if s.name in c)
        line = f"{n_slow:,} slow points (q < {self.tol:.2g}) of {len(self):,} starts: "
        line += f"{n_root:,} certified roots" + (f" ({roots})" if roots else "")
        if n_slow and not self.certified:
            line += " (no float64 certificate ran: no root is claimed)"
        rest = [f"{c[s.name]:,} {_SHORT[s]}" for s in Status if s not in SLOW and s.name in c]
        return line + ("; " + ", ".join(rest) if rest else "")

    def to_html(self) -> str:
        """An HTML fragment: ``describe()``, then a table with one row per ``Status`` that
        occurs: its count, the range of ``q`` over its candidates and what it means. Plain
        text and a table only (no figure), so it is cheap for any ``K``."""
        esc = html.escape
        status = np.asarray(self.status)
        speeds = np.asarray(self.speeds, np.float64)
        rows = []
        for name, n in self.counts().items():
            s = Status[name]
            q = speeds[status == s]
            q = q[np.isfinite(q)]
            span = f"{q.min():.2g} – {q.max():.2g}" if q.size else "not finite"
            rows.append(
                f'<tr class="{"slow" if s in SLOW else "other"}"><th>{esc(name)}</th>'
                f'<td style="text-align:right">{n:,}</td><td>{esc(span)}</td>'
                f"<td>{esc(_SHORT.get(s) or _KIND[s])}</td></tr>"
            )
        head = "<tr><th>status</th><th>count</th><th>q: min – max</th><th>what</th></tr>"
        size = self.points.shape[1] if np.ndim(self.points) == 2 else "?"
        note = (
            f"q = ½‖F(h, x*) − h‖² in the search's precision; tol {self.tol:.2g}; "
            f"{len(self):,} candidates in {size} dimensions"
        )
        return (
            f'<div class="fixed-points"><p>{esc(self.describe())}</p>\n'
            f'<table class="statuses">{head}\n' + "\n".join(rows) + "\n</table>\n"
            f'<p style="font-size:smaller">{esc(note)}</p></div>'
        )

    def _repr_html_(self) -> str:
        return self.to_html()

    def select(self, index: Any) -> FixedPoints:
        """Subset by a boolean mask ``(K,)`` or integer indices (eager, not under jit)."""
        index = np.asarray(index)

        # jax arrays gathered on the host: a device gather compiles a program per shape
        def pick(a):
            return jnp.asarray(np.asarray(a)[index]) if isinstance(a, jax.Array) else a[index]

        return jax.tree_util.tree_map(pick, self)

    def keep_slow(self) -> FixedPoints:
        """Only the slow points (``q < tol``): the studies' approximate fixed points."""
        return self.select(np.asarray(self.slow, dtype=bool))

    def keep_roots(self) -> FixedPoints:
        """Only the certified roots (``ROOT`` or ``CONTINUUM``)."""
        return self.select(np.asarray(self.root, dtype=bool))

    # ---- deprecated names (0.1), removed in 0.3
    @property
    def converged(self) -> Array:
        _deprecated("FixedPoints.converged", "FixedPoints.root")
        return self.root

    @property
    def num_converged(self) -> int:
        _deprecated("FixedPoints.num_converged", "int(FixedPoints.root.sum())")
        return int(np.count_nonzero(np.asarray(self.root)))

    def keep_converged(self) -> FixedPoints:
        _deprecated("FixedPoints.keep_converged()", "keep_roots() or keep_slow()")
        return self.keep_roots()

    def merge_duplicates(self, distance: float = 1e-3) -> FixedPoints:
        """Keep one representative per group of points closer than ``distance``.

        Rule: points are grouped by their input ``x*`` (equal rows); within a group,
        candidates are visited from the lowest speed upwards and each one not yet
        covered keeps every point within Euclidean distance ``distance`` of it. So each kept
        point is the best (lowest-q) of its cluster, and kept points are pairwise at
        least ``distance`` apart. A KD-tree makes this ``O(K log K)`` for well-separated sets.
        """
        _checks.check_positive("distance", distance)
        speeds = np.nan_to_num(np.asarray(self.speeds, dtype=np.float64), nan=np.inf)
        leader = cluster(np.asarray(self.points), np.asarray(self.inputs), distance, speeds)
        return self.select(np.unique(leader))

    def drop_outliers(self, factor: float = 10.0) -> FixedPoints:
        """Drop isolated stray points, never a certified isolated root.

        Rule, per input ``x*``: duplicates (closer than 1e-6) count once; a point is an
        outlier if the distance to its nearest distinct neighbour exceeds ``factor``
        times the median nearest-neighbour distance of the group (FixedPointFinder's
        rule). Points with ``Status.ROOT`` (e.g. the origin inside a ring attractor) are
        kept whatever their distance. Groups of fewer than 3 distinct points are kept
        whole.
        """
        _checks.check_positive("factor", factor)
        points = np.asarray(self.points, dtype=np.float64)
        inputs = np.asarray(self.inputs)
        leader = cluster(points, inputs, 1e-6)
        keep = np.ones(len(self), dtype=bool)
        for rows in input_groups(inputs):
            reps = np.unique(leader[rows])
            if reps.size < 3:
                continue
            nn = nearest_neighbour_distances(points[reps])
            outlier = dict(zip(reps.tolist(), nn > factor * np.median(nn), strict=True))
            keep[rows] = [not outlier[int(leader[i])] for i in rows]
        keep |= np.asarray(self.status) == Status.ROOT
        return self.select(keep)


_SHORT = {
    Status.STALLED: "stalled above tol",
    Status.MAX_STEPS: "capped",
    Status.DIVERGED: "diverged",
    Status.OUTSIDE: "outside the reachable box",
    Status.ARTEFACT: "float32 artefacts",
}


#: Few words per slow status for the table of ``to_html`` (the others use ``_SHORT``).
_KIND = {
    Status.ROOT: "certified root, isolated",
    Status.CONTINUUM: "certified root on a continuum",
    Status.SLOW_POINT: "slow point, no root certified",
}


def _deprecated(old: str, new: str) -> None:
    warnings.warn(
        f"{old} is deprecated and will be removed in rnndyn 0.3; use {new}",
        DeprecationWarning,
        stacklevel=3,
    )


def input_groups(inputs: np.ndarray) -> list[np.ndarray]:
    """Row indices of each distinct input row, ``(K, M) -> [indices]``."""
    _, inverse = np.unique(np.asarray(inputs), axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    return [np.flatnonzero(inverse == g) for g in range(int(inverse.max(initial=-1)) + 1)]


def cluster(
    points: np.ndarray, inputs: np.ndarray, radius: float, order_key: np.ndarray | None = None
) -> np.ndarray:
    """Greedy clusters of radius ``radius`` per input; ``(K,)`` index of each row's leader.

    Rows are visited in ``order_key`` order (default: index order); an unassigned row
    becomes a leader and claims every unassigned row within ``radius`` of it.
    """
    points = np.asarray(points, dtype=np.float64)
    leader = np.full(points.shape[0], -1, dtype=np.int64)
    for rows in input_groups(inputs):
        tree = cKDTree(points[rows])
        order = rows if order_key is None else rows[np.argsort(order_key[rows], kind="stable")]
        for i in order:
            if leader[i] >= 0:
                continue
            near = rows[tree.query_ball_point(points[i], radius)]
            free = near[leader[near] < 0]
            leader[free] = i
            leader[i] = i
    return leader


def nearest_neighbour_distances(points: np.ndarray) -> np.ndarray:
    """Euclidean distance from each row of ``points (K, S)`` to its nearest other row."""
    points = np.asarray(points, dtype=np.float64)
    if points.shape[0] < 2:
        return np.full(points.shape[0], np.inf)
    dist, _ = cKDTree(points).query(points, k=2)
    return dist[:, 1]


def nearest_distances(points: np.ndarray, others: np.ndarray) -> np.ndarray:
    """Distance from each row of ``points (K, S)`` to the nearest row of ``others (R, S)``."""
    dist, _ = cKDTree(np.asarray(others, np.float64)).query(np.asarray(points, np.float64))
    return dist
