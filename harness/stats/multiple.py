"""Family-wise error control for many one-sided tests at once (the gate's cells, a table's claims).

With m cells each tested at α, the chance that a change that worsens nothing fails somewhere is up
to 1 − (1 − α)^m for independent cells (54 % for 15 cells at 5 %). Holm's step-down procedure
keeps it at most α whatever the dependence between cells, and is uniformly more powerful than
Bonferroni: sort the p-values, reject p_(i) while p_(i) ≤ α/(m − i + 1). The adjusted p-values
p̃_(i) = max_{j ≤ i} min(1, (m − j + 1)·p_(j)) give the same decisions as p̃ ≤ α."""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np


def holm_adjust(p_values: Sequence[float]) -> list[float]:
    """Holm-adjusted p-values, in the input order (NaN stays NaN and does not count in m)."""
    p = np.asarray(p_values, dtype=np.float64)
    out = np.full(len(p), math.nan)
    idx = np.flatnonzero(np.isfinite(p))
    m = len(idx)
    order = idx[np.argsort(p[idx], kind="stable")]
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        out[i] = running
    return out.tolist()


def uncorrected_familywise(m: int, alpha: float) -> float:
    """The family-wise error of m independent tests at α each, uncorrected: 1 − (1 − α)^m."""
    return 1.0 - (1.0 - alpha) ** m
