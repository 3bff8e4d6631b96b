"""`figures/overoptimisation.png`: the best-of-n curves of harness.diagnostics.overoptimisation drawn
as Gao et al. 2022 draw them — proxy and gold against d = √KL, one panel per metric column, the
fitted R(d) = d(α − βd) dashed and the observed gold peak starred. Presentation only: every number
comes from `overoptimisation.csv` / `overoptimisation_fits.csv`."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ganrm_bench.harness.diagnostics.overoptimisation import PROXY

GOLD, PROXY_COLOUR = "tab:red", "tab:blue"


def write_overoptimisation_figure(run_dir: Path, spec: Any, table: pd.DataFrame, fits: pd.DataFrame) -> Path | None:
    """One panel per metric column, each curve (method, seed) of the table drawn in it; None when
    the run has no curve."""
    if table is None or table.empty or fits is None or fits.empty:
        return None
    columns = [m for m in fits["metric"].drop_duplicates() if m != PROXY]
    if not columns:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(columns), figsize=(4.4 * len(columns), 4.6), squeeze=False)
    for ax, col in zip(axes[0], columns):
        for (method, seed), g in table.groupby(["method", "seed"], sort=False):
            g = g.sort_values("n")
            fit = fits[(fits["method"] == method) & (fits["seed"] == seed)].set_index("metric")
            _panel(ax, g, fit, col, _label(spec, col), f"{method}, seed {seed}" if table["seed"].nunique() > 1 else method)
    fig.tight_layout()
    out = Path(run_dir) / "figures"
    out.mkdir(parents=True, exist_ok=True)
    fig.savefig(out / "overoptimisation.png", dpi=110)
    plt.close(fig)
    return out / "overoptimisation.png"


def _label(spec: Any, col: str) -> str:
    entry = getattr(spec, "metrics", {}).get(col) if spec is not None else None
    return (entry.label if entry is not None and entry.label else None) or col


def _panel(ax: Any, g: pd.DataFrame, fit: pd.DataFrame, col: str, label: str, curve: str) -> None:
    d = g["sqrt_kl"].to_numpy(float)
    grid = np.linspace(0, d.max() * 1.05, 100)
    gold = bool(fit.loc[col, "gold"]) if col in fit.index else True
    _series(ax, d, g[col], g[f"{col}_ci_low"], g[f"{col}_ci_high"], fit, col, grid, GOLD, "s",
            f"{'gold' if gold else 'own selector'}: {label}")
    if col in fit.index and math.isfinite(float(fit.loc[col].get("peak_sqrt_kl", math.nan))):
        r = fit.loc[col]
        ax.plot([r["peak_sqrt_kl"]], [r["peak_value"]], marker="*", markersize=16, color=GOLD, linestyle="none",
                label=f"gold peak: n = {int(r['peak_n'])}")
    ax.set_ylabel(label, color=GOLD)
    twin = ax.twinx()
    _series(twin, d, g["proxy_mean"], g["proxy_ci_low"], g["proxy_ci_high"], fit, PROXY, grid, PROXY_COLOUR, "o",
            f"proxy: {g['proxy'].iloc[0]}")
    twin.set_ylabel("proxy reward", color=PROXY_COLOUR)
    ax.set_xticks(d, [f"{x:.2f}\nn={n}" for x, n in zip(d, g["n"])], fontsize=7)
    ax.set_xlabel("√KL(π‖π₀)  (best-of-n)")
    ax.set_title(f"{label} vs proxy — {curve}", fontsize=9)
    handles = ax.get_legend_handles_labels()[0] + twin.get_legend_handles_labels()[0]
    ax.legend(handles=handles, fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.3), ncol=2, frameon=False)


def _series(ax: Any, d: np.ndarray, value: pd.Series, lo: pd.Series, hi: pd.Series, fit: pd.DataFrame, metric: str,
            grid: np.ndarray, colour: str, marker: str, label: str) -> None:
    v, lo, hi = (np.asarray(x, dtype=float) for x in (value, lo, hi))
    err = np.nan_to_num(np.vstack([v - lo, hi - v]), nan=0.0)
    ax.errorbar(d, v, yerr=err, marker=marker, color=colour, capsize=3, linestyle="none", label=label)
    if metric in fit.index and math.isfinite(float(fit.loc[metric, "alpha"])):
        r = fit.loc[metric]
        ax.plot(grid, r["r0"] + grid * (r["alpha"] - r["beta"] * grid), linestyle="--", color=colour, alpha=0.7,
                label=f"d(α − βd): α={r['alpha']:.3g}, β={r['beta']:.3g}")
