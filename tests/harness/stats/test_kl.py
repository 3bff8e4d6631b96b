"""KL estimators of over-optimisation curves, each against an independent computation: best-of-n's
closed form vs numerical integration of the best-of-n density of a continuous score; the Gaussian
step KL vs the log-density ratio's Monte-Carlo mean (scipy densities); the trajectory KL vs the
closed form of a linear-Gaussian chain whose tuned and reference means differ by a known shift."""

import math

import numpy as np
import pytest
from scipy import integrate, stats

from ganrm_bench.harness.stats.kl import best_of_n_kl, gaussian_step_kl, path_kl, sampled_path_kl


@pytest.mark.parametrize("n", [1, 2, 4, 8, 16, 32])
def test_best_of_n_kl_matches_the_integral_of_the_best_of_n_density(n):
    # the max of n draws from N(0, 1) has density p_n(s) = n Φ(s)^(n−1) φ(s); KL = ∫ p_n log(p_n / φ)
    def integrand(s):
        p = n * stats.norm.cdf(s) ** (n - 1) * stats.norm.pdf(s)
        return 0.0 if p == 0 else p * (math.log(n) + (n - 1) * stats.norm.logcdf(s))

    numeric, err = integrate.quad(integrand, -12, 12, limit=200)
    assert best_of_n_kl(n) == pytest.approx(numeric, abs=1e-7)


def test_best_of_n_kl_by_monte_carlo_on_another_score_distribution():
    # exponential scores: the max of n draws, KL as the sample mean of log(p_n / p) at draws of the max
    rng, n = np.random.default_rng(0), 8
    s = rng.exponential(size=(100_000, n)).max(1)
    log_ratio = math.log(n) + (n - 1) * np.log1p(-np.exp(-s))
    se = log_ratio.std() / math.sqrt(s.size)
    assert abs(log_ratio.mean() - best_of_n_kl(n)) < 4 * se


@pytest.mark.parametrize("bad", [0, -1, 2.5])
def test_best_of_n_kl_refuses_what_is_not_a_sample_count(bad):
    with pytest.raises(ValueError, match="whole n"):
        best_of_n_kl(bad)


def test_gaussian_step_kl_is_the_log_density_ratio_mean():
    rng = np.random.default_rng(1)
    mu_a, mu_b, sigma = np.array([0.3, -0.2, 1.1]), np.array([0.0, 0.4, 0.5]), 0.7
    x = mu_a + sigma * rng.standard_normal((100_000, 3))
    ratio = (stats.multivariate_normal(mu_a, sigma ** 2).logpdf(x) - stats.multivariate_normal(mu_b, sigma ** 2).logpdf(x))
    kl = gaussian_step_kl(mu_a[None], mu_b[None], sigma)[0]
    assert kl == pytest.approx(np.sum((mu_a - mu_b) ** 2) / (2 * sigma ** 2))
    assert abs(ratio.mean() - kl) < 4 * ratio.std() / math.sqrt(len(x))


def test_a_deterministic_step_is_refused():
    with pytest.raises(ValueError, match="σ_t > 0"):
        gaussian_step_kl(np.zeros((2, 3)), np.ones((2, 3)), 0.0)


def test_path_kl_of_a_known_shift_and_its_interval():
    # 12 prompts × 3 trajectories, 5 steps, 4-d samples: the tuned mean is the reference's + δ_t
    rng = np.random.default_rng(2)
    sigmas = np.array([1.0, 0.8, 0.6, 0.4, 0.2])
    shift = np.array([0.1, 0.05, 0.02, 0.02, 0.01])
    ref = rng.standard_normal((36, 5, 4))
    tuned = ref + shift[None, :, None]
    ids = [f"p{i // 3}" for i in range(36)]
    out = path_kl(tuned, ref, sigmas, ids)
    expected = float(np.sum(4 * shift ** 2 / (2 * sigmas ** 2)))
    assert out.value == pytest.approx(expected) and out.steps == 5 and out.n_prompts == 12
    assert out.ci_low == pytest.approx(expected) and out.ci_high == pytest.approx(expected)  # constant: no spread
    assert out.sqrt == pytest.approx(math.sqrt(expected))


def test_sampled_path_kl_of_a_linear_gaussian_chain():
    # x_{t−1} = a·x_t + c_t + σ_t ε (tuned) vs a'·x_t (reference); the step KL at state x is
    # ((a − a')x + c_t)²/(2σ_t²), whose mean over the tuned chain follows from the chain's moments
    a, a_ref, c, sigmas = 0.9, 0.8, np.array([0.3, 0.2, 0.1]), np.array([0.5, 0.4, 0.3])
    m, v, expected = 0.0, 1.0, 0.0  # x_T ~ N(0, 1)
    for t, s in enumerate(sigmas):
        expected += ((a - a_ref) ** 2 * (v + m ** 2) + 2 * (a - a_ref) * c[t] * m + c[t] ** 2) / (2 * s ** 2)
        m, v = a * m + c[t], a ** 2 * v + s ** 2
    rng = np.random.default_rng(3)
    n = 20_000  # 500 prompts × 40 trajectories
    x0 = rng.standard_normal((n, 1))
    out = sampled_path_kl(lambda x, t: a * x + c[t], lambda x, t: a_ref * x, sigmas, x0, [f"p{i % 500}" for i in range(n)], rng=rng)
    assert out.ci_low < expected < out.ci_high and out.n_prompts == 500
    assert out.value == pytest.approx(expected, rel=0.05)
