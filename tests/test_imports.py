"""The import graph of ``src/tc3d`` has no cycle and follows the layer order of
docs/ARCHITECTURE.md.

Every import statement counts, also those inside functions: a lazy import hides a cycle from
the interpreter but not from a reader, and the next refactoring that hoists it breaks start-up.
``from package import name`` is an edge to ``package.name`` when that is a module, else to the
package. The implicit import of a parent package (``tc3d.models.tc3d`` runs
``tc3d/models/__init__.py`` first) is not an edge: it always runs first and cannot be removed.
Imports under ``if TYPE_CHECKING:`` (type hints only, never run) are not edges either.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
PACKAGE = "tc3d"
ARCHITECTURE = ROOT / "docs" / "ARCHITECTURE.md"


def module_name(path: Path, src: Path = SRC) -> str:
    parts = path.relative_to(src).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(node: ast.AST) -> bool:
    test = node.test if isinstance(node, ast.If) else None
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(node: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement, inside functions too, except the body of ``if TYPE_CHECKING:``."""
    if isinstance(node, ast.Import | ast.ImportFrom):
        yield node
        return
    children = node.orelse if _is_type_checking(node) else ast.iter_child_nodes(node)
    for child in children:
        yield from _imports(child)


def import_graph(src: Path = SRC, package: str = PACKAGE) -> dict[str, set[str]]:
    """``{module: modules of the package it imports}`` for every module under ``src/package``."""
    files = {module_name(p, src): p for p in sorted((src / package).rglob("*.py"))}
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        is_package = path.name == "__init__.py"
        edges: set[str] = set()
        for node in _imports(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                edges.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative: resolve against this module's package
                    anchor = name.split(".")
                    anchor = anchor[: len(anchor) - node.level + (1 if is_package else 0)]
                    base = ".".join(anchor + ([node.module] if node.module else []))
                for alias in node.names:
                    child = f"{base}.{alias.name}"
                    edges.add(child if child in files else base)
        graph[name] = {e for e in edges if e in files and e != name}
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
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
                cycles.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(cycles)


def test_the_graph_sees_imports_inside_functions(tmp_path):
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("from . import c\n")
    (pkg / "a.py").write_text("from pkg.sub import c\n")
    (pkg / "b.py").write_text("def f():\n    from .a import x\n")
    (pkg / "sub" / "c.py").write_text("def g():\n    import pkg.b\n")
    graph = import_graph(tmp_path, "pkg")
    assert graph == {
        "pkg": set(),
        "pkg.a": {"pkg.sub.c"},
        "pkg.b": {"pkg.a"},
        "pkg.sub": {"pkg.sub.c"},
        "pkg.sub.c": {"pkg.b"},
    }
    assert find_cycles(graph) == [["pkg.a", "pkg.b", "pkg.sub.c"]]


def test_no_import_cycle_in_tc3d():
    graph = import_graph()
    moved = ("tc3d.modelfile.checkpoint", "tc3d.modelfile.tc3dfile", "tc3d.video.decode",
             "tc3d.datasets.formats", "tc3d.training.train", "tc3d.infer.evaluate")  # fmt: skip
    assert set(moved) <= graph.keys()
    cycles = find_cycles(graph)
    assert not cycles, "import cycles: " + "; ".join(" <-> ".join(c) for c in cycles)


def read_layers(text: str) -> list[list[str]]:
    """Module prefixes per layer, lowest first, from the numbered list between
    ``<!-- layers -->`` and ``<!-- /layers -->``."""
    block = text.split("<!-- layers -->")[1].split("<!-- /layers -->")[0]
    rows = [line for line in block.splitlines() if re.match(r"\s*\d+\.", line)]
    assert [int(r.split(".")[0]) for r in rows] == list(range(1, len(rows) + 1)), rows
    return [re.findall(r"`([\w.]+)`", row) for row in rows]


def layer_of(module: str, layers: list[list[str]], package: str = PACKAGE) -> int | None:
    """1-based layer of ``module``: the layer of its longest matching prefix (``tc3d.api``
    before ``tc3d``). The bare package names only its ``__init__``, so a new module that no
    layer lists is reported rather than filed under the package by default."""
    best: tuple[int, int] | None = None  # (prefix length, layer)
    for number, prefixes in enumerate(layers, start=1):
        for p in prefixes:
            covers = module == p or (p != package and module.startswith(p + "."))
            if covers and (best is None or len(p) > best[0]):
                best = (len(p), number)
    return best[1] if best else None


def layer_violations(graph: dict[str, set[str]], layers: list[list[str]], package: str = PACKAGE):
    """``(unlisted modules, ["a (layer i) -> b (layer j)", ...] for every upward import)``."""
    level = {m: layer_of(m, layers, package) for m in graph}
    unlisted = sorted(m for m, n in level.items() if n is None)
    upward = [
        f"{a} (layer {level[a]}) -> {b} (layer {level[b]})"
        for a in sorted(graph)
        for b in sorted(graph[a])
        if None not in (level[a], level[b]) and level[b] > level[a]
    ]
    return unlisted, upward


def test_the_layer_check_sees_upward_and_unlisted_modules(tmp_path):
    pkg = tmp_path / "pkg"
    (pkg / "low").mkdir(parents=True)
    (pkg / "__init__.py").write_text("from pkg.top import run\n")
    (pkg / "low" / "__init__.py").write_text("")
    (pkg / "low" / "a.py").write_text("def f():\n    from pkg.top import run\n")
    (pkg / "low" / "b.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.top import run\n"
        "else:\n    import pkg.low.a\n"
    )
    (pkg / "top.py").write_text("from pkg.low import a\n")
    (pkg / "stray.py").write_text("")
    text = "x\n<!-- layers -->\n1. low: `pkg.low`\n2. top: `pkg.top`, `pkg`\n<!-- /layers -->"
    layers = read_layers(text)
    assert layers == [["pkg.low"], ["pkg.top", "pkg"]]
    graph = import_graph(tmp_path, "pkg")
    assert graph["pkg.low.b"] == {"pkg.low.a"}  # the TYPE_CHECKING import is no edge
    unlisted, upward = layer_violations(graph, layers, "pkg")
    assert unlisted == ["pkg.stray"]  # the bare package covers only its __init__
    assert upward == ["pkg.low.a (layer 1) -> pkg.top (layer 2)"]


def test_every_import_goes_to_the_same_or_a_lower_layer():
    layers = read_layers(ARCHITECTURE.read_text())
    unlisted, upward = layer_violations(import_graph(), layers)
    for line in unlisted + upward:
        print(line)
    assert not unlisted, "modules in no layer of docs/ARCHITECTURE.md: " + ", ".join(unlisted)
    assert not upward, f"{len(upward)} imports from a lower layer to a higher one:\n" + "\n".join(
        upward
    )
