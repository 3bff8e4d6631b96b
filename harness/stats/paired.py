"""Paired differences between two table cells: what every Δ, `check` and the claims build on.

A cell is summarised by its *units*: what its confidence interval resamples.

- ``prompts`` (per-sample metrics: alignment, PickScore, ...): per prompt, the sum and the count of
  the per-sample values; the cell's value is Σsum / Σcount. Two cells sampled on the same prompts
  pair prompt by prompt: the bootstrap draws the same prompts for both, so the prompt's difficulty
  cancels in the difference.
- ``blocks`` (set metrics: FID, KID, FVD): the value with each prompt block left out in turn
  (delete-a-group jackknife), and each block's size (samples). A prompt's block is a function of its
  id alone, so two cells on the same prompts share their blocks, and the jackknife of the difference
  uses the differences of the leave-one-out values, block id by block id (Efron & Stein; the same
  construction as `SetMetric.paired_difference`). Blocks of unequal sizes get the weighted
  delete-a-group jackknife (Busing, Meijer & van der Leeden 1999): with n samples in g blocks of
  sizes m_j, h_j = n/m_j, pseudo-values θ̃_j = h_j·θ̂ − (h_j − 1)·θ̂_(j), the bias-corrected value
  θ̂_J = g·θ̂ − Σ_j (1 − m_j/n)·θ̂_(j) and the variance (1/g)·Σ_j (θ̃_j − θ̂_J)²/(h_j − 1); with equal
  sizes both reduce to the usual delete-one-block formulas. θ̂_J removes a bias of order 1/N: it is
  the value extrapolated to N → ∞ from N and the leave-one-out sizes (`Units.bias_corrected`).

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
    sizes: np.ndarray | None = None  # blocks: samples in each block (None: unknown, taken as equal)

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
    def from_jackknife(value: float, loo: Sequence[float], prompt_ids: Sequence[str], sizes: Sequence[float] | None = None) -> "Units":
        """Leave-one-block-out values (block b at position b) and, when known, each block's sample count."""
        loo = np.asarray(loo, dtype=np.float64)
        size = None if sizes is None else np.asarray(sizes, dtype=np.float64)
        if size is not None and size.shape != loo.shape:
            raise ValueError(f"{len(size)} block sizes for {len(loo)} leave-one-out values")
        return Units("blocks", float(value), prompts_key(prompt_ids), [str(i) for i in range(len(loo))], loo=loo, sizes=size)

    # -- the cell's own interval -----------------------------------------------------------------
    def se_df(self) -> tuple[float, float]:
        """Standard error and t degrees of freedom of the cell's own value (inf: normal). Per-prompt
        units: the linearised (delta-method) se of the ratio Σsum/Σcount over prompts; blocks: the
        weighted delete-a-group jackknife, g − 1 df."""
        if self.kind == "prompts":
            n = len(self.ids)
            if n < 2:
                return math.nan, math.inf
            total = float(self.counts.sum())
            resid = self.sums - (self.sums.sum() / total) * self.counts
            return float(math.sqrt(n / (n - 1) * float(resid @ resid)) / total), math.inf
        loo, sizes = _used_blocks(self.loo, self.sizes)
        return _jackknife_se(self.value, loo, sizes), float(max(len(loo) - 1, 1))

    def bias_corrected(self) -> float:
        """The jackknife's bias-corrected value θ̂_J (blocks; NaN for per-prompt units, which are
        means and unbiased): FID with its upward small-sample bias of order 1/N removed."""
        if self.kind != "blocks":
            return math.nan
        loo, sizes = _used_blocks(self.loo, self.sizes)
        return _jackknife_corrected(self.value, loo, sizes) if len(loo) >= 2 else math.nan

    # -- long-format rows (units.parquet) ----------------------------------------------------------
    def to_rows(self) -> list[dict[str, Any]]:
        """One row per unit; a block's `count` is its size (NaN when unknown)."""
        if self.kind == "prompts":
            return [{"kind": "prompts", "value": self.value, "prompts_key": self.prompts_key, "unit": u,
                     "sum": float(s), "count": float(c), "loo": math.nan} for u, s, c in zip(self.ids, self.sums, self.counts)]
        sizes = self.sizes if self.sizes is not None else np.full(len(self.loo), math.nan)
        return [{"kind": "blocks", "value": self.value, "prompts_key": self.prompts_key, "unit": u,
                 "sum": math.nan, "count": float(m), "loo": float(x)} for u, x, m in zip(self.ids, self.loo, sizes)]

    @staticmethod
    def from_rows(rows: Any) -> "Units":
        """Inverse of `to_rows` (a DataFrame of one cell's rows)."""
        first = rows.iloc[0]
        ids = [str(u) for u in rows["unit"]]
        if first["kind"] == "prompts":
            return Units("prompts", float(first["value"]), str(first["prompts_key"]), ids,
                         rows["sum"].to_numpy(float), rows["count"].to_numpy(float))
        sizes = rows["count"].to_numpy(float) if "count" in rows else None
        if sizes is not None and not np.isfinite(sizes).all():
            sizes = None  # written before block sizes were kept: taken as equal
        return Units("blocks", float(first["value"]), str(first["prompts_key"]), ids, loo=rows["loo"].to_numpy(float), sizes=sizes)


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
    # what the interval's variance includes: "prompts" (resampled prompts / blocks: sampling only),
    # "seeds" (per-seed differences, t across seeds: training and sampling), "conditional" (one seed
    # of a trained row: sampling only, conditional on that trained model), "training" (one seed, the
    # baseline's between-seed training variance added; harness.stats.twolevel)
    basis: str = "prompts"
    estimate_inf: float = math.nan  # blocks: the difference of the bias-corrected (N → ∞) values

    def quantile(self, q: float) -> float:
        from scipy import stats

        return float(stats.norm.ppf(q) if math.isinf(self.df) else stats.t.ppf(q, self.df))

    def excludes_zero(self) -> bool:
        return bool(self.ci_low > 0 or self.ci_high < 0)

    @property
    def conditional(self) -> bool:
        """One seed of a trained row: the interval leaves out what retraining would change."""
        return self.basis == "conditional"


def nan_difference(why: str, level: float = 0.95) -> Difference:
    return Difference(math.nan, math.nan, math.nan, math.nan, math.inf, math.nan, False, why, level)


def finish(estimate: float, se: float, df: float, paired: bool, method: str, level: float, **extra: Any) -> Difference:
    """A Difference with its two-sided interval at `level` and p-value from (estimate, se, df)."""
    from scipy import stats

    if not (math.isfinite(se) and se >= 0):
        return nan_difference(method + " (too few units for an interval)", level)
    args = () if math.isinf(df) else (df,)
    dist = stats.norm if math.isinf(df) else stats.t  # not frozen: freezing a distribution costs milliseconds
    half = float(dist.ppf(0.5 + level / 2.0, *args)) * se
    p = 1.0 if se == 0 and estimate == 0 else (0.0 if se == 0 else float(2 * dist.sf(abs(estimate) / se, *args)))
    return Difference(float(estimate), float(estimate - half), float(estimate + half), float(se), df, p, paired, method, level, **extra)


def _boot_ratio(sums: np.ndarray, counts: np.ndarray, draws: np.ndarray) -> np.ndarray:
    return (draws @ sums) / (draws @ counts)


def _prompts_difference(a: Units, b: Units, paired: bool, level: float, resamples: int, seed: int) -> Difference:
    """Bootstrap over prompts: the same draw for both cells when paired (prompts matched by id)."""
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
        return nan_difference(method, level)
    return finish(a.value - b.value, float(np.std(boot, ddof=1)), math.inf, paired, method, level)


def _blocks_difference(a: Units, b: Units, paired: bool, level: float) -> Difference:
    """Delete-a-group jackknife of the difference, block id by block id (t, g − 1 df)."""
    estimate = a.value - b.value
    if paired:
        pos = {u: i for i, u in enumerate(b.ids)}
        order = np.array([pos[u] for u in a.ids])
        d = a.loo - b.loo[order]
        sizes = _shared_sizes(a.sizes, None if b.sizes is None else b.sizes[order])
        loo, sizes = _used_blocks(d, sizes)
        weighted = " (weighted: unequal blocks)" if sizes is not None and len(set(sizes.tolist())) > 1 else ""
        return finish(estimate, _jackknife_se(estimate, loo, sizes), max(len(loo) - 1, 1), True,
                      f"paired delete-one-block jackknife over {len(loo)} prompt blocks{weighted}", level,
                      estimate_inf=_jackknife_corrected(estimate, loo, sizes) if len(loo) >= 2 else math.nan)
    (sa, dfa), (sb, dfb) = a.se_df(), b.se_df()
    return finish(estimate, math.sqrt(sa * sa + sb * sb), welch_df([(sa, dfa), (sb, dfb)]), False,
                  "unpaired: independent jackknife intervals (not the same prompt set)", level,
                  estimate_inf=a.bias_corrected() - b.bias_corrected())


def difference(a: Units, b: Units, *, level: float = 0.95, resamples: int = 2000, seed: int = 0) -> Difference:
    """value(a) − value(b) with a paired interval when both cover the same prompts.

    prompts: bootstrap over prompts (the same draw for both cells when paired); the interval is
    estimate ± z·se with the bootstrap standard error, which keeps one-sided bounds consistent
    with the two-sided interval. blocks: delete-a-group jackknife (weighted when the blocks'
    sizes differ), t interval with g−1 df, blocks matched by id.
    """
    if a.kind != b.kind:
        return nan_difference(f"cannot compare a {a.kind} cell with a {b.kind} cell", level)
    paired = a.prompts_key == b.prompts_key and sorted(a.ids) == sorted(b.ids)
    if a.kind == "prompts":
        return _prompts_difference(a, b, paired, level, resamples, seed)
    return _blocks_difference(a, b, paired, level)


def welch_df(parts: Sequence[tuple[float, float]]) -> float:
    """Welch–Satterthwaite degrees of freedom of a sum of independent variance parts (se, df)."""
    num = sum(se * se for se, _ in parts) ** 2
    den = sum((se * se) ** 2 / df for se, df in parts if math.isfinite(df) and df > 0)
    if den == 0:
        return math.inf
    return float(num / den) if num > 0 else 1.0


# -- the weighted delete-a-group jackknife ---------------------------------------------------------

def _used_blocks(loo: np.ndarray, sizes: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
    """The non-empty blocks' leave-one-out values and sizes."""
    keep = np.isfinite(loo)
    if sizes is not None:
        keep &= sizes > 0
        return loo[keep], sizes[keep]
    return loo[keep], None


def _shared_sizes(a: np.ndarray | None, b: np.ndarray | None) -> np.ndarray | None:
    """The block sizes of a paired difference: both cells' (their mean when they differ), or either's."""
    if a is None or b is None:
        return a if b is None else b
    return (a + b) / 2.0


def _jackknife_corrected(estimate: float, loo: np.ndarray, sizes: np.ndarray | None) -> float:
    """θ̂_J = g·θ̂ − Σ_j (1 − m_j/n)·θ̂_(j) (equal sizes: g·θ̂ − (g − 1)·mean θ̂_(j))."""
    g = len(loo)
    if sizes is None:
        return float(g * estimate - (g - 1) * loo.mean())
    n = float(sizes.sum())
    return float(g * estimate - np.sum((1.0 - sizes / n) * loo))


def _jackknife_se(estimate: float, loo: np.ndarray, sizes: np.ndarray | None) -> float:
    """The delete-a-group jackknife se; weighted by block size when sizes are known."""
    g = len(loo)
    if g < 2:
        return math.nan
    if sizes is None or np.all(sizes == sizes[0]):
        return float(math.sqrt((g - 1) / g * np.sum((loo - loo.mean()) ** 2)))
    h = float(sizes.sum()) / sizes
    pseudo = h * estimate - (h - 1.0) * loo
    centre = _jackknife_corrected(estimate, loo, sizes)
    return float(math.sqrt(np.sum((pseudo - centre) ** 2 / (h - 1.0)) / g))


def mean_interval(a: Units, *, level: float = 0.95, resamples: int = 2000, seed: int = 0) -> Difference:
    """A per-sample cell's own value with the interval `difference` uses (bootstrap over prompts,
    estimate ± z·se): e.g. a row's mean proxy reward in the over-optimisation table."""
    if a.kind != "prompts" or len(a.ids) < 2:
        return nan_difference("needs per-prompt units of at least 2 prompts", level)
    n = len(a.ids)
    draws = np.random.default_rng(seed).multinomial(n, np.full(n, 1.0 / n), size=resamples).astype(np.float64)
    boot = _boot_ratio(a.sums, a.counts, draws)
    return finish(a.value, float(np.std(boot, ddof=1)), math.inf, False, f"bootstrap over {n} prompts", level)
