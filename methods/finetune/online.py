"""Online policy-gradient fine-tuning of a diffusion sampler against a scorer: GRPO (Flow-GRPO,
DanceGRPO) and DDPO (Black et al. 2023) as one loop, `advantage: group` or `batch`.

Each iteration: P prompts of the training set (a seeded stream, as the offline loop reads its
examples), G trajectories each from the current model with a stochastic sampler (DDIM η > 0 or
DDPM: every step a Gaussian policy, `policy_step`), the final images scored by the row's scorer,
advantages normalised per prompt group (or over the batch), then `inner_epochs` passes of PPO's
clipped surrogate over the trained steps in `minibatches` optimizer steps (`objectives.grpo`),
optionally with Flow-GRPO's KL to the frozen reference. Every draw comes from a generator seeded
by (seed, iteration, prompt position, sample), so the same seed gives the same bytes, and a run
killed after a checkpoint resumes to the same weights (the rollouts depend only on the weights).

The generator is reached through the `Denoiser` protocol plus rollout hooks on the generator
plugin: `rollout_sampler()` (the scheduler's class name, without loading), `rollout_scheduler()`
(a fresh one set to the generator's steps), `rollout_shape()` (one sample's latents),
`rollout_decode(x)` (final latents to images) and `rollout_guidance()`; the mini world's
`mini_diffusion` and the diffusers text-to-image generator implement them.
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal, Sequence

import numpy as np
import torch
from pydantic import Field, model_validator

from ganrm_bench.harness.errors import UserError
from ganrm_bench.harness.runtime.numerics import fixed_threads
from ganrm_bench.harness.runtime.seeds import derive_seed
from ganrm_bench.harness.store.keys import hash_key
from ganrm_bench.methods.finetune import weights as W
from ganrm_bench.methods.finetune.objectives.grpo import advantages, clipped_policy_loss, mean_step_kl
from ganrm_bench.methods.finetune.policy_step import step_gaussian
from ganrm_bench.methods.finetune.protocol import randn_per_example
from ganrm_bench.methods.finetune.run_files import (
    EVALS,
    Checkpoints,
    append_log,
    collect_eval_checkpoints,
    finite_mean,
    lora_meta,
    read_log,
    save_eval_checkpoint,
)
from ganrm_bench.methods.finetune.stream import example_index
from ganrm_bench.methods.finetune.train import CPU_THREADS, TrainConfig, make_accelerator, make_optimizer, trainable_unet

ROLLOUT_HOOKS = ("rollout_sampler", "rollout_scheduler", "rollout_shape", "rollout_decode")
LOG_FIELDS = ("step", "reward_mean", "reward_std", "policy_loss", "kl", "approx_kl", "clip_fraction", "lr", "grad_norm",
              "seconds")


class GRPOConfig(TrainConfig):
    """Online RL hyper-parameters on top of the fine-tuning ones (LoRA or full, AdamW, LR schedule,
    eval_at). `steps` counts iterations (sample, score, update); each makes `inner_epochs ×
    minibatches` optimizer steps. Defaults follow DDPO / Flow-GRPO where they agree (η = 1, clip
    range 1e-4, advantage clip 5, constant LR without warm-up)."""

    objective: Literal["grpo"] = "grpo"
    steps: int = Field(50, ge=0, description="iterations: each samples prompts_per_step × group_size trajectories, "
                       "scores them and updates the policy")
    warmup_steps: int = Field(0, ge=0)
    group_size: int = Field(8, description="G: trajectories per prompt and iteration (≥ 2 for group advantages)")
    prompts_per_step: int = Field(8, ge=1, description="prompts per iteration")
    eta: float = Field(1.0, ge=0, description="DDIM step noise of the rollouts (DDPO, Flow-GRPO: 1); DDPM ignores it")
    advantage: Literal["group", "batch", "global_std"] = Field(
        "group", description="normalise rewards per prompt group (GRPO), over the whole batch (DDPO), or by the group's "
        "mean and the batch's std (Flow-GRPO's global_std)")
    adv_clip: float = Field(5.0, gt=0)
    clip_range: float = Field(1e-4, gt=0, description="PPO ratio clip ε (DDPO, Flow-GRPO: 1e-4)")
    kl_beta: float = Field(0.0, ge=0, description="weight of the per-step KL to the frozen reference (Flow-GRPO's β)")
    inner_epochs: int = Field(1, ge=1)
    minibatches: int = Field(2, ge=1, description="optimizer steps per inner epoch (the rollouts split in this many)")
    timestep_fraction: float = Field(1.0, gt=0, le=1, description="fraction of the stochastic steps trained per "
                                     "iteration (a seeded random subset; DDPO's timestep_fraction)")

    # offline-loop settings that online RL does not read (kept, with their defaults, so the config is a TrainConfig)
    beta: float = Field(5000.0, gt=0, description="not used by grpo (Diffusion-DPO's β)")
    batch_size: int = Field(8, ge=1, description="not used by grpo (trajectories per iteration: prompts_per_step × group_size)")
    grad_accum: int = Field(2, ge=1, description="not used by grpo (optimizer steps per iteration: inner_epochs × minibatches)")
    scale_lr: bool = Field(False, description="not used by grpo")
    empty_prompt_fraction: float = Field(0.0, ge=0, le=1, description="not used by grpo")
    resolution: int | None = Field(None, description="not used by grpo (rollouts run at the generator's size)")
    precompute_encodings: bool = Field(False, description="not used by grpo")
    decode_threads: int = Field(2, ge=0, description="not used by grpo")
    micro_batch_size: int | None = Field(None, ge=1, description="not used by grpo")

    @model_validator(mode="after")
    def _groups(self) -> "GRPOConfig":
        if self.group_size < 2:
            raise ValueError(f"group_size must be ≥ 2 (got {self.group_size}): advantages compare samples of a prompt")
        return self

    def updates(self) -> int:
        """Optimizer steps of the whole run."""
        return self.steps * self.inner_epochs * self.minibatches


@dataclass
class Rollouts:
    """G trajectories per prompt: states x_T … x_0 [T+1, N, ...], each step's per-dimension
    log-probability under the sampling weights [T, N] (NaN for a noiseless step), its σ and timestep."""

    states: torch.Tensor
    log_probs: torch.Tensor
    stds: list[float]
    timesteps: list[int]
    cond: Any
    null: Any
    images: list
    prompts: list[str]
    groups: list[str]


@dataclass
class GRPOResult:
    unet: torch.nn.Module
    log: list[dict[str, Any]] = field(default_factory=list)
    resumed_from: int = 0
    seconds: float = 0.0
    trajectories: int = 0


def cannot_rollout(generator: Any) -> str | None:
    """Why online RL cannot sample trajectories from `generator` (None if it can)."""
    missing = [h for h in ROLLOUT_HOOKS if not hasattr(type(generator), h)]
    return f"it has no rollout hooks {', '.join(missing)} (methods.finetune.online)" if missing else None


GAUSSIAN_SAMPLERS = ("DDIMScheduler", "DDPMScheduler")  # whose steps `policy_step` writes as Gaussians


def check_sampler(generator: Any, cfg: GRPOConfig) -> None:
    """A ratio objective needs a Gaussian step with noise: refuse another sampler, or DDIM with
    η = 0 (one-line errors, at planning: `rollout_sampler()` names the class without loading)."""
    name = generator.rollout_sampler()
    if name not in GAUSSIAN_SAMPLERS:
        raise UserError(f"grpo: the generator samples with {name or 'its pipeline default scheduler'}, whose steps have no "
                        "Gaussian log-probability here", hint="set the generator's scheduler: DDIMScheduler (with eta > 0) or DDPMScheduler")
    if name == "DDIMScheduler" and cfg.eta <= 0:
        raise UserError("grpo: eta = 0 makes DDIM deterministic, so its steps have no log-probability for the ratio",
                        hint="set eta > 0 (DDPO and Flow-GRPO use 1.0) or sample with DDPM")


def _guided_eps(model, unet, x: torch.Tensor, t: int, cond: Any, null: Any, guidance: float) -> torch.Tensor:
    ts = torch.full((x.shape[0],), int(t), device=x.device, dtype=torch.long)
    if guidance == 1.0:
        return model.unet_forward(unet, x, ts, cond)
    eps_c = model.unet_forward(unet, x, ts, cond)
    eps_u = model.unet_forward(unet, x, ts, null)
    return eps_u + guidance * (eps_c - eps_u)


@torch.no_grad()
def rollout(model, hooks: Any, unet, prompts: Sequence[str], seeds: Sequence[int], *, eta: float, guidance: float,
            groups: Sequence[str]) -> Rollouts:
    """Sample one trajectory per (prompt, seed) with the current `unet`, recording every state and
    each step's log-probability; `seeds[i]` alone draws sample i's initial and step noise."""
    sched = hooks.rollout_scheduler()
    device = next(unet.parameters()).device
    gens = [torch.Generator().manual_seed(int(s)) for s in seeds]
    n, shape = len(seeds), tuple(hooks.rollout_shape())
    x = (randn_per_example((n, *shape), gens) * sched.init_noise_sigma).to(device)
    cond = model.encode_prompts(list(prompts))
    null = model.encode_prompts([""] * n) if guidance != 1.0 else None
    states, log_probs, stds = [x], [], []
    dims = float(np.prod(shape))
    for t in sched.timesteps:
        step = step_gaussian(sched, _guided_eps(model, unet, x, int(t), cond, null, guidance), t, x, eta=eta)
        x = step.sample(randn_per_example((n, *shape), gens).to(device))
        log_probs.append(step.log_prob(x) / dims if step.std > 0 else torch.full((n,), math.nan, device=device))
        stds.append(step.std)
        states.append(x)
    return Rollouts(torch.stack(states), torch.stack(log_probs), stds, [int(t) for t in sched.timesteps], cond, null,
                    hooks.rollout_decode(x), list(prompts), list(groups))


def trained_steps(stds: Sequence[float], fraction: float, seed: int) -> list[int]:
    """The stochastic steps (σ > 0) trained this iteration: all, or a seeded random subset."""
    noisy = [i for i, s in enumerate(stds) if s > 0]
    if fraction >= 1.0 or not noisy:
        return noisy
    keep = max(1, math.ceil(fraction * len(noisy)))
    order = np.random.default_rng(seed).permutation(len(noisy))[:keep]
    return sorted(noisy[i] for i in order)


@dataclass
class _Policy:
    """What an update needs: the model, the trained network, its frozen reference, the optimizer."""

    model: Any
    hooks: Any
    unet: Any
    ref_unet: Any
    trainable: list
    optimizer: Any
    lr_schedule: Any
    cfg: GRPOConfig
    guidance: float

    def reference_eps(self, x, t, cond, null) -> torch.Tensor:
        with torch.no_grad():
            if self.ref_unet is not None:
                return _guided_eps(self.model, self.ref_unet, x, t, cond, null, self.guidance)
            with W.adapters_disabled(self.unet):
                return _guided_eps(self.model, self.unet, x, t, cond, null, self.guidance)

    def step_loss(self, ro: Rollouts, i: int, rows: torch.Tensor, adv: torch.Tensor, sched) -> Any:
        """The clipped objective (plus KL) of step i on the rows `rows` (differentiable)."""
        cfg, t, x = self.cfg, ro.timesteps[i], ro.states[i][rows]
        cond = _rows(ro.cond, rows)
        null = _rows(ro.null, rows)
        step = step_gaussian(sched, _guided_eps(self.model, self.unet, x, t, cond, null, self.guidance), t, x, eta=cfg.eta)
        dims = float(np.prod(x.shape[1:]))
        log_prob = step.log_prob(ro.states[i + 1][rows]) / dims
        kl = None
        if cfg.kl_beta > 0:
            ref = step_gaussian(sched, self.reference_eps(x, t, cond, null), t, x, eta=cfg.eta)
            kl = mean_step_kl(step.mean, ref.mean, step.std)
        return clipped_policy_loss(log_prob, ro.log_probs[i][rows], adv[rows], cfg.clip_range, kl=kl, kl_beta=cfg.kl_beta)

    def update(self, ro: Rollouts, adv: torch.Tensor, iteration: int) -> dict[str, float]:
        """inner_epochs × minibatches optimizer steps on the rollouts; the mean statistics."""
        cfg, sched = self.cfg, self.hooks.rollout_scheduler()
        steps = trained_steps(ro.stds, cfg.timestep_fraction, derive_seed(cfg.seed, "timesteps", iteration))
        stats: list[Any] = []
        norms: list[float] = []
        if not steps or (not bool(adv.abs().gt(0).any()) and cfg.kl_beta == 0):
            return {"grad_norm": 0.0}  # no policy gradient (equal rewards in every group): weight decay alone would move it
        for epoch in range(cfg.inner_epochs):
            order = np.random.default_rng(derive_seed(cfg.seed, "minibatch", iteration, epoch)).permutation(adv.shape[0])
            for part in np.array_split(order, cfg.minibatches):
                rows = torch.as_tensor(np.sort(part), dtype=torch.long, device=adv.device)
                for i in steps:
                    out = self.step_loss(ro, i, rows, adv, sched)
                    (out.loss / len(steps)).backward()
                    stats.append(out)
                norms.append(float(torch.nn.utils.clip_grad_norm_(self.trainable, cfg.max_grad_norm))
                             if cfg.max_grad_norm > 0 else math.nan)
                self.optimizer.step()
                self.optimizer.zero_grad(set_to_none=True)
        return {"policy_loss": float(np.mean([s.policy_loss for s in stats])), "kl": float(np.mean([s.kl for s in stats])),
                "approx_kl": float(np.mean([s.approx_kl for s in stats])),
                "clip_fraction": float(np.mean([s.clip_fraction for s in stats])), "grad_norm": float(np.mean(norms))}


def _rows(cond: Any, rows: torch.Tensor) -> Any:
    if cond is None:
        return None
    if isinstance(cond, dict):
        return {k: _rows(v, rows) for k, v in cond.items()}
    return cond[rows.to(cond.device)]


Score = Callable[[list, list[str]], np.ndarray]


def _autocast(cfg: GRPOConfig, device: Any):
    """The forwards under mixed precision on an accelerator (fp32 trainable weights, as the offline loop)."""
    kind = torch.device(device).type
    if cfg.mixed_precision == "no" or kind == "cpu":
        return contextlib.nullcontext()
    return torch.autocast(kind, dtype=torch.bfloat16 if cfg.mixed_precision == "bf16" else torch.float16)


def iteration_batch(prompts: Sequence[str], cfg: GRPOConfig, iteration: int) -> tuple[list[str], list[int], list[str]]:
    """(prompt, seed, group) of every trajectory of an iteration: P prompts from the seeded stream,
    G samples each; the group is the prompt's stream position."""
    out_p, out_s, out_g = [], [], []
    for j in range(cfg.prompts_per_step):
        pos = iteration * cfg.prompts_per_step + j
        text = prompts[example_index(len(prompts), pos, cfg.seed)]
        for g in range(cfg.group_size):
            out_p.append(text)
            out_s.append(derive_seed(cfg.seed, "rollout", pos, g))
            out_g.append(str(pos))
    return out_p, out_s, out_g


def train_grpo(model, hooks: Any, prompts: Sequence[str], score: Score, cfg: GRPOConfig, work_dir: str | Path,
               *, device: Any = "cpu") -> GRPOResult:
    """Train `model.unet` in place by online RL against `score(images, prompts)`; resumable in `work_dir`."""
    from diffusers.optimization import get_scheduler

    if not prompts:
        raise UserError("grpo: no training prompts")
    work_dir = Path(work_dir)
    if hasattr(model, "to"):
        model.to(device)
    unet, ref_unet, trainable = trainable_unet(model.unet, cfg, frozen_reference=cfg.kl_beta > 0)
    optimizer = make_optimizer(trainable, cfg, cfg.lr)
    lr_schedule = get_scheduler(cfg.lr_scheduler, optimizer=optimizer, num_warmup_steps=cfg.warmup_steps,
                                num_training_steps=max(cfg.steps, 1))
    names = [n for n, p in unet.named_parameters() if p.requires_grad]
    ckpt = Checkpoints(work_dir / "checkpoints", hash_key(cfg.identity()), cfg.keep_checkpoints)
    start = ckpt.resume(unet, names, optimizer, lr_schedule)
    log_path = work_dir / "log.csv"
    log = read_log(log_path, start, fields=LOG_FIELDS) if start else []
    guidance = float(getattr(hooks, "rollout_guidance", lambda: 1.0)())
    policy = _Policy(model, hooks, unet, ref_unet, trainable, optimizer, lr_schedule, cfg, guidance)
    result = GRPOResult(unet, log, resumed_from=start)
    t0 = time.time()
    unet.eval()  # rollouts and updates run the same network function (no dropout between the two log-probs)
    for it in range(start, cfg.steps):
        ps, seeds, groups = iteration_batch(prompts, cfg, it)
        with _autocast(cfg, device):
            ro = rollout(model, hooks, unet, ps, seeds, eta=cfg.eta, guidance=guidance, groups=groups)
        rewards = np.asarray(score(ro.images, ps), dtype=np.float64).reshape(len(ps))
        adv = torch.as_tensor(advantages(rewards, groups, scope=cfg.advantage, clip=cfg.adv_clip), dtype=torch.float32,
                              device=ro.states.device)
        with _autocast(cfg, device):
            stats = policy.update(ro, adv, it)
        lr_schedule.step()
        row = {"step": it + 1, "reward_mean": float(rewards.mean()), "reward_std": float(rewards.std()), **stats,
               "lr": lr_schedule.get_last_lr()[0], "seconds": round(time.time() - t0, 3)}
        log.append(row)
        append_log(log_path, row, fresh=(it == start and not start), fields=LOG_FIELDS)
        if it + 1 in cfg.eval_at:
            save_eval_checkpoint(unet, cfg, it + 1, work_dir / EVALS)
        if (it + 1) % cfg.checkpoint_every == 0 and it + 1 < cfg.steps:
            ckpt.save(it + 1, unet, names, optimizer, lr_schedule)
    result.seconds = time.time() - t0
    result.trajectories = (cfg.steps - start) * cfg.prompts_per_step * cfg.group_size
    return result


def grpo_finetune(model, hooks: Any, prompts: Sequence[str], score: Score, cfg: GRPOConfig, out_dir: str | Path,
                  work_dir: str | Path, *, meta: dict[str, Any] | None = None) -> dict[str, Any]:
    """Train, then write the result to `out_dir` in the fine-tunes' format (weights.safetensors +
    finetune.json + log.csv + checkpoints/step-<s>/); returns the summary with its compute."""
    accelerator = make_accelerator(cfg)
    on_cpu = accelerator.device.type == "cpu"
    with fixed_threads(CPU_THREADS) if on_cpu else contextlib.nullcontext():
        result = train_grpo(model, hooks, prompts, score, cfg, work_dir, device=accelerator.device)
    tail = result.log[-max(1, len(result.log) // 10):] if result.log else []
    summary = {"objective": "grpo", "steps": cfg.steps, "resumed_from": result.resumed_from, "updates": cfg.updates(),
               "seconds": round(result.seconds, 3), **compute(cfg, hooks), "prompts": len(prompts),
               **({"torch_threads": CPU_THREADS} if on_cpu else {}),
               "first_reward_mean": result.log[0]["reward_mean"] if result.log else None,
               **{f"final_{k}": finite_mean([r.get(k, math.nan) for r in tail]) for k in ("reward_mean", "policy_loss", "approx_kl")}}
    W.save_weights(result.unet, out_dir, kind=cfg.finetune, lora=lora_meta(cfg),
                   meta={"train": cfg.identity(), "summary": summary, **(meta or {})})
    if (Path(work_dir) / "log.csv").exists():
        (Path(out_dir) / "log.csv").write_bytes((Path(work_dir) / "log.csv").read_bytes())
    collect_eval_checkpoints(cfg, Path(work_dir) / EVALS, Path(out_dir))
    return summary


def compute(cfg: GRPOConfig, hooks: Any) -> dict[str, int]:
    """Nominal compute of a run: rollout NFE, training NFE (the trained steps' forwards, ×2 with the
    KL reference), scorer calls; with classifier-free guidance every forward is two."""
    sched = hooks.rollout_scheduler()
    per_forward = 1 if float(getattr(hooks, "rollout_guidance", lambda: 1.0)()) == 1.0 else 2
    trajectories = cfg.steps * cfg.prompts_per_step * cfg.group_size
    steps = len(sched.timesteps)
    probe = [step_gaussian(sched, torch.zeros(1, 1), t, torch.zeros(1, 1), eta=cfg.eta).std for t in sched.timesteps]
    trained = len(trained_steps(probe, cfg.timestep_fraction, 0))
    train_forwards = trajectories * cfg.inner_epochs * trained * per_forward * (2 if cfg.kl_beta > 0 else 1)
    return {"trajectories": trajectories, "rollout_nfe": trajectories * steps * per_forward, "train_nfe": train_forwards,
            "scorer_calls": trajectories}
