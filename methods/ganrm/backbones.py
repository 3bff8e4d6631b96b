"""Frozen vision backbones for GAN-RM: open_clip CLIP-Vision tokens, a per-frame video wrapper,
and the ViCLIP slot (not packaged).

A backbone turns images into token sequences [B, L, D] with token 0 a summary (CLS) token;
GAN-RM pools CLS ⊕ mean and caches that vector per image (see features.py).
"""

from __future__ import annotations

import logging
import os
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal, Sequence

import numpy as np

from ganrm_bench.harness.errors import UserError
from ganrm_bench.harness.plugins.base import Backbone, PluginParams, PluginRef
from ganrm_bench.harness.plugins.builtins import register_builtins
from ganrm_bench.harness.plugins.fingerprint import plugin_fingerprint
from ganrm_bench.harness.plugins.registry import REGISTRIES
from ganrm_bench.harness.runtime import random_weights
from ganrm_bench.harness.runtime.devices import resolve_device
from ganrm_bench.harness.runtime.prefetch import prepared
from ganrm_bench.harness.store.assets import hub_asset, local_asset, plugin_assets, url_asset
from ganrm_bench.harness.store.digests import weights_digest
from ganrm_bench.methods.ganrm.weights import _hub_candidates, resolve_open_clip_weights, tag_config

log = logging.getLogger(__name__)

CONFIG_DIR = Path(__file__).parent / "configs"
#: tiny random-init configs shipped for tests and smoke runs (registered with open_clip on use)
PACKAGED_CONFIGS = tuple(sorted(p.stem for p in CONFIG_DIR.glob("*.json")))


@lru_cache(maxsize=None)
def register_packaged_configs() -> None:
    import open_clip

    open_clip.add_model_config(CONFIG_DIR)






def to_pil(image: Any):
    """PIL RGB from a PIL image or an H×W×3 uint8 array; a clear error for anything else."""
    from PIL import Image

    if isinstance(image, Image.Image):
        return image.convert("RGB")
    if isinstance(image, np.ndarray):
        if image.ndim == 4:
            raise UserError(
                f"an image backbone got a video (array of shape {image.shape})",
                hint="use backbone 'video_frames' (per-frame tokens averaged) for videos",
            )
        if image.ndim == 3 and image.shape[-1] in (3, 4) or image.ndim == 2:
            return Image.fromarray(np.ascontiguousarray(image).astype(np.uint8)).convert("RGB")
    raise UserError(f"cannot read {type(image).__name__} as an image (expected a PIL image or an H×W×3 uint8 array)")


class OpenClipBackbone(Backbone):
    """open_clip CLIP-Vision tokens before projection (ViT-B-32 openai: 50×768), frozen."""

    version = "1"

    class Params(PluginParams):
        model: str = "ViT-B-32"  # any open_clip model name, or "local-dir:/path" / a packaged tiny config
        pretrained: str | None = "openai"  # a tag of `model`, a weights file, or None for random init
        checkpoint: str | None = None  # a local weights file, loaded with the conventions of `pretrained`'s tag
        cache_dir: str | None = None  # where hub/url downloads are looked up (HF_HOME / ~/.cache/clip by default)
        image_size: int | None = None  # force another input size (positional embeddings must fit)
        precision: Literal["fp32", "bf16", "fp16"] = "fp32"
        device: str = "auto"
        batch_size: int = 32
        download: bool = False  # fetch absent weights from the hub (only where it is reachable)
        init_seed: int = 0  # the torch seed of a random init (pretrained None)

    def __init__(self, params=None, **kwargs):
        super().__init__(params, **kwargs)
        self._visual = None
        self._preprocess = None
        self._weights: str | None | bool = False  # False = not resolved yet

    # -- identity --------------------------------------------------------------------------------
    def weights_path(self) -> str | None:
        """The local weights file (None for random init or a local-dir model). Raises
        MissingWeightsError within seconds when the weights are not on this machine."""
        if self._weights is False:
            p = self.params

            if random_weights.active() and not p.model.startswith(("local-dir:", "hf-hub:")):
                self._weights = None  # run --random-weights: the architecture, random init (init_seed), the tag's conventions
            elif p.checkpoint is not None:
                if not os.path.isfile(p.checkpoint):
                    raise UserError(f"openclip backbone: checkpoint file {p.checkpoint!r} does not exist")
                self._weights = p.checkpoint
            else:
                register_packaged_configs()
                self._weights = resolve_open_clip_weights(p.model, p.pretrained, cache_dir=p.cache_dir, download=p.download)
        return self._weights  # type: ignore[return-value]

    def fingerprint(self, ctx: Any = None) -> dict[str, Any]:
        import open_clip
        import torch

        p = self.params
        weights = self.weights_path()
        if p.model.startswith("local-dir:"):
            model, digest = "local-dir", weights_digest(p.model.split(":", 1)[1], ctx)
        elif weights is not None:
            model, digest = p.model, weights_digest(weights, ctx)
        else:
            model, digest = p.model, f"random-init:seed={p.init_seed}:torch={torch.__version__}"
        tag = p.pretrained if p.pretrained and tag_config(p.model, p.pretrained) else None
        return {
            "plugin": self.name or "openclip",
            "version": self.version,
            "model": model,
            "tag": tag,  # the tag's conventions (quick_gelu, mean/std, resize) apply
            "weights": digest,
            "image_size": p.image_size,
            "precision": p.precision,
            "tokens": "ln_post(transformer(embeds(x)))",
            "open_clip": open_clip.__version__,
        }

    # -- assets (harness.store.assets) -----------------------------------------------------------------
    def assets(self) -> list:
        """The weights this backbone looks for (tag's hub file or URL file, or local files)."""
        p = self.params
        what = f"open_clip {p.model} ({p.pretrained}) for GAN-RM's backbone"
        if p.checkpoint is not None:
            return [local_asset(p.checkpoint, what=what, how=f"put the weights file at {p.checkpoint}")]
        if p.model.startswith("local-dir:"):
            return [local_asset(p.model.split(":", 1)[1], what=what)]
        if p.model.startswith("hf-hub:"):
            return [hub_asset(p.model[len("hf-hub:"):], ("open_clip_config.json",), cache_dir=p.cache_dir, what=what,
                              patterns=("open_clip_config.json", "open_clip_model.safetensors", "*.txt*", "tokenizer*"))]
        if p.pretrained is None:
            return []
        if os.sep in p.pretrained or p.pretrained.endswith((".pt", ".pth", ".bin", ".safetensors")):
            return [local_asset(p.pretrained, what=what)]
        cfg = tag_config(p.model, p.pretrained)
        candidates = _hub_candidates(cfg)
        if candidates:
            repo, filename = candidates[0]
            return [hub_asset(repo, (filename,), cache_dir=p.cache_dir, what=what)]
        if cfg.get("url"):
            url = cfg["url"]
            return [url_asset(url, Path(p.cache_dir or os.path.expanduser("~/.cache/clip")) / os.path.basename(url), what=what)]
        return []

    # -- model -----------------------------------------------------------------------------------
    def _build(self):
        import open_clip
        import torch


        register_packaged_configs()
        p = self.params
        weights = self.weights_path()
        cfg = tag_config(p.model, p.pretrained) if p.pretrained else {}
        kwargs: dict[str, Any] = {}
        if cfg:
            kwargs = dict(
                force_quick_gelu=bool(cfg.get("quick_gelu", False)),
                image_mean=cfg.get("mean"),
                image_std=cfg.get("std"),
                image_interpolation=cfg.get("interpolation"),
                image_resize_mode=cfg.get("resize_mode"),
            )
        device = resolve_device(p.device)
        quiet = logging.getLogger().level
        try:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(p.init_seed)
                logging.getLogger().setLevel(max(quiet, logging.ERROR))  # open_clip warns on random init
                model, _, preprocess = open_clip.create_model_and_transforms(
                    p.model, pretrained=weights, precision=p.precision, device=device,
                    force_image_size=p.image_size, cache_dir=p.cache_dir, weights_only=True, **kwargs,
                )
        except RuntimeError as exc:
            if "not found in built-ins" in str(exc):
                raise UserError(f"openclip backbone: unknown open_clip model {p.model!r}", hint="`python -c 'import open_clip; print(open_clip.list_models())'` lists them") from exc
            raise UserError(f"openclip backbone: could not load {p.model} weights from {weights}: {exc}") from exc
        finally:
            logging.getLogger().setLevel(quiet)
        visual = model.visual.eval().requires_grad_(False)
        self._visual, self._preprocess, self._device = visual, preprocess, device
        return visual

    @property
    def visual(self):
        return self._visual if self._visual is not None else self._build()

    @property
    def dim(self) -> int:  # type: ignore[override]
        return int(self.visual.ln_post.normalized_shape[0]) if hasattr(self.visual, "ln_post") else int(self.tokens_of_blank().shape[-1])

    def tokens_of_blank(self):
        from PIL import Image

        return self.tokens([Image.new("RGB", (8, 8))], None)

    def prepare(self, image: Any):
        """open_clip's transform of one image (resize, crop, normalize): CPU work a loader worker can do."""
        self.visual  # noqa: B018 - built (in the main process, before workers fork) with its transform
        return self._preprocess(to_pil(image))

    def preprocess(self, images: Sequence[Any]):
        import torch


        visual = self.visual
        return torch.stack([prepared(im, self.prepare) for im in images]).to(self._device, next(visual.parameters()).dtype)

    def forward_tokens(self, x):
        """Pixel tensor [B, 3, H, W] → tokens [B, L, D] after the final LayerNorm, before projection."""
        v = self.visual
        if all(hasattr(v, a) for a in ("_embeds", "transformer", "ln_post")) and getattr(v, "attn_pool", None) is None:
            return v.ln_post(v.transformer(v._embeds(x)))
        try:  # other towers (timm, ConvNeXt...): open_clip's generic intermediate API
            out = v.forward_intermediates(x, indices=1, output_fmt="NLC", output_extra_tokens=True, intermediates_only=True, normalize_intermediates=True)
        except (AttributeError, TypeError, AssertionError) as exc:
            raise UserError(f"openclip backbone: model {self.params.model!r} does not expose token outputs") from exc
        import torch

        tokens = out["image_intermediates"][-1]
        prefix = out.get("image_intermediates_prefix")
        summary = prefix[-1][:, :1] if prefix else tokens.mean(dim=1, keepdim=True)
        return torch.cat([summary, tokens], dim=1)

    def tokens(self, images: Sequence[Any], ctx: Any = None):
        import torch

        if len(images) == 0:
            raise UserError("openclip backbone: no images to encode")
        bs = (getattr(ctx, "batch_size", None) or self.params.batch_size) if ctx is not None else self.params.batch_size
        chunks = []
        with torch.inference_mode():
            for start in range(0, len(images), bs):
                chunks.append(self.forward_tokens(self.preprocess(images[start : start + bs])).float().cpu())
        return torch.cat(chunks)


def build_backbone(name: str, params: dict[str, Any] | None = None) -> Backbone:
    """A backbone plugin by registry name (built-ins registered on first use)."""
    register_builtins()
    return REGISTRIES["backbone"].get(name)(params or {})




class VideoFrameBackbone(Backbone):
    """Per-frame image-backbone tokens averaged over frames (stand-in for ViCLIP on videos)."""

    version = "1"

    class Params(PluginParams):
        image_backbone: Annotated[str, PluginRef("backbone", params="image_backbone_params")] = "openclip"
        image_backbone_params: dict[str, Any] = {}
        frames: int | None = 8  # frames sampled uniformly over the clip; None = every frame

    def __init__(self, params=None, **kwargs):
        super().__init__(params, **kwargs)
        self.inner = build_backbone(self.params.image_backbone, dict(self.params.image_backbone_params))

    @property
    def dim(self) -> int:  # type: ignore[override]
        return self.inner.dim

    def fingerprint(self, ctx: Any = None) -> dict[str, Any]:
        return {
            "plugin": self.name or "video_frames",
            "version": self.version,
            "frames": self.params.frames,
            "frame_pool": "mean of per-frame tokens",
            "image_backbone": plugin_fingerprint(self.inner, ctx),
        }

    def assets(self) -> list:
        """The image backbone's weights."""
        return plugin_assets(self.inner)

    def frame_indices(self, n: int) -> np.ndarray:
        k = self.params.frames
        if k is None or n <= k:
            return np.arange(n)
        return np.linspace(0, n - 1, k).round().astype(int)

    def tokens(self, videos: Sequence[Any], ctx: Any = None):
        import torch

        out = []
        for video in videos:
            frames = video if isinstance(video, np.ndarray) and video.ndim == 4 else np.asarray(to_pil(video))[None]
            if frames.shape[-1] != 3 or frames.shape[0] == 0:
                raise UserError(f"video_frames backbone: expected a T×H×W×3 uint8 video, got shape {frames.shape}")
            picked = [frames[i] for i in self.frame_indices(frames.shape[0])]
            out.append(self.inner.tokens(picked, ctx).mean(dim=0))
        return torch.stack(out)


class ViclipBackbone(Backbone):
    """ViCLIP (InternVid) video tokens, as in the paper's video RM: not packaged, a plugin slot."""

    version = "0"

    class Params(PluginParams):
        checkpoint: str | None = None

    def __init__(self, params=None, **kwargs):
        super().__init__(params, **kwargs)
        raise UserError(
            "backbone 'viclip' is a slot: ViCLIP (InternVid) has no package on PyPI and its weights are not shipped",
            hint="use backbone 'video_frames' (open_clip per-frame tokens averaged over frames: the substitution "
            "documented in methods/ganrm/README.md), or register a ViCLIP implementation of harness.plugins.base.Backbone "
            "under another name through the entry-point group 'ganrm_bench.backbones' and name it in the spec",
        )
