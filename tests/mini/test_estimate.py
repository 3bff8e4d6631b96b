"""`plan --estimate` on the mini world: every mini plugin times its own unit (no op of mini
Table 1 but the reference-set counts goes without an estimate), and the generator's forward time
is what one image's steps are made of."""

from __future__ import annotations

from ganrm_bench.harness.app.services.run import make_context
from ganrm_bench.harness.app.services.specs import resolve_spec_path
from ganrm_bench.harness.engine.builder import Builder
from ganrm_bench.harness.engine.cells import build_cells
from ganrm_bench.harness.engine.estimate import estimate
from ganrm_bench.harness.engine.evaluator import Evaluator
from ganrm_bench.harness.engine.plan import plan
from ganrm_bench.harness.spec.load import load_spec


def test_mini_generator_unit_cost(tmp_path):
    from ganrm_bench.mini.generator import MiniDiffusion

    gen = MiniDiffusion({"steps": 4, "batch_size": 8})
    cost = gen.estimate_unit(make_context(load_spec(resolve_spec_path("mini/table1")), cache=tmp_path, device="cpu"))
    assert cost.unit == "image" and cost.seconds > 0 and 0 < cost.forward_seconds
    assert cost.forward_seconds * 4 < cost.seconds * 3  # an image is ~4 forwards (+ decoding), not fewer


def test_mini_table1_estimate_covers_every_kind_of_work(tmp_path):
    spec = load_spec(resolve_spec_path("mini/table1"))
    spec = spec.model_copy(update={"seeds": [0]})
    ctx = make_context(spec, cache=tmp_path, device="cpu")
    entries = plan([c.node for c in build_cells(spec, Builder(spec, ctx, 0, planning=True))], ctx)
    est = estimate(entries, ctx, Evaluator(ctx).peek)
    timed = {r.op for r in est.rows if r.seconds is not None}
    assert {"pool", "finetune", "scores", "metric"} <= timed
    assert all(r.op in ("metric", "train_scorer") for r in est.missing)  # only image-set counts the plan cannot read
    assert est.total_seconds > 0
