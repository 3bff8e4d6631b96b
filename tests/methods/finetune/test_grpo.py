"""GRPO / DDPO: the clipped objective against a hand computation, advantages, constant rewards
(no update), one-line config errors, determinism, and the row end to end in the mini world."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ganrm_bench.harness.diagnostics.proxy_values import proxy_scorer_nodes
from ganrm_bench.harness.engine.evaluator import Evaluator
from ganrm_bench.harness.errors import UserError
from ganrm_bench.methods.finetune.adapters import denoiser_for
from ganrm_bench.methods.finetune.objectives.grpo import advantages, clipped_policy_loss, mean_step_kl
from ganrm_bench.methods.finetune.online import GRPOConfig, grpo_finetune, iteration_batch, rollout
from ganrm_bench.methods.finetune.policy_step import step_gaussian
from ganrm_bench.methods.finetune.weights import WEIGHTS
from ganrm_bench.methods.grpo import GRPO_OP
from ganrm_bench.methods.ops import FINETUNE_CHECKPOINT
from tests.helpers.clirun import ganrm
from tests.helpers.method_rows import builder, write_spec

PROMPTS = ["a handwritten digit 2", "a handwritten digit 5"]
SMALL = dict(steps=2, group_size=3, prompts_per_step=2, finetune="full", lr=1e-3)


def brightness(images, prompts):
    return np.array([np.asarray(im, dtype=np.float64).mean() / 255 for im in images])


def test_clipped_objective_equals_a_hand_computation():
    lp = torch.tensor([0.00, 0.30, -0.20, 0.05], requires_grad=True)
    old = torch.tensor([0.00, 0.00, 0.00, 0.00])
    adv = torch.tensor([1.0, 2.0, -1.5, -0.5])
    eps = 0.1
    out = clipped_policy_loss(lp, old, adv, eps)
    # by hand: ratios 1, e^0.3 = 1.3499, e^-0.2 = 0.8187, e^0.05 = 1.0513
    # per sample max(−A·ρ, −A·clip(ρ, 0.9, 1.1)):
    #   −1·1 = −1;  max(−2·1.3499, −2·1.1) = −2.2;  max(1.5·0.8187, 1.5·0.9) = 1.35;  max(0.5·1.0513, 0.5·1.0513) = 0.52564
    want = (-1.0 - 2.2 + 1.35 + 0.5 * math.exp(0.05)) / 4
    assert out.loss.item() == pytest.approx(want, rel=1e-6)
    assert out.clip_fraction == pytest.approx(0.5)  # samples 2 and 3 left [0.9, 1.1]
    assert out.approx_kl == pytest.approx(0.5 * (0.09 + 0.04 + 0.0025) / 4, rel=1e-6)
    out.loss.backward()
    # the gradient flows only where the unclipped term is the max: d/dlp (−A·e^lp)/4 for samples 0 and 3
    np.testing.assert_allclose(lp.grad.numpy(), [-1.0 / 4, 0.0, 0.0, 0.5 * math.exp(0.05) / 4], rtol=1e-6)


def test_kl_term_is_the_gaussian_step_kl_per_dimension():
    mean, ref = torch.zeros(2, 3), torch.tensor([[0.1, 0.2, 0.3], [0.0, 0.0, 0.6]])
    kl = mean_step_kl(mean, ref, 0.5)
    np.testing.assert_allclose(kl.numpy(), [(0.01 + 0.04 + 0.09) / 3 / 0.5, 0.36 / 3 / 0.5], rtol=1e-6)
    out = clipped_policy_loss(torch.zeros(2), torch.zeros(2), torch.zeros(2), 0.1, kl=kl, kl_beta=0.04)
    assert out.loss.item() == pytest.approx(0.04 * float(kl.mean()), rel=1e-6)


def test_advantages_normalise_per_group_or_over_the_batch():
    r = [1.0, 2.0, 3.0, 5.0, 5.0, 5.0]
    g = ["a", "a", "a", "b", "b", "b"]
    a = advantages(r, g, scope="group", eps=0.0)
    np.testing.assert_allclose(a[:3], (np.array([1, 2, 3]) - 2) / np.std([1, 2, 3]))
    assert np.all(a[3:] == 0)  # equal rewards in a group: zero advantage
    b = advantages(r, g, scope="batch", eps=0.0)
    np.testing.assert_allclose(b, (np.array(r) - np.mean(r)) / np.std(r))
    assert np.all(advantages([7.0] * 6, g) == 0)
    assert np.max(advantages([0.0] * 9 + [1.0], ["x"] * 10, clip=2.0)) == 2.0
    # Flow-GRPO's global_std: each group's own mean, the batch's std; a near-tie group stays small
    r2 = [1.0, 2.0, 3.0, 5.0, 5.0, 5.01]
    c = advantages(r2, g, scope="global_std", eps=0.0)
    np.testing.assert_allclose(c, np.r_[np.array([1, 2, 3]) - 2, np.array([5, 5, 5.01]) - 5.01 / 3 - 10 / 3] / np.std(r2))
    assert np.abs(c[3:]).max() < 0.01 < np.abs(advantages(r2, g, scope="group")[3:]).max()
    assert np.all(advantages(r, g, scope="global_std")[3:] == 0)


def test_rollout_log_probs_are_the_gaussian_steps_of_its_states(mini_generator):
    model = denoiser_for(mini_generator)
    ro = rollout(model, mini_generator, model.unet, PROMPTS, [11, 12], eta=1.0, guidance=1.0, groups=["0", "1"])
    assert ro.states.shape[0] == len(ro.timesteps) + 1 == 5
    sched = mini_generator.rollout_scheduler()
    for i, t in enumerate(ro.timesteps[:-1]):
        x = ro.states[i]
        eps = model.unet_forward(model.unet, x, torch.full((2,), t), model.encode_prompts(PROMPTS))
        step = step_gaussian(sched, eps, t, x, eta=1.0)
        want = torch.distributions.Normal(step.mean, step.std).log_prob(ro.states[i + 1]).reshape(2, -1).mean(1)
        torch.testing.assert_close(ro.log_probs[i], want, rtol=1e-5, atol=1e-5)
    assert torch.isnan(ro.log_probs[-1]).all() and ro.stds[-1] == 0  # DDIM's last step into x_0 is deterministic


def test_constant_rewards_give_no_update(mini_generator, tmp_path):
    model = denoiser_for(mini_generator)
    before = {k: v.clone() for k, v in model.unet.state_dict().items()}
    grpo_finetune(model, mini_generator, PROMPTS, lambda ims, ps: np.full(len(ims), 0.5), GRPOConfig(**SMALL),
                  tmp_path / "out", tmp_path / "work")
    after = model.unet.state_dict()
    assert all(torch.equal(before[k], after[k].to(before[k].dtype)) for k in before)


def test_same_seed_same_bytes_and_rewards_move_the_weights(mini_generator, tmp_path):
    cfg = GRPOConfig(**SMALL, eval_at=[1])
    runs = []
    for name in ("a", "b"):
        summary = grpo_finetune(denoiser_for(mini_generator), mini_generator, PROMPTS, brightness, cfg,
                                tmp_path / name, tmp_path / f"work-{name}")
        runs.append((tmp_path / name / WEIGHTS).read_bytes())
    assert runs[0] == runs[1]
    base = {k: v.clone() for k, v in mini_generator.unet.state_dict().items()}
    tuned = denoiser_for(mini_generator)
    from ganrm_bench.methods.finetune.weights import apply_weights

    apply_weights(tuned.unet, tmp_path / "a")
    assert any(not torch.equal(base[k], v) for k, v in tuned.unet.state_dict().items())
    assert summary["scorer_calls"] == 2 * 2 * 3 and summary["rollout_nfe"] == 12 * 4 and summary["updates"] == 4
    assert (tmp_path / "a" / "checkpoints" / "step-00000001" / WEIGHTS).is_file()


def test_iteration_prompts_and_seeds_come_from_the_seeded_stream():
    cfg = GRPOConfig(**SMALL)
    p0, s0, g0 = iteration_batch(PROMPTS * 3, cfg, 0)
    p1, s1, _ = iteration_batch(PROMPTS * 3, cfg, 1)
    assert len(p0) == 6 and g0 == ["0", "0", "0", "1", "1", "1"] and len(set(s0 + s1)) == 12
    assert p0[0] == p0[1] == p0[2]  # a group shares its prompt


def test_group_size_below_two_is_a_one_line_error(tmp_path, mini_weights):
    gens = {"gen": {"generator": "mini_diffusion", "weights": str(mini_weights), "steps": 3, "device": "cpu"}}
    with pytest.raises(UserError) as err:
        write_spec(tmp_path, gens, {"rl": {"method": "grpo", "generator": "gen", "prompts": "eval", "scorer": "rm",
                                           "group_size": 1}})
    problems = [ln for ln in str(err.value).splitlines() if ln.lstrip().startswith("- ")]
    assert len(problems) == 1 and "methods.rl" in problems[0] and "group_size must be ≥ 2" in problems[0]


def test_deterministic_ddim_with_a_ratio_objective_is_a_one_line_error(tmp_path, mini_weights, ctx):
    gens = {"gen": {"generator": "mini_diffusion", "weights": str(mini_weights), "steps": 3, "device": "cpu"}}
    spec = write_spec(tmp_path, gens, {"rl": {"method": "grpo", "generator": "gen", "prompts": "eval", "scorer": "rm", "eta": 0}})
    with pytest.raises(UserError, match="eta = 0 makes DDIM deterministic") as err:
        builder(spec, ctx).method("rl")
    assert "\n" not in err.value.args[0]


def test_list_method_shows_grpo(capsys):
    code, out, err = ganrm(capsys, "list", "method")
    assert code == 0 and "grpo" in out, err


def test_the_row_trains_once_and_samples_its_checkpoints(tmp_path, mini_weights, ctx):
    gens = {"gen": {"generator": "mini_diffusion", "weights": str(mini_weights), "steps": 3, "device": "cpu"}}
    row = {"method": "grpo", "generator": "gen", "prompts": "eval", "scorer": "rm", "train_prompts": "train",
           **SMALL, "eval_at": [1]}
    spec = write_spec(tmp_path, gens, {"rl": row, "rl1": {**row, "checkpoint": 1}})
    b, ev = builder(spec, ctx), Evaluator(ctx)
    tune = next(n for n in b.method("rl").walk() if n.op is GRPO_OP)
    ckpt = next(n for n in b.method("rl1").walk() if n.op is FINETUNE_CHECKPOINT)
    assert ckpt.inputs["weights"].key == tune.key
    assert [s.label for s in proxy_scorer_nodes(b.method("rl"))] == ["rm"]  # the monitor's proxy
    other = write_spec(tmp_path, gens, {"rl": {**row, "advantage": "batch"}}, name="ddpo")
    assert next(n for n in builder(other, ctx).method("rl").walk() if n.op is GRPO_OP).key != tune.key  # keyed by it
    pool = ev.value(b.method("rl"))
    assert len(pool) == 3
    cost = ev.cost(tune)
    assert cost["scorer_calls"] == 12 and cost["train_steps"] == 4 and cost["nfe"] > 0
    assert len(ev.value(b.method("rl1"))) == 3


def test_estimate_sizes_the_run_from_the_generators_unit_cost(tmp_path, mini_weights, ctx):
    from ganrm_bench.harness.engine.estimate import UnitCost

    gens = {"gen": {"generator": "mini_diffusion", "weights": str(mini_weights), "steps": 3, "device": "cpu"}}
    row = {"method": "grpo", "generator": "gen", "prompts": "eval", "scorer": "rm", **SMALL, "kl_beta": 0.1}
    tune = next(n for n in builder(write_spec(tmp_path, gens, {"rl": row}), ctx).method("rl").walk() if n.op is GRPO_OP)
    (est,) = GRPO_OP.estimate_rows(tune, lambda obj: UnitCost(2.0, "image", forward_seconds=0.1))
    # 2 iterations × 2 prompts × G = 3 = 12 trajectories; per trajectory one sample (2 s) and 3 steps ×
    # (3 forwards for forward + backward, +1 for the KL reference) × 0.1 s
    assert est.units == 12 and est.seconds_per_unit == pytest.approx(2.0 + 3 * 4 * 0.1)
    assert est.seconds == pytest.approx(12 * 3.2)


def test_the_paper_scale_row_plans_and_a_non_gaussian_sampler_is_refused(ctx):
    from ganrm_bench.harness.engine.builder import Builder
    from ganrm_bench.harness.spec.load import load_spec
    from tests.helpers.paper_fixtures import BENCHMARKS

    spec = load_spec(BENCHMARKS / "online_rl_sd15.yaml")
    tune = next(n for n in Builder(spec, ctx, 0, planning=True).method("sd15_grpo").walk() if n.op is GRPO_OP)
    train = tune.params["train"]
    assert (train["group_size"], train["prompts_per_step"], train["kl_beta"], train["clip_range"]) == (24, 48, 0.01, 1e-4)
    assert train["steps"] * train["prompts_per_step"] * train["group_size"] == 200_448
    other = load_spec(BENCHMARKS / "online_rl_sd15.yaml", {"methods.sd15_grpo.generator": "sd15"})  # PNDM by default
    with pytest.raises(UserError, match="no Gaussian log-probability"):
        Builder(other, ctx, 0, planning=True).method("sd15_grpo")


def test_lora_with_the_kl_term_trains_only_the_adapters(mini_generator, tmp_path):
    cfg = GRPOConfig(**{**SMALL, "finetune": "lora", "lora_targets": ("to_q", "to_k", "conv1"), "lr": 1e-2}, kl_beta=0.5)
    model = denoiser_for(mini_generator)
    before = {k: v.clone() for k, v in model.unet.state_dict().items()}
    summary = grpo_finetune(model, mini_generator, PROMPTS, brightness, cfg, tmp_path / "out", tmp_path / "work")
    after = model.unet.state_dict()
    base = {k.replace(".base_layer", ""): v for k, v in after.items() if "lora_" not in k}
    assert base.keys() == before.keys() and all(torch.equal(before[k], base[k]) for k in before)  # frozen
    assert any("lora_B" in k and v.abs().sum() > 0 for k, v in after.items())  # B starts at 0: the adapters moved
    assert summary["train_nfe"] == 2 * 2 * 3 * 3 * 2  # trajectories × trained steps × (policy + reference)
    log = (tmp_path / "out" / "log.csv").read_text().splitlines()
    assert len(log) == 3 and float(log[-1].split(",")[4]) > 0  # the KL to the reference grew from 0


def test_a_diffusers_pipeline_trains_through_the_same_hooks(tiny_sd, tmp_path):
    """The tiny SD pipeline with DDIM and guidance: rollouts decode through its VAE, a LoRA run
    changes the adapters, and the Gaussian step log-probs of the rollouts are finite."""
    from ganrm_bench.methods.generators.diffusers_image import DiffusersImageGenerator

    gen = DiffusersImageGenerator(model=str(tiny_sd), steps=3, height=32, width=32, device="cpu", guidance=2.0,
                                  scheduler="DDIMScheduler")
    assert gen.rollout_sampler() == "DDIMScheduler" and gen.rollout_guidance() == 2.0
    model = denoiser_for(gen)
    ro = rollout(model, gen, model.unet, ["a red square", "a cat"], [1, 2], eta=1.0, guidance=2.0, groups=["0", "1"])
    assert len(ro.images) == 2 and ro.images[0].size == (32, 32)
    assert torch.isfinite(ro.log_probs[ro.log_probs == ro.log_probs]).all()
    cfg = GRPOConfig(steps=1, group_size=2, prompts_per_step=2, finetune="lora", lora_rank=2,
                     lora_targets=("to_q", "to_k", "to_v", "to_out.0"), lr=1e-2)
    summary = grpo_finetune(model, gen, ["a red square", "a cat"], brightness, cfg, tmp_path / "out", tmp_path / "work")
    assert (tmp_path / "out" / WEIGHTS).is_file() and summary["rollout_nfe"] == 4 * 3 * 2  # CFG: two forwards a step
    assert any("lora_B" in k and v.abs().sum() > 0 for k, v in model.unet.state_dict().items())  # the adapters moved


def test_checkpoints_carry_a_trajectory_kl_to_the_untuned_generator(tmp_path, mini_weights, ctx):
    """`Op.divergence` of the run and of its checkpoint: a TrajectoryKL node per point, keyed apart,
    positive once the weights moved; the untuned generator against itself is exactly 0."""
    from ganrm_bench.harness.diagnostics.training_curves import training_point
    from ganrm_bench.methods.trajectory_kl import TRAJECTORY_KL, trajectory_kl_node

    gens = {"gen": {"generator": "mini_diffusion", "weights": str(mini_weights), "steps": 3, "device": "cpu"}}
    row = {"method": "grpo", "generator": "gen", "prompts": "eval", "scorer": "rm", "train_prompts": "train",
           **SMALL, "eval_at": [1]}
    spec = write_spec(tmp_path, gens, {"rl": row, "rl1": {**row, "checkpoint": 1}})
    b, ev = builder(spec, ctx), Evaluator(ctx)
    last, first = training_point(b.method("rl")), training_point(b.method("rl1"))
    assert last.divergence.op is TRAJECTORY_KL and first.divergence.key != last.divergence.key
    kl_last, kl_first = ev.value(last.divergence), ev.value(first.divergence)
    assert kl_last["kl"] > 0 and kl_first["kl"] > 0 and kl_last["ci_low"] <= kl_last["kl"] <= kl_last["ci_high"]
    assert kl_last["steps"] == 2 and kl_last["prompts"] == len(ev.value(b.method("rl")))  # DDIM's last step has no noise
    base = last.divergence.inputs["reference"]
    same = trajectory_kl_node(last.run, base, base, last.divergence.inputs["prompts"])
    assert ev.value(same)["kl"] == 0.0


def test_plan_lists_the_monitors_kl_estimates_and_finds_them_cached_once_computed(tmp_path, mini_weights, ctx):
    """A curve along GRPO's training (base, checkpoint 1, the last step): `plan` lists one trajectory-KL
    estimate per tuned point, for the monitor, under the keys the monitor evaluates; once those are
    computed, the same plan finds them cached."""
    from ganrm_bench.harness.app.services.plan import MONITOR, plan
    from ganrm_bench.harness.diagnostics.training_curves import training_point
    from ganrm_bench.methods.trajectory_kl import TRAJECTORY_KL

    gens = {"gen": {"generator": "mini_diffusion", "weights": str(mini_weights), "steps": 3, "device": "cpu"}}
    row = {"method": "grpo", "generator": "gen", "prompts": "eval", "scorer": "rm", "train_prompts": "train",
           **SMALL, "eval_at": [1]}
    spec = write_spec(tmp_path, gens, {"base": {"method": "base", "generator": "gen", "prompts": "eval"},
                                       "rl": row, "rl1": {**row, "checkpoint": 1}})
    b = builder(spec, ctx)
    want = {training_point(b.method(r)).divergence.key for r in ("rl", "rl1")}
    kl = lambda p: {e.node.key: e for e in p.entries if e.node.op is TRAJECTORY_KL}  # noqa: E731
    before = plan(spec, ctx, seeds=[0])[0]
    assert set(kl(before)) == want and all(e.status == "compute" for e in kl(before).values())
    assert before.totals["trajectory KL estimates"] == 2 and all(before.users[k] == {MONITOR} for k in want)
    ev = Evaluator(ctx)
    for r in ("rl", "rl1"):
        ev.value(training_point(b.method(r)).divergence)
    after = plan(spec, ctx, seeds=[0])[0]
    assert set(kl(after)) == want and all(e.status == "cached" for e in kl(after).values())
