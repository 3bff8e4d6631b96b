"""Unit costs of the diffusers image generators for `plan --estimate` (harness/engine/estimate.py).

A denoising step is timed on a random-init UNet built from a shipped architecture config
(configs/*.json: configs only, never weights) at the spec's latent size, batch and dtype. On a
CPU the big SDXL UNet (2.6 B parameters, ~10 GB in fp32) is not built: its time is SD1.5's
measured time × the FLOP ratio of the two UNets at their spec shapes, counted on the meta device
(no memory, no compute). VAE decoding and the text encoders are not timed (a few % of 50 steps).
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from ganrm_bench.harness.engine.estimate import UnitCost, time_call
from ganrm_bench.methods.generators.loading import resolve_dtype

CONFIGS = Path(__file__).parent / "configs"

#: hub ids (and their mirrors) -> the shipped UNet architecture config
UNET_CONFIG = {
    "stable-diffusion-v1-5/stable-diffusion-v1-5": "sd15_unet",
    "runwayml/stable-diffusion-v1-5": "sd15_unet",
    "CompVis/stable-diffusion-v1-4": "sd15_unet",
    "stabilityai/stable-diffusion-xl-base-1.0": "sdxl_unet",
}
#: architectures too big to build on a CPU for a quick estimate: (timed stand-in, scaled by FLOPs)
CPU_STAND_IN = {"sdxl_unet": "sd15_unet"}
_MEMO: dict[tuple, tuple[float, int | None]] = {}


def unet_config(name: str) -> dict[str, Any]:
    cfg = json.loads((CONFIGS / f"{name}.json").read_text())
    return {k: v for k, v in cfg.items() if not k.startswith("_")}


def config_for(model: str) -> str | None:
    return UNET_CONFIG.get(model.rstrip("/"))


def _inputs(cfg: dict[str, Any], batch: int, latent: tuple[int, int], device: Any, dtype: Any) -> tuple[tuple, dict]:
    import torch

    kw = dict(device=device, dtype=dtype)
    x = torch.randn(batch, cfg["in_channels"], *latent, **kw) if device != "meta" else torch.empty(batch, cfg["in_channels"], *latent, **kw)
    make = torch.empty if device == "meta" else torch.randn
    text = make(batch, 77, cfg["cross_attention_dim"], **kw)
    t = torch.full((batch,), 500, device=device, dtype=torch.long)
    extra = {}
    if cfg.get("addition_embed_type") == "text_time":
        extra["added_cond_kwargs"] = {"text_embeds": make(batch, 1280, **kw), "time_ids": make(batch, 6, **kw)}
    return (x, t, text), extra


@lru_cache(maxsize=None)
def unet_flops(name: str, latent: tuple[int, int]) -> float:
    """FLOPs of one UNet forward for one sample, counted on the meta device."""
    import torch
    from diffusers import UNet2DConditionModel
    from torch.utils.flop_counter import FlopCounterMode

    cfg = unet_config(name)
    with torch.device("meta"):
        unet = UNet2DConditionModel.from_config(cfg)
    args, extra = _inputs(cfg, 1, latent, "meta", torch.float32)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        unet(*args, **extra)
    return float(counter.get_total_flops())


def unet_forward_seconds(name: str, batch: int, latent: tuple[int, int], device: str, dtype: str) -> tuple[float, int | None]:
    """Seconds of one UNet forward at `batch` (random init, real size) and the peak CUDA bytes."""
    key = (name, batch, latent, device, dtype)
    if key not in _MEMO:
        import torch
        from diffusers import UNet2DConditionModel

        torch_dtype = getattr(torch, dtype)
        unet = UNet2DConditionModel.from_config(unet_config(name)).to(device).eval()
        if torch_dtype != torch.float32:
            unet = unet.to(dtype=torch_dtype)
        args, extra = _inputs(unet_config(name), batch, latent, device, torch_dtype)
        cpu = not str(device).startswith("cuda")
        with torch.no_grad():
            _MEMO[key] = time_call(lambda: unet(*args, **extra), repeat=1 if cpu else 3, warmup=0 if cpu else 1, device=device)
        del unet
    return _MEMO[key]


def diffusers_unit_cost(params: Any, ctx: Any) -> UnitCost | None:
    """Seconds per generated image (steps × UNet forwards with CFG) and per denoiser forward."""
    name = config_for(params.model)
    if name is None:
        return None
    device = str(getattr(ctx, "device", "cpu"))
    cpu = not device.startswith("cuda")
    cfg = unet_config(name)
    default = cfg["sample_size"] * 8
    latent = ((params.height or default) // 8, (params.width or default) // 8)
    cfg_mult = 2 if params.guidance > 1.0 else 1  # classifier-free guidance: conditional + unconditional

    dtype = "float32" if cpu else resolve_dtype(params.dtype, device)  # CPUs run float32
    batch = 1 if cpu else min(params.batch_size, 4)
    timed = CPU_STAND_IN.get(name, name) if cpu else name
    sec, peak = unet_forward_seconds(timed, batch * cfg_mult, latent if timed == name else _native(timed), device, dtype)
    note = f"{name} UNet (random init) at {latent[0] * 8}x{latent[1] * 8}, {dtype}, batch {batch}x{cfg_mult} (CFG)"
    if timed != name:
        ratio = unet_flops(name, latent) / unet_flops(timed, _native(timed))
        sec *= ratio
        peak = None
        note = (f"{name} not built on a CPU: {timed}'s measured forward x {ratio:.2f} "
                f"(FLOP ratio at {latent[0] * 8} px vs {_native(timed)[0] * 8} px, counted on the meta device)")
    per_forward = sec / (batch * cfg_mult)
    return UnitCost(params.steps * sec / batch, "image", forward_seconds=per_forward, peak_bytes=peak,
                    note=f"{params.steps} steps; {note}; VAE/text encoders not timed")


def _native(name: str) -> tuple[int, int]:
    s = unet_config(name)["sample_size"]
    return (s, s)
