"""From any fine-tunable generator plugin to a `Denoiser`, and from its saved weights back to a generator.

Two kinds of generators are supported:
- plugins implementing `FineTunableGenerator` (`finetune_model`, `with_finetuned`): the diffusers ones,
  image and video;
- image generator plugins exposing the hook attributes `unet`, `noise_scheduler`, `encode_prompts`,
  `images_to_model_space`, `unet_forward` and `with_unet_state(state_dict)` (the mini world's
  `mini_diffusion`): wrapped by `HookedDenoiser`, which trains a private copy of the UNet.
"""

from __future__ import annotations

import copy
import inspect
import types
from pathlib import Path
from typing import Any, Sequence

import torch

from ganrm_bench.harness.errors import UserError
from ganrm_bench.methods.finetune.diffusers_adapter import load_image
from ganrm_bench.methods.finetune.weights import apply_weights

HOOKS = ("unet", "noise_scheduler", "encode_prompts", "images_to_model_space", "unet_forward")


def _has(generator: Any, attr: str) -> bool:
    """`attr` on the class or the instance dict: never runs a property (which may load weights)."""
    return hasattr(type(generator), attr) or attr in getattr(generator, "__dict__", {})


def cannot_finetune(generator: Any) -> str | None:
    """Why `generator` cannot be fine-tuned, or None if it can; from its class alone, so planning
    decides it without loading weights."""
    if _has(generator, "finetune_model") and _has(generator, "with_finetuned"):
        return None
    if getattr(generator, "modality", "image") == "video":
        return "video generators must implement finetune_model()/with_finetuned() (methods.finetune.protocol)"
    if all(_has(generator, h) for h in (*HOOKS, "with_unet_state")):
        return None
    return ("it implements neither finetune_model()/with_finetuned() (methods.finetune.protocol) nor the hooks "
            + ", ".join(HOOKS) + ", with_unet_state()")


def denoiser_for(generator: Any, ctx: Any = None, *, device: str | None = None, resolution: int | None = None):
    """A private trainable `Denoiser` for `generator` (its own sampling model stays untouched),
    loaded onto `device` (the training Accelerator's, so each rank's copy is on its own GPU), training
    at `resolution` (TrainConfig.resolution; None: the generator's own)."""
    name = getattr(generator, "name", type(generator).__name__)
    why = cannot_finetune(generator)
    if why is not None:
        raise UserError(f"generator {name!r} cannot be fine-tuned: {why}")
    if _has(generator, "finetune_model"):
        kwargs = {k: v for k, v in {"device": device, "resolution": resolution}.items() if v is not None}
        return generator.finetune_model(ctx, **kwargs)
    if resolution is not None:
        raise UserError(f"generator {name!r} trains at its own resolution: `resolution: {resolution}` cannot apply",
                        hint="drop `resolution` from the row's training parameters")
    model = HookedDenoiser(generator)
    return model if device is None else model.to(device)


def finetuned_generator(generator: Any, weights_dir: str | Path):
    """`generator` with the fine-tuning result in `weights_dir` applied on top (stacking in order)."""
    if hasattr(generator, "with_finetuned"):
        return generator.with_finetuned(weights_dir)
    if hasattr(generator, "with_unet_state"):
        unet = copy.deepcopy(generator.unet).cpu()
        apply_weights(unet, weights_dir)
        return generator.with_unet_state(unet.state_dict())
    raise UserError(f"generator {getattr(generator, 'name', type(generator).__name__)!r} cannot load fine-tuned weights",
                    hint="implement with_finetuned(weights_dir) or with_unet_state(state_dict)")


class HookedDenoiser:
    """The `Denoiser` protocol over a generator's hook attributes, training a copy of its UNet.

    The empty prompt "" maps to the generator's `null_conditioning` (classifier-free guidance's
    unconditional label) when it has one."""

    def __init__(self, generator: Any):
        self.generator = generator
        self.unet = copy.deepcopy(generator.unet)
        self.noise_scheduler = generator.noise_scheduler
        params = inspect.signature(generator.unet_forward).parameters
        self._forward_takes_unet = "unet" in params

    def to(self, device) -> "HookedDenoiser":
        self.unet.to(device)
        return self

    @property
    def device(self) -> torch.device:
        return next(self.unet.parameters()).device

    @torch.no_grad()
    def encode_prompts(self, prompts: Sequence[str]) -> Any:
        prompts = list(prompts)
        given = [i for i, p in enumerate(prompts) if p]
        empty = [i for i, p in enumerate(prompts) if not p]
        if empty and not hasattr(self.generator, "null_conditioning"):
            raise UserError(f"generator {getattr(self.generator, 'name', '?')!r} has no unconditional input",
                            hint="set empty_prompt_fraction: 0")
        parts = {}
        if given:
            parts["given"] = self.generator.encode_prompts([prompts[i] for i in given])
        if empty:
            parts["empty"] = self.generator.null_conditioning(len(empty))
        ref = parts.get("given", parts.get("empty"))
        out = torch.empty((len(prompts), *ref.shape[1:]), dtype=ref.dtype, device=ref.device)
        if given:
            out[given] = parts["given"]
        if empty:
            out[empty] = parts["empty"].to(ref.device)
        return out.to(self.device)

    @torch.no_grad()
    def images_to_model_space(self, images: Sequence[Any], generator: torch.Generator | None = None) -> torch.Tensor:
        return self.generator.images_to_model_space([load_image(x) for x in images]).to(self.device)

    def encode_images(self, images: Sequence[Any]) -> tuple[torch.Tensor, None]:
        """The model-space images (the hooks draw nothing: nothing is left to sample)."""
        return self.images_to_model_space(images), None

    def sample_latents(self, encoded: torch.Tensor, _std: None = None, generator: Any = None) -> torch.Tensor:
        return encoded.to(self.device)

    def encoder_modules(self) -> dict[str, torch.nn.Module]:
        return {}  # the hooks' encoders belong to the sampling generator, which is not ours to move

    def unet_forward(self, unet: torch.nn.Module, noisy: torch.Tensor, timesteps: torch.Tensor, cond: Any) -> torch.Tensor:
        if self._forward_takes_unet:
            return self.generator.unet_forward(noisy, timesteps, cond, unet=unet)
        # the hook reads `self.unet`: call it on a view whose unet is the one to run
        view = types.SimpleNamespace(**{k: getattr(self.generator, k) for k in ("params",) if hasattr(self.generator, k)}, unet=unet)
        return type(self.generator).unet_forward(view, noisy, timesteps, cond)
