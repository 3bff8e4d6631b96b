"""The import graph of the whole package, read from the source with ast (function-local imports and
`importlib.import_module("...")` count; `if TYPE_CHECKING:` blocks, never executed, do not):

- harness/ is in rooms that import only downwards (`ROOMS`, lowest first); it imports no plugin
  package. The plugin packages import the core and only those below them (`PACKAGES`).
- No import cycle between modules, counting function-local imports.
- A function-local import is for a heavy or optional third-party module only, each named in
  `LAZY` with its reason; everything else is imported at the top of its module.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

from tests.helpers import REPO

#: import package -> folder (pyproject's package-dir)
SOURCES = {"ganrm_bench.harness": "harness", "ganrm_bench.metrics": "metrics", "ganrm_bench.methods": "methods",
           "ganrm_bench.mini": "mini", "ganrm_bench": "ganrm_bench"}
#: harness rooms, lowest first: a module may import its own room and the rooms before it
ROOMS = ("errors", "stats", "store", "plugins", "runtime", "spec", "engine", "diagnostics", "report", "app")
#: packages, lowest first: the core, then plugin packages, then the public API (ganrm_bench/)
PACKAGES = ("ganrm_bench.harness", "ganrm_bench.metrics", "ganrm_bench.methods", "ganrm_bench.mini", "ganrm_bench")

#: third-party modules imported inside functions, and why (heavy to import, or an optional extra)
LAZY = {
    "torch": "about 2 s to import; the CLI, plans, reports and the API's light paths never need it",
    "torchvision": "imports torch",
    "torchmetrics": "imports torch",
    "diffusers": "several seconds to import; only generators and fine-tunes need it",
    "transformers": "several seconds to import; only the models that use it",
    "peft": "imports transformers; only LoRA fine-tunes",
    "accelerate": "imports torch; only multi-process fine-tunes",
    "safetensors": "its torch helpers import torch",
    "open_clip": "imports torch and timm; only CLIP-based backbones and metrics",
    "timm": "imports torch",
    "huggingface_hub": "a network client; only asset lookups and downloads",
    "datasets": "heavy (pyarrow, fsspec); only hub data sets",
    "cleanfid": "imports torch; only clean-fid FID",
    "lpips": "imports torch; optional metric",
    "cdfvd": "optional extra `video`",
    "nudenet": "optional extra `safety`",
    "onnxruntime": "optional extra `safety`",
    "ImageReward": "optional metric package (installed with --no-deps)",
    "hpsv2": "optional metric package (installed with --no-deps)",
    "clip": "optional (openai-clip, for ImageReward)",
    "vbench": "lives in its own environment",
    "scipy": "about 0.5 s to import; only statistics and FID",
    "sklearn": "about 1 s to import; only the mini world's data and report cards",
    "matplotlib": "about 1 s to import; only figures",
    "PIL": "only image decoding and figures",
    "starlette": "optional extra `study`",
    "uvicorn": "optional extra `study`",
    "jinja2": "only the HTML pages",
    "multipart": "optional extra `study`",
    "httpx": "optional extra `study`",
    "tqdm": "only notebook progress without ipywidgets",
    "IPython": "only inside notebooks",
    "rich": "only the parts of it a command draws",
    "pyarrow": "heavy; only parquet files",
    "fairscale": "optional (ImageReward's BLIP)",
    "einops": "optional (video models)",
}


def module_name(path: Path) -> str:
    rel = path.relative_to(REPO)
    for pkg, folder in sorted(SOURCES.items(), key=lambda kv: -len(kv[1])):
        if rel.parts[0] == folder:
            parts = list(rel.with_suffix("").parts[1:])
            if parts and parts[-1] == "__init__":
                parts = parts[:-1]
            return ".".join([pkg, *parts])
    raise ValueError(path)


def modules() -> dict[str, ast.Module]:
    out = {}
    for folder in SOURCES.values():
        for p in sorted((REPO / folder).rglob("*.py")):
            out[module_name(p)] = ast.parse(p.read_text(), filename=str(p))
    return out


def is_type_checking(node: ast.If) -> bool:
    t = node.test
    return (isinstance(t, ast.Name) and t.id == "TYPE_CHECKING") or (isinstance(t, ast.Attribute) and t.attr == "TYPE_CHECKING")


def imports(tree: ast.Module, known: set[str], me: str) -> list[tuple[str, int, bool]]:
    """(imported module, line, inside a function) for every import the module can execute; names
    imported from a package resolve to its submodule when there is one."""
    found: list[tuple[str, int, bool]] = []

    def visit(node: ast.AST, local: bool) -> None:
        if isinstance(node, ast.If) and is_type_checking(node):
            for s in node.orelse:
                visit(s, local)
            return
        local = local or isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
        found.extend((name, node.lineno, local) for name in imported_by(node, known, me))
        for child in ast.iter_child_nodes(node):
            visit(child, local)

    for s in tree.body:
        visit(s, False)
    return found


def imported_by(node: ast.AST, known: set[str], me: str) -> list[str]:
    """The modules one statement or call imports (`import`, `from ... import`, `import_module("...")`)."""
    def resolve(name: str) -> str:
        while name and name not in known and "." in name:
            name = name.rsplit(".", 1)[0]
        return name

    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    if isinstance(node, ast.ImportFrom):
        base = node.module or ""
        if node.level:
            base = f"{me.rsplit('.', node.level)[0]}.{base}".rstrip(".")
        return [resolve(f"{base}.{a.name}") if f"{base}.{a.name}" in known else base for a in node.names]
    if (isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", None)) == "import_module"
            and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
        return [resolve(node.args[0].value)]
    return []


def package_of(mod: str) -> str:
    return next(p for p in PACKAGES if mod == p or mod.startswith(p + "."))


def room_of(mod: str) -> str:
    return mod.split(".")[2]


def graph() -> tuple[dict[str, ast.Module], dict[str, list[tuple[str, int, bool]]]]:
    mods = modules()
    known = set(mods)
    return mods, {m: imports(t, known, m) for m, t in mods.items()}


def test_harness_rooms_import_only_downwards():
    _, edges = graph()
    offenders = []
    for mod, found in edges.items():
        if not mod.startswith("ganrm_bench.harness."):
            continue
        mine = ROOMS.index(room_of(mod))
        for target, line, _ in found:
            if target.startswith("ganrm_bench.harness.") and ROOMS.index(room_of(target)) > mine:
                offenders.append(f"{mod}:{line} ({room_of(mod)}) imports {target} ({room_of(target)})")
    assert not offenders, "a harness room imports a room above it:\n" + "\n".join(offenders)


def test_packages_import_only_downwards():
    """The core imports no plugin package; metrics < methods < mini < the public API."""
    _, edges = graph()
    offenders = []
    for mod, found in edges.items():
        mine = PACKAGES.index(package_of(mod))
        for target, line, _ in found:
            if target.startswith("ganrm_bench") and PACKAGES.index(package_of(target)) > mine:
                offenders.append(f"{mod}:{line} imports {target}")
    assert not offenders, "a package imports one above it:\n" + "\n".join(offenders)


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []
    sys.setrecursionlimit(10000)

    def strong(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in list(edges):
        if v not in index:
            strong(v)
    return out


def test_no_import_cycle_counting_function_local_imports():
    mods, edges = graph()
    internal = {m: {t for t, _, _ in found if t in mods and t != m and not m.startswith(t + ".")} for m, found in edges.items()}
    found = cycles(internal)
    assert not found, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in found)


def test_function_local_imports_are_heavy_or_optional_third_party_modules():
    mods, edges = graph()
    offenders = []
    for mod, found in edges.items():
        lazy_attrs = lazy_attribute_lines(mods[mod])
        for target, line, local in found:
            if local and target.split(".")[0] not in LAZY and line not in lazy_attrs:
                offenders.append(f"{mod}:{line} imports {target} inside a function")
    assert not offenders, ("import these at the top of the module (or name the module in LAZY with its reason):\n"
                           + "\n".join(offenders))


def lazy_attribute_lines(tree: ast.Module) -> set[int]:
    """Lines of a module-level `__getattr__` (PEP 562): a package's public names that import on first
    use (`ganrm_bench.GanRM` without torch at `import ganrm_bench`)."""
    return {n.lineno for f in tree.body if isinstance(f, ast.FunctionDef) and f.name == "__getattr__" for n in ast.walk(f)
            if isinstance(n, (ast.Import, ast.ImportFrom))}


def test_the_scanner_sees_what_it_looks_for():
    """A TYPE_CHECKING import is skipped, a function-local one and an import_module string are found."""
    tree = ast.parse("import os\nif TYPE_CHECKING:\n    from ganrm_bench.harness.engine.nodes import Node\n"
                     "from ganrm_bench.harness.spec import schema\n"
                     "def f():\n    from ganrm_bench.metrics.base import SetMetric\n    importlib.import_module('ganrm_bench.mini')\n")
    known = {"ganrm_bench.harness.spec.schema", "ganrm_bench.metrics.base", "ganrm_bench.mini", "ganrm_bench.harness.engine.nodes"}
    got = imports(tree, known, "ganrm_bench.harness.x")
    assert ("os", 1, False) in got and ("ganrm_bench.harness.spec.schema", 4, False) in got
    assert ("ganrm_bench.metrics.base", 6, True) in got and ("ganrm_bench.mini", 7, True) in got
    assert not any(t == "ganrm_bench.harness.engine.nodes" for t, _, _ in got)
    assert cycles({"a": {"b"}, "b": {"a"}, "c": {"a"}}) == [["a", "b"]]
