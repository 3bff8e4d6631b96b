"""Pictures a run leaves beside its tables: one plot per metric column (value and CI per row, in
table order — for the Fig. 2 spec, the metric by GAN-RM rank) and sample galleries per row."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from ganrm_bench.harness.plugins.base import ItemSet
from ganrm_bench.harness.report.tables import aggregate
from ganrm_bench.harness.spec.schema import Spec

GALLERY_PROMPTS = 8  # prompts shown per row (the same prompts in every row)
GALLERY_SAMPLES = 32  # samples in a row's own grid


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
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

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
        fig, axes = plt.subplots(len(rows), 1, figsize=(1.2 * max(len(prompt_ids), 1), 1.3 * len(rows)), squeeze=False)
        for ax, row in zip(axes[:, 0], rows):
            by_prompt = {it.prompt_id: it for it in samples[row]}
            chosen = [by_prompt[p] for p in prompt_ids if p in by_prompt] or list(samples[row])[:GALLERY_PROMPTS]
            img = grid(chosen, columns=len(chosen))
            if img is not None:
                ax.imshow(np.asarray(img))
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_ylabel(spec.methods[row].label or row, rotation=0, ha="right", va="center", fontsize=8)
        fig.suptitle("same prompts and seeds, one row per method", fontsize=8)
        fig.tight_layout()
        fig.savefig(run_dir / "gallery.png", dpi=120)
        plt.close(fig)
        written.append(run_dir / "gallery.png")
    return written


def write_metric_plots(run_dir: Path, spec: Spec, results: pd.DataFrame) -> list[Path]:
    """figures/<column>.png: each row's value with its CI, rows in table order."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt


    if results.empty:
        return []
    out_dir = run_dir / "figures"
    out_dir.mkdir(parents=True, exist_ok=True)
    agg = aggregate(results)
    written = []
    for col in spec.table.columns or []:
        part = agg[agg["column"] == col].set_index("row")
        rows = [r for r in spec.table.rows or [] if r in part.index]
        if not rows:
            continue
        v = part.loc[rows, "value"].to_numpy(float)
        lo, hi = part.loc[rows, "ci_low"].to_numpy(float), part.loc[rows, "ci_high"].to_numpy(float)
        err = np.where(np.isfinite(lo) & np.isfinite(hi), np.vstack([v - lo, hi - v]), 0.0)
        fig, ax = plt.subplots(figsize=(max(4, 0.7 * len(rows) + 2), 3))
        ax.errorbar(range(len(rows)), v, yerr=err, fmt="o-", capsize=3)
        ax.set_xticks(range(len(rows)), [spec.methods[r].label or r for r in rows], rotation=30, ha="right", fontsize=8)
        label = spec.metrics[col].label or col
        arrow = {"higher": "↑", "lower": "↓"}.get(part.loc[rows[0], "direction"], "")
        ax.set_ylabel(f"{label} {arrow}")
        ax.set_title(f"{spec.table.title or spec.name}: {label} (95% CI)", fontsize=9)
        fig.tight_layout()
        fig.savefig(out_dir / f"{col}.png", dpi=120)
        plt.close(fig)
        written.append(out_dir / f"{col}.png")
    return written


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


def write_compute_curves(run_dir: Path, spec: Spec, results: pd.DataFrame) -> Path | None:
    """figures/compute.png: every metric column against the sampling NFE per delivered sample (log
    x), one line per method (`compute_lines`), each point with its 95% CI; None when the results
    have no NFE spread (nothing to draw)."""
    lines = compute_lines(spec, results)
    if not lines:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator


    nfe = results.groupby("row", sort=False)["nfe"].first().astype(float)
    agg = aggregate(results)
    columns = [c for c in spec.table.columns or list(spec.metrics) if c in set(agg["column"])]
    fig, axes = plt.subplots(1, len(columns), figsize=(3.6 * len(columns), 3.2), squeeze=False)
    for ax, col in zip(axes[0], columns):
        part = agg[agg["column"] == col].set_index("row")
        for name, rows in lines.items():
            rows = [r for r in rows if r in part.index]
            if not rows:
                continue
            x = nfe[rows].to_numpy(float)
            v = part.loc[rows, "value"].to_numpy(float)
            lo, hi = part.loc[rows, "ci_low"].to_numpy(float), part.loc[rows, "ci_high"].to_numpy(float)
            err = np.where(np.isfinite(lo) & np.isfinite(hi), np.vstack([v - lo, hi - v]), 0.0)
            ax.errorbar(x, v, yerr=err, fmt="o-" if len(rows) > 1 else "s", capsize=3, label=name)
        ax.set_xscale("log")
        ticks = sorted({float(nfe[r]) for rows in lines.values() for r in rows})
        ax.xaxis.set_major_locator(FixedLocator(ticks))  # the budgets themselves, not decades
        ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:g}"))
        ax.xaxis.set_minor_locator(NullLocator())
        ax.set_xlabel("generator NFE per sample")
        label = spec.metrics[col].label or col
        arrow = {"higher": "↑", "lower": "↓"}.get(part["direction"].iloc[0] if len(part) else "", "")
        ax.set_ylabel(f"{label} {arrow}")
        ax.grid(True, which="both", alpha=0.3)
    axes[0][0].legend(fontsize=7)
    fig.suptitle(f"{spec.table.title or spec.name}: quality vs sampling compute (95% CI)", fontsize=9)
    fig.tight_layout()
    out_dir = run_dir / "figures"
    out_dir.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_dir / "compute.png", dpi=120)
    plt.close(fig)
    return out_dir / "compute.png"
