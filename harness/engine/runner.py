"""Evaluates the artifact graph: computes only what the store lacks, loads the rest, and turns a
spec into one long results table (spec, row, column, seed, value, CI, n, convention, key)."""

from __future__ import annotations

import logging
import math
import traceback
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from ganrm_bench.harness.engine.builder import Builder
from ganrm_bench.harness.engine.cells import Cell, build_cells, comparison_rows
from ganrm_bench.harness.engine.cost import COST_COLUMNS, row_cost
from ganrm_bench.harness.engine.evaluator import Evaluator
from ganrm_bench.harness.engine.nodes import Node
from ganrm_bench.harness.engine.preflight import require_inputs
from ganrm_bench.harness.errors import UserError
from ganrm_bench.harness.runtime.context import Context
from ganrm_bench.harness.runtime.distributed import (
    clear_failure,
    mark_failure,
    rank_and_world,
)
from ganrm_bench.harness.runtime.seeds import derive_seed
from ganrm_bench.harness.spec.schema import Spec
from ganrm_bench.harness.stats.paired import Difference, difference
from ganrm_bench.harness.stats.twolevel import conditional, row_difference

log = logging.getLogger("ganrm_bench")


RESULT_COLUMNS = [
    "spec", "group", "row", "row_label", "column", "column_label", "metric", "seed", "seeds", "scope", "value", "ci_low", "ci_high",
    "se", "df", "n", "value_inf", "direction", "convention", "key", "trained", "compare_to", "delta", "delta_ci_low", "delta_ci_high",
    "delta_se", "delta_df", "p_value", "paired", "delta_method", "delta_basis", "delta_inf", "heldout", *COST_COLUMNS,
]
# seeds: the seeds a cell covers ("0", pooled "0+1+2"); se, df: the standard error and t degrees of freedom of
# the cell's own interval (inf: normal); value_inf: set metrics' jackknife bias-corrected value (N → ∞, a
# sensitivity column; harness.stats.paired); trained: the row's graph trains a model (Op.trains); delta_basis:
# what the Δ interval's variance includes (prompts | seeds | conditional; harness.stats.twolevel)


POOLED_SEED = -1  # the `seed` of pooled cells (scope "pooled": the union of every seed's samples)


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
    monitor: Any = None  # harness.diagnostics.monitor.MonitorOutcome, when the run was monitored (app.services.run.evaluate)
    # the graphs the cells were computed on, for what judges a run afterwards (the monitor)
    evaluator: Evaluator | None = None
    row_graphs: dict[int, dict[str, Node]] = field(default_factory=dict)  # seed -> row -> its samples node
    cells: list[Cell] = field(default_factory=list)


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
    seeds = list(seeds or spec.seeds)
    require_inputs(spec, ctx, seeds)  # every unreadable input at once, before computing anything
    clear_failure(ctx.store.root)  # this rank's marker of an earlier launch
    run = _SpecRun(spec, ctx)
    for seed in seeds:
        if run.stopped:  # one rank fails, all stop: the others are told through the store
            break
        run.seed(seed)
    if len(seeds) > 1 and not run.stopped:
        run.pooled(seeds)
    return run.outcome()


class _SpecRun:
    """The state of one `run_spec`: the evaluator, the table rows and units emitted so far, what failed."""

    def __init__(self, spec: Spec, ctx: Context):
        self.spec, self.ctx = spec, ctx
        self.ev = Evaluator(ctx)
        self.world = rank_and_world()[1]
        self.against = comparison_rows(spec)
        self.rows: list[dict[str, Any]] = []
        self.units_rows: list[dict[str, Any]] = []
        self.failures: list[str] = []
        self.failed: list[tuple[str, Exception, str]] = []
        self.samples: dict[str, Any] = {}  # row -> its evaluation ItemSet (first seed), for galleries
        self.records: list[dict[str, Any]] = []
        self.sample_nodes: dict[tuple[str, str], list[Node]] = {}  # (row, column) -> its samples node per seed
        self.row_graphs: dict[int, dict[str, Node]] = {}  # seed -> row -> its samples node (for the monitor)
        self.cells: list[Cell] = []
        self.cost_memo: dict[str, dict[str, float]] = {}
        self.trained: dict[str, bool] = {}  # row -> its samples' graph holds a training op
        self.seed_deltas: dict[tuple[str, str], list[Difference]] = {}  # (row, column) -> its per-seed Δ
        self.pooled_seeds: list[int] = []

    @property
    def stopped(self) -> bool:
        """Under several processes a failure on any of them stops this one too."""
        return self.world > 1 and bool(self.failures)

    def seed(self, seed: int) -> None:
        """Every cell of one seed."""
        cells = build_cells(self.spec, Builder(self.spec, self.ctx, seed))
        self.cells += cells
        done: dict[tuple[str, str], _Evaluated] = {}
        for cell in cells:
            if self.stopped:
                break
            e = self.evaluate(cell, seed)
            if e is None:
                continue
            done[(cell.row, cell.column)] = e
            samples = cell.node.inputs["samples"]
            self.row_graphs.setdefault(seed, {}).setdefault(cell.row, samples)
            if cell.row not in self.trained:
                self.trained[cell.row] = any(n.op.trains for n in samples.walk())
            if cell.row not in self.samples:  # for galleries: a cheap load when the metric itself was cached
                self.samples[cell.row] = e.samples
                self.records += [{"row": cell.row, "seed": seed, "op": n.op.name, "label": n.label, **self.ev.value(n)}
                                 for n in samples.walk() if n.op.reported]
            self.sample_nodes.setdefault((cell.row, cell.column), []).append(samples)
        self.emit(cells, done, seed)

    def pooled(self, seeds: list[int]) -> None:
        """Each metric once more over the union of every seed's samples (scope "pooled")."""
        self.pooled_seeds = list(seeds)
        b = Builder(self.spec, self.ctx, seeds[0])
        groups = {r: g.name for g in (self.spec.table.groups or []) for r in g.rows}
        cells, done = [], {}
        for (row, column), nodes in self.sample_nodes.items():
            if len(nodes) != len(seeds):
                continue  # a seed failed: no pooled cell
            union = b.union(nodes, label=f"{row} over seeds {'+'.join(map(str, seeds))}")
            cell = Cell(groups.get(row, ""), row, column, b.metric(column, union))
            e = self.evaluate(cell, POOLED_SEED)
            if e is not None:
                cells.append(cell)
                done[(row, column)] = e
        self.emit(cells, done, POOLED_SEED)

    def evaluate(self, cell: Cell, seed: int) -> _Evaluated | None:
        """The cell's metric value, its samples and units; None (and the failure recorded) when it fails."""
        where = f"{cell.row} × {cell.column} (seed {_seed_text(seed)})"
        try:
            result = self.ev.value(cell.node)
            evaluated = _Evaluated(result, self.ev.value(cell.node.inputs["samples"]), cell.node.obj)
            evaluated.units = evaluated.metric.units(result, evaluated.samples) if hasattr(evaluated.metric, "units") else None
            return evaluated
        except UserError as exc:
            self.failures.append(f"{where}: {exc}")
            self.failed.append((where, exc, str(exc)))
            mark_failure(self.ctx.store.root, exc)
        except Exception as exc:  # keep going: other cells may still be computable
            log.debug("cell failed", exc_info=True)
            self.failures.append(f"{where}: {type(exc).__name__}: {exc}\n{traceback.format_exc(limit=3)}")
            self.failed.append((where, exc, f"{type(exc).__name__}: {exc}"))
            mark_failure(self.ctx.store.root, exc)
        return None

    def row_costs(self, samples: Node, delivered: int) -> dict[str, float]:
        """A row's compute columns (harness.engine.cost), once per samples node (every column shares them)."""
        if samples.key not in self.cost_memo:
            self.cost_memo[samples.key] = row_cost(samples, delivered, self.ev.cost)
        return self.cost_memo[samples.key]

    def emit(self, cells: list[Cell], done: dict[tuple[str, str], _Evaluated], seed: int) -> None:
        """The table rows (and units) of evaluated cells, each with its Δ against its comparison row."""
        for cell in cells:
            e = done.get((cell.row, cell.column))
            if e is None:
                continue
            row = self.result_row(cell, e, seed)
            base = done.get((self.against.get(cell.row), cell.column))
            if base is not None and e.units is not None and base.units is not None:
                d = self.delta(cell, e, base, seed)
                row.update(compare_to=self.against[cell.row], delta=d.estimate, delta_ci_low=d.ci_low, delta_ci_high=d.ci_high,
                           delta_se=d.se, delta_df=d.df, p_value=d.p_value, paired=d.paired, delta_method=d.method,
                           delta_basis=d.basis, delta_inf=d.estimate_inf)
                exact = _exact_test(e, base)
                if exact is not None and d.basis == "seeds":  # the t across seeds decides; the exact test is conditional
                    row.update(delta_method=f"{d.method}; p: t across seeds (McNemar's exact p on the pooled pairs, "
                                            f"conditional on the trained models: {exact[0]:.3g}, {exact[1]})")
                elif exact is not None:  # the metric's own exact paired test (pair metrics: McNemar) gives the p-value
                    row.update(p_value=exact[0], delta_method=f"{d.method}; p: {exact[1]}")
            self.rows.append(row)
            if e.units is not None:
                self.units_rows.extend({"row": cell.row, "column": cell.column, "seed": seed, **u} for u in e.units.to_rows())

    def delta(self, cell: Cell, e: _Evaluated, base: _Evaluated, seed: int) -> Difference:
        """The paired Δ of a cell against its comparison row (harness.stats.twolevel): when either row
        is trained, a seed's Δ is conditional on its trained models, and the pooled Δ of several seeds
        has a t interval across the per-seed Δs (training variance included)."""
        d = difference(e.units, base.units, seed=derive_seed(0, "delta", cell.row, cell.column, seed))
        trained = self.trained.get(cell.row, False) or self.trained.get(self.against[cell.row], False)
        if seed != POOLED_SEED:
            self.seed_deltas.setdefault((cell.row, cell.column), []).append(d)
            return conditional(d) if trained else d
        return row_difference(self.seed_deltas.get((cell.row, cell.column), []), d, trained=trained)

    def result_row(self, cell: Cell, e: _Evaluated, seed: int) -> dict[str, Any]:
        metric_entry, method_entry = self.spec.metrics[cell.column], self.spec.methods[cell.row]
        se, df = e.units.se_df() if e.units is not None else (math.nan, math.nan)
        return {
            "spec": self.spec.name, "group": cell.group, "row": cell.row, "row_label": method_entry.label or cell.row,
            "column": cell.column, "column_label": metric_entry.label or cell.column, "metric": metric_entry.metric,
            "seed": seed, "seeds": "+".join(map(str, self.pooled_seeds)) if seed == POOLED_SEED else str(seed),
            "scope": "pooled" if seed == POOLED_SEED else "seed", "value": float(e.result.value),
            "ci_low": _f(e.result.ci_low), "ci_high": _f(e.result.ci_high), "se": se, "df": df, "n": int(e.result.n),
            "value_inf": e.units.bias_corrected() if e.units is not None else math.nan, "direction": cell.node.obj.direction,
            "convention": e.result.convention, "key": cell.node.key, "trained": self.trained.get(cell.row, False),
            "compare_to": None, "delta": math.nan, "delta_ci_low": math.nan, "delta_ci_high": math.nan, "delta_se": math.nan,
            "delta_df": math.nan, "p_value": math.nan, "paired": None, "delta_method": None, "delta_basis": None,
            "delta_inf": math.nan, "heldout": True,
            **self.row_costs(cell.node.inputs["samples"], len(e.samples)),
        }

    def outcome(self) -> RunOutcome:
        return RunOutcome(pd.DataFrame(self.rows, columns=RESULT_COLUMNS), self.failures, self.ev.computed, self.ev.loaded,
                          dict(self.ctx.counters), self.samples, pd.DataFrame(self.records), units=pd.DataFrame(self.units_rows),
                          failure_groups=group_failures(self.failed), evaluator=self.ev, row_graphs=self.row_graphs, cells=self.cells)


def _exact_test(e: _Evaluated, base: _Evaluated) -> tuple[float, str] | None:
    """(p, how) from the metric's optional `paired_test(result, base_result)`, for metrics whose
    cells pair outcome by outcome (pairwise accuracy: McNemar's exact test); None otherwise."""
    test = getattr(e.metric, "paired_test", None)
    return test(e.result, base.result) if callable(test) else None


def _seed_text(seed: int) -> str:
    return "pooled" if seed == POOLED_SEED else str(seed)


def _f(x: Any) -> float:
    try:
        return float(x)
    except (TypeError, ValueError):
        return math.nan
