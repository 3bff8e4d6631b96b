"""Forest plots of paired differences: per metric, every row's Δ against its comparison row with
its CI, a line at zero, the significant ones filled (green when better, red when worse): what a
reader needs to decide "is B better than A?".

Nothing is computed here: the Δs, their intervals and the test that made them are read from the
results' columns (`compare_to`, `delta`, `delta_ci_low`, `delta_ci_high`, `delta_method`, `p_value`)
by the scope rule of `tables.aggregate` (the pooled cell when the run has one), so the plot, the
table's † and table.md always agree. `forest_figure` draws any list of `DeltaPoint`s (the comparison
page of several runs uses it too)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ganrm_bench.harness.report.figures import (
    ARROW,
    BETTER,
    HALF_WIDTH_IN,
    NEUTRAL,
    WORSE,
    Plot,
    digits_for,
    figure_style,
    metric_label,
    new_figure,
    row_label,
    samples_text,
    save_png,
    seeds_text,
)
from ganrm_bench.harness.report.tables import aggregate, not_heldout_cells
from ganrm_bench.harness.spec.schema import Spec


@dataclass
class DeltaPoint:
    """One row of a forest plot: a paired (or unpaired) difference and its interval."""

    label: str
    delta: float
    ci_low: float
    ci_high: float
    direction: str  # "higher" or "lower" is better
    against: str = ""  # the comparison's label
    method: str = ""  # the test that made the interval
    p_value: float = math.nan

    @property
    def significant(self) -> bool:
        return bool(self.ci_low > 0 or self.ci_high < 0)  # as tables.CellValue: the CI excludes 0

    @property
    def verdict(self) -> str:
        """"better", "worse" (the CI excludes 0 on that side) or "no difference detected"."""
        if not self.significant:
            return "no difference detected" if math.isfinite(self.ci_low) else "no interval"
        return "better" if (self.delta > 0) == (self.direction == "higher") else "worse"

    def text(self, digits: int) -> str:
        ci = f" [{self.ci_low:+.{digits}f}, {self.ci_high:+.{digits}f}]" if math.isfinite(self.ci_low) else ""
        return f"{self.delta:+.{digits}f}{ci}"


def delta_table(results: pd.DataFrame, spec: Spec) -> pd.DataFrame:
    """The cells with a Δ, in table order: aggregate's row per (row, column) with finite `delta`."""
    agg = aggregate(results)
    if agg.empty:
        return agg
    agg = agg[pd.to_numeric(agg["delta"], errors="coerce").notna()].copy()
    order = {r: i for i, r in enumerate(spec.table.rows or [])}
    agg["_order"] = agg["row"].map(order).fillna(len(order))
    return agg.sort_values("_order", kind="stable").drop(columns="_order")


def _float(x) -> float:
    try:
        return float(x)
    except (TypeError, ValueError):
        return math.nan


def _text(x) -> str:
    return "" if x is None or (isinstance(x, float) and math.isnan(x)) else str(x)


def delta_points(results: pd.DataFrame, spec: Spec, column: str) -> list[DeltaPoint]:
    """The column's Δs in table order; a row whose metric is its own selector is marked * (not held-out)."""
    part = delta_table(results, spec)
    part = part[part["column"] == column] if not part.empty else part
    own = not_heldout_cells(results)
    return [DeltaPoint(row_label(spec, r.row) + ("*" if (r.row, column) in own else ""), _float(r.delta), _float(r.delta_ci_low), _float(r.delta_ci_high), str(r.direction),
                       row_label(spec, _text(r.compare_to), beside=r.row), _text(r.delta_method), _float(r.p_value)) for r in part.itertuples()]


def forest_figure(points: list[DeltaPoint], *, metric: str, title: str, width: float = HALF_WIDTH_IN):
    """A horizontal forest plot: one line per point (top to bottom), its Δ and CI, zero marked,
    the numbers written beside each line, significant points filled in their verdict's colour."""
    direction = points[0].direction
    digits = digits_for([abs(p.delta) for p in points] + [abs(p.ci_high) for p in points])
    y = np.arange(len(points))[::-1]
    with figure_style():
        fig, axes = new_figure(width, 1.25 + 0.45 * len(points))
        ax = axes[0][0]
        ax.axvline(0.0, color="#222", lw=1.2, zorder=1)
        for yi, p in zip(y, points):
            colour = {"better": BETTER, "worse": WORSE}.get(p.verdict, NEUTRAL)
            if math.isfinite(p.ci_low):
                ax.plot([p.ci_low, p.ci_high], [yi, yi], color=colour, lw=2.2, solid_capstyle="butt", zorder=2)
            ax.plot([p.delta], [yi], "D" if p.significant else "o", ms=8, color=colour, mfc=colour if p.significant else "white",
                    mew=1.8, zorder=3)
            ax.text(1.02, yi, p.text(digits) + ("†" if p.significant else ""), transform=ax.get_yaxis_transform(),
                    va="center", ha="left", color=colour if p.significant else "#333")
        ax.set_yticks(y, [p.label for p in points])
        ax.set_ylim(-0.7, len(points) - 0.3)
        lows = [p.ci_low if math.isfinite(p.ci_low) else p.delta for p in points] + [0.0]
        highs = [p.ci_high if math.isfinite(p.ci_high) else p.delta for p in points] + [0.0]
        pad = 0.06 * ((max(highs) - min(lows)) or 1.0)
        ax.set_xlim(min(lows) - pad, max(highs) + pad)
        better = {"higher": "better →", "lower": "← better"}.get(direction, "")
        ax.set_xlabel(f"Δ {metric} {ARROW.get(direction, '')}   ({better})".replace("  ()", ""))
        ax.set_title(title)
        ax.grid(True, axis="x", alpha=0.3)
        fig.tight_layout()
    return fig


def _against(points: list[DeltaPoint]) -> str:
    names = list(dict.fromkeys(p.against for p in points if p.against))
    return names[0] if len(names) == 1 else "its comparison row"


def forest_caption(points: list[DeltaPoint], metric: str, scope: str) -> str:
    tests = "; ".join(dict.fromkeys(p.method for p in points if p.method)) or "not recorded"
    direction = points[0].direction
    return (f"Paired difference Δ = method − {_against(points)} in {metric}"
            f"{f' ({direction} is better)' if direction in ARROW else ''}, with its 95% CI. Filled, with †: the CI excludes 0 "
            f"(green better, red worse); hollow: no difference detected. Test: {tests}. {scope}."
            + (" * not held-out: the metric is the scorer that selected or trained the row." if any(p.label.endswith("*") for p in points) else ""))


def forest_plots(spec: Spec, results: pd.DataFrame) -> list[Plot]:
    """`forest_<column>`: one forest plot per metric column that has Δs (none when the spec's
    table shows no Δ, `table.delta: none`)."""
    if spec.table.delta == "none" or results.empty or "delta" not in results:
        return []
    agg = aggregate(results)
    plots = []
    for col in spec.table.columns or []:
        points = delta_points(results, spec, col)
        if not points:
            continue
        if len({p.against for p in points}) > 1:  # several comparison rows (groups): name each one
            for p in points:
                p.label = f"{p.label} vs {p.against}"
        label = metric_label(spec, col)
        rows = list(dict.fromkeys(delta_table(results, spec)["row"]))
        scope = f"{seeds_text(results, agg).capitalize()}; {samples_text(spec, results, agg, rows, col)}"
        fig = forest_figure(points, metric=label, title=f"{label}: Δ vs {_against(points)}")
        plots.append(Plot(f"forest_{col}", fig, forest_caption(points, label, scope)))
    return plots


def write_forest_plots(run_dir: Path, spec: Spec, results: pd.DataFrame) -> list[Path]:
    """figures/forest_<column>.png, for papers: the report's decision view."""
    return [save_png(p, Path(run_dir) / "figures") for p in forest_plots(spec, results)]
