"""The cross-reward matrix of harness.diagnostics.cross_reward, presented: `figures/cross_reward.png`,
a heatmap of rows optimised for X (each row's proxy) by judges Y, every cell the paired Δ vs the
comparison row with its 95 % CI, and the Markdown section under the table. Presentation only:
every number comes from `cross_reward.csv`."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ganrm_bench.harness.diagnostics.pngs import save_figure
from ganrm_bench.harness.report.rundir import load_cross_reward

CAPTION = ("Cross-reward matrix: each row was optimised for the reward named under it (its selector, or the scorer "
           "that chose its training data); each column judges it — the table's per-sample metric columns, then every "
           "proxy reward model that is not one of them. A cell is the paired Δ vs the comparison row with its 95% CI; "
           "* the CI excludes 0. Colour: better (blue) or worse (red) for the judge's direction, in units of the Δ's CI "
           "half-width (beyond ±1 the CI excludes 0; saturated at ±2), so columns in different units compare. Boxed "
           "(orange) cells are the row judged by its own proxy: what it optimised, no held-out evidence; the others are "
           "held-out verifiers — a row that gains on its proxy but not elsewhere optimised the proxy, not quality "
           "(cross_reward.csv, figures/cross_reward.png)")


def figure_caption(run_dir: Path) -> str:
    """CAPTION, then this run's comparison row, its rows and proxies and how many held-out cells
    are significantly better or worse."""
    table = load_cross_reward(run_dir)
    if table is None or table.empty:
        return CAPTION
    held = table[~table["own"].astype(bool)]
    sign = [(1 if r["direction"] == "higher" else -1) * float(r["delta"]) for r in held.to_dict("records") if significant(r)]
    rows = "; ".join(f"{r['row_label']} (optimised for {r['optimised_for']})" for r in table.drop_duplicates("row").to_dict("records"))
    return (f"{CAPTION}. In this run: Δ vs {', '.join(dict.fromkeys(map(str, table['compare_to'])))}; rows {rows}; of "
            f"{len(held)} held-out cells {sum(s > 0 for s in sign)} are significantly better and {sum(s < 0 for s in sign)} "
            f"significantly worse.")


def significant(r: Any) -> bool:
    """The Δ's 95% CI excludes 0."""
    lo, hi = float(r["delta_ci_low"]), float(r["delta_ci_high"])
    return bool(math.isfinite(lo) and math.isfinite(hi) and (lo > 0 or hi < 0))


def _grid(table: pd.DataFrame) -> tuple[list[str], list[str], dict[tuple[str, str], dict]]:
    rows = list(dict.fromkeys(table["row"]))
    judges = list(dict.fromkeys(table["judge"]))
    return rows, judges, {(r["row"], r["judge"]): r for r in table.to_dict("records")}


SHADE_CLIP = 2.0  # the colour saturates at a Δ twice its CI half-width


def _shade(cells: dict[tuple[str, str], dict], rows: list[str], judges: list[str]) -> np.ndarray:
    """Δ in units of its 95% CI half-width, signed so that better is positive (|·| > 1: the CI
    excludes 0), clipped at ±SHADE_CLIP and scaled to [−1, 1]: comparable across columns whose units differ."""
    out = np.full((len(rows), len(judges)), np.nan)
    for j, judge in enumerate(judges):
        for i, row in enumerate(rows):
            r = cells.get((row, judge))
            half = (float(r["delta_ci_high"]) - float(r["delta_ci_low"])) / 2 if r is not None else math.nan
            if r is not None and math.isfinite(float(r["delta"])) and math.isfinite(half) and half > 0:
                out[i, j] = float(r["delta"]) / half * (1 if r["direction"] == "higher" else -1)
    return np.clip(out, -SHADE_CLIP, SHADE_CLIP) / SHADE_CLIP


def write_cross_reward_figure(run_dir: Path, table: pd.DataFrame) -> Path | None:
    """The heatmap; None when the run has no matrix."""
    if table is None or table.empty:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    rows, judges, cells = _grid(table)
    fig, ax = plt.subplots(figsize=(1.9 * len(judges) + 2.8, 0.95 * len(rows) + 1.8))
    shade = _shade(cells, rows, judges)
    ax.imshow(shade, cmap="RdBu", vmin=-1, vmax=1, aspect="auto")
    for i, row in enumerate(rows):
        for j, judge in enumerate(judges):
            r = cells.get((row, judge))
            if r is None or not math.isfinite(float(r["delta"])):
                ax.text(j, i, "–", ha="center", va="center", fontsize=8)
                continue
            ax.text(j, i, f"{float(r['delta']):+.3g}{'*' if significant(r) else ''}\n"
                          f"[{float(r['delta_ci_low']):+.3g}, {float(r['delta_ci_high']):+.3g}]", ha="center", va="center", fontsize=7,
                    color="white" if abs(shade[i, j]) > 0.6 else "black")
            if bool(r["own"]):
                ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, linewidth=3, edgecolor="#f0a000"))
    first = table.drop_duplicates("judge").set_index("judge")
    ax.set_xticks(range(len(judges)), [f"{first.loc[j, 'judge_label']}\n({'higher' if first.loc[j, 'direction'] == 'higher' else 'lower'} "
                                       f"is better)" for j in judges], fontsize=8)
    by_row = table.drop_duplicates("row").set_index("row")
    ax.set_yticks(range(len(rows)), [f"{by_row.loc[r, 'row_label']}\noptimised for {by_row.loc[r, 'optimised_for']}" for r in rows], fontsize=8)
    ax.set_xlabel("judged by")
    against = ", ".join(dict.fromkeys(str(x) for x in table["compare_to"]))
    ax.set_title(f"Cross-reward matrix: paired Δ vs {against} [95% CI]; * CI excludes 0; boxed: the row's own proxy", fontsize=9)
    return save_figure(fig, run_dir, "cross_reward")


def render_cross_reward_markdown(table: pd.DataFrame | None) -> str:
    """The matrix as a Markdown table under the results table (own-proxy cells in italics)."""
    if table is None or table.empty:
        return ""
    rows, judges, cells = _grid(table)
    first = table.drop_duplicates("judge").set_index("judge")
    by_row = table.drop_duplicates("row").set_index("row")
    lines = ["### Cross-reward matrix (rows optimised for X, judged by Y: paired Δ vs the comparison row [95% CI])", "",
             "| row | optimised for | " + " | ".join(f"{first.loc[j, 'judge_label']} ({first.loc[j, 'direction']})" for j in judges) + " |",
             "|---|---|" + "---|" * len(judges)]
    for row in rows:
        out = []
        for judge in judges:
            r = cells.get((row, judge))
            if r is None or not math.isfinite(float(r["delta"])):
                out.append("–")
                continue
            text = f"{float(r['delta']):+.3g} [{float(r['delta_ci_low']):+.3g}, {float(r['delta_ci_high']):+.3g}]{'*' if significant(r) else ''}"
            out.append(f"_{text} (own)_" if bool(r["own"]) else text)
        lines.append(f"| {by_row.loc[row, 'row_label']} | {by_row.loc[row, 'optimised_for']} | " + " | ".join(out) + " |")
    lines += ["", "\\* the CI excludes 0; _(own)_: the judge is the row's own proxy (no held-out evidence). Full matrix: "
              "`cross_reward.csv`, `figures/cross_reward.png`."]
    return "\n".join(lines) + "\n"
