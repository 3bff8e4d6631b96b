"""Statistics of a preference study: Wilson intervals for win rates and agreement rates, Cohen's
κ (two raters) or Fleiss' κ (more; Fleiss 1971, with a varying number of raters per
pair), and a bootstrap over pairs for κ's interval."""

from __future__ import annotations

import math

import numpy as np


def wilson_interval(successes: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion (Wilson 1927); (nan, nan) when n = 0."""
    if n == 0:
        return math.nan, math.nan
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def fleiss_kappa(counts: np.ndarray) -> float:
    """Fleiss' κ from a subjects × categories matrix of rating counts; subjects may have different
    numbers of raters (each at least 2)."""
    counts = np.asarray(counts, dtype=float)
    n_i = counts.sum(axis=1)
    if len(counts) == 0 or (n_i < 2).any():
        raise ValueError("every subject needs at least two ratings")
    p_i = ((counts ** 2).sum(axis=1) - n_i) / (n_i * (n_i - 1))
    p_j = counts.sum(axis=0) / n_i.sum()
    p_e = float((p_j ** 2).sum())
    return math.nan if p_e == 1 else float((p_i.mean() - p_e) / (1 - p_e))


def cohen_kappa(a: list[str], b: list[str]) -> float:
    """Cohen's κ of two raters' labels (Cohen 1960); the same number as scikit-learn's
    cohen_kappa_score, without its per-call overhead (the bootstrap calls it a thousand times)."""
    cats = sorted(set(a) | set(b))
    if len(cats) < 2 or not a:
        return math.nan  # one category used by both: κ undefined
    idx = {c: i for i, c in enumerate(cats)}
    confusion = np.zeros((len(cats), len(cats)))
    np.add.at(confusion, ([idx[x] for x in a], [idx[y] for y in b]), 1)
    confusion /= confusion.sum()
    p_o = np.trace(confusion)
    p_e = float(confusion.sum(axis=1) @ confusion.sum(axis=0))
    return float((p_o - p_e) / (1 - p_e))


def bootstrap_ci(values_fn, n_subjects: int, *, resamples: int = 1000, seed: int = 0) -> tuple[float, float]:
    """Percentile 95% interval of `values_fn(indices)` over subjects resampled with replacement."""
    rng = np.random.default_rng(seed)
    stats = []
    for _ in range(resamples):
        v = values_fn(rng.integers(0, n_subjects, n_subjects))
        if not math.isnan(v):
            stats.append(v)
    if len(stats) < resamples // 2:
        return math.nan, math.nan
    return float(np.percentile(stats, 2.5)), float(np.percentile(stats, 97.5))
