"""smc_search against a script: a particle generator whose x̂0 rewards are a table (tests/helpers/
search_plugins.py), so the ancestors SMC draws, the reward history each particle carries and the
sample it returns are worked out by hand (one step of each potential) and replayed from the
module's stated algorithm (a row per potential, end to end).

The table is chosen so that a bug shows: the three potentials draw different ancestors, and a
history that did not follow the ancestors would draw others again (both are checked as
preconditions, so the tests cannot pass vacuously)."""

import json
import math

import numpy as np
import pytest

from ganrm_bench.harness.engine.builder import Builder
from ganrm_bench.harness.engine.evaluator import Evaluator
from ganrm_bench.harness.runtime.context import Context
from ganrm_bench.harness.runtime.seeds import derive_seed
from ganrm_bench.harness.spec.load import load_spec
from ganrm_bench.harness.store.artifacts import Store
from ganrm_bench.methods.smc_search import potential, resample_weights, smc_step, systematic_resample
from tests.helpers import HELPERS

LAM = math.log(2)  # softmax(λ·G) ∝ 2^G: weights by hand
K, AT = 3, [0, 1]
X0 = [[0.0, 1.0, 3.0], [0.0, 1.0, 3.0]]  # reward of row j's x̂0 at steps 0 and 1
FINAL = [5.0, 7.0, 6.0]  # reward of a finished particle by the row it descends from


@pytest.mark.parametrize("kind,ancestors,history", [
    # step 1, history [[1, 0], [3, 1], [3, 3]] (see below):
    # max G = [1, 3, 3] ∝ [1, 4, 4]/9, cumulative [.111, .556, 1]: positions .183 .517 .85 → [1, 1, 2]
    ("max", [1, 1, 2], [[3, 1], [3, 1], [3, 3]]),
    # sum G = [1, 4, 6] ∝ [1, 8, 32]/41, cumulative [.024, .220, 1] → [1, 2, 2]
    ("sum", [1, 2, 2], [[3, 1], [3, 3], [3, 3]]),
    # difference G = [−1, −2, 0] ∝ [2, 1, 4]/7, cumulative [.286, .429, 1] → [0, 2, 2]
    ("difference", [0, 2, 2], [[1, 0], [3, 3], [3, 3]]),
])
def test_two_steps_by_hand(kind, ancestors, history):
    # step 0, rewards [0, 1, 3]: every potential is the reward; ∝ [1, 2, 8]/11, cumulative [.091, .273, 1];
    # u = .55: positions (u + i)/3 = .183, .517, .85 → ancestors [1, 2, 2], histories [[1], [3], [3]]
    a0, h0 = smc_step(np.zeros((K, 0)), X0[0], kind, LAM, 0.55)
    assert a0.tolist() == [1, 2, 2] and h0.tolist() == [[1], [3], [3]]
    # step 1, rewards [0, 1, 3] again: the histories [[1, 0], [3, 1], [3, 3]] decide
    a1, h1 = smc_step(h0, X0[1], kind, LAM, 0.55)
    assert a1.tolist() == ancestors and h1.tolist() == history


def test_a_history_left_behind_would_draw_other_ancestors():
    """The precondition of the step test: histories [[0], [1], [3]] (each particle its own step-0
    reward, not its ancestor's) give max [0, 1, 3] → [1, 2, 2], sum [0, 2, 6] → [2, 2, 2] and
    difference [0, 0, 0] → [0, 1, 2], none the ancestors above."""
    left = np.array([[0.0], [1.0], [3.0]])
    drawn = {kind: smc_step(left, X0[1], kind, LAM, 0.55)[0].tolist() for kind in ("max", "sum", "difference")}
    assert drawn == {"max": [1, 2, 2], "sum": [2, 2, 2], "difference": [0, 1, 2]}


def _spec(tmp_path):
    rows = "\n".join(f"  smc_{kind}: {{method: smc_search, generator: script, prompts: eval, scorer: table, particles: {K}, "
                     f"resample_at: {AT}, lam: {LAM!r}, potential: {kind}, eta: 0.0}}" for kind in ("max", "sum", "difference"))
    text = f"""
spec_version: 1
name: smc-scripted
plugins: [{HELPERS / 'search_plugins.py'}]
seeds: [0]
generators:
  script: {{generator: scripted_particles, steps: 3, batch_size: 6}}
prompts:
  eval: {{source: mini_digits, n_prompts: 5, seed: 0, id_prefix: eval}}
scorers:
  table: {{scorer: scripted_reward, x0: {X0}, final: {FINAL}}}
methods:
{rows}
metrics: {{}}
"""
    (tmp_path / "smc.yaml").write_text(text)
    return load_spec(tmp_path / "smc.yaml")


def replay(kind: str, prompt_id: str, carry: bool = True) -> tuple[list[list[int]], list[int]]:
    """The module docstring's algorithm for one prompt, restated: (ancestors at each step, final
    lineages). `carry=False`: the histories stay with the rows instead of following the ancestors."""
    history, lineage, drawn = np.zeros((K, 0)), np.arange(K), []
    for step in AT:
        history = np.concatenate([history, np.array(X0[step])[:, None]], axis=1)
        u = np.random.default_rng(derive_seed(0, prompt_id, "smc_search", step)).random()
        a = systematic_resample(resample_weights(potential(kind, history), LAM), u)
        history = history[a] if carry else history
        lineage = lineage[a]
        drawn.append(a.tolist())
    return drawn, lineage.tolist()


def test_a_row_per_potential_draws_the_stated_ancestors_and_returns_the_best_final(tmp_path):
    spec = _spec(tmp_path)
    ctx = Context(store=Store(tmp_path / "store"))
    prompts = Evaluator(ctx).value(Builder(spec, ctx, 0).prompts("eval"))
    ids = [p.id for p in prompts]
    # preconditions: on these prompts the potentials draw differently, and so would a left-behind history
    plans = {kind: [replay(kind, i) for i in ids] for kind in ("max", "sum", "difference")}
    assert plans["max"] != plans["sum"] and plans["max"] != plans["difference"] and plans["sum"] != plans["difference"]
    assert all(plans[kind] != [replay(kind, i, carry=False) for i in ids] for kind in plans)

    log = type(Builder(spec, ctx, 0).generator("script").obj).LOG  # the class the spec's plugin file registered
    for kind, plan in plans.items():
        log.clear()
        items = Evaluator(ctx).value(Builder(spec, ctx, 0).method(f"smc_{kind}"))
        drawn: dict[str, list[list[int]]] = {i: [] for i in ids}
        for rows, step, ancestors in log:  # chunks of 2 prompts × 3 particles (batch 6)
            for pi in range(len(rows) // K):
                mine = ancestors[pi * K:(pi + 1) * K]
                assert all(pi * K <= a < (pi + 1) * K for a in mine)  # a particle descends from its own prompt's
                drawn[rows[pi * K]].append([a - pi * K for a in mine])
        assert drawn == {i: p[0] for i, p in zip(ids, plan)}, kind
        for item, (_, lineage) in zip(items, plan):
            finals = [FINAL[origin] for origin in lineage]
            pick = finals.index(max(finals))  # the first best particle
            assert item.k == pick and np.asarray(item.load().convert("L")).reshape(-1)[1] % K == lineage[pick]
            assert items.trajectories[item.prompt_id] == [3.0, 3.0, max(finals)]  # best x̂0 reward at each step, then the pick's


def test_the_scripted_rows_cost_and_chunks(tmp_path):
    """NFE: particles × the generator's NFE per sample (3 steps); scorer calls: particles × (resample
    steps + the final samples); prompts go 2 to a denoising pass (batch 6 // 3 particles)."""
    spec = _spec(tmp_path)
    ctx = Context(store=Store(tmp_path / "store"))
    b = Builder(spec, ctx, 0)
    node = b.method("smc_sum")
    value = Evaluator(ctx).value(node)
    assert ctx.counters["scorer calls on x0"] == 5 * K * len(AT) and ctx.counters["images generated"] == 5 * K
    assert node.op.cost(node, value) == {"nfe": 5 * K * 3, "scorer_calls": 5 * K * (len(AT) + 1)}
    assert node.op.chunk_size(b.generator("script").obj, node.params) == 2


@pytest.mark.parametrize("at,ok", [("[1]", True), ("[0, 1]", True), ("[2]", False), ("[1, 0]", False), ("[-1]", False),
                                   ("[0, 0]", False)])
def test_resample_steps_must_be_increasing_and_before_the_last_step(tmp_path, at, ok):
    from ganrm_bench.harness.errors import UserError

    _spec(tmp_path)  # the spec's file, with one more row
    path = tmp_path / "smc.yaml"
    path.write_text(path.read_text().replace("metrics: {}", f"  bad: {{method: smc_search, generator: script, prompts: eval, "
                                                             f"scorer: table, particles: 2, resample_at: {at}}}\nmetrics: {{}}"))
    spec = load_spec(path)
    b = Builder(spec, Context(store=Store(tmp_path / "s")), 0)
    if ok:
        assert b.method("bad").params["resample_at"] == json.loads(at)
    else:
        with pytest.raises(UserError, match=r"resample_at .* \(3 steps\)") as err:
            b.method("bad")
        assert "from 0 to 1" in err.value.hint
