"""Paired differences, pooled seeds and the regression gate on synthetic data, against direct
computations and by coverage (harness.stats, harness.stats.gate)."""

import math

import numpy as np
import pandas as pd
import pytest

from ganrm_bench.harness.stats.gate import check_against_baseline, regression_test
from ganrm_bench.harness.stats.paired import Units, difference


def two_rows(rng, n_prompts=200, k=2, shift=0.0, prompt_sd=1.0, noise_sd=0.3):
    """Per-sample scores of two rows on the same prompts: a shared prompt effect + independent noise."""
    effect = rng.normal(0, prompt_sd, n_prompts)
    ids = [f"p{i}" for i in range(n_prompts) for _ in range(k)]
    a = np.repeat(effect, k) + shift + rng.normal(0, noise_sd, n_prompts * k)
    b = np.repeat(effect, k) + rng.normal(0, noise_sd, n_prompts * k)
    return a, b, ids


def test_paired_prompt_difference_matches_a_direct_computation():
    rng = np.random.default_rng(0)
    a, b, ids = two_rows(rng)
    d = difference(Units.from_samples(a, ids), Units.from_samples(b, ids), resamples=4000)
    per_prompt = (a - b).reshape(200, 2).mean(axis=1)  # equal K: the paired statistic is a mean of per-prompt differences
    assert d.paired and d.estimate == pytest.approx(a.mean() - b.mean())
    assert d.se == pytest.approx(per_prompt.std(ddof=1) / math.sqrt(200), rel=0.1)
    assert d.ci_low < d.estimate < d.ci_high


def test_pairing_removes_the_shared_prompt_effect():
    rng = np.random.default_rng(1)
    a, b, ids = two_rows(rng, prompt_sd=2.0)
    paired = difference(Units.from_samples(a, ids), Units.from_samples(b, ids))
    other_ids = [f"q{i}" for i in range(len(ids))]  # the same numbers on another prompt set: unpaired
    unpaired = difference(Units.from_samples(a, ids), Units.from_samples(b, other_ids))
    assert paired.paired and not unpaired.paired and "unpaired" in unpaired.method
    assert paired.se < 0.25 * unpaired.se


def test_paired_interval_covers_the_true_difference():
    rng = np.random.default_rng(2)
    hits = 0
    for _ in range(150):
        a, b, ids = two_rows(rng, n_prompts=60, shift=0.1)
        d = difference(Units.from_samples(a, ids), Units.from_samples(b, ids), resamples=500, seed=int(rng.integers(1 << 30)))
        hits += d.ci_low <= 0.1 <= d.ci_high
    assert 0.89 <= hits / 150 <= 0.99, hits


def test_pooled_seeds_narrow_the_interval_and_keep_coverage():
    """Seeds nested in prompts: pooling 3 seeds' samples (same prompts) narrows the CI of a mean
    whose noise is per sample, and the pooled interval still covers the truth."""
    rng = np.random.default_rng(3)
    widths1, widths3, hits = [], [], 0
    for _ in range(100):
        effect = rng.normal(0, 0.3, 80)
        ids = [f"p{i}" for i in range(80)]
        seeds = [effect + rng.normal(0, 1.0, 80) for _ in range(3)]
        one = difference(Units.from_samples(seeds[0], ids), Units.from_samples(np.zeros(80), ids), resamples=400)
        pooled = difference(Units.from_samples(np.concatenate(seeds), ids * 3), Units.from_samples(np.zeros(80), ids), resamples=400)
        widths1.append(one.ci_high - one.ci_low)
        widths3.append(pooled.ci_high - pooled.ci_low)
        hits += pooled.ci_low <= 0.0 <= pooled.ci_high  # E[score] = 0
    assert np.mean(widths3) < 0.7 * np.mean(widths1)
    assert 0.88 <= hits / 100 <= 1.0, hits


def test_block_units_pair_by_leave_one_out_differences():
    loo_a = np.array([10.0, 11.0, 9.5, 10.5, 10.2])
    loo_b = loo_a - np.array([2.0, 2.1, 1.9, 2.05, 1.95])
    a = Units.from_jackknife(10.3, loo_a, ["p1", "p2"])
    b = Units.from_jackknife(8.3, loo_b, ["p2", "p1"])
    d = difference(a, b)
    dd = loo_a - loo_b
    se = math.sqrt(4 / 5 * ((dd - dd.mean()) ** 2).sum())
    assert d.paired and d.estimate == pytest.approx(2.0) and d.se == pytest.approx(se) and d.df == 4
    other = difference(a, Units.from_jackknife(8.3, loo_b, ["x"]))
    assert not other.paired and other.se > d.se


def test_units_round_trip_through_rows():
    u = Units.from_samples([1.0, 2.0, 4.0], ["a", "b", "a"])
    back = Units.from_rows(pd.DataFrame(u.to_rows()))
    assert back.ids == ["a", "b"] and list(back.sums) == [5.0, 2.0] and list(back.counts) == [2.0, 1.0]
    assert back.value == pytest.approx(7 / 3) and back.prompts_key == u.prompts_key


# ---------------------------------------------------------------------------------------------
# The regression gate.


def run_frame(values: dict[str, np.ndarray], ids, direction="higher"):
    """A results table and units of one seed for rows of per-sample scores (column `q`)."""
    rows, units = [], []
    for row, v in values.items():
        u = Units.from_samples(v, ids)
        rows.append({"spec": "s", "row": row, "column": "q", "seed": 0, "scope": "seed", "value": u.value,
                     "ci_low": u.value - 0.1, "ci_high": u.value + 0.1, "direction": direction, "convention": ""})
        units += [{"row": row, "column": "q", "seed": 0, **r} for r in u.to_rows()]
    return pd.DataFrame(rows), pd.DataFrame(units)


@pytest.fixture
def scores():
    rng = np.random.default_rng(4)
    effect = rng.normal(0, 1.0, 300)
    ids = [f"p{i}" for i in range(300)]
    noise = lambda: rng.normal(0, 0.2, 300)  # noqa: E731
    return effect, ids, noise


def test_gate_fails_a_planted_regression(scores):
    effect, ids, noise = scores
    base, base_u = run_frame({"dpo": effect + noise()}, ids)
    worse, worse_u = run_frame({"dpo": effect - 0.3 + noise()}, ids)
    rep = check_against_baseline(worse, base, tolerance={"q": 0.1}, units=worse_u, baseline_units=base_u)
    (cell,) = rep.cells
    assert cell.failed and cell.verdict.difference.paired and cell.verdict.lower_bound > 0.1
    assert "FAIL dpo × q" in cell.line() and "detects" in cell.line()


def test_gate_passes_an_improvement_and_noise_within_tolerance(scores):
    effect, ids, noise = scores
    base, base_u = run_frame({"dpo": effect + noise()}, ids)
    better, better_u = run_frame({"dpo": effect + 0.3 + noise()}, ids)
    same, same_u = run_frame({"dpo": effect - 0.02 + noise()}, ids)
    assert not check_against_baseline(better, base, tolerance={"q": 0.1}, units=better_u, baseline_units=base_u).failures
    rep = check_against_baseline(same, base, tolerance={"q": 0.1}, units=same_u, baseline_units=base_u)
    assert not rep.failures and rep.cells[0].verdict.detectable < 0.2
    assert not check_against_baseline(base, base, units=base_u, baseline_units=base_u).failures  # identical re-run


def test_unpaired_fallback_is_said_and_wider(scores):
    effect, ids, noise = scores
    base, base_u = run_frame({"dpo": effect + noise()}, ids)
    worse, worse_u = run_frame({"dpo": effect - 0.3 + noise()}, ids)
    paired = check_against_baseline(worse, base, units=worse_u, baseline_units=base_u).cells[0]
    unpaired = check_against_baseline(worse, base).cells[0]
    assert "UNPAIRED" in unpaired.line() and "paired" in paired.line()
    assert unpaired.verdict.difference.se > paired.verdict.difference.se


def test_gate_rejects_bad_tolerances_and_other_specs(scores):
    from ganrm_bench.harness.errors import UserError

    effect, ids, noise = scores
    base, _ = run_frame({"dpo": effect}, ids)
    with pytest.raises(UserError, match="must be ≥ 0"):
        check_against_baseline(base, base, tolerance={"q": -1})
    with pytest.raises(UserError, match="no column 'bogus'"):
        check_against_baseline(base, base, tolerance={"bogus": 1})
    other = base.assign(spec="t", row="rm10")
    with pytest.raises(UserError, match="no cell in common"):
        check_against_baseline(other, base)


def test_regression_test_direction_and_detectable():
    from ganrm_bench.harness.stats.paired import Difference

    d = Difference(2.0, 1.0, 3.0, 0.5, math.inf, 0.0, True, "x")
    fid = regression_test(d, "lower", margin=0.5)  # FID up by 2: worse
    acc = regression_test(d, "higher", margin=0.5)  # accuracy up by 2: better
    assert fid.failed and fid.lower_bound == pytest.approx(2.0 - 1.6449 * 0.5, abs=1e-3)
    assert not acc.failed and acc.regression == -2.0
    assert fid.detectable == pytest.approx(0.5 + (1.6449 + 0.8416) * 0.5, abs=1e-3)


# ---------------------------------------------------------------------------------------------
# The weighted delete-a-group jackknife, blocks paired by id, the bias-corrected value.


def group_means(rng, sizes, shift=0.0):
    """A mean over unequal groups: its leave-one-group-out values and the estimate."""
    g = np.repeat(np.arange(len(sizes)), sizes)
    y = rng.normal(shift, 1.0, int(np.sum(sizes)))
    loo = np.array([(y.sum() - y[g == j].sum()) / (len(y) - sizes[j]) for j in range(len(sizes))])
    return y, g, loo


SIZES = np.array([4, 6, 10, 15, 25, 40, 60, 90, 130, 220])


def test_weighted_jackknife_of_a_mean_has_the_group_means_as_pseudo_values():
    """For a mean, the pseudo-value h_j·θ̂ − (h_j − 1)·θ̂_(j) is group j's mean (algebra), so the
    weighted variance is (1/g)·Σ (ȳ_j − ȳ)²/(h_j − 1) and θ̂_J = θ̂."""
    y, g, loo = group_means(np.random.default_rng(5), SIZES)
    u = Units.from_jackknife(y.mean(), loo, ["a"], SIZES)
    h = SIZES.sum() / SIZES
    ybar = np.array([y[g == j].mean() for j in range(len(SIZES))])
    assert u.se_df()[0] ** 2 == pytest.approx(np.sum((ybar - y.mean()) ** 2 / (h - 1)) / len(SIZES))
    assert u.se_df()[1] == len(SIZES) - 1 and u.bias_corrected() == pytest.approx(y.mean())


def test_weighted_jackknife_is_unbiased_for_unequal_blocks_where_the_unweighted_is_not():
    rng = np.random.default_rng(6)
    estimates, weighted, unweighted = [], [], []
    for _ in range(1500):
        y, _, loo = group_means(rng, SIZES)
        estimates.append(y.mean())
        weighted.append(Units.from_jackknife(y.mean(), loo, ["a"], SIZES).se_df()[0] ** 2)
        unweighted.append(Units.from_jackknife(y.mean(), loo, ["a"]).se_df()[0] ** 2)
    truth = 1.0 / SIZES.sum()  # the variance of a mean of n unit-variance samples
    assert np.mean(weighted) == pytest.approx(truth, rel=0.06)
    assert np.mean(unweighted) > 1.1 * truth


def test_equal_blocks_give_the_unweighted_formulas():
    loo = np.array([10.0, 11.0, 9.5, 10.5, 10.2])
    a = Units.from_jackknife(10.3, loo, ["p"], np.full(5, 7.0))
    b = Units.from_jackknife(10.3, loo, ["p"])
    assert a.se_df() == pytest.approx(b.se_df())
    assert a.bias_corrected() == pytest.approx(5 * 10.3 - 4 * loo.mean())


def test_blocks_pair_by_id_not_by_position():
    loo_a = np.array([10.0, 11.0, 9.5, 10.5, 10.2])
    loo_b = loo_a - np.array([2.0, 2.1, 1.9, 2.05, 1.95])
    a = Units.from_jackknife(10.3, loo_a, ["p"])
    b = Units.from_jackknife(8.3, loo_b, ["p"])
    order = [3, 0, 4, 1, 2]
    shuffled = Units("blocks", 8.3, b.prompts_key, [b.ids[i] for i in order], loo=loo_b[order])
    assert difference(a, shuffled).se == pytest.approx(difference(a, b).se)
    assert difference(a, shuffled).se < 0.2 * difference(a, Units("blocks", 8.3, b.prompts_key, list(b.ids), loo=loo_b[order])).se


def test_block_sizes_round_trip_and_old_rows_read_as_equal():
    u = Units.from_jackknife(3.0, [2.9, 3.1, 3.2], ["p"], [10, 20, 30])
    back = Units.from_rows(pd.DataFrame(u.to_rows()))
    assert list(back.sizes) == [10.0, 20.0, 30.0]
    old = pd.DataFrame(u.to_rows()).assign(count=math.nan)  # units written before sizes were kept
    assert Units.from_rows(old).sizes is None


def test_bias_corrected_fid_removes_the_small_sample_bias():
    """FID of N samples is biased upward by about tr(Σ)/N and more; the jackknife's bias-corrected
    value (extrapolated to N → ∞) is close to the population distance, also for a Δ of lost
    diversity (variance 0.6 vs 1: equal-N Δs under-count it)."""
    from ganrm_bench.metrics.frechet import BlockStats, GaussianStats, block_jackknife, frechet_distance

    rng, d, n, blocks = np.random.default_rng(7), 16, 200, 10
    ref = GaussianStats.of(rng.normal(0, 1, (20000, d)))
    mu_r, cov_r = ref.mean_cov()

    def fid_units(scale):
        x = rng.normal(0, 1, (n, d)) * math.sqrt(scale)
        ids = rng.integers(0, blocks, n)
        bs = BlockStats(blocks, d)
        bs.update(x, ids)
        mu, cov = bs.total().mean_cov()
        return Units.from_jackknife(frechet_distance(mu, cov, mu_r, cov_r), block_jackknife(bs, ref), ["p"], bs.n)

    def population(scale):  # both Gaussians centred: Fréchet = d·(√scale − 1)² (up to the reference's own noise)
        return frechet_distance(np.zeros(d), scale * np.eye(d), mu_r, cov_r)

    raw, corrected, d_raw, d_inf = [], [], [], []
    for _ in range(60):
        a, b = fid_units(0.6), fid_units(1.0)
        raw.append(a.value)
        corrected.append(a.bias_corrected())
        d_raw.append(a.value - b.value)
        d_inf.append(a.bias_corrected() - b.bias_corrected())
    truth = population(0.6)
    assert abs(np.mean(corrected) - truth) < 0.25 * abs(np.mean(raw) - truth)
    delta = truth - population(1.0)
    assert abs(np.mean(d_inf) - delta) < 0.5 * abs(np.mean(d_raw) - delta)
