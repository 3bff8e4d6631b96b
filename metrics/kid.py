"""KID: Kernel Inception Distance, the small-sample companion of FID (Bińkowski et al. 2018).

The squared MMD between sample and reference features with torchmetrics' kernel
(`torchmetrics.image.kid.poly_kernel`: k(x, y) = (γ·x·y + 1)^3, γ = 1/d by default) and its unbiased estimator
(`maximum_mean_discrepancy`: diagonal terms excluded), computed once over all N samples and M
reference items instead of averaged over random subsets: the full U-statistic is what the subset
average estimates, so it has no subset noise, and it splits exactly into prompt blocks. Per block
pair we keep Σk(x, x') and per block Σk(x, y); any leave-one-block-out value (the jackknife CI, paired
differences with `harness.stats`) is then a weighted sum of those, without recomputing a kernel.

Unlike FID, KID is unbiased in N, so values at different sample sizes compare. Params as FID's
(`features`, `features_params`, `ci`), plus `scale` (values are multiplied by it; 1000 gives the
common "KID × 10³").
"""

from __future__ import annotations

import contextlib
from typing import Any, ClassVar

import numpy as np
from pydantic import Field

from ganrm_bench.harness.errors import UserError
from ganrm_bench.harness.plugins.base import Item, ItemSet, MetricResult
from ganrm_bench.harness.plugins.fingerprint import plugin_fingerprint
from ganrm_bench.harness.store.keys import hash_key
from ganrm_bench.metrics import ci as cimod
from ganrm_bench.metrics.base import SetMetric, SetParams
from ganrm_bench.metrics.estimate import extractor_cost, inception_cost

ROWS = 1024  # kernel rows in memory at once: ROWS × max(N, M) floats


class KIDParams(SetParams):
    scale: float = Field(1.0, gt=0, description="values are multiplied by it (1000: KID×10³)")
    degree: int = Field(3, ge=1, description="torchmetrics' kernel degree")
    gamma: float | None = Field(None, gt=0, description="torchmetrics' kernel gamma; default 1/d. Features much larger "
                                "than Inception's make the cubic kernel explode: scale with gamma")
    coef: float = Field(1.0, description="torchmetrics' kernel coef")


def poly_kernel(x: np.ndarray, y: np.ndarray, degree: int = 3, gamma: float | None = None, coef: float = 1.0) -> np.ndarray:
    """torchmetrics' polynomial kernel (`torchmetrics.image.kid.poly_kernel`): (γ·x·y + coef)^degree, γ = 1/d by default."""
    gamma = 1.0 / x.shape[1] if gamma is None else gamma
    return (x @ y.T * gamma + coef) ** degree


class KernelBlocks:
    """Kernel sums by prompt block: xx[a, b] = Σ_{i∈a, j∈b, i≠j} k(x_i, x_j), xy[a] = Σ_{i∈a, j} k(x_i, y_j)."""

    def __init__(self, x: np.ndarray, block: np.ndarray, n_blocks: int, y: np.ndarray, yy_sum: float, kernel=poly_kernel):
        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        onehot = np.zeros((len(x), n_blocks))
        onehot[np.arange(len(x)), block] = 1.0
        self.n = onehot.sum(axis=0)
        self.xx = np.zeros((n_blocks, n_blocks))
        self.xy = np.zeros(n_blocks)
        for start in range(0, len(x), ROWS):
            part = slice(start, start + ROWS)
            kxx = kernel(x[part], x)
            kxx[np.arange(kxx.shape[0]), np.arange(start, start + kxx.shape[0])] = 0.0  # i ≠ j
            self.xx += onehot[part].T @ (kxx @ onehot)
            self.xy += onehot[part].T @ kernel(x[part], y).sum(axis=1)
        self.m, self.yy = len(y), float(yy_sum)

    def mmd2(self, weights: np.ndarray | None = None) -> float:
        """Unbiased MMD² of the samples in the blocks with weight 1 (all when None)."""
        w = np.ones_like(self.n) if weights is None else np.asarray(weights, dtype=np.float64)
        n = float(w @ self.n)
        if n < 2:
            return float("nan")
        return float(w @ self.xx @ w / (n * (n - 1)) + self.yy / (self.m * (self.m - 1)) - 2.0 * (w @ self.xy) / (n * self.m))

    def leave_one_out(self) -> np.ndarray:
        out = np.full(len(self.n), np.nan)
        used = self.n > 0
        for b in np.flatnonzero(used):
            w = used.astype(np.float64)
            w[b] = 0.0
            out[b] = self.mmd2(w)
        return out


class KID(SetMetric):
    """Kernel Inception Distance (unbiased MMD², torchmetrics' cubic polynomial kernel); lower is better."""

    name: ClassVar[str] = "kid"
    version: ClassVar[str] = "1"
    Params = KIDParams

    def convention(self) -> str:
        p = self.params
        scale = "" if p.scale == 1 else f" ×{p.scale:g}"
        gamma = "1/d" if p.gamma is None else f"{p.gamma:g}"
        return (f"kid{scale}: unbiased MMD² over all samples, torchmetrics poly kernel (γ·x·y+{p.coef:g})^{p.degree}, "
                f"γ={gamma}, features={p.features}")

    def estimate_unit(self, ctx: Any = None):
        """plan --estimate: the feature extractor per image (samples and reference); the kernel
        sums (numpy, milliseconds at these sizes) are not timed."""
        return inception_cost(ctx) if self.params.features == "inception" else extractor_cost(self.extractor(), ctx)

    def _features(self, items: list[Item], ctx: Any) -> np.ndarray:
        parts = [feats for _, feats in self._feature_chunks(items, ctx)]
        return np.concatenate(parts).astype(np.float64) if parts else np.zeros((0, 0))

    def reference_kernel(self, reference: ItemSet, ctx: Any) -> tuple[np.ndarray, float]:
        """Reference features and Σ_{i≠j} k(y_i, y_j), the latter cached as a store artifact."""
        items = self.select(list(reference.items), ctx, "reference")
        y = self._features(items, ctx)
        if len(y) < 2:
            raise UserError(f"metric {self.name!r}: the reference set {reference.key!r} has {len(y)} item(s); at least 2 are needed")
        key = hash_key({"kind": "kid-reference-kernel", "features": plugin_fingerprint(self.extractor(), ctx),
                        "kernel": [self.params.degree, self.params.gamma, self.params.coef],
                        "items": hash_key([it.key for it in items])})
        store = ctx.store
        if not store.has(key):
            # sharded (every process here together): no lock, or the holder would wait for shards the others can't make
            with contextlib.nullcontext() if getattr(ctx, "sharded", False) else store.lock(key):
                if not store.has(key):
                    total = 0.0
                    for start in range(0, len(y), ROWS):
                        k = self.kernel(y[start:start + ROWS], y)
                        k[np.arange(k.shape[0]), np.arange(start, start + k.shape[0])] = 0.0
                        total += float(k.sum())
                    with store.writing(key, {"producer": f"metric/{self.name}/reference-kernel", "reference": reference.key,
                                             "m": len(y), "yy_sum": total}):
                        pass
        return y, float(store.manifest(key)["yy_sum"])

    def kernel_blocks(self, samples: ItemSet, reference: ItemSet, ctx: Any) -> KernelBlocks:
        y, yy = self.reference_kernel(reference, ctx)
        items = self.select(list(samples.items), ctx, "samples")
        x = self._features(items, ctx)
        if len(x) < 2:
            raise UserError(f"metric {self.name!r}: the sample set {samples.key!r} has fewer than 2 items")
        if x.shape[1] != y.shape[1]:
            raise UserError(f"metric {self.name!r}: sample and reference features differ in size ({x.shape[1]} vs {y.shape[1]})")
        n_blocks = self.params.ci.blocks if self.params.ci.method != "none" else 1
        return KernelBlocks(x, self.block_ids(items, ctx, n_blocks), n_blocks, y, yy, kernel=self.kernel)

    def kernel(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        p = self.params
        return poly_kernel(x, y, p.degree, p.gamma, p.coef)

    def compute(self, samples: ItemSet, ctx: Any, *, reference: ItemSet | None = None) -> MetricResult:
        if reference is None:
            raise UserError(f"metric {self.name!r} needs a reference set", hint="give `reference:` for this metric in the spec")
        kb = self.kernel_blocks(samples, reference, ctx)
        scale = self.params.scale
        value = scale * kb.mmd2()
        loo = scale * kb.leave_one_out() if int((kb.n > 0).sum()) > 1 else None
        lo = hi = float("nan")
        if self.params.ci.method != "none" and loo is not None:  # KID can be negative: no floor at 0
            lo, hi = cimod.jackknife_interval(loo[np.isfinite(loo)], value, self.params.ci.level, floor=None)
        return MetricResult(value, lo, hi, n=int(kb.n.sum()), convention=self.convention(), extras={
            "n_reference": kb.m, "block_loo": None if loo is None else loo.tolist(), "block_n": kb.n.tolist(),
            "ci": cimod.describe(self.params.ci.model_copy(update={"method": "jackknife"}),
                                 f"{self.params.ci.blocks} prompt blocks of samples (reference fixed)"),
        })
