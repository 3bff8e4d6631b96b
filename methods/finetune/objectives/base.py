"""What a fine-tuning objective is to the training loop, and the draws every denoising loss shares.

The loop (`methods.finetune.train`) is the same for every objective: it asks the objective for the
micro-batch to denoise (`batch`: clean samples, noise, timesteps, conditioning, all drawn from the
examples' own generators) and for the loss of the prediction (`loss`), and never branches on which
objective it runs. An objective also says which examples it trains on (`example`), which graph
inputs select them (`selection`, read by `methods.ops`) and whether a full fine-tune needs a frozen
copy of the network as its reference (`frozen_reference`).
"""

from __future__ import annotations

from typing import Any, Callable, ClassVar, Mapping, Sequence

import torch

from ganrm_bench.methods.finetune.protocol import randint_per_example, randn_per_example

Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor, Any]  # clean, noise, timesteps, conditioning


class Objective:
    """One fine-tuning objective: a small stateless object registered by `name`."""

    name: ClassVar[str]
    example: ClassVar[type]  # the training example type (Sample, PreferencePair)
    selection: ClassVar[Mapping[str, str]]  # graph input name → selection rule of the scored pool
    frozen_reference: ClassVar[bool] = False  # a full fine-tune keeps a frozen copy of the network
    eval_keys: ClassVar[tuple[str, ...]] = ("loss",)  # what `evaluate` reports

    def examples(self, inputs: Mapping[str, Any]) -> tuple[list, int]:
        """The training examples from the fine-tune node's selected inputs, and how many prompts gave none."""
        raise NotImplementedError

    def batch(self, encoder: Any, examples: Sequence, generator: Any, cond: Any, num_train_timesteps: int,
              device: Any) -> Batch:
        """The micro-batch to denoise; every draw comes from `generator` (one per example, or one)."""
        raise NotImplementedError

    def loss(self, pred: torch.Tensor, reference: Callable[[], torch.Tensor], target: torch.Tensor,
             beta: float) -> tuple[torch.Tensor, dict[str, float]]:
        """The differentiable loss and its logged statistics; `reference()` runs the frozen reference
        on the same inputs (called only by objectives that need it)."""
        raise NotImplementedError


def per_sample_mse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """‖pred − target‖² averaged over every dim but the batch (images and videos alike), in fp32."""
    return (pred.float() - target.float()).pow(2).reshape(pred.shape[0], -1).mean(dim=1)


def noise_and_timesteps(n: int, shape: tuple[int, ...], num_train_timesteps: int,
                        generator: torch.Generator | Sequence[torch.Generator], device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """Per sample: a timestep, then the noise (one generator for all, or one per sample)."""
    timesteps = randint_per_example(num_train_timesteps, n, generator).to(device)
    noise = randn_per_example((n, *shape), generator).to(device)
    return noise, timesteps
