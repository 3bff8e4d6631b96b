"""PickScore: transformers CLIPModel `yuvalkirstain/PickScore_v1` with the ViT-H-14 processor.

score = exp(logit_scale) · cos(image, prompt)  (≈ 20 for SD1.5 images). Some code (DiffusionDPO's
helper) returns the raw cosine instead — a factor ~100 apart; the convention string says which.
"""

from __future__ import annotations

import json
from importlib.metadata import version
from pathlib import Path
from typing import Any, ClassVar, Sequence

import numpy as np
from pydantic import Field

from ganrm_bench.harness.plugins.base import PluginParams
from ganrm_bench.harness.runtime import random_weights as rw
from ganrm_bench.harness.runtime.clip_bpe import clip_tokenizer
from ganrm_bench.harness.store.assets import ref_asset
from ganrm_bench.harness.store.hub import is_local
from ganrm_bench.harness.store.offline import is_offline
from ganrm_bench.metrics import weights as W
from ganrm_bench.metrics.base import MetricScorer, PerSampleMetric, PerSampleParams, cached_model
from ganrm_bench.metrics.estimate import openclip_image_cost
from ganrm_bench.metrics.media import as_pil


class PickScoreModel(PluginParams):
    model: str = "yuvalkirstain/PickScore_v1"  # hub id or local directory
    processor: str = "laion/CLIP-ViT-H-14-laion2B-s32B-b79K"  # hub id or local directory
    cache_dir: str | None = None
    batch_size: int = Field(16, ge=1)


class PickScore(PerSampleMetric):
    """PickScore v1: exp(logit_scale)·cos between image and prompt (transformers CLIP); higher is better."""

    name: ClassVar[str] = "pickscore"
    version: ClassVar[str] = "1"

    class Params(PickScoreModel, PerSampleParams):
        pass

    def estimate_unit(self, ctx=None):
        """plan --estimate: PickScore is CLIP ViT-H/14: its image tower per image (text tower not timed)."""
        return openclip_image_cost("ViT-H-14", ctx)

    def convention(self) -> str:
        return (f"pickscore: exp(logit_scale)·cos, transformers {version('transformers')} CLIPModel "
                f"{self.params.model}, processor {self.params.processor}")

    def _dirs(self, ctx: Any):
        p, offline = self.params, is_offline(ctx)
        model_dir = W.model_dir(p.model, model=f"PickScore model {p.model}", cache_dir=p.cache_dir, offline=offline)
        proc_dir = W.model_dir(p.processor, model=f"PickScore processor {p.processor}", cache_dir=p.cache_dir,
                               offline=offline, allow_patterns=["*.json", "*.txt"])  # not the 4 GB weights
        return model_dir, proc_dir

    def assets(self) -> list:
        """The PickScore CLIP model and the processor files of its base (harness.store.assets)."""
        p = self.params
        return [ref_asset(p.model, looks_local=is_local, files=("config.json",), cache_dir=p.cache_dir,
                          what="PickScore_v1 model", patterns=("*.json", "*.txt", "model.safetensors", "pytorch_model.bin")),
                ref_asset(p.processor, looks_local=is_local, files=("preprocessor_config.json",), cache_dir=p.cache_dir,
                          what="PickScore processor", patterns=("*.json", "*.txt"))]

    def weights_identity(self, ctx: Any = None) -> dict[str, str]:
        if rw.active():  # run --random-weights: CLIP ViT-H/14 from the shipped config
            return {"model": rw.identity("clip_vit_h14 (metrics/configs)"), "processor": "CLIP BPE (open_clip's vocab), 224 px"}
        model_dir, proc_dir = self._dirs(ctx)
        return {"model": W.identity(model_dir, ctx), "processor": W.identity(proc_dir, ctx)}

    def _load(self, ctx: Any):
        device = getattr(ctx, "device", "cpu")
        if rw.active():
            return cached_model(("pickscore", "random-init", device), lambda: _random_clip(device))
        model_dir, proc_dir = self._dirs(ctx)

        def build():
            from transformers import AutoProcessor, CLIPModel

            processor = AutoProcessor.from_pretrained(str(proc_dir), local_files_only=True)
            model = CLIPModel.from_pretrained(str(model_dir), local_files_only=True).eval().to(device)
            return model, processor

        return cached_model(("pickscore", str(model_dir), str(proc_dir), device), build)

    def score_batch(self, images: Sequence[Any], prompts: Sequence[str], ctx: Any) -> np.ndarray:
        import torch

        model, processor = self._load(ctx)
        device = getattr(ctx, "device", "cpu")
        pil = [as_pil(im, metric=self.name) for im in images]
        with torch.no_grad():
            image_inputs = processor(images=pil, return_tensors="pt").to(device)
            text_inputs = processor(text=list(prompts), padding=True, truncation=True, max_length=77,
                                    return_tensors="pt").to(device)
            img = model.get_image_features(**image_inputs)
            txt = model.get_text_features(**text_inputs)
            img = img / img.norm(dim=-1, keepdim=True)
            txt = txt / txt.norm(dim=-1, keepdim=True)
            scores = model.logit_scale.exp() * (img * txt).sum(dim=-1)
        return scores.double().cpu().numpy()


def _random_clip(device: str):
    """run --random-weights: PickScore's CLIP ViT-H/14 (transformers CLIPModel of the shipped
    config) with random weights, and a processor of CLIP's image transform and BPE tokenizer."""
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor


    cfg = json.loads((Path(__file__).parent / "configs" / "clip_vit_h14.json").read_text())
    cfg = {k: v for k, v in cfg.items() if not k.startswith("_")}
    with rw.seeded("pickscore", "clip_vit_h14"):
        model = CLIPModel(CLIPConfig(**cfg)).eval().to(device)
    image = CLIPImageProcessor(size={"shortest_edge": 224}, crop_size={"height": 224, "width": 224})  # CLIP's mean/std by default
    return model, CLIPProcessor(image_processor=image, tokenizer=clip_tokenizer(pad_token="!"))


class PickScoreScorer(MetricScorer):
    """PickScore as a selector: exp(logit_scale)·cos with yuvalkirstain/PickScore_v1."""

    name: ClassVar[str] = "pickscore"
    metric_cls = PickScore
    Params = PickScoreModel
