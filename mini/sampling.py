"""Sampling the mini generator: DDIM (or DDPM) with optional classifier-free guidance, each sample's
noise drawn from its own `torch.Generator`, so a sample does not depend on its batch."""

from __future__ import annotations

from typing import Callable, Literal, Sequence

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
        eps = guided_eps(unet, x, t, labels, null, guidance)
        x = sched.step(eps, t, x, generator=gens if scheduler == "ddpm" else None).prev_sample
    return x.clamp(-1, 1)


def guided_eps(unet: torch.nn.Module, x: torch.Tensor, t, labels: torch.Tensor, null: torch.Tensor, guidance: float) -> torch.Tensor:
    """The ε prediction at (x, t): the conditional model's at guidance 1, else classifier-free guided."""
    if guidance == 1.0:
        return unet(x, t, class_labels=labels).sample
    eps_c, eps_u = unet(torch.cat([x, x]), t, class_labels=torch.cat([labels, null])).sample.chunk(2)
    return eps_u + guidance * (eps_c - eps_u)


@torch.no_grad()
def sample_particles(
    unet: torch.nn.Module,
    labels: torch.Tensor,
    seeds: Sequence[int],
    noise: torch.Tensor,
    *,
    steps: int,
    guidance: float,
    scheduler: SchedulerName,
    device: str,
    batch_size: int,
    eta: float,
    at: Sequence[int],
    on_x0: Callable[[int, torch.Tensor], Sequence[int] | None],
) -> torch.Tensor:
    """`sample` for a set of particles that may be resampled between steps (methods.smc_search).

    After step i in `at`, `on_x0(i, x̂0)` gets the scheduler's predicted clean samples
    (`pred_original_sample`, [-1, 1]) of every row; when it returns ancestor indices a, row j
    continues from row a[j]'s state (ancestors must share the row's label, which is not moved; its own seed's generator still drives its step noise, so
    copies of a particle diverge under a stochastic sampler: DDPM, or DDIM with η > 0). Every UNet
    forward pass has exactly `batch_size` rows (padding: null label), as in `MiniDiffusion`, so
    with no resampling and η = 0 row i is bit-identical to `sample`'s for the same seed and noise."""
    from diffusers.utils.torch_utils import randn_tensor

    n = len(seeds)
    gens = [torch.Generator("cpu").manual_seed(int(s)) for s in seeds]
    sched = make_sampling_scheduler(scheduler, steps)
    randn_tensor(tuple(noise.shape), generator=gens, device=torch.device("cpu"), dtype=torch.float32)  # as `sample` draws it
    x = noise.to(device=device, dtype=torch.float32) * sched.init_noise_sigma
    labels = labels.to(device)
    pad = (-n) % batch_size
    labels_padded = torch.cat([labels, torch.full((pad,), NULL_CLASS, dtype=labels.dtype, device=device)])
    null = torch.full((batch_size,), NULL_CLASS, dtype=labels.dtype, device=device)
    filler = torch.zeros((pad, *x.shape[1:]), device=device)
    wanted = set(int(i) for i in at)
    stochastic = scheduler == "ddpm" or eta > 0
    kwargs = {} if scheduler == "ddpm" else {"eta": float(eta)}
    for i, t in enumerate(sched.timesteps):
        xp = torch.cat([x, filler])
        eps = torch.cat([guided_eps(unet, xp[s : s + batch_size], t, labels_padded[s : s + batch_size], null, guidance)
                         for s in range(0, n + pad, batch_size)])[:n]
        out = sched.step(eps, t, x, generator=gens if stochastic else None, **kwargs)
        x = out.prev_sample
        if i in wanted:
            ancestors = on_x0(i, out.pred_original_sample.clamp(-1, 1))
            if ancestors is not None:
                x = x[torch.as_tensor(list(ancestors), dtype=torch.long, device=x.device)]
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
