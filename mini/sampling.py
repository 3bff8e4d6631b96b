"""Sampling the mini generator: DDIM (or DDPM) with optional classifier-free guidance, each sample's
noise drawn from its own `torch.Generator`, so a sample does not depend on its batch."""

from __future__ import annotations

from typing import Literal, Sequence

import torch

from ganrm_bench.mini.nets import NULL_CLASS, SCHEDULER_CONFIG

SchedulerName = Literal["ddim", "ddpm"]


def make_sampling_scheduler(name: SchedulerName, steps: int):
    """DDIM (deterministic, eta=0, 'trailing' spacing so few steps start from pure noise) or
    DDPM (ancestral), both on the training noise schedule."""
    from diffusers import DDIMScheduler, DDPMScheduler

    if name == "ddim":
        sched = DDIMScheduler(**SCHEDULER_CONFIG, timestep_spacing="trailing")
    elif name == "ddpm":
        sched = DDPMScheduler(**SCHEDULER_CONFIG, timestep_spacing="trailing")
    else:  # pragma: no cover - guarded by the plugin's Params
        raise ValueError(f"unknown scheduler {name!r}")
    sched.set_timesteps(steps)
    return sched


@torch.no_grad()
def sample(
    unet: torch.nn.Module,
    labels: torch.Tensor,
    seeds: Sequence[int],
    *,
    steps: int = 25,
    guidance: float = 1.0,
    scheduler: SchedulerName = "ddim",
    device: str = "cpu",
    noise: torch.Tensor | None = None,
) -> torch.Tensor:
    """Images in [-1, 1], [B, C, H, W]. `seeds[i]` alone determines sample i's noise (initial and,
    for DDPM, per-step), unless `noise` gives the initial noise (search over initial noise).
    guidance == 1 runs the conditional model only; otherwise
    eps = eps_uncond + guidance · (eps_cond - eps_uncond), the null label being `NULL_CLASS`."""
    from diffusers.utils.torch_utils import randn_tensor

    cfg = unet.config
    shape = (len(seeds), cfg.in_channels, cfg.sample_size, cfg.sample_size)
    gens = [torch.Generator("cpu").manual_seed(int(s)) for s in seeds]
    sched = make_sampling_scheduler(scheduler, steps)
    drawn = randn_tensor(shape, generator=gens, device=torch.device("cpu"), dtype=torch.float32)  # always drawn: DDPM's step
    if noise is None:  # noise then continues each generator where the initial draw left it, given noise or not
        noise = drawn
    elif noise.shape != drawn.shape:
        raise ValueError(f"noise of shape {tuple(noise.shape)} for {tuple(drawn.shape)} samples")
    x = noise.to(device=device, dtype=torch.float32) * sched.init_noise_sigma
    labels = labels.to(device)
    null = torch.full_like(labels, NULL_CLASS)
    for t in sched.timesteps:
        if guidance == 1.0:
            eps = unet(x, t, class_labels=labels).sample
        else:
            eps_c, eps_u = unet(torch.cat([x, x]), t, class_labels=torch.cat([labels, null])).sample.chunk(2)
            eps = eps_u + guidance * (eps_c - eps_u)
        x = sched.step(eps, t, x, generator=gens if scheduler == "ddpm" else None).prev_sample
    return x.clamp(-1, 1)


def initial_noise(unet: torch.nn.Module, seeds: Sequence[int]) -> torch.Tensor:
    """The standard normal initial noise [B, C, H, W] (CPU) that `sample` draws for these seeds."""
    from diffusers.utils.torch_utils import randn_tensor

    cfg = unet.config
    shape = (len(seeds), cfg.in_channels, cfg.sample_size, cfg.sample_size)
    if not seeds:
        return torch.zeros(shape)
    gens = [torch.Generator("cpu").manual_seed(int(s)) for s in seeds]
    return randn_tensor(shape, generator=gens, device=torch.device("cpu"), dtype=torch.float32)


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """[-1, 1] float [B, 1, H, W] to uint8 [B, H, W]."""
    return ((x[:, 0].float().cpu() + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)
