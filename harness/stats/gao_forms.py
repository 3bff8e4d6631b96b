"""Gao et al.'s functional forms of over-optimisation (arXiv 2210.10760, eqs. 2 and 3): the gold
reward's change from the reference policy as a function of d = √KL is R(d) = d(α − βd) for best-of-n,
a parabola through the origin whose vertex d* = α/(2β) is where gold peaks (β > 0), and
R(d) = d(α − β log d) for RL (a policy trained against the proxy), which peaks at d* = exp(α/β − 1)
(β > 0). Both are linear in (α, β): fitted by ordinary least squares on the points of a curve, with
R(0) pinned to the reference's value."""

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


@dataclass(frozen=True)
class RLFit(BestOfNFit):
    """value(d) = r0 + d(α − β log d): Gao et al.'s form for RL against the proxy (value(0) = r0)."""

    def value(self, d: float | np.ndarray) -> float | np.ndarray:
        d = np.asarray(d, dtype=np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(d > 0, self.r0 + d * (self.alpha - self.beta * np.log(np.where(d > 0, d, 1.0))), self.r0)

    @property
    def vertex(self) -> float:
        """d* = exp(α/β − 1), where R'(d) = α − β(log d + 1) is 0 (nan when β = 0)."""
        if self.beta == 0:
            return math.nan
        x = self.alpha / self.beta - 1
        return math.exp(x) if x < 700 else math.inf


FORMS = {"best-of-n": "d(α − βd)", "rl": "d(α − β log d)"}


def fit_best_of_n(d: Sequence[float], r: Sequence[float], r0: float | None = None) -> BestOfNFit:
    """Least-squares α, β of r − r0 = αd − βd² over the points (d, r). `r0`: the reference's value
    (d = 0); None takes it from a point at d = 0. Needs two points with d > 0."""
    d_arr, r_arr, r0 = _points(d, r, r0, "fit_best_of_n")
    alpha, beta, rss = _least_squares(np.column_stack([d_arr, -d_arr ** 2]), r_arr - r0)
    return BestOfNFit(alpha, beta, r0, rss, int(d_arr.size))


def fit_rl(d: Sequence[float], r: Sequence[float], r0: float | None = None) -> RLFit:
    """Least-squares α, β of r − r0 = αd − β d log d over the points (d, r) (d log d → 0 at d = 0):
    the curve of a fine-tune along training against its KL to the untuned generator."""
    d_arr, r_arr, r0 = _points(d, r, r0, "fit_rl")
    d_log_d = np.where(d_arr > 0, d_arr * np.log(np.where(d_arr > 0, d_arr, 1.0)), 0.0)
    alpha, beta, rss = _least_squares(np.column_stack([d_arr, -d_log_d]), r_arr - r0)
    return RLFit(alpha, beta, r0, rss, int(d_arr.size))


def _points(d: Sequence[float], r: Sequence[float], r0: float | None, who: str) -> tuple[np.ndarray, np.ndarray, float]:
    d_arr, r_arr = np.asarray(d, dtype=np.float64), np.asarray(r, dtype=np.float64)
    ok = np.isfinite(d_arr) & np.isfinite(r_arr)
    d_arr, r_arr = d_arr[ok], r_arr[ok]
    if r0 is None:
        at_zero = r_arr[d_arr == 0]
        if at_zero.size == 0:
            raise ValueError(f"{who} needs r0 or a point at d = 0 (the reference policy: n = 1, step 0)")
        r0 = float(at_zero.mean())
    if int(np.sum(d_arr > 0)) < 2:
        raise ValueError(f"{who} needs at least two points with d > 0")
    return d_arr, r_arr, float(r0)


def _least_squares(design: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    (alpha, beta), *_ = np.linalg.lstsq(design, y, rcond=None)
    resid = y - design @ np.array([alpha, beta])
    return float(alpha), float(beta), float(resid @ resid)


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
