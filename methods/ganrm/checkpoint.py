"""GAN-RM checkpoints: `rpl.safetensors` (tensors only) + `config.json` (backbone identity with
weights digest, dims, training params, metrics). Loading never unpickles code: a `.pt` file is
read with `torch.load(weights_only=True)`, which refuses anything but tensors and containers."""

from __future__ import annotations

import json
import math
import pickle
from pathlib import Path
from typing import Any

import torch

from ganrm_bench.harness.errors import UserError

FORMAT = "ganrm-checkpoint"
FORMAT_VERSION = 1
CONFIG = "config.json"
WEIGHTS = "rpl.safetensors"
LEGACY_WEIGHTS = ("rpl.pt", "rpl.pth", "rpl.bin")


def json_safe(obj: Any) -> Any:
    """NaN/inf → None, numpy scalars → Python, so the config is strict JSON."""
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if hasattr(obj, "item") and not isinstance(obj, (str, bytes)):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def flatten_states(states: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    return {f"model{i}.{k}": v.detach().cpu().contiguous() for i, s in enumerate(states) for k, v in s.items()}


def unflatten_states(flat: dict[str, torch.Tensor], n_models: int) -> list[dict[str, torch.Tensor]]:
    states: list[dict[str, torch.Tensor]] = [{} for _ in range(n_models)]
    for key, value in flat.items():
        head, _, rest = key.partition(".")
        if not head.startswith("model") or not head[5:].isdigit() or int(head[5:]) >= n_models:
            raise UserError(f"unexpected tensor {key!r} in a GAN-RM checkpoint with {n_models} model(s)")
        states[int(head[5:])][rest] = value
    return states


def save_checkpoint(directory: str | Path, states: list[dict[str, torch.Tensor]], config: dict[str, Any]) -> Path:
    from safetensors.torch import save_file

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    # One metadata entry: safetensors writes several in hash-map order, which varies from call to
    # call, so the same weights would give other bytes (n_models is in config.json).
    save_file(flatten_states(states), str(directory / WEIGHTS), metadata={"format": FORMAT})
    full = {"format": FORMAT, "format_version": FORMAT_VERSION, "n_models": len(states), **config}
    (directory / CONFIG).write_text(json.dumps(json_safe(full), indent=1, sort_keys=True, allow_nan=False))
    return directory


def load_tensor_file(path: str | Path) -> dict[str, torch.Tensor]:
    """Tensors from a .safetensors file, or from a .pt/.pth/.bin state dict loaded weights-only."""
    path = Path(path)
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, AttributeError, TypeError, ValueError) as exc:
        raise UserError(
            f"refusing to load {path}: it is not a plain tensor state dict (torch.load weights_only=True said: {str(exc).splitlines()[0]})",
            hint="GAN-RM checkpoints are safetensors; convert trusted weights with safetensors.torch.save_file",
        ) from exc
    if not isinstance(data, dict) or not all(isinstance(v, torch.Tensor) for v in data.values()):
        raise UserError(f"{path} does not hold a flat dict of tensors")
    return data


def load_checkpoint(directory: str | Path) -> tuple[list[dict[str, torch.Tensor]], dict[str, Any]]:
    directory = Path(directory)
    if directory.is_file():
        raise UserError(f"{directory} is a file; a GAN-RM checkpoint is a directory with {CONFIG} and {WEIGHTS}")
    cfg_path = directory / CONFIG
    if not cfg_path.is_file():
        raise UserError(f"no GAN-RM checkpoint at {directory} ({CONFIG} missing)", hint="train one with `ganrm-bench rm train ... --out DIR`")
    try:
        config = json.loads(cfg_path.read_text())
    except json.JSONDecodeError as exc:
        raise UserError(f"{cfg_path} is not valid JSON: {exc}") from exc
    if config.get("format") != FORMAT:
        raise UserError(f"{cfg_path} is not a GAN-RM checkpoint config (format={config.get('format')!r})")
    if config.get("format_version", 0) > FORMAT_VERSION:
        raise UserError(f"{cfg_path} has format version {config['format_version']}; this ganrm-bench reads up to {FORMAT_VERSION}", hint="upgrade ganrm-bench")
    weights = directory / WEIGHTS
    if not weights.is_file():
        legacy = [directory / n for n in LEGACY_WEIGHTS if (directory / n).is_file()]
        if not legacy:
            raise UserError(f"no weights in {directory} ({WEIGHTS} missing)")
        weights = legacy[0]
    return unflatten_states(load_tensor_file(weights), int(config["n_models"])), config
