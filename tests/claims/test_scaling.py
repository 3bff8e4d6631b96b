"""Inference-time scaling in the miniature world (benchmarks/mini/scaling_ablation.yaml: scaling.yaml
plus one ablation row), seeds 0 and 1: does search beat best-of-K at equal compute, and does it
reach RM@16 at a fraction of its compute?

The claims are registered before their numbers exist (tests/claims/registry.py, family
"scaling_ablation"), each a one-sided test of a paired difference of two rows (FID / KID:
delete-one-block jackknife over shared prompt blocks, docs/statistics.md), Holm-corrected within the
family (harness.stats.claims). Every row selects or steers with GAN-RM, a trained model, so each
difference has a t interval across the two seeds' paired differences (1 df: harness.stats.twolevel).
The searches are `noise_search` (`search<B>`) and FK-steering SMC (`smc<B>`), B samples' worth of NFE
per delivered sample.

- *Reaches RM@16 at a fraction of its NFE* (B = 4, 8: a quarter and a half of RM@16's NFE per
  sample, read from the rows' `nfe`): non-inferiority, metric(search B) − metric(RM@16) < 5 % of
  RM@16's pooled value (one-sided). The 5 % margin was fixed when this file was written, before any
  search row had been run. For KID, whose RM@16 value is near 0 (3.7), that margin is tiny (0.19).
- *Beats best-of-K at equal compute* (B = 4, 8, 16): metric(search B) − metric(RM@B) < 0.
- *SMC's steering helps*: SMC runs DDIM at η = 1 while RM@K runs it at η = 0, so SMC at 16 particles
  is also compared with best-of-16 on its own η = 1 sampler (`best16_eta1`: λ = 0, no resampling).

The searches' hyperparameters come from scorer-side diagnostics only (benchmarks/mini/smc_diagnostics.py;
docs/scaling.md), never from these metrics. A claim the data do not support is listed in
EXPECTED_TO_FAIL and xfails (strict) with the live numbers; nothing here is tuned until a claim
passes. `slow` and `nightly`: CI does not run it (`make test-nightly` does).
GANRM_CLAIMS_STORE=DIR reuses a store (e.g. one filled by benchmarks/perf/bench_mini_world.py --store).
"""

from __future__ import annotations

import os

import pytest

from ganrm_bench.harness.engine.runner import run_spec
from ganrm_bench.harness.runtime.context import Context
from ganrm_bench.harness.spec.load import load_spec
from ganrm_bench.harness.store.artifacts import Store
from tests.claims.registry import FAMILIES
from tests.helpers import REPO
from tests.helpers.paired_claims import check_verdict, judge_family

SPEC = REPO / "benchmarks" / "mini" / "scaling_ablation.yaml"
SEEDS = [0, 1]
pytestmark = [pytest.mark.slow, pytest.mark.nightly, pytest.mark.timeout(7200)]

# claim id -> why it is listed (the numbers come from the live run, in the xfail reason). Measured
# 2026-12-07 with pinned CPU kernels (seeds 0-1, a t with 1 df across the two seeds' paired Δs, 90 %
# CIs, Holm over the 22 claims), every claim still fails:
# - No search row reaches RM@16 non-inferiorly at a fraction of its NFE: search8 − RM@16 FID −0.4
#   [−12.6, +11.8], smc4 − RM@16 +2.0 [−3.5, +7.5]; no interval stays below the
#   margin (5 % of RM@16's FID).
# - At equal NFE, search never beats best-of-K after Holm: search16 − RM@16 FID −3.2 [−6.1, −0.4],
#   p 0.044 (Holm 0.87); smc4 − RM@4 KID −8.5 [−11.4, −5.7], p 0.017 (Holm 0.37).
# - SMC's steering vs best-of-16 on its own η = 1 sampler: FID −1.0 [−21.0, +19.1]; KID −3.6
#   [−5.5, −1.6], p 0.028 (Holm 0.58).
# Before the pin (2026-11-27; docs/scaling.md) the verdicts were the same.
_NOT_REACHED = "a quarter / half of RM@16's NFE does not reach it non-inferiorly in the mini world"
_TIE = "at equal NFE this search does not beat best-of-K significantly in the mini world"
EXPECTED_TO_FAIL: dict[str, str] = {
    **{f"scaling.{m}{b}_reaches_rm16.{c}": _NOT_REACHED for m in ("search", "smc") for b in (4, 8) for c in ("fid", "kid")},
    **{f"scaling.{m}{b}_beats_rm{b}.{c}": _TIE for m in ("search", "smc") for b in (4, 8, 16) for c in ("fid", "kid")},
    "scaling.smc16_beats_best16_eta1.fid": "SMC's steering does not beat best-of-16 on its own η = 1 sampler significantly",
    "scaling.smc16_beats_best16_eta1.kid": "SMC's steering does not beat best-of-16 on its own η = 1 sampler significantly",
}
CLAIMS = FAMILIES["scaling_ablation"]


@pytest.fixture(scope="module")
def outcome(tmp_path_factory):
    store = Store(os.environ.get("GANRM_CLAIMS_STORE") or tmp_path_factory.mktemp("scaling-store"))
    out = run_spec(load_spec(SPEC), Context(store=store), seeds=SEEDS)
    assert not out.failures, out.failures
    return out


@pytest.fixture(scope="module")
def verdicts(outcome):
    return judge_family(outcome, CLAIMS)


def nfe(outcome, row: str) -> float:
    r = outcome.results
    return float(r[r["row"] == row]["nfe"].iloc[0])


@pytest.mark.parametrize("claim_id", [c.id for c in CLAIMS])
def test_scaling_claim(outcome, verdicts, claim_id):
    v = verdicts[claim_id]
    row, against = v.claim.row, v.claim.against
    if "_reaches_rm16" in claim_id:  # the rows' own accounting: B samples' NFE vs 16
        assert nfe(outcome, row) / nfe(outcome, against) == pytest.approx(int(row.removeprefix("search").removeprefix("smc")) / 16)
    else:  # equal compute
        assert nfe(outcome, row) == nfe(outcome, against)
    check_verdict(v, EXPECTED_TO_FAIL)
