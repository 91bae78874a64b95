"""The package's shape, checked from its source: no import cycles, imports only point down the
layers, and no module grows past a size one can hold in one's head.

The import graph is read with ``ast``, not by importing: every ``import`` and ``from ... import``
counts, also inside functions and under ``if TYPE_CHECKING:`` (a lazy import is still a
dependency). ``from agent_il.x import y`` is an edge to the module ``agent_il.x.y`` when there is
one, else to ``agent_il.x``; importing a module does not add edges to its parent packages.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "agent_il"

# Bottom to top: a module may import its own layer and the ones below it.
LAYERS: list[set[str]] = [
    {"errors", "results", "validation", "config", "state"},
    {"encoding", "memory", "storage"},
    {"strategies"},
    {"engine", "ood", "inbox"},
    {"editing", "upkeep", "data", "erasure", "opening", "migration", "concurrency"},
    {"consolidation"},
    {"learner"},
    {"tools", "bench"},
    {"serving"},
    {"cli"},
]
EXEMPT = {PACKAGE}  # agent_il/__init__.py: public names, imported lazily
MAX_MODULE_LINES = 400
MAX_LEARNER_CLASS_LINES = 350


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    line: int

    def __str__(self) -> str:
        return f"{self.source} -> {self.target} (line {self.line})"


def module_files(root: Path, package: str) -> dict[str, Path]:
    """Module name -> source file for every module of ``package`` under ``root``."""
    out = {}
    for path in sorted((root / package).rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _resolve_relative(module: str, is_package: bool, level: int, name: str | None) -> str:
    base = module.split(".") if is_package else module.split(".")[:-1]
    if level > 1:
        base = base[: len(base) - (level - 1)]
    return ".".join([*base, *([name] if name else [])])


def _known(name: str, modules: Iterable[str]) -> str | None:
    """The longest prefix of the dotted ``name`` that is one of ``modules``."""
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        if ".".join(parts[:end]) in modules:
            return ".".join(parts[:end])
    return None


def import_edges(modules: dict[str, Path], package: str) -> list[Edge]:
    """Every import of one module of ``package`` by another, read from the source."""
    edges = []
    for module, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        is_package = path.name == "__init__.py"
        for node in ast.walk(tree):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = _resolve_relative(module, is_package, node.level, node.module)
                if base != package and not base.startswith(f"{package}."):
                    continue
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
            for target in targets:
                found = _known(target, modules) if target.split(".")[0] == package else None
                if found is not None:
                    edges.append(Edge(module, found, node.lineno))
    return list(dict.fromkeys(edges))  # one per import statement, however many names it takes


def find_cycles(edges: Iterable[Edge]) -> list[list[Edge]]:
    """One concrete cycle per strongly connected component that has one (Tarjan, iteratively)."""
    graph: dict[str, list[Edge]] = {}
    for e in edges:
        graph.setdefault(e.source, []).append(e)
        graph.setdefault(e.target, [])
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, 0)]
        while work:
            node, i = work.pop()
            if i == 0:
                index[node] = low[node] = len(index)
                stack.append(node)
                on_stack.add(node)
            out = graph[node]
            if i < len(out):
                work.append((node, i + 1))
                nxt = out[i].target
                if nxt not in index:
                    work.append((nxt, 0))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            if low[node] == index[node]:
                component = set()
                while True:
                    top = stack.pop()
                    on_stack.discard(top)
                    component.add(top)
                    if top == node:
                        break
                components.append(component)
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
    cycles = []
    for component in components:
        first = min(component)
        if len(component) > 1 or any(e.target == first for e in graph[first]):
            cycles.append(_cycle_through(first, component, graph))
    return cycles


def _cycle_through(start: str, component: set[str], graph: dict[str, list[Edge]]) -> list[Edge]:
    """A shortest path of edges from ``start`` back to itself inside ``component`` (breadth-first)."""
    came: dict[str, Edge] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for e in graph[node]:
                if e.target not in component:
                    continue
                if e.target == start:
                    path = [e]
                    while path[0].source != start:
                        path.insert(0, came[path[0].source])
                    return path
                if e.target not in came:
                    came[e.target] = e
                    following.append(e.target)
        frontier = following
    raise AssertionError(f"no cycle through {start}")  # unreachable for a strongly connected component


def describe(cycle: list[Edge]) -> str:
    return " -> ".join([cycle[0].source] + [f"{e.target} (line {e.line} of {e.source})" for e in cycle])


def layer_of(module: str) -> int | None:
    top = module.split(".")[1] if "." in module else module
    for i, names in enumerate(LAYERS):
        if top in names:
            return i
    return None


# ------------------------------------------------------------------------------- the package
@pytest.fixture(scope="module")
def modules() -> dict[str, Path]:
    return module_files(ROOT, PACKAGE)


@pytest.fixture(scope="module")
def edges(modules: dict[str, Path]) -> list[Edge]:
    return import_edges(modules, PACKAGE)


def test_no_import_cycles(edges: list[Edge]) -> None:
    cycles = find_cycles(edges)
    assert not cycles, "import cycles:\n" + "\n".join(describe(c) for c in cycles)


def test_every_module_has_a_layer(modules: dict[str, Path]) -> None:
    lost = sorted(m for m in modules if m not in EXEMPT and layer_of(m) is None)
    assert not lost, f"modules in no layer (add them to LAYERS in {Path(__file__).name}): {lost}"


def test_imports_point_down_the_layers(edges: list[Edge]) -> None:
    def upward(e: Edge) -> bool:
        if e.source in EXEMPT or e.target in EXEMPT:
            return False
        source, target = layer_of(e.source), layer_of(e.target)
        return source is not None and target is not None and target > source

    bad = [f"{e} imports layer {layer_of(e.target)} from layer {layer_of(e.source)}" for e in edges if upward(e)]
    assert not bad, "imports of a higher layer:\n" + "\n".join(bad)


def test_modules_stay_small(modules: dict[str, Path]) -> None:
    sizes = {m: len(p.read_text(encoding="utf-8").splitlines()) for m, p in modules.items()}
    big = sorted(f"{m}: {n} lines" for m, n in sizes.items() if n > MAX_MODULE_LINES)
    assert not big, f"modules over {MAX_MODULE_LINES} lines:\n" + "\n".join(big)


def test_intent_learner_class_stays_small() -> None:
    path = ROOT / PACKAGE / "learner.py"
    tree = ast.parse(path.read_text(encoding="utf-8"))
    (cls,) = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "IntentLearner"]
    assert cls.end_lineno is not None
    lines = cls.end_lineno - cls.lineno + 1
    assert lines <= MAX_LEARNER_CLASS_LINES, f"IntentLearner is {lines} lines (at most {MAX_LEARNER_CLASS_LINES})"


# ------------------------------------------------------------------- the checker, on a toy package
def write_package(root: Path, files: dict[str, str]) -> dict[str, Path]:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return module_files(root, "pkg")


TOY = {
    "pkg/__init__.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.top import Thing\n",
    "pkg/base.py": "import os\nimport pkg.sub.leaf\n",
    "pkg/sub/__init__.py": "from . import leaf\nfrom .leaf import NAME\n",
    "pkg/sub/leaf.py": "def late():\n    from .. import base\n    from ..base import helper\n",
    "pkg/top.py": "from pkg import base, errors_name\nfrom pkg.sub import leaf, NAME\nimport json\n",
}


def test_edges_of_a_toy_package(tmp_path: Path) -> None:
    modules = write_package(tmp_path, TOY)
    found = {(e.source, e.target) for e in import_edges(modules, "pkg")}
    assert found == {
        ("pkg", "pkg.top"),  # under TYPE_CHECKING
        ("pkg.base", "pkg.sub.leaf"),  # no edge to pkg or pkg.sub: parents are not implicit
        ("pkg.sub", "pkg.sub.leaf"),  # relative, a module then a name in it
        ("pkg.sub.leaf", "pkg.base"),  # relative two levels up, inside a function
        ("pkg.top", "pkg.base"),
        ("pkg.top", "pkg"),  # a name of the package itself
        ("pkg.top", "pkg.sub.leaf"),
        ("pkg.top", "pkg.sub"),
    }


def test_cycles_of_a_toy_package(tmp_path: Path) -> None:
    cycles = find_cycles(import_edges(write_package(tmp_path, TOY), "pkg"))
    # pkg.base <-> pkg.sub.leaf (a lazy import), and the package re-exporting pkg.top, which imports it
    assert sorted(sorted(e.source for e in c) for c in cycles) == [["pkg", "pkg.top"], ["pkg.base", "pkg.sub.leaf"]]
    assert describe(cycles[0]).startswith(f"{cycles[0][0].source} -> ")
    assert find_cycles([Edge("a", "b", 1), Edge("b", "c", 1)]) == []
    assert find_cycles([Edge("a", "a", 3)]) == [[Edge("a", "a", 3)]]
