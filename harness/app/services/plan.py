"""`plan` and `validate`: what a run would compute (per seed, with the rows each artifact serves and,
on request, a time estimate measured on this machine), and whether a spec and its inputs are sound."""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, field

from ganrm_bench.harness.diagnostics.monitor import heldout_warnings
from ganrm_bench.harness.diagnostics.overoptimisation import monitor_nodes
from ganrm_bench.harness.engine.builder import Builder
from ganrm_bench.harness.engine.cells import build_cells
from ganrm_bench.harness.engine.estimate import Estimate, estimate
from ganrm_bench.harness.engine.nodes import Node
from ganrm_bench.harness.engine.plan import Assumed, PlanEntry, PlanPeek, plan_totals
from ganrm_bench.harness.engine.plan import plan as plan_nodes
from ganrm_bench.harness.engine.preflight import InputCheck, require_inputs
from ganrm_bench.harness.errors import UserError
from ganrm_bench.harness.runtime.context import Context
from ganrm_bench.harness.spec.schema import Spec

MONITOR = "(monitor)"  # the user of what the monitor pass computes: no row of the table


@dataclass
class SeedPlan:
    """What a run of one seed would do."""

    seed: int
    entries: list[PlanEntry]
    users: dict[str, set[str]]  # artifact key -> the rows that need it
    totals: dict[str, int]  # work summed over the plan (shared items once)
    estimate: Estimate | None = None
    estimate_seconds: float | None = None  # how long timing the estimate took
    assumed: list[Assumed] = field(default_factory=list)  # sizes of absent data the counts rest on

    @property
    def cached(self) -> int:
        return sum(e.status == "cached" for e in self.entries)

    @property
    def to_compute(self) -> int:
        return sum(e.status == "compute" for e in self.entries)


def plan(spec: Spec, ctx: Context, *, seeds: list[int] | None = None, with_estimate: bool = False,
         assume_prompts: int | None = None) -> list[SeedPlan]:
    """The artifact graph of each seed: cached or to compute, the work it takes, the rows it serves.
    Nothing is written. `with_estimate` times a few units of each kind of work on `ctx.device`
    (random-init real-size models) and estimates the uncached work's total. Sources whose data are
    not here count as the size their entry declares (`expected_count`), prompt sets declaring none
    as `assume_prompts`; `SeedPlan.assumed` lists each size so assumed."""
    out = []
    peek = PlanPeek(ctx, assume_prompts)
    for seed in seeds or spec.seeds:
        cells = build_cells(spec, Builder(spec, ctx, seed, planning=True))
        rows: dict[str, Node] = {}
        for c in cells:
            rows.setdefault(c.row, c.node.inputs["samples"])
        monitor = monitor_nodes(rows)  # what the monitor pass computes itself (KL along training)
        entries = plan_nodes([c.node for c in cells] + monitor, ctx, peek)
        users: dict[str, set[str]] = defaultdict(set)
        for c in cells:
            for n in c.node.walk():
                users[n.key].add(c.row)
        for m in monitor:
            for n in m.walk():
                users[n.key].add(MONITOR)
        p = SeedPlan(seed, entries, dict(users), plan_totals(entries))
        if with_estimate:
            t0 = time.time()
            p.estimate = estimate(entries, ctx, peek)
            p.estimate_seconds = time.time() - t0
        p.assumed = sorted(peek.assumed.values())
        out.append(p)
    return out


@dataclass
class Validation:
    """What `validate` found: the inputs opened (with `inputs`), and warnings that do not fail it."""

    spec: Spec
    inputs: list[InputCheck] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    skipped: str | None = None  # why the held-out check could not run


def validate(spec: Spec, ctx: Context, *, inputs: bool = False) -> Validation:
    """A spec already passed schema and plugin checks when it was opened; with `inputs`, also open
    every local input the rows still need (one error naming every unreadable file); then warn
    about cells judged by the row's own selector (not held-out)."""
    result = Validation(spec)
    if inputs:
        result.inputs = require_inputs(spec, ctx)
    try:
        result.warnings = heldout_warnings(spec, ctx)
    except UserError as exc:  # the schema is fine; the graph needs more (e.g. assets): say so, don't fail
        result.skipped = str(exc)
    return result
