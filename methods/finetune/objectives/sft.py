"""SFT (RAFT-style, Dong et al. 2023): the plain denoising loss on the selected samples (the
reward model's best sample per prompt), as in diffusers' text-to-image fine-tuning scripts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import torch

from ganrm_bench.methods.finetune.objectives.base import Batch, Objective, noise_and_timesteps, per_sample_mse


@dataclass(frozen=True)
class Sample:
    """One SFT example: a selected sample and its prompt."""

    prompt: str
    image: Any


def denoising_loss(model_pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error between the prediction and its target (noise, velocity or sample)."""
    return per_sample_mse(model_pred, target).mean()


class SFTObjective(Objective):
    name = "sft"
    example = Sample
    selection = {"selected": "argmax"}

    def examples(self, inputs: Mapping[str, Any]) -> tuple[list, int]:
        return [Sample(it.prompt or "", it.path) for it in inputs["selected"]], 0

    def batch(self, encoder: Any, examples: Sequence, generator: Any, cond: Any, num_train_timesteps: int,
              device: Any) -> Batch:
        clean = encoder.images_to_model_space([ex.image for ex in examples], generator).to(device)
        noise, t = noise_and_timesteps(len(examples), tuple(clean.shape[1:]), num_train_timesteps, generator, device)
        return clean, noise, t, cond

    def loss(self, pred: torch.Tensor, reference: Callable[[], torch.Tensor], target: torch.Tensor,
             beta: float) -> tuple[torch.Tensor, dict[str, float]]:
        loss = denoising_loss(pred, target)
        return loss, {"loss": loss.item(), "model_loss": loss.item()}
