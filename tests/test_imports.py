"""The import graph of the ``rnndyn`` package: no cycles, and no import from a higher layer.

Every module is parsed with ``ast`` (nothing is imported), and every ``import`` of an
``rnndyn`` module is an edge, wherever it stands: at module level, inside a function, or
under ``if TYPE_CHECKING``. A module of a subpackage (``rnndyn/fixed_points/``,
``rnndyn/data/``, ``rnndyn/analysis/`` once it is one) belongs to its package's unit: the
modules of one package may import each other, as long as they form no cycle.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "rnndyn"

#: Units from lowest to highest; a unit may import only from its own package or from the
#: units of lower layers (never from its own layer's other units, never upwards). A unit
#: is a top-level module (``manifold``) or a subpackage with all its modules (``data``);
#: ``rnndyn`` is the package's ``__init__``, which re-exports the public API.
LAYERS: list[tuple[str, ...]] = [
    # checks, records, atomic writes, BLAS threads, views, the compilation cache, lazy
    # exports, full-batch Adam fits: no rnndyn imports
    ("_checks", "_records", "_io", "_blas", "_views", "compilation_cache", "_lazy", "_fit"),
    ("config",),  # settings (TrainConfig, AnalysisConfig), checked with _checks
    ("cells",),
    ("convert",),  # torch and equinox models as cells
    ("linearize",),  # Jacobians, eigenmodes, spectra
    ("fixed_points",),  # its deflation follows eigenvectors: uses linearize
    ("manifold",),  # geometry of point sets
    ("words",),  # word statistics: use manifold's geometry, never the reverse
    ("modifiers", "extended_bow"),  # contextual processing: gain curves, the extended BoW
    ("data",),
    ("_bptt",),  # the written-out training scan of models
    ("models",),
    ("checkpoint",),  # checkpoint IO and the model description, apart from any loop
    ("train",),
    ("analysis",),
    ("plots",),
    ("report",),
    ("cli",),
    ("rnndyn",),
]

#: Upward imports tolerated for now, as ``(importer, imported)`` module names, each with
#: the reason. None at present; add one only with a comment saying when it goes.
ALLOWED_UPWARD: set[tuple[str, str]] = set()


def _modules(root: Path) -> dict[str, Path]:
    """``{dotted module name: path}`` of every module of the package at ``root``."""
    out = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _imports(source: str, module: str, is_package: bool, known: set[str]) -> set[str]:
    """The ``known`` modules that ``source`` (the text of ``module``) imports, anywhere."""
    top = module.split(".")[0]
    here = module if is_package else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from . import x, from ..y import z
                base = here.split(".")[: len(here.split(".")) - node.level + 1]
                origin = ".".join(base + ([node.module] if node.module else []))
            else:
                origin = node.module or ""
            # ``from pkg import name``: the submodule pkg.name if there is one, else pkg.
            targets = [
                f"{origin}.{alias.name}" if f"{origin}.{alias.name}" in known else origin
                for alias in node.names
            ]
        else:
            continue
        for target in targets:
            if target.split(".")[0] != top:
                continue
            # ``import rnndyn.a.b`` of a non-module name: the nearest enclosing module.
            while target not in known and "." in target:
                target = target.rpartition(".")[0]
            if target != module:
                found.add(target)
    return found


def _graph(root: Path) -> dict[str, set[str]]:
    mods = _modules(root)
    return {
        name: _imports(path.read_text(), name, path.name == "__init__.py", set(mods))
        for name, path in mods.items()
    }


def _unit(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected component with more than one module (Tarjan)."""
    index, low, stack, on_stack, out = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def _upward(graph: dict[str, set[str]], layers: list[tuple[str, ...]]) -> list[str]:
    """Imports of a unit from its own layer's other units or from a higher layer."""
    level = {unit: i for i, units in enumerate(layers) for unit in units}
    bad = []
    for importer, targets in sorted(graph.items()):
        for target in sorted(targets):
            a, b = _unit(importer), _unit(target)
            if a != b and level[b] >= level[a] and (importer, target) not in ALLOWED_UPWARD:
                bad.append(f"{importer} (layer {level[a]}) imports {target} (layer {level[b]})")
    return bad


# ------------------------------------------------------------------- the package


def test_every_module_has_a_layer_and_every_layer_a_module():
    units = {_unit(m) for m in _modules(PACKAGE)}
    listed = [unit for units_ in LAYERS for unit in units_]
    assert len(listed) == len(set(listed)), "a unit is listed twice in LAYERS"
    assert units - set(listed) == set(), "add these rnndyn modules to LAYERS in this test"
    assert set(listed) - units == set(), "LAYERS lists units that rnndyn no longer has"


def test_the_walker_sees_known_imports():
    # Guards the test itself: if the parser saw nothing, both checks below would pass.
    graph = _graph(PACKAGE)
    assert "rnndyn.manifold" in graph["rnndyn.words"]
    assert "rnndyn._checks" in graph["rnndyn.words"]
    assert "rnndyn.fixed_points.result" in graph["rnndyn.fixed_points.search"]
    assert "rnndyn.data.dataset" in graph["rnndyn.train"]
    assert "rnndyn.words" not in graph["rnndyn.manifold"]


def test_no_import_cycle():
    assert _cycles(_graph(PACKAGE)) == []


def test_no_upward_import():
    assert _upward(_graph(PACKAGE), LAYERS) == []


def test_allowed_exceptions_are_still_needed():
    graph = _graph(PACKAGE)
    stale = [pair for pair in ALLOWED_UPWARD if pair[1] not in graph.get(pair[0], set())]
    assert stale == [], "remove these from ALLOWED_UPWARD: the imports are gone"


# ------------------------------------------------- the checks, on a made-up package


KNOWN = {"pkg", "pkg.low", "pkg.mid", "pkg.high", "pkg.sub", "pkg.sub.a", "pkg.sub.b"}


@pytest.mark.parametrize(
    ("source", "module", "is_package", "want"),
    [
        ("import pkg.low\nimport numpy", "pkg.mid", False, {"pkg.low"}),
        ("def f():\n    from pkg import high\n", "pkg.mid", False, {"pkg.high"}),
        ("if TYPE_CHECKING:\n    from pkg.low import Thing\n", "pkg.mid", False, {"pkg.low"}),
        ("from pkg import nothing_module", "pkg.mid", False, {"pkg"}),
        ("from . import b\nfrom .. import low", "pkg.sub.a", False, {"pkg.sub.b", "pkg.low"}),
        ("from .a import f", "pkg.sub", True, {"pkg.sub.a"}),
        ("import pkg.low.function_name", "pkg.mid", False, {"pkg.low"}),
        ("from pkg.mid import x", "pkg.mid", False, set()),
    ],
)
def test_imports_are_found_wherever_they_stand(source, module, is_package, want):
    assert _imports(source, module, is_package, KNOWN) == want


def test_cycles_and_upward_imports_are_caught():
    graph = {
        "pkg.low": set(),
        "pkg.mid": {"pkg.low", "pkg.high"},  # upward
        "pkg.high": {"pkg.mid"},  # together with the line above, a cycle
        "pkg.sub.a": {"pkg.sub.b", "pkg.low"},
        "pkg.sub.b": {"pkg.sub.a"},  # a cycle inside one package
    }
    assert _cycles(graph) == [["pkg.high", "pkg.mid"], ["pkg.sub.a", "pkg.sub.b"]]
    layers = [("low",), ("mid", "sub"), ("high",)]
    assert _upward(graph, layers) == ["pkg.mid (layer 1) imports pkg.high (layer 2)"]
    # a sibling unit of the same layer is not "lower"
    assert _upward({"pkg.mid": {"pkg.sub.a"}}, layers) == [
        "pkg.mid (layer 1) imports pkg.sub.a (layer 1)"
    ]
    assert _cycles({"pkg.low": set(), "pkg.mid": {"pkg.low"}}) == []
