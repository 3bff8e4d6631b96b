"""`gold_past_peak`: the last point of an over-optimisation curve (largest n, or last step of a
fine-tune) is significantly worse than the curve's observed peak on a held-out metric — the sign
that one optimised past the point where the proxy stopped tracking quality (Gao et al. 2022).

Decided on a paired Δ (final − peak) from the results' units (the same prompts and seeds: the
cells' own bootstrap / jackknife units, harness.stats.paired.difference), one-sided at 95 %. The
peak is the best of the m − 1 earlier points, picked on the same data, so the level is split over
them (Bonferroni: one-sided α = 0.05 / (m − 1)): the final point significantly worse than the
picked peak implies it is significantly worse than some point at that level, whose chance under
no real difference is ≤ 5 % — the selection does not inflate false flags.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from ganrm_bench.harness.runtime.seeds import derive_seed
from ganrm_bench.harness.stats.paired import Units, difference

ALPHA = 0.05  # one-sided, family-wise over the candidate peaks
FLAG = "gold_past_peak"


def past_peak_tests(fits: pd.DataFrame, table: pd.DataFrame, units: pd.DataFrame | None) -> pd.DataFrame:
    """`fits` with, for every gold line whose observed peak is not the final point, the paired Δ
    final − peak (`final_vs_peak`), its one-sided bound on the better side (`final_vs_peak_bound`:
    upper for higher-is-better, lower for lower-is-better) and `gold_past_peak` (the bound is on the
    worse side of 0)."""
    if fits is None or fits.empty:
        return fits
    fits = fits.copy()
    fits["final_vs_peak"], fits["final_vs_peak_bound"], fits[FLAG] = math.nan, math.nan, False
    if units is None or units.empty:
        return fits
    cells = units.groupby(["row", "column", "seed"], sort=False)
    for i, r in fits.iterrows():
        curve = table[(table["method"] == r["method"]) & (table["seed"] == r["seed"])]
        test = _test(r, curve, cells) if bool(r.get("gold")) else None
        if test is not None:
            fits.loc[i, ["final_vs_peak", "final_vs_peak_bound", FLAG]] = test
    return fits


def _test(r: Any, curve: pd.DataFrame, cells: Any) -> tuple[float, float, bool] | None:
    """(Δ, one-sided bound, worse) of the final point vs the peak, or None when not testable."""
    final_row, peak_row, m = str(curve["row"].iloc[-1]), str(r.get("peak_row")), len(curve)
    if m < 2 or peak_row in ("", "nan", final_row):
        return None
    try:
        final, peak = (Units.from_rows(cells.get_group((row, r["metric"], r["seed"]))) for row in (final_row, peak_row))
    except KeyError:
        return None
    alpha = ALPHA / (m - 1)
    d = difference(final, peak, level=1 - 2 * alpha, seed=derive_seed(0, "past-peak", final_row, peak_row, r["metric"], int(r["seed"])))
    if not (d.paired and math.isfinite(d.ci_low) and math.isfinite(d.ci_high)):
        return None
    if r["direction"] == "higher":
        return d.estimate, d.ci_high, bool(d.ci_high < 0)
    return d.estimate, d.ci_low, bool(d.ci_low > 0)


def flag_past_peak(diagnostics: pd.DataFrame, fits: pd.DataFrame, table: pd.DataFrame) -> pd.DataFrame:
    """diagnostics.csv with `gold_past_peak` added to the flags of each curve's final row (its lines
    judged by the curve's proxy) and the columns that raised it in `past_peak` ("column (peak row)")."""
    if diagnostics is None or diagnostics.empty or fits is None or fits.empty or FLAG not in fits:
        return diagnostics
    diagnostics = diagnostics.copy()
    if "past_peak" not in diagnostics:
        diagnostics["past_peak"] = ""
    for (method, seed), g in fits[fits[FLAG].astype(bool)].groupby(["method", "seed"], sort=False):
        curve = table[(table["method"] == method) & (table["seed"] == seed)]
        final_row, proxy = str(curve["row"].iloc[-1]), str(curve["proxy"].iloc[0])
        at = (diagnostics["row"] == final_row) & (diagnostics["seed"] == seed) & (diagnostics["scorer"] == proxy)
        cols = ";".join(f"{m} ({p})" for m, p in zip(g["metric"], g["peak_row"]))
        for i in diagnostics.index[at]:
            flags = [f for f in str(diagnostics.at[i, "flags"] or "").split(";") if f and f != "nan"]
            diagnostics.at[i, "flags"] = ";".join(flags if FLAG in flags else [*flags, FLAG])
            diagnostics.at[i, "past_peak"] = ";".join(filter(None, [str(diagnostics.at[i, "past_peak"] or ""), cols]))
    return diagnostics
