"""noise_search on the mini generator (3 DDIM steps) with brightness as the value: the hooks
reproduce `generate` from its own noise, the search beats best-of-K at the same NFE on these
prompts, its NFE is RM@K's, its round 0 is the pool's items, a re-run computes nothing and a lost artifact resumes from the
per-prompt records; the diffusers generator exposes the same hooks."""

import json

import numpy as np
import pytest
import torch

from ganrm_bench.harness.engine.builder import Builder
from ganrm_bench.harness.engine.evaluator import Evaluator
from ganrm_bench.harness.engine.runner import run_spec
from ganrm_bench.harness.plugins.base import Prompt, SampleRequest
from ganrm_bench.harness.runtime.context import Context
from ganrm_bench.harness.spec.load import load_spec
from ganrm_bench.harness.store.artifacts import Store
from tests.helpers import HELPERS

STEPS = 3


def _spec(tmp_path, guidance=1.0):
    text = f"""
spec_version: 1
name: search-test
plugins: [{HELPERS / 'search_plugins.py'}]
seeds: [0]
runtime: {{device: cpu}}
generators:
  mini: {{generator: mini_diffusion, steps: {STEPS}, guidance: {guidance}, batch_size: 8}}
prompts:
  eval: {{source: mini_digits, n_prompts: 6, seed: 0, id_prefix: eval}}
scorers:
  bright: {{scorer: test_brightness}}
methods:
  base: {{method: base, generator: mini, prompts: eval}}
  rm8: {{method: rm_at_k, generator: mini, prompts: eval, scorer: bright, k: 8}}
  search8: {{method: noise_search, generator: mini, prompts: eval, scorer: bright, candidates: 8, population: 4, sigma: 0.5}}
metrics:
  brightness: {{metric: test_brightness_metric}}
"""
    path = tmp_path / "search.yaml"
    path.write_text(text)
    return load_spec(path)


def _arrays(images):
    return [np.asarray(im) for im in images]


@pytest.mark.parametrize("scheduler,guidance", [("ddim", 1.0), ("ddpm", 2.0)])
def test_mini_generate_from_its_own_noise_is_generate(scheduler, guidance):
    """Also for DDPM, whose per-step noise continues each seed's generator after the initial draw."""
    from ganrm_bench.mini.generator import MiniDiffusion

    gen = MiniDiffusion(device="cpu", steps=STEPS, batch_size=4, scheduler=scheduler, guidance=guidance)
    ctx = None  # mini_diffusion does not use the context
    reqs = [SampleRequest(Prompt(f"p{d}", f"a handwritten digit {d}"), 0, 50 + d) for d in range(5)]
    noise = gen.initial_noise(reqs)
    assert noise.shape == (5, 1, 16, 16)
    same = _arrays(gen.generate_from_noise(reqs, noise, ctx))
    for a, b in zip(same, _arrays(gen.generate(reqs, ctx))):
        np.testing.assert_array_equal(a, b)
    moved = _arrays(gen.generate_from_noise(reqs[:1], noise[:1] * 0.5, ctx))[0]
    assert not np.array_equal(moved, same[0])
    assert gen.nfe_per_sample() == STEPS * (1 if guidance == 1.0 else 2)


def test_search_beats_best_of_k_at_equal_nfe_and_reruns_compute_nothing(tmp_path):
    spec = _spec(tmp_path)
    store = Store(tmp_path / "store")
    cold = run_spec(spec, Context(store=store))
    assert not cold.failures, cold.failures
    res = cold.results.set_index("row")
    assert res.loc["base", "nfe"] == STEPS
    assert res.loc["rm8", "nfe"] == 8 * STEPS == res.loc["search8", "nfe"]
    assert res.loc["rm8", "scorer_calls"] == 8 == res.loc["search8", "scorer_calls"]
    # on these prompts the search's samples are brighter than best-of-8's on 4 of the 6 (Δ −8.0, +2.6, +1.3,
    # +5.1, −0.5, +9.2 on one x86-64 CPU; with 4 rounds of 2 instead of 2 rounds of 4 it loses, 88.1 vs 91.1 —
    # local search is no free lunch). Another CPU's rounding can flip a near-tied choice and send one
    # prompt's search elsewhere, so the check is one that survives any one prompt changing: ≥ 3 of 6 wins
    # (the mean, +1.6, is carried by one prompt and is not checked).
    search = np.array([np.asarray(it.load(), float).mean() for it in cold.samples["search8"]])
    best = np.array([np.asarray(it.load(), float).mean() for it in cold.samples["rm8"]])
    assert [it.prompt_id for it in cold.samples["search8"]] == [it.prompt_id for it in cold.samples["rm8"]]
    assert (search > best).sum() >= 3
    # it never does worse than its round 0, which is the pool's first four draws (best-of-4)
    pool4 = Evaluator(Context(store=store)).value(Builder(spec, Context(store=store), 0).pool("mini", "eval", 4))
    by_prompt = {}
    for it in pool4:
        by_prompt.setdefault(it.prompt_id, []).append(np.asarray(it.load(), float).mean())
    assert all(s >= max(by_prompt[it.prompt_id]) for s, it in zip(search, cold.samples["search8"]))

    # RM@8's pool (base: its first draws) + the search's rounds after 0: round 0 are the pool's items
    assert cold.counters["images generated"] == 6 * 8 + 6 * 4
    warm = run_spec(spec, Context(store=store))
    assert sum(warm.computed.values()) == 0 and "images generated" not in warm.counters
    cols = ["nfe", "scorer_calls", "seconds"]
    assert warm.results[cols].equals(cold.results[cols])

    # a lost search artifact is rebuilt from the per-prompt records: nothing generated or scored
    import shutil

    search_node = Builder(spec, Context(store=store), 0).method("search8")
    trajectories = json.loads((store.path(search_node.key) / "trajectories.json").read_text())
    assert all(t == sorted(t) and len(t) == 2 for t in trajectories.values())  # best so far, after rounds 0 and 1
    shutil.rmtree(store.path(search_node.key))
    again = run_spec(spec, Context(store=store))
    assert again.computed["noise_search"] == 1 and "images generated" not in again.counters and "scores:items" not in again.counters
    assert [it.key for it in again.samples["search8"]] == [it.key for it in cold.samples["search8"]]


def test_search_seeds_differ_and_reproduce(tmp_path):
    spec = _spec(tmp_path)
    keys = []
    for name in ("a", "b"):
        ctx = Context(store=Store(tmp_path / name))
        keys.append([it.key for it in Evaluator(ctx).value(Builder(spec, ctx, 0).method("search8"))])
    ctx = Context(store=Store(tmp_path / "a"))
    other = [it.key for it in Evaluator(ctx).value(Builder(spec, ctx, 1).method("search8"))]
    assert keys[0] == keys[1] and other != keys[0]


@pytest.mark.parametrize("scheduler", [None, "EulerAncestralDiscreteScheduler"])
def test_diffusers_generate_from_its_own_noise_is_generate(tiny_sd, tmp_path, scheduler):
    """DDIM, and an ancestral sampler whose step noise continues each seed's generator."""
    from ganrm_bench.methods.generators.diffusers_image import DiffusersImageGenerator

    ctx = Context(store=Store(tmp_path / "store"))
    gen = DiffusersImageGenerator({"model": str(tiny_sd), "steps": 2, "height": 32, "width": 32, "guidance": 3.0, "batch_size": 2,
                                   "scheduler": scheduler})
    reqs = [SampleRequest(Prompt(f"p{i}", f"a photo of thing {i}"), 0, 700 + i) for i in range(3)]
    noise = gen.initial_noise(reqs)
    assert noise.shape[0] == 3 and noise.dtype == torch.float32
    from_noise = _arrays(gen.generate_from_noise(reqs, noise, ctx))
    for a, b in zip(from_noise, _arrays(gen.generate(reqs, ctx))):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(_arrays(gen.generate_from_noise(reqs[:1], -noise[:1], ctx))[0], from_noise[0])
    assert gen.nfe_per_sample() == 4  # 2 steps × 2 (classifier-free guidance)


def test_two_processes_split_the_prompts_and_agree_with_one(tmp_path, monkeypatch):
    """Rank 0 searches the even prompts (then times out waiting for rank 1), rank 1 the odd ones (then
    times out waiting for rank 0 to publish), rank 0 assembles all: the same items as one process,
    and no prompt searched twice. (Ranks in turn in one process: process 0 starts a launch.)"""
    from ganrm_bench.harness.errors import UserError

    spec = _spec(tmp_path)
    one = Context(store=Store(tmp_path / "one"))
    single = [it.key for it in Evaluator(one).value(Builder(spec, one, 0).method("search8"))]

    ctx = Context(store=Store(tmp_path / "two"))
    monkeypatch.setenv("GANRM_BENCH_SHARD_TIMEOUT", "0.2")
    monkeypatch.setenv("WORLD_SIZE", "2")
    for rank, made in ((0, 3 * 8), (1, 6 * 8)):  # 3 of the 6 prompts each, 8 candidates per prompt
        monkeypatch.setenv("RANK", str(rank))
        with pytest.raises(UserError, match="timed out"):
            Evaluator(ctx).value(Builder(spec, ctx, 0).method("search8"))
        assert ctx.counters["images generated"] == made
    monkeypatch.setenv("RANK", "0")
    ev = Evaluator(ctx)
    sharded = [it.key for it in ev.value(Builder(spec, ctx, 0).method("search8"))]
    assert sharded == single and ctx.counters["images generated"] == 6 * 8
