"""open_clip models resolved offline-first and loaded once per process (CLIPScore, Q16).

`model` is an open_clip architecture name ("ViT-B-32"), "hf-hub:org/repo" or "local-dir:/path"
(a folder with open_clip_config.json + weights; `pretrained` is then ignored, as in open_clip).
`pretrained` is an open_clip tag ("openai", "laion2b_s34b_b79k"...) or a local checkpoint file.
A tag is resolved to its hub file ourselves (cache only when offline) and its preprocessing and
QuickGELU settings are applied, exactly what open_clip does for the tag, so the model is the same
and nothing is ever fetched behind our back.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ganrm_bench.harness.errors import UserError
from ganrm_bench.harness.runtime import random_weights as rw
from ganrm_bench.harness.store.hub import is_local
from ganrm_bench.metrics import weights as W
from ganrm_bench.metrics.base import cached_model


@dataclass
class OpenClipModel:
    model: Any
    preprocess: Any
    tokenizer: Any
    identity: str


def resolve(model: str, pretrained: str, *, cache_dir: str | None, offline: bool) -> tuple[Path, dict]:
    """(checkpoint file — or model folder for hf-hub:/local-dir: names —, the tag's pretrained config or {})."""
    import open_clip

    desc = f"open_clip {model} ({pretrained})"
    if model.startswith("hf-hub:"):
        repo = model[len("hf-hub:"):]
        return W.hub_snapshot(repo, model=desc, cache_dir=cache_dir, offline=offline,
                              allow_patterns=["open_clip_config.json", "open_clip_*", "*.txt*"]), {"folder": True}
    if model.startswith("local-dir:"):
        return W.local_path(model[len("local-dir:"):], model=desc), {"folder": True}
    if is_local(pretrained):
        return W.local_path(pretrained, model=desc), {}
    cfg = open_clip.get_pretrained_cfg(model, pretrained)
    if not cfg:
        tags = open_clip.list_pretrained_tags_by_model(model)
        raise UserError(f"open_clip has no pretrained tag {pretrained!r} for model {model!r} and no such file exists",
                        hint=f"known tags: {', '.join(tags) or '(none)'}; or give a local checkpoint path")
    hub = cfg.get("hf_hub", "")
    if not hub:
        return W.url_file(cfg["url"], Path(cfg["url"]).name, model=desc, search_dirs=[cache_dir or W.torch_hub_checkpoints()],
                          download_dir=cache_dir or W.torch_hub_checkpoints(), offline=offline), cfg
    repo, filename = hub.rstrip("/"), None
    if not hub.endswith("/"):
        repo, filename = hub.rsplit("/", 1)
    candidates = [filename] if filename else ["open_clip_model.safetensors", "open_clip_pytorch_model.bin"]
    last: Exception | None = None
    for name in candidates:
        try:
            return W.hub_file(repo, name, model=desc, cache_dir=cache_dir, offline=offline), cfg
        except Exception as exc:  # try the next file name
            last = exc
    raise last  # type: ignore[misc]


def load(model: str, pretrained: str, *, cache_dir: str | None, device: str, offline: bool) -> OpenClipModel:
    path, cfg = resolve(model, pretrained, cache_dir=cache_dir, offline=offline)

    def build() -> OpenClipModel:
        import open_clip

        if cfg.get("folder"):
            name = f"local-dir:{path}"
            net, _, preprocess = open_clip.create_model_and_transforms(name, device=device)
            return OpenClipModel(net.eval(), preprocess, open_clip.get_tokenizer(name), W.identity(path))
        kwargs: dict[str, Any] = {}
        if cfg:
            kwargs = {"force_quick_gelu": bool(cfg.get("quick_gelu", False)), "image_mean": cfg.get("mean"),
                      "image_std": cfg.get("std"), "image_interpolation": cfg.get("interpolation"),
                      "image_resize_mode": cfg.get("resize_mode")}
        net, _, preprocess = open_clip.create_model_and_transforms(model, pretrained=str(path), device=device, **kwargs)
        net.eval()
        return OpenClipModel(net, preprocess, open_clip.get_tokenizer(model), W.identity(path))

    return cached_model(("open_clip", model, str(path), device), build)


def encode(bundle: OpenClipModel, images: list, texts: list[str] | None, device: str):
    """L2-normalized image (and text) embeddings as float64 numpy arrays."""
    import torch

    with torch.no_grad():
        x = torch.stack([bundle.preprocess(im) for im in images]).to(device)
        img = bundle.model.encode_image(x).float()
        img = img / img.norm(dim=-1, keepdim=True)
        txt = None
        if texts is not None:
            t = bundle.model.encode_text(bundle.tokenizer(texts).to(device)).float()
            txt = (t / t.norm(dim=-1, keepdim=True)).double().cpu().numpy()
    return img.double().cpu().numpy(), txt


def load_random(model: str, pretrained: str | None, *, device: str) -> OpenClipModel:
    """run --random-weights: the architecture `model` with random weights, with the tag's
    conventions (QuickGELU, mean/std, resize) when `pretrained` is a known tag; open_clip's own
    bundled tokenizer."""
    def build() -> OpenClipModel:
        import open_clip

        cfg = open_clip.get_pretrained_cfg(model, pretrained) if pretrained and not is_local(pretrained) else {}
        kwargs: dict[str, Any] = {}
        if cfg:
            kwargs = {"force_quick_gelu": bool(cfg.get("quick_gelu", False)), "image_mean": cfg.get("mean"),
                      "image_std": cfg.get("std"), "image_interpolation": cfg.get("interpolation"),
                      "image_resize_mode": cfg.get("resize_mode")}
        with rw.seeded("open_clip", model):
            net, _, preprocess = open_clip.create_model_and_transforms(model, pretrained=None, device=device, **kwargs)
        return OpenClipModel(net.eval(), preprocess, open_clip.get_tokenizer(model), f"random-init:{model}")

    return cached_model(("open_clip", model, "random-init", pretrained, device), build)
