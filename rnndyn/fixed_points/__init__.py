"""Batched, certified search for slow points and fixed points ``F(h, x*) = h``.

Modules, one idea each:

- ``find``: the entry point ``find_fixed_points``;
- ``search``: the compiled per-candidate hybrid search (Adam, then Levenberg-Marquardt);
- ``run``: compiled-search cache, chunks and sharding over local devices;
- ``certificate``: float64 certificates (root, continuum, slow point, artefact);
- ``deflation``: further roots by deflation with re-seeding;
- ``result``: ``FixedPoints`` and ``Status``;
- ``sampling``: initial states from visited states.
"""

from rnndyn.fixed_points.find import find_fixed_points, speed
from rnndyn.fixed_points.result import (
    FixedPoints,
    Status,
    nearest_distances,
    nearest_neighbour_distances,
)
from rnndyn.fixed_points.sampling import sample_states

__all__ = [
    "FixedPoints",
    "Status",
    "find_fixed_points",
    "nearest_distances",
    "nearest_neighbour_distances",
    "sample_states",
    "speed",
]
