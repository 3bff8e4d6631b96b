"""The inference-time scaling specs (mini and SD1.5) validate and plan: RM@K rows share one K = 16
pool, every search row (noise search and SMC) draws its own candidates or particles (K per prompt),
and every cell is planned."""

from __future__ import annotations

import pytest

from tests.helpers.paper_fixtures import BENCHMARKS

SCALING = {"mini": BENCHMARKS / "mini" / "scaling.yaml", "sd15": BENCHMARKS / "scaling_sd15.yaml"}
BUDGETS = (4, 8, 16)  # the search rows' candidates (particles) per prompt


def _spec(which):
    from ganrm_bench.harness.spec.check import check_spec
    from ganrm_bench.harness.spec.load import load_spec

    spec = load_spec(SCALING[which])
    assert check_spec(spec) == []
    return spec


def _plan(spec, ctx):
    from ganrm_bench.harness.engine.builder import Builder
    from ganrm_bench.harness.engine.cells import build_cells
    from ganrm_bench.harness.engine.plan import plan, plan_totals

    cells = build_cells(spec, Builder(spec, ctx, spec.seeds[0], planning=True))
    return cells, plan_totals(plan([c.node for c in cells], ctx))


@pytest.mark.parametrize("which", sorted(SCALING))
def test_scaling_spec_rows_pair_search_with_best_of_k_at_equal_budget(which):
    spec = _spec(which)
    prefix = "sd15_" if which == "sd15" else ""
    for k in BUDGETS:
        rm, search = spec.methods[f"{prefix}rm{k}"], spec.methods[f"{prefix}search{k}"]
        assert rm.method == "rm_at_k" and rm.params["k"] == k
        assert search.method == "noise_search" and search.params["candidates"] == k and search.scorer == rm.scorer
        assert spec.table.compare[f"{prefix}search{k}"] == f"{prefix}rm{k}"
        smc = spec.methods[f"{prefix}smc{k}"]
        assert smc.method == "smc_search" and smc.params["particles"] == k and smc.scorer == rm.scorer
        assert spec.table.compare[f"{prefix}smc{k}"] == f"{prefix}rm{k}"


def test_mini_scaling_plans_one_pool_and_each_search(tmp_path):
    from ganrm_bench.harness.runtime.context import Context
    from ganrm_bench.harness.store.artifacts import Store

    spec = _spec("mini")
    cells, totals = _plan(spec, Context(store=Store(tmp_path / "store")))
    rows = spec.table.rows
    assert [(c.row, c.column) for c in cells] == [(r, c) for r in rows for c in ["fid", "kid", "align"]]
    n = 300  # eval prompts (common.yaml)
    assert totals["images to generate"] == 16 * n + 500 + 2 * 500  # one K = 16 pool; GAN-RM's negatives and bootstrap pool
    assert totals["search samples to generate"] == 2 * sum(BUDGETS) * n and totals["prompts to search"] == 2 * len(BUDGETS) * n
    assert totals["metric values to compute"] == len(rows) * 3


def test_sd15_scaling_plans_every_cell(fetched_world):
    spec = _spec("sd15")
    cells, totals = _plan(spec, fetched_world["ctx"])
    assert [(c.row, c.column) for c in cells] == [(r, c) for r in spec.table.rows for c in ["fid", "kid", "clip"]]
    n = 4  # rows per prompt file (make_data_root)
    assert totals["search samples to generate"] == 2 * sum(BUDGETS) * n  # noise search and SMC
    assert totals["images to generate"] == 16 * n + n + n  # the K = 16 eval pool; GAN-RM's negatives and bootstrap pool
