"""The paper's claims, asserted in the miniature world: every mini table, seeds 0, 1 and 2.

Each claim is registered before its numbers exist (tests/claims/registry.py: rows, column, kind,
margin) and is a one-sided test of the paired difference of two rows (per-sample metrics: bootstrap
over prompts; FID/KID: delete-one-block jackknife over shared prompt blocks). A row with a trained
model (every row but base) varies with retraining, so its difference has a t interval across the
three seeds' paired differences (harness.stats.twolevel; docs/statistics.md). The claims of one
table are one family, Holm-corrected together: a claim holds when its adjusted one-sided p-value is
at most 5 % (harness.stats.claims, the same test and correction as `check`).

A claim that the data do not support is listed in EXPECTED_TO_FAIL: it then ends as an expected
failure whose reason is the live measurement, and if it ever holds the test fails as an unexpected
pass (strict), so the list is kept honest. Nothing here is tuned until a claim passes. No thread
count is pinned: every trained artifact is independent of it (docs/reproducibility.md).
Runs the real plugins end to end, cold: the slow part of `make test` (timing in benchmarks/README.md).
Tables 4, 7, 8 and 9 are marked `nightly`: `make test-nightly` runs them, `make test` (what CI runs)
does not, to keep CI under 30 minutes with pinned CPU kernels (docs/reproducibility.md).
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import spearmanr

from ganrm_bench.harness.spec.load import load_spec
from tests.claims.registry import FAMILIES
from tests.helpers import REPO
from tests.helpers.paired_claims import check_claim, check_verdict, judge_family

MINI = REPO / "benchmarks" / "mini"
BASELINE = MINI.parents[1] / "reports" / "baselines" / "mini-table1"
SEEDS = [0, 1, 2]
pytestmark = [pytest.mark.slow, pytest.mark.timeout(3600)]

# claim id -> why it is listed (the numbers come from the live run, in the xfail reason). With a t across
# the three seeds (2 df) and Holm within each table, a claim needs a difference that retraining does not
# blur. Measured 2026-12-07 with pinned CPU kernels (class cpu-pin1-v3: the same bytes on every x86-64-v3
# machine; GANRM_CLAIMS_STORE on a cold store of this commit):
# - Table 1 (Holm over 8 claims): RM@10 − base FID −15.6, 90 % CI [−25.2, −5.9], one-sided p 0.021 (Holm
#   0.15); KID −36.1 [−61.5, −10.7], p 0.027; alignment +0.049 [+0.025, +0.072], p 0.013 (Holm 0.10);
#   DPO − base FID −16.2 [−32.5, +0.1], p 0.051; KID −38.3 [−79.0, +2.3], p 0.055; alignment +0.038
#   [−0.000, +0.077], p 0.050 (Holm 0.25 each): the three seeds' GAN-RMs (and DPO runs) differ enough
#   that three seeds do not establish even these large mean gains. SFT − base FID −0.4 [−5.8, +5.1].
# - Table 4 (nightly): bootstrap − naive / average / voting FID −2.2, +3.7, +4.1, none significant.
# - Table 8 (nightly): RM@10 − RM@2 FID −3.5 [−8.0, +0.9], p 0.074; DPO K=10 − K=2 −12.5 [−19.1, −5.8],
#   p 0.016, Holm 0.032: holds.
# - Fig. 2: rank 1 − rank 10 FID −75.0 [−90.4, −59.6], Holm p 0.002: holds; Spearman 0.98.
# - Table 7 (nightly, Holm over 2 claims; pinned, 2026-12-07, on the store of Table 1's pools): RM@10
#   N=500 − N=50 FID +0.51 [−14.3, +15.3]; DPO N=500 − N=50 FID −4.35 [−72.5, +63.8], p 0.435 (Holm
#   0.87). Before the pin the DPO claim held; pinned, its three seeds' differences spread too far for it.
# - Table 9's rounds (nightly; pinned, same run): round 3 − round 1 FID +4.79 [+0.39, +9.19], KID
#   +11.7 [+7.1, +16.3]: round 1 stays the best of the three rounds.
EXPECTED_TO_FAIL: dict[str, str] = {
    "table8.rm10_vs_k2": "RM@10 does not select significantly better than RM@2 across retrained GAN-RMs",
    "table1.rm10.fid": "RM@10's gain over base varies with retraining GAN-RM: not significant across 3 seeds after Holm",
    "table1.rm10.kid": "RM@10's gain over base varies with retraining GAN-RM: not significant across 3 seeds after Holm",
    "table1.rm10.align": "RM@10's gain over base varies with retraining GAN-RM: not significant across 3 seeds after Holm",
    "table1.dpo.fid": "DPO's gain over base varies with retraining GAN-RM and DPO: not significant across 3 seeds after Holm",
    "table1.dpo.kid": "DPO's gain over base varies with retraining GAN-RM and DPO: not significant across 3 seeds after Holm",
    "table1.dpo.align": "DPO's gain over base varies with retraining GAN-RM and DPO: not significant across 3 seeds after Holm",
    "table1.sft.fid": "SFT on GAN-RM's best of 10 does not lower FID significantly in the mini world",
    "table1.sft.kid": "nor KID",
    "table4.bootstrap_vs_sel_naive": "the mini world does not separate the GAN-RM variants (Table 4)",
    "table4.bootstrap_vs_sel_average": "the mini world does not separate the GAN-RM variants (Table 4)",
    "table4.bootstrap_vs_sel_voting": "the mini world does not separate the GAN-RM variants (Table 4)",
    "table7.rm10_n500_vs_n50": "RM@10 with a GAN-RM from 50 PPD digits selects about as well as from 500",
    "table7.dpo_n500_vs_n50": "DPO's gain from 500 PPD digits over 50 varies with retraining GAN-RM and DPO: "
                              "not significant across 3 seeds (it held before kernels were pinned)",
    "table5.round3_vs_round1.fid": "in the mini world round 1 of multi-round DPO is its best round",
    "table5.round3_vs_round1.kid": "in the mini world round 1 of multi-round DPO is its best round",
}


@pytest.fixture(scope="module")
def table(mini_tables):
    """table(name) -> that mini table's RunOutcome over SEEDS (tests/claims/conftest.py: one store per session)."""
    return mini_tables


@pytest.fixture(scope="module")
def verdicts(table):
    """verdicts(name) -> the verdicts of that table's registered family, judged once."""
    done = {}

    def get(name: str):
        if name not in done:
            done[name] = judge_family(table(name), FAMILIES[name])
        return done[name]

    return get


def claims_of(name: str) -> list[str]:
    return [c.id for c in FAMILIES[name]]


# -- Table 1: post-training with GAN-RM beats the base model ------------------------------------

@pytest.mark.parametrize("claim_id", claims_of("table1"))
def test_table1_method_beats_base(verdicts, claim_id):
    check_verdict(verdicts("table1")[claim_id], EXPECTED_TO_FAIL)


def test_table1_no_regression_against_the_committed_baseline(table, tmp_path):
    """What a lab's CI does on a new checkpoint: `check` (the service the CLI and the API call)
    against the committed baseline, Holm over its cells, trained cells with a t across the seeds."""
    from ganrm_bench.harness.app.services.check import check
    from ganrm_bench.harness.report.write import write_run
    from ganrm_bench.harness.runtime.numerics import numerics_record

    outcome = table("table1")
    run_dir = tmp_path / "table1"
    write_run(run_dir, load_spec(MINI / "table1.yaml"), "benchmarks/mini/table1.yaml", outcome.results,
              {"numerics": numerics_record("cpu")}, units=outcome.units)
    report = check(run_dir, BASELINE)
    print("\n".join(report.lines()))
    assert report.cells and not report.failures, report.lines()
    assert all(c.verdict.difference.paired for c in report.cells)


def test_table1_seed0_passes_against_the_three_seed_baseline(table, tmp_path):
    """Issue 25's first case: a seed-0 run (here seed 0's cells of the three-seed run) against the
    committed three-seed baseline compares seed 0's cells only (never the baseline's pooled cells, of
    three times its N); the untrained base row reproduces, and the trained rows, whose GAN-RMs may
    have trained differently on this CPU, carry the baseline's training variance."""
    from ganrm_bench.harness.app.services.check import check
    from ganrm_bench.harness.report.write import write_run

    outcome = table("table1")
    r, u = outcome.results, outcome.units
    run_dir = tmp_path / "seed0"
    write_run(run_dir, load_spec(MINI / "table1.yaml"), "benchmarks/mini/table1.yaml", r[r["seed"] == 0], {}, units=u[u["seed"] == 0])
    report = check(run_dir, BASELINE)
    print("\n".join(report.lines()))
    assert report.passed, report.lines()
    assert {c.scope for c in report.cells} == {"seed 0"} and any("pooled cells not compared" in n for n in report.notes)
    base = [c for c in report.cells if c.row == "base"]
    assert base and all(abs(c.verdict.difference.estimate) < 1e-2 for c in base)


# -- Table 4: bootstrapping is the best GAN-RM variant for selection ---------------------------

@pytest.mark.nightly
@pytest.mark.parametrize("claim_id", claims_of("table4"))
def test_table4_bootstrap_selects_better(verdicts, claim_id):
    check_verdict(verdicts("table4")[claim_id], EXPECTED_TO_FAIL)


# -- Tables 5 / 9: more rounds of multi-round DPO help -----------------------------------------

@pytest.mark.nightly
@pytest.mark.parametrize("claim_id", claims_of("table9"))
def test_table5_round3_beats_round1(verdicts, claim_id):
    check_verdict(verdicts("table9")[claim_id], EXPECTED_TO_FAIL)


# -- Table 7: more PPD helps --------------------------------------------------------------------

@pytest.mark.nightly
@pytest.mark.parametrize("claim_id", claims_of("table7"))
def test_table7_500_ppd_beat_50(verdicts, claim_id):
    check_verdict(verdicts("table7")[claim_id], EXPECTED_TO_FAIL)


# -- Table 8: more samples per prompt help ------------------------------------------------------

@pytest.mark.nightly
@pytest.mark.parametrize("claim_id", claims_of("table8"))
def test_table8_k10_beats_k2(verdicts, claim_id):
    check_verdict(verdicts("table8")[claim_id], EXPECTED_TO_FAIL)


# -- Fig. 2: quality falls with the GAN-RM rank -------------------------------------------------

def test_fig2_fid_grows_with_ganrm_rank(table):
    """Descriptive (a rank correlation of pooled values, not a paired test): outside the family."""
    r = table("fig2").results
    pooled = r[(r["scope"] == "pooled") & (r["column"] == "fid")].set_index("row")["value"]
    fids = [float(pooled[f"rank{k}"]) for k in range(1, 11)]
    rho = spearmanr(np.arange(1, 11), fids).statistic
    check_claim("fig2.spearman", rho > 0.6, f"pooled FID by rank {[round(f, 1) for f in fids]}, Spearman {rho:.2f}", EXPECTED_TO_FAIL)


@pytest.mark.parametrize("claim_id", claims_of("fig2"))
def test_fig2_rank1_beats_rank10(verdicts, claim_id):
    check_verdict(verdicts("fig2")[claim_id], EXPECTED_TO_FAIL)
