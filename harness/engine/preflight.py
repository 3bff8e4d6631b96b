"""Preflight: before a run computes anything, each plugin whose artifacts the run still has to make
opens its local inputs (`Plugin.check_inputs`: image folders, tables, prompt files). A PPD folder
with three bad files is then reported once, all three named, with the cells it would break, before
hours of work on the other rows — not cell by cell after them. Cached artifacts need no inputs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator

from ganrm_bench.harness.engine.builder import Builder
from ganrm_bench.harness.engine.cells import build_cells
from ganrm_bench.harness.engine.nodes import Node
from ganrm_bench.harness.errors import UnreadableFilesError, UserError
from ganrm_bench.harness.plugins.base import Plugin
from ganrm_bench.harness.runtime.context import Context
from ganrm_bench.harness.spec.schema import Spec
from ganrm_bench.harness.store.keys import canonical_json

LISTED_CELLS = 20


@dataclass
class InputCheck:
    """One plugin's inputs: where the spec names it, the cells that need it, and what went wrong."""

    entry: str  # "images.ppd"
    plugin: Plugin
    cells: list[str] = field(default_factory=list)
    error: UserError | None = None


def needed_nodes(target: Node, ctx: Context) -> Iterator[Node]:
    """The nodes a run touches for `target`. A stored node already in the store is loaded, so its
    inputs are not needed; it is itself listed (a cached image set's files are still read by a
    consumer that is not cached, such as a scorer to train)."""
    seen: set[str] = set()

    def visit(n: Node) -> Iterator[Node]:
        if n.key in seen:
            return
        seen.add(n.key)
        if not (n.op.stored and ctx.store.has(n.key)):
            for child in n.inputs.values():
                yield from visit(child)
        yield n

    yield from visit(target)


def entry_path(node: Node) -> str:
    """Where the spec names a node's plugin (`images.ppd`, `scorers.ganrm`, `metrics.fid`)."""
    if node.op.name in ("images", "prompts", "pairs"):
        return f"{node.op.name}.{node.label}"
    if node.op.name == "metric":
        return f"metrics.{node.label.split('(')[0]}"
    for key in ("generator", "scorer"):
        if key in node.params:
            return f"{key}s.{node.label}"
    return f"{node.op.name} {node.label}"


def collect(spec: Spec, ctx: Context, seeds: list[int] | None = None) -> list[InputCheck]:
    """Every plugin the run still needs, once each (by identity: class and params), with its cells."""
    checks: dict[str, InputCheck] = {}
    for seed in seeds or spec.seeds:
        b = Builder(spec, ctx, seed, planning=True)
        for cell in build_cells(spec, b):
            name = f"{cell.row} × {cell.column}" + (f" (seed {seed})" if len(seeds or spec.seeds) > 1 else "")
            for n in needed_nodes(cell.node, ctx):
                if not isinstance(n.obj, Plugin):
                    continue
                ident = canonical_json([type(n.obj).__module__, type(n.obj).__qualname__, n.obj.params.model_dump(mode="json")])
                check = checks.setdefault(ident, InputCheck(entry_path(n), n.obj))
                if name not in check.cells:
                    check.cells.append(name)
    return list(checks.values())


def check_inputs(spec: Spec, ctx: Context, seeds: list[int] | None = None) -> tuple[list[InputCheck], list[InputCheck]]:
    """Run every needed plugin's `check_inputs`; returns (all checks, failed ones)."""
    checks = collect(spec, ctx, seeds)
    for c in checks:
        try:
            c.plugin.check_inputs(ctx)
        except UserError as exc:
            c.error = exc
        except OSError as exc:  # a folder that cannot be listed, a file without read permission
            c.error = UserError(f"{exc.strerror or type(exc).__name__}: {exc.filename or exc}")
    return checks, [c for c in checks if c.error is not None]


def describe(failed: list[InputCheck]) -> str:
    """Each failing input once: the entry, the cells it breaks, every problem, what to do."""
    lines = [f"{len(failed)} input(s) cannot be read; nothing was computed:"]
    for c in failed:
        cells = ", ".join(c.cells[:LISTED_CELLS]) + (f", ... ({len(c.cells) - LISTED_CELLS} more)" if len(c.cells) > LISTED_CELLS else "")
        lines.append(f"  - {c.entry}: {c.error.message}")
        lines.append(f"    needed by {len(c.cells)} cell(s): {cells}")
        if isinstance(c.error, UnreadableFilesError) and "skip_bad" in getattr(type(c.plugin).Params, "model_fields", {}):
            lines.append(f"    hint: remove or fix the files, or add `skip_bad: true` to the spec's `{c.entry}` to skip them")
        elif c.error.hint:
            lines.append(f"    hint: {c.error.hint}")
    return "\n".join(lines)


def require_inputs(spec: Spec, ctx: Context, seeds: list[int] | None = None) -> list[InputCheck]:
    """The preflight of `run`: raise one UserError listing every unreadable input; else the checks."""
    checks, failed = check_inputs(spec, ctx, seeds)
    if failed:
        raise UserError(describe(failed))
    return checks
