"""One step of a stochastic diffusion sampler as a Gaussian policy (DDPO, Black et al. 2023; Flow-GRPO).

DDPM's ancestral step and DDIM's step with η > 0 draw x_{t−1} ~ N(μ(x_t, ε̂), σ_t² I): the mean is
what the diffusers scheduler's step returns without its noise, σ_t is its noise scale (DDIM:
η·√var(t, t_prev); DDPM "fixed_small": √var(t); 0 on a last step into x_0). So a sampled trajectory
has a log-probability under any network's ε̂, which the policy-gradient methods (`methods.grpo`)
need for their likelihood ratios, and the over-optimisation curves need for the per-step KL of a
tuned model against its reference (`harness.stats.kl.gaussian_step_kl` on two models' means).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


@dataclass
class GaussianStep:
    """x_{t−1} ~ N(mean, std² I); `std` is a float (the same for every sample of the step)."""

    mean: torch.Tensor
    std: float
    pred_original_sample: torch.Tensor

    def sample(self, noise: torch.Tensor) -> torch.Tensor:
        """The next state for standard normal `noise` (what the scheduler's step returns for it)."""
        return self.mean + self.std * noise if self.std > 0 else self.mean

    def log_prob(self, x_prev: torch.Tensor) -> torch.Tensor:
        """log N(x_prev; mean, std² I) per sample (summed over every dim but the batch), in fp32."""
        return gaussian_log_prob(x_prev, self.mean, self.std)


def gaussian_log_prob(x: torch.Tensor, mean: torch.Tensor, std: float) -> torch.Tensor:
    """Σ_d log N(x_d; mean_d, std²) per sample; std must be > 0 (a noiseless step has no density)."""
    if not std > 0:
        raise ValueError("a deterministic step (σ = 0: DDIM with η = 0, DDPM's last step) has no log-probability")
    z = (x.float() - mean.float()) / std
    per = -0.5 * z.pow(2) - math.log(std) - 0.5 * math.log(2 * math.pi)
    return per.reshape(x.shape[0], -1).sum(1)


def step_gaussian(scheduler, model_output: torch.Tensor, timestep, sample: torch.Tensor, *, eta: float = 1.0) -> GaussianStep:
    """The Gaussian that `scheduler.step(model_output, timestep, sample)` draws from. DDIM: its
    step with zero variance noise is the mean (η is used); DDPM: the posterior mean q(x_{t−1}|x_t, x̂0)."""
    from diffusers import DDIMScheduler, DDPMScheduler

    t = int(timestep)
    if isinstance(scheduler, DDIMScheduler):
        out = scheduler.step(model_output, t, sample, eta=float(eta), variance_noise=torch.zeros_like(sample))
        prev_t = t - scheduler.config.num_train_timesteps // scheduler.num_inference_steps
        std = float(eta) * float(scheduler._get_variance(t, prev_t)) ** 0.5
        return GaussianStep(out.prev_sample, std, out.pred_original_sample)
    if isinstance(scheduler, DDPMScheduler):
        return _ddpm_step(scheduler, model_output, t, sample)
    raise TypeError(f"no Gaussian step for {type(scheduler).__name__} (DDIMScheduler or DDPMScheduler)")


def _ddpm_step(scheduler, model_output: torch.Tensor, t: int, sample: torch.Tensor) -> GaussianStep:
    """diffusers' DDPMScheduler.step without its noise (fixed_small variance, the default)."""
    if scheduler.config.variance_type not in (None, "fixed_small"):
        raise ValueError(f"DDPM variance_type {scheduler.config.variance_type!r}: only fixed_small is a fixed Gaussian step here")
    prev_t = int(scheduler.previous_timestep(t))
    a_t = scheduler.alphas_cumprod[t]
    a_prev = scheduler.alphas_cumprod[prev_t] if prev_t >= 0 else scheduler.one
    b_t, b_prev = 1 - a_t, 1 - a_prev
    cur_alpha = a_t / a_prev
    x0 = _pred_original(scheduler, model_output, sample, a_t, b_t)
    mean = (a_prev ** 0.5 * (1 - cur_alpha) / b_t) * x0 + (cur_alpha ** 0.5 * b_prev / b_t) * sample
    # the step into x_0 has zero posterior variance (diffusers clamps it to 1e-20: σ = 1e-10): no noise
    std = float(scheduler._get_variance(t)) ** 0.5 if t > 0 and prev_t >= 0 else 0.0
    return GaussianStep(mean, std, x0)


def _pred_original(scheduler, model_output, sample, a_t, b_t) -> torch.Tensor:
    kind = scheduler.config.prediction_type
    if kind == "epsilon":
        x0 = (sample - b_t ** 0.5 * model_output) / a_t ** 0.5
    elif kind == "sample":
        x0 = model_output
    elif kind == "v_prediction":
        x0 = a_t ** 0.5 * sample - b_t ** 0.5 * model_output
    else:
        raise ValueError(f"unsupported prediction_type {kind!r}")
    if scheduler.config.thresholding:
        return scheduler._threshold_sample(x0)
    if scheduler.config.clip_sample:
        return x0.clamp(-scheduler.config.clip_sample_range, scheduler.config.clip_sample_range)
    return x0
