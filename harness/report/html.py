"""`<run>/report.html`: one self-contained page of a run that a browser (or a phone) opens — the
table with CIs, paired differences and the paper's values, the figures, the galleries, records,
reward-model report cards, diagnostics, human-study results and provenance. Images are embedded as
base64, no script or style is fetched; the table comes from the same cells as the Markdown table."""

from __future__ import annotations

import base64
import io
import json
import math
from pathlib import Path
from typing import Any

import pandas as pd

from ganrm_bench.harness.plugins.base import load_media
from ganrm_bench.harness.report.rundir import load_run
from ganrm_bench.harness.report.samples import SAMPLES_FILE, read_samples_manifest
from ganrm_bench.harness.report.tables import CONDITIONAL_NOTE, _digits, _fmt, _layout, table_cells

GALLERY_PROMPTS = 8  # prompts per gallery row (the same prompts in every row)
THUMB_PX = 256  # longest side of an embedded gallery image
MAX_TABLE_ROWS = 200  # rows of records/diagnostics shown (the CSV beside the report has all)


def _data_uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def _png_file(path: Path) -> str:
    return _data_uri(path.read_bytes(), "image/png")


def _thumbnail(path: str | Path) -> str:
    """A gallery image as a data URI: small images as PNG scaled up (nearest) so pixels stay
    crisp; large ones as JPEG no bigger than THUMB_PX."""
    from PIL import Image


    im = load_media(path)
    if not isinstance(im, Image.Image):  # a video: its first frame
        im = Image.fromarray(im[0])
    buf = io.BytesIO()
    if max(im.size) <= 64:
        im.save(buf, "PNG", optimize=True)
        return _data_uri(buf.getvalue(), "image/png")
    im.thumbnail((THUMB_PX, THUMB_PX))
    im.save(buf, "JPEG", quality=85)
    return _data_uri(buf.getvalue(), "image/jpeg")


def table_context(results: pd.DataFrame, spec) -> dict[str, Any]:
    cells = table_cells(results, spec)
    rows, cols, labels_r, labels_c, direction, group_of, conventions = _layout(spec, results)
    arrow = {"higher": "↑", "lower": "↓"}
    digits = {c: _digits([cells[(r, c)].value for r in rows if (r, c) in cells]) for c in cols}
    extra = list(spec.table.extra_columns)
    body = []
    for r in rows:
        out_cells = []
        for c in cols:
            cell = cells.get((r, c))
            if cell is None:
                out_cells.append({"missing": "(failed)" if not results.empty else "–"})
                continue
            d = digits[c]
            ci = None if math.isnan(cell.ci_low) else f"[{_fmt(cell.ci_low, d)}, {_fmt(cell.ci_high, d)}]"
            has_delta = math.isfinite(cell.delta)  # the shown cell's Δ: pooled (two-level for trained rows) or one seed's
            out_cells.append({
                "value": _fmt(cell.value, d), "best": cell.best, "ci": ci,
                "paper": None if cell.paper is None else _fmt(cell.paper, d), "ok": cell.ok,
                "delta": f"{cell.delta:+.{d}f}" if has_delta else None,
                "delta_ci": f"[{cell.delta_ci_low:+.{d}f}, {cell.delta_ci_high:+.{d}f}]" if has_delta and math.isfinite(cell.delta_ci_low) else None,
                "conditional": cell.conditional,
            })
        body.append({"group": group_of.get(r, ""), "label": labels_r[r], "extra": [spec.table.extra_columns[e].get(r, "") for e in extra],
                     "cells": out_cells})
    band = ", ".join(f"{labels_c.get(c, c)} ±{t}" for c, t in spec.reference.band.items())
    return {
        "title": spec.table.title or spec.name, "grouped": bool(spec.table.groups), "group_header": spec.table.group_header,
        "extra": extra, "columns": [f"{labels_c[c]} {arrow.get(direction.get(c, ''), '')}".strip() for c in cols], "rows": body,
        "conventions": [(labels_c[c], conventions[c]) for c in cols if c in conventions],
        "paper": spec.reference.source or ("reference values" if spec.reference.values else None), "band": band,
        "notes": list(spec.reference.notes), "has_delta": any(math.isfinite(c.delta) for c in cells.values()),
        "conditional": CONDITIONAL_NOTE if any(c.conditional for c in cells.values()) else None,
        "seeds": sorted(set(int(s) for s in results["seed"])) if not results.empty else spec.seeds,
    }


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
                    imgs.append(None if it is None or not Path(it.path).exists() else {"src": _thumbnail(it.path), "alt": f"{row} {p}"})
                out_rows.append({"label": (spec.methods[row].label or row) if row in spec.methods else row, "images": imgs})
            if any(i for r in out_rows for i in r["images"]):
                return {"prompts": [prompts.get(p) or p for p in prompt_ids], "rows": out_rows, "pngs": []}
    pngs = ([run_dir / "gallery.png"] if (run_dir / "gallery.png").exists() else []) + sorted((run_dir / "gallery").glob("*.png"))
    return {"prompts": [], "rows": [], "pngs": [{"name": p.stem, "src": _png_file(p)} for p in pngs]}


def _csv_table(path: Path) -> dict[str, Any] | None:
    if not path.exists():
        return None
    df = pd.read_csv(path)
    shown = df.head(MAX_TABLE_ROWS)
    return {"name": path.name, "columns": list(df.columns), "rows": shown.astype(object).where(shown.notna(), "").values.tolist(),
            "total": len(df)}


def _flatten(obj: Any, prefix: str = "") -> list[tuple[str, str]]:
    if isinstance(obj, dict) and obj:
        return [kv for k, v in obj.items() for kv in _flatten(v, f"{prefix}{k}.")]
    text = json.dumps(obj, default=str) if isinstance(obj, (list, tuple)) else str(obj)
    return [(prefix.rstrip("."), text if len(text) <= 300 else text[:300] + "…")]


def render_html(run_dir: Path) -> str:
    """The report page of a run directory, as one string."""
    import jinja2

    run_dir = Path(run_dir)
    results, spec = load_run(run_dir)
    run_info = json.loads((run_dir / "run.json").read_text()) if (run_dir / "run.json").exists() else {}
    packages = run_info.pop("packages", {}) or {}
    failures = run_info.pop("failures", []) or []
    human = json.loads((run_dir / "human.json").read_text()) if (run_dir / "human.json").exists() else None
    cards = [{"name": p.stem, "fields": _flatten(json.loads(p.read_text()))} for p in sorted((run_dir / "scorers").glob("*.json"))]
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"), autoescape=True,
                             trim_blocks=True, lstrip_blocks=True)
    return env.get_template("report.html.j2").render(
        spec=spec, table=table_context(results, spec),
        figures=[{"name": p.stem, "src": _png_file(p)} for p in sorted((run_dir / "figures").glob("*.png"))],
        gallery=gallery_context(run_dir, spec), records=_csv_table(run_dir / "records.csv"),
        diagnostics=_csv_table(run_dir / "diagnostics.csv"), cards=cards, human=human,
        provenance=_flatten(run_info), packages=sorted(packages.items()), failures=failures,
        labels={r: m.label or r for r, m in spec.methods.items()},
    )


def write_html_report(run_dir: Path) -> Path:
    out = Path(run_dir) / "report.html"
    out.write_text(render_html(run_dir), encoding="utf-8")
    return out
