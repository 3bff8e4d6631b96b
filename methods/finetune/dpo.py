"""The Diffusion-DPO loss, as in the reference code (SalesforceAIResearch/DiffusionDPO train.py).

A batch holds the winners then the losers of the same pairs, noised with the same timestep and
the same noise; the loss compares how much better the trained model denoises the winner than the
loser, relative to a frozen reference model:

    model_diff = ‖ε_θ(x_w) − ε‖² − ‖ε_θ(x_l) − ε‖²     (per pair, mean over non-batch dims)
    ref_diff   = the same with the frozen reference
    inside     = −½ · β · (model_diff − ref_diff)
    loss       = −log σ(inside), averaged over pairs    (not logsigmoid of the mean: diffusers#6702)
    implicit accuracy = fraction of pairs with inside > 0
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn.functional as F

from ganrm_bench.methods.finetune.sft import noise_and_timesteps, per_sample_mse


@dataclass
class DPOLoss:
    loss: torch.Tensor  # scalar, differentiable
    implicit_acc: torch.Tensor  # scalar, fraction of pairs with inside > 0
    inside: torch.Tensor  # [pairs], detached
    model_loss: torch.Tensor  # scalar: plain denoising loss of the model on winners and losers
    ref_loss: torch.Tensor  # scalar: the same for the reference


def diffusion_dpo_loss(model_pred: torch.Tensor, ref_pred: torch.Tensor, target: torch.Tensor, beta: float) -> DPOLoss:
    """Loss of a batch laid out as [winners; losers] (2·P samples for P pairs)."""
    if model_pred.shape[0] % 2:
        raise ValueError(f"a DPO batch holds winners then losers: even batch expected, got {model_pred.shape[0]}")
    model_losses = per_sample_mse(model_pred, target)
    model_losses_w, model_losses_l = model_losses.chunk(2)
    model_diff = model_losses_w - model_losses_l
    with torch.no_grad():
        ref_losses = per_sample_mse(ref_pred.detach(), target)
        ref_losses_w, ref_losses_l = ref_losses.chunk(2)
        ref_diff = ref_losses_w - ref_losses_l
    inside = -0.5 * beta * (model_diff - ref_diff)
    loss = -F.logsigmoid(inside).mean()
    implicit_acc = (inside > 0).float().mean()
    return DPOLoss(loss, implicit_acc.detach(), inside.detach(), model_losses.mean().detach(), ref_losses.mean())


def shared_noise_and_timesteps(pairs: int, shape: tuple[int, ...], num_train_timesteps: int,
                               generator: torch.Generator | Sequence[torch.Generator],
                               device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """Noise [2P, ...] and timesteps [2P] where the loser half repeats the winner half (the
    reference's `noise.chunk(2)[0].repeat(2, 1, 1, 1)`); unshared noise makes the loss vanish
    (DiffusionDPO#1)."""
    noise, timesteps = noise_and_timesteps(pairs, shape, num_train_timesteps, generator, device)
    return noise.repeat(2, *([1] * len(shape))), timesteps.repeat(2)
