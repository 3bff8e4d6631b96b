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
from typing import Any, Callable, Mapping, Sequence

import torch
import torch.nn.functional as F

from ganrm_bench.harness.plugins.base import ItemSet
from ganrm_bench.methods.finetune.objectives.base import Batch, Objective, noise_and_timesteps, per_sample_mse
from ganrm_bench.methods.finetune.protocol import map_cond


@dataclass(frozen=True)
class PreferencePair:
    """One DPO example: the preferred and the rejected sample for a prompt (images, arrays, paths or Items)."""

    prompt: str
    winner: Any
    loser: Any


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


def preference_pairs(winners: ItemSet, losers: ItemSet) -> tuple[list[PreferencePair], int]:
    """(best, worst) per prompt, joined on prompt id; prompts whose best is their worst (K = 1 or
    tied scores) carry no preference and are dropped. Returns the pairs and the dropped count."""
    best = {it.prompt_id or it.key: it for it in winners}
    pairs, dropped = [], 0
    for lo in losers:
        hi = best.get(lo.prompt_id or lo.key)
        if hi is None or hi.key == lo.key:
            dropped += 1
            continue
        pairs.append(PreferencePair(hi.prompt or "", hi.path, lo.path))
    return pairs, dropped


class DPOObjective(Objective):
    name = "dpo"
    example = PreferencePair
    selection = {"winners": "argmax", "losers": "argmin"}
    frozen_reference = True
    eval_keys = ("loss", "implicit_acc", "inside")

    def examples(self, inputs: Mapping[str, Any]) -> tuple[list, int]:
        return preference_pairs(inputs["winners"], inputs["losers"])

    def batch(self, encoder: Any, examples: Sequence, generator: Any, cond: Any, num_train_timesteps: int,
              device: Any) -> Batch:
        """Winners then losers, from the pair's generator (the same noise and timestep for both)."""
        images = [ex.winner for ex in examples] + [ex.loser for ex in examples]
        gens = generator + generator if isinstance(generator, list) else generator
        clean = encoder.images_to_model_space(images, gens).to(device)
        noise, t = shared_noise_and_timesteps(len(examples), tuple(clean.shape[1:]), num_train_timesteps, generator, device)
        return clean, noise, t, map_cond(lambda x: x.repeat(2, *([1] * (x.dim() - 1))), cond)

    def loss(self, pred: torch.Tensor, reference: Callable[[], torch.Tensor], target: torch.Tensor,
             beta: float) -> tuple[torch.Tensor, dict[str, float]]:
        out = diffusion_dpo_loss(pred, reference(), target, beta)
        return out.loss, {"loss": out.loss.item(), "implicit_acc": out.implicit_acc.item(), "model_loss": out.model_loss.item(),
                          "ref_loss": out.ref_loss.item(), "inside": out.inside.mean().item()}
