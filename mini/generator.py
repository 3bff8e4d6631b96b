"""Generator `mini_diffusion`: the miniature world's class-conditional diffusion model."""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path
from typing import Any, Literal, Mapping, Sequence

import numpy as np
import torch
from pydantic import Field

from ganrm_bench.harness.engine.estimate import UnitCost, time_call
from ganrm_bench.harness.errors import UserError
from ganrm_bench.harness.plugins.base import Generator, PluginParams, Prompt, SampleRequest
from ganrm_bench.harness.runtime.context import Context
from ganrm_bench.harness.runtime.devices import resolve_device
from ganrm_bench.mini.common import GENERATOR_FILE, digest, images_to_tensor, load_state, parse_digit, weights_path
from ganrm_bench.mini.nets import NULL_CLASS, SCHEDULER_CONFIG, build_unet
from ganrm_bench.mini.sampling import initial_noise, make_sampling_scheduler, sample, sample_particles, to_uint8


class MiniDiffusionParams(PluginParams):
    weights: str | None = Field(None, description="generator safetensors (UNet config in its metadata); default: the shipped file")
    unet_weights: str | None = Field(None, description="a UNet state dict (safetensors) to load over `weights`, e.g. a fine-tuned one")
    steps: int = Field(25, ge=1, le=1000, description="sampling steps")
    guidance: float = Field(1.0, ge=0.0, description="classifier-free guidance scale; 1 = conditional model only")
    scheduler: Literal["ddim", "ddpm"] = "ddim"
    device: str = "auto"
    batch_size: int = Field(32, ge=1, description="rows of every UNet forward pass (the last batch is padded to it)")


class MiniDiffusion(Generator):
    """Mini world: a 0.69M-parameter class-conditional diffusers UNet drawing 16×16 digits.

    Prompts name a digit ("a handwritten digit 7"); the digit is parsed from the text. Each
    request's noise comes from its own `torch.Generator(request.seed)`, and every UNet forward pass
    has exactly `batch_size` rows (the last batch is padded): CPU kernels choose their summation
    order by batch size, so this is what makes a sample bit-identical whatever batch and position
    it lands in. `batch_size` is therefore part of the fingerprint, and `ctx.batch_size` is not
    used. Trained with 10 % label dropout to the null class, so `guidance` is real
    classifier-free guidance.

    Fine-tuning hooks (for SFT / DPO on top of this generator):
    - `unet`: the trainable `diffusers.UNet2DModel` (loaded frozen and in eval mode; call
      `.train().requires_grad_(True)` on it, or on a `copy.deepcopy` for a frozen reference).
    - `noise_scheduler`: the `DDPMScheduler` of training (`add_noise`, `config.num_train_timesteps`).
    - `encode_prompts(prompts) -> LongTensor [B]`: the conditioning (digit labels; `null_conditioning`
      gives the null label used for guidance / label dropout).
    - `images_to_model_space(images) -> Tensor [B, 1, 16, 16]`: x0 in [-1, 1] from PIL / uint8 images.
    - `unet_forward(x_t, t, cond, unet=None) -> Tensor`: the ε prediction (of `unet`, e.g. a
      trainable copy, when given).
    - `with_unet_state(state_dict)`: a new generator with the same params and these UNet weights
      (a LoRA adapter must be merged first, e.g. peft's `merge_and_unload()`); its fingerprint
      carries the digest of the tensors. Or set the param `unet_weights: path.safetensors`, whose
      file digest goes into the fingerprint. A partial state dict overrides only its keys.
    """

    name = "mini_diffusion"  # fixed here too, so fingerprints do not depend on registry use
    version = "1"
    Params = MiniDiffusionParams
    params: MiniDiffusionParams

    def __init__(self, params: Any = None, **kwargs: Any):
        super().__init__(params, **kwargs)
        self._weights = weights_path(self.params.weights, GENERATOR_FILE, what="mini_diffusion generator")
        self._unet_weights = None
        if self.params.unet_weights:
            self._unet_weights = Path(self.params.unet_weights).expanduser()
            if not self._unet_weights.is_file():
                raise UserError(f"mini_diffusion: unet_weights file {str(self._unet_weights)!r} does not exist",
                                hint="give the path of a safetensors UNet state dict")  # fmt: skip
        self._state_override: dict[str, torch.Tensor] | None = None
        self._state_digest: str | None = None
        self._unet = None
        self._noise_scheduler = None

    # -- identity -------------------------------------------------------------------------------
    def fingerprint(self) -> dict[str, Any]:
        fp = super().fingerprint()
        params = dict(fp["params"])
        for key in ("weights", "unet_weights"):  # paths are replaced by the files' digests
            params.pop(key, None)
        fp["params"] = params
        fp["weights_sha256"] = digest(self._weights)
        if self._unet_weights is not None:
            fp["unet_weights_sha256"] = digest(self._unet_weights)
        if self._state_digest is not None:
            fp["unet_state_sha256"] = self._state_digest
        return fp

    # -- model ----------------------------------------------------------------------------------
    @property
    def device(self) -> str:
        return resolve_device(self.params.device)

    @property
    def unet(self):
        if self._unet is None:
            state, meta = load_state(self._weights)
            try:
                config = json.loads(meta["mini"])["unet_config"]
            except (KeyError, ValueError) as exc:
                raise UserError(f"{self._weights}: not a mini_diffusion checkpoint (no UNet config in its metadata)",
                                hint="rebuild with `python -m ganrm_bench.mini.train`") from exc  # fmt: skip
            unet = build_unet(config)
            unet.load_state_dict(state, strict=True)
            if self._unet_weights is not None:
                _load_partial(unet, load_state(self._unet_weights)[0], str(self._unet_weights))
            if self._state_override is not None:
                _load_partial(unet, self._state_override, "with_unet_state")
            self._unet = unet.to(self.device).eval().requires_grad_(False)
        return self._unet

    @property
    def noise_scheduler(self):
        if self._noise_scheduler is None:
            from diffusers import DDPMScheduler

            self._noise_scheduler = DDPMScheduler(**SCHEDULER_CONFIG)
        return self._noise_scheduler

    def with_unet_state(self, state_dict: Mapping[str, torch.Tensor]) -> "MiniDiffusion":
        """A new generator, same params, with these UNet weights over the base ones."""
        other = copy.copy(self)
        other._unet = None
        other._noise_scheduler = None
        other._state_override = {k: v.detach().cpu().clone() for k, v in state_dict.items()}
        other._state_digest = _state_digest(other._state_override)
        return other

    # -- fine-tuning hooks ----------------------------------------------------------------------
    def encode_prompts(self, prompts: Sequence[str | Prompt]) -> torch.Tensor:
        texts = [p.text if isinstance(p, Prompt) else p for p in prompts]
        return torch.tensor([parse_digit(t) for t in texts], dtype=torch.long, device=self.device)

    def null_conditioning(self, n: int) -> torch.Tensor:
        return torch.full((n,), NULL_CLASS, dtype=torch.long, device=self.device)

    def images_to_model_space(self, images: Sequence[Any]) -> torch.Tensor:
        return (images_to_tensor(images) * 2 - 1).to(self.device)

    def unet_forward(self, x_t: torch.Tensor, t: torch.Tensor | int, cond: torch.Tensor, unet: torch.nn.Module | None = None) -> torch.Tensor:
        """ε prediction of this generator's UNet, or of `unet` (e.g. a trainable copy) when given."""
        return (unet if unet is not None else self.unet)(x_t, t, class_labels=cond).sample

    # -- rollout hooks (methods.finetune.online: trajectories of a stochastic sampler) ----------
    def rollout_scheduler(self):
        """A fresh sampling scheduler of this generator (its kind and step count)."""
        return make_sampling_scheduler(self.params.scheduler, self.params.steps)

    def rollout_sampler(self) -> str:
        """The sampling scheduler's class name, known without loading anything (planning)."""
        return {"ddim": "DDIMScheduler", "ddpm": "DDPMScheduler"}[self.params.scheduler]

    def rollout_shape(self) -> tuple[int, ...]:
        cfg = self.unet.config
        return (cfg.in_channels, cfg.sample_size, cfg.sample_size)

    def rollout_decode(self, x: torch.Tensor) -> list:
        """Final states ([-1, 1] pixels) to images, as `generate` returns them."""
        return _to_images(x.clamp(-1, 1))

    def rollout_guidance(self) -> float:
        return float(self.params.guidance)

    # -- generation -----------------------------------------------------------------------------
    def nfe_per_sample(self) -> int:
        """UNet evaluations per sample: one per step, two with classifier-free guidance (guidance ≠ 1
        runs the conditional and the null label; the padding rows of a batch are not counted)."""
        return self.params.steps * (1 if self.params.guidance == 1.0 else 2)

    def generate(self, requests: Sequence[SampleRequest], ctx: Context) -> list:
        return self.generate_from_noise(requests, None, ctx)

    def estimate_unit(self, ctx: Context | None = None):
        """plan --estimate: one full batch generated (seconds per image) and one UNet forward of a
        batch (seconds per sample, which fine-tuning's estimate multiplies)."""
        bs = self.params.batch_size
        reqs = [SampleRequest(Prompt(f"probe{i}", f"a handwritten digit {i % 10}"), 0, i) for i in range(bs)]
        probe_ctx = ctx if ctx is not None else type("Ctx", (), {"count": lambda *a, **k: None})()
        gen, _ = time_call(lambda: self.generate(reqs, probe_ctx), repeat=1, warmup=1)
        x, t = torch.randn(bs, 1, 16, 16, device=self.device), torch.full((bs,), 500, device=self.device)
        cond = self.encode_prompts([r.prompt for r in reqs])
        with torch.no_grad():
            fwd, _ = time_call(lambda: self.unet_forward(x, t, cond), repeat=3, warmup=1)
        return UnitCost(gen / bs, "image", forward_seconds=fwd / bs,
                        note=f"{self.params.steps} steps x {self.nfe_per_sample() // self.params.steps} forwards, batch {bs}")

    # -- search hooks (methods.search): the initial noise as an explicit input ------------------
    def initial_noise(self, requests: Sequence[SampleRequest]) -> torch.Tensor:
        """The initial noise [B, 1, 16, 16] that `generate` draws for each request's seed."""
        return initial_noise(self.unet, [r.seed for r in requests])

    def generate_from_noise(self, requests: Sequence[SampleRequest], noise: torch.Tensor | None, ctx: Context) -> list:
        """Images from the given initial noise (row i for request i; the request's seed still drives
        DDPM's per-step noise); `noise=None` draws it from the seeds, as `generate` does."""
        labels = self.encode_prompts([r.prompt for r in requests])  # fails fast on a bad prompt
        seeds = [r.seed for r in requests]
        if noise is None:
            noise = initial_noise(self.unet, seeds)
        batch = self.params.batch_size  # not ctx.batch_size: the forward size is part of the identity
        out: list = []
        for start in range(0, len(requests), batch):
            n = min(batch, len(requests) - start)
            pad = batch - n  # padding rows (null label, seed 0) keep every forward pass the same size
            chunk_labels = torch.cat([labels[start : start + n], self.null_conditioning(pad)])
            chunk_noise = torch.cat([noise[start : start + n].cpu(), initial_noise(self.unet, [0] * pad)])
            x = sample(self.unet, chunk_labels, seeds[start : start + n] + [0] * pad, steps=self.params.steps,
                       guidance=self.params.guidance, scheduler=self.params.scheduler, device=self.device,
                       noise=chunk_noise)  # fmt: skip
            out.extend(_to_images(x[:n]))
        return out

    def denoise_particles(self, requests: Sequence[SampleRequest], noise: torch.Tensor, ctx: Context, *, at: Sequence[int],
                          on_x0: Any, eta: float = 0.0) -> list:
        """Particle hook (methods.smc_search): denoise all requests together from `noise`; after step i
        in `at`, `on_x0(i, images)` gets each row's predicted clean sample x̂0 as an image and may
        return ancestor indices (rows of the same prompt) to resample the rows (see `mini.sampling.sample_particles`). η:
        DDIM's step noise (0: deterministic; ignored by DDPM, which is stochastic anyway)."""
        x = sample_particles(self.unet, self.encode_prompts([r.prompt for r in requests]), [r.seed for r in requests], noise,
                             steps=self.params.steps, guidance=self.params.guidance, scheduler=self.params.scheduler,
                             device=self.device, batch_size=self.params.batch_size, eta=eta, at=at,
                             on_x0=lambda i, x0: on_x0(i, _to_images(x0)))  # fmt: skip
        return _to_images(x)


def _to_images(x: torch.Tensor) -> list:
    """[-1, 1] samples [B, 1, H, W] as RGB PIL images (the digit repeated in the three channels)."""
    from PIL import Image


    return [Image.fromarray(np.repeat(img[..., None], 3, axis=-1), "RGB") for img in to_uint8(x).numpy()]


def _load_partial(unet: torch.nn.Module, state: Mapping[str, torch.Tensor], source: str) -> None:
    own = unet.state_dict()
    unknown = [k for k in state if k not in own]
    if unknown or any(tuple(state[k].shape) != tuple(own[k].shape) for k in state):
        bad = unknown[:3] or [k for k in state if tuple(state[k].shape) != tuple(own[k].shape)][:3]
        hint = "merge a LoRA adapter into the UNet first (peft merge_and_unload)" if any("lora" in k for k in state) else None
        raise UserError(f"mini_diffusion: UNet weights from {source} do not fit the UNet (e.g. {bad})", hint=hint)
    unet.load_state_dict(state, strict=False)


def _state_digest(state: Mapping[str, torch.Tensor]) -> str:
    h = hashlib.sha256()
    for k in sorted(state):
        t = state[k].contiguous()
        h.update(f"{k}:{t.dtype}:{tuple(t.shape)}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()
