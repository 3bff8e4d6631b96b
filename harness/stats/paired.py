"""Paired differences between two table cells, and the one-sided regression test that `check` runs.

A cell is summarised by its *units*: what its confidence interval resamples.

- ``prompts`` (per-sample metrics: alignment, PickScore, ...): per prompt, the sum and the count of
  the per-sample values; the cell's value is Σsum / Σcount. Two cells sampled on the same prompts
  pair prompt by prompt: the bootstrap draws the same prompts for both, so the prompt's difficulty
  cancels in the difference.
- ``blocks`` (set metrics: FID, KID, FVD): the value with each prompt block left out in turn
  (delete-one-block jackknife). A prompt's block is a function of its id alone, so two cells on the
  same prompts share their blocks, and the jackknife of the difference uses the differences of the
  leave-one-out values (Efron & Stein; the same construction as `SetMetric.paired_difference`).

Two cells pair when they cover the same prompt set (`prompts_key`); otherwise the difference falls
back to independent intervals and says so (`paired=False`). Units are small (one float per prompt, or
one per block), so a committed baseline can carry them (`units.parquet` in a run directory)."""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from typing import Any, Literal, Sequence

import numpy as np


def prompts_key(prompt_ids: Sequence[str]) -> str:
    """Identity of the prompt set a cell covers (order-free)."""
    return hashlib.sha256("\n".join(sorted(set(map(str, prompt_ids)))).encode()).hexdigest()[:16]


@dataclass
class Units:
    """What a cell's interval resamples (see the module docstring)."""

    kind: Literal["prompts", "blocks"]
    value: float
    prompts_key: str
    ids: list[str] = field(default_factory=list)  # prompt ids (prompts) or block indexes as str (blocks)
    sums: np.ndarray | None = None  # prompts: per-prompt sum of per-sample values
    counts: np.ndarray | None = None  # prompts: per-prompt sample count
    loo: np.ndarray | None = None  # blocks: the value with block b left out (nan: empty block)

    @staticmethod
    def from_samples(values: Sequence[float], prompt_ids: Sequence[str]) -> "Units":
        """Per-prompt sums and counts of per-sample values (all seeds of a prompt in one unit)."""
        values = np.asarray(values, dtype=np.float64)
        ids = [str(p) for p in prompt_ids]
        order: dict[str, int] = {}
        index = np.array([order.setdefault(p, len(order)) for p in ids], dtype=np.int64)
        sums = np.bincount(index, weights=values, minlength=len(order))
        counts = np.bincount(index, minlength=len(order)).astype(np.float64)
        return Units("prompts", float(values.mean()) if values.size else math.nan, prompts_key(ids), list(order), sums, counts)

    @staticmethod
    def from_jackknife(value: float, loo: Sequence[float], prompt_ids: Sequence[str]) -> "Units":
        loo = np.asarray(loo, dtype=np.float64)
        return Units("blocks", float(value), prompts_key(prompt_ids), [str(i) for i in range(len(loo))], loo=loo)

    # -- long-format rows (units.parquet) ----------------------------------------------------------
    def to_rows(self) -> list[dict[str, Any]]:
        if self.kind == "prompts":
            return [{"kind": "prompts", "value": self.value, "prompts_key": self.prompts_key, "unit": u,
                     "sum": float(s), "count": float(c), "loo": math.nan} for u, s, c in zip(self.ids, self.sums, self.counts)]
        return [{"kind": "blocks", "value": self.value, "prompts_key": self.prompts_key, "unit": u,
                 "sum": math.nan, "count": math.nan, "loo": float(x)} for u, x in zip(self.ids, self.loo)]

    @staticmethod
    def from_rows(rows: Any) -> "Units":
        """Inverse of `to_rows` (a DataFrame of one cell's rows)."""
        first = rows.iloc[0]
        ids = [str(u) for u in rows["unit"]]
        if first["kind"] == "prompts":
            return Units("prompts", float(first["value"]), str(first["prompts_key"]), ids,
                         rows["sum"].to_numpy(float), rows["count"].to_numpy(float))
        return Units("blocks", float(first["value"]), str(first["prompts_key"]), ids, loo=rows["loo"].to_numpy(float))


@dataclass
class Difference:
    """a − b with its interval; `se` and `df` give the one-sided bounds `check` needs."""

    estimate: float
    ci_low: float
    ci_high: float
    se: float
    df: float  # degrees of freedom of the t reference (inf: normal)
    p_value: float  # two-sided, H0: no difference
    paired: bool
    method: str  # e.g. "paired bootstrap over 300 prompts"
    level: float = 0.95

    def quantile(self, q: float) -> float:
        from scipy import stats

        return float(stats.norm.ppf(q) if math.isinf(self.df) else stats.t.ppf(q, self.df))

    def excludes_zero(self) -> bool:
        return bool(self.ci_low > 0 or self.ci_high < 0)


def _nan_difference(why: str, level: float) -> Difference:
    return Difference(math.nan, math.nan, math.nan, math.nan, math.inf, math.nan, False, why, level)


def _finish(estimate: float, se: float, df: float, paired: bool, method: str, level: float) -> Difference:
    from scipy import stats

    if not (math.isfinite(se) and se >= 0):
        return _nan_difference(method + " (too few units for an interval)", level)
    dist = stats.norm if math.isinf(df) else stats.t(df)
    half = float(dist.ppf(0.5 + level / 2.0)) * se
    p = 1.0 if se == 0 and estimate == 0 else (0.0 if se == 0 else float(2 * dist.sf(abs(estimate) / se)))
    return Difference(float(estimate), float(estimate - half), float(estimate + half), float(se), df, p, paired, method, level)


def _boot_ratio(sums: np.ndarray, counts: np.ndarray, draws: np.ndarray) -> np.ndarray:
    return (draws @ sums) / (draws @ counts)


def difference(a: Units, b: Units, *, level: float = 0.95, resamples: int = 2000, seed: int = 0) -> Difference:
    """value(a) − value(b) with a paired interval when both cover the same prompts.

    prompts: bootstrap over prompts (the same draw for both cells when paired); the interval is
    estimate ± z·se with the bootstrap standard error, which keeps one-sided bounds consistent
    with the two-sided interval. blocks: delete-one-block jackknife, t interval with B−1 df.
    """
    if a.kind != b.kind:
        return _nan_difference(f"cannot compare a {a.kind} cell with a {b.kind} cell", level)
    estimate = a.value - b.value
    paired = a.prompts_key == b.prompts_key and len(a.ids) == len(b.ids)
    if a.kind == "prompts":
        rng = np.random.default_rng(seed)
        if paired:
            pos = {u: i for i, u in enumerate(b.ids)}
            order = np.array([pos[u] for u in a.ids])
            bs, bc = b.sums[order], b.counts[order]
            n = len(a.ids)
            draws = rng.multinomial(n, np.full(n, 1.0 / n), size=resamples).astype(np.float64)
            boot = _boot_ratio(a.sums, a.counts, draws) - _boot_ratio(bs, bc, draws)
            method = f"paired bootstrap over {n} prompts"
        else:
            na, nb = len(a.ids), len(b.ids)
            da = rng.multinomial(na, np.full(na, 1.0 / na), size=resamples).astype(np.float64)
            db = rng.multinomial(nb, np.full(nb, 1.0 / nb), size=resamples).astype(np.float64)
            boot = _boot_ratio(a.sums, a.counts, da) - _boot_ratio(b.sums, b.counts, db)
            method = f"unpaired bootstrap ({na} vs {nb} prompts: not the same prompt set)"
        if min(len(a.ids), len(b.ids)) < 2:
            return _nan_difference(method, level)
        return _finish(estimate, float(np.std(boot, ddof=1)), math.inf, paired, method, level)
    if paired:
        d = a.loo - b.loo
        d = d[np.isfinite(d)]
        return _finish(estimate, _jackknife_se(d), max(len(d) - 1, 1), True,
                       f"paired delete-one-block jackknife over {len(d)} prompt blocks", level)
    sa, sb = _jackknife_se(a.loo[np.isfinite(a.loo)]), _jackknife_se(b.loo[np.isfinite(b.loo)])
    df = max(min(np.isfinite(a.loo).sum(), np.isfinite(b.loo).sum()) - 1, 1)
    return _finish(estimate, math.sqrt(sa * sa + sb * sb), float(df), False,
                   "unpaired: independent jackknife intervals (not the same prompt set)", level)


def _jackknife_se(loo: np.ndarray) -> float:
    k = len(loo)
    if k < 2:
        return math.nan
    return float(math.sqrt((k - 1) / k * np.sum((loo - loo.mean()) ** 2)))


def mean_interval(a: Units, *, level: float = 0.95, resamples: int = 2000, seed: int = 0) -> Difference:
    """A per-sample cell's own value with the interval `difference` uses (bootstrap over prompts,
    estimate ± z·se): e.g. a row's mean proxy reward in the over-optimisation table."""
    if a.kind != "prompts" or len(a.ids) < 2:
        return _nan_difference("needs per-prompt units of at least 2 prompts", level)
    n = len(a.ids)
    draws = np.random.default_rng(seed).multinomial(n, np.full(n, 1.0 / n), size=resamples).astype(np.float64)
    boot = _boot_ratio(a.sums, a.counts, draws)
    return _finish(a.value, float(np.std(boot, ddof=1)), math.inf, False, f"bootstrap over {n} prompts", level)
