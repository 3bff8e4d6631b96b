"""The runner on toy plugins, in-process: cold computes everything, warm nothing; pools are
shared across K; the plan counts what a run will do; seeds make runs reproducible."""



from ganrm_bench.harness.engine.builder import Builder
from ganrm_bench.harness.engine.cells import build_cells
from ganrm_bench.harness.engine.plan import plan, plan_totals
from ganrm_bench.harness.engine.runner import run_spec
from ganrm_bench.harness.runtime.context import Context
from ganrm_bench.harness.spec.load import load_spec
from ganrm_bench.harness.store.artifacts import Store
from tests.helpers import HELPERS
from tests.helpers.toy_plugins import count  # noqa: E402


def test_cold_then_warm(tmp_path, counters):
    spec = load_spec(HELPERS / "toy_spec.yaml")
    store = Store(tmp_path / "store")
    cold = run_spec(spec, Context(store=store))
    assert not cold.failures
    # 6 prompts × 4 (K=4 pool, which also serves K=2 and K=1) + 3 prompts × 2 for RM negatives
    assert count(counters, "generated") == 30 and count(counters, "trained") == 1
    assert cold.computed["metric"] == 3 and cold.computed["train_scorer"] == 1
    warm = run_spec(spec, Context(store=store))
    assert sum(warm.computed.values()) == 0
    assert count(counters, "generated") == 30 and count(counters, "metric") == 3 and count(counters, "trained") == 1
    assert warm.results["value"].tolist() == cold.results["value"].tolist()


def test_plan_matches_what_the_run_does(tmp_path, counters):
    spec = load_spec(HELPERS / "toy_spec.yaml")
    ctx = Context(store=Store(tmp_path / "store"))
    cells = build_cells(spec, Builder(spec, ctx, 0))
    totals = plan_totals(plan([c.node for c in cells], ctx))
    assert totals["images to generate"] == 30 and totals["models to train"] == 1
    run_spec(spec, ctx)
    after = plan([c.node for c in build_cells(spec, Builder(spec, ctx, 0))], ctx)
    assert {e.status for e in after} == {"cached"} and plan_totals(after) == {}


def test_best_of_k_picks_true_argmax(tmp_path, counters):
    spec = load_spec(HELPERS / "toy_spec.yaml")
    ctx = Context(store=Store(tmp_path / "store"))
    b = Builder(spec, ctx, 0)
    from ganrm_bench.harness.engine.evaluator import Evaluator

    ev = Evaluator(ctx)
    pool = b.pool("gen", "eval", 4)
    scores = ev.value(b.scores("rm", pool))
    chosen = ev.value(b.method("best4"))
    items = ev.value(pool)
    for sel in chosen:
        group = [(s, it) for s, it in zip(scores, items) if it.prompt_id == sel.prompt_id]
        assert sel.key == max(group, key=lambda t: t[0])[1].key


def test_seeds_reproduce_and_differ(tmp_path, counters):
    spec = load_spec(HELPERS / "toy_spec.yaml")
    a = run_spec(spec, Context(store=Store(tmp_path / "a")), seeds=[0, 1]).results
    b = run_spec(spec, Context(store=Store(tmp_path / "b")), seeds=[0, 1]).results
    assert a["value"].tolist() == b["value"].tolist() and a["key"].tolist() == b["key"].tolist()
    v0 = a[a.seed == 0]["value"].tolist()
    v1 = a[a.seed == 1]["value"].tolist()
    assert v0 != v1


def test_a_failing_cell_does_not_lose_the_others(tmp_path, counters, monkeypatch):

    spec = load_spec(HELPERS / "toy_spec.yaml")
    store = Store(tmp_path / "store")

    def broken(self, *a, **k):
        raise RuntimeError("scorer exploded")

    from ganrm_bench.harness.plugins.registry import SCORERS

    monkeypatch.setattr(SCORERS.get("toy_rm"), "fit", broken)
    out = run_spec(spec, Context(store=store))
    assert len(out.failures) == 2 and "scorer exploded" in out.failures[0]
    assert out.results["row"].tolist() == ["base"]
    monkeypatch.undo()
    monkeypatch.setenv("TOY_COUNTER_DIR", str(counters))
    generated = count(counters, "generated")
    again = run_spec(spec, Context(store=store))
    assert not again.failures and again.computed["train_scorer"] == 1
    assert count(counters, "generated") == generated  # the pools made before the failure were kept


def test_reported_ops_land_in_records(tmp_path, counters):
    """Values of ops marked `reported` (multi-round reward statistics) come back as records."""
    from ganrm_bench.harness.engine.nodes import Op
    from ganrm_bench.harness.plugins.base import Method
    from ganrm_bench.harness.plugins.registry import METHODS

    class CountOp(Op):
        name = "toy_count"
        reported = True

        def compute(self, node, ctx, inputs):
            return {"n": len(inputs["pool"])}

        def save(self, value, directory, node):
            (directory / "v.txt").write_text(str(value["n"]))

        def load(self, directory, node, ctx):
            return {"n": int((directory / "v.txt").read_text())}

    class PassOp(Op):
        name = "toy_pass"
        stored = False

        def compute(self, node, ctx, inputs):
            return inputs["samples"]

    @METHODS.register("toy_recorded")
    class Recorded(Method):
        def build(self, b, entry):
            pool = b.pool(entry.generator, entry.prompts, k=2)
            record = b.node(CountOp(), {}, {"pool": pool}, label="count")
            return b.node(PassOp(), {}, {"samples": b.pool(entry.generator, entry.prompts, k=1), "record": record})

    spec = load_spec(HELPERS / "toy_spec.yaml")
    spec.methods["rec"] = spec.methods["base"].model_copy(update={"method": "toy_recorded"})
    spec.table.rows = ["rec"]
    store = Store(tmp_path / "store")
    for _ in range(2):  # cold, then warm (the metric is cached: the record is loaded, not lost)
        out = run_spec(spec, Context(store=store))
        assert out.records.to_dict("records") == [{"row": "rec", "seed": 0, "op": "toy_count", "label": "count", "n": 12}]
