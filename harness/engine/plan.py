"""Plans: what a run would compute, per node, with the work it takes; nothing is written."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from ganrm_bench.harness.engine.evaluator import Evaluator
from ganrm_bench.harness.engine.nodes import Node
from ganrm_bench.harness.runtime.context import Context


@dataclass
class PlanEntry:
    node: Node
    status: str  # "cached" | "compute" | "source"
    work: dict[str, int | set[str]] = field(default_factory=dict)

    def work_counts(self) -> dict[str, int]:
        return {k: len(v) if isinstance(v, set) else v for k, v in self.work.items()}


def plan(targets: list[Node], ctx: Context) -> list[PlanEntry]:
    """What a run would do: for each needed node, cached or to compute, with the work it takes.
    Inputs of a cached node are not needed, so they are not listed."""
    ev = Evaluator(ctx)
    needed: dict[str, PlanEntry] = {}

    def visit(n: Node) -> None:
        if n.key in needed:
            return
        if n.op.stored and ctx.store.has(n.key):
            needed[n.key] = PlanEntry(n, "cached")
            return
        for child in n.inputs.values():
            visit(child)
        status = "compute" if n.op.stored else "source"
        needed[n.key] = PlanEntry(n, status, n.op.pending(n, ctx.store, ev.peek) if n.op.stored else {})

    for t in targets:
        visit(t)
    return list(needed.values())


def plan_totals(entries: list[PlanEntry]) -> dict[str, int]:
    """Work summed over the plan; shared items (a K=10 pool serving K=6) are counted once."""
    counts: Counter[str] = Counter()
    shared: dict[str, set[str]] = {}
    for e in entries:
        for k, v in e.work.items():
            if isinstance(v, set):
                shared.setdefault(k, set()).update(v)
            elif v > 0:
                counts[k] += v
    return {**{k: len(v) for k, v in shared.items()}, **counts}
