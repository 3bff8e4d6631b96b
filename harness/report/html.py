"""`<run>/report.html`: one self-contained page of a run that a browser (or a phone) opens, in the
order a reader decides: first which rows beat their comparison row on which metric (a line per
metric and a forest plot of the paired Δs), then the table (sortable, Δ and † in their own
columns), the figures, the galleries, the human study, the reward-model report cards and the
over-optimisation monitor as tables, records and provenance. Figures are inline SVG drawn from
the results (text stays text), images are embedded as base64, nothing is fetched; the table comes
from the same cells as the Markdown table, so their † agree."""

from __future__ import annotations

import base64
import io
import json
import logging
import math
from pathlib import Path
from typing import Any

import pandas as pd

from ganrm_bench.harness.plugins.base import load_media
from ganrm_bench.harness.report import cross_reward, overoptimisation
from ganrm_bench.harness.report.figures import ARROW, Plot, compute_plot, figure_svg, metric_label, metric_plots, row_label
from ganrm_bench.harness.report.forest import delta_points, forest_plots
from ganrm_bench.harness.report.rundir import load_run
from ganrm_bench.harness.report.samples import SAMPLES_FILE, read_samples_manifest
from ganrm_bench.harness.report.sections import cards_context, diagnostics_context, records_context
from ganrm_bench.harness.report.tables import CONDITIONAL_NOTE, _digits, _fmt, _layout, comparison_note, not_heldout_cells, table_cells
from ganrm_bench.harness.spec.schema import Spec

log = logging.getLogger("ganrm_bench")

GALLERY_PROMPTS = 8  # prompts per gallery row (the same prompts in every row)
THUMB_PX = 256  # longest side of an embedded gallery image
TEMPLATES = Path(__file__).parent / "templates"


def _data_uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def _png_file(path: Path) -> str:
    return _data_uri(path.read_bytes(), "image/png")


def _thumbnail(path: str | Path) -> str | None:
    """A gallery image as a data URI: small images as PNG scaled up (nearest) so pixels stay
    crisp; large ones as JPEG no bigger than THUMB_PX. None for a file that does not decode (the
    gallery shows a dash; the report is still written)."""
    from PIL import Image

    try:
        im = load_media(path)
    except Exception as exc:  # any decoder's error: one unreadable sample must not cost the whole report
        log.warning("gallery: cannot read %s (%s)", path, type(exc).__name__)
        return None
    if not isinstance(im, Image.Image):  # a video: its first frame
        im = Image.fromarray(im[0])
    buf = io.BytesIO()
    if max(im.size) <= 64:
        im.save(buf, "PNG", optimize=True)
        return _data_uri(buf.getvalue(), "image/png")
    im.thumbnail((THUMB_PX, THUMB_PX))
    im.save(buf, "JPEG", quality=85)
    return _data_uri(buf.getvalue(), "image/jpeg")


def jinja_env():
    import jinja2

    return jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True, trim_blocks=True, lstrip_blocks=True)


# ---------------------------------------------------------------------------------------------
# The decision view and the table.


def decision_context(results: pd.DataFrame, spec: Spec, forests: list[Plot]) -> list[dict[str, Any]]:
    """Per metric with Δs: which rows are better, worse, or not distinguishable from their
    comparison row, and its forest plot."""
    by_name = {p.name: p for p in forests}
    out = []
    for col in spec.table.columns or []:
        plot = by_name.get(f"forest_{col}")
        if plot is None:
            continue
        points = delta_points(results, spec, col)
        against = list(dict.fromkeys(p.against for p in points))
        groups = {v: [p.label for p in points if p.verdict == v] for v in ("better", "worse", "no difference detected", "no interval")}
        direction = points[0].direction if points else ""
        out.append({"metric": metric_label(spec, col), "direction": direction, "against": " / ".join(against),
                    "groups": [(v, labels) for v, labels in groups.items() if labels], "svg": figure_svg(plot.fig, plot.name),
                    "caption": plot.caption, "name": plot.name})
    return out


def _value_cell(cell, digits: int, own: bool) -> dict[str, Any]:
    ci = None if math.isnan(cell.ci_low) else f"[{_fmt(cell.ci_low, digits)}, {_fmt(cell.ci_high, digits)}]"
    return {"value": _fmt(cell.value, digits), "sort": cell.value, "best": cell.best, "ci": ci, "own": own,
            "paper": None if cell.paper is None else _fmt(cell.paper, digits), "ok": cell.ok}


def _delta_cell(cell, digits: int, direction: str, against: str, several: bool) -> dict[str, Any]:
    """Δ [CI] with its † (the CI excludes 0, as in table.md) and whether that is better or worse."""
    if cell is None or not math.isfinite(cell.delta):
        return {"delta": None}
    verdict = None if not cell.significant else "better" if (cell.delta > 0) == (direction == "higher") else "worse"
    ci = f"[{cell.delta_ci_low:+.{digits}f}, {cell.delta_ci_high:+.{digits}f}]" if math.isfinite(cell.delta_ci_low) else None
    return {"delta": f"{cell.delta:+.{digits}f}", "sort": cell.delta, "ci": ci, "dagger": cell.significant,
            "verdict": verdict, "against": against if several else None, "conditional": cell.conditional}


def table_context(results: pd.DataFrame, spec: Spec) -> dict[str, Any]:
    cells = table_cells(results, spec)
    own = not_heldout_cells(results)
    rows, cols, labels_r, labels_c, direction, group_of, conventions = _layout(spec, results)
    against = _against(results, spec)
    show_delta = spec.table.delta != "none"
    delta_cols = [c for c in cols if show_delta and any(k[1] == c and math.isfinite(v.delta) for k, v in cells.items())]
    digits = {c: _digits([cells[(r, c)].value for r in rows if (r, c) in cells]) for c in cols}
    several = len(set(against.values())) > 1
    head = []
    for c in cols:
        head.append({"label": f"{labels_c[c]} {ARROW.get(direction.get(c, ''), '')}".strip(), "kind": "value"})
        if c in delta_cols:
            vs = next(iter(set(against.values()))) if not several else "comparison row"
            head.append({"label": f"Δ {labels_c[c]} vs {vs}", "kind": "delta"})
    body = []
    for r in rows:
        out_cells = []
        for c in cols:
            cell = cells.get((r, c))
            out_cells.append(_value_cell(cell, digits[c], (r, c) in own) if cell else {"missing": "(failed)" if not results.empty else "–"})
            if c in delta_cols:
                out_cells.append(_delta_cell(cell, digits[c], direction.get(c, ""), against.get(r, ""), several))
        body.append({"group": group_of.get(r, ""), "label": labels_r[r], "extra": [spec.table.extra_columns[e].get(r, "") for e in spec.table.extra_columns],
                     "cells": out_cells})
    band = ", ".join(f"{labels_c.get(c, c)} ±{t}" for c, t in spec.reference.band.items())
    return {
        "title": spec.table.title or spec.name, "grouped": bool(spec.table.groups), "group_header": spec.table.group_header,
        "extra": list(spec.table.extra_columns), "head": head, "rows": body,
        "conventions": [(labels_c[c], conventions[c]) for c in cols if c in conventions],
        "paper": spec.reference.source or ("reference values" if spec.reference.values else None), "band": band,
        "conditional": CONDITIONAL_NOTE if any(c.conditional for c in cells.values()) else None,
        "notes": list(spec.reference.notes), "delta_note": comparison_note(results, spec) if delta_cols else None, "own": bool(own),
        "seeds": sorted(set(int(s) for s in results["seed"] if int(s) >= 0)) if not results.empty else spec.seeds,
        "pooled": bool(not results.empty and "scope" in results and (results["scope"] == "pooled").any()),
    }


def _against(results: pd.DataFrame, spec: Spec) -> dict[str, str]:
    """row -> its comparison row's label, as the results record it."""
    if results.empty or "compare_to" not in results:
        return {}
    part = results.dropna(subset=["compare_to"])
    return {str(r): row_label(spec, str(a)) for r, a in zip(part["row"], part["compare_to"]) if str(a) not in ("", "nan", "None")}


# ---------------------------------------------------------------------------------------------
# Galleries, figures, the whole page.


def gallery_context(run_dir: Path, spec) -> dict[str, Any]:
    """Rows of the same prompts (and seeds) from samples.json; else the PNG galleries the run wrote."""
    if (run_dir / SAMPLES_FILE).exists():
        try:
            samples = read_samples_manifest(run_dir)
        except (OSError, KeyError, ValueError):
            samples = {}
        rows = [r for r in (spec.table.rows or []) if r in samples]
        if rows:
            prompt_ids = list(dict.fromkeys(it.prompt_id for it in samples[rows[0]] if it.prompt_id))[:GALLERY_PROMPTS]
            prompts = {it.prompt_id: it.prompt for it in samples[rows[0]]}
            out_rows = []
            for row in rows:
                by_prompt = {it.prompt_id: it for it in samples[row]}
                imgs = []
                for p in prompt_ids:
                    it = by_prompt.get(p)
                    src = _thumbnail(it.path) if it is not None and Path(it.path).exists() else None
                    imgs.append({"src": src, "alt": f"{row} {p}"} if src else None)
                out_rows.append({"label": row_label(spec, row), "images": imgs})
            if any(i for r in out_rows for i in r["images"]):
                return {"prompts": [prompts.get(p) or p for p in prompt_ids], "rows": out_rows, "pngs": []}
    pngs = ([run_dir / "gallery.png"] if (run_dir / "gallery.png").exists() else []) + sorted((run_dir / "gallery").glob("*.png"))
    return {"prompts": [], "rows": [], "pngs": [{"name": p.stem, "src": _png_file(p)} for p in pngs]}


#: captions of the PNGs that diagnostics leave in figures/, from the run directory and its spec (others: their file name)
FIGURE_CAPTIONS = {"overoptimisation": overoptimisation.figure_caption,
                   "cross_reward": lambda run_dir, spec: cross_reward.figure_caption(run_dir)}


def figures_context(run_dir: Path, plots: list[Plot], spec: Spec | None = None) -> list[dict[str, Any]]:
    """The drawn figures (not the forest plots, shown first) as SVG, then any other PNG the run
    left in figures/ (e.g. the monitor's rounds.png), full width."""
    drawn = {p.name for p in plots}
    out = [{"name": p.name, "svg": figure_svg(p.fig, p.name), "caption": p.caption, "wide": p.wide}
           for p in plots if not p.name.startswith("forest_")]
    for path in sorted((run_dir / "figures").glob("*.png")):
        if path.stem not in drawn and not path.stem.startswith("forest_"):
            caption = _png_caption(path, run_dir, spec)
            out.append({"name": path.stem, "src": _png_file(path), "caption": caption, "wide": True})
    return out


def _png_caption(path: Path, run_dir: Path, spec: Spec | None) -> str:
    """FIGURE_CAPTIONS' caption of a diagnostics PNG; its file name when it has none or the run's
    CSVs behind it cannot be read (a caption never breaks the report)."""
    make = FIGURE_CAPTIONS.get(path.stem)
    if make is not None:
        try:
            return make(run_dir, spec)
        except Exception:  # noqa: BLE001
            log.debug("caption of %s failed", path, exc_info=True)
    return f"{path.stem} (figures/{path.name})"


def _flatten(obj: Any, prefix: str = "") -> list[tuple[str, str]]:
    if isinstance(obj, dict) and obj:
        return [kv for k, v in obj.items() for kv in _flatten(v, f"{prefix}{k}.")]
    text = json.dumps(obj, default=str) if isinstance(obj, (list, tuple)) else str(obj)
    return [(prefix.rstrip("."), text if len(text) <= 300 else text[:300] + "…")]


def report_plots(spec: Spec, results: pd.DataFrame) -> list[Plot]:
    """Every figure the report draws from the results: forest plots, per-metric plots, compute."""
    compute = compute_plot(spec, results)
    return forest_plots(spec, results) + metric_plots(spec, results) + ([compute] if compute else [])


def render_html(run_dir: Path, plots: list[Plot] | None = None) -> str:
    """The report page of a run directory, as one string (`plots`: already drawn `report_plots`)."""
    run_dir = Path(run_dir)
    results, spec = load_run(run_dir)
    plots = report_plots(spec, results) if plots is None else plots
    run_info = json.loads((run_dir / "run.json").read_text()) if (run_dir / "run.json").exists() else {}
    packages = run_info.pop("packages", {}) or {}
    failures = run_info.pop("failures", []) or []
    human = json.loads((run_dir / "human.json").read_text()) if (run_dir / "human.json").exists() else None
    labels = {r: spec.row_name(r) for r in spec.methods}
    metric_labels = {c: metric_label(spec, c) for c in spec.metrics}
    return jinja_env().get_template("report.html.j2").render(
        spec=spec, table=table_context(results, spec), decision=decision_context(results, spec, plots),
        figures=figures_context(run_dir, plots, spec), gallery=gallery_context(run_dir, spec),
        records=records_context(run_dir / "records.csv"), diagnostics=diagnostics_context(run_dir, labels, metric_labels),
        cards=cards_context(run_dir, labels), human=human, provenance=_flatten(run_info), packages=sorted(packages.items()),
        failures=failures, labels=labels,
    )


def write_html_report(run_dir: Path, plots: list[Plot] | None = None) -> Path:
    out = Path(run_dir) / "report.html"
    out.write_text(render_html(run_dir, plots), encoding="utf-8")
    return out
