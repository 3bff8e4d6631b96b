"""SFT (RAFT-style, Dong et al. 2023): the plain denoising loss on the selected samples (the
reward model's best sample per prompt), as in diffusers' text-to-image fine-tuning scripts."""

from __future__ import annotations

import torch

from methods.finetune.dpo import per_sample_mse


def denoising_loss(model_pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error between the prediction and its target (noise, velocity or sample)."""
    return per_sample_mse(model_pred, target).mean()


def noise_and_timesteps(n: int, shape: tuple[int, ...], num_train_timesteps: int, generator: torch.Generator,
                        device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    noise = torch.randn((n, *shape), generator=generator).to(device)
    timesteps = torch.randint(0, num_train_timesteps, (n,), generator=generator).to(device)
    return noise, timesteps
