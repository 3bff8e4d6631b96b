"""The GRPO / DDPO policy-gradient objective on a stochastic sampler's trajectories.

Each denoising step of DDPM / DDIM with η > 0 is a Gaussian policy (`methods.finetune.policy_step`).
For a sampled trajectory with reward r, the advantage A is r normalised within its prompt's group of
G samples (GRPO, Flow-GRPO: `advantage: group`) or within the whole batch (DDPO: `advantage: batch`),
clipped to ±`adv_clip`. Per trained step, with ρ = exp(log π_θ(x_{t−1}|x_t) − log π_old(x_{t−1}|x_t)),
the PPO clipped surrogate (minimised)

    L = mean( max(−A·ρ, −A·clip(ρ, 1−ε, 1+ε)) )

plus, optionally, β_KL · ‖μ_θ − μ_ref‖² / (2σ_t²) per dimension (Flow-GRPO's KL to the frozen
reference, `harness.stats.kl.gaussian_step_kl` averaged over dimensions). As in DDPO and Flow-GRPO the
log-probabilities are averaged over the sample's dimensions (not summed), so ε applies per dimension.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Sequence

import numpy as np
import torch

Scope = Literal["group", "batch", "global_std"]


def advantages(rewards: Sequence[float], groups: Sequence[str], *, scope: Scope = "group", eps: float = 1e-4,
               clip: float = 5.0) -> np.ndarray:
    """(r − mean) / (std + eps) within each group (`group`), over all rewards (`batch`), or the
    group's mean over the whole batch's std (`global_std`: Flow-GRPO's `global_std` option, which keeps
    a group of nearly equal rewards from being blown up to ±1), clipped to ±clip; the population std
    (ddof 0) as in DDPO's and Flow-GRPO's stat trackers. Equal rewards in a group give zero advantage."""
    r = np.asarray(rewards, dtype=np.float64)
    out = np.zeros_like(r)
    g = np.zeros(len(r), dtype=int) if scope == "batch" else np.asarray(list(groups))
    for name in dict.fromkeys(g.tolist()):
        m = g == name
        std = r.std() if scope == "global_std" else r[m].std()
        if std > 0 and r[m].std() > 0:  # a group of equal rewards stays at zero (whatever eps)
            out[m] = (r[m] - r[m].mean()) / (std + eps)
    return np.clip(out, -clip, clip)


@dataclass
class PolicyLoss:
    loss: torch.Tensor  # scalar, differentiable
    policy_loss: float
    kl: float  # mean per-dimension step KL to the reference (0 without one)
    approx_kl: float  # ½·mean((log ρ)²), PPO's drift diagnostic
    clip_fraction: float  # fraction of samples whose ratio left [1−ε, 1+ε]


def clipped_policy_loss(log_prob: torch.Tensor, old_log_prob: torch.Tensor, advantage: torch.Tensor, clip_range: float,
                        *, kl: torch.Tensor | None = None, kl_beta: float = 0.0) -> PolicyLoss:
    """The PPO clipped surrogate of one step for a batch of samples (per-dimension log-probs), plus
    kl_beta × the per-sample KL term when given."""
    log_ratio = log_prob - old_log_prob.detach()
    ratio = torch.exp(log_ratio)
    adv = advantage.to(ratio.dtype)
    unclipped = -adv * ratio
    clipped = -adv * torch.clamp(ratio, 1.0 - clip_range, 1.0 + clip_range)
    policy = torch.maximum(unclipped, clipped).mean()
    loss = policy
    kl_value = 0.0
    if kl is not None and kl_beta > 0:
        loss = loss + kl_beta * kl.mean()
        kl_value = float(kl.detach().mean())
    with torch.no_grad():
        approx = float(0.5 * log_ratio.pow(2).mean())
        frac = float(((ratio - 1.0).abs() > clip_range).float().mean())
    return PolicyLoss(loss, float(policy.detach()), kl_value, approx, frac)


def mean_step_kl(mean: torch.Tensor, ref_mean: torch.Tensor, std: float) -> torch.Tensor:
    """‖μ_θ − μ_ref‖² / (2σ²) averaged over the sample's dimensions, per sample (differentiable in μ_θ)."""
    d = (mean.float() - ref_mean.float().detach()).pow(2).reshape(mean.shape[0], -1).mean(1)
    return d / (2.0 * std ** 2)
