"""Tables of a run's results: one value per cell (pooled over seeds when there are several), Markdown
and booktabs LaTeX beside the paper's numbers, with paired Δs, † and the conventions underneath."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from ganrm_bench.harness.diagnostics.monitor import run_extras_markdown
from ganrm_bench.harness.errors import UserError
from ganrm_bench.harness.report.cross_reward import render_cross_reward_markdown
from ganrm_bench.harness.report.overoptimisation import render_overoptimisation_markdown
from ganrm_bench.harness.report.rundir import load_cross_reward, load_overoptimisation
from ganrm_bench.harness.spec.schema import Spec


def _run_extras(run_dir: Path, spec: Spec) -> str:
    """The report-card and diagnostics sections under the table (harness.diagnostics.monitor), or ""."""
    try:
        extras = run_extras_markdown(run_dir, spec)
        curves = load_overoptimisation(run_dir)
        if curves is not None:
            extras = "\n".join(p for p in (extras, render_overoptimisation_markdown(curves[1], spec)) if p)
        extras = "\n".join(p for p in (extras, render_cross_reward_markdown(load_cross_reward(run_dir))) if p)
    except Exception:  # noqa: BLE001 — a broken extra never loses the table
        return ""
    return "\n" + extras if extras else ""


@dataclass
class CellValue:
    value: float
    ci_low: float
    ci_high: float
    paper: float | None
    ok: bool | None  # within the paper band
    best: bool = False
    delta: float = math.nan  # paired Δ vs the comparison row
    delta_ci_low: float = math.nan
    delta_ci_high: float = math.nan
    conditional: bool = False  # a trained row shown from one seed: its intervals leave out retraining (‡)

    @property
    def significant(self) -> bool:
        return bool(self.delta_ci_low > 0 or self.delta_ci_high < 0)


DELTA_FIELDS = ("compare_to", "delta", "delta_ci_low", "delta_ci_high", "p_value", "paired", "delta_method", "delta_basis")


_NO_DELTA = {"compare_to": None, "delta": math.nan, "delta_ci_low": math.nan, "delta_ci_high": math.nan, "p_value": math.nan,
             "paired": None, "delta_method": None, "delta_basis": None}

CONDITIONAL_MARK = "‡"
CONDITIONAL_NOTE = ("‡ trained row from one seed: its intervals are conditional on this trained model (another seed retrains it; "
                    "with two or more seeds the Δ interval includes training variance).")


def aggregate(results: pd.DataFrame) -> pd.DataFrame:
    """One value per (row, column): the pooled cell (the union of every seed's samples) when the run
    has several seeds, else the single seed's cell. Results of old runs without pooled cells fall
    back to the mean over seeds with a t-interval (scope "across-seeds")."""
    from scipy import stats

    cols = ["row", "column", "value", "ci_low", "ci_high", "seeds", "scope", "direction", "convention", "trained", *DELTA_FIELDS]
    if results.empty:
        return pd.DataFrame(columns=cols)
    results = results.copy()
    if "scope" not in results:
        results["scope"] = "seed"
    for f, empty in {**_NO_DELTA, "trained": None}.items():
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
                        "convention": r["convention"], "trained": r["trained"], **{f: r[f] for f in DELTA_FIELDS}})
            continue
        v = g["value"].to_numpy(dtype=float)
        half = stats.t.ppf(0.975, len(v) - 1) * v.std(ddof=1) / math.sqrt(len(v))
        out.append({"row": row, "column": col, "value": v.mean(), "ci_low": v.mean() - half, "ci_high": v.mean() + half,
                    "seeds": len(v), "scope": "across-seeds", "direction": g["direction"].iloc[0],
                    "convention": g["convention"].iloc[0], "trained": g["trained"].iloc[0], **_NO_DELTA})
    return pd.DataFrame(out, columns=cols)


def table_cells(results: pd.DataFrame, spec: Spec) -> dict[tuple[str, str], CellValue]:
    agg = aggregate(results)
    cells: dict[tuple[str, str], CellValue] = {}
    for r in agg.itertuples():
        paper = spec.reference.values.get(r.row, {}).get(r.column)
        tol = spec.reference.band.get(r.column)
        ok = None if paper is None or tol is None else abs(r.value - paper) <= tol
        one_seed_trained = r.scope == "seed" and str(r.trained).lower() in ("true", "1")
        cells[(r.row, r.column)] = CellValue(r.value, r.ci_low, r.ci_high, paper, ok, delta=_num(r.delta),
                                             delta_ci_low=_num(r.delta_ci_low), delta_ci_high=_num(r.delta_ci_high),
                                             conditional=one_seed_trained or r.delta_basis == "conditional")
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
    two_level = "delta_basis" in results and bool((results["delta_basis"] == "seeds").any())
    trained = ("; rows with a trained model, over several seeds: a t interval across the seeds' paired Δs (training variance "
               "included)") if two_level else ""
    return (f"{shown} {what}{' / '.join(labels)} on the same prompts and seeds (per-sample metrics: bootstrap over prompts; "
            f"FID-like metrics: delete-one-block jackknife over prompt blocks{trained}), with its 95% CI; † the CI excludes 0.")


def _fmt(x: float, digits: int) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def _digits(values: list[float]) -> int:
    finite = [abs(v) for v in values if v is not None and not math.isnan(v)]
    m = max(finite, default=1.0)
    return 2 if m >= 10 else 3 if m >= 0.1 else 4


def _layout(spec: Spec, results: pd.DataFrame):
    rows = spec.table.rows or []
    cols = [c for c in spec.table.columns or []]
    labels_r = {r: spec.label_of(r) for r in rows}
    labels_c = {c: (spec.metrics[c].label or c) if c in spec.metrics else c for c in cols}
    direction = dict(zip(results["column"], results["direction"])) if not results.empty else {}
    group_of = {r: g for r in rows if (g := spec.group_of(r)) is not None}
    conventions = dict(zip(results["column"], results["convention"])) if not results.empty else {}
    return rows, cols, labels_r, labels_c, direction, group_of, conventions


def _delta_text(cell: CellValue | None, digits: int) -> str:
    if cell is None or not math.isfinite(cell.delta):
        return "–"
    text = f"{cell.delta:+.{digits}f}"
    if math.isfinite(cell.delta_ci_low):
        text += f" [{cell.delta_ci_low:+.{digits}f}, {cell.delta_ci_high:+.{digits}f}]"
    return text + ("†" if cell.significant else "") + (CONDITIONAL_MARK if cell.conditional else "")


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
    header = ([spec.table.group_header] if spec.table.groups else []) + [spec.table.row_header or "method"] + extra + metric_heads
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
            line.append(_markdown_cell(cell, digits[c], spec, own=(r, c) in own, paper=has_paper))
            if c in with_delta:
                line.append(_delta_text(cell, digits[c]))
        lines.append("| " + " | ".join(line) + " |")
    lines.append("")
    lines += _markdown_notes(results, spec, cols, labels_c, conventions, own)
    return "\n".join(lines) + "\n"


def _markdown_cell(cell: CellValue, digits: int, spec: Spec, *, own: bool, paper: bool) -> str:
    """value (bold when best) ± half-width, † (mark mode), * (not held-out), the paper's value with ✓/✗."""
    text = _fmt(cell.value, digits)
    if cell.best:
        text = f"**{text}**"
    if not math.isnan(cell.ci_low):
        text += f" ± {_fmt((cell.ci_high - cell.ci_low) / 2, digits)}"
    if spec.table.delta == "mark" and cell.significant:
        text += "†"
    if spec.table.delta != "column" and cell.conditional:
        text += CONDITIONAL_MARK
    if own:
        text += "*"
    if paper and cell.paper is not None:
        mark = "" if cell.ok is None else (" ✓" if cell.ok else " ✗")
        text += f" (paper {_fmt(cell.paper, digits)}{mark})"
    return text


def _markdown_notes(results: pd.DataFrame, spec: Spec, cols: list[str], labels_c: dict[str, str], conventions: dict[str, str],
                    own: set[tuple[str, str]]) -> list[str]:
    """The lines under a Markdown table: CI and seeds, what Δ means, conventions, the paper, notes."""
    agg = aggregate(results)
    seeds = sorted(int(x) for x in set(results["seed"]) if int(x) >= 0) if not results.empty else spec.seeds
    pooled = bool((agg["scope"] == "pooled").any()) if not agg.empty else False
    seed_text = f"seeds: {seeds}" + (" (pooled: each cell over the union of the seeds' samples)" if pooled else "")
    lines = [f"± is the half-width of the {_ci_note(spec, cols)} CI; bold is the best per column"
             f"{' and group' if spec.table.groups else ''}; {seed_text}."]
    note = comparison_note(results, spec)
    if note:
        lines.append(f"- {note}")
    for c in cols:
        if c in conventions:
            lines.append(f"- {labels_c[c]}: {conventions[c]}")
    if spec.reference.values:
        band = ", ".join(f"{labels_c.get(c, c)} ±{t}" for c, t in spec.reference.band.items())
        lines.append(f"- paper: {spec.reference.source or 'reference values'}" + (f"; ✓/✗ within the paper band ({band})" if band else ""))
    lines += [f"- note: {n}" for n in spec.reference.notes]
    if own:
        lines.append("- \\* not held-out: the column's metric is the scorer (same fingerprint) that selected or trained "
                     "this row, so it is not evidence for the row.")
    if any(c.conditional for c in table_cells(results, spec).values()):
        lines.append(f"- {CONDITIONAL_NOTE}")
    return lines


_LATEX_ESCAPES = {"&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\^{}", "\\": r"\textbackslash{}",
                  "≥": r"$\geq$", "≤": r"$\leq$", "×": r"$\times$", "·": r"$\cdot$", "±": r"$\pm$", "↑": r"$\uparrow$",
                  "↓": r"$\downarrow$", "√": r"$\surd$", "–": "--", "—": "---", "≈": r"$\approx$", "α": r"$\alpha$", "β": r"$\beta$",
                  "Δ": r"$\Delta$", "†": r"$^\dagger$", "‡": r"$^\ddagger$", "³": r"$^3$", "²": r"$^2$"}


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
    lead = ([latex_escape(spec.table.group_header)] if spec.table.groups else []) + [latex_escape(spec.table.row_header or "Method")] + [latex_escape(e) for e in extra]
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
            any_paper = any_paper or cell.paper is not None
            line.append(_latex_cell(cell, digits[c], spec, own=(r, c) in own))
            if c in with_delta:
                line.append(latex_escape(_delta_text(cell, digits[c])))
        out.append(" & ".join(line) + " \\\\")
    parts = _latex_caption(results, spec, cols, labels_c, conventions, own, any_paper)
    out += [
        "\\bottomrule", "\\end{tabular}",
        f"\\caption{{{' '.join(parts)}}}",
        f"\\label{{tab:{latex_escape(spec.name)}}}", "\\end{table}",
    ]
    return "\n".join(out) + "\n"


def _latex_cell(cell: CellValue, digits: int, spec: Spec, *, own: bool) -> str:
    text = _fmt(cell.value, digits)
    if cell.best:
        text = f"\\textbf{{{text}}}"
    if not math.isnan(cell.ci_low):
        text += f"{{\\scriptsize$\\pm${_fmt((cell.ci_high - cell.ci_low) / 2, digits)}}}"
    if spec.table.delta == "mark" and cell.significant:
        text += "$^\\dagger$"
    if spec.table.delta != "column" and cell.conditional:
        text += "$^\\ddagger$"
    if own:
        text += "$^*$"
    if cell.paper is not None:
        mark = "" if cell.ok is None else ("\\,\\checkmark" if cell.ok else "\\,$\\times$")
        text += f" {{\\scriptsize({_fmt(cell.paper, digits)}{mark})}}"
    return text


def _latex_caption(results: pd.DataFrame, spec: Spec, cols: list[str], labels_c: dict[str, str], conventions: dict[str, str],
                   own: set[tuple[str, str]], any_paper: bool) -> list[str]:
    caption = (spec.table.caption or spec.table.title or spec.name).rstrip(".")
    parts = [f"{latex_escape(caption)}.", f"Ours ($\\pm$ half-width of the {latex_escape(_ci_note(spec, cols))} CI)"
             + (", with the paper's value in parentheses (\\checkmark{} within the paper band)." if any_paper else ".")]
    note = comparison_note(results, spec)
    if note:
        parts.append(latex_escape(note))
    if own:
        parts.append("$^*$ not held-out: the column's metric is the scorer that selected or trained the row.")
    if any(c.conditional for c in table_cells(results, spec).values()):
        parts.append(latex_escape(CONDITIONAL_NOTE))
    footnote = "; ".join(f"{labels_c[c]}: {conventions[c]}" for c in cols if c in conventions)
    if footnote:
        parts.append(latex_escape(footnote))
    return parts


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
