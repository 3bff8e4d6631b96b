"""Claims about methods, registered before their numbers exist and judged as one family per table.

A claim says that in one run `row` beats `against` on `column` ("better": by more than `margin`)
or is not worse than it by more than `margin` ("not_worse": non-inferiority). Each is a one-sided
test of the paired difference row − against, with the interval rule of `harness.stats.twolevel`
(a t across seeds when either row is trained), and the claims of one table are Holm-corrected
together (`harness.stats.multiple`): a claim holds when its adjusted p-value is at most 1 −
confidence. The same one-sided test and correction as `check` (harness.stats.gate), so a claim and a
gate read the same numbers the same way. Tests register claims (id, rows, column, kind, margin) in
code before running anything (tests/claims/registry.py), so no threshold is chosen after a look.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, Sequence

import pandas as pd

from ganrm_bench.harness.stats.gate import one_sided_p
from ganrm_bench.harness.stats.multiple import holm_adjust
from ganrm_bench.harness.stats.paired import Difference
from ganrm_bench.harness.stats.twolevel import UnitsIndex, rows_difference


@dataclass(frozen=True)
class Claim:
    """`row` is better than `against` on `column` (by more than `margin`), or not worse by more than it."""

    id: str
    row: str
    against: str
    column: str
    kind: Literal["better", "not_worse"] = "better"
    margin: float = 0.0
    relative: bool = False  # the margin is a fraction of the `against` row's (pooled) value


@dataclass
class ClaimVerdict:
    claim: Claim
    difference: Difference  # value(row) − value(against), its two-sided interval at 2·confidence − 1
    direction: str  # the column's: lower | higher (is better)
    margin: float  # in the metric's units
    p_value: float  # one-sided, for the claim
    p_adjusted: float  # Holm over the family (= p_value without correction)
    holds: bool
    family: int  # claims in the family

    def measured(self) -> str:
        """The live numbers, for the test's message or xfail reason."""
        d, c = self.difference, self.claim
        level = f"{d.level:.0%}"
        margin = f"; margin {self.margin:.3g}" if self.margin else ""
        return (f"{c.row} − {c.against} {c.column}: Δ {d.estimate:+.4g}, {level} CI [{d.ci_low:+.4g}, {d.ci_high:+.4g}] "
                f"({d.method}){margin}; one-sided p {self.p_value:.3g}, Holm p {self.p_adjusted:.3g} over {self.family} claims")


def _value(results: pd.DataFrame, row: str, column: str) -> float:
    cells = results[(results["row"] == row) & (results["column"] == column)]
    pooled = cells[cells["scope"] == "pooled"] if "scope" in cells else cells.iloc[:0]
    return float((pooled if len(pooled) else cells)["value"].iloc[0])


def _trained(results: pd.DataFrame, *rows: str) -> bool:
    if "trained" not in results:
        return False
    flags = results[results["row"].isin(rows)]["trained"]
    return any(str(x).strip().lower() in ("true", "1", "1.0") for x in flags)


def judge_claims(results: pd.DataFrame, units: pd.DataFrame, claims: Sequence[Claim], *, confidence: float = 0.95,
                 correction: str = "holm") -> dict[str, ClaimVerdict]:
    """Every claim of one family (one table's run): its paired difference and one-sided test, Holm-corrected."""
    index = UnitsIndex(units)
    out: dict[str, ClaimVerdict] = {}
    for c in claims:
        direction = str(results[results["column"] == c.column]["direction"].iloc[0])
        d = rows_difference(index, c.row, c.against, c.column, trained=_trained(results, c.row, c.against), level=2 * confidence - 1)
        margin = c.margin * abs(_value(results, c.against, c.column)) if c.relative else c.margin
        sign = 1.0 if direction == "lower" else -1.0  # worse-by = sign · (row − against)
        worse = Difference(sign * d.estimate, math.nan, math.nan, d.se, d.df, math.nan, d.paired, d.method, d.level)
        p = one_sided_p(worse, -margin if c.kind == "better" else margin, upper=False)
        out[c.id] = ClaimVerdict(c, d, direction, margin, p, p, False, len(claims))
    alpha = 1.0 - confidence
    adjusted = holm_adjust([v.p_value for v in out.values()]) if correction == "holm" else [v.p_value for v in out.values()]
    for v, p in zip(out.values(), adjusted):
        v.p_adjusted, v.holds = p, bool(math.isfinite(p) and p <= alpha)
    return out
