"""Pictures a run leaves beside its tables, drawn to be read: one dot-and-whisker plot per metric
column (each row's value and CI, rows as categories, no connecting lines), the quality-vs-compute
curves, and sample galleries per row. Every figure is drawn once (a matplotlib Figure with its
caption) and written as PNG under `figures/` for papers; the HTML report embeds the same figure as
inline SVG, so its text stays text (the browser test measures it) and scales with the page.

Sizes: a figure is HALF_WIDTH_IN or FULL_WIDTH_IN wide with STYLE's fonts, so at the report's width
(two per row, or full width, at 1400 px) no text is smaller than about 12 px."""

from __future__ import annotations

import contextlib
import io
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pandas as pd

from ganrm_bench.harness.plugins.base import ItemSet
from ganrm_bench.harness.report.tables import aggregate
from ganrm_bench.harness.spec.schema import Spec

GALLERY_PROMPTS = 8  # prompts shown per row (the same prompts in every row)
GALLERY_SAMPLES = 32  # samples in a row's own grid

HALF_WIDTH_IN = 6.4  # a figure shown two per row in the report
FULL_WIDTH_IN = 12.8  # a figure shown across the report
PNG_DPI = 150
STYLE = {
    "font.size": 11, "axes.labelsize": 12, "axes.titlesize": 12, "xtick.labelsize": 11, "ytick.labelsize": 11,
    "legend.fontsize": 11, "figure.titlesize": 12, "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans", "Arial", "Helvetica"], "svg.fonttype": "none", "axes.spines.top": False,
    "axes.spines.right": False,
}
BETTER, WORSE, NEUTRAL = "#1a7f37", "#c62828", "#6b6b6b"  # significant better / worse, not significant
ARROW = {"higher": "↑", "lower": "↓"}


@dataclass
class Plot:
    """A drawn figure: its file stem under figures/, the matplotlib Figure, what it shows, and
    whether the report gives it the full width (else two per row)."""

    name: str
    fig: Any
    caption: str
    wide: bool = False


@contextlib.contextmanager
def figure_style() -> Iterator[None]:
    """The harness's figure style (fonts sized for the report); artists take it when created."""
    import matplotlib

    with matplotlib.rc_context(STYLE):
        yield


def new_figure(width: float, height: float, rows: int = 1, cols: int = 1, **kw: Any):
    """(Figure, axes array) without pyplot's global state; call inside `figure_style()`."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height))
    axes = fig.subplots(rows, cols, squeeze=False, **kw)
    return fig, axes


def save_png(plot: Plot, out_dir: Path) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{plot.name}.png"
    with figure_style():
        plot.fig.savefig(path, dpi=PNG_DPI, metadata={"Software": None})
    return path


def figure_svg(fig: Any, name: str) -> str:
    """The figure as an inline <svg> element: text kept as text, sized by its container (no fixed
    width), ids prefixed with `name` so several figures share a page, no timestamp (reproducible)."""
    import matplotlib

    buf = io.StringIO()
    with matplotlib.rc_context({**STYLE, "svg.hashsalt": name}):
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
    text = buf.getvalue()
    text = text[text.index("<svg"):]
    text = re.sub(r"<metadata>.*?</metadata>\s*", "", text, flags=re.S)
    prefix = re.sub(r"[^A-Za-z0-9_-]", "-", name) + "-"
    text = re.sub(r'\bid="([^"]+)"', lambda m: f'id="{prefix}{m.group(1)}"', text)
    text = re.sub(r"url\(#([^)]+)\)", lambda m: f"url(#{prefix}{m.group(1)})", text)
    text = re.sub(r'href="#([^"]+)"', lambda m: f'href="#{prefix}{m.group(1)}"', text)
    head_end = text.index(">")
    head = re.sub(r'\s(width|height)="[^"]*"', "", text[:head_end])
    return f'{head} class="plot" role="img" aria-label="{name}"' + text[head_end:]


# ---------------------------------------------------------------------------------------------
# What a figure's caption says: the rows' labels, the seeds and the samples behind each point.


def row_label(spec: Spec, row: str, beside: str | None = None) -> str:
    return spec.row_name(row, beside)


def metric_label(spec: Spec, col: str) -> str:
    return (spec.metrics[col].label or col) if col in spec.metrics else col


def seeds_text(results: pd.DataFrame, agg: pd.DataFrame) -> str:
    """Which seeds each plotted value stands for, by the scope rule of `aggregate`."""
    seeds = sorted({int(s) for s in results["seed"] if int(s) >= 0}) if "seed" in results else []
    scopes = set(agg["scope"]) if not agg.empty else set()
    if "pooled" in scopes:
        return f"pooled over seeds {seeds} (each value over the union of the seeds' samples)"
    if "across-seeds" in scopes:
        return f"mean over seeds {seeds} with a t-interval"
    return f"seed {seeds[0]}" if len(seeds) == 1 else f"seeds {seeds}"


def samples_text(spec: Spec, results: pd.DataFrame, agg: pd.DataFrame, rows: list[str], column: str | None = None) -> str:
    """"n = 300 samples per value on prompts eval (300 prompts)": what each point is computed over."""
    parts = []
    if "n" in results and not results.empty:
        part = results[results["row"].isin(rows)]
        if column is not None:
            part = part[part["column"] == column]
        scope = "pooled" if "pooled" in set(agg["scope"]) else None
        if scope and "scope" in part:
            part = part[part["scope"] == scope]
        n = pd.to_numeric(part["n"], errors="coerce").dropna().astype(int)
        if len(n):
            parts.append(f"n = {n.min()} samples per value" if n.min() == n.max() else f"n = {n.min()}–{n.max()} samples per value")
    sets = list(dict.fromkeys(spec.methods[r].prompts for r in rows if r in spec.methods and spec.methods[r].prompts))
    if sets:
        described = []
        for name in sets:
            entry = spec.prompts.get(name)
            size = (entry.params.get("n") or entry.params.get("n_prompts")) if entry is not None else None
            described.append(f"{name} ({size} prompts)" if size else name)
        parts.append("prompt set " + ", ".join(described))
    return " on ".join(parts)


def digits_for(values: list[float]) -> int:
    finite = [abs(v) for v in values if v is not None and math.isfinite(v)]
    m = max(finite, default=1.0)
    return 2 if m >= 10 else 3 if m >= 0.1 else 4


# ---------------------------------------------------------------------------------------------
# Per metric: each row's value with its CI, as categories (dot and whisker).


def _errors(v: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    ok = np.isfinite(lo) & np.isfinite(hi)
    return np.where(ok, np.vstack([v - np.where(ok, lo, v), np.where(ok, hi, v) - v]), 0.0)


def metric_plots(spec: Spec, results: pd.DataFrame) -> list[Plot]:
    """Per metric column: each row's value with its 95% CI, rows top to bottom in table order,
    the best value filled, the comparison row's value as a dashed line."""
    if results.empty:
        return []
    agg = aggregate(results)
    plots = []
    for col in spec.table.columns or []:
        part = agg[agg["column"] == col].set_index("row")
        rows = [r for r in spec.table.rows or [] if r in part.index]
        if rows:
            plots.append(_metric_plot(spec, results, agg, part, rows, col))
    return plots


def _metric_plot(spec: Spec, results: pd.DataFrame, agg: pd.DataFrame, part: pd.DataFrame, rows: list[str], col: str) -> Plot:
    v = part.loc[rows, "value"].to_numpy(float)
    lo, hi = part.loc[rows, "ci_low"].to_numpy(float), part.loc[rows, "ci_high"].to_numpy(float)
    direction = str(part.loc[rows[0], "direction"])
    label = metric_label(spec, col)
    y = np.arange(len(rows))[::-1]
    against = {str(a) for a in part.loc[rows, "compare_to"].dropna()}
    reference = next(iter(against)) if len(against) == 1 and next(iter(against)) in part.index else None
    with figure_style():
        fig, axes = new_figure(HALF_WIDTH_IN, 1.0 + 0.42 * len(rows))
        ax = axes[0][0]
        finite = v[np.isfinite(v)]
        best = (finite.max() if direction == "higher" else finite.min()) if finite.size else math.nan
        for yi, vi, e0, e1 in zip(y, v, *_errors(v, lo, hi)):
            ax.errorbar([vi], [yi], xerr=[[e0], [e1]], fmt="o", color="#1f4e96", ms=7, capsize=4, lw=1.6,
                        mfc="#1f4e96" if vi == best else "white", mew=1.6)
        if reference is not None:
            ax.axvline(float(part.loc[reference, "value"]), color=NEUTRAL, ls="--", lw=1)
        ax.set_yticks(y, [row_label(spec, r) for r in rows])
        ax.set_ylim(-0.6, len(rows) - 0.4)
        ax.set_xlabel(f"{label} {ARROW.get(direction, '')}  ({direction} is better)" if direction in ARROW else label)
        ax.grid(True, axis="x", alpha=0.3)
        fig.tight_layout()
    caption = (f"{label} of each method with its 95% CI ({direction} is better; filled: the best value"
               f"{f'; dashed: {row_label(spec, reference)}, the comparison row' if reference else ''}); "
               f"{seeds_text(results, agg)}; {samples_text(spec, results, agg, rows, col)}.")
    return Plot(col, fig, caption)


def write_metric_plots(run_dir: Path, spec: Spec, results: pd.DataFrame) -> list[Path]:
    """figures/<column>.png: each row's value with its CI, rows in table order."""
    return [save_png(p, run_dir / "figures") for p in metric_plots(spec, results)]


# ---------------------------------------------------------------------------------------------
# Quality against sampling compute.


def compute_lines(spec: Spec, results: pd.DataFrame) -> dict[str, list[str]]:
    """Rows grouped into the curves of a quality-vs-compute figure: one line per (method plugin,
    generator, scorer), its rows in NFE order. Empty when the results carry no NFE (older runs, or
    generators that do not report it) or all rows cost the same."""
    if "nfe" not in results or results.empty:
        return {}
    nfe = results.groupby("row", sort=False)["nfe"].first().astype(float)
    nfe = nfe[np.isfinite(nfe)]
    if nfe.nunique() < 2:
        return {}
    lines: dict[str, list[str]] = {}
    for row in spec.table.rows or list(spec.methods):
        if row not in nfe.index:
            continue
        e = spec.methods[row]
        name = e.method + (f" · {e.scorer}" if e.scorer else "")
        lines.setdefault(name, []).append(row)
    return {name: sorted(rows, key=lambda r: nfe[r]) for name, rows in lines.items()}


def line_label(spec: Spec, rows: list[str]) -> str:
    """A curve's legend entry in the spec's words: its row's label, or its first and last rows'
    labels ("RM@1 … RM@10") when it joins several."""
    labels = [row_label(spec, r) for r in rows]
    return labels[0] if len(labels) == 1 else f"{labels[0]} … {labels[-1]}"


def compute_plot(spec: Spec, results: pd.DataFrame) -> Plot | None:
    """Every metric column against the sampling NFE per delivered sample (log x), one line per
    method (`compute_lines`), each point with its 95% CI; None when the results have no NFE
    spread. Panels wrap three to a row."""
    lines = compute_lines(spec, results)
    if not lines:
        return None
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

    nfe = results.groupby("row", sort=False)["nfe"].first().astype(float)
    agg = aggregate(results)
    columns = [c for c in spec.table.columns or list(spec.metrics) if c in set(agg["column"])]
    ncols = min(3, len(columns))
    nrows = math.ceil(len(columns) / ncols)
    width = HALF_WIDTH_IN if ncols == 1 else FULL_WIDTH_IN
    with figure_style():
        fig, axes = new_figure(width, 3.6 * nrows + 0.6, nrows, ncols)
        for ax in axes.flat[len(columns):]:
            ax.set_visible(False)
        for ax, col in zip(axes.flat, columns):
            part = agg[agg["column"] == col].set_index("row")
            for rows in lines.values():
                rows = [r for r in rows if r in part.index]
                if not rows:
                    continue
                x = nfe[rows].to_numpy(float)
                v = part.loc[rows, "value"].to_numpy(float)
                err = _errors(v, part.loc[rows, "ci_low"].to_numpy(float), part.loc[rows, "ci_high"].to_numpy(float))
                ax.errorbar(x, v, yerr=err, fmt="o-" if len(rows) > 1 else "s", capsize=3, label=line_label(spec, rows))
            ax.set_xscale("log")
            ticks = sorted({float(nfe[r]) for rows in lines.values() for r in rows})
            ax.xaxis.set_major_locator(FixedLocator(ticks))  # the budgets themselves, not decades
            ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:g}"))
            ax.xaxis.set_minor_locator(NullLocator())
            ax.set_xlabel("generator NFE per sample")
            direction = part["direction"].iloc[0] if len(part) else ""
            ax.set_ylabel(f"{metric_label(spec, col)} {ARROW.get(direction, '')}".strip())
            ax.grid(True, which="both", alpha=0.3)
        handles, labels = axes.flat[0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 4), frameon=False)
        fig.tight_layout(rect=(0, 0.6 / (3.6 * nrows + 0.6) + 0.04, 1, 1))
    rows = [r for rs in lines.values() for r in rs]
    caption = (f"Quality against sampling compute: each metric (95% CI) by the generator's NFE per delivered sample "
               f"(log scale), one line per method; {seeds_text(results, agg)}; {samples_text(spec, results, agg, rows)}.")
    return Plot("compute", fig, caption, wide=len(columns) > 1)


def write_compute_curves(run_dir: Path, spec: Spec, results: pd.DataFrame) -> Path | None:
    """figures/compute.png (see `compute_plot`); None when there is nothing to draw."""
    plot = compute_plot(spec, results)
    return None if plot is None else save_png(plot, run_dir / "figures")


# ---------------------------------------------------------------------------------------------
# Galleries.


def _as_image(obj, size: int):
    from PIL import Image

    if isinstance(obj, np.ndarray):  # a video: its first frame
        obj = Image.fromarray(obj[0])
    scale = max(1, size // max(obj.size))
    return obj.resize((obj.size[0] * scale, obj.size[1] * scale), Image.NEAREST) if scale > 1 else obj


def grid(items: list, columns: int, size: int = 64):
    """A PIL grid of items' images, each scaled up (nearest) to about `size` pixels."""
    from PIL import Image

    images = [_as_image(it.load(), size) for it in items]
    if not images:
        return None
    w, h = images[0].size
    rows = math.ceil(len(images) / columns)
    canvas = Image.new("RGB", (columns * w, rows * h), "white")
    for i, im in enumerate(images):
        canvas.paste(im.resize((w, h)), ((i % columns) * w, (i // columns) * h))
    return canvas


def write_galleries(run_dir: Path, spec: Spec, samples: dict[str, ItemSet]) -> list[Path]:
    """gallery/<row>.png for each row, and gallery.png comparing rows on the same prompts."""
    out_dir = run_dir / "gallery"
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for row, items in samples.items():
        img = grid(list(items)[:GALLERY_SAMPLES], columns=8)
        if img is not None:
            img.save(out_dir / f"{row}.png")
            written.append(out_dir / f"{row}.png")
    rows = [r for r in (spec.table.rows or []) if r in samples]
    if rows:
        first = samples[rows[0]]
        prompt_ids = list(dict.fromkeys(it.prompt_id for it in first if it.prompt_id))[:GALLERY_PROMPTS]
        with figure_style():
            fig, axes = new_figure(1.2 * max(len(prompt_ids), 1) + 1.5, 1.3 * len(rows))
            for ax, row in zip(axes[:, 0], rows):
                by_prompt = {it.prompt_id: it for it in samples[row]}
                chosen = [by_prompt[p] for p in prompt_ids if p in by_prompt] or list(samples[row])[:GALLERY_PROMPTS]
                img = grid(chosen, columns=len(chosen))
                if img is not None:
                    ax.imshow(np.asarray(img))
                ax.set_xticks([])
                ax.set_yticks([])
                ax.set_ylabel(row_label(spec, row), rotation=0, ha="right", va="center")
            fig.suptitle("same prompts and seeds, one row per method")
            fig.tight_layout()
            fig.savefig(run_dir / "gallery.png", dpi=120)
        written.append(run_dir / "gallery.png")
    return written
