"""Generator `diffusers`: any diffusers text-to-image pipeline (SD1.5, SDXL, ...) by hub id or path."""

from __future__ import annotations

import functools
import inspect
from typing import Sequence

from ganrm_bench.harness.errors import UserError
from ganrm_bench.harness.plugins.base import SampleRequest
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

    # -- rollout hooks (methods.finetune.online: online RL's trajectories) -----------------------
    def rollout_sampler(self) -> str | None:
        """The sampling scheduler's class name from the params (None: the pipeline's own, unknown
        until it loads): planning checks it without loading weights."""
        return self.params.scheduler

    def rollout_scheduler(self):
        """A fresh copy of the pipeline's scheduler, set to this generator's steps."""
        pipe = self.pipeline(None)
        sched = type(pipe.scheduler).from_config(pipe.scheduler.config)
        sched.set_timesteps(self.params.steps)
        return sched

    def rollout_shape(self) -> tuple[int, int, int]:
        return self.latent_shape(self.pipeline(None))

    def rollout_decode(self, latents) -> list:
        """Final latents to RGB images through the pipeline's VAE (as the pipeline decodes them)."""
        import torch

        pipe = self.pipeline(None)
        with torch.no_grad():
            pixels = pipe.vae.decode(latents.to(device=pipe.vae.device, dtype=pipe.vae.dtype) / pipe.vae.config.scaling_factor,
                                     return_dict=False)[0]
        return [im.convert("RGB") for im in pipe.image_processor.postprocess(pixels.float(), output_type="pil")]

    def rollout_guidance(self) -> float:
        """Classifier-free guidance of the rollouts: the generator's scale (1: none, as diffusers below 1)."""
        return float(self.params.guidance) if self.params.guidance > 1 else 1.0

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

    def denoise_particles(self, requests: Sequence[SampleRequest], noise, ctx, *, at: Sequence[int], on_x0, eta: float = 0.0) -> list:
        """Particle hook (methods.smc_search): one pipeline call for all requests from latents `noise`.
        After step i in `at`, `on_x0(i, images)` gets each row's x̂0 — the scheduler step's
        `pred_original_sample`, decoded by the VAE (not counted as NFE) — and may return ancestor
        indices, which reorder the latents (`callback_on_step_end`); each row keeps its own seed's
        generator. η goes to the pipeline (DDIM's step noise; other schedulers ignore it)."""
        import torch


        pipe = self.pipeline(ctx)
        gen_device = "cpu" if str(pipe.device).startswith("mps") else pipe.device
        generators = [torch.Generator(device=gen_device).manual_seed(int(r.seed)) for r in requests]
        self._draw_latents(pipe, generators)  # as generate_from_noise: later draws continue each generator
        wanted, captured, step = {int(i) for i in at}, {}, pipe.scheduler.step

        @functools.wraps(step)  # keeps step's signature: pipelines pass `eta` / `generator` only if step names them
        def capturing_step(*args, return_dict: bool = True, **kwargs):
            out = step(*args, return_dict=True, **kwargs)
            captured["x0"] = getattr(out, "pred_original_sample", None)
            return out if return_dict else (out.prev_sample,)

        def on_step_end(_pipe, i, t, tensors):
            if i not in wanted:
                return {}
            if captured.get("x0") is None:
                raise UserError(f"smc_search: scheduler {type(pipe.scheduler).__name__} gives no pred_original_sample (x̂0)",
                                hint="use a scheduler whose step output has it (DDIM, DDPM, Euler, Euler ancestral)")
            with torch.inference_mode():
                decoded = pipe.vae.decode(captured["x0"].to(pipe.vae.dtype) / pipe.vae.config.scaling_factor, return_dict=False)[0]
            ancestors = on_x0(i, [im.convert("RGB") for im in pipe.image_processor.postprocess(decoded, output_type="pil")])
            if ancestors is None:
                return {}
            latents = tensors["latents"]
            return {"latents": latents[torch.as_tensor(list(ancestors), dtype=torch.long, device=latents.device)]}

        kwargs = self.call_arguments(requests, generators)
        if eta and "eta" in inspect.signature(type(pipe).__call__).parameters:
            kwargs["eta"] = float(eta)
        pipe.scheduler.step = capturing_step  # an instance attribute over the method, removed below
        try:
            with torch.inference_mode():
                out = pipe(**kwargs, output_type="pil", latents=noise.to(device=pipe.device, dtype=pipe.unet.dtype),
                           callback_on_step_end=on_step_end, callback_on_step_end_tensor_inputs=["latents"])
        finally:
            del pipe.scheduler.step
        ctx.count(f"generator:{self.name}:items", len(requests))
        return [im.convert("RGB") for im in out.images]
