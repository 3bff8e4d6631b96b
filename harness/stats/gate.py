"""The regression gate behind `ganrm-bench check`: a one-sided non-inferiority test per matched cell,
Holm-corrected across the cells.

Rule (per cell, stated in `check --help` and docs/statistics.md): let R be how much worse the
candidate is than the baseline (candidate − baseline for lower-is-better metrics, baseline −
candidate otherwise) and m the column's regression margin (explicit: `--margin` or the spec's
`gate: {margins: ...}`; else 0, any significant worsening fails). The cell's one-sided p-value is
that of H0: R ≤ m; a cell FAILS when its Holm-adjusted p-value is at most α = 1 − confidence (each
cell's own p without correction): the data show, with that family-wise confidence, a regression
larger than the margin.

Cells are matched (`harness.stats.matching`): seed cells on the seeds both sides share, pooled cells
only when both pool the same seeds at the same N. Untrained cells compare pooled (else seed by seed);
trained cells compare with training variance in R's interval (`harness.stats.twolevel`): per-seed
differences and a t across the shared seeds; one shared seed is conditional on the trained model,
or, when the two sides ran under different numerics, carries the baseline's training variance.
Every cell also reports the smallest regression it detects with 80 % power (uncorrected):
m + (q_conf + q_0.8)·se.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import pandas as pd

from ganrm_bench.harness.errors import UserError
from ganrm_bench.harness.stats.matching import Comparison, Sides, match_cells
from ganrm_bench.harness.stats.multiple import holm_adjust, uncorrected_familywise
from ganrm_bench.harness.stats.paired import Difference

NO_MARGIN = "margin 0: any significant worsening fails"


@dataclass
class Verdict:
    """One cell of `check`: the candidate's regression vs the baseline and the decision."""

    regression: float  # how much worse the candidate is (positive = worse), in the metric's units
    lower_bound: float  # one-sided lower confidence bound of the regression (uncorrected)
    upper_bound: float
    margin: float  # the regression margin: a regression up to it is allowed
    detectable: float  # smallest regression this comparison detects with 80% power (uncorrected)
    failed: bool  # the decision (after the family-wise correction when `check` applies one)
    difference: Difference
    p_value: float = math.nan  # one-sided, H0: regression ≤ margin
    p_adjusted: float = math.nan  # Holm-adjusted (NaN: no correction)


def one_sided_p(diff: Difference, value: float, *, upper: bool) -> float:
    """P-value of H1: estimate > value (`upper`) or estimate < value, from diff's se and t/normal df."""
    from scipy import stats

    if not math.isfinite(diff.estimate):
        return math.nan
    if not (math.isfinite(diff.se) and diff.se > 0):
        return 0.0 if (diff.estimate > value if upper else diff.estimate < value) else 1.0
    z = (diff.estimate - value) / diff.se
    dist, args = (stats.norm, ()) if math.isinf(diff.df) else (stats.t, (diff.df,))
    return float(dist.sf(z, *args) if upper else dist.cdf(z, *args))


def regression_test(diff: Difference, direction: str, margin: float, *, confidence: float = 0.95, power: float = 0.8,
                    floor: float = 0.0) -> Verdict:
    """Fail when the candidate is worse than the baseline by more than `margin` with the given
    one-sided confidence: lower confidence bound of (candidate worse-by) > margin (no correction;
    `check_against_baseline` replaces the decision by Holm's). `diff` is candidate − baseline.
    `detectable` is the true regression that this rule flags with probability `power` at this
    standard error: margin + (q_conf + q_power)·se. `floor` is added to the margin for the decision
    only (float rounding of a re-run)."""
    sign = 1.0 if direction == "lower" else -1.0  # lower-is-better: a larger value is worse
    r = sign * diff.estimate
    worse = Difference(r, math.nan, math.nan, diff.se, diff.df, math.nan, diff.paired, diff.method, diff.level)
    limit = margin + floor
    p = one_sided_p(worse, limit, upper=True) if math.isfinite(r) else 0.0
    if not math.isfinite(diff.se):
        return Verdict(r, r, r, margin, math.nan, not (math.isfinite(r) and r <= limit), diff, p)
    q = diff.quantile(confidence)
    lcb, ucb = r - q * diff.se, r + q * diff.se
    detectable = margin + (q + diff.quantile(power)) * diff.se
    return Verdict(r, lcb, ucb, margin, detectable, bool(lcb > limit), diff, p)


@dataclass
class CellCheck:
    row: str
    column: str
    direction: str
    candidate: float
    baseline: float
    verdict: Verdict | None  # None: the cell is missing from the candidate (or has no seed in common)
    scope: str = ""  # what was compared: "pooled seeds 0+1+2", "seed 0", "seeds 0,1,2"
    margin_source: str = ""
    reason: str = ""  # why a cell without a verdict has none

    @property
    def failed(self) -> bool:
        return self.verdict is None or self.verdict.failed

    @property
    def conditional(self) -> bool:
        """One seed of a trained row: the interval is conditional on the trained model."""
        return self.verdict is not None and self.verdict.difference.conditional

    def line(self) -> str:
        arrow = "↓" if self.direction == "lower" else "↑"
        where = f" [{self.scope}]" if self.scope else ""
        if self.verdict is None:
            return f"FAIL {self.row} × {self.column}{arrow}{where}: {self.reason or 'missing from the run'} (baseline {self.baseline:.4g})"
        v, d = self.verdict, self.verdict.difference
        status = "FAIL" if v.failed else "ok  "
        ci = f"[{d.ci_low:+.4g}, {d.ci_high:+.4g}]" if math.isfinite(d.ci_low) else "(no CI)"
        detect = f"; detects ≥ {v.detectable:.3g}" if math.isfinite(v.detectable) else ""
        p = f"; p {v.p_value:.3g}" if math.isfinite(v.p_value) else ""
        p += f", Holm p {v.p_adjusted:.3g}" if math.isfinite(v.p_adjusted) else ""
        mark = " ‡ conditional on this trained model" if d.conditional else ""
        return (f"{status} {self.row} × {self.column}{arrow}{where}: {self.candidate:.4g} vs baseline {self.baseline:.4g}, "
                f"Δ {d.estimate:+.4g} {ci}, worse by ≥ {v.lower_bound:.3g} (one-sided) vs margin {v.margin:g}{p}{detect}{mark}; "
                f"{'paired' if d.paired else 'UNPAIRED'}: {d.method}")


@dataclass
class CheckReport:
    cells: list[CellCheck] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # header lines: matching, margins, correction, numerics
    confidence: float = 0.95
    warnings: list[str] = field(default_factory=list)
    correction: str = "holm"  # "holm" | "none"

    @property
    def passed(self) -> bool:
        """No cell failed: `ganrm-bench check` exits 0."""
        return not self.failures

    @property
    def failures(self) -> list[CellCheck]:
        return [c for c in self.cells if c.failed]

    @property
    def familywise_error(self) -> float:
        """The family-wise error rate the decisions keep (Holm: ≤ α; none: up to 1 − (1 − α)^m)."""
        alpha, m = 1.0 - self.confidence, sum(1 for c in self.cells if c.verdict is not None)
        return alpha if self.correction == "holm" else uncorrected_familywise(m, alpha)

    def lines(self) -> list[str]:
        return [*self.notes, *(c.line() for c in self.cells)]


def validate_margins(margins: dict[str, float], columns: set[str], *, flag: str = "--margin") -> None:
    for col, m in margins.items():
        if col not in columns:
            raise UserError(f"{flag} {col}={m:g}: the baseline has no column {col!r}; columns: {', '.join(sorted(columns))}")
        if not (isinstance(m, (int, float)) and m >= 0 and math.isfinite(m)):
            raise UserError(f"{flag} {col}={m}: a margin is a regression allowed in the metric's units and must be ≥ 0")


def check_against_baseline(results: pd.DataFrame, baseline: pd.DataFrame, *, margins: dict[str, float] | None = None,
                           margin_sources: dict[str, str] | None = None, units: pd.DataFrame | None = None,
                           baseline_units: pd.DataFrame | None = None, confidence: float = 0.95, correction: str = "holm",
                           numerics_comparable: bool = True, numerics_note: str = "",
                           tolerance: dict[str, float] | None = None) -> CheckReport:
    """Per matched cell, the one-sided regression test of the module docstring, Holm-corrected
    across cells (`correction="none"`: each cell at α). `margins` {column: margin} (`tolerance` is
    its old name); `numerics_comparable=False` (another numerics class, or unknown) makes trained
    cells with one shared seed carry the baseline's training variance."""
    margins = dict(margins if margins is not None else (tolerance or {}))
    if not 0.5 < confidence < 1:
        raise UserError(f"--confidence {confidence}: give a one-sided confidence between 0.5 and 1 (e.g. 0.95)")
    if correction not in ("holm", "none"):
        raise UserError(f"correction {correction!r}: choose holm or none")
    validate_margins(margins, set(baseline["column"]))
    sources = {c: (margin_sources or {}).get(c, "--margin") for c in margins}
    sides = Sides.of(results, baseline, units, baseline_units)
    _check_specs(results, baseline, sides)
    matched = match_cells(sides, level=2 * confidence - 1, numerics_comparable=numerics_comparable)
    report = CheckReport(confidence=confidence, correction=correction)
    for comp in matched.comparisons:
        report.cells.append(_judge(comp, margins, sources, confidence))
    _correct(report)
    report.notes += [matched.header(), _margin_line(margins, sources, sides.columns()), _correction_line(report),
                     *matched.notes, *([f"numerics: {numerics_note}"] if numerics_note else [])]
    return report


def _check_specs(results: pd.DataFrame, baseline: pd.DataFrame, sides: Sides) -> None:
    specs_c, specs_b = set(results.get("spec", [])), set(baseline.get("spec", []))
    if specs_c and specs_b and specs_c != specs_b and not sides.shared_cells():
        raise UserError(f"the run is of spec {sorted(specs_c)} and the baseline of spec {sorted(specs_b)}: no cell in common",
                        hint="check a run against a baseline of the same spec")


def _judge(comp: Comparison, margins: dict[str, float], sources: dict[str, str], confidence: float) -> CellCheck:
    margin = float(margins.get(comp.column, 0.0))
    source = sources.get(comp.column, "none")
    if comp.difference is None:
        return CellCheck(comp.row, comp.column, comp.direction, comp.candidate, comp.baseline, None, comp.scope, source, comp.reason)
    floor = 1e-9 * max(1.0, abs(comp.baseline)) if math.isfinite(comp.baseline) else 0.0  # a re-run's float rounding
    verdict = regression_test(comp.difference, comp.direction, margin, confidence=confidence, floor=floor)
    return CellCheck(comp.row, comp.column, comp.direction, comp.candidate, comp.baseline, verdict, comp.scope, source)


def _correct(report: CheckReport) -> None:
    """Holm across the cells with a verdict: a cell fails when its adjusted p ≤ α."""
    judged = [c for c in report.cells if c.verdict is not None]
    if report.correction != "holm" or not judged:
        return
    alpha = 1.0 - report.confidence
    for cell, p in zip(judged, holm_adjust([c.verdict.p_value for c in judged])):
        cell.verdict.p_adjusted = p
        cell.verdict.failed = bool(p <= alpha) if math.isfinite(p) else cell.verdict.failed


def _margin_line(margins: dict[str, float], sources: dict[str, str], columns: list[str]) -> str:
    given = [f"{c}={margins[c]:g} ({sources[c]})" for c in columns if c in margins]
    none = [c for c in columns if c not in margins]
    parts = ([f"margins {', '.join(given)}"] if given else []) + ([f"{', '.join(none)}: {NO_MARGIN}"] if none else [])
    return " · ".join(parts)


def _correction_line(report: CheckReport) -> str:
    m = sum(1 for c in report.cells if c.verdict is not None)
    alpha = 1.0 - report.confidence
    if report.correction == "holm":
        return f"Holm over {m} cells: family-wise error ≤ {alpha:.0%} (one-sided)"
    return (f"no correction: each of {m} cells at {alpha:.0%}; family-wise error up to "
            f"{uncorrected_familywise(m, alpha):.0%} (if the cells were independent)")
