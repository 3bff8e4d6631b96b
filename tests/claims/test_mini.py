"""The paper's claims, asserted in the miniature world: every mini table, seeds 0, 1 and 2 pooled.

Each claim is a paired difference of two rows over the union of the three seeds' samples (per-sample
metrics: bootstrap over prompts; FID/KID: delete-one-block jackknife over shared prompt blocks; see
docs/statistics.md). A directional claim holds when the one-sided 95% bound (the matching end of the
two-sided 90% interval) excludes zero in the claimed direction.

A claim that the data do not support is listed in EXPECTED_TO_FAIL: it then ends as an expected
failure whose reason is the live measurement, and if it ever holds the test fails as an unexpected
pass (strict), so the list is kept honest. Nothing here is tuned until a claim passes. No thread
count is pinned: every trained artifact is independent of it (docs/reproducibility.md).
Runs the real plugins end to end, cold: the slow part of `make test` (timing in benchmarks/README.md).
Tables 7 and 9 (about 23 of the claims' 55 CPU minutes) are marked `nightly`: `make test-nightly` runs
them, `make test` (what CI runs) does not, to keep CI under 30 minutes.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import spearmanr

from tests.helpers import REPO
from tests.helpers.paired_claims import check_claim, paired

MINI = REPO / "benchmarks" / "mini"
BASELINE = MINI.parents[1] / "reports" / "baselines" / "mini-table1"
SEEDS = [0, 1, 2]
pytestmark = [pytest.mark.slow, pytest.mark.timeout(3600)]

# claim id -> why it is listed (the numbers come from the live run, in the xfail reason). Measured
# with seeds 0-2 pooled (benchmarks/perf/bench_mini_claims.py): SFT − base FID −1.0, 95% CI [−7.3, +5.3]
# (seed 0 alone: −7.5 [−13.2, −1.7], which is why one seed is not enough); bootstrap vs the other
# GAN-RM variants: FID differences of −3.4, −1.1 and +1.1, none significant; RM@10 with N=500 vs N=50
# PPD: −2.2 [−6.7, +2.4] at 90%; multi-round DPO: FID 23.4 after round 1, 34.5 after round 2, 30.6
# after round 3 (all three below base's 42.5).
EXPECTED_TO_FAIL: dict[str, str] = {
    "table1.sft.fid": "SFT on GAN-RM's best of 10 does not lower FID significantly in the mini world",
    "table1.sft.kid": "nor KID",
    "table4.bootstrap_vs_sel_naive": "the mini world does not separate the GAN-RM variants (Table 4)",
    "table4.bootstrap_vs_sel_average": "the mini world does not separate the GAN-RM variants (Table 4)",
    "table4.bootstrap_vs_sel_voting": "the mini world does not separate the GAN-RM variants (Table 4)",
    "table7.rm10_n500_vs_n50": "RM@10 with a GAN-RM from 50 PPD digits selects about as well as from 500 "
                               "(DPO does gain from N=500)",
    "table5.round3_vs_round1.fid": "in the mini world round 1 of multi-round DPO is its best round",
    "table5.round3_vs_round1.kid": "in the mini world round 1 of multi-round DPO is its best round",
}


@pytest.fixture
def table(mini_tables):
    """table(name) -> that mini table's RunOutcome over SEEDS (tests/claims/conftest.py: one store per session)."""
    return mini_tables


def claim(claim_id: str, holds: bool, measured: str) -> None:
    check_claim(claim_id, holds, measured, EXPECTED_TO_FAIL)


def lower(claim_id: str, d, what: str) -> None:
    """The claim that `what` lowers the metric: the 90% interval's upper end is below zero."""
    claim(claim_id, d.ci_high < 0, f"{what}: Δ {d.estimate:+.3f}, 90% CI [{d.ci_low:+.3f}, {d.ci_high:+.3f}] ({d.method})")


def higher(claim_id: str, d, what: str) -> None:
    claim(claim_id, d.ci_low > 0, f"{what}: Δ {d.estimate:+.4f}, 90% CI [{d.ci_low:+.4f}, {d.ci_high:+.4f}] ({d.method})")


# -- Table 1: post-training with GAN-RM beats the base model ------------------------------------

@pytest.mark.parametrize("row", ["rm10", "sft", "dpo"])
@pytest.mark.parametrize("column", ["fid", "kid"])
def test_table1_method_lowers_fid_and_kid(table, row, column):
    lower(f"table1.{row}.{column}", paired(table("table1"), row, "base", column), f"{row} − base {column}")


@pytest.mark.parametrize("row", ["rm10", "dpo"])
def test_table1_method_raises_alignment(table, row):
    higher(f"table1.{row}.align", paired(table("table1"), row, "base", "align"), f"{row} − base align")


def test_table1_no_regression_against_the_committed_baseline(table):
    """What a lab's CI does on a new checkpoint: a paired `check` against the committed baseline."""
    from ganrm_bench.harness.report.rundir import load_run, load_units
    from ganrm_bench.harness.stats.gate import check_against_baseline

    baseline, _ = load_run(BASELINE)
    outcome = table("table1")
    report = check_against_baseline(outcome.results, baseline, units=outcome.units, baseline_units=load_units(BASELINE))
    print("\n".join(report.lines()))
    assert report.cells and not report.failures, report.lines()
    assert all(c.verdict.difference.paired for c in report.cells)


# -- Table 4: bootstrapping is the best GAN-RM variant for selection ---------------------------

@pytest.mark.parametrize("variant", ["sel_naive", "sel_average", "sel_voting"])
def test_table4_bootstrap_selects_better_than(table, variant):
    lower(f"table4.bootstrap_vs_{variant}", paired(table("table4"), "sel_bootstrap", variant, "fid"), f"bootstrap − {variant} FID")


# -- Tables 5 / 9: more rounds of multi-round DPO help -----------------------------------------

@pytest.mark.nightly
@pytest.mark.parametrize("column", ["fid", "kid"])
def test_table5_round3_beats_round1(table, column):
    lower(f"table5.round3_vs_round1.{column}", paired(table("table9"), "round3", "round1", column), f"round 3 − round 1 {column}")


# -- Table 7: more PPD helps --------------------------------------------------------------------

@pytest.mark.nightly
@pytest.mark.parametrize(("row", "small"), [("rm10", "rm10_n50"), ("dpo", "dpo_n50")])
def test_table7_500_ppd_beat_50(table, row, small):
    lower(f"table7.{row}_n500_vs_n50", paired(table("table7"), row, small, "fid"), f"{row} N=500 − N=50 FID")


# -- Table 8: more samples per prompt help ------------------------------------------------------

@pytest.mark.parametrize(("row", "small"), [("rm10", "rm2"), ("dpo", "dpo_k2")])
def test_table8_k10_beats_k2(table, row, small):
    lower(f"table8.{row}_vs_k2", paired(table("table8"), row, small, "fid"), f"{row} K=10 − K=2 FID")


# -- Fig. 2: quality falls with the GAN-RM rank -------------------------------------------------

def test_fig2_fid_grows_with_ganrm_rank(table):
    outcome = table("fig2")
    r = outcome.results
    pooled = r[(r["scope"] == "pooled") & (r["column"] == "fid")].set_index("row")["value"]
    fids = [float(pooled[f"rank{k}"]) for k in range(1, 11)]
    rho = spearmanr(np.arange(1, 11), fids).statistic
    claim("fig2.spearman", rho > 0.6, f"pooled FID by rank {[round(f, 1) for f in fids]}, Spearman {rho:.2f}")
    lower("fig2.rank1_vs_rank10", paired(outcome, "rank1", "rank10", "fid"), "rank 1 − rank 10 FID")
