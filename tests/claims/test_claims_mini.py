"""The paper's claims, asserted in the miniature world (benchmarks/mini/table1.yaml and fig2.yaml)
with confidence intervals. Runs the real plugins end to end (about 4-6 minutes on 2 cores, cold).

FID differences are paired: every row samples the same 300 evaluation prompts, so a delete-one-
block jackknife over shared prompt blocks gives the CI of FID(row) − FID(base). A directional claim
holds when the one-sided 95% bound (the upper end of the two-sided 90% interval) is below zero.
A claim that does not hold here is an expected failure whose reason is this run's measurement; it
is not tuned away. No thread count is pinned: every trained artifact is independent of it.
"""

from pathlib import Path

import numpy as np
import pytest
from scipy.stats import spearmanr

from ganrm_bench.harness.graph import Builder
from ganrm_bench.harness.runner import Evaluator, run_spec
from ganrm_bench.harness.runtime import Context
from ganrm_bench.harness.spec import load_spec
from ganrm_bench.harness.store import Store

MINI = Path(__file__).resolve().parents[2] / "benchmarks" / "mini"
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]  # the module fixture runs the world cold


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    store = Store(tmp_path_factory.mktemp("mini-store"))
    table1, fig2 = load_spec(MINI / "table1.yaml"), load_spec(MINI / "fig2.yaml")
    out1 = run_spec(table1, Context(store=store))
    out2 = run_spec(fig2, Context(store=store))
    assert not out1.failures and not out2.failures, out1.failures + out2.failures
    ctx = Context(store=store)
    b, ev = Builder(table1, ctx, 0), Evaluator(ctx)
    fid = b.plugin("metric", "fid", table1.metrics["fid"].params)
    ref = ev.value(b.images("fid_ref"))
    fig_b = Builder(fig2, ctx, 0)

    def paired(row: str, against: str = "base", builder=b):
        return fid.paired_difference(ev.value(builder.method(row)), ev.value(builder.method(against)), ref, ctx, level=0.90)

    return {"table1": out1.results, "fig2": out2.results, "paired": paired, "fig_builder": fig_b}


def value(results, row, column="fid"):
    return float(results[(results.row == row) & (results.column == column)]["value"].iloc[0])


def test_rm_at_10_lowers_fid(world):
    delta, lo, hi = world["paired"]("rm10")
    print(f"RM@10 - base FID: {delta:.2f} [{lo:.2f}, {hi:.2f}]")
    assert hi < 0, (delta, lo, hi)


def test_dpo_lowers_fid(world):
    delta, lo, hi = world["paired"]("dpo")
    print(f"DPO - base FID: {delta:.2f} [{lo:.2f}, {hi:.2f}]")
    assert hi < 0, (delta, lo, hi)


def test_sft_lowers_fid(world):
    delta, lo, hi = world["paired"]("sft")
    print(f"SFT - base FID: {delta:.2f} [{lo:.2f}, {hi:.2f}]")
    if not hi < 0:  # an expected failure, reported with this run's numbers
        pytest.xfail(f"measured now: SFT - base FID = {delta:+.2f}, 90% CI [{lo:+.2f}, {hi:+.2f}]: "
                     "not significantly lower than base with 300 training prompts")


def test_ganrm_selection_also_raises_alignment(world):
    t = world["table1"]
    rm10 = t[(t.row == "rm10") & (t.column == "align")].iloc[0]
    base = t[(t.row == "base") & (t.column == "align")].iloc[0]
    assert rm10.ci_low > base.value, (rm10.value, rm10.ci_low, base.value)


def test_no_regression_against_the_committed_baseline(world):
    """What a lab's CI does on a new checkpoint: `ganrm-bench check` against committed results."""
    from ganrm_bench.harness.report import check, read_results_file

    baseline = read_results_file(MINI.parents[1] / "reports" / "baselines" / "mini-table1.csv")
    assert check(world["table1"], baseline, tolerance={}) == []


def test_ganrm_rank_tracks_quality_fig2(world):
    fig = world["fig2"]
    fids = [value(fig, f"rank{r}") for r in range(1, 11)]
    print("FID by GAN-RM rank:", [round(f, 1) for f in fids])
    rho = spearmanr(np.arange(1, 11), fids).statistic
    assert rho > 0.6, (rho, fids)
    delta, lo, hi = world["paired"]("rank1", "rank10", builder=world["fig_builder"])
    assert hi < 0, (delta, lo, hi)
