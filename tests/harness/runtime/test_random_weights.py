"""`run --random-weights` and `--limit-prompts` on toy plugins: the mode is in every key (a random
run's artifacts are never found by a real run, nor the reverse), run.json records both, a limit
changes exactly the keys it must, a metric that cannot be built randomly is left out with its
reason, and bad limits are clear errors."""

from __future__ import annotations

import json

import pytest

from ganrm_bench.harness.app.services.run import make_context, run_to_dir
from ganrm_bench.harness.engine.builder import Builder
from ganrm_bench.harness.engine.cells import build_cells
from ganrm_bench.harness.engine.plan import plan
from ganrm_bench.harness.engine.runner import run_spec
from ganrm_bench.harness.errors import UserError
from ganrm_bench.harness.runtime import random_weights as rw
from ganrm_bench.harness.runtime.context import Context
from ganrm_bench.harness.spec.load import load_spec
from ganrm_bench.harness.store.artifacts import Store
from tests.helpers import HELPERS
from tests.helpers.clirun import ganrm  # noqa: E402
from tests.helpers.toy_plugins import count  # noqa: E402

SPEC = HELPERS / "toy_spec.yaml"


def node_keys(spec, ctx) -> set[str]:
    b = Builder(spec, ctx, spec.seeds[0])
    return {n.key for cell in build_cells(spec, b) for n in cell.node.walk()}


def test_every_node_key_differs_under_random_weights(tmp_path):
    spec = load_spec(SPEC)
    ctx = Context(store=Store(tmp_path / "s"))
    real = node_keys(spec, ctx)
    with rw.enabled():
        random = node_keys(spec, ctx)
    assert real and random and not (real & random)
    assert not rw.active()  # the mode ends with the block
    with rw.enabled():
        assert node_keys(spec, ctx) == random  # and is stable


def test_pool_item_and_per_item_array_keys_differ(tmp_path):
    """Item files (generated samples, cached scores/features) are keyed apart too, not only nodes."""
    from ganrm_bench.harness.engine.ops import POOL, pool_requests
    from ganrm_bench.harness.plugins.base import Item

    spec = load_spec(SPEC)
    ctx = Context(store=Store(tmp_path / "s"))

    def keys():
        b = Builder(spec, ctx, 0)
        pool = b.pool("gen", "eval", 2)
        prompts = pool.inputs["prompts"].obj.load(ctx)
        items = POOL.item_keys(pool, pool_requests(prompts, 2, 0))
        arrays = []
        ctx.per_item_arrays("ns", {"fp": 1}, [Item(key="k0", path="")], lambda batch: arrays.append(1) or [[0.0]])
        return set(items), set(p.name for p in (tmp_path / "s" / "items").rglob("*.npy"))

    real_items, real_arrays = keys()
    with rw.enabled():
        random_items, all_arrays = keys()
    assert real_items and not (real_items & random_items)
    assert len(all_arrays) == 2 and real_arrays < all_arrays  # the random run wrote its own array file


def test_a_real_run_never_picks_up_random_weights_artifacts(tmp_path, counters):
    spec = load_spec(SPEC)
    store = Store(tmp_path / "store")
    with rw.enabled():
        smoke = run_spec(spec, Context(store=store))
    assert not smoke.failures and count(counters, "generated") == 30
    ctx = Context(store=store)
    entries = plan([c.node for c in build_cells(spec, Builder(spec, ctx, 0))], ctx)
    assert entries and not [e for e in entries if e.status == "cached"]
    real = run_spec(spec, Context(store=store))
    assert not real.failures and count(counters, "generated") == 60  # everything again: nothing shared
    with rw.enabled():  # and the smoke run is still found by another smoke run
        again = run_spec(spec, Context(store=store))
    assert sum(again.computed.values()) == 0 and count(counters, "generated") == 60


def test_run_json_records_the_mode_and_the_limit(tmp_path, counters):
    spec = load_spec(SPEC)
    ctx = make_context(spec, cache=tmp_path / "store", device="cpu", limit_prompts=2)
    done = run_to_dir(spec, str(SPEC), ctx, out_dir=tmp_path / "run", random_weights=True)
    info = json.loads((tmp_path / "run" / "run.json").read_text())
    assert info["random_weights"] is True and info["limit_prompts"] == 2
    assert done.skipped == {} and not rw.active()
    ctx = make_context(spec, cache=tmp_path / "store", device="cpu")
    run_to_dir(spec, str(SPEC), ctx, out_dir=tmp_path / "real")
    info = json.loads((tmp_path / "real" / "run.json").read_text())
    assert info["random_weights"] is False and info["limit_prompts"] is None


def test_a_random_weights_table_shows_no_paper_values_and_says_what_it_is(tmp_path, counters):
    spec = load_spec(SPEC)  # the toy spec has a paper value for base × brightness
    run_to_dir(spec, str(SPEC), make_context(spec, cache=tmp_path / "store", device="cpu"), out_dir=tmp_path / "rw",
               random_weights=True)
    run_to_dir(spec, str(SPEC), make_context(spec, cache=tmp_path / "store", device="cpu"), out_dir=tmp_path / "real")
    random_table, real_table = ((tmp_path / d / "table.md").read_text() for d in ("rw", "real"))
    assert "paper 99" in real_table and "paper 99" not in random_table
    assert "--random-weights" in random_table and "--random-weights" not in real_table


def test_limit_prompts_truncates_every_prompt_set_and_changes_their_keys(tmp_path, counters):
    spec = load_spec(SPEC)
    store = Store(tmp_path / "store")
    full_ctx, lim_ctx = Context(store=store), Context(store=store, limit_prompts=2)
    b_full, b_lim = Builder(spec, full_ctx, 0), Builder(spec, lim_ctx, 0)
    for name, n in (("eval", 6), ("train", 3)):
        full, lim = b_full.prompts(name), b_lim.prompts(name)
        assert full.key != lim.key
        assert len(full.obj.load(full_ctx)) == n
        assert [p.id for p in lim.obj.load(lim_ctx)] == [p.id for p in full.obj.load(full_ctx)][:2]
    out = run_spec(spec, lim_ctx)
    assert not out.failures
    # eval: 2 prompts × K=4, RM negatives: 2 train prompts × 2
    assert count(counters, "generated") == 2 * 4 + 2 * 2
    assert set(out.results["n"]) == {2}


def test_limit_on_a_source_with_its_own_limit_keeps_the_smaller(tmp_path):
    from ganrm_bench.harness.plugins.sources import TextFilePrompts
    from ganrm_bench.harness.runtime.limits import limited_prompts

    path = tmp_path / "p.txt"
    path.write_text("a\nb\nc\nd\n")
    src = TextFilePrompts({"path": str(path), "limit": 3})
    two = limited_prompts(src, "text", "x", 2)
    assert two.params.limit == 2 and [p.text for p in two.load(None)] == ["a", "b"]
    assert limited_prompts(src, "text", "x", 10).params.limit == 3
    same = limited_prompts(TextFilePrompts({"path": str(path)}), "text", "x", 2)
    assert same.fingerprint() == TextFilePrompts({"path": str(path), "limit": 2}).fingerprint()  # as a spec's own limit


@pytest.mark.parametrize("bad", [0, -1])
def test_limit_prompts_below_one_is_a_clear_error(tmp_path, capsys, bad):
    code, out, err = ganrm(capsys, "run", SPEC, "--cache", tmp_path / "c", "--out", tmp_path / "r", "--limit-prompts", bad)
    assert code == 2 and "--limit-prompts" in err and "1 or more" in err
    with pytest.raises(UserError, match="1 or more"):
        make_context(load_spec(SPEC), cache=tmp_path / "c", limit_prompts=bad)


UNBUILDABLE = """

@METRICS.register("toy_unbuildable")
class ToyUnbuildable(ToyBrightness):
    def random_weights_unavailable(self):
        from ganrm_bench.harness.runtime import random_weights

        return "needs weights no package ships" if random_weights.active() else None
"""


def test_a_metric_without_a_random_build_is_left_out_with_its_reason(tmp_path, capsys, counters):
    (tmp_path / "toy2_plugins.py").write_text((HELPERS / "toy_plugins.py").read_text().replace('"toy_', '"toy2_') + UNBUILDABLE.replace('"toy_', '"toy2_'))
    spec_text = SPEC.read_text().replace("toy_", "toy2_").replace("  brightness: {metric: toy2_brightness}",
                                                                   "  brightness: {metric: toy2_brightness}\n  bright2: {metric: toy2_unbuildable, label: B2}")
    spec_file = tmp_path / "toy_spec.yaml"
    spec_file.write_text(spec_text)
    code, out, err = ganrm(capsys, "run", spec_file, "--cache", tmp_path / "c", "--out", tmp_path / "r", "--random-weights",
                           "--no-progress")
    assert code == 0, err
    why = "needs weights no package ships"
    assert "column 'bright2' left out" in err and why in err
    info = json.loads((tmp_path / "r" / "run.json").read_text())
    assert info["skipped_columns"] == {"bright2": why}
    table = (tmp_path / "r" / "table.md").read_text()
    assert "B2" not in table and "brightness" in table.lower()
    # without --random-weights the column is computed
    code, out, err = ganrm(capsys, "run", spec_file, "--cache", tmp_path / "c", "--out", tmp_path / "r2", "--no-progress")
    assert code == 0, err
    assert "B2" in (tmp_path / "r2" / "table.md").read_text()


def test_the_marker_never_replaces_a_fingerprints_own_weights(tmp_path):
    """Per-item arrays merge the marker into the computing model's fingerprint: two models that
    differ only in their weights must still get different arrays under --random-weights."""
    from ganrm_bench.harness.plugins.base import Item

    ctx = Context(store=Store(tmp_path / "s"))
    calls = []

    def compute(batch):
        calls.append(len(batch))
        return [[float(len(calls))]]

    with rw.enabled():
        a = ctx.per_item_arrays("ns", {"model": "m", "weights": {"random_init": "A"}}, [Item(key="k0", path="")], compute)
        b = ctx.per_item_arrays("ns", {"model": "m", "weights": {"random_init": "B"}}, [Item(key="k0", path="")], compute)
    assert calls == [1, 1] and a.tolist() != b.tolist()
