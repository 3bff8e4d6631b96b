"""The fine-tune trajectory KL (tuned vs reference along a stochastic sampler) on a case with a
closed form: two ε-networks differing by a constant shift δ move every DDIM step mean by c_t·δ,
so the path KL is Σ_t D·c_t²·δ²/(2σ_t²), whatever the trajectory."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from diffusers import DDIMScheduler

from ganrm_bench.methods.finetune.path_kl import finetune_path_kl

SHAPE = (1, 2, 2)


class ConstantEps(torch.nn.Module):
    def __init__(self, value: float):
        super().__init__()
        self.value = torch.nn.Parameter(torch.tensor(float(value)))

    def forward(self, x):
        return torch.zeros_like(x) + self.value


class Toy:
    """Denoiser + rollout hooks of a toy generator: a 5-step DDIM without clipping."""

    def rollout_scheduler(self):
        s = DDIMScheduler(num_train_timesteps=1000, clip_sample=False, set_alpha_to_one=False, timestep_spacing="trailing")
        s.set_timesteps(5)
        return s

    def rollout_shape(self):
        return SHAPE

    def rollout_decode(self, x):
        return list(x)

    def encode_prompts(self, prompts):
        return torch.zeros(len(prompts))

    def unet_forward(self, unet, x, t, cond):
        return unet(x)


def closed_form(delta: float, eta: float) -> float:
    sched = Toy().rollout_scheduler()
    a = sched.alphas_cumprod.double().numpy()
    total, d = 0.0, int(np.prod(SHAPE))
    for t in sched.timesteps.tolist():
        prev = t - 200
        a_t, a_p = a[t], (a[prev] if prev >= 0 else a[0])
        var = eta ** 2 * (1 - a_p) / (1 - a_t) * (1 - a_t / a_p)
        c = math.sqrt(1 - a_p - var) - math.sqrt(a_p) * math.sqrt(1 - a_t) / math.sqrt(a_t)
        total += d * c ** 2 * delta ** 2 / (2 * var)
    return total


@pytest.mark.parametrize("delta, eta", [(0.1, 1.0), (0.03, 0.5)])
def test_constant_shift_has_the_closed_form_path_kl(delta, eta):
    toy = Toy()
    ids = [f"p{i}" for i in range(6)]
    kl = finetune_path_kl(toy, toy, ConstantEps(delta), ConstantEps(0.0), ["x"] * 6, list(range(6)), ids, eta=eta)
    assert kl.steps == 5 and kl.n_prompts == 6
    assert kl.value == pytest.approx(closed_form(delta, eta), rel=1e-4)
    assert kl.ci_low == pytest.approx(kl.value, rel=1e-4) and kl.ci_high == pytest.approx(kl.value, rel=1e-4)


def test_identical_models_have_zero_kl():
    toy = Toy()
    kl = finetune_path_kl(toy, toy, ConstantEps(0.2), ConstantEps(0.2), ["x"] * 3, [1, 2, 3], ["a", "b", "c"])
    assert kl.value == 0.0
