"""Gao et al.'s functional form for best-of-n over-optimisation (arXiv 2210.10760, eq. 2):
the gold reward's change from the reference policy as a function of d = √KL is R(d) = d(α − βd),
a parabola through the origin whose vertex d* = α/(2β) is where gold peaks (β > 0). Fitted by
ordinary least squares on the points of a curve, with R(0) pinned to the reference's value."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np


@dataclass(frozen=True)
class BestOfNFit:
    """value(d) = r0 + d(α − βd): r0 the reference's value (d = 0), α, β by least squares."""

    alpha: float
    beta: float
    r0: float
    rss: float
    n_points: int

    def value(self, d: float | np.ndarray) -> float | np.ndarray:
        d = np.asarray(d, dtype=np.float64)
        return self.r0 + d * (self.alpha - self.beta * d)

    @property
    def vertex(self) -> float:
        """d* = α/(2β), the parabola's turning point (nan when β = 0)."""
        return self.alpha / (2 * self.beta) if self.beta != 0 else math.nan

    def best_d(self, direction: str = "higher") -> float:
        """Where the fitted curve is best for a metric of this direction: the vertex when it is a
        maximum (higher is better, β > 0) or a minimum (lower is better, β < 0) at d > 0; nan when
        the fitted curve keeps improving (no peak within the form)."""
        turns = self.beta > 0 if direction == "higher" else self.beta < 0
        d = self.vertex
        return d if turns and math.isfinite(d) and d > 0 else math.nan


def fit_best_of_n(d: Sequence[float], r: Sequence[float], r0: float | None = None) -> BestOfNFit:
    """Least-squares α, β of r − r0 = αd − βd² over the points (d, r). `r0`: the reference's value
    (d = 0); None takes it from a point at d = 0. Needs two points with d > 0."""
    d_arr, r_arr = np.asarray(d, dtype=np.float64), np.asarray(r, dtype=np.float64)
    ok = np.isfinite(d_arr) & np.isfinite(r_arr)
    d_arr, r_arr = d_arr[ok], r_arr[ok]
    if r0 is None:
        at_zero = r_arr[d_arr == 0]
        if at_zero.size == 0:
            raise ValueError("fit_best_of_n needs r0 or a point at d = 0 (the reference policy, n = 1)")
        r0 = float(at_zero.mean())
    if int(np.sum(d_arr > 0)) < 2:
        raise ValueError("fit_best_of_n needs at least two points with d > 0")
    design = np.column_stack([d_arr, -d_arr ** 2])
    (alpha, beta), *_ = np.linalg.lstsq(design, r_arr - r0, rcond=None)
    resid = r_arr - r0 - design @ np.array([alpha, beta])
    return BestOfNFit(float(alpha), float(beta), float(r0), float(resid @ resid), int(d_arr.size))


def n_for_kl(kl: float) -> float:
    """The (real) n whose best-of-n KL is `kl`: the inverse of log n − (n−1)/n, which increases in n
    (bisection; 1 for kl ≤ 0, nan for nan)."""
    if not math.isfinite(kl):
        return math.nan if math.isnan(kl) else math.inf
    if kl <= 0:
        return 1.0
    lo, hi = 1.0, 2.0
    while _kl(hi) < kl:
        lo, hi = hi, hi * 2
    for _ in range(200):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if _kl(mid) < kl else (lo, mid)
        if hi - lo < 1e-12 * hi:
            break
    return (lo + hi) / 2


def _kl(n: float) -> float:
    """log n − (n−1)/n for real n ≥ 1 (harness.stats.kl.best_of_n_kl is its whole-n case)."""
    return math.log(n) - (n - 1) / n
