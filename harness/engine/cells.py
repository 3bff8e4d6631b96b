"""The cells of a spec's table: (row, column) → the metric node over the row's samples, and the row
each one is compared with."""

from __future__ import annotations

from dataclasses import dataclass

from ganrm_bench.harness.engine.builder import Builder
from ganrm_bench.harness.engine.nodes import Node
from ganrm_bench.harness.spec.schema import Spec


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
