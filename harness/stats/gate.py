"""The regression gate behind `ganrm-bench check`: a one-sided non-inferiority test per cell.

Rule (per cell, stated in `check --help` and docs/statistics.md): let R be how much worse the
candidate is than the baseline (candidate − baseline for lower-is-better metrics, baseline −
candidate otherwise). The cell FAILS when the one-sided lower confidence bound of R (at
`confidence`, default 95 %) exceeds the column's tolerance (the non-inferiority margin, default 0):
the data show, with that confidence, a regression larger than the margin. Otherwise it passes.

When both sides carry units (`units.parquet`) for the same cell on the same prompts, R's interval is
paired (`harness.stats.paired.difference`): per-prompt bootstrap or block jackknife of the difference. When
not (other prompts, or a baseline without units), it falls back to an unpaired interval from the two
cells' CIs and says so. Every cell also reports the smallest regression this comparison detects
with 80 % power: tolerance + (q_conf + q_0.8)·se.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import pandas as pd

from ganrm_bench.harness.errors import UserError
from ganrm_bench.harness.stats.paired import Difference, Units, difference


@dataclass
class Verdict:
    """One cell of `check`: the candidate's regression vs the baseline and the decision."""

    regression: float  # how much worse the candidate is (positive = worse), in the metric's units
    lower_bound: float  # one-sided lower confidence bound of the regression
    upper_bound: float
    tolerance: float  # non-inferiority margin
    detectable: float  # smallest regression this comparison detects with 80% power
    failed: bool
    difference: Difference


def regression_test(diff: Difference, direction: str, tolerance: float, *, confidence: float = 0.95, power: float = 0.8) -> Verdict:
    """Fail when the candidate is worse than the baseline by more than `tolerance` with the given
    one-sided confidence: lower confidence bound of (candidate worse-by) > tolerance.

    `diff` is candidate − baseline. `detectable` is the true regression that this rule flags with
    probability `power` at this standard error: tolerance + (q_conf + q_power)·se."""
    sign = 1.0 if direction == "lower" else -1.0  # lower-is-better: a larger value is worse
    r = sign * diff.estimate
    if not math.isfinite(diff.se):
        exact = math.isfinite(r) and r > tolerance
        return Verdict(r, r, r, tolerance, math.nan, exact or not math.isfinite(r), diff)
    q = diff.quantile(confidence)
    lcb, ucb = r - q * diff.se, r + q * diff.se
    detectable = tolerance + (q + diff.quantile(power)) * diff.se
    return Verdict(r, lcb, ucb, tolerance, detectable, bool(lcb > tolerance), diff)


@dataclass
class CellCheck:
    row: str
    column: str
    direction: str
    candidate: float
    baseline: float
    verdict: Verdict | None  # None: the cell is missing from the candidate
    scope: str = ""

    @property
    def failed(self) -> bool:
        return self.verdict is None or self.verdict.failed

    def line(self) -> str:
        arrow = "↓" if self.direction == "lower" else "↑"
        if self.verdict is None:
            return f"FAIL {self.row} × {self.column}{arrow}: missing from the run (baseline {self.baseline:.4g})"
        v, d = self.verdict, self.verdict.difference
        status = "FAIL" if v.failed else "ok  "
        ci = f"[{d.ci_low:+.4g}, {d.ci_high:+.4g}]" if math.isfinite(d.ci_low) else "(no CI)"
        detect = f"; detects ≥ {v.detectable:.3g}" if math.isfinite(v.detectable) else ""
        return (f"{status} {self.row} × {self.column}{arrow}: {self.candidate:.4g} vs baseline {self.baseline:.4g}, "
                f"Δ {d.estimate:+.4g} {ci}, worse by ≥ {v.lower_bound:.3g} (one-sided) vs tolerance {v.tolerance:g}"
                f"{detect}; {'paired' if d.paired else 'UNPAIRED'}: {d.method}")


@dataclass
class CheckReport:
    cells: list[CellCheck] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    confidence: float = 0.95
    warnings: list[str] = field(default_factory=list)  # e.g. the run and the baseline differ in numerics

    @property
    def passed(self) -> bool:
        """No cell failed: `ganrm-bench check` exits 0."""
        return not self.failures

    @property
    def failures(self) -> list[CellCheck]:
        return [c for c in self.cells if c.failed]

    def lines(self) -> list[str]:
        return [*self.notes, *(c.line() for c in self.cells)]


def _best_cells(results: pd.DataFrame) -> pd.DataFrame:
    """Per (row, column): the pooled cell when present, else the seed cells (one per seed)."""
    results = results.copy()
    if "scope" not in results:
        results["scope"] = "seed"
    pooled = results[results["scope"] == "pooled"]
    keyed = set(zip(pooled["row"], pooled["column"]))
    rest = results[(results["scope"] != "pooled") & ~pd.Series(list(zip(results["row"], results["column"])), index=results.index).isin(keyed)]
    return pd.concat([pooled, rest])


def _units_of(units: pd.DataFrame | None, row: str, column: str, seed: int) -> Units | None:
    if units is None or units.empty:
        return None
    part = units[(units["row"] == row) & (units["column"] == column) & (units["seed"] == seed)]
    return Units.from_rows(part) if len(part) else None


def unpaired_difference(c: pd.Series, b: pd.Series, level: float) -> Difference:
    """Difference from two independent CIs (normal approximation of each half-width)."""
    from scipy import stats

    z = float(stats.norm.ppf(0.5 + level / 2))
    halves = [(float(x["ci_high"]) - float(x["ci_low"])) / 2 for x in (c, b)]
    est = float(c["value"]) - float(b["value"])
    if not all(math.isfinite(h) for h in halves):
        return Difference(est, math.nan, math.nan, math.nan, math.inf, math.nan, False, "no CI on one side: exact comparison", level)
    se = math.sqrt(sum((h / z) ** 2 for h in halves))
    p = float(2 * stats.norm.sf(abs(est) / se)) if se > 0 else (1.0 if est == 0 else 0.0)
    return Difference(est, est - z * se, est + z * se, se, math.inf, p, False,
                      "independent CIs (the cells do not share prompts, or the baseline has no units.parquet)", level)


def check_against_baseline(results: pd.DataFrame, baseline: pd.DataFrame, *, tolerance: dict[str, float] | None = None,
                           units: pd.DataFrame | None = None, baseline_units: pd.DataFrame | None = None,
                           confidence: float = 0.95) -> CheckReport:
    """Per baseline cell, the one-sided regression test of the module docstring."""
    tolerance = dict(tolerance or {})
    if not 0.5 < confidence < 1:
        raise UserError(f"--confidence {confidence}: give a one-sided confidence between 0.5 and 1 (e.g. 0.95)")
    known = set(baseline["column"])
    for col, tol in tolerance.items():
        if col not in known:
            raise UserError(f"--tolerance {col}={tol:g}: the baseline has no column {col!r}; columns: {', '.join(sorted(known))}")
        if not (tol >= 0 and math.isfinite(tol)):
            raise UserError(f"--tolerance {col}={tol:g}: a tolerance is a margin in the metric's units and must be ≥ 0")
    report = CheckReport(confidence=confidence)
    specs_c, specs_b = set(results.get("spec", [])), set(baseline.get("spec", []))
    cand, base = _best_cells(results), _best_cells(baseline)
    shared = set(zip(cand["row"], cand["column"])) & set(zip(base["row"], base["column"]))
    if specs_c and specs_b and specs_c != specs_b:
        if not shared:
            raise UserError(f"the run is of spec {sorted(specs_c)} and the baseline of spec {sorted(specs_b)}: no cell in common",
                            hint="check a run against a baseline of the same spec")
        report.notes.append(f"note: the run is of spec {sorted(specs_c)}, the baseline of {sorted(specs_b)}; comparing shared cells")
    for _, b in base.iterrows():
        row, col, seed = b["row"], b["column"], int(b["seed"])
        match = cand[(cand["row"] == row) & (cand["column"] == col)]
        if "scope" in b and b["scope"] == "pooled":
            match = match[match["scope"] == "pooled"] if (match["scope"] == "pooled").any() else match
        else:
            match = match[match["seed"] == seed] if (match["seed"] == seed).any() else match
        if match.empty:
            report.cells.append(CellCheck(row, col, b["direction"], math.nan, float(b["value"]), None))
            continue
        c = match.iloc[0]
        ub, uc = _units_of(baseline_units, row, col, seed), _units_of(units, row, col, int(c["seed"]))
        if ub is not None and uc is not None and ub.prompts_key == uc.prompts_key and ub.kind == uc.kind:
            d = difference(uc, ub, level=2 * confidence - 1)
        else:
            d = unpaired_difference(c, b, 2 * confidence - 1)
        # a margin of float rounding (1e-9 of the value): a re-run that differs in the last bits is no regression
        floor = 1e-9 * max(1.0, abs(float(b["value"])))
        verdict = regression_test(d, b["direction"], max(tolerance.get(col, 0.0), floor), confidence=confidence)
        report.cells.append(CellCheck(row, col, b["direction"], float(c["value"]), float(b["value"]), verdict, str(c.get("scope", ""))))
    return report
