"""Layering of the core: harness/ (apart from the CLI, the application layer) imports no plugin
package, and no two harness modules import each other at module level. Read from the source with
ast, so imports inside functions count for the first rule, and `if TYPE_CHECKING:` blocks (never
executed) do not count for the second."""

from __future__ import annotations

import ast
from pathlib import Path

HARNESS = Path(__file__).resolve().parents[2] / "harness"
PLUGIN_PACKAGES = ("ganrm_bench.methods", "ganrm_bench.metrics", "ganrm_bench.mini")
APPLICATION_LAYER = {"cli"}


def modules() -> dict[str, ast.Module]:
    return {p.stem: ast.parse(p.read_text(), filename=str(p)) for p in sorted(HARNESS.glob("*.py"))}


def imported_names(node: ast.AST) -> list[str]:
    """Module names an import statement (or importlib.import_module("...") call) brings in."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    if isinstance(node, ast.ImportFrom) and node.module:
        if node.level:  # relative: from .x import y
            return [f"ganrm_bench.harness.{node.module}"]
        return [node.module] + [f"{node.module}.{a.name}" for a in node.names]
    if isinstance(node, ast.ImportFrom) and node.level:  # from . import x
        return [f"ganrm_bench.harness.{a.name}" for a in node.names]
    if (isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", None)) == "import_module"
            and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
        return [node.args[0].value]
    return []


def is_type_checking(node: ast.If) -> bool:
    t = node.test
    return (isinstance(t, ast.Name) and t.id == "TYPE_CHECKING") or (isinstance(t, ast.Attribute) and t.attr == "TYPE_CHECKING")


def module_level_imports(tree: ast.Module) -> list[str]:
    """Imports executed when the module is imported: top-level statements, and the bodies of
    top-level if/try blocks, but not functions, classes' methods or TYPE_CHECKING blocks."""
    found: list[str] = []

    def visit(stmts: list[ast.stmt]) -> None:
        for s in stmts:
            if isinstance(s, (ast.Import, ast.ImportFrom)):
                found.extend(imported_names(s))
            elif isinstance(s, ast.If):
                if not is_type_checking(s):
                    visit(s.body)
                visit(s.orelse)
            elif isinstance(s, ast.Try):
                visit(s.body)
                for h in s.handlers:
                    visit(h.body)
                visit(s.orelse)
                visit(s.finalbody)
            elif isinstance(s, ast.ClassDef):
                visit(s.body)  # a class body runs at import time (its methods do not)

    visit(tree.body)
    return found


def harness_module(name: str) -> str | None:
    prefix = "ganrm_bench.harness."
    if name.startswith(prefix):
        return name[len(prefix):].split(".")[0]
    return None


def test_core_imports_no_plugin_package():
    offenders = []
    for mod, tree in modules().items():
        if mod in APPLICATION_LAYER:
            continue
        for node in ast.walk(tree):
            for name in imported_names(node):
                if name.startswith(PLUGIN_PACKAGES):
                    offenders.append(f"harness/{mod}.py:{node.lineno} imports {name}")
    assert not offenders, "the core must not import plugin packages:\n" + "\n".join(offenders)


def test_no_import_cycle_at_module_level():
    mods = modules()
    graph = {m: {h for n in module_level_imports(t) if (h := harness_module(n)) in mods and h != m} for m, t in mods.items()}
    cycles = []

    def dfs(node: str, path: list[str]) -> None:
        for nxt in graph[node]:
            if nxt in path:
                cycles.append(" -> ".join(path[path.index(nxt):] + [nxt]))
            elif len(path) < len(graph):
                dfs(nxt, path + [nxt])

    for m in graph:
        dfs(m, [m])
    assert not cycles, "module-level import cycles in harness/:\n" + "\n".join(sorted(set(cycles)))


def test_the_checks_see_what_they_look_for():
    """The scanner itself: a function-level plugin import and a module-level cycle are found."""
    tree = ast.parse("import os\nif TYPE_CHECKING:\n    from ganrm_bench.harness.engine.builder import Node\n"
                     "from ganrm_bench.harness.spec.schema import Spec\n"
                     "def f():\n    from ganrm_bench.metrics.base import SetMetric\n    importlib.import_module('ganrm_bench.mini')\n")
    assert [harness_module(n) for n in module_level_imports(tree) if harness_module(n)] == ["spec", "spec"]
    every = [n for node in ast.walk(tree) for n in imported_names(node)]
    assert "ganrm_bench.metrics.base" in every and "ganrm_bench.mini" in every
