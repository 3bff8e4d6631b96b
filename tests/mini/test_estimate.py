"""`plan --estimate` on the mini world: every mini plugin times its own unit (no op of mini
Table 1 but the reference-set counts goes without an estimate), and the generator's forward time
is what one image's steps are made of."""

from __future__ import annotations

import math

import pytest

from ganrm_bench.harness.app.services.run import make_context
from ganrm_bench.harness.app.services.specs import resolve_spec_path
from ganrm_bench.harness.engine.builder import Builder
from ganrm_bench.harness.engine.cells import build_cells
from ganrm_bench.harness.engine.estimate import estimate
from ganrm_bench.harness.engine.evaluator import Evaluator
from ganrm_bench.harness.engine.plan import plan
from ganrm_bench.harness.spec.load import load_spec


@pytest.mark.parametrize("guidance", [1.0, 3.0])
def test_mini_generator_unit_cost(tmp_path, monkeypatch, guidance):
    """The estimate's arithmetic on counted work: each timed call "takes" the UNet rows it ran, so an
    image costs the generator's NFE per sample in forwards of one sample (4 steps, ×2 with guidance)."""
    import ganrm_bench.mini.generator as mini_generator
    from ganrm_bench.mini.generator import MiniDiffusion

    gen = MiniDiffusion({"steps": 4, "batch_size": 8, "guidance": guidance})
    rows = []
    gen.unet.register_forward_hook(lambda module, args, kwargs, out: rows.append(args[0].shape[0]), with_kwargs=True)

    def counted(fn, **_):
        rows.clear()
        fn()
        return float(sum(rows)), None

    monkeypatch.setattr(mini_generator, "time_call", counted)
    cost = gen.estimate_unit(make_context(load_spec(resolve_spec_path("mini/table1")), cache=tmp_path, device="cpu"))
    assert cost.unit == "image" and cost.forward_seconds == 8 / 8  # one forward of the batch of 8, per sample
    assert cost.seconds == pytest.approx(gen.nfe_per_sample() * cost.forward_seconds)
    assert gen.nfe_per_sample() == 4 * (1 if guidance == 1.0 else 2)
    real = MiniDiffusion({"steps": 4, "batch_size": 8})
    monkeypatch.undo()
    measured = real.estimate_unit(None)
    assert measured.seconds > 0 and measured.forward_seconds > 0 and math.isfinite(measured.seconds)


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
