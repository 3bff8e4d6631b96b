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
              samples: dict[str, Any] | None = None, records: pd.DataFrame | None = None,
              units: pd.DataFrame | None = None, monitor: Any = None) -> None:
    """Write a run's results and provenance, then its rendered tables, plots and galleries.
    `units.parquet` holds what each cell's CI resamples (per-prompt sums, leave-one-block-out
    values): what a paired `check` against this run needs (harness.stats). `monitor`
    (harness.monitor) adds scorers/<name>.json report cards and diagnostics.csv; a failure there is
    recorded in run.json (`diagnostics_errors`), never raised."""
    run_dir.mkdir(parents=True, exist_ok=True)
    diagnostics_errors = list(getattr(monitor, "errors", []) or [])
    if monitor is not None:
        try:
            from ganrm_bench.harness.scorecard import write_cards

            write_cards(run_dir, monitor.cards)
            if not monitor.diagnostics.empty:
                monitor.diagnostics.to_csv(run_dir / "diagnostics.csv", index=False)
            from ganrm_bench.harness.monitor import write_round_figure

            write_round_figure(run_dir, spec, results, records)
        except Exception as exc:  # the table matters more than its diagnostics
            diagnostics_errors.append(f"writing report cards / diagnostics: {type(exc).__name__}: {exc}")
    if units is not None and not units.empty:
        units.to_parquet(run_dir / "units.parquet", index=False)
    results.to_parquet(run_dir / "results.parquet", index=False)
    results.to_csv(run_dir / "results.csv", index=False)
    results.to_json(run_dir / "results.json", orient="records", indent=1)
    (run_dir / "spec.json").write_text(json.dumps(spec.model_dump(mode="json"), indent=1))
    run_info = {
        "spec": spec.name, "spec_path": spec_path, "spec_hash": spec.digest, "seeds": spec.seeds, "git_sha": git_sha(),
        "python": sys.version.split()[0], "platform": platform.platform(), "packages": package_versions(),
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **info,
    }
    if monitor is not None:
        run_info["diagnostics_errors"] = diagnostics_errors
    (run_dir / "run.json").write_text(json.dumps(run_info, indent=1, default=str))
    (run_dir / "table.md").write_text(render_markdown(results, spec) + _run_extras(run_dir, spec))
    (run_dir / "table.tex").write_text(render_latex(results, spec))
    if records is not None and not records.empty:
        records.to_csv(run_dir / "records.csv", index=False)
    from ganrm_bench.harness.figures import write_compute_curves, write_galleries, write_metric_plots

    write_metric_plots(run_dir, spec, results)
    write_compute_curves(run_dir, spec, results)
    if samples:
        write_galleries(run_dir, spec, samples)
        from ganrm_bench.harness.study.samples import write_samples_manifest

        write_samples_manifest(run_dir, samples, info.get("cache"), int(results["seed"].iloc[0]) if not results.empty else spec.seeds[0])
    from ganrm_bench.harness.html_report import write_html_report

    write_html_report(run_dir)


def _run_extras(run_dir: Path, spec: Spec) -> str:
    """The report-card and diagnostics sections under the table (harness.monitor), or ""."""
    try:
        from ganrm_bench.harness.monitor import run_extras_markdown

        extras = run_extras_markdown(run_dir, spec)
    except Exception:  # noqa: BLE001 — a broken extra never loses the table
        return ""
    return "\n" + extras if extras else ""


def load_run(run_dir: Path) -> tuple[pd.DataFrame, Spec]:
    run_dir = Path(run_dir)
    if not (run_dir / "results.csv").exists():
        raise UserError(f"{run_dir}: not a run directory (no results.csv)", hint="give the folder a `ganrm-bench run` wrote")
    results = pd.read_parquet(run_dir / "results.parquet") if (run_dir / "results.parquet").exists() else pd.read_csv(run_dir / "results.csv")
    spec = Spec.model_validate(json.loads((run_dir / "spec.json").read_text()))
    return results, spec


def load_units(run_dir: Path) -> pd.DataFrame | None:
    """A run directory's (or baseline folder's) per-cell units, or None when it has none."""
    run_dir = Path(run_dir)
    if (run_dir / "units.parquet").is_file():
        return pd.read_parquet(run_dir / "units.parquet")
    if (run_dir / "units.csv").is_file():
        return pd.read_csv(run_dir / "units.csv", dtype={"unit": str, "prompts_key": str})
    return None


BASELINE_FILES = ("results.csv", "spec.json", "run.json")


def write_baseline(run_dir: Path, out: Path) -> list[Path]:
    """A committed baseline: what a paired `check` needs from a run, in diffable text (results.csv,
    units.csv: per-prompt sums or leave-one-block-out values per cell, spec.json, run.json)."""
    import shutil

    run_dir, out = Path(run_dir), Path(out)
    load_run(run_dir)  # a clear error when it is not a run directory
    units = load_units(run_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name in BASELINE_FILES:
        if (run_dir / name).exists():
            shutil.copyfile(run_dir / name, out / name)
            written.append(out / name)
    if units is not None:
        units.to_csv(out / "units.csv", index=False)  # full precision: an identical re-run pairs to exactly 0
        written.append(out / "units.csv")
    return written


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
    delta: float = math.nan  # paired Δ vs the comparison row
    delta_ci_low: float = math.nan
    delta_ci_high: float = math.nan

    @property
    def significant(self) -> bool:
        return bool(self.delta_ci_low > 0 or self.delta_ci_high < 0)


DELTA_FIELDS = ("compare_to", "delta", "delta_ci_low", "delta_ci_high", "p_value", "paired", "delta_method")
_NO_DELTA = {"compare_to": None, "delta": math.nan, "delta_ci_low": math.nan, "delta_ci_high": math.nan, "p_value": math.nan,
             "paired": None, "delta_method": None}


def aggregate(results: pd.DataFrame) -> pd.DataFrame:
    """One value per (row, column): the pooled cell (the union of every seed's samples) when the run
    has several seeds, else the single seed's cell. Results of old runs without pooled cells fall
    back to the mean over seeds with a t-interval (scope "across-seeds")."""
    from scipy import stats

    cols = ["row", "column", "value", "ci_low", "ci_high", "seeds", "scope", "direction", "convention", *DELTA_FIELDS]
    if results.empty:
        return pd.DataFrame(columns=cols)
    results = results.copy()
    if "scope" not in results:
        results["scope"] = "seed"
    for f, empty in _NO_DELTA.items():
        if f not in results:
            results[f] = empty
    out = []
    for (row, col), g in results.groupby(["row", "column"], sort=False):
        seeds = int((g["scope"] != "pooled").sum())
        pooled = g[g["scope"] == "pooled"]
        if len(pooled) or len(g) == 1:
            r = (pooled if len(pooled) else g).iloc[0]
            out.append({"row": row, "column": col, "value": r["value"], "ci_low": r["ci_low"], "ci_high": r["ci_high"],
                        "seeds": max(seeds, 1), "scope": "pooled" if len(pooled) else "seed", "direction": r["direction"],
                        "convention": r["convention"], **{f: r[f] for f in DELTA_FIELDS}})
            continue
        v = g["value"].to_numpy(dtype=float)
        half = stats.t.ppf(0.975, len(v) - 1) * v.std(ddof=1) / math.sqrt(len(v))
        out.append({"row": row, "column": col, "value": v.mean(), "ci_low": v.mean() - half, "ci_high": v.mean() + half,
                    "seeds": len(v), "scope": "across-seeds", "direction": g["direction"].iloc[0],
                    "convention": g["convention"].iloc[0], **_NO_DELTA})
    return pd.DataFrame(out, columns=cols)


def table_cells(results: pd.DataFrame, spec: Spec) -> dict[tuple[str, str], CellValue]:
    agg = aggregate(results)
    cells: dict[tuple[str, str], CellValue] = {}
    for r in agg.itertuples():
        paper = spec.reference.values.get(r.row, {}).get(r.column)
        tol = spec.reference.tolerance.get(r.column)
        ok = None if paper is None or tol is None else abs(r.value - paper) <= tol
        cells[(r.row, r.column)] = CellValue(r.value, r.ci_low, r.ci_high, paper, ok, delta=_num(r.delta),
                                             delta_ci_low=_num(r.delta_ci_low), delta_ci_high=_num(r.delta_ci_high))
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


def _num(x: Any) -> float:
    try:
        return float(x)
    except (TypeError, ValueError):
        return math.nan


def ci_levels(spec: Spec, cols: list[str]) -> dict[str, float]:
    """Each column's CI level, from its metric's `ci.level` (default 0.95)."""
    out = {}
    for c in cols:
        ci = spec.metrics[c].params.get("ci") if c in spec.metrics else None
        out[c] = float((ci or {}).get("level", 0.95)) if isinstance(ci, dict) else 0.95
    return out


def delta_columns(cells: dict[tuple[str, str], CellValue], spec: Spec, cols: list[str]) -> list[str]:
    """Columns that get a Δ column: those with at least one paired Δ, when the spec shows them as columns."""
    if spec.table.delta != "column":
        return []
    return [c for c in cols if any(k[1] == c and math.isfinite(v.delta) for k, v in cells.items())]


def comparison_note(results: pd.DataFrame, spec: Spec) -> str | None:
    """The line under a table that says what Δ and † mean, or None when no cell has a Δ."""
    if spec.table.delta == "none" or results.empty or "delta" not in results or not results["delta"].notna().any():
        return None
    against = sorted({str(a) for a in results["compare_to"].dropna().unique()})
    labels = [(spec.methods[a].label or a) if a in spec.methods else a for a in against]
    shown = "Δ is" if spec.table.delta == "column" else "† marks"
    what = ("the paired difference to " if spec.table.delta == "column" else "a paired difference to ")
    return (f"{shown} {what}{' / '.join(labels)} on the same prompts and seeds (per-sample metrics: bootstrap over prompts; "
            f"FID-like metrics: delete-one-block jackknife over prompt blocks), with its 95% CI; † the CI excludes 0.")


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


def _delta_text(cell: CellValue | None, digits: int) -> str:
    if cell is None or not math.isfinite(cell.delta):
        return "–"
    text = f"{cell.delta:+.{digits}f}"
    if math.isfinite(cell.delta_ci_low):
        text += f" [{cell.delta_ci_low:+.{digits}f}, {cell.delta_ci_high:+.{digits}f}]"
    return text + ("†" if cell.significant else "")


def _ci_note(spec: Spec, cols: list[str]) -> str:
    levels = sorted(set(ci_levels(spec, cols).values())) or [0.95]
    return "/".join(f"{lv:.0%}" for lv in levels)


def not_heldout_cells(results: pd.DataFrame) -> set[tuple[str, str]]:
    """(row, column) cells computed by the scorer that selected or trained the row (not held-out)."""
    if results.empty or "heldout" not in results:
        return set()
    marked = results[results["heldout"].astype(str).isin(["False", "false", "0"])]
    return set(zip(marked["row"], marked["column"]))


def render_markdown(results: pd.DataFrame, spec: Spec) -> str:
    cells = table_cells(results, spec)
    own = not_heldout_cells(results)
    rows, cols, labels_r, labels_c, direction, group_of, conventions = _layout(spec, results)
    arrow = {"higher": "↑", "lower": "↓"}
    extra = list(spec.table.extra_columns)
    with_delta = delta_columns(cells, spec, cols)
    metric_heads = []
    for c in cols:
        metric_heads.append(f"{labels_c[c]} {arrow.get(direction.get(c, ''), '')}".strip())
        if c in with_delta:
            metric_heads.append(f"Δ {labels_c[c]}")
    header = ([spec.table.group_header] if spec.table.groups else []) + ["method"] + extra + metric_heads
    lines = [f"### {spec.table.title or spec.name}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    digits = {c: _digits([cells[(r, c)].value for r in rows if (r, c) in cells]) for c in cols}
    has_paper = bool(spec.reference.values)
    for r in rows:
        line = ([group_of.get(r, "")] if spec.table.groups else []) + [labels_r[r]] + [spec.table.extra_columns[e].get(r, "") for e in extra]
        for c in cols:
            cell = cells.get((r, c))
            if cell is None:
                line.append("(failed)" if not results.empty else "–")
                if c in with_delta:
                    line.append("–")
                continue
            text = _fmt(cell.value, digits[c])
            if cell.best:
                text = f"**{text}**"
            if not math.isnan(cell.ci_low):
                text += f" ± {_fmt((cell.ci_high - cell.ci_low) / 2, digits[c])}"
            if spec.table.delta == "mark" and cell.significant:
                text += "†"
            if (r, c) in own:
                text += "*"
            if has_paper and cell.paper is not None:
                mark = "" if cell.ok is None else (" ✓" if cell.ok else " ✗")
                text += f" (paper {_fmt(cell.paper, digits[c])}{mark})"
            line.append(text)
            if c in with_delta:
                line.append(_delta_text(cell, digits[c]))
        lines.append("| " + " | ".join(line) + " |")
    lines.append("")
    agg = aggregate(results)
    seeds = sorted(int(x) for x in set(results["seed"]) if int(x) >= 0) if not results.empty else spec.seeds
    pooled = bool((agg["scope"] == "pooled").any()) if not agg.empty else False
    seed_text = f"seeds: {seeds}" + (" (pooled: each cell over the union of the seeds' samples)" if pooled else "")
    lines.append(f"± is the half-width of the {_ci_note(spec, cols)} CI; bold is the best per column"
                 f"{' and group' if spec.table.groups else ''}; {seed_text}.")
    note = comparison_note(results, spec)
    if note:
        lines.append(f"- {note}")
    for c in cols:
        if c in conventions:
            lines.append(f"- {labels_c[c]}: {conventions[c]}")
    if spec.reference.values:
        tol = ", ".join(f"{labels_c.get(c, c)} ±{t}" for c, t in spec.reference.tolerance.items())
        lines.append(f"- paper: {spec.reference.source or 'reference values'}" + (f"; ✓/✗ within tolerance ({tol})" if tol else ""))
    lines += [f"- note: {n}" for n in spec.reference.notes]
    if own:
        lines.append("- \\* not held-out: the column's metric is the scorer (same fingerprint) that selected or trained "
                     "this row, so it is not evidence for the row.")
    return "\n".join(lines) + "\n"


_LATEX_ESCAPES = {"&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\^{}", "\\": r"\textbackslash{}",
                  "≥": r"$\geq$", "≤": r"$\leq$", "×": r"$\times$", "·": r"$\cdot$", "±": r"$\pm$", "↑": r"$\uparrow$",
                  "↓": r"$\downarrow$", "√": r"$\surd$", "–": "--", "—": "---", "≈": r"$\approx$", "α": r"$\alpha$", "β": r"$\beta$",
                  "Δ": r"$\Delta$", "†": r"$^\dagger$", "³": r"$^3$", "²": r"$^2$"}


def latex_escape(text: str) -> str:
    return "".join(_LATEX_ESCAPES.get(ch, ch) for ch in str(text))


def render_latex(results: pd.DataFrame, spec: Spec) -> str:
    """A booktabs table: ↑/↓ per metric, best per column in bold, ± the CI half-width, paired Δ
    columns (or † marks), and the paper's value with ✓/✗ where the spec has one."""
    cells = table_cells(results, spec)
    own = not_heldout_cells(results)
    rows, cols, labels_r, labels_c, direction, group_of, conventions = _layout(spec, results)
    arrow = {"higher": r"$\uparrow$", "lower": r"$\downarrow$"}
    extra = list(spec.table.extra_columns)
    with_delta = delta_columns(cells, spec, cols)
    lead = ([latex_escape(spec.table.group_header)] if spec.table.groups else []) + ["Method"] + [latex_escape(e) for e in extra]
    head = list(lead)
    for c in cols:
        head.append(f"{latex_escape(labels_c[c])}{arrow.get(direction.get(c, ''), '')}")
        if c in with_delta:
            head.append(f"$\\Delta$ {latex_escape(labels_c[c])}")
    digits = {c: _digits([cells[(r, c)].value for r in rows if (r, c) in cells]) for c in cols}
    out = [
        "% Generated by ganrm-bench. Needs \\usepackage{booktabs,amssymb}.",
        "\\begin{table}[t]", "\\centering", "\\small",
        f"\\begin{{tabular}}{{{'l' * len(lead)}{'c' * (len(head) - len(lead))}}}", "\\toprule", " & ".join(head) + " \\\\", "\\midrule",
    ]
    previous_group = None
    any_paper = False
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
                if c in with_delta:
                    line.append("--")
                continue
            text = _fmt(cell.value, digits[c])
            if cell.best:
                text = f"\\textbf{{{text}}}"
            if not math.isnan(cell.ci_low):
                text += f"{{\\scriptsize$\\pm${_fmt((cell.ci_high - cell.ci_low) / 2, digits[c])}}}"
            if spec.table.delta == "mark" and cell.significant:
                text += "$^\\dagger$"
            if (r, c) in own:
                text += "$^*$"
            if cell.paper is not None:
                any_paper = True
                mark = "" if cell.ok is None else ("\\,\\checkmark" if cell.ok else "\\,$\\times$")
                text += f" {{\\scriptsize({_fmt(cell.paper, digits[c])}{mark})}}"
            line.append(text)
            if c in with_delta:
                line.append(latex_escape(_delta_text(cell, digits[c])))
        out.append(" & ".join(line) + " \\\\")
    caption = (spec.table.caption or spec.table.title or spec.name).rstrip(".")
    parts = [f"{latex_escape(caption)}.", f"Ours ($\\pm$ half-width of the {latex_escape(_ci_note(spec, cols))} CI)"
             + (", with the paper's value in parentheses (\\checkmark{} within tolerance)." if any_paper else ".")]
    note = comparison_note(results, spec)
    if note:
        parts.append(latex_escape(note))
    if own:
        parts.append("$^*$ not held-out: the column's metric is the scorer that selected or trained the row.")
    footnote = "; ".join(f"{labels_c[c]}: {conventions[c]}" for c in cols if c in conventions)
    if footnote:
        parts.append(latex_escape(footnote))
    out += [
        "\\bottomrule", "\\end{tabular}",
        f"\\caption{{{' '.join(parts)}}}",
        f"\\label{{tab:{latex_escape(spec.name)}}}", "\\end{table}",
    ]
    return "\n".join(out) + "\n"


TABLE_FORMATS = ("markdown", "latex", "csv")


def render_table(results: pd.DataFrame, spec: Spec, format: str = "markdown", run_dir: Path | None = None) -> str:
    """A run's table as Markdown (with the run directory's reward-model and monitor sections, as in
    table.md, when `run_dir` is given), booktabs LaTeX, or the long results as CSV."""
    if format == "markdown":
        return render_markdown(results, spec) + (_run_extras(Path(run_dir), spec) if run_dir is not None else "")
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


def check(results: pd.DataFrame, baseline: pd.DataFrame, tolerance: dict[str, float] | None = None, **kwargs: Any) -> list[str]:
    """The failing cells of the regression gate (`harness.gate.check_against_baseline`), one line each."""
    from ganrm_bench.harness.gate import check_against_baseline

    return [c.line() for c in check_against_baseline(results, baseline, tolerance=tolerance, **kwargs).failures]
