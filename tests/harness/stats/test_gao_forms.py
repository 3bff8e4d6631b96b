"""Gao et al.'s best-of-n form R(d) = d(α − βd): the least-squares fit recovers known α, β on
synthetic points (exactly without noise; like numpy.polyfit with the intercept pinned, with noise),
its peak is α/(2β), and n_for_kl inverts log n − (n−1)/n. Their RL form R(d) = d(α − β log d): the
fit recovers known α, β, matches scipy's nonlinear least squares with noise, and peaks at exp(α/β − 1)."""

import math

import numpy as np
import pytest
from scipy.optimize import curve_fit, minimize_scalar

from ganrm_bench.harness.stats.gao_forms import fit_best_of_n, fit_rl, n_for_kl
from ganrm_bench.harness.stats.kl import best_of_n_kl

D = np.sqrt([best_of_n_kl(n) for n in (1, 2, 4, 8, 16, 32)])


def test_fit_recovers_known_alpha_beta_exactly():
    alpha, beta, r0 = 0.8, 0.5, 0.3
    r = r0 + D * (alpha - beta * D)
    fit = fit_best_of_n(D, r)
    assert (fit.alpha, fit.beta, fit.r0) == pytest.approx((alpha, beta, r0))
    assert fit.rss == pytest.approx(0, abs=1e-20) and fit.n_points == 6
    assert fit.vertex == pytest.approx(alpha / (2 * beta)) and fit.best_d("higher") == pytest.approx(0.8)
    assert math.isnan(fit.best_d("lower"))  # a maximum is no best point for a lower-is-better metric
    assert fit.value(0.8) == pytest.approx(r0 + 0.8 * (alpha - beta * 0.8))


def test_fit_with_noise_matches_an_independent_least_squares():
    rng = np.random.default_rng(0)
    d = np.linspace(0, 2.5, 40)
    r = 1.0 + d * (0.6 - 0.3 * d) + 0.01 * rng.standard_normal(d.size)
    fit = fit_best_of_n(d, r, r0=1.0)
    # independent: the normal equations of r − 1 on (d, −d²), solved by hand
    X = np.column_stack([d, -d ** 2])
    alpha, beta = np.linalg.solve(X.T @ X, X.T @ (r - 1.0))
    assert (fit.alpha, fit.beta) == pytest.approx((alpha, beta))
    assert fit.alpha == pytest.approx(0.6, abs=0.03) and fit.beta == pytest.approx(0.3, abs=0.02)


def test_lower_is_better_peak_and_no_peak():
    fid = 50 + D * (-8 + 3 * D)  # FID falls, then rises: α = −8, β = −3, best at d = 4/3
    fit = fit_best_of_n(D, fid)
    assert fit.best_d("lower") == pytest.approx(4 / 3) and math.isnan(fit.best_d("higher"))
    rising = fit_best_of_n(D, 1 + 0.5 * D + 0.1 * D ** 2)  # still improving: no peak within the form
    assert math.isnan(rising.best_d("higher"))


def test_fit_needs_a_reference_and_two_points():
    with pytest.raises(ValueError, match="d = 0"):
        fit_best_of_n(D[1:], D[1:])
    with pytest.raises(ValueError, match="two points"):
        fit_best_of_n(D[:2], [0.0, 1.0])


@pytest.mark.parametrize("n", [1, 2, 3.5, 10, 32, 1000])
def test_n_for_kl_inverts_the_best_of_n_kl(n):
    kl = math.log(n) - (n - 1) / n
    assert n_for_kl(kl) == pytest.approx(n, rel=1e-9)
    if float(n).is_integer():
        assert best_of_n_kl(int(n)) == pytest.approx(kl)


def test_rl_fit_recovers_known_alpha_beta_and_its_peak():
    d = np.array([0.0, 0.4, 0.8, 1.2, 1.6, 2.0, 2.4])
    alpha, beta, r0 = 0.5, 0.8, 0.2
    r = r0 + np.where(d > 0, d * (alpha - beta * np.log(np.where(d > 0, d, 1))), 0)
    fit = fit_rl(d, r)
    assert (fit.alpha, fit.beta, fit.r0) == pytest.approx((alpha, beta, r0)) and fit.rss == pytest.approx(0, abs=1e-20)
    # the peak, found numerically on the form itself
    opt = minimize_scalar(lambda x: -float(fit.value(x)), bounds=(1e-6, 5), method="bounded", options={"xatol": 1e-10})
    assert fit.best_d("higher") == pytest.approx(opt.x, rel=1e-5) == pytest.approx(math.exp(alpha / beta - 1))
    assert math.isnan(fit.best_d("lower")) and float(fit.value(0.0)) == pytest.approx(r0)


def test_rl_fit_with_noise_matches_scipy_curve_fit():
    rng = np.random.default_rng(1)
    d = np.linspace(0, 3, 30)
    r = 1.0 + d * (0.3 - 0.4 * np.log(np.where(d > 0, d, 1))) + 0.01 * rng.standard_normal(d.size)
    fit = fit_rl(d, r, r0=1.0)
    (a, b), _ = curve_fit(lambda x, a, b: 1.0 + x * (a - b * np.log(np.where(x > 0, x, 1))), d, r, p0=(0, 0))
    assert (fit.alpha, fit.beta) == pytest.approx((a, b), rel=1e-6)
    rising = fit_rl(d, 1 + d * (0.3 + 0.2 * np.log(np.where(d > 0, d, 1))))  # β < 0: convex, no maximum
    assert math.isnan(rising.best_d("higher"))
    with pytest.raises(ValueError, match="fit_rl needs r0 or a point at d = 0"):
        fit_rl(d[1:], r[1:])
