"""benchmarks/selectors.yaml: five RM@10 selectors on one SD1.5 pool; the column that is a row's
own selector is flagged (before the weights are fetched, and with them)."""

from __future__ import annotations

from tests.helpers.paper_fixtures import BENCHMARKS

OWN = {("sd15_rm10_pickscore", "ps"), ("sd15_rm10_hps", "hps"), ("sd15_rm10_ir", "ir"), ("sd15_rm10_clip", "clip")}


def _own_cells(spec, ctx, planning):
    from ganrm_bench.harness.diagnostics.monitor import own_scorer_cells
    from ganrm_bench.harness.engine.builder import Builder
    from ganrm_bench.harness.engine.cells import build_cells

    cells = build_cells(spec, Builder(spec, ctx, spec.seeds[0], planning=planning))
    return cells, own_scorer_cells(cells)


def test_selectors_spec_flags_own_selector_columns_before_fetching(tmp_path):
    from ganrm_bench.harness.diagnostics.monitor import heldout_warnings
    from ganrm_bench.harness.runtime.context import Context
    from ganrm_bench.harness.spec.load import load_spec
    from ganrm_bench.harness.store.artifacts import Store

    spec = load_spec(BENCHMARKS / "selectors.yaml")
    ctx = Context(store=Store(tmp_path / "store"))
    cells, own = _own_cells(spec, ctx, planning=True)
    assert set(own) == OWN  # GAN-RM's CLIP backbone is not the CLIPScore metric
    assert len(heldout_warnings(spec, ctx)) == 4
    pools = {c.node.inputs["samples"].inputs["pool"].key for c in cells if c.row != "sd15_base"}
    assert len(pools) == 1  # every selector ranks the same K = 10 pool


def test_selectors_spec_flags_own_selector_columns_with_weights(fetched_world):
    from ganrm_bench.harness.spec.load import load_spec

    spec = load_spec(BENCHMARKS / "selectors.yaml")
    _, own = _own_cells(spec, fetched_world["ctx"], planning=False)
    assert set(own) == OWN
