"""Inference-time scaling in the miniature world (benchmarks/mini/scaling_ablation.yaml: scaling.yaml
plus one ablation row), seeds 0 and 1 pooled:
does search beat best-of-K at equal compute, and does it reach RM@16 at a fraction of its compute?

Each claim is a paired difference of two rows over the union of the seeds' samples (FID / KID:
delete-one-block jackknife over shared prompt blocks, docs/statistics.md), with its two-sided 90%
interval, i.e. one-sided 95% bounds. The searches are `noise_search` (`search<B>`) and FK-steering
SMC (`smc<B>`), B samples' worth of NFE per delivered sample, GAN-RM as the value in every row.

- *Reaches RM@16 at a fraction of its NFE* (B = 4, 8: a quarter and a half of RM@16's NFE per
  sample, read from the rows' `nfe`): non-inferiority, the upper end of the 90% interval of
  Δ = metric(search B) − metric(RM@16) is below a margin of 5% of RM@16's pooled value (a
  Δ CI that merely includes 0 is absence of evidence, not non-inferiority). The 5% margin was
  fixed when this file was written, before any search row had been run. For KID, whose RM@16
  value is near 0 (3.7), that margin is tiny (0.19); no outcome changes with 5% of base's KID
  (2.3) instead: every KID interval's upper end is above 10.
- *Beats best-of-K at equal compute* (B = 4, 8, 16): the upper end of the 90% interval of
  metric(search B) − metric(RM@B) is below 0.
- *SMC's steering helps*: SMC runs DDIM at η = 1 while RM@K runs it at η = 0, so SMC at 16 particles
  is also compared with best-of-16 on its own η = 1 sampler (`best16_eta1`: λ = 0, no resampling):
  the upper end of the 90% interval of metric(smc16) − metric(best16_eta1) is below 0 (the message
  also gives best16_eta1 − rm16, what the sampler alone does).

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
from tests.helpers import REPO
from tests.helpers.paired_claims import check_claim, paired

SPEC = REPO / "benchmarks" / "mini" / "scaling_ablation.yaml"
SEEDS = [0, 1]
MARGIN = 0.05  # non-inferiority margin, relative to RM@16's pooled value
pytestmark = [pytest.mark.slow, pytest.mark.nightly, pytest.mark.timeout(7200)]

# claim id -> why it is listed (the numbers come from the live run, in the xfail reason). Measured
# 2026-11-27, seeds 0-1 pooled, 90% CIs (docs/scaling.md): no search row reaches RM@16 at a
# fraction of its NFE (search8 − RM@16 FID +0.6 [−4.0, +5.2], not within the 1.2 margin); noise
# search ties best-of-K at equal NFE (FID Δ +0.1, −2.3, −1.1, every CI spanning 0); SMC is worse on
# FID (smc4 − RM@4 +6.4 [+0.2, +12.5]) and ties on KID, mostly because its η = 1 sampler is
# (best16_eta1 − RM@16 FID +12.0 [+1.0, +22.9]); its steering does not significantly beat
# best-of-16 on that sampler (FID −2.2 [−12.5, +8.0]). SMC does raise alignment (0.99 vs 0.91).
_NOT_REACHED = "a quarter / half of RM@16's NFE does not reach it non-inferiorly in the mini world"
_TIE = "at equal NFE this search does not beat best-of-K significantly in the mini world"
EXPECTED_TO_FAIL: dict[str, str] = {
    **{f"scaling.{m}{b}_reaches_rm16.{c}": _NOT_REACHED for m in ("search", "smc") for b in (4, 8) for c in ("fid", "kid")},
    **{f"scaling.{m}{b}_beats_rm{b}.{c}": _TIE for m in ("search", "smc") for b in (4, 8, 16) for c in ("fid", "kid")},
    "scaling.smc16_beats_best16_eta1.fid": "SMC's steering does not beat best-of-16 on its own η = 1 sampler significantly",
    "scaling.smc16_beats_best16_eta1.kid": "SMC's steering does not beat best-of-16 on its own η = 1 sampler significantly",
}


@pytest.fixture(scope="module")
def outcome(tmp_path_factory):
    store = Store(os.environ.get("GANRM_CLAIMS_STORE") or tmp_path_factory.mktemp("scaling-store"))
    out = run_spec(load_spec(SPEC), Context(store=store), seeds=SEEDS)
    assert not out.failures, out.failures
    return out


def pooled_value(outcome, row: str, column: str) -> float:
    r = outcome.results
    cell = r[(r["row"] == row) & (r["column"] == column) & (r["scope"] == "pooled")]
    assert len(cell) == 1, f"no pooled value for {row} × {column}"
    return float(cell["value"].iloc[0])


def nfe(outcome, row: str) -> float:
    r = outcome.results
    return float(r[r["row"] == row]["nfe"].iloc[0])


def claim(claim_id: str, holds: bool, measured: str) -> None:
    check_claim(claim_id, holds, measured, EXPECTED_TO_FAIL)


@pytest.mark.parametrize("column", ["fid", "kid"])
@pytest.mark.parametrize("budget", [4, 8])
@pytest.mark.parametrize("method", ["search", "smc"])
def test_search_reaches_rm16_at_a_fraction_of_its_nfe(outcome, method, budget, column):
    row = f"{method}{budget}"
    fraction = nfe(outcome, row) / nfe(outcome, "rm16")
    assert fraction == pytest.approx(budget / 16)  # the rows' own accounting: B samples' NFE vs 16
    d = paired(outcome, row, "rm16", column)
    margin = MARGIN * pooled_value(outcome, "rm16", column)
    claim(f"scaling.{row}_reaches_rm16.{column}", d.ci_high < margin,
          f"{row} (NFE ×{fraction:.2f} of RM@16) − rm16 {column}: Δ {d.estimate:+.3f}, 90% CI [{d.ci_low:+.3f}, {d.ci_high:+.3f}], "
          f"margin {margin:+.3f} ({d.method})")


@pytest.mark.parametrize("column", ["fid", "kid"])
@pytest.mark.parametrize("budget", [4, 8, 16])
@pytest.mark.parametrize("method", ["search", "smc"])
def test_search_beats_best_of_k_at_equal_nfe(outcome, method, budget, column):
    row, rm = f"{method}{budget}", f"rm{budget}"
    assert nfe(outcome, row) == nfe(outcome, rm)
    d = paired(outcome, row, rm, column)
    claim(f"scaling.{row}_beats_{rm}.{column}", d.ci_high < 0,
          f"{row} − {rm} {column}: Δ {d.estimate:+.3f}, 90% CI [{d.ci_low:+.3f}, {d.ci_high:+.3f}] ({d.method})")


@pytest.mark.parametrize("column", ["fid", "kid"])
def test_smc_steering_beats_best_of_16_on_its_own_sampler(outcome, column):
    assert nfe(outcome, "smc16") == nfe(outcome, "best16_eta1") == nfe(outcome, "rm16")
    d = paired(outcome, "smc16", "best16_eta1", column)
    sampler = paired(outcome, "best16_eta1", "rm16", column)
    claim(f"scaling.smc16_beats_best16_eta1.{column}", d.ci_high < 0,
          f"smc16 − best16_eta1 {column}: Δ {d.estimate:+.3f}, 90% CI [{d.ci_low:+.3f}, {d.ci_high:+.3f}]; the sampler alone, "
          f"best16_eta1 − rm16: Δ {sampler.estimate:+.3f}, 90% CI [{sampler.ci_low:+.3f}, {sampler.ci_high:+.3f}] ({d.method})")
