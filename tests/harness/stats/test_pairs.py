"""Pair statistics against independent computations: accuracy conventions by hand, the tie
calibration against a brute-force sweep of every threshold, McNemar's exact p against
scipy.stats.binomtest and against exact enumeration of the binomial."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest

from ganrm_bench.harness.stats.pairs import (
    bootstrap_interval,
    excluding_ties,
    labels_from_preference,
    mcnemar_exact,
    pair_correctness,
    tie_calibrated,
    unit_bootstrap,
)


def test_labels_from_preference_codes():
    assert labels_from_preference([1.0, 0.0, 0.5]).tolist() == [1.0, -1.0, 0.0]


def test_excluding_ties_by_hand():
    # labels: a, b, tie, a, b ; margins: right, right, (tie dropped), exact scorer tie, wrong
    margins = [0.3, -2.0, 5.0, 0.0, 0.1]
    labels = [1, -1, 0, 1, -1]
    out = excluding_ties(margins, labels)
    assert out.counted.tolist() == [True, True, False, True, True]
    assert out.correct.tolist() == [1.0, 1.0, 0.0, 0.0]  # a zero margin is wrong (ImageReward's rule)
    assert out.accuracy == pytest.approx(2 / 4)
    assert (out.label_ties, out.scorer_ties) == (1, 1)


def _brute_force_calibrated(m, h):
    """Every threshold tried, no cleverness: (best accuracy, smallest best threshold)."""
    candidates = [-math.inf] + sorted(set(abs(x) for x in m))
    best = None
    for t in candidates:
        acc = sum((abs(mi) <= t and hi == 0) or (abs(mi) > t and hi * mi > 0) for mi, hi in zip(m, h)) / len(m)
        if best is None or acc > best[0]:
            best = (acc, t)
    return best


def test_tie_calibration_by_hand():
    # two human ties with small margins, two clear preferences: ε = 0.1 turns both ties right
    margins = [0.05, -0.1, 1.0, -2.0, 0.3]
    labels = [0, 0, 1, -1, -1]
    out = tie_calibrated(margins, labels)
    assert out.epsilon == pytest.approx(0.1)
    assert out.correct.tolist() == [1.0, 1.0, 1.0, 1.0, 0.0]
    assert out.accuracy == pytest.approx(4 / 5) and out.scorer_ties == 2 and out.label_ties == 2


def test_tie_calibration_claims_no_ties_when_they_do_not_pay():
    out = tie_calibrated([0.5, -0.5, 0.2], [1, -1, 1])
    assert out.epsilon == -math.inf and out.accuracy == 1.0 and out.scorer_ties == 0


@pytest.mark.parametrize("seed", range(20))
def test_tie_calibration_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 40))
    h = rng.choice([-1, 0, 1], size=n, p=[0.4, 0.2, 0.4])
    m = np.round(rng.normal(size=n) + 0.5 * h, 1)  # rounding makes equal |margins| and exact zeros
    acc, eps = _brute_force_calibrated(m.tolist(), h.tolist())
    out = tie_calibrated(m, h)
    assert out.accuracy == pytest.approx(acc)
    assert out.epsilon == pytest.approx(eps)


def test_pair_correctness_rejects_unknown_convention():
    with pytest.raises(ValueError, match="exclude"):
        pair_correctness([1.0], [1], "half")


def _exact_mcnemar(only_a: int, only_b: int) -> float:
    """Two-sided exact p by enumerating Binomial(n, ½) with fractions: outcomes as extreme as observed."""
    n = only_a + only_b
    if n == 0:
        return 1.0
    k = min(only_a, only_b)
    tail = sum(Fraction(math.comb(n, i), 2 ** n) for i in range(k + 1))
    return float(min(Fraction(1), 2 * tail))


@pytest.mark.parametrize("only_a,only_b,both,neither", [(0, 0, 5, 3), (7, 2, 10, 1), (3, 3, 0, 0), (30, 12, 100, 40),
                                                        (1, 0, 0, 0), (0, 9, 4, 4)])
def test_mcnemar_exact_against_scipy_and_enumeration(only_a, only_b, both, neither):
    from scipy.stats import binomtest

    a = [1] * only_a + [0] * only_b + [1] * both + [0] * neither
    b = [0] * only_a + [1] * only_b + [1] * both + [0] * neither
    t = mcnemar_exact(a, b)
    assert (t.only_a, t.only_b, t.discordant) == (only_a, only_b, only_a + only_b)
    assert t.p_value == pytest.approx(_exact_mcnemar(only_a, only_b), rel=1e-9)
    if only_a + only_b:
        assert t.p_value == pytest.approx(binomtest(only_a, only_a + only_b, 0.5).pvalue, rel=1e-9)


def test_mcnemar_needs_the_same_pairs():
    with pytest.raises(ValueError, match="same pairs"):
        mcnemar_exact([1, 0], [1])


def test_unit_bootstrap_against_the_hand_computed_distribution():
    """Prompt A has two pairs, both right; prompt B one pair, wrong. Drawing 2 prompts with
    replacement: AA (¼) gives 4/4 = 1, AB or BA (½) gives 2/3, BB (¼) gives 0."""
    boot = unit_bootstrap([1.0, 1.0, 0.0], ["A", "A", "B"], resamples=40_000, rng=np.random.default_rng(0))
    freq = {v: float(np.mean(np.isclose(boot, v))) for v in (1.0, 2 / 3, 0.0)}
    assert sum(freq.values()) == pytest.approx(1.0)
    assert freq[1.0] == pytest.approx(0.25, abs=0.01) and freq[2 / 3] == pytest.approx(0.5, abs=0.01)
    assert freq[0.0] == pytest.approx(0.25, abs=0.01)
    lo, hi = bootstrap_interval([1.0, 1.0, 0.0], ["A", "A", "B"], level=0.9, resamples=4000, rng=np.random.default_rng(1))
    assert (lo, hi) == (0.0, 1.0)  # 5 % and 95 % quantiles of that distribution
    assert bootstrap_interval([1.0, 0.0], ["A", "A"], rng=np.random.default_rng(0)) == pytest.approx((math.nan, math.nan), nan_ok=True)
