"""Diffusers pipelines at full size with random weights, from the shipped architecture configs
(configs/pipelines.json names each hub id's components), for `run --random-weights`.

Nothing is downloaded: UNet, VAE and text encoders are built with `from_config`, the scheduler
from its config, and the CLIP tokenizers from vocab.json + merges.txt written from open_clip's
bundled BPE file (`bpe_simple_vocab_16e6.txt.gz`, the OpenAI CLIP vocabulary every SD text
encoder uses; ids match open_clip's tokenizer), so prompts tokenize exactly as with real weights.
Each component starts from its own fixed seed (harness.runtime.random_weights.seeded): a rebuild gives the
same bytes, so random-weights artifacts are reproducible like any other."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from ganrm_bench.harness.errors import UserError
from ganrm_bench.harness.runtime import random_weights as rw
from ganrm_bench.harness.runtime.clip_bpe import clip_tokenizer

CONFIGS = Path(__file__).parent / "configs"


def _json(name: str) -> dict[str, Any]:
    return json.loads((CONFIGS / f"{name}.json").read_text())


def _arch(name: str) -> dict[str, Any]:
    """An architecture config without its comment/class keys."""
    return {k: v for k, v in _json(name).items() if not k.startswith("_")}


def pipeline_config(model: str) -> dict[str, Any] | None:
    """The components of a hub id's pipeline (None: no shipped config)."""
    table = _json("pipelines")
    ref = model.rstrip("/")
    ref = table.get("_aliases", {}).get(ref, ref)
    cfg = table.get(ref)
    return None if cfg is None or ref.startswith("_") else {"id": ref, **cfg}


def require_config(model: str, what: str = "model") -> dict[str, Any]:
    cfg = pipeline_config(model)
    if cfg is None:
        known = sorted(k for k in _json("pipelines") if not k.startswith("_"))
        raise UserError(f"--random-weights: no shipped architecture config for {what} {model!r}",
                        hint=f"configs exist for {', '.join(known)}; add one to {CONFIGS / 'pipelines.json'} "
                             "(component configs only, never weights) or run without --random-weights")
    return cfg


def component_configs(cfg: dict[str, Any]) -> list[str]:
    """The config files a pipeline entry names (its UNet, VAE, text encoders): string values other
    than its id, pipeline class and `_`-keys (comments)."""
    return [v for k, v in sorted(cfg.items()) if isinstance(v, str) and k not in ("id", "pipeline") and not k.startswith("_")]


def identity(model: str) -> dict[str, Any]:
    """The fingerprint entry standing for `model`'s weights: its config set and their digest."""
    cfg = require_config(model)
    names = component_configs(cfg)
    digest = hashlib.sha256("".join((CONFIGS / f"{n}.json").read_text() for n in sorted(names)).encode()).hexdigest()[:16]
    return rw.identity(cfg["id"], f"configs:{digest}")


def text_encoder(name: str, *seed_parts: Any):
    import transformers

    cfg = _json(name)
    cls = getattr(transformers, cfg["_class_name"])
    with rw.seeded(name, *seed_parts):
        return cls(transformers.CLIPTextConfig(**_arch(name))).eval()


def diffusers_model(name: str, *seed_parts: Any):
    """A diffusers model (UNet, VAE) of a shipped config, random weights from its own seed."""
    import diffusers

    cfg = _json(name)
    with rw.seeded(name, *seed_parts):
        return getattr(diffusers, cfg["_class_name"]).from_config(_arch(name))


def unet(model: str, *seed_parts: Any):
    """The pipeline's denoiser alone (a random UNet override: other seed, same architecture)."""
    return diffusers_model(require_config(model)["unet"], *seed_parts)


def build_pipeline(model: str, torch_dtype: Any = None, *, unet_override: str | None = None):
    """The pipeline of hub id `model` at full size with random weights (CPU, `torch_dtype`)."""
    import diffusers

    cfg = require_config(model)
    parts: dict[str, Any] = {}
    for key in ("unet", "vae"):
        parts[key] = diffusers_model(cfg[key], cfg["id"], key)
    if unet_override is not None:
        parts["unet"] = diffusers_model(cfg["unet"], "unet-override", unet_override)
    for key in ("text_encoder", "text_encoder_2"):
        if key in cfg:
            parts[key] = text_encoder(cfg[key], cfg["id"], key)
    for key in ("tokenizer", "tokenizer_2"):
        if key in cfg:
            parts[key] = clip_tokenizer(**cfg[key])
    sched = dict(cfg["scheduler"])
    parts["scheduler"] = getattr(diffusers, sched.pop("_class_name")).from_config(sched)
    pipe = getattr(diffusers, cfg["pipeline"])(**parts, **cfg.get("extra", {}))
    import torch

    if torch_dtype is not None and torch_dtype != torch.float32:  # built in float32
        pipe = pipe.to(dtype=torch_dtype)
    return pipe
