"""Bootstrap CIs: coverage on a synthetic metric with a known mean, and the per-sample metric base."""

import numpy as np
import pytest

from ganrm_bench.harness.errors import UserError
from ganrm_bench.metrics import ci as cimod
from ganrm_bench.metrics.base import PerSampleMetric


def test_prompt_bootstrap_covers_the_true_mean_about_95_percent():
    """Per-sample scores with a shared prompt effect (K samples per prompt): the interval from the
    bootstrap over prompts must contain the known mean in ≈95 % of repeated draws."""
    rng = np.random.default_rng(1)
    true_mean, prompts, k, draws = 0.3, 40, 4, 300
    groups = np.repeat(np.arange(prompts), k)
    params = cimod.CIParams(resamples=400)
    covered = 0
    for _ in range(draws):
        scores = true_mean + np.repeat(rng.normal(0, 1.0, prompts), k) + rng.normal(0, 1.0, prompts * k)
        _, lo, hi = cimod.mean_with_ci(scores, groups, params, rng)
        covered += lo <= true_mean <= hi
    coverage = covered / draws
    assert 0.91 <= coverage <= 0.985, coverage


def test_resampling_samples_instead_of_prompts_would_undercover():
    """Why prompts are the unit: with a strong prompt effect, treating the K samples of a prompt as
    independent gives too-narrow intervals; the prompt bootstrap is wider."""
    rng = np.random.default_rng(2)
    groups_prompt = np.repeat(np.arange(30), 5)
    scores = np.repeat(rng.normal(0, 2.0, 30), 5) + rng.normal(0, 0.2, 150)
    params = cimod.CIParams(resamples=500)
    _, lo_p, hi_p = cimod.mean_with_ci(scores, groups_prompt, params, np.random.default_rng(0))
    _, lo_s, hi_s = cimod.mean_with_ci(scores, np.arange(150), params, np.random.default_rng(0))
    assert (hi_p - lo_p) > 1.8 * (hi_s - lo_s)


def test_grouped_bootstrap_statistic_is_sum_over_size():
    values = np.array([1.0, 3.0, 10.0])
    groups = np.array([0, 0, 1])
    boot = cimod.bootstrap_group_means(values, groups, resamples=200, rng=np.random.default_rng(0))
    # resamples are {g0,g0}: 2, {g1,g1}: 10, {g0,g1}: 14/3
    assert set(np.round(boot, 6)) <= {2.0, 10.0, round(14 / 3, 6)}


def test_ci_none_gives_nan():
    value, lo, hi = cimod.mean_with_ci(np.arange(10.0), np.arange(10), cimod.CIParams(method="none"), np.random.default_rng(0))
    assert value == 4.5 and np.isnan(lo) and np.isnan(hi)


class CountingMetric(PerSampleMetric):
    """Test metric: the score of an image is its mean pixel value / 255."""

    name = "counting_test_metric"
    needs_prompts = False
    calls = 0

    def score_batch(self, images, prompts, ctx):
        type(self).calls += len(images)
        return np.array([np.asarray(im, dtype=np.float64).mean() / 255 for im in images])


def test_per_sample_metric_mean_groups_and_cache(ctx, write_items, rng):
    arrays = [np.full((8, 8, 3), v, dtype=np.uint8) for v in rng.integers(0, 256, 12)]
    samples = write_items(arrays, prompt_ids=[f"p{i // 3}" for i in range(12)])
    expected = np.array([a.mean() / 255 for a in arrays])
    CountingMetric.calls = 0
    metric = CountingMetric({"ci": {"resamples": 200}})
    result = metric.compute(samples, ctx)
    assert result.value == pytest.approx(expected.mean())
    assert np.allclose(result.per_sample, expected)
    assert result.extras["prompts"] == 4 and result.n == 12
    assert result.ci_low <= result.value <= result.ci_high
    again = CountingMetric({"ci": {"resamples": 200}, "batch_size": 5}).compute(samples, ctx)
    assert CountingMetric.calls == 12, "scores are cached per item, whatever the batch size"
    assert again.value == result.value and again.ci_low == result.ci_low  # seeded from ctx.seed


def test_ci_params_are_validated():
    with pytest.raises(Exception, match="level"):
        CountingMetric({"ci": {"level": 1.5}})
    with pytest.raises(Exception, match="extra|permitted"):
        CountingMetric({"ci": {"methd": "bootstrap"}})


def test_empty_sample_set_is_a_clear_error(ctx):
    from ganrm_bench.harness.plugins.base import ItemSet

    with pytest.raises(UserError, match="empty"):
        CountingMetric().compute(ItemSet("nothing", ()), ctx)
