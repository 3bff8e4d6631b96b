"""Trainable weights of a fine-tune: LoRA (peft) or the full UNet; saving and applying them.

A fine-tuning result is a directory:

    weights.safetensors   LoRA state (peft names, no adapter name) or the full UNet state dict
    finetune.json         {"format": "ganrm-bench-finetune", "kind": "lora"|"full", "lora": {...}, ...}

`apply_weights(unet, dir)` merges a LoRA result into the UNet's weights (or loads a full state),
leaving plain modules, so results of successive rounds stack and a new LoRA can be added on top.
Works on any torch module (diffusers UNets and the harness's mini model alike).
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any, Iterator, Sequence

import torch

from ganrm_bench.harness.errors import UserError

FORMAT = "ganrm-bench-finetune"
WEIGHTS = "weights.safetensors"
META = "finetune.json"
DEFAULT_TARGETS = ("to_q", "to_k", "to_v", "to_out.0")


def lora_config(rank: int, alpha: float | None, targets: Sequence[str]):
    from peft import LoraConfig

    return LoraConfig(r=rank, lora_alpha=alpha if alpha is not None else rank, init_lora_weights="gaussian",
                      target_modules=list(targets))


def add_lora(unet: torch.nn.Module, rank: int, alpha: float | None = None, targets: Sequence[str] = DEFAULT_TARGETS) -> None:
    """Inject a LoRA adapter and make it the only trainable part of `unet`."""
    from peft import inject_adapter_in_model

    unet.requires_grad_(False)
    try:
        inject_adapter_in_model(lora_config(rank, alpha, targets), unet, adapter_name="default")
    except ValueError as exc:
        raise UserError(f"LoRA targets {list(targets)} do not fit {type(unet).__name__}: {exc}",
                        hint="set lora_targets to module names of this network (e.g. to_q, to_k, to_v, to_out.0)") from exc
    for name, param in unet.named_parameters():
        param.requires_grad_("lora_" in name)


def _tuner_layers(unet: torch.nn.Module):
    from peft.tuners.tuners_utils import BaseTunerLayer

    return [(n, m) for n, m in unet.named_modules() if isinstance(m, BaseTunerLayer)]


def has_lora(unet: torch.nn.Module) -> bool:
    return bool(_tuner_layers(unet))


@contextlib.contextmanager
def adapters_disabled(unet: torch.nn.Module) -> Iterator[torch.nn.Module]:
    """The UNet without its LoRA: the frozen reference model of Diffusion-DPO with LoRA (as in
    diffusers' train_diffusion_dpo.py: `with unet.disable_adapters(): ref = unet(...)`)."""
    layers = [m for _, m in _tuner_layers(unet)]
    for m in layers:
        m.enable_adapters(False)
    try:
        yield unet
    finally:
        for m in layers:
            m.enable_adapters(True)


def lora_state(unet: torch.nn.Module) -> dict[str, torch.Tensor]:
    from peft import get_peft_model_state_dict

    return {k: v.detach().cpu().contiguous() for k, v in get_peft_model_state_dict(unet, adapter_name="default").items()}


def save_weights(unet: torch.nn.Module, directory: str | Path, *, kind: str, lora: dict[str, Any] | None = None,
                 meta: dict[str, Any] | None = None) -> Path:
    """Write the trained weights of `unet` (its LoRA, or all of it) as safetensors + JSON."""
    from safetensors.torch import save_file

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    if kind == "lora":
        state = lora_state(unet)
    elif kind == "full":
        state = {k: v.detach().cpu().contiguous() for k, v in unet.state_dict().items()}
    else:
        raise ValueError(f"kind must be 'lora' or 'full', got {kind!r}")
    save_file(state, str(directory / WEIGHTS))
    info = {"format": FORMAT, "kind": kind, "lora": lora, "network": type(unet).__name__, **(meta or {})}
    (directory / META).write_text(json.dumps(info, indent=1, sort_keys=True))
    return directory


def read_meta(directory: str | Path) -> dict[str, Any]:
    directory = Path(directory)
    try:
        info = json.loads((directory / META).read_text())
    except (OSError, ValueError) as exc:
        raise UserError(f"{directory} is not a fine-tuning result ({META} unreadable: {exc})",
                        hint="give a directory written by methods.finetune (weights.safetensors + finetune.json)") from exc
    if info.get("format") != FORMAT:
        raise UserError(f"{directory / META}: format {info.get('format')!r}, expected {FORMAT!r}")
    return info


def apply_weights(unet: torch.nn.Module, directory: str | Path) -> torch.nn.Module:
    """Load a fine-tuning result into `unet` in place: merge a LoRA into the base weights (leaving
    plain modules), or load a full state dict. Returns `unet`."""
    from safetensors.torch import load_file

    directory = Path(directory)
    info = read_meta(directory)
    state = load_file(str(directory / WEIGHTS))
    if info["kind"] == "full":
        missing, unexpected = unet.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise UserError(f"{directory}: weights do not fit {type(unet).__name__} "
                            f"(missing {missing[:3]}, unexpected {unexpected[:3]})")
        return unet
    if has_lora(unet):
        raise UserError("apply_weights: the UNet already carries an unmerged LoRA; merge it first")
    from peft import inject_adapter_in_model, set_peft_model_state_dict

    cfg = info["lora"]
    dtype = next(unet.parameters()).dtype
    inject_adapter_in_model(lora_config(cfg["rank"], cfg.get("alpha"), cfg["targets"]), unet, adapter_name="default")
    result = set_peft_model_state_dict(unet, {k: v.to(dtype) for k, v in state.items()}, adapter_name="default")
    unexpected = getattr(result, "unexpected_keys", [])
    if unexpected:
        raise UserError(f"{directory}: LoRA weights do not fit {type(unet).__name__} (unexpected {unexpected[:3]})")
    merge_lora(unet)
    return unet


def merge_lora(unet: torch.nn.Module) -> torch.nn.Module:
    """Fold every LoRA layer into its base layer and put the base layer back in its place."""
    for name, layer in _tuner_layers(unet):
        layer.merge()
        parent_name, _, child = name.rpartition(".")
        parent = unet.get_submodule(parent_name) if parent_name else unet
        setattr(parent, child, layer.get_base_layer())
    unet.requires_grad_(False)
    return unet
