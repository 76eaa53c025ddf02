"""The layout shows the architecture, and the imports keep to it.

The import graph of ``ar_pipeline`` is read from the source with ``ast`` (every ``import`` and
``from ... import``, at module level, inside functions and under ``TYPE_CHECKING`` alike: an
import deferred into a function to dodge a circle is still a circle). Then:

- no module of the package imports ``ar_pipeline_tests``;
- no circle between modules;
- no circle between the folders of the package (``defs``, ``web``, ``actions``, ``rules``,
  ``sources``, ``store``, ``bench`` and the top-level modules), so each folder only leans on
  those below it.
"""

from __future__ import annotations

import ast
import importlib
from collections.abc import Iterator
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "ar_pipeline"
MIGRATION_VERSIONS = PACKAGE / "store" / "migrations" / "versions"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {
        _module_name(path): path
        for path in sorted(PACKAGE.rglob("*.py"))
        if MIGRATION_VERSIONS not in path.parents
    }


def _imported(path: Path, name: str, known: set[str]) -> Iterator[str]:
    """The names this module imports, each resolved to the deepest module that exists."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [f"{base}.{alias.name}" for alias in node.names] + [base]
        else:
            continue
        for target in targets:
            while target and target not in known and "." in target:
                target = target.rpartition(".")[0]
            yield target


def import_graph() -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules)
    graph = {}
    for name, path in modules.items():
        targets = set(_imported(path, name, known)) - {name}
        graph[name] = {t for t in targets if t in known or t.startswith("ar_pipeline_tests")}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one member (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in sorted(graph.get(node, ())):
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def _folder(module: str) -> str:
    """``ar_pipeline.rules.aging`` -> ``rules``; the top-level modules are each their own."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and (PACKAGE / parts[1]).is_dir() else module


def folder_graph(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    folders: dict[str, set[str]] = {}
    for module, targets in graph.items():
        if module == "ar_pipeline" or any(t.startswith("ar_pipeline_tests") for t in targets):
            continue
        edges = folders.setdefault(_folder(module), set())
        edges.update(_folder(t) for t in targets if t != "ar_pipeline")
        edges.discard(_folder(module))
    return folders


def test_the_graph_sees_every_kind_of_import():
    graph = import_graph()
    assert "ar_pipeline.rules.aging" in graph["ar_pipeline.defs.assets"]  # from pkg import mod
    assert "ar_pipeline.definitions" in graph["ar_pipeline.cli"]  # inside a function
    assert "ar_pipeline.store.schema" in graph["ar_pipeline.store.migrations.env"]
    assert len(graph) > 40


def test_every_module_imports():
    """What the graph reads is what Python finds: every module imports, with the names it asks
    for (the Alembic environment and revisions run inside Alembic, ``__main__`` runs a
    command)."""
    for name in sorted(_modules()):
        if name != "ar_pipeline.store.migrations.env" and not name.endswith(".__main__"):
            importlib.import_module(name)


def test_nothing_in_the_package_imports_the_tests():
    graph = import_graph()
    offenders = {m: sorted(t) for m, t in graph.items() for t in t if "ar_pipeline_tests" in t}
    assert offenders == {}


def test_no_import_circle_between_modules():
    assert _cycles(import_graph()) == []


def test_no_import_circle_between_folders():
    folders = folder_graph(import_graph())
    assert {"defs", "web", "actions", "rules", "sources", "store", "bench"} <= set(folders)
    assert _cycles(folders) == []
    assert folders["store"] == set()  # the bottom: the schema, engines and migrations


def test_a_circle_is_seen():
    graph = import_graph()
    graph["ar_pipeline.store.schema"] = {"ar_pipeline.rules.aging"}  # as if schema imported it
    (circle,) = _cycles(graph)
    assert {"ar_pipeline.rules.aging", "ar_pipeline.store.schema"} <= set(circle)
    assert ["rules", "store"] in _cycles(folder_graph(graph))
