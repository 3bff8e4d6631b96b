"""Intervals that include training variance: what a Δ of a *trained* row means.

A row is trained when its samples' graph holds a training op (a reward model, a fine-tune: `Op.trains`).
Another seed retrains it, so the row's value varies with the seed beyond what resampling prompts
sees: a pooled interval over several seeds resamples prompt blocks of a *mixture* of the seeds'
trained models and never varies the model. Three rules (docs/statistics.md, "Trained rows"):

- ``seeds`` (two or more seeds): per-seed paired differences d_s (each on one seed's samples and
  trained models), then a t interval across seeds: estimate ± t_{S−1}·sd(d_s)/√S. The estimate is the
  pooled difference where there is one (the table's values), else the mean of the d_s. It estimates
  the expected difference over retraining and resampling on the benchmark's prompt set; the
  coverage simulation (benchmarks/perf/coverage_two_level.py) measures it.
- ``conditional`` (one seed): the within-seed paired interval, said to be conditional on this
  trained model.
- ``training`` (one seed, compared across numerics classes, where the other side's model is another
  draw of training): the within-seed variance plus 2·τ̂², τ̂² = var_s(Δ_s) the between-seed variance of
  the baseline's per-seed differences Δ_s of the same row against its comparison row (S − 1 df;
  Welch–Satterthwaite degrees of freedom for the sum). var_s(Δ_s) holds the training variance and the
  within-seed sampling variance of Δ, so it errs wide: in benchmarks/perf/coverage_two_level.py an
  unchanged commit retrained elsewhere fails 4.8 % of the time at a nominal 5 % with this rule, 11 %
  when the within-seed part is subtracted (floored at 0), 34 % with the conditional interval.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Sequence

import numpy as np
import pandas as pd

from ganrm_bench.harness.stats.paired import Difference, Units, difference, finish, nan_difference, welch_df

CONDITIONAL_NOTE = "conditional on this trained model (one seed: retraining is not in the interval)"


def across_seeds(per_seed: Sequence[Difference], *, level: float = 0.95, center: float | None = None,
                 estimate_inf: float = math.nan) -> Difference:
    """The t interval across seeds of per-seed differences (S − 1 df), centred on `center` (the pooled
    difference) when given, else on their mean. Fewer than two finite ones: the one, conditional."""
    ok = [d for d in per_seed if math.isfinite(d.estimate) and math.isfinite(d.se)]
    if len(ok) < 2:
        return conditional(ok[0]) if ok else nan_difference("no per-seed difference", level)
    values = np.array([d.estimate for d in ok])
    s = len(values)
    estimate = float(values.mean()) if center is None or not math.isfinite(center) else float(center)
    inner = ok[0].method.split(" over ")[0] if " over " in ok[0].method else ok[0].method
    method = f"t across {s} seeds of per-seed differences ({inner}); training and sampling variance"
    if not math.isfinite(estimate_inf):
        infs = np.array([d.estimate_inf for d in ok])
        estimate_inf = float(infs.mean()) if np.isfinite(infs).all() else math.nan
    return finish(estimate, float(values.std(ddof=1) / math.sqrt(s)), float(s - 1), all(d.paired for d in ok), method, level,
                  basis="seeds", estimate_inf=estimate_inf)


def conditional(d: Difference) -> Difference:
    """A one-seed difference of a trained row, marked as conditional on its trained model."""
    if d.basis == "conditional":
        return d
    return replace(d, basis="conditional", method=f"{d.method}; {CONDITIONAL_NOTE}")


def training_variance(deltas: Sequence[Difference]) -> tuple[float, int]:
    """(τ̂², its degrees of freedom S − 1) from a row's per-seed differences against its comparison
    row: their between-seed variance (module docstring). NaN below 2 seeds."""
    ok = [d.estimate for d in deltas if math.isfinite(d.estimate)]
    if len(ok) < 2:
        return math.nan, 0
    return float(np.var(ok, ddof=1)), len(ok) - 1


def with_training_variance(d: Difference, tau2: float, tau_df: int, *, level: float = 0.95) -> Difference:
    """A one-seed run−baseline difference of a trained cell whose two sides trained under different
    numerics (two independent draws of training): variance se² + 2τ̂²."""
    if not (math.isfinite(tau2) and math.isfinite(d.se)):
        return conditional(d)
    extra = math.sqrt(2.0 * tau2)
    se = math.sqrt(d.se ** 2 + 2.0 * tau2)
    df = welch_df([(d.se, d.df), (extra, float(tau_df))]) if extra > 0 else d.df
    method = f"{d.method}; + training variance 2·τ̂² = 2·{tau2:.3g} from the baseline's {tau_df + 1} seeds"
    return finish(d.estimate, se, df, d.paired, method, level, basis="training", estimate_inf=d.estimate_inf)


def row_difference(per_seed: Sequence[Difference], pooled: Difference | None, *, trained: bool,
                   level: float = 0.95) -> Difference:
    """The difference two rows of one run are reported with: untrained rows, the pooled (or the one
    seed's) paired difference; trained rows (either of the two), `across_seeds` with two or more
    seeds, else the one seed's difference marked `conditional`."""
    if not trained:
        if pooled is not None:
            return pooled
        return per_seed[0] if per_seed else nan_difference("no difference", level)
    if len(per_seed) >= 2:
        return across_seeds(per_seed, level=level, center=None if pooled is None else pooled.estimate,
                            estimate_inf=math.nan if pooled is None else pooled.estimate_inf)
    one = per_seed[0] if per_seed else pooled
    return conditional(one) if one is not None else nan_difference("no difference", level)


class UnitsIndex:
    """A run's long units table, split once by (row, column, seed): `get` gives one cell's Units."""

    def __init__(self, units: pd.DataFrame | None):
        self.parts: dict[tuple[str, str, int], pd.DataFrame] = {}
        if units is not None and not units.empty:
            for (row, column, seed), part in units.groupby(["row", "column", "seed"], sort=False):
                self.parts[(str(row), str(column), int(seed))] = part
        self.memo: dict[tuple[str, str, int], Units] = {}

    def get(self, row: str, column: str, seed: int) -> Units | None:
        key = (str(row), str(column), int(seed))
        if key not in self.memo and key in self.parts:
            self.memo[key] = Units.from_rows(self.parts[key])
        return self.memo.get(key)

    def seeds(self) -> list[int]:
        return sorted({s for _, _, s in self.parts if s >= 0})


def rows_difference(units: pd.DataFrame | UnitsIndex, row: str, against: str, column: str, *, trained: bool,
                    level: float = 0.95, seed: int = 0) -> Difference:
    """value(row) − value(against) in one run, from its units table, by `row_difference`: the seeds
    both rows have (seed ≥ 0), and the pooled cells (seed −1) when both have them."""
    index = units if isinstance(units, UnitsIndex) else UnitsIndex(units)
    per_seed = []
    for s in index.seeds():
        a, b = index.get(row, column, s), index.get(against, column, s)
        if a is not None and b is not None:
            per_seed.append(difference(a, b, level=level, seed=seed + s))
    a, b = index.get(row, column, -1), index.get(against, column, -1)
    pooled = difference(a, b, level=level, seed=seed) if a is not None and b is not None else None
    return row_difference(per_seed, pooled, trained=trained, level=level)
