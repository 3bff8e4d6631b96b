"""SFT (RAFT-style, Dong et al. 2023): the plain denoising loss on the selected samples (the
reward model's best sample per prompt), as in diffusers' text-to-image fine-tuning scripts."""

from __future__ import annotations

from typing import Sequence

import torch

from ganrm_bench.methods.finetune.protocol import randint_per_example, randn_per_example


def per_sample_mse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """‖pred − target‖² averaged over every dim but the batch (images and videos alike), in fp32."""
    return (pred.float() - target.float()).pow(2).reshape(pred.shape[0], -1).mean(dim=1)


def denoising_loss(model_pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error between the prediction and its target (noise, velocity or sample)."""
    return per_sample_mse(model_pred, target).mean()


def noise_and_timesteps(n: int, shape: tuple[int, ...], num_train_timesteps: int,
                        generator: torch.Generator | Sequence[torch.Generator], device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """Per sample: a timestep, then the noise (one generator for all, or one per sample)."""
    timesteps = randint_per_example(num_train_timesteps, n, generator).to(device)
    noise = randn_per_example((n, *shape), generator).to(device)
    return noise, timesteps
