"""Which cells of a run and a baseline `check` compares, and with which interval.

A results table has seed cells (scope "seed", one per seed) and, with several seeds, pooled cells
(scope "pooled", seed −1: the union of the seeds' samples, `seeds` "0+1+2", N = `n`). Rules:

- Seed cells compare on the seeds both sides share, seed by seed (same prompts, same seed: paired).
- Pooled cells compare only when both sides pool the same seed set at the same N (FID depends on N,
  and a seed-0 cell is not a sample of a three-seed pool); otherwise one line says why not.
- Untrained cells: the pooled comparison when there is one, else one comparison per shared seed.
- Trained cells (`trained`: the row's graph trains a model) with two or more shared seeds: one
  comparison, per-seed differences with a t across the shared seeds (`harness.stats.twolevel`); one
  shared seed: the within-seed difference, conditional on the trained model — or, when the two
  sides ran under different numerics, with the baseline's between-seed training variance added.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ganrm_bench.harness.errors import UserError
from ganrm_bench.harness.stats.paired import Difference, difference, finish, nan_difference, welch_df
from ganrm_bench.harness.stats.twolevel import UnitsIndex, across_seeds, conditional, training_variance, with_training_variance

POOLED = -1


def seed_set(value: Any) -> tuple[int, ...]:
    """"0+1+2" (or 0, "0", 0.0) as (0, 1, 2); () when unknown."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ()
    return tuple(sorted(int(float(x)) for x in str(value).split("+") if x.strip()))


def seeds_text(seeds) -> str:
    return ",".join(map(str, sorted(seeds))) or "none"


def normalise(results: pd.DataFrame) -> pd.DataFrame:
    """A results table with scope, seed, seeds, trained and n filled in (older tables lack some):
    a pooled cell without `seeds` pools the seeds of the seed cells of its (row, column)."""
    r = results.copy()
    r["scope"] = r["scope"].astype(object).where(r["scope"].notna(), "seed") if "scope" in r else "seed"
    r["seed"] = r["seed"].fillna(0).astype(int) if "seed" in r else np.where(r["scope"] == "pooled", POOLED, 0)
    for col, empty in (("trained", None), ("n", math.nan), ("se", math.nan), ("df", math.nan), ("compare_to", None)):
        if col not in r:
            r[col] = empty
    given = r["seeds"] if "seeds" in r else pd.Series([None] * len(r), index=r.index)
    seed_cells = r[r["scope"] != "pooled"].groupby(["row", "column"])["seed"].apply(lambda s: tuple(sorted(set(s))))
    sets = []
    for i, row in r.iterrows():
        known = seed_set(given.loc[i])
        if not known:
            known = (int(row["seed"]),) if row["scope"] != "pooled" else seed_cells.get((row["row"], row["column"]), ())
        sets.append("+".join(map(str, known)))
    r["seeds"] = sets
    return r


@dataclass
class Sides:
    """The run (candidate) and the baseline, normalised, with their units tables."""

    cand: pd.DataFrame
    base: pd.DataFrame
    cand_units: UnitsIndex
    base_units: UnitsIndex

    @staticmethod
    def of(results: pd.DataFrame, baseline: pd.DataFrame, units: pd.DataFrame | None, baseline_units: pd.DataFrame | None) -> "Sides":
        return Sides(normalise(results), normalise(baseline), UnitsIndex(units), UnitsIndex(baseline_units))

    def columns(self) -> list[str]:
        return list(dict.fromkeys(self.base["column"]))

    def shared_cells(self) -> set[tuple[str, str]]:
        return set(zip(self.cand["row"], self.cand["column"])) & set(zip(self.base["row"], self.base["column"]))

    def seeds(self, which: str) -> set[int]:
        frame = self.cand if which == "cand" else self.base
        return {int(s) for s in frame.loc[frame["scope"] != "pooled", "seed"]}


@dataclass
class Comparison:
    """One gated comparison: run vs baseline on one cell (or one seed of it)."""

    row: str
    column: str
    direction: str
    candidate: float
    baseline: float
    difference: Difference | None  # candidate − baseline; None: nothing to compare (reason says why)
    scope: str
    kind: str  # pooled | seed | seeds | conditional | training | missing
    reason: str = ""


@dataclass
class Matched:
    comparisons: list[Comparison] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    run_seeds: set[int] = field(default_factory=set)
    base_seeds: set[int] = field(default_factory=set)

    def header(self) -> str:
        shared = self.run_seeds & self.base_seeds
        kinds = Counter(c.kind for c in self.comparisons)
        said = {"pooled": "pooled (same seeds, same N)", "seed": "seed by seed", "seeds": "trained: t across the shared seeds",
                "conditional": "trained, one seed: conditional on the trained model",
                "training": "trained, one seed: + the baseline's training variance", "missing": "missing from the run"}
        parts = [f"{n} {said[k]}" for k, n in kinds.items()]
        return (f"matched seeds {seeds_text(shared)} (run {seeds_text(self.run_seeds)}; baseline {seeds_text(self.base_seeds)}): "
                + "; ".join(parts))


def match_cells(sides: Sides, *, level: float, numerics_comparable: bool = True) -> Matched:
    """Every baseline cell's comparisons (module docstring), in the baseline's order."""
    out = Matched(run_seeds=sides.seeds("cand"), base_seeds=sides.seeds("base"))
    if not out.run_seeds & out.base_seeds:
        raise UserError(f"the run has seeds {seeds_text(out.run_seeds)} and the baseline {seeds_text(out.base_seeds)}: "
                        "no seed in common, so no cell pairs", hint=f"run with --seed {min(out.base_seeds, default=0)}")
    unknown_trained = False
    cand = {key: part for key, part in sides.cand.groupby(["row", "column"], sort=False)}
    for (row, column), b_cells in sides.base.groupby(["row", "column"], sort=False):
        c_cells = cand.get((row, column), sides.cand.iloc[:0])
        trained, known = _trained(c_cells, b_cells)
        unknown_trained |= not known
        cell = _CellPair(row, column, c_cells, b_cells, sides, level)
        out.comparisons += cell.compare(trained, numerics_comparable, out.notes)
    if unknown_trained:
        out.notes.append("note: neither side records which rows are trained (results written before `trained` was kept): "
                         "those cells are compared as untrained")
    out.notes = list(dict.fromkeys(out.notes))
    return out


def _trained(c_cells: pd.DataFrame, b_cells: pd.DataFrame) -> tuple[bool, bool]:
    """(trained, known): the run's record, else the baseline's; unknown counts as untrained."""
    for cells in (c_cells, b_cells):
        flags = [_flag(x) for x in cells["trained"]]
        flags = [f for f in flags if f is not None]
        if flags:
            return any(flags), True
    return False, False


def _flag(x: Any) -> bool | None:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return None
    return str(x).strip().lower() in ("true", "1", "1.0")


class _CellPair:
    """One (row, column) of both sides: its seed and pooled cells, and the comparisons the rules give."""

    def __init__(self, row: str, column: str, c_cells: pd.DataFrame, b_cells: pd.DataFrame, sides: Sides, level: float):
        self.row, self.column, self.sides, self.level = row, column, sides, level
        self.direction = str(b_cells["direction"].iloc[0])
        self.b_seed = {int(r["seed"]): r for _, r in b_cells[b_cells["scope"] != "pooled"].iterrows()}
        self.c_seed = {int(r["seed"]): r for _, r in c_cells[c_cells["scope"] != "pooled"].iterrows()}
        self.b_pool = _first(b_cells[b_cells["scope"] == "pooled"])
        self.c_pool = _first(c_cells[c_cells["scope"] == "pooled"])
        self.shared = sorted(set(self.b_seed) & set(self.c_seed))

    def pooled_match(self, notes: list[str]) -> bool:
        b, c = self.b_pool, self.c_pool
        if b is None and c is None:
            return False
        if b is not None and c is not None and b["seeds"] == c["seeds"] and _same_n(b["n"], c["n"]):
            return True
        notes.append(f"pooled cells not compared: {_pool_text('the run', c)}, {_pool_text('the baseline', b)}; "
                     f"compared on the shared seeds {seeds_text(self.shared)}")
        return False

    def compare(self, trained: bool, numerics_comparable: bool, notes: list[str]) -> list[Comparison]:
        if not self.c_seed and self.c_pool is None:
            return [self._missing("missing from the run")]
        pooled = self.pooled_match(notes)
        if not self.shared and not pooled:
            return [self._missing(f"no seed in common (run {seeds_text(self.c_seed)}, baseline {seeds_text(self.b_seed)})")]
        if trained:
            return [self._trained(pooled, numerics_comparable)]
        if pooled:
            return [self._comparison(self.c_pool, self.b_pool, self.diff(POOLED), f"pooled seeds {self.c_pool['seeds']}", "pooled")]
        return [self._comparison(self.c_seed[s], self.b_seed[s], self.diff(s), f"seed {s}", "seed") for s in self.shared]

    def _trained(self, pooled: bool, numerics_comparable: bool) -> Comparison:
        if len(self.shared) >= 2:
            centre = self.diff(POOLED) if pooled else None
            d = across_seeds([self.diff(s) for s in self.shared], level=self.level,
                             center=None if centre is None else centre.estimate,
                             estimate_inf=math.nan if centre is None else centre.estimate_inf)
            c, b = (self.c_pool, self.b_pool) if pooled else (None, None)
            cv = float(c["value"]) if c is not None else float(np.mean([self.c_seed[s]["value"] for s in self.shared]))
            bv = float(b["value"]) if b is not None else float(np.mean([self.b_seed[s]["value"] for s in self.shared]))
            return Comparison(self.row, self.column, self.direction, cv, bv, d, f"seeds {seeds_text(self.shared)}", "seeds")
        if not self.shared:  # only the pooled cells match (their seed cells are gone): the pool, conditional
            return self._comparison(self.c_pool, self.b_pool, conditional(self.diff(POOLED)), f"pooled seeds {self.c_pool['seeds']}", "conditional")
        s = self.shared[0]
        d = self.diff(s)
        if numerics_comparable:
            return self._comparison(self.c_seed[s], self.b_seed[s], conditional(d), f"seed {s}", "conditional")
        tau2, tau_df = training_variance(self.baseline_deltas())
        d = with_training_variance(d, tau2, tau_df, level=self.level)
        return self._comparison(self.c_seed[s], self.b_seed[s], d, f"seed {s}", d.basis if d.basis == "training" else "conditional")

    def diff(self, seed: int) -> Difference:
        """Run − baseline on one seed's cells (POOLED: the pooled cells): paired when both have units
        on the same prompts, else from the cells' stored se and df."""
        c = self.c_pool if seed == POOLED else self.c_seed[seed]
        b = self.b_pool if seed == POOLED else self.b_seed[seed]
        uc = self.sides.cand_units.get(self.row, self.column, seed)
        ub = self.sides.base_units.get(self.row, self.column, seed)
        if uc is not None and ub is not None and uc.kind == ub.kind and uc.prompts_key == ub.prompts_key:
            return difference(uc, ub, level=self.level, seed=max(seed, 0))
        return unpaired(c, b, self.level)

    def baseline_deltas(self) -> list[Difference]:
        """The baseline's per-seed differences of this row against its comparison row."""
        out = []
        for s, b in self.b_seed.items():
            against = b.get("compare_to")
            if against is None or (isinstance(against, float) and math.isnan(against)):
                continue
            ua = self.sides.base_units.get(self.row, self.column, s)
            ub = self.sides.base_units.get(str(against), self.column, s)
            out.append(difference(ua, ub, level=self.level, seed=s) if ua is not None and ub is not None else _stored_delta(b, self.level))
        return out

    def _comparison(self, c: pd.Series, b: pd.Series, d: Difference, scope: str, kind: str) -> Comparison:
        return Comparison(self.row, self.column, self.direction, float(c["value"]), float(b["value"]), d, scope, kind)

    def _missing(self, reason: str) -> Comparison:
        b = self.b_pool if self.b_pool is not None else next(iter(self.b_seed.values()))
        return Comparison(self.row, self.column, self.direction, math.nan, float(b["value"]), None, "", "missing", reason)


def _first(frame: pd.DataFrame) -> pd.Series | None:
    return frame.iloc[0] if len(frame) else None


def _same_n(a: Any, b: Any) -> bool:
    try:
        return int(float(a)) == int(float(b))
    except (TypeError, ValueError):
        return False


def _pool_text(who: str, cell: pd.Series | None) -> str:
    if cell is None:
        return f"{who} has no pooled cell"
    n = cell.get("n")
    return f"{who} pools seeds {cell['seeds']}" + (f" (N {int(float(n))})" if _finite(n) else "")


def _finite(x: Any) -> bool:
    try:
        return math.isfinite(float(x))
    except (TypeError, ValueError):
        return False


def cell_se_df(cell: pd.Series) -> tuple[float, float]:
    """A cell's stored se and df, else the half-width of its 95 % CI over z₀.₉₇₅ (normal)."""
    if _finite(cell.get("se")):
        return float(cell["se"]), float(cell["df"]) if _finite(cell.get("df")) else math.inf
    from scipy import stats

    half = (float(cell["ci_high"]) - float(cell["ci_low"])) / 2 if _finite(cell.get("ci_high")) and _finite(cell.get("ci_low")) else math.nan
    return half / float(stats.norm.ppf(0.975)), math.inf


def unpaired(c: pd.Series, b: pd.Series, level: float) -> Difference:
    """Difference of two cells without shared units: independent se's (stored, or from 95 % CIs)."""
    (sc, dfc), (sb, dfb) = cell_se_df(c), cell_se_df(b)
    est = float(c["value"]) - float(b["value"])
    if not (math.isfinite(sc) and math.isfinite(sb)):
        return Difference(est, math.nan, math.nan, math.nan, math.inf, math.nan, False, "no CI on one side: exact comparison", level)
    return finish(est, math.sqrt(sc * sc + sb * sb), welch_df([(sc, dfc), (sb, dfb)]), False,
                  "independent intervals (the cells do not share prompts, or a side has no units)", level)


def _stored_delta(cell: pd.Series, level: float) -> Difference:
    """A seed cell's stored Δ against its comparison row (delta, delta_se/df, else its 95 % CI)."""
    from scipy import stats

    if not _finite(cell.get("delta")):
        return nan_difference("no stored Δ", level)
    if _finite(cell.get("delta_se")):
        se, df = float(cell["delta_se"]), float(cell["delta_df"]) if _finite(cell.get("delta_df")) else math.inf
    else:
        se, df = (float(cell["delta_ci_high"]) - float(cell["delta_ci_low"])) / 2 / float(stats.norm.ppf(0.975)), math.inf
    return finish(float(cell["delta"]), se, df, True, "stored Δ", level)
