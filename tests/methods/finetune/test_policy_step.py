"""The stochastic sampler step as a Gaussian policy: mean/std equal the diffusers scheduler's step,
the log-probability equals an independent Gaussian density."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from diffusers import DDIMScheduler, DDPMScheduler
from diffusers.utils.torch_utils import randn_tensor

from ganrm_bench.methods.finetune.policy_step import gaussian_log_prob, step_gaussian
from ganrm_bench.mini.nets import SCHEDULER_CONFIG


def _inputs(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(3, 1, 4, 4, generator=g), torch.randn(3, 1, 4, 4, generator=g), torch.randn(3, 1, 4, 4, generator=g)


@pytest.mark.parametrize("eta", [0.5, 1.0])
def test_ddim_step_is_the_scheduler_step(eta):
    sched = DDIMScheduler(**SCHEDULER_CONFIG, timestep_spacing="trailing")
    sched.set_timesteps(10)
    x, eps, noise = _inputs()
    for t in sched.timesteps[:-1]:
        step = step_gaussian(sched, eps, t, x, eta=eta)
        want = sched.step(eps, t, x, eta=eta, variance_noise=noise).prev_sample
        torch.testing.assert_close(step.sample(noise), want, rtol=0, atol=1e-6)
        # σ_t from the DDIM paper's formula on the cumulative alphas (not the scheduler's code)
        a = sched.alphas_cumprod.double().numpy()
        prev = int(t) - 100
        a_t, a_p = a[int(t)], a[prev]
        assert step.std == pytest.approx(eta * math.sqrt((1 - a_p) / (1 - a_t) * (1 - a_t / a_p)), rel=1e-5)
        assert step.std > 0


def test_ddpm_step_is_the_scheduler_step():
    sched = DDPMScheduler(**SCHEDULER_CONFIG, timestep_spacing="trailing")
    sched.set_timesteps(10)
    x, eps, _ = _inputs(1)
    for t in sched.timesteps:
        step = step_gaussian(sched, eps, t, x)
        want = sched.step(eps, t, x, generator=torch.Generator().manual_seed(7)).prev_sample
        noise = randn_tensor(x.shape, generator=torch.Generator().manual_seed(7), dtype=x.dtype)
        torch.testing.assert_close(step.sample(noise), want, rtol=0, atol=1e-5)
    assert step_gaussian(sched, eps, sched.timesteps[-1], x).std == 0.0  # the last step adds no noise


def test_log_prob_is_the_gaussian_density():
    sched = DDIMScheduler(**SCHEDULER_CONFIG, timestep_spacing="trailing")
    sched.set_timesteps(10)
    x, eps, noise = _inputs(2)
    step = step_gaussian(sched, eps, sched.timesteps[3], x, eta=1.0)
    x_prev = step.sample(noise)
    want = torch.distributions.Normal(step.mean.double(), step.std).log_prob(x_prev.double()).reshape(3, -1).sum(1)
    torch.testing.assert_close(step.log_prob(x_prev).double(), want, rtol=1e-5, atol=1e-3)
    from scipy.stats import norm

    ref = norm.logpdf(x_prev.numpy(), loc=step.mean.numpy(), scale=step.std).reshape(3, -1).sum(1)
    np.testing.assert_allclose(step.log_prob(x_prev).numpy(), ref, rtol=1e-5)


def test_a_deterministic_step_has_no_log_prob():
    x = torch.zeros(2, 3)
    with pytest.raises(ValueError, match="deterministic"):
        gaussian_log_prob(x, x, 0.0)
