"""What a diffusion generator exposes so that SFT and Diffusion-DPO can fine-tune it.

Two sides: the generator plugin (`FineTunableGenerator`) hands out a private trainable copy of
its denoiser (`Denoiser`) and, given the saved weights, returns the fine-tuned generator. The
training loop only talks to a `Denoiser`, so the same code trains diffusers pipelines (SD1.5,
SDXL: `methods.finetune.diffusers_adapter`; text-to-video 3-D UNets: `methods.finetune.video_adapter`)
and the harness's mini class-conditional model.

Conditioning (`encode_prompts`' result) is a tensor or a dict of tensors / nested dicts, batch
first, so the loop can repeat it for the (winner, loser) halves of a DPO batch.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, Sequence, runtime_checkable

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from ganrm_bench.harness.plugins.base import Generator
    from ganrm_bench.harness.runtime.context import Context


@runtime_checkable
class Denoiser(Protocol):
    """A trainable denoising network with everything needed to compute its training loss."""

    #: the network to train (LoRA is injected into it, or it is trained in full)
    unet: "torch.nn.Module"
    #: a diffusers-style training noise scheduler: `config.num_train_timesteps`,
    #: `config.prediction_type` ("epsilon" | "v_prediction" | "sample"), `add_noise`, `get_velocity`
    noise_scheduler: Any

    def encode_prompts(self, prompts: Sequence[str]) -> Any:
        """Conditioning for `unet_forward` (frozen encoders, no grad); "" is the unconditional prompt."""

    def images_to_model_space(self, images: Sequence[Any], generator: "torch.Generator | Sequence[torch.Generator] | None" = None) -> "torch.Tensor":
        """Images (PIL, arrays or paths) to the space the UNet denoises (VAE latents, or pixels).
        Any sampling (a VAE posterior) draws from `generator`: one for the batch, or one per image
        (`randn_per_example`)."""

    def unet_forward(self, unet: "torch.nn.Module", noisy: "torch.Tensor", timesteps: "torch.Tensor", cond: Any) -> "torch.Tensor":
        """The network's prediction for `noisy` at `timesteps` under `cond`; `unet` may be wrapped
        (DDP) or be the frozen reference."""

    # optional: `to(device)` moving the frozen encoders and the unet (called by the training loop);
    # for `precompute_encodings` (methods.finetune.encodings): `encode_images(images)` → the
    # deterministic part of images_to_model_space (e.g. the VAE posterior's mean and std),
    # `sample_latents(mean, std, generator)` → its random part, and `encoder_modules()` → the frozen
    # encoders that may leave the accelerator once their outputs are computed


@runtime_checkable
class FineTunableGenerator(Protocol):
    """A generator plugin that can be fine-tuned and rebuilt with the result."""

    def finetune_model(self, ctx: "Context | None" = None) -> Denoiser:
        """A private trainable copy of the generator's denoiser (the sampling model is untouched)."""

    def with_finetuned(self, weights_dir: str | Path) -> "Generator":
        """The same generator with a fine-tuning result (`methods.finetune.weights`) applied on top;
        applied repeatedly, results stack in order (multi-round)."""


def randn_per_example(shape: tuple[int, ...], generator: "torch.Generator | Sequence[torch.Generator] | None") -> "torch.Tensor":
    """Standard normal noise [n, *shape[1:]]: from one generator for the whole batch, or (a list)
    one generator per example — so an example's draws do not depend on its batch or process."""
    import torch

    if isinstance(generator, (list, tuple)):
        if len(generator) != shape[0]:
            raise ValueError(f"{len(generator)} generators for a batch of {shape[0]}")
        return torch.stack([torch.randn(tuple(shape[1:]), generator=g) for g in generator])
    return torch.randn(tuple(shape), generator=generator)


def randint_per_example(high: int, n: int, generator: "torch.Generator | Sequence[torch.Generator] | None") -> "torch.Tensor":
    import torch

    if isinstance(generator, (list, tuple)):
        return torch.cat([torch.randint(0, high, (1,), generator=g) for g in generator])
    return torch.randint(0, high, (n,), generator=generator)


def training_target(noise_scheduler: Any, clean: "torch.Tensor", noise: "torch.Tensor", timesteps: "torch.Tensor") -> "torch.Tensor":
    """What the network is trained to predict, by the scheduler's prediction type."""
    kind = getattr(noise_scheduler.config, "prediction_type", "epsilon")
    if kind == "epsilon":
        return noise
    if kind == "v_prediction":
        return noise_scheduler.get_velocity(clean, noise, timesteps)
    if kind == "sample":
        return clean
    raise ValueError(f"unsupported prediction_type {kind!r} (epsilon, v_prediction or sample)")


def map_cond(fn, cond: Any) -> Any:
    """Apply `fn` to every tensor of a conditioning structure (tensor, dict, list/tuple, None)."""
    if cond is None:
        return None
    if isinstance(cond, dict):
        return {k: map_cond(fn, v) for k, v in cond.items()}
    if isinstance(cond, (list, tuple)):
        return type(cond)(map_cond(fn, v) for v in cond)
    if hasattr(cond, "shape"):
        return fn(cond)
    return cond
