"""Several runs side by side: a new checkpoint against last week's, or many labs' models on one
spec. One line per (run, method), one column per metric, each cell's value with its CI and its
difference Δ to a reference cell of the first run given (the same method there, or one row named
with `against`).

Δ is paired (`harness.stats.paired.difference` on the runs' `units.parquet`: per-prompt bootstrap
or block jackknife) when both cells have units on the same prompts — the rule `check` uses — else
unpaired from the two CIs, and every Δ says which. A run that differs from the reference run in
what can change numbers is marked: its spec, seeds, prompts or numerics class
(`harness.runtime.numerics.numerics_mismatch`). Runs that share no metric column with the
reference cannot be compared: one line says so."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from ganrm_bench.harness.errors import UserError
from ganrm_bench.harness.report.figures import metric_label, row_label
from ganrm_bench.harness.report.rundir import load_run, load_units
from ganrm_bench.harness.report.tables import aggregate
from ganrm_bench.harness.runtime.numerics import numerics_mismatch
from ganrm_bench.harness.spec.schema import Spec
from ganrm_bench.harness.stats.matching import unpaired
from ganrm_bench.harness.stats.paired import Difference, Units, difference

FRAME_COLUMNS = ["run", "row", "method", "column", "metric", "value", "ci_low", "ci_high", "direction", "vs_run", "vs_row",
                 "delta", "delta_ci_low", "delta_ci_high", "p_value", "paired", "delta_method", "significant", "marks"]


@dataclass
class RunEntry:
    """A run directory as the comparison reads it."""

    label: str
    dir: Path
    spec: Spec
    results: pd.DataFrame
    units: pd.DataFrame | None
    info: dict[str, Any]
    cells: pd.DataFrame = field(default_factory=pd.DataFrame)  # aggregate(): one value per (row, column)
    marks: list[str] = field(default_factory=list)  # how it differs from the reference run

    @property
    def seeds(self) -> list[int]:
        return sorted({int(s) for s in self.results["seed"] if int(s) >= 0}) if not self.results.empty else list(self.spec.seeds)

    @property
    def rows(self) -> list[str]:
        present = set(self.cells["row"]) if not self.cells.empty else set()
        return [r for r in (self.spec.table.rows or []) if r in present] or sorted(present)


@dataclass
class Comparison:
    """The long frame (one line per run, method and metric) and what it was made from."""

    runs: list[RunEntry]
    frame: pd.DataFrame
    columns: list[str]  # metric columns, in the reference run's order
    against: str | None
    sort_by: str

    @property
    def reference(self) -> RunEntry:
        return self.runs[0]

    def column_label(self, col: str) -> str:
        for e in self.runs:
            if col in e.spec.metrics:
                return metric_label(e.spec, col)
        return col

    def direction(self, col: str) -> str:
        part = self.frame[self.frame["column"] == col]["direction"]
        return str(part.iloc[0]) if len(part) else ""

    def leaderboard(self) -> list[tuple[str, str]]:
        """(run, row) pairs, best first by `sort_by` in its direction; rows without it last."""
        part = self.frame[self.frame["column"] == self.sort_by].dropna(subset=["value"])
        ascending = self.direction(self.sort_by) == "lower"
        ranked = list(zip(*[part.sort_values("value", ascending=ascending, kind="stable")[c] for c in ("run", "row")]))
        everything = list(dict.fromkeys(zip(self.frame["run"], self.frame["row"])))
        return ranked + [k for k in everything if k not in set(ranked)]

    def wide(self) -> pd.DataFrame:
        """Rows (run, method) in leaderboard order, columns the metrics' values and Δs."""
        value = self.frame.pivot_table(index=["run", "row"], columns="column", values="value", aggfunc="first", sort=False)
        delta = self.frame.pivot_table(index=["run", "row"], columns="column", values="delta", aggfunc="first", sort=False)
        delta.columns = [f"Δ {c}" for c in delta.columns]
        out = value[[c for c in self.columns if c in value.columns]].join(delta, how="left")
        return out.reindex(pd.MultiIndex.from_tuples(self.leaderboard(), names=["run", "row"]))


# ---------------------------------------------------------------------------------------------
# Reading and checking the runs.


def _labels(dirs: list[Path]) -> list[str]:
    names = [d.name for d in dirs]
    if len(set(names)) == len(names):
        return names
    longer = [f"{d.parent.name}/{d.name}" for d in dirs]
    return longer if len(set(longer)) == len(longer) else [f"{n} (#{i + 1})" for i, n in enumerate(names)]


def load_entries(dirs: list[str | Path]) -> list[RunEntry]:
    paths = [Path(d) for d in dirs]
    if not paths:
        raise UserError("no run to compare", hint="give one or more run directories")
    seen: dict[Path, str] = {}
    for p in paths:
        key = p.resolve()
        if key in seen:
            raise UserError(f"{p}: given twice (also as {seen[key]})", hint="name each run directory once")
        seen[key] = str(p)
    entries = []
    for label, p in zip(_labels(paths), paths):
        results, spec = load_run(p)
        info_file = p / "run.json"
        info = json.loads(info_file.read_text()) if info_file.is_file() else {}
        entries.append(RunEntry(label, p, spec, results, load_units(p), info, aggregate(results)))
    return entries


def _prompt_sets(spec: Spec) -> dict[str, Any]:
    used = {m.prompts for m in spec.methods.values() if m.prompts}
    return {name: spec.prompts[name].model_dump(mode="json") for name in sorted(used) if name in spec.prompts}


def run_marks(ref: RunEntry, e: RunEntry) -> list[str]:
    """What in `e` can make its numbers differ from the reference run's, besides the methods."""
    marks = []
    if e.spec.name != ref.spec.name:
        marks.append(f"spec {e.spec.name} (reference: {ref.spec.name})")
    elif e.spec.digest != ref.spec.digest:
        marks.append(f"spec edited (hash {e.spec.digest} vs {ref.spec.digest})")
    if e.seeds != ref.seeds:
        marks.append(f"seeds {e.seeds} (reference: {ref.seeds})")
    if _prompt_sets(e.spec) != _prompt_sets(ref.spec):
        marks.append("other prompts than the reference run")
    diffs = numerics_mismatch(ref.info, e.info)
    if diffs:
        marks.append("numerics differ (" + "; ".join(diffs) + ")")
    return marks


def _shared_columns(ref: RunEntry, e: RunEntry) -> list[str]:
    mine = set(e.cells["column"]) if not e.cells.empty else set()
    cols = [c for c in (ref.spec.table.columns or sorted(set(ref.cells["column"]))) if c in mine]
    if not cols:
        theirs = sorted(set(ref.cells["column"])) if not ref.cells.empty else []
        raise UserError(f"{e.dir}: no metric column in common with {ref.dir} ({', '.join(sorted(mine)) or 'none'} vs "
                        f"{', '.join(theirs) or 'none'})", hint="compare runs of the same spec, or of specs that share metric columns")
    return cols


# ---------------------------------------------------------------------------------------------
# Cells and their differences.


def _cell(e: RunEntry, row: str, col: str) -> pd.Series | None:
    part = e.cells[(e.cells["row"] == row) & (e.cells["column"] == col)]
    return part.iloc[0] if len(part) else None


def _units(e: RunEntry, row: str, col: str, scope: str) -> Units | None:
    """The units behind the cell aggregate() chose: the pooled cell's, or the single seed's."""
    if e.units is None or e.units.empty or scope not in ("pooled", "seed"):
        return None
    res = e.results[(e.results["row"] == row) & (e.results["column"] == col)]
    if "scope" in res:
        res = res[res["scope"] == scope] if scope == "pooled" else res[res["scope"] != "pooled"]
    if len(res) != 1:
        return None
    seed = int(res["seed"].iloc[0])
    part = e.units[(e.units["row"] == row) & (e.units["column"] == col) & (e.units["seed"] == seed)]
    return Units.from_rows(part) if len(part) else None


def cell_difference(a: RunEntry, row_a: str, b: RunEntry, row_b: str, col: str) -> Difference | None:
    """(a, row_a) − (b, row_b) in column `col`: paired on units of the same prompts, else from the
    two CIs; None when a cell is missing or the two columns measure by different conventions."""
    ca, cb = _cell(a, row_a, col), _cell(b, row_b, col)
    if ca is None or cb is None:
        return None
    if str(ca.get("convention")) != str(cb.get("convention")):
        return None
    ua, ub = _units(a, row_a, col, str(ca["scope"])), _units(b, row_b, col, str(cb["scope"]))
    if ua is not None and ub is not None and ua.kind == ub.kind:
        return difference(ua, ub)
    return unpaired(ca, cb, 0.95)


def _reference_row(e: RunEntry, ref: RunEntry, row: str, against: str | None) -> str | None:
    if against is not None:
        return None if (e is ref and row == against) else against
    if e is ref:
        return None
    return row if row in set(ref.cells["row"]) else None


def _delta_fields(d: Difference | None, why_not: str | None) -> dict[str, Any]:
    if d is None or not math.isfinite(d.estimate):
        return {"delta": math.nan, "delta_ci_low": math.nan, "delta_ci_high": math.nan, "p_value": math.nan, "paired": None,
                "delta_method": d.method if d is not None else why_not, "significant": False}
    return {"delta": d.estimate, "delta_ci_low": d.ci_low, "delta_ci_high": d.ci_high, "p_value": d.p_value, "paired": bool(d.paired),
            "delta_method": d.method, "significant": d.excludes_zero()}


def _lines(e: RunEntry, ref: RunEntry, cols: list[str], against: str | None) -> list[dict[str, Any]]:
    out = []
    for row in e.rows:
        vs = _reference_row(e, ref, row, against)
        for col in cols:
            c = _cell(e, row, col)
            if c is None:
                continue
            d = cell_difference(e, row, ref, vs, col) if vs is not None else None
            why_not = ("not compared: the two cells measure by different conventions"
                       if vs is not None and d is None and _cell(ref, vs, col) is not None else None)
            out.append({
                "run": e.label, "row": row, "method": row_label(e.spec, row), "column": col, "metric": metric_label(e.spec, col),
                "value": float(c["value"]), "ci_low": float(c["ci_low"]), "ci_high": float(c["ci_high"]), "direction": str(c["direction"]),
                "vs_run": ref.label if vs is not None else None, "vs_row": vs, **_delta_fields(d, why_not), "marks": "; ".join(e.marks),
            })
    return out


def compare_runs(dirs: list[str | Path], *, against: str | None = None, sort_by: str | None = None) -> Comparison:
    """The comparison of run directories (the first is the reference): see the module docstring."""
    entries = load_entries(dirs)
    ref = entries[0]
    cols = list(ref.spec.table.columns or sorted(set(ref.cells["column"])))
    for e in entries[1:]:
        _shared_columns(ref, e)
        e.marks = run_marks(ref, e)
    if against is not None and against not in set(ref.cells["row"]):
        raise UserError(f"--against {against!r}: the reference run {ref.dir} has no row {against!r}; rows: {', '.join(ref.rows)}")
    if sort_by is not None and sort_by not in cols:
        raise UserError(f"--sort {sort_by!r}: not a metric column of {ref.dir}; columns: {', '.join(cols)}")
    lines = [line for e in entries for line in _lines(e, ref, [c for c in cols if c in set(e.cells["column"])], against)]
    frame = pd.DataFrame(lines, columns=FRAME_COLUMNS)
    return Comparison(entries, frame, cols, against, sort_by or cols[0])
