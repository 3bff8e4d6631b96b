"""The gate's decision rule on borderline cells (harness/stats/gate.py `regression_test`): a cell fails
when the one-sided lower confidence bound of the regression exceeds the margin — not its point
estimate, not its two-sided bound, not its upper bound — in both metric directions, with the t
reference when the difference has finite degrees of freedom.

Every case is built from a `Difference` directly and its bound worked by hand with the normal
(z₀.₉₅ = 1.6449, z₀.₈ = 0.8416, z₀.₉₇₅ = 1.9600) or t (t₀.₉₅,₄ = 2.1318) quantiles, so each one
sits on a side of the margin that a plausible one-line bug in the rule would flip."""

import math

import pytest

from ganrm_bench.harness.stats.gate import regression_test
from ganrm_bench.harness.stats.paired import Difference

Z95, Z80 = 1.6448536269514722, 0.8416212335729143


def diff(estimate: float, se: float, df: float = math.inf) -> Difference:
    """candidate − baseline with standard error `se` (the interval fields are not what the rule reads)."""
    return Difference(estimate, estimate - 1.96 * se, estimate + 1.96 * se, se, df, math.nan, True, "constructed", 0.95)


# (direction, candidate − baseline): a regression of 0.3 in the metric's units, whichever way is worse
WORSE_BY_03 = [("higher", -0.3), ("lower", +0.3)]


@pytest.mark.parametrize("direction,estimate", WORSE_BY_03)
def test_estimate_above_the_margin_with_the_lower_bound_below_it_passes(direction, estimate):
    # worse by 0.3 > margin 0.2, but se 0.1: lower bound 0.3 − 1.6449·0.1 = 0.1355 < 0.2 — not shown
    v = regression_test(diff(estimate, 0.1), direction, 0.2)
    assert v.regression == pytest.approx(0.3) and v.regression > 0.2
    assert v.lower_bound == pytest.approx(0.3 - Z95 * 0.1, abs=1e-12) and v.lower_bound < 0.2
    assert not v.failed


@pytest.mark.parametrize("direction,estimate", WORSE_BY_03)
def test_lower_bound_above_the_margin_fails(direction, estimate):
    # se 0.05: lower bound 0.3 − 0.0822 = 0.2178 > 0.2 — the data show a regression beyond the margin
    v = regression_test(diff(estimate, 0.05), direction, 0.2)
    assert v.lower_bound == pytest.approx(0.3 - Z95 * 0.05, abs=1e-12) and v.failed


@pytest.mark.parametrize("direction,estimate", WORSE_BY_03)
def test_the_bound_is_one_sided(direction, estimate):
    # se 0.055: one-sided bound 0.3 − 1.6449·0.055 = 0.2095 > 0.2 fails; a two-sided 95 % quantile
    # (1.96: 0.1922) would have let it pass
    v = regression_test(diff(estimate, 0.055), direction, 0.2)
    assert v.lower_bound == pytest.approx(0.3 - Z95 * 0.055, abs=1e-12) and v.failed
    assert 0.3 - 1.96 * 0.055 < 0.2


@pytest.mark.parametrize("direction,estimate", WORSE_BY_03)
def test_upper_bound_above_the_margin_alone_passes(direction, estimate):
    # worse by 0.3 with se 0.2: the interval [−0.029, 0.629] reaches past the margin 0.5 on its upper
    # side only; the estimate (0.3) is below the margin: nothing is shown
    v = regression_test(diff(estimate, 0.2), direction, 0.5)
    assert v.upper_bound == pytest.approx(0.3 + Z95 * 0.2, abs=1e-12) and v.upper_bound > 0.5
    assert not v.failed


@pytest.mark.parametrize("direction,estimate", [("higher", +0.3), ("lower", -0.3)])
def test_an_improvement_passes_however_certain(direction, estimate):
    v = regression_test(diff(estimate, 0.001), direction, 0.0)
    assert v.regression == pytest.approx(-0.3) and v.lower_bound < 0 and not v.failed


def test_direction_decides_which_side_is_worse():
    # the same Δ = +0.3 (se 0.05) is a regression for a lower-is-better column and an improvement otherwise
    assert regression_test(diff(0.3, 0.05), "lower", 0.2).failed
    assert not regression_test(diff(0.3, 0.05), "higher", 0.2).failed


def test_finite_degrees_of_freedom_use_the_t_quantile():
    # df = 4: t₀.₉₅ = 2.1318, lower bound 0.3 − 2.1318·0.05 = 0.1934 < 0.2 passes; the normal quantile
    # (0.2178) would fail it
    v = regression_test(diff(-0.3, 0.05, df=4), "higher", 0.2)
    assert v.lower_bound == pytest.approx(0.3 - 2.131846786 * 0.05, abs=1e-8) and not v.failed
    assert regression_test(diff(-0.3, 0.05, df=math.inf), "higher", 0.2).failed


def test_the_confidence_sets_the_quantile():
    # se 0.1: at 95 % the bound is 0.1355 (pass); at 80 % it is 0.3 − 0.8416·0.1 = 0.2158 (fail)
    assert not regression_test(diff(-0.3, 0.1), "higher", 0.2, confidence=0.95).failed
    v = regression_test(diff(-0.3, 0.1), "higher", 0.2, confidence=0.8)
    assert v.lower_bound == pytest.approx(0.3 - Z80 * 0.1, abs=1e-12) and v.failed


def test_a_bound_exactly_at_the_margin_passes():
    # se 0: the bound is the estimate; "exceeds the margin" is strict
    assert not regression_test(diff(-0.25, 0.0), "higher", 0.25).failed
    assert regression_test(diff(-0.2500001, 0.0), "higher", 0.25).failed


def test_detectable_regression_by_hand():
    # margin + (z₀.₉₅ + z₀.₈)·se = 0.2 + 2.4865·0.1
    v = regression_test(diff(-0.3, 0.1), "higher", 0.2)
    assert v.detectable == pytest.approx(0.2 + (Z95 + Z80) * 0.1, abs=1e-12)


@pytest.mark.parametrize("estimate,failed", [(-0.3, True), (-0.2, False), (0.5, False), (math.nan, True)])
def test_without_a_standard_error_the_comparison_is_exact(estimate, failed):
    # no interval on one side: fail when the regression exceeds the margin outright, or is unknown
    v = regression_test(diff(estimate, math.nan), "higher", 0.2)
    assert v.failed is failed and math.isnan(v.detectable)
