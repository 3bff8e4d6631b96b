"""The coverage simulation that retrains (benchmarks/perf/coverage_two_level.py), small: a trained
row's FID Δ needs the t across seeds; the pooled jackknife interval and a one-seed interval miss
the retraining, and `check`'s training-variance rule keeps an unchanged commit trained elsewhere
from failing. The script's full run (1,000 runs) gives the numbers in docs/statistics.md."""

from benchmarks.perf.coverage_two_level import simulate


def test_two_level_interval_covers_where_pooled_and_one_seed_do_not():
    r = simulate(worlds=1, replications=60, rng_seed=1)
    assert r["seed_sd_over_within_se"] > 1.5  # the world does retrain: a seed's Δ varies beyond its own se
    assert r["coverage_two_level"] >= 0.85, r
    assert r["coverage_pooled"] <= r["coverage_two_level"] - 0.08, r
    assert r["coverage_one_seed"] <= r["coverage_two_level"] - 0.08, r
    assert r["width_two_level"] > r["width_pooled"]
    # an unchanged commit whose reward model trained to another draw: the conditional rule cries wolf
    assert r["false_alarm_training"] <= 0.10 < r["false_alarm_conditional"], r
