"""Run directories and rendered tables: results as parquet/CSV/JSON + run.json, Markdown and
booktabs LaTeX beside the paper's numbers, and the regression check a lab's CI runs."""

from __future__ import annotations

import json
import math
import platform
import subprocess
import sys
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ganrm_bench.harness.errors import UserError
from ganrm_bench.harness.spec import Spec

TRACKED_PACKAGES = (
    "ganrm-bench", "torch", "torchvision", "diffusers", "transformers", "open_clip_torch", "accelerate", "peft",
    "torchmetrics", "clean-fid", "lpips", "numpy", "pandas", "pydantic", "scikit-learn", "image-reward", "hpsv2",
)


def git_sha(cwd: Path | None = None) -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd or Path(__file__).parent, capture_output=True, text=True, timeout=5)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def package_versions() -> dict[str, str]:
    out = {}
    for name in TRACKED_PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


def write_run(run_dir: Path, spec: Spec, spec_path: str, results: pd.DataFrame, info: dict[str, Any],
              samples: dict[str, Any] | None = None, records: pd.DataFrame | None = None) -> None:
    """Write a run's results and provenance, then its rendered tables, plots and galleries."""
    run_dir.mkdir(parents=True, exist_ok=True)
    results.to_parquet(run_dir / "results.parquet", index=False)
    results.to_csv(run_dir / "results.csv", index=False)
    results.to_json(run_dir / "results.json", orient="records", indent=1)
    (run_dir / "spec.json").write_text(json.dumps(spec.model_dump(mode="json"), indent=1))
    run_info = {
        "spec": spec.name, "spec_path": spec_path, "spec_hash": spec.digest, "seeds": spec.seeds, "git_sha": git_sha(),
        "python": sys.version.split()[0], "platform": platform.platform(), "packages": package_versions(),
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **info,
    }
    (run_dir / "run.json").write_text(json.dumps(run_info, indent=1, default=str))
    (run_dir / "table.md").write_text(render_markdown(results, spec))
    (run_dir / "table.tex").write_text(render_latex(results, spec))
    if records is not None and not records.empty:
        records.to_csv(run_dir / "records.csv", index=False)
    from ganrm_bench.harness.figures import write_galleries, write_metric_plots

    write_metric_plots(run_dir, spec, results)
    if samples:
        write_galleries(run_dir, spec, samples)


def load_run(run_dir: Path) -> tuple[pd.DataFrame, Spec]:
    run_dir = Path(run_dir)
    if not (run_dir / "results.csv").exists():
        raise UserError(f"{run_dir}: not a run directory (no results.csv)", hint="give the folder a `ganrm-bench run` wrote")
    results = pd.read_parquet(run_dir / "results.parquet") if (run_dir / "results.parquet").exists() else pd.read_csv(run_dir / "results.csv")
    spec = Spec.model_validate(json.loads((run_dir / "spec.json").read_text()))
    return results, spec


# ---------------------------------------------------------------------------------------------
# Aggregation and rendering.


@dataclass
class CellValue:
    value: float
    ci_low: float
    ci_high: float
    paper: float | None
    ok: bool | None  # within the paper's tolerance
    best: bool = False


def aggregate(results: pd.DataFrame) -> pd.DataFrame:
    """Mean over seeds per (row, column); the CI is the single seed's, or a t-interval over seeds."""
    from scipy import stats

    def agg(g: pd.DataFrame) -> pd.Series:
        v = g["value"].to_numpy(dtype=float)
        if len(v) == 1:
            lo, hi = g["ci_low"].iloc[0], g["ci_high"].iloc[0]
        else:
            half = stats.t.ppf(0.975, len(v) - 1) * v.std(ddof=1) / math.sqrt(len(v))
            lo, hi = v.mean() - half, v.mean() + half
        return pd.Series({"value": v.mean(), "ci_low": lo, "ci_high": hi, "seeds": len(v), "direction": g["direction"].iloc[0],
                          "convention": g["convention"].iloc[0]})

    if results.empty:
        return pd.DataFrame(columns=["row", "column", "value", "ci_low", "ci_high", "seeds", "direction", "convention"])
    return results.groupby(["row", "column"], sort=False).apply(agg, include_groups=False).reset_index()


def table_cells(results: pd.DataFrame, spec: Spec) -> dict[tuple[str, str], CellValue]:
    agg = aggregate(results)
    cells: dict[tuple[str, str], CellValue] = {}
    for r in agg.itertuples():
        paper = spec.reference.values.get(r.row, {}).get(r.column)
        tol = spec.reference.tolerance.get(r.column)
        ok = None if paper is None or tol is None else abs(r.value - paper) <= tol
        cells[(r.row, r.column)] = CellValue(r.value, r.ci_low, r.ci_high, paper, ok)
    # best per column (within each row group), by the metric's direction
    directions = dict(zip(agg["column"], agg["direction"]))
    groups = [g.rows for g in spec.table.groups] if spec.table.groups else [spec.table.rows or []]
    for col, direction in directions.items():
        for rows in groups:
            present = [(cells[(r, col)].value, r) for r in rows if (r, col) in cells and not math.isnan(cells[(r, col)].value)]
            if len(present) > 1:
                best = (max if direction == "higher" else min)(present)[0]
                for v, r in present:
                    cells[(r, col)].best = v == best
    return cells


def _fmt(x: float, digits: int) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def _digits(values: list[float]) -> int:
    finite = [abs(v) for v in values if v is not None and not math.isnan(v)]
    m = max(finite, default=1.0)
    return 2 if m >= 10 else 3 if m >= 0.1 else 4


def _layout(spec: Spec, results: pd.DataFrame):
    rows = spec.table.rows or []
    cols = [c for c in spec.table.columns or []]
    labels_r = {r: (spec.methods[r].label or r) if r in spec.methods else r for r in rows}
    labels_c = {c: (spec.metrics[c].label or c) if c in spec.metrics else c for c in cols}
    direction = dict(zip(results["column"], results["direction"])) if not results.empty else {}
    group_of = {r: g.name for g in (spec.table.groups or []) for r in g.rows}
    conventions = dict(zip(results["column"], results["convention"])) if not results.empty else {}
    return rows, cols, labels_r, labels_c, direction, group_of, conventions


def render_markdown(results: pd.DataFrame, spec: Spec) -> str:
    cells = table_cells(results, spec)
    rows, cols, labels_r, labels_c, direction, group_of, conventions = _layout(spec, results)
    arrow = {"higher": "↑", "lower": "↓"}
    extra = list(spec.table.extra_columns)
    header = ([spec.table.group_header] if spec.table.groups else []) + ["method"] + extra + [f"{labels_c[c]} {arrow.get(direction.get(c, ''), '')}".strip() for c in cols]
    lines = [f"### {spec.table.title or spec.name}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    digits = {c: _digits([cells[(r, c)].value for r in rows if (r, c) in cells]) for c in cols}
    has_paper = bool(spec.reference.values)
    for r in rows:
        line = ([group_of.get(r, "")] if spec.table.groups else []) + [labels_r[r]] + [spec.table.extra_columns[e].get(r, "") for e in extra]
        for c in cols:
            cell = cells.get((r, c))
            if cell is None:
                line.append("(failed)" if not results.empty else "–")
                continue
            text = _fmt(cell.value, digits[c])
            if cell.best:
                text = f"**{text}**"
            if not math.isnan(cell.ci_low):
                text += f" ± {_fmt((cell.ci_high - cell.ci_low) / 2, digits[c])}"
            if has_paper and cell.paper is not None:
                mark = "" if cell.ok is None else (" ✓" if cell.ok else " ✗")
                text += f" (paper {_fmt(cell.paper, digits[c])}{mark})"
            line.append(text)
        lines.append("| " + " | ".join(line) + " |")
    lines.append("")
    seeds = sorted(set(results["seed"])) if not results.empty else spec.seeds
    lines.append(f"± is the half-width of the 95% CI; bold is the best per column{' and group' if spec.table.groups else ''}; seeds: {seeds}.")
    for c in cols:
        if c in conventions:
            lines.append(f"- {labels_c[c]}: {conventions[c]}")
    if spec.reference.values:
        tol = ", ".join(f"{labels_c.get(c, c)} ±{t}" for c, t in spec.reference.tolerance.items())
        lines.append(f"- paper: {spec.reference.source or 'reference values'}" + (f"; ✓/✗ within tolerance ({tol})" if tol else ""))
    lines += [f"- note: {n}" for n in spec.reference.notes]
    return "\n".join(lines) + "\n"


_LATEX_ESCAPES = {"&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\^{}", "\\": r"\textbackslash{}",
                  "≥": r"$\geq$", "≤": r"$\leq$", "×": r"$\times$", "·": r"$\cdot$", "±": r"$\pm$", "↑": r"$\uparrow$",
                  "↓": r"$\downarrow$", "√": r"$\surd$", "–": "--", "—": "---", "≈": r"$\approx$", "α": r"$\alpha$", "β": r"$\beta$"}


def latex_escape(text: str) -> str:
    return "".join(_LATEX_ESCAPES.get(ch, ch) for ch in str(text))


def render_latex(results: pd.DataFrame, spec: Spec) -> str:
    """A booktabs table: ↑/↓ per metric, best per column in bold, the paper's value with ✓/✗."""
    cells = table_cells(results, spec)
    rows, cols, labels_r, labels_c, direction, group_of, conventions = _layout(spec, results)
    arrow = {"higher": r"$\uparrow$", "lower": r"$\downarrow$"}
    extra = list(spec.table.extra_columns)
    lead = ([latex_escape(spec.table.group_header)] if spec.table.groups else []) + ["Method"] + [latex_escape(e) for e in extra]
    head = lead + [f"{latex_escape(labels_c[c])}{arrow.get(direction.get(c, ''), '')}" for c in cols]
    digits = {c: _digits([cells[(r, c)].value for r in rows if (r, c) in cells]) for c in cols}
    out = [
        "% Generated by ganrm-bench. Needs \\usepackage{booktabs,amssymb}.",
        "\\begin{table}[t]", "\\centering", "\\small",
        f"\\begin{{tabular}}{{{'l' * len(lead)}{'c' * len(cols)}}}", "\\toprule", " & ".join(head) + " \\\\", "\\midrule",
    ]
    previous_group = None
    for r in rows:
        group = group_of.get(r)
        if spec.table.groups and group != previous_group and previous_group is not None:
            out.append("\\midrule")
        first_col = [latex_escape(group) if group != previous_group else ""] if spec.table.groups else []
        previous_group = group
        line = first_col + [latex_escape(labels_r[r])] + [latex_escape(spec.table.extra_columns[e].get(r, "")) for e in extra]
        for c in cols:
            cell = cells.get((r, c))
            if cell is None:
                line.append("--")
                continue
            text = _fmt(cell.value, digits[c])
            if cell.best:
                text = f"\\textbf{{{text}}}"
            if cell.paper is not None:
                mark = "" if cell.ok is None else ("\\,\\checkmark" if cell.ok else "\\,$\\times$")
                text += f" {{\\scriptsize({_fmt(cell.paper, digits[c])}{mark})}}"
            line.append(text)
        out.append(" & ".join(line) + " \\\\")
    caption = spec.table.caption or spec.table.title or spec.name
    footnote = "; ".join(f"{labels_c[c]}: {conventions[c]}" for c in cols if c in conventions)
    out += [
        "\\bottomrule", "\\end{tabular}",
        f"\\caption{{{latex_escape(caption.rstrip('.'))}. Ours, with the paper's value in parentheses "
        f"(\\checkmark{{}} within tolerance). {latex_escape(footnote)}}}",
        f"\\label{{tab:{latex_escape(spec.name)}}}", "\\end{table}",
    ]
    return "\n".join(out) + "\n"


TABLE_FORMATS = ("markdown", "latex", "csv")


def render_table(results: pd.DataFrame, spec: Spec, format: str = "markdown") -> str:
    """A run's table as Markdown, booktabs LaTeX, or the long results as CSV."""
    if format == "markdown":
        return render_markdown(results, spec)
    if format == "latex":
        return render_latex(results, spec)
    if format == "csv":
        return results.to_csv(index=False)
    raise UserError(f"format {format!r}: choose markdown, latex or csv")


# ---------------------------------------------------------------------------------------------
# Regression check.


def read_results_file(path: Path) -> pd.DataFrame:
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: baseline file not found")
    if path.is_dir():
        return load_run(path)[0]
    readers = {".csv": pd.read_csv, ".json": pd.read_json, ".parquet": pd.read_parquet}
    if path.suffix not in readers:
        raise UserError(f"{path}: baseline must be a .csv, .json or .parquet results file, or a run directory")
    df = readers[path.suffix](path)
    missing = {"row", "column", "value", "direction"} - set(df.columns)
    if missing:
        raise UserError(f"{path}: baseline lacks the column(s) {sorted(missing)}", hint="use the results.csv a run wrote")
    return df


def check(results: pd.DataFrame, baseline: pd.DataFrame, tolerance: dict[str, float]) -> list[str]:
    """Regressions of `results` against `baseline`: a value worse than the baseline by more than the
    column's tolerance; for columns without one, worse than the baseline's CI bound. Cells missing
    from the results count as regressions."""
    ours = aggregate(results).set_index(["row", "column"])
    base = aggregate(baseline).set_index(["row", "column"])
    problems = []
    for (row, col), b in base.iterrows():
        if (row, col) not in ours.index:
            problems.append(f"{row} × {col}: missing from the run (baseline {b.value:.4g})")
            continue
        v = ours.loc[(row, col), "value"]
        sign = 1 if b.direction == "higher" else -1
        worse_by = sign * (b.value - v)
        if col in tolerance:
            limit, why = tolerance[col], f"tolerance {tolerance[col]:g}"
        elif not (math.isnan(b.ci_low) or math.isnan(b.ci_high)):
            limit, why = abs(b.value - (b.ci_low if sign > 0 else b.ci_high)), "the baseline's CI"
        else:
            limit, why = 1e-9 * max(1.0, abs(b.value)), "no tolerance or CI: exact"
        if np.isnan(v) or worse_by > limit:
            arrow = "↑" if sign > 0 else "↓"
            problems.append(f"{row} × {col}{arrow}: {v:.4g} vs baseline {b.value:.4g} (worse by {worse_by:.4g} > {why})")
    return problems
