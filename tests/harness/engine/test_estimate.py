"""plan --estimate on the toy plugins: units come from the plan (each shared pool item once, the
items each scorer / metric sees, the fine-tuning samples), times the plugins' unit costs; cached
work costs nothing. The unit counts are checked against what a run actually does (toy counters)."""

from types import SimpleNamespace

import pytest

from ganrm_bench.harness.engine.builder import Builder
from ganrm_bench.harness.engine.cells import build_cells
from ganrm_bench.harness.engine.estimate import TRAIN_FORWARDS, UnitCost, estimate, estimate_lines
from ganrm_bench.harness.engine.evaluator import Evaluator
from ganrm_bench.harness.engine.plan import plan, plan_totals
from ganrm_bench.harness.engine.runner import run_spec
from ganrm_bench.harness.plugins.registry import GENERATORS, METRICS, SCORERS
from ganrm_bench.harness.runtime.context import Context
from ganrm_bench.harness.spec.load import load_spec
from ganrm_bench.harness.store.artifacts import Store
from tests.helpers import HELPERS
from tests.helpers.toy_plugins import count  # noqa: E402

GEN, SCORE, METRIC, FIXED = 2.0, 0.5, 0.25, 1.0


@pytest.fixture
def costs(monkeypatch, tmp_path):
    """Fixed unit costs on the toy plugin classes the spec resolves (its `plugins:` file)."""
    monkeypatch.setenv("TOY_COUNTER_DIR", str(tmp_path))
    load_spec(HELPERS / "toy_spec.yaml")  # registers the spec's toy plugins
    hooks = [(GENERATORS, "toy_pattern", UnitCost(GEN, "image", forward_seconds=0.1)), (SCORERS, "toy_rm", UnitCost(SCORE)),
             (METRICS, "toy_brightness", UnitCost(METRIC, fixed=FIXED))]
    for registry, name, cost in hooks:
        monkeypatch.setattr(registry.get(name), "estimate_unit", lambda self, ctx, c=cost: c, raising=False)
    return tmp_path


def _estimate(spec, ctx):
    entries = plan([c.node for c in build_cells(spec, Builder(spec, ctx, 0))], ctx)
    return entries, estimate(entries, ctx, Evaluator(ctx).peek)


def test_estimate_multiplies_the_plans_counts(tmp_path, costs):
    spec = load_spec(HELPERS / "toy_spec.yaml")
    ctx = Context(store=Store(tmp_path / "store"))
    entries, est = _estimate(spec, ctx)
    rows = {op: [r for r in est.rows if r.op == op] for op in ("pool", "scores", "metric", "train_scorer")}
    # each pool item once, however many pools (K = 1, 2, 4) share it: the plan's count
    assert sum(r.units for r in rows["pool"]) == plan_totals(entries)["images to generate"] == 30
    assert sum(r.seconds for r in rows["pool"]) == pytest.approx(30 * GEN)
    # 3 metric values on 6 items each: per item plus the fixed part, once per value
    assert [r.units for r in rows["metric"]] == [6, 6, 6]
    assert sum(r.seconds for r in rows["metric"]) == pytest.approx(3 * (6 * METRIC + FIXED))
    # the toy PPD source lists no files: the RM's training is counted as unknown, not as zero
    assert rows["train_scorer"][0].units is None and est.missing == rows["train_scorer"]
    assert est.total_seconds == pytest.approx(sum(r.seconds for r in est.rows if r.seconds is not None))

    run_spec(spec, ctx)  # what the run really does matches the estimate's units
    assert count(costs, "generated") == 30
    assert count(costs, "scored") == sum(r.units for r in rows["scores"])
    assert sum(r.seconds for r in rows["scores"]) == pytest.approx(count(costs, "scored") * SCORE)
    assert "estimated total: " in estimate_lines(est)[-1]


def test_cached_work_is_not_estimated(tmp_path, costs):
    spec = load_spec(HELPERS / "toy_spec.yaml")
    ctx = Context(store=Store(tmp_path / "store"))
    run_spec(spec, ctx)
    _, est = _estimate(spec, ctx)
    assert est.rows == [] and est.total_seconds == 0.0
    assert estimate_lines(est)[-1].startswith("estimated total: 0.0 min on cpu")


def test_partly_cached_pool_counts_only_missing_items(tmp_path, costs):
    """Removing some pool items from the store: only they are estimated."""
    spec = load_spec(HELPERS / "toy_spec.yaml")
    ctx = Context(store=Store(tmp_path / "store"))
    cells = build_cells(spec, Builder(spec, ctx, 0))
    entries = plan([c.node for c in cells], ctx)
    pools = [e for e in entries if e.node.op.name == "pool"]
    big = max(pools, key=lambda e: len(e.work["images to generate"]))
    ev = Evaluator(ctx)
    ev.value(big.node)  # generates (and stores) the 24 items of the K = 4 eval pool
    _, est = _estimate(spec, ctx)
    assert sum(r.units for r in est.rows if r.op == "pool") == 30 - 24
    assert sum(r.seconds for r in est.rows if r.op == "pool") == pytest.approx(6 * GEN)


def test_finetune_is_forwards_per_training_sample():
    """SFT costs 3 denoiser forwards per sample, DPO 8; samples = steps × batch × accumulation."""
    gen = SimpleNamespace(name="g", estimate_unit=lambda ctx: UnitCost(9.0, "image", forward_seconds=0.5))
    rows = []
    for objective in ("sft", "dpo"):
        node = SimpleNamespace(op=SimpleNamespace(name="finetune"), label=objective, inputs={"generator": SimpleNamespace(obj=gen)},
                               params={"train": {"objective": objective, "steps": 10, "batch_size": 4, "grad_accum": 2}})
        rows += estimate([SimpleNamespace(status="compute", node=node, work={"models to fine-tune": 1})],
                         SimpleNamespace(device="cpu"), lambda n: None).rows
    assert [r.units for r in rows] == [80, 80]
    assert [r.seconds for r in rows] == pytest.approx([80 * 0.5 * TRAIN_FORWARDS["sft"], 80 * 0.5 * TRAIN_FORWARDS["dpo"]])
    assert TRAIN_FORWARDS == {"sft": 3.0, "dpo": 8.0}


def test_absent_data_are_counted_at_their_declared_sizes(tmp_path, costs, monkeypatch):
    """Before the data are here (a fresh clone): the eval prompt table and the PPD folder count as
    the sizes their entries declare, each listed in the plan; the units are those of the same spec
    with the data present (the toy's 6 eval prompts, 5 PPD images)."""
    from ganrm_bench.harness.app.services.plan import plan as plan_service

    monkeypatch.chdir(tmp_path)
    absent = {"prompts.eval": {"source": "table", "path": "data/eval.tsv", "expected_count": 6},
              "images.ppd_dummy": {"source": "folder", "path": "data/ppd", "expected_count": 5}}
    spec = load_spec(HELPERS / "toy_spec.yaml", absent)
    [p] = plan_service(spec, Context(store=Store(tmp_path / "store", read_only=True)), with_estimate=True)
    rows = {op: [r for r in p.estimate.rows if r.op == op] for op in ("pool", "train_scorer", "metric")}
    assert sum(r.units for r in rows["pool"]) == 30  # as the toy: 6 × K=4 eval + 3 × K=2 negatives
    assert [r.units for r in rows["train_scorer"]] == [5 + 6]  # declared PPD + the negatives' pool
    assert [r.units for r in rows["metric"]] == [6, 6, 6]
    assert [a.line() for a in p.assumed] == ["eval: 6 prompts (expected_count; data/eval.tsv is not here)",
                                             "ppd_dummy: 5 images (expected_count; data/ppd is not here)"]
    assert not (tmp_path / "store").exists()
