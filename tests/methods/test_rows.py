"""The method plugins through the artifact graph, on the mini generator (random-init weights) with a
test brightness RM: pool sharing, RM@K's true argmax, SFT/DPO rows, multi-round chaining, reruns."""


import numpy as np
import pytest

from ganrm_bench.harness.engine.evaluator import Evaluator
from ganrm_bench.harness.engine.runner import run_spec
from ganrm_bench.harness.errors import UserError
from tests.helpers.method_rows import TRAIN, builder, write_spec


@pytest.fixture
def mini_spec(tmp_path, mini_weights):
    gens = {"gen": {"generator": "mini_diffusion", "weights": str(mini_weights), "steps": 3, "device": "cpu"}}
    row = {"generator": "gen", "prompts": "eval"}
    methods = {
        "base": {"method": "base", **row},
        "rm4": {"method": "rm_at_k", "scorer": "rm", "k": 4, **row},
        "rm2": {"method": "rm_at_k", "scorer": "rm", "k": 2, **row},
        "sft": {"method": "sft", "scorer": "rm", **row, **TRAIN},
        "dpo": {"method": "dpo", "scorer": "rm", **row, **TRAIN},
        "round1": {"method": "multi_round", "rounds": 1, "scorer": "rm", **row, **TRAIN},
        "round2": {"method": "multi_round", "rounds": 2, "scorer": "rm", **row, **TRAIN},
    }
    return write_spec(tmp_path, gens, methods)


def brightness(path):
    from PIL import Image

    with Image.open(path) as im:
        return float(np.asarray(im.convert("RGB"), dtype=np.float64).mean())


def pixel_gap(a, b):
    from PIL import Image

    with Image.open(a) as x, Image.open(b) as y:
        return float(np.abs(np.asarray(x, dtype=float) - np.asarray(y, dtype=float)).mean())


def test_larger_pool_serves_smaller_k_and_rm_at_k_picks_the_true_argmax(mini_spec, ctx):
    b, ev = builder(mini_spec, ctx), Evaluator(ctx)
    best4 = ev.value(b.method("rm4"))
    made = ctx.counters["images generated"]
    assert made == 3 * 4 + 2 * 2  # eval pool K=4, RM negatives K=2
    best2 = ev.value(b.method("rm2"))
    base = ev.value(b.method("base"))
    assert ctx.counters["images generated"] == made  # K=2 and K=1 are prefixes of the K=4 pool
    pool = ev.value(b.pool("gen", "eval", 4))
    for k, chosen in ((4, best4), (2, best2), (1, base)):
        for item in chosen:
            candidates = [it for it in pool if it.prompt_id == item.prompt_id and it.k < k]
            truth = max(candidates, key=lambda it: -abs(brightness(it.path) - 200.0))
            assert item.key == truth.key
    assert [it.k for it in base] == [0, 0, 0]


def test_all_rows_run_and_a_rerun_computes_nothing(mini_spec, ctx):
    first = run_spec(mini_spec, ctx)
    assert not first.failures
    assert set(first.results["row"]) == {"base", "rm4", "rm2", "sft", "dpo", "round1", "round2"}
    assert first.computed["finetune"] == 3  # sft, dpo (= round 1 of multi_round), round 2
    assert first.computed["train_scorer"] == 2  # the spec's RM (= round 1's), round 2's
    counters = dict(ctx.counters)
    again = run_spec(mini_spec, ctx)
    assert not again.failures and sum(again.computed.values()) == 0
    assert dict(ctx.counters) == counters
    values = lambda r: r.set_index("row")["value"].to_dict()  # noqa: E731
    assert values(again.results) == values(first.results)


def test_multi_round_chains_rm_and_generator_artifacts_and_records_rewards(mini_spec, ctx):
    b, ev = builder(mini_spec, ctx), Evaluator(ctx)
    row = b.method("round2")
    ev.value(row)
    nodes = list(row.walk())
    rms = [n for n in nodes if n.op.name == "train_scorer"]
    tunes = [n for n in nodes if n.op.name == "finetune"]
    stats = [n for n in nodes if n.op.name == "reward_stats"]
    assert len({n.key for n in rms}) == 2 and len({n.key for n in tunes}) == 2 and len(stats) == 2
    r1, r2 = sorted(tunes, key=lambda n: n.label)
    # round 2 fine-tunes the round-1 generator, on data scored by an RM trained on that generator's samples
    assert r2.inputs["generator"].op.name == "finetuned_generator" and r2.inputs["generator"].inputs["weights"] is r1
    assert any(n is r1 for n in r2.walk())
    rm2 = next(n for n in rms if n.label.endswith("round2"))
    assert any(n is r1 for n in rm2.walk()) and ctx.store.has(rm2.key)
    assert b.method("round1").inputs["samples"].inputs["generator"].inputs["weights"].key == \
        b.method("dpo").inputs["generator"].inputs["weights"].key  # round 1 is the dpo row
    for n in stats:
        value = ev.value(n)
        assert value["n"] == 2 * 3 and np.isfinite(value["mean"]) and value["var"] >= 0
        assert value["best_mean"] >= value["mean"] >= value["worst_mean"]
        assert ctx.store.manifest(n.key)["reward"]["round"] in (1, 2)
    assert ev.value(rms[0]).negatives_mean != ev.value(rms[1]).negatives_mean


def test_train_prompts_must_name_a_prompt_set(tmp_path, mini_weights, ctx):
    gens = {"gen": {"generator": "mini_diffusion", "weights": str(mini_weights), "steps": 3, "device": "cpu"}}
    with pytest.raises(UserError, match="methods.dpo.train_prompts: no prompt set named 'trian'"):  # caught by validation now
        write_spec(tmp_path, gens, {"dpo": {"method": "dpo", "generator": "gen", "prompts": "eval", "scorer": "rm",
                                            **{**TRAIN, "train_prompts": "trian"}}})


def test_diffusion_dpo_row_samples_from_the_swapped_unet(tmp_path, tiny_sd, ctx):
    from tests.helpers.tiny_pipelines import save_tiny_unet

    unet_dir = save_tiny_unet(tmp_path / "dpo_unet", seed=5)
    gens = {"gen": {"generator": "diffusers", "model": str(tiny_sd), "steps": 2, "height": 32, "width": 32}}
    spec = write_spec(tmp_path, gens, {
        "base": {"method": "base", "generator": "gen", "prompts": "eval"},
        "ddpo": {"method": "diffusion_dpo", "generator": "gen", "prompts": "eval", "unet": str(unet_dir)},
        "bad": {"method": "diffusion_dpo", "generator": "gen", "prompts": "eval"},
    })
    b, ev = builder(spec, ctx), Evaluator(ctx)
    base, ddpo = ev.value(b.method("base")), ev.value(b.method("ddpo"))
    assert [it.seed for it in base] == [it.seed for it in ddpo]  # same initial noise, different UNet
    assert all(pixel_gap(a.path, d.path) > 1 for a, d in zip(base, ddpo))
    assert {it.key for it in base}.isdisjoint({it.key for it in ddpo})
    with pytest.raises(UserError, match="mhdang/dpo-sd1.5-text2image-v1"):
        b.method("bad")


def test_dpo_pairs_are_the_scorers_argmax_and_argmin_through_the_graph(mini_spec, ctx):
    """The DPO row's fine-tune trains on (winner, loser) = (best, worst) of K by the row's scorer."""
    from ganrm_bench.methods.ops import FINETUNE

    b, ev = builder(mini_spec, ctx), Evaluator(ctx)
    ft = next(n for n in b.method("dpo").walk() if n.op is FINETUNE)
    winners, losers = ev.value(ft.inputs["winners"]), ev.value(ft.inputs["losers"])
    pool = ev.value(b.pool("gen", "train", TRAIN["k"]))
    truth = {it.key: -abs(brightness(it.path) - 200.0) for it in pool}  # the test RM's target
    assert sorted(w.prompt_id for w in winners) == sorted(w.prompt_id for w in losers) == ["t2", "t5"]
    for w, lo in zip(sorted(winners, key=lambda i: i.prompt_id), sorted(losers, key=lambda i: i.prompt_id)):
        same = [it for it in pool if it.prompt_id == w.prompt_id]
        assert w.key == max(same, key=lambda it: truth[it.key]).key
        assert lo.key == min(same, key=lambda it: truth[it.key]).key and lo.key != w.key


@pytest.mark.parametrize("rank", [1, 2, 4])
def test_rank_of_k_keeps_the_sample_at_that_scorer_rank(tmp_path, mini_weights, ctx, rank):
    gens = {"gen": {"generator": "mini_diffusion", "weights": str(mini_weights), "steps": 3, "device": "cpu"}}
    spec = write_spec(tmp_path, gens, {"r": {"method": "rank_of_k", "generator": "gen", "prompts": "eval", "scorer": "rm",
                                             "k": 4, "rank": rank}}, name=f"rank{rank}")
    b, ev = builder(spec, ctx), Evaluator(ctx)
    chosen = ev.value(b.method("r"))
    pool = ev.value(b.pool("gen", "eval", 4))
    for item in chosen:
        same = sorted((it for it in pool if it.prompt_id == item.prompt_id), key=lambda it: abs(brightness(it.path) - 200.0))  # best first
        assert item.key == same[rank - 1].key
