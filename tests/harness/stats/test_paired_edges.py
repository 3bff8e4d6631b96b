"""The parts of harness/stats/paired.py that `make mutants` found unguarded: the jackknife intervals
(paired and unpaired) and their p-values against the t formulas written out, the unpaired bootstrap's
standard error, `excludes_zero`, and the too-few-units cases that must give no interval."""

import math

import numpy as np
import pytest
from scipy import stats

from ganrm_bench.harness.stats.paired import Difference, Units, difference, mean_interval


def jackknife_se(loo: np.ndarray) -> float:
    k = len(loo)
    return math.sqrt((k - 1) / k * float(np.sum((loo - loo.mean()) ** 2)))


A_LOO = np.array([10.2, 10.9, 9.7, 10.4, 11.1, 10.0])
B_LOO = np.array([9.9, 10.1, 9.8, 9.6, 10.4, 9.7])


def test_paired_jackknife_by_the_t_formula():
    ids = [f"p{i}" for i in range(12)]
    a, b = Units.from_jackknife(10.5, A_LOO, ids), Units.from_jackknife(9.8, B_LOO, ids)
    d = difference(a, b, level=0.9)
    se, df = jackknife_se(A_LOO - B_LOO), 5
    half = stats.t.ppf(0.95, df) * se
    assert d.paired and d.df == df and d.se == pytest.approx(se, rel=1e-12)
    assert (d.ci_low, d.ci_high) == pytest.approx((0.7 - half, 0.7 + half), rel=1e-12)
    assert d.p_value == pytest.approx(2 * stats.t.sf(0.7 / se, df), rel=1e-9)


def test_unpaired_jackknife_adds_the_variances():
    a = Units.from_jackknife(10.5, A_LOO, [f"p{i}" for i in range(12)])
    b = Units.from_jackknife(9.8, B_LOO[:4], [f"q{i}" for i in range(12)])  # another prompt set, 4 blocks
    d = difference(a, b)
    va, vb = jackknife_se(A_LOO) ** 2, jackknife_se(B_LOO[:4]) ** 2
    se = math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va ** 2 / 5 + vb ** 2 / 3)  # Welch–Satterthwaite: 6 and 4 blocks, g − 1 df each
    assert not d.paired and "unpaired" in d.method and d.df == pytest.approx(df, rel=1e-12)
    assert d.se == pytest.approx(se, rel=1e-12)
    assert d.ci_high - d.ci_low == pytest.approx(2 * stats.t.ppf(0.975, df) * se, rel=1e-12)


def test_unpaired_bootstrap_adds_the_variances():
    rng = np.random.default_rng(5)
    a, b = rng.normal(1.0, 1.0, 400), rng.normal(0.0, 2.0, 300)
    d = difference(Units.from_samples(a, [f"p{i}" for i in range(400)]), Units.from_samples(b, [f"q{i}" for i in range(300)]),
                   resamples=4000)
    se = math.sqrt(a.var(ddof=1) / 400 + b.var(ddof=1) / 300)  # one sample per prompt: means of independent prompts
    assert not d.paired and d.estimate == pytest.approx(a.mean() - b.mean()) and d.se == pytest.approx(se, rel=0.08)
    assert d.p_value == pytest.approx(2 * stats.norm.sf(abs(d.estimate) / d.se), rel=1e-9)


@pytest.mark.parametrize("low,high,excludes", [(0.1, 0.3, True), (-0.3, -0.1, True), (-0.1, 0.1, False), (0.0, 0.2, False),
                                               (-0.2, 0.0, False)])
def test_excludes_zero(low, high, excludes):
    assert Difference(0.5 * (low + high), low, high, 0.1, math.inf, math.nan, True, "x").excludes_zero() is excludes


def test_a_zero_standard_error_gives_an_exact_p_value():
    ids = ["p0", "p1", "p2"]
    same = difference(Units.from_jackknife(1.0, [1.0, 1.0, 1.0], ids), Units.from_jackknife(1.0, [1.0, 1.0, 1.0], ids))
    apart = difference(Units.from_jackknife(2.0, [2.0, 2.0, 2.0], ids), Units.from_jackknife(1.0, [1.0, 1.0, 1.0], ids))
    assert (same.se, same.p_value, apart.se, apart.p_value) == (0.0, 1.0, 0.0, 0.0)
    assert (apart.ci_low, apart.ci_high) == (1.0, 1.0)


def test_too_few_units_give_no_interval():
    one = Units.from_samples([1.0, 2.0], ["p0", "p0"])  # one prompt
    two = Units.from_samples([1.0, 2.0], ["p0", "p1"])
    assert math.isnan(difference(one, one).se) and math.isfinite(difference(two, two).se)
    assert math.isnan(difference(Units.from_jackknife(1.0, [1.0], ["p"]), Units.from_jackknife(0.0, [0.0], ["p"])).se)
    assert math.isnan(mean_interval(one).ci_low) and math.isfinite(mean_interval(two).ci_low)
    blocks = Units.from_jackknife(1.0, [1.0, 2.0, 3.0], ["p"])
    assert math.isnan(mean_interval(blocks).ci_low)  # a set metric's value has no per-prompt bootstrap
    mixed = difference(two, blocks)
    assert math.isnan(mixed.estimate) and "cannot compare" in mixed.method and not mixed.paired


def test_mean_interval_by_the_normal_formula():
    rng = np.random.default_rng(2)
    x = rng.normal(3.0, 1.5, 500)
    ci = mean_interval(Units.from_samples(x, [f"p{i}" for i in range(500)]), level=0.9, resamples=4000)
    se = x.std(ddof=1) / math.sqrt(500)
    assert ci.estimate == pytest.approx(x.mean()) and ci.se == pytest.approx(se, rel=0.08)
    assert ci.ci_high - ci.ci_low == pytest.approx(2 * stats.norm.ppf(0.95) * ci.se, rel=1e-12)
