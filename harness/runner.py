"""Evaluates the artifact graph: computes only what the store lacks, loads the rest, and turns a
spec into one long results table (spec, row, column, seed, value, CI, n, convention, key)."""

from __future__ import annotations

import contextlib
import logging
import math
import traceback
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from ganrm_bench.harness.errors import UserError
from ganrm_bench.harness.graph import Builder, Node
from ganrm_bench.harness.runtime import Context
from ganrm_bench.harness.spec import Spec

log = logging.getLogger("ganrm_bench")

RESULT_COLUMNS = [
    "spec", "group", "row", "row_label", "column", "column_label", "metric", "seed", "value", "ci_low", "ci_high", "n",
    "direction", "convention", "key",
]


class Evaluator:
    """Computes node values, memoized per run; stored ops are loaded when their artifact exists."""

    def __init__(self, ctx: Context):
        self.ctx = ctx
        self.memo: dict[str, Any] = {}
        self.computed: Counter[str] = Counter()
        self.loaded: Counter[str] = Counter()

    def value(self, node: Node) -> Any:
        if node.key in self.memo:
            return self.memo[node.key]
        store, op = self.ctx.store, node.op
        if op.stored and store.has(node.key):
            value = op.load(store.path(node.key), node, self.ctx)
            self.loaded[op.name] += 1
        elif not op.stored:
            value = op.compute(node, self.ctx, {k: self.value(n) for k, n in node.inputs.items()})
        else:
            inputs = {k: self.value(n) for k, n in node.inputs.items()}
            with store.lock(node.key) if op.exclusive(node) else contextlib.nullcontext():  # another run may be making it
                if store.has(node.key):
                    value = op.load(store.path(node.key), node, self.ctx)
                    self.loaded[op.name] += 1
                else:
                    log.info("computing %s %s", op.name, node.label)
                    value = op.compute(node, self.ctx, inputs)
                    meta = {"producer": op.name, "op_version": op.version, "label": node.label, "params": node.params,
                            "inputs": {k: n.key for k, n in node.inputs.items()}}
                    with store.writing(node.key, meta) as tmp:
                        extra = op.save(value, tmp, node) or {}
                        meta.update(extra)
                    self.computed[op.name] += 1
        self.memo[node.key] = value
        return value

    def peek(self, node: Node) -> Any:
        """A cheap value for planning (prompt sets), or None when it would take real work.
        Nothing is written: a plan leaves the store as it found it."""
        if node.op.name != "prompts":
            return None
        if node.key not in self.memo:
            store = self.ctx.store
            self.memo[node.key] = (node.op.load(store.path(node.key), node, self.ctx) if store.has(node.key)
                                   else node.op.compute(node, self.ctx, {}))
        return self.memo[node.key]


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


@dataclass
class Cell:
    group: str
    row: str
    column: str
    node: Node


def build_cells(spec: Spec, b: Builder) -> list[Cell]:
    groups = {r: g.name for g in (spec.table.groups or []) for r in g.rows}
    cells = []
    for row in spec.table.rows or []:
        samples = b.method(row)
        for col in spec.table.columns or []:
            cells.append(Cell(groups.get(row, ""), row, col, b.metric(col, samples)))
    return cells


@dataclass
class RunOutcome:
    results: pd.DataFrame
    failures: list[str]
    computed: Counter[str]
    loaded: Counter[str]
    counters: dict[str, int]
    samples: dict[str, Any] = field(default_factory=dict)  # row -> its evaluation ItemSet (first seed)
    records: pd.DataFrame = field(default_factory=pd.DataFrame)  # values of reported ops (reward stats per round)


def run_spec(spec: Spec, ctx: Context, *, seeds: list[int] | None = None) -> RunOutcome:
    """Run every cell of the spec's table for each seed. A failing cell is recorded and the run
    goes on (everything finished stays in the store); failures are returned for the exit code."""
    rows: list[dict[str, Any]] = []
    failures: list[str] = []
    samples: dict[str, Any] = {}
    records: list[dict[str, Any]] = []
    ev = Evaluator(ctx)
    for seed in seeds or spec.seeds:
        ctx.seed = seed
        b = Builder(spec, ctx, seed)
        for cell in build_cells(spec, b):
            metric_entry = spec.metrics[cell.column]
            method_entry = spec.methods[cell.row]
            try:
                result = ev.value(cell.node)
            except UserError as exc:
                failures.append(f"{cell.row} × {cell.column} (seed {seed}): {exc}")
                continue
            except Exception as exc:  # keep going: other cells may still be computable
                log.debug("cell failed", exc_info=True)
                failures.append(f"{cell.row} × {cell.column} (seed {seed}): {type(exc).__name__}: {exc}\n{traceback.format_exc(limit=3)}")
                continue
            if cell.row not in samples:  # for galleries: a cheap load when the metric itself was cached
                samples[cell.row] = ev.value(cell.node.inputs["samples"])
                records += [{"row": cell.row, "seed": seed, "op": n.op.name, "label": n.label, **ev.value(n)}
                            for n in cell.node.inputs["samples"].walk() if n.op.reported]
            rows.append(
                {
                    "spec": spec.name, "group": cell.group, "row": cell.row, "row_label": method_entry.label or cell.row,
                    "column": cell.column, "column_label": metric_entry.label or cell.column, "metric": metric_entry.metric,
                    "seed": seed, "value": float(result.value), "ci_low": _f(result.ci_low), "ci_high": _f(result.ci_high),
                    "n": int(result.n), "direction": cell.node.obj.direction, "convention": result.convention,
                    "key": cell.node.key,
                }
            )
    return RunOutcome(pd.DataFrame(rows, columns=RESULT_COLUMNS), failures, ev.computed, ev.loaded, dict(ctx.counters),
                      samples, pd.DataFrame(records))


def _f(x: Any) -> float:
    try:
        return float(x)
    except (TypeError, ValueError):
        return math.nan
