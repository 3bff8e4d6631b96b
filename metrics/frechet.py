"""Fréchet distance from streaming float64 sufficient statistics, with a block bootstrap.

Memory is independent of the number of samples N: a set is summarised by (n, Σx, Σxxᵀ) in
float64 (like torchmetrics' FID state). For the confidence interval the samples are split into
`blocks` groups by a hash of their key (so the split does not depend on order or batch size),
each group keeping its own statistics; a bootstrap resample draws whole groups with replacement.
Memory is then blocks·d² doubles (d = 2048: 32 MB per block).

The point estimate uses clean-fid's `frechet_distance` (scipy sqrtm of Σ₁Σ₂). Resamples use the
equivalent Tr√(Σ₁Σ₂) = Σᵢ√λᵢ(R Σ₁ R), R = √Σ_ref computed once, with a symmetric
eigendecomposition (faster and stable).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np


@dataclass
class GaussianStats:
    """n, Σx, Σxxᵀ of a set of feature vectors (float64)."""

    n: int
    s: np.ndarray
    ss: np.ndarray

    @classmethod
    def empty(cls, dim: int) -> "GaussianStats":
        return cls(0, np.zeros(dim), np.zeros((dim, dim)))

    @classmethod
    def of(cls, feats: np.ndarray) -> "GaussianStats":
        stats = cls.empty(np.asarray(feats).shape[1])
        stats.update(feats)
        return stats

    def update(self, feats: np.ndarray) -> None:
        x = np.asarray(feats, dtype=np.float64)
        self.n += x.shape[0]
        self.s += x.sum(axis=0)
        self.ss += x.T @ x

    def mean_cov(self) -> tuple[np.ndarray, np.ndarray]:
        if self.n < 2:
            raise ValueError(f"need at least 2 feature vectors for a covariance, got {self.n}")
        mu = self.s / self.n
        cov = (self.ss - self.n * np.outer(mu, mu)) / (self.n - 1)  # unbiased, as np.cov
        return mu, (cov + cov.T) / 2

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {"n": np.array(self.n), "s": self.s, "ss": self.ss}

    @classmethod
    def from_arrays(cls, arrays) -> "GaussianStats":
        return cls(int(arrays["n"]), np.asarray(arrays["s"], dtype=np.float64), np.asarray(arrays["ss"], dtype=np.float64))


class BlockStats:
    """Sufficient statistics of `blocks` disjoint groups of samples."""

    def __init__(self, blocks: int, dim: int):
        self.n = np.zeros(blocks, dtype=np.int64)
        self.s = np.zeros((blocks, dim))
        self.ss = np.zeros((blocks, dim, dim))

    @property
    def blocks(self) -> int:
        return len(self.n)

    def update(self, feats: np.ndarray, block_ids: np.ndarray) -> None:
        x = np.asarray(feats, dtype=np.float64)
        for b in np.unique(block_ids):
            xb = x[block_ids == b]
            self.n[b] += xb.shape[0]
            self.s[b] += xb.sum(axis=0)
            self.ss[b] += xb.T @ xb

    def total(self) -> GaussianStats:
        return GaussianStats(int(self.n.sum()), self.s.sum(axis=0), self.ss.sum(axis=0))

    def weighted(self, counts: np.ndarray) -> GaussianStats:
        """The statistics of a resample that takes block b `counts[b]` times."""
        w = np.asarray(counts, dtype=np.float64)
        return GaussianStats(int(w @ self.n), w @ self.s, np.tensordot(w, self.ss, axes=1))


def frechet_distance(mu1: np.ndarray, cov1: np.ndarray, mu2: np.ndarray, cov2: np.ndarray) -> float:
    """clean-fid's Fréchet distance (scipy sqrtm, with its singular-product fallback). A singular
    product (fewer samples than dimensions, dead feature units) is expected: its warning is muted."""
    from cleanfid.fid import frechet_distance as cleanfid_frechet
    from scipy.linalg import LinAlgWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LinAlgWarning)
        return float(cleanfid_frechet(mu1, cov1, mu2, cov2))


def psd_sqrt(cov: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh((cov + cov.T) / 2)
    return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def frechet_with_sqrt_ref(mu1: np.ndarray, cov1: np.ndarray, mu_ref: np.ndarray, cov_ref: np.ndarray,
                          sqrt_ref: np.ndarray) -> float:
    """The same distance via Tr√(Σ₁Σ_ref) = Σ√λ(R Σ₁ R): one symmetric eigendecomposition."""
    lam = np.linalg.eigvalsh(sqrt_ref @ cov1 @ sqrt_ref)
    tr_sqrt = np.sqrt(np.clip(lam, 0.0, None)).sum()
    diff = mu1 - mu_ref
    return float(diff @ diff + np.trace(cov1) + np.trace(cov_ref) - 2.0 * tr_sqrt)


def block_bootstrap(blocks: BlockStats, ref: GaussianStats, *, resamples: int, rng: np.random.Generator) -> np.ndarray:
    """Fréchet distances of `resamples` block-bootstrap resamples of the sample set (reference fixed)."""
    mu_ref, cov_ref = ref.mean_cov()
    sqrt_ref = psd_sqrt(cov_ref)
    used = np.flatnonzero(blocks.n > 0)
    out = np.full(resamples, np.nan)
    for r in range(resamples):
        counts = np.zeros(blocks.blocks)
        counts[used] = rng.multinomial(len(used), np.full(len(used), 1.0 / len(used)))
        stats = blocks.weighted(counts)
        if stats.n < 2:
            continue
        mu, cov = stats.mean_cov()
        out[r] = frechet_with_sqrt_ref(mu, cov, mu_ref, cov_ref, sqrt_ref)
    return out


def block_jackknife(blocks: BlockStats, ref: GaussianStats) -> np.ndarray:
    """Fréchet distances with each non-empty block left out in turn (reference fixed)."""
    mu_ref, cov_ref = ref.mean_cov()
    sqrt_ref = psd_sqrt(cov_ref)
    used = np.flatnonzero(blocks.n > 0)
    out = np.full(len(used), np.nan)
    for j, b in enumerate(used):
        counts = (blocks.n > 0).astype(np.float64)
        counts[b] = 0.0
        stats = blocks.weighted(counts)
        if stats.n >= 2:
            mu, cov = stats.mean_cov()
            out[j] = frechet_with_sqrt_ref(mu, cov, mu_ref, cov_ref, sqrt_ref)
    return out
