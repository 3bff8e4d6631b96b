"""The fine-tuning protocol (`Denoiser`) for diffusers latent-diffusion pipelines (SD1.5, SDXL).

Follows diffusers' training scripts (train_text_to_image, train_diffusion_dpo[_sdxl]): prompts
through the frozen text encoder(s), images through the frozen VAE (latent_dist.sample ×
scaling_factor), a DDPMScheduler with the pipeline's training schedule.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch

from ganrm_bench.methods.finetune.protocol import randn_per_example


def load_image(x: Any):
    """A PIL RGB image from a PIL image, a uint8/float array or a path (or an Item with .load())."""
    from PIL import Image

    if hasattr(x, "load") and not isinstance(x, Image.Image):
        x = x.load()
    if isinstance(x, (str, bytes)) or hasattr(x, "__fspath__"):
        with Image.open(x) as im:
            return im.convert("RGB")
    if isinstance(x, np.ndarray):
        arr = x if x.dtype == np.uint8 else np.clip(np.round(x * 255), 0, 255).astype(np.uint8)
        return Image.fromarray(arr).convert("RGB")
    return x.convert("RGB")


class DiffusersDenoiser:
    """A diffusers pipeline's UNet with its frozen encoders and training noise schedule."""

    def __init__(self, pipe, *, height: int | None = None, width: int | None = None, resolution: int | None = None):
        from diffusers import DDPMScheduler

        self.pipe = pipe
        self.unet = pipe.unet
        self.noise_scheduler = DDPMScheduler.from_config(pipe.scheduler.config)
        default = getattr(pipe, "default_sample_size", None) or self.unet.config.sample_size
        default = default * getattr(pipe, "vae_scale_factor", 8)
        self.height = resolution or height or default
        self.width = resolution or width or default
        self.is_sdxl = getattr(pipe, "text_encoder_2", None) is not None
        for module in (getattr(pipe, "vae", None), getattr(pipe, "text_encoder", None), getattr(pipe, "text_encoder_2", None)):
            if module is not None:
                module.requires_grad_(False).eval()
        self._saved_vae_config = getattr(getattr(pipe, "vae", None), "config", None)

    @property
    def device(self) -> torch.device:
        return self.unet.device

    def to(self, device) -> "DiffusersDenoiser":
        self.pipe.to(device)
        return self

    @torch.no_grad()
    def encode_prompts(self, prompts: Sequence[str]) -> Any:
        out = self.pipe.encode_prompt(prompt=list(prompts), device=self.device, num_images_per_prompt=1,
                                      do_classifier_free_guidance=False)
        if not self.is_sdxl:
            return {"encoder_hidden_states": out[0]}
        embeds, _, pooled, _ = out
        time_ids = torch.tensor([self.height, self.width, 0, 0, self.height, self.width], dtype=embeds.dtype, device=self.device)
        return {"encoder_hidden_states": embeds,
                "added_cond_kwargs": {"text_embeds": pooled, "time_ids": time_ids.repeat(len(prompts), 1)}}

    #: images per VAE encode call: at 1024 px the VAE's activations, not its weights, fill the memory
    vae_chunk = 4

    @torch.no_grad()
    def images_to_model_space(self, images: Sequence[Any], generator: torch.Generator | Sequence[torch.Generator] | None = None) -> torch.Tensor:
        return self.sample_latents(*self.encode_images(images), generator)

    @torch.no_grad()
    def encode_images(self, images: Sequence[Any]) -> tuple[torch.Tensor, torch.Tensor]:
        """The VAE posterior (mean, std) of each image: deterministic, so it can be computed once
        before training (`methods.finetune.encodings`); in fp32 where the VAE's config asks for it."""
        vae = self.pipe.vae
        if vae.dtype == torch.float16 and getattr(vae.config, "force_upcast", False):
            vae.to(torch.float32)  # the SDXL VAE overflows in fp16 (its config says so): encode in fp32, as diffusers decodes
        pixels = self.pipe.image_processor.preprocess([load_image(x) for x in images], height=self.height, width=self.width)
        pixels = pixels.to(device=vae.device, dtype=vae.dtype)
        parts = [vae.encode(pixels[i : i + self.vae_chunk]).latent_dist for i in range(0, len(pixels), self.vae_chunk)]
        return torch.cat([d.mean for d in parts]), torch.cat([d.std for d in parts])

    @torch.no_grad()
    def sample_latents(self, mean: torch.Tensor, std: torch.Tensor,
                       generator: torch.Generator | Sequence[torch.Generator] | None = None) -> torch.Tensor:
        """A posterior sample in the UNet's latent space (shifted, scaled, in the UNet's dtype)."""
        noise = randn_per_example(tuple(mean.shape), generator).to(mean)
        latents = mean + std * noise  # = latent_dist.sample(generator), with a CPU generator on any device
        config = self._vae_config
        shift = getattr(config, "shift_factor", None) or 0.0
        return ((latents - shift) * config.scaling_factor).to(self.unet.dtype)

    @property
    def _vae_config(self):
        return self.pipe.vae.config if self.pipe.vae is not None else self._saved_vae_config

    def encoder_modules(self) -> dict[str, torch.nn.Module]:
        """The frozen encoders (VAE, text encoders): off the accelerator once their outputs are precomputed."""
        return {name: m for name in ("vae", "text_encoder", "text_encoder_2") if (m := getattr(self.pipe, name, None)) is not None}

    def unet_forward(self, unet: torch.nn.Module, noisy: torch.Tensor, timesteps: torch.Tensor, cond: Any) -> torch.Tensor:
        kwargs = {"added_cond_kwargs": cond["added_cond_kwargs"]} if "added_cond_kwargs" in cond else {}
        return unet(noisy, timesteps, encoder_hidden_states=cond["encoder_hidden_states"], return_dict=False, **kwargs)[0]
