"""The best-of-n curves of harness.diagnostics.overoptimisation, presented: `figures/overoptimisation.png`
drawn as Gao et al. 2022 draw them — proxy and gold against d = √KL, one panel per metric column, the
fitted R(d) = d(α − βd) dashed and the observed gold peak starred — and the peaks section of
`table.md`. Presentation only: every number comes from `overoptimisation.csv` / `_fits.csv`."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ganrm_bench.harness.diagnostics.overoptimisation import AXES, PROXY, curve_axis
from ganrm_bench.harness.diagnostics.pngs import save_figure
from ganrm_bench.harness.report.rundir import load_overoptimisation
from ganrm_bench.harness.stats.gao_forms import FORMS, BestOfNFit, RLFit

GOLD, PROXY_COLOUR = "tab:red", "tab:blue"
CAPTION = ("Over-optimisation (best-of-n): each metric column (red, left axis) and the proxy reward that chose the "
           "samples (blue, right axis) against √KL(π‖π₀), KL = log n − (n−1)/n; dashed: Gao et al.'s fit d(α − βd) "
           "(d(α − β log d), their RL form, along a fine-tune's training); "
           "★: where the column is best; curves along a fine-tune's training (if any) in a row of panels against "
           "√KL of the fine-tune's trajectories (the step under each tick), or the optimizer step where no KL is "
           "estimated (figures/overoptimisation.png)")


def write_overoptimisation_figure(run_dir: Path, spec: Any, table: pd.DataFrame, fits: pd.DataFrame) -> Path | None:
    """figures/overoptimisation.png; None when the run has no curve."""
    fig = overoptimisation_figure(spec, table, fits)
    return save_figure(fig, run_dir, "overoptimisation") if fig is not None else None


def overoptimisation_figure(spec: Any, table: pd.DataFrame, fits: pd.DataFrame) -> Any:
    """One panel per metric column, each curve (method, seed) of the table drawn in it (a row of
    panels per x axis: n, step); None when the run has no curve."""
    if table is None or table.empty or fits is None or fits.empty:
        return None
    columns = [m for m in fits["metric"].drop_duplicates() if m != PROXY]
    if not columns:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curves = [(key, g.sort_values(curve_axis(g)), curve_axis(g)) for key, g in table.groupby(["method", "seed"], sort=False)]
    axes_kinds = [a for a in AXES if any(axis == a for *_, axis in curves)]  # one row of panels per x: n, step
    fig, axes = plt.subplots(len(axes_kinds), len(columns), figsize=(4.4 * len(columns), 5.2 * len(axes_kinds)), squeeze=False)
    for axes_row, kind in zip(axes, axes_kinds):
        for ax, col in zip(axes_row, columns):
            for (method, seed), g, axis in curves:
                if axis != kind:
                    continue
                fit = fits[(fits["method"] == method) & (fits["seed"] == seed)].set_index("metric")
                _panel(ax, g, fit, col, _label(spec, col), f"{method}, seed {seed}" if table["seed"].nunique() > 1 else method, axis)
    return fig


def figure_caption(run_dir: Path, spec: Any = None) -> str:
    """CAPTION, then per curve its proxy and where each gold column peaks (n or step, value), and
    which columns flagged `gold_past_peak`: what the figure shows for this run, in words."""
    fits = load_overoptimisation(run_dir)
    fits = fits[1] if fits is not None else None
    if fits is None or fits.empty:
        return CAPTION
    parts = []
    for (method, seed), g in fits.groupby(["method", "seed"], sort=False):
        peaks = []
        for r in g[g["gold"].astype(bool)].to_dict("records"):
            axis = "n" if _finite(r.get("peak_n")) else "step" if _finite(r.get("peak_step")) else None
            if axis is None:
                continue
            last = int(r[f"peak_{axis}"]) == int(r[f"final_{axis}"])
            peaks.append(f"{_label(spec, r['metric'])} at {axis} = {int(r[f'peak_{axis}'])} ({r['peak_value']:.3g}"
                         f"{', the last point: not yet past its peak' if last else ''})")
        flagged = [_label(spec, m) for m in g.loc[g.get("gold_past_peak", pd.Series(False, index=g.index)).fillna(False).astype(bool), "metric"]]
        parts.append(f"{method}, seed {seed}: gold is best for {'; '.join(peaks) or 'no column'}"
                     + (f"; the last point is significantly worse than the peak on {', '.join(flagged)} (gold_past_peak)" if flagged else ""))
    return CAPTION + ". In this run — " + ". ".join(parts) + "."


def render_overoptimisation_markdown(fits: pd.DataFrame, spec: Any = None) -> str:
    """Per curve and seed, where each metric is best (observed and fitted) beside its value at the
    largest n: the section under the table in `table.md`."""
    if fits is None or fits.empty:
        return ""
    lines = ["### Over-optimisation curves (proxy and gold vs √KL for best-of-n, vs the step along training)", ""]
    for (method, seed), g in fits.groupby(["method", "seed"], sort=False):
        lines += [f"**{method}**, seed {seed}:", "",
                  "| metric | better | observed peak: n (√KL) | value at peak | value at largest n | Gao fit: α, β | fitted best n (√KL) |",
                  "|---|---|---|---|---|---|---|"]
        for r in g.to_dict("records"):
            name = "proxy" if r["metric"] == PROXY else f"{_label(spec, r['metric'])}{'' if r['gold'] else ' (own selector)'}"
            peak = (f"{int(r['peak_n'])} ({r['peak_sqrt_kl']:.2f})" if _finite(r.get("peak_n")) else
                    f"step {int(r['peak_step'])}" if _finite(r.get("peak_step")) else "–")
            final = (f"{r['final_value']:.4g} (n = {int(r['final_n'])})" if _finite(r.get("final_n")) else
                     f"{r['final_value']:.4g} (step {int(r['final_step'])})" if _finite(r.get("final_step")) else "–")
            fit = f"{FORMS[_form(r)]}: {r['alpha']:.3g}, {r['beta']:.3g}" if _finite(r.get("alpha")) else "–"
            best = (f"{r['fit_best_n']:.1f} ({r['fit_best_sqrt_kl']:.2f})" if _finite(r.get("fit_best_n")) else
                    f"√KL {r['fit_best_sqrt_kl']:.2f}" if _finite(r.get("fit_best_sqrt_kl")) else
                    "none (still improving)" if _finite(r.get("alpha")) else "–")
            value = f"{r['peak_value']:.4g}" if _finite(r.get("peak_value")) else "–"
            lines.append(f"| {name} | {r['direction']} | {peak} | {value} | {final} | {fit} | {best} |")
        lines.append("")
    lines.append("KL = log n − (n−1)/n (exact for best-of-n); the fit is Gao et al. 2022's best-of-n form d(α − βd) through the "
                 "n = 1 value. Curves along training have the optimizer step as x and, where estimated, the fine-tune's trajectory "
                 "KL to the untuned generator (columns kl, kl_ci_low, kl_ci_high), against which Gao's RL form d(α − β log d) "
                 "is fitted through the step-0 value (no fit without a KL). "
                 "Curves: `overoptimisation.csv`, `figures/overoptimisation.png`.")
    return "\n".join(lines) + "\n"


def _finite(x: Any) -> bool:
    try:
        return math.isfinite(float(x))
    except (TypeError, ValueError):
        return False


def _form(r: Any) -> str:
    """A fits line's Gao form ("rl" or "best-of-n"; run directories from before the column are best-of-n)."""
    return "rl" if r.get("form") == "rl" else "best-of-n"


def _label(spec: Any, col: str) -> str:
    entry = getattr(spec, "metrics", {}).get(col) if spec is not None else None
    return (entry.label if entry is not None and entry.label else None) or col


def _panel(ax: Any, g: pd.DataFrame, fit: pd.DataFrame, col: str, label: str, curve: str, axis: str = "n") -> None:
    with_kl = axis == "n" or bool(np.isfinite(g["sqrt_kl"].to_numpy(float)).all())  # a fine-tune's KL, when estimated
    d = g["sqrt_kl" if with_kl else "step"].to_numpy(float)
    grid = np.linspace(0, d.max() * 1.05, 100)
    gold = bool(fit.loc[col, "gold"]) if col in fit.index else True
    _series(ax, d, g[col], g[f"{col}_ci_low"], g[f"{col}_ci_high"], fit, col, grid, GOLD, "s",
            f"{'gold' if gold else 'own selector'}: {label}")
    peak = f"peak_{axis}"
    if col in fit.index and math.isfinite(float(fit.loc[col].get(peak, math.nan))):
        r = fit.loc[col]
        at = d[(g[axis].to_numpy(float) == float(r[peak])).argmax()]
        ax.plot([at], [r["peak_value"]], marker="*", markersize=16, color=GOLD, linestyle="none",
                label=f"gold peak: {axis} = {int(r[peak])}")
    ax.set_ylabel(label, color=GOLD)
    twin = ax.twinx()
    _series(twin, d, g["proxy_mean"], g["proxy_ci_low"], g["proxy_ci_high"], fit, PROXY, grid, PROXY_COLOUR, "o",
            f"proxy: {g['proxy'].iloc[0]}")
    twin.set_ylabel("proxy reward", color=PROXY_COLOUR)
    if axis == "n":
        ax.set_xticks(d, spaced_tick_labels(d, [f"{x:.2f}\nn={int(n)}" for x, n in zip(d, g["n"])]), fontsize=7)
        ax.set_xlabel("√KL(π‖π₀)  (best-of-n)")
    elif with_kl:
        ax.set_xticks(d, spaced_tick_labels(d, [f"{x:.2f}\nstep {int(s)}" for x, s in zip(d, g["step"])]), fontsize=7)
        ax.set_xlabel("√KL(π‖π₀)  (trajectory KL of the fine-tune)")
    else:
        ax.set_xticks(d, spaced_tick_labels(d, [str(int(x)) for x in d]), fontsize=7)
        ax.set_xlabel("optimizer step (no KL estimate)")
    ax.set_title(f"{label} vs proxy — {curve}", fontsize=9)
    handles = ax.get_legend_handles_labels()[0] + twin.get_legend_handles_labels()[0]
    # one column: two of the fit labels side by side are wider than a panel and ran into the next legend
    ax.legend(handles=handles, fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.3), ncol=1, frameon=False)


def spaced_tick_labels(d: np.ndarray, labels: list[str], min_gap: float | None = None) -> list[str]:
    """The labels with those too close to the last kept one blanked (the tick stays): points along √KL
    bunch up where training slows, and overlapping labels read as one. `min_gap` is a fraction of the axis,
    by default 2.2 % per character of the longest label line (7 pt labels in one of four panels side by
    side: "step 100" needs about 18 %); the last point keeps its label (the curve's end), dropping its
    crowded neighbour instead."""
    span = float(np.nanmax(d) - np.nanmin(d)) if len(d) else 0.0
    if span <= 0:
        return list(labels)
    if min_gap is None:
        min_gap = 0.022 * max((len(line) for lab in labels for line in str(lab).splitlines()), default=0)
    gap, order = min_gap * span, np.argsort(d, kind="stable")
    last_x, keep = float(d[order[-1]]), set()
    prev = -math.inf
    for i in order[:-1]:
        if d[i] - prev >= gap and last_x - d[i] >= gap:
            keep.add(int(i))
            prev = float(d[i])
    keep.add(int(order[-1]))
    return [lab if i in keep else "" for i, lab in enumerate(labels)]


def _series(ax: Any, d: np.ndarray, value: pd.Series, lo: pd.Series, hi: pd.Series, fit: pd.DataFrame, metric: str,
            grid: np.ndarray, colour: str, marker: str, label: str) -> None:
    v, lo, hi = (np.asarray(x, dtype=float) for x in (value, lo, hi))
    err = np.nan_to_num(np.vstack([v - lo, hi - v]), nan=0.0)
    ax.errorbar(d, v, yerr=err, marker=marker, color=colour, capsize=3, linestyle="none", label=label)
    if metric in fit.index and math.isfinite(float(fit.loc[metric, "alpha"])):
        r = fit.loc[metric]
        form = (RLFit if _form(r) == "rl" else BestOfNFit)(r["alpha"], r["beta"], r["r0"], r["rss"], 0)
        ax.plot(grid, form.value(grid), linestyle="--", color=colour, alpha=0.7,
                label=f"{FORMS[_form(r)]}: α={r['alpha']:.3g}, β={r['beta']:.3g}")
