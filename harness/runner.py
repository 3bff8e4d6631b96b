"""Evaluates the artifact graph: computes only what the store lacks, loads the rest, and turns a
spec into one long results table (spec, row, column, seed, value, CI, n, convention, key)."""

from __future__ import annotations

import contextlib
import logging
import math
import time
import traceback
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from ganrm_bench.harness.distributed import (clear_failure, failing_together, launch_lock, mark_failure, node_lock, rank_and_world,
                                             wait_for_files)
from ganrm_bench.harness import memory
from ganrm_bench.harness.cost import COST_COLUMNS, row_cost
from ganrm_bench.harness.errors import UserError
from ganrm_bench.harness.graph import Builder, Node
from ganrm_bench.harness.numerics import numerics_record
from ganrm_bench.harness.runtime import Context
from ganrm_bench.harness.spec import Spec
from ganrm_bench.harness.store import MANIFEST

log = logging.getLogger("ganrm_bench")

RESULT_COLUMNS = [
    "spec", "group", "row", "row_label", "column", "column_label", "metric", "seed", "scope", "value", "ci_low", "ci_high",
    "n", "direction", "convention", "key", "compare_to", "delta", "delta_ci_low", "delta_ci_high", "p_value", "paired",
    "delta_method", "heldout", *COST_COLUMNS,
]
POOLED_SEED = -1  # the `seed` of pooled cells (scope "pooled": the union of every seed's samples)


class Evaluator:
    """Computes node values, memoized per run; stored ops are loaded when their artifact exists."""

    def __init__(self, ctx: Context):
        self.ctx = ctx
        self.memo: dict[str, Any] = {}
        self.computed: Counter[str] = Counter()
        self.loaded: Counter[str] = Counter()
        self.failed: dict[str, Exception] = {}  # a node that failed fails every cell needing it, computed once
        self.costs: dict[str, dict[str, float]] = {}  # node key -> its cost (harness.cost), computed or from its manifest

    def value(self, node: Node) -> Any:
        if node.key in self.memo:
            return self.memo[node.key]
        if node.key in self.failed:
            raise self.failed[node.key]
        try:
            return self._value(node)
        except Exception as exc:
            if getattr(exc, "failed_node", None) is None:
                try:
                    exc.failed_node = node  # type: ignore[attr-defined]  # the innermost artifact that failed
                except AttributeError:  # pragma: no cover - exceptions without a __dict__
                    pass
            self.failed[node.key] = exc
            raise

    def _value(self, node: Node) -> Any:
        store, op = self.ctx.store, node.op
        if op.stored and store.has(node.key):
            value = self._load(node)
        elif not op.stored:
            inputs = {k: self.value(n) for k, n in node.inputs.items()}
            value = op.compute(node, self.ctx, inputs)
            self.costs[node.key] = op.cost(node, value)  # no artifact: no recorded seconds (its work is its inputs')
        else:
            inputs = {k: self.value(n) for k, n in node.inputs.items()}
            rank, world = rank_and_world()
            exclusive = op.exclusive(node)
            if world == 1:
                lock = store.lock(node.key) if exclusive else contextlib.nullcontext()
            else:  # one process computes under the node's lock, or all together while process 0 holds it
                lock = node_lock(store, node.key) if exclusive else launch_lock(store, node.key)
            # under a lock only this rank computes; otherwise every rank does, sharding per-item work
            with lock, failing_together(store.root), self.ctx.sharding(world > 1 and not exclusive):
                if store.has(node.key):
                    value = self._load(node)
                else:
                    log.info("computing %s %s", op.name, node.label)
                    memory.next_node()  # models only earlier nodes used leave the device when this one loads its own
                    t0 = time.perf_counter()
                    value = op.compute(node, self.ctx, inputs)
                    if exclusive or rank == 0:  # computed together: rank 0 alone publishes (hashes, copies)
                        meta = {"producer": op.name, "op_version": op.version, "label": node.label, "params": node.params,
                                "inputs": {k: n.key for k, n in node.inputs.items()},
                                "numerics": {"class": node.numerics, **numerics_record(self.ctx.device)}}
                        with store.writing(node.key, meta) as tmp:
                            extra = op.save(value, tmp, node) or {}
                            meta.update(extra)
                            meta["cost"] = self.costs[node.key] = {**op.cost(node, value), "seconds": round(time.perf_counter() - t0, 4)}
                    else:
                        wait_for_files([store.path(node.key) / MANIFEST], what=f"{op.name} {node.label} from process 0", root=store.root)
                        value = self._load(node)
                    self.computed[op.name] += 1
        self.memo[node.key] = value
        return value

    def _load(self, node: Node) -> Any:
        """A stored artifact, with the cost it had when computed (its manifest's; nominal work and
        unknown seconds for artifacts stored before costs were recorded)."""
        value = node.op.load(self.ctx.store.path(node.key), node, self.ctx)
        self.loaded[node.op.name] += 1
        recorded = self.ctx.store.manifest(node.key).get("cost")
        self.costs[node.key] = recorded if recorded is not None else {**node.op.cost(node, value), "seconds": math.nan}
        return value

    def cost(self, node: Node) -> dict[str, float]:
        """The recorded cost of a node of this run's graphs (harness.cost)."""
        from ganrm_bench.harness.cost import node_cost

        return node_cost(node, self.costs, self.ctx.store)

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
    units: pd.DataFrame = field(default_factory=pd.DataFrame)  # what each cell's CI resamples (harness.stats)
    failure_groups: list[str] = field(default_factory=list)  # one line per failing artifact, with the cells it broke
    monitor: Any = None  # harness.monitor.MonitorOutcome: report cards, diagnostics, held-out marks


def comparison_rows(spec: Spec) -> dict[str, str]:
    """row -> the row it gets a paired Δ against: `table.compare` (one row, or a {row: row} map), a
    group's `compare`, else the group's (or table's) first row. The comparison row itself gets none."""
    groups = spec.table.groups or []
    out: dict[str, str] = {}
    if isinstance(spec.table.compare, dict):
        return {r: a for r, a in spec.table.compare.items() if r != a}
    if groups:
        for g in groups:
            against = g.compare or (spec.table.compare if spec.table.compare in g.rows else None) or g.rows[0]
            out.update({r: against for r in g.rows if r != against})
    else:
        rows = spec.table.rows or []
        against = spec.table.compare or (rows[0] if rows else None)
        out.update({r: against for r in rows if r != against})
    return out


def group_failures(failed: list[tuple[str, Exception, str]]) -> list[str]:
    """(cell, exception, message) per failed cell → one entry per failing artifact: the message
    once, then every cell it broke (nine cells of one bad PPD are one problem, not nine)."""
    groups: dict[Any, tuple[str, list[str]]] = {}
    for cell, exc, message in failed:
        node = getattr(exc, "failed_node", None)
        key = (node.key if node is not None else None, message)
        groups.setdefault(key, (message, []))[1].append(cell)
    out = []
    for message, cells in groups.values():
        out.append(f"{cells[0]}: {message}" if len(cells) == 1 else f"{len(cells)} cells ({', '.join(cells)}): {message}")
    return out


@dataclass
class _Evaluated:
    result: Any
    samples: Any
    metric: Any
    units: Any = None


def run_spec(spec: Spec, ctx: Context, *, seeds: list[int] | None = None) -> RunOutcome:
    """Run every cell of the spec's table for each seed, then (with several seeds) each cell once
    more over the union of its seeds' samples (scope "pooled"). Every cell gets a paired Δ against
    its comparison row (`harness.stats`). A failing cell is recorded and the run goes on
    (everything finished stays in the store); failures are returned for the exit code."""
    from ganrm_bench.harness.preflight import require_inputs
    from ganrm_bench.harness.runtime import derive_seed
    from ganrm_bench.harness.stats import difference

    seeds = list(seeds or spec.seeds)
    require_inputs(spec, ctx, seeds)  # every unreadable input at once, before computing anything
    rows: list[dict[str, Any]] = []
    failures: list[str] = []
    failed: list[tuple[str, Exception, str]] = []
    samples: dict[str, Any] = {}
    records: list[dict[str, Any]] = []
    units_rows: list[dict[str, Any]] = []
    ev = Evaluator(ctx)
    world = rank_and_world()[1]
    clear_failure(ctx.store.root)  # this rank's marker of an earlier launch
    against = comparison_rows(spec)
    sample_nodes: dict[str, list[Node]] = {}
    row_graphs: dict[int, dict[str, Node]] = {}  # seed -> row -> its samples node (for the monitor)
    all_cells: list[Cell] = []

    def evaluate(cell: Cell, seed: int) -> _Evaluated | None:
        try:
            result = ev.value(cell.node)
            evaluated = _Evaluated(result, ev.value(cell.node.inputs["samples"]), cell.node.obj)
            evaluated.units = evaluated.metric.units(result, evaluated.samples) if hasattr(evaluated.metric, "units") else None
            return evaluated
        except UserError as exc:
            failures.append(f"{cell.row} × {cell.column} (seed {_seed_text(seed)}): {exc}")
            failed.append((f"{cell.row} × {cell.column} (seed {_seed_text(seed)})", exc, str(exc)))
            mark_failure(ctx.store.root, exc)
        except Exception as exc:  # keep going: other cells may still be computable
            log.debug("cell failed", exc_info=True)
            failures.append(f"{cell.row} × {cell.column} (seed {_seed_text(seed)}): {type(exc).__name__}: {exc}\n{traceback.format_exc(limit=3)}")
            failed.append((f"{cell.row} × {cell.column} (seed {_seed_text(seed)})", exc, f"{type(exc).__name__}: {exc}"))
            mark_failure(ctx.store.root, exc)
        return None

    cost_memo: dict[str, dict[str, float]] = {}

    def row_costs(samples: Node, delivered: int) -> dict[str, float]:
        """A row's compute columns (harness.cost), once per samples node (every column shares them)."""
        if samples.key not in cost_memo:
            cost_memo[samples.key] = row_cost(samples, delivered, ev.cost)
        return cost_memo[samples.key]

    def emit(cells: list[Cell], done: dict[tuple[str, str], _Evaluated], seed: int) -> None:
        scope = "pooled" if seed == POOLED_SEED else "seed"
        for cell in cells:
            e = done.get((cell.row, cell.column))
            if e is None:
                continue
            metric_entry, method_entry = spec.metrics[cell.column], spec.methods[cell.row]
            row = {
                "spec": spec.name, "group": cell.group, "row": cell.row, "row_label": method_entry.label or cell.row,
                "column": cell.column, "column_label": metric_entry.label or cell.column, "metric": metric_entry.metric,
                "seed": seed, "scope": scope, "value": float(e.result.value), "ci_low": _f(e.result.ci_low),
                "ci_high": _f(e.result.ci_high), "n": int(e.result.n), "direction": cell.node.obj.direction,
                "convention": e.result.convention, "key": cell.node.key, "compare_to": None, "delta": math.nan,
                "delta_ci_low": math.nan, "delta_ci_high": math.nan, "p_value": math.nan, "paired": None, "delta_method": None,
                "heldout": True,
                **row_costs(cell.node.inputs["samples"], len(e.samples)),
            }
            base = done.get((against.get(cell.row), cell.column))
            if base is not None and e.units is not None and base.units is not None:
                d = difference(e.units, base.units, seed=derive_seed(0, "delta", cell.row, cell.column, seed))
                row.update(compare_to=against[cell.row], delta=d.estimate, delta_ci_low=d.ci_low, delta_ci_high=d.ci_high,
                           p_value=d.p_value, paired=d.paired, delta_method=d.method)
            rows.append(row)
            if e.units is not None:
                units_rows.extend({"row": cell.row, "column": cell.column, "seed": seed, **u} for u in e.units.to_rows())

    for seed in seeds:
        if world > 1 and failures:  # one rank fails, all stop: the others are told through the store
            break
        ctx.seed = seed
        b = Builder(spec, ctx, seed)
        cells = build_cells(spec, b)
        all_cells += cells
        done: dict[tuple[str, str], _Evaluated] = {}
        for cell in cells:
            if world > 1 and failures:
                break
            e = evaluate(cell, seed)
            if e is None:
                continue
            done[(cell.row, cell.column)] = e
            row_graphs.setdefault(seed, {}).setdefault(cell.row, cell.node.inputs["samples"])
            if cell.row not in samples:  # for galleries: a cheap load when the metric itself was cached
                samples[cell.row] = e.samples
                records += [{"row": cell.row, "seed": seed, "op": n.op.name, "label": n.label, **ev.value(n)}
                            for n in cell.node.inputs["samples"].walk() if n.op.reported]
            nodes = sample_nodes.setdefault(f"{cell.row}\0{cell.column}", [])
            nodes.append(cell.node.inputs["samples"])
        emit(cells, done, seed)
    if len(seeds) > 1 and not (world > 1 and failures):  # pooled: each metric over the union of every seed's samples
        ctx.seed = seeds[0]
        b = Builder(spec, ctx, seeds[0])
        groups = {r: g.name for g in (spec.table.groups or []) for r in g.rows}
        cells, done = [], {}
        for key, nodes in sample_nodes.items():
            row, column = key.split("\0")
            if len(nodes) != len(seeds):
                continue  # a seed failed: no pooled cell
            union = b.union(nodes, label=f"{row} over seeds {'+'.join(map(str, seeds))}")
            cell = Cell(groups.get(row, ""), row, column, b.metric(column, union))
            e = evaluate(cell, POOLED_SEED)
            if e is not None:
                cells.append(cell)
                done[(row, column)] = e
        emit(cells, done, POOLED_SEED)
    results = pd.DataFrame(rows, columns=RESULT_COLUMNS)
    from ganrm_bench.harness.monitor import monitor_run

    monitor = monitor_run(spec, ctx, ev, row_graphs, results, all_cells)  # never raises: errors go to run.json
    for row, column in monitor.not_heldout:
        results.loc[(results["row"] == row) & (results["column"] == column), "heldout"] = False
    return RunOutcome(results, failures, ev.computed, ev.loaded, dict(ctx.counters),
                      samples, pd.DataFrame(records), units=pd.DataFrame(units_rows), failure_groups=group_failures(failed),
                      monitor=monitor)


def _seed_text(seed: int) -> str:
    return "pooled" if seed == POOLED_SEED else str(seed)


def _f(x: Any) -> float:
    try:
        return float(x)
    except (TypeError, ValueError):
        return math.nan
