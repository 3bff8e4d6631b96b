"""CLIPScore with open_clip, in one of three published conventions (a parameter, recorded):

    hessel       2.5 · max(cos, 0), captions prefixed "A photo depicts " (Hessel et al. 2021;
                 their reference model is ViT-B/32). GAN-RM's 0.698 fits this form.
    torchmetrics max(100 · cos, 0) (torchmetrics' default model is openai ViT-L/14)
    cosine       raw cosine similarity
"""

from __future__ import annotations

from importlib.metadata import version
from typing import Any, ClassVar, Literal, Sequence

import numpy as np
from pydantic import Field

from ganrm_bench.harness.plugins.base import PluginParams
from ganrm_bench.harness.runtime import random_weights as rw
from ganrm_bench.harness.store.assets import openclip_tag_asset
from ganrm_bench.harness.store.hub import is_local
from ganrm_bench.harness.store.offline import is_offline
from ganrm_bench.metrics import openclip_models as oc
from ganrm_bench.metrics import weights as W
from ganrm_bench.metrics.base import MetricScorer, PerSampleMetric, PerSampleParams
from ganrm_bench.metrics.estimate import openclip_image_cost
from ganrm_bench.metrics.media import as_pil

HESSEL_PREFIX = "A photo depicts "


class CLIPScoreModel(PluginParams):
    model: str = "ViT-B-32"
    pretrained: str = "openai"  # open_clip tag or local checkpoint file
    cache_dir: str | None = None
    convention: Literal["hessel", "torchmetrics", "cosine"] = "hessel"
    prefix: str | None = None  # caption prefix; None = the convention's own ("A photo depicts " for hessel)
    batch_size: int = Field(32, ge=1)


def apply_convention(cos: np.ndarray, convention: str) -> np.ndarray:
    if convention == "hessel":
        return 2.5 * np.maximum(cos, 0.0)
    if convention == "torchmetrics":
        return np.maximum(100.0 * cos, 0.0)
    return cos


class CLIPScore(PerSampleMetric):
    """CLIPScore (open_clip) in the hessel, torchmetrics or cosine convention; higher is better."""

    name: ClassVar[str] = "clip_score"
    version: ClassVar[str] = "1"

    class Params(CLIPScoreModel, PerSampleParams):
        pass

    @property
    def prefix(self) -> str:
        if self.params.prefix is not None:
            return self.params.prefix
        return HESSEL_PREFIX if self.params.convention == "hessel" else ""

    def estimate_unit(self, ctx=None):
        """plan --estimate: the CLIP image tower per image (text tower not timed)."""
        return openclip_image_cost(self.params.model, ctx)

    def convention(self) -> str:
        form = {"hessel": "2.5·max(cos,0)", "torchmetrics": "max(100·cos,0)", "cosine": "cos"}[self.params.convention]
        return (f"clip_score: {self.params.convention} {form}, open_clip {version('open_clip_torch')} "
                f"{self.params.model}/{self.params.pretrained}, prefix {self.prefix!r}")

    def _bundle(self, ctx: Any) -> oc.OpenClipModel:
        p = self.params
        if rw.active():
            return oc.load_random(p.model, p.pretrained, device=getattr(ctx, "device", "cpu"))
        return oc.load(p.model, p.pretrained, cache_dir=p.cache_dir, device=getattr(ctx, "device", "cpu"),
                       offline=is_offline(ctx))

    def assets(self) -> list:
        """The open_clip weights of (model, pretrained) (harness.store.assets)."""
        p = self.params
        return [openclip_tag_asset(p.model, p.pretrained, cache_dir=p.cache_dir, url_dir=p.cache_dir or W.torch_hub_checkpoints(),
                                   what=f"open_clip {p.model}/{p.pretrained} for CLIPScore", looks_local=is_local)]

    def weights_identity(self, ctx: Any = None) -> dict[str, str]:
        p = self.params
        if rw.active():
            return {"clip": rw.identity(f"open_clip {p.model} ({p.pretrained} conventions)")}
        path, _ = oc.resolve(p.model, p.pretrained, cache_dir=p.cache_dir, offline=is_offline(ctx))
        return {"clip": W.identity(path, ctx)}

    def cosines(self, images: Sequence[Any], prompts: Sequence[str], ctx: Any) -> np.ndarray:
        bundle = self._bundle(ctx)
        img, txt = oc.encode(bundle, [as_pil(im, metric=self.name) for im in images],
                             [self.prefix + p for p in prompts], getattr(ctx, "device", "cpu"))
        return (img * txt).sum(axis=1)

    def score_batch(self, images: Sequence[Any], prompts: Sequence[str], ctx: Any) -> np.ndarray:
        return apply_convention(self.cosines(images, prompts, ctx), self.params.convention)


class CLIPScoreScorer(MetricScorer):
    """CLIPScore as a selector (same model and convention params as the clip_score metric)."""

    name: ClassVar[str] = "clip_score"
    metric_cls = CLIPScore
    Params = CLIPScoreModel
