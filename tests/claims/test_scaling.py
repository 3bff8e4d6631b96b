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
# 2026-11-27, seeds 0-1 pooled, 90% CIs, before the t across seeds (docs/scaling.md): no search row
# reaches RM@16 at a fraction of its NFE (search8 − RM@16 FID +0.6 [−4.0, +5.2], not within the 1.2
# margin); noise search ties best-of-K at equal NFE (FID Δ +0.1, −2.3, −1.1, every CI spanning 0); SMC
# is worse on FID (smc4 − RM@4 +6.4 [+0.2, +12.5]) and ties on KID, mostly because its η = 1 sampler
# is (best16_eta1 − RM@16 FID +12.0 [+1.0, +22.9]); its steering does not significantly beat
# best-of-16 on that sampler (FID −2.2 [−12.5, +8.0]). A t with 1 df across two seeds is wider still.
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
