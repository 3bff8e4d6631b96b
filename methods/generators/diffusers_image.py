"""Generator `diffusers`: any diffusers text-to-image pipeline (SD1.5, SDXL, ...) by hub id or path."""

from __future__ import annotations

from typing import Sequence

from ganrm_bench.harness.plugins import SampleRequest
from ganrm_bench.methods.generators.diffusers_base import DiffusersGeneratorBase, DiffusersParams


class DiffusersImageGenerator(DiffusersGeneratorBase):
    """Any diffusers text-to-image pipeline (hub id or path), with UNet/LoRA swaps and sampler params."""

    version = "1"
    modality = "image"
    Params = DiffusersParams

    def _call(self, pipe, chunk: Sequence[SampleRequest], generators: list, latents=None) -> list:
        extra = {} if latents is None else {"latents": latents.to(device=pipe.device, dtype=pipe.unet.dtype)}
        out = pipe(**self.call_arguments(chunk, generators), output_type="pil", **extra)
        return [im.convert("RGB") for im in out.images]

    # -- search hooks (methods.search): the initial latents as an explicit input ----------------
    def latent_shape(self, pipe) -> tuple[int, int, int]:
        """(channels, height, width) of one sample's initial latents, as the pipeline sizes them."""
        scale = getattr(pipe, "vae_scale_factor", 8)
        size = pipe.unet.config.sample_size * scale
        height, width = self.params.height or size, self.params.width or size
        return (pipe.unet.config.in_channels, int(height) // scale, int(width) // scale)

    def _draw_latents(self, pipe, generators: list):
        """One sample's latents per generator, as the pipeline's prepare_latents draws them."""
        import torch
        from diffusers.utils.torch_utils import randn_tensor

        shape = (1, *self.latent_shape(pipe))
        return torch.cat([randn_tensor(shape, generator=g, device=pipe.device, dtype=pipe.unet.dtype) for g in generators])

    def initial_noise(self, requests: Sequence[SampleRequest]):
        """The latents `generate` draws for each request's seed, on the CPU in float32."""
        import torch

        pipe = self.pipeline(None)
        gen_device = "cpu" if str(pipe.device).startswith("mps") else pipe.device
        return self._draw_latents(pipe, [torch.Generator(device=gen_device).manual_seed(int(r.seed)) for r in requests]).float().cpu()

    def generate_from_noise(self, requests: Sequence[SampleRequest], noise, ctx) -> list:
        """Images from the given initial latents (the pipeline's `latents` argument; seeds drive any other noise)."""
        import torch

        if noise is None:
            return self.generate(requests, ctx)
        pipe = self.pipeline(ctx)
        outputs: list = []
        batch = ctx.batch_size or self.params.batch_size
        gen_device = "cpu" if str(pipe.device).startswith("mps") else pipe.device
        for start in range(0, len(requests), batch):
            chunk = list(requests[start : start + batch])
            generators = [torch.Generator(device=gen_device).manual_seed(int(r.seed)) for r in chunk]
            self._draw_latents(pipe, generators)  # stochastic samplers continue each generator after this draw, as in `generate`
            with torch.inference_mode():
                outputs.extend(self._call(pipe, chunk, generators, latents=noise[start : start + batch]))
            ctx.count(f"generator:{self.name}:items", len(chunk))
        return outputs
