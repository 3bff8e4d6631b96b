"""Metrics `mini_alignment` and `mini_diversity`: the mini world's CLIPScore and LPIPS analogues,
both read through the metric network (never the RM backbone, never the annotator)."""

from __future__ import annotations

from typing import Any, ClassVar, Sequence

import numpy as np
from pydantic import Field

from ganrm_bench.harness.errors import UserError
from ganrm_bench.harness.plugins.base import ItemSet
from ganrm_bench.metrics.base import MetricScorer, PerSampleMetric, PerSampleParams, batch_size_for, cached_model
from ganrm_bench.metrics.estimate import call_cost, probe_images
from ganrm_bench.mini.common import parse_digit
from ganrm_bench.mini.features import MiniDigitsFeatures


class MiniMetricParams(PerSampleParams):
    weights: str | None = Field(None, description="metric network safetensors; default: the shipped file")
    device: str = "auto"
    batch_size: int = Field(256, ge=1)


class _MetricNetMetric(PerSampleMetric):
    Params = MiniMetricParams
    runtime_fields: ClassVar[frozenset[str]] = frozenset({"ci", "batch_size", "device", "weights"})

    def net(self) -> MiniDigitsFeatures:
        p = self.params
        ext = MiniDigitsFeatures(weights=p.weights, device=p.device, batch_size=p.batch_size)
        return cached_model(("mini_digits", ext.fingerprint()["weights_sha256"], p.device), lambda: ext)

    def weights_identity(self, ctx: Any = None) -> dict[str, str]:
        return {"metric_net": self.net().fingerprint()["weights_sha256"]}

    def estimate_unit(self, ctx: Any = None):
        """plan --estimate: the metric net on a batch of probe images, per image."""
        n = min(self.params.batch_size, 256)
        images, prompts = probe_images(n), ["a handwritten digit 3"] * n
        return call_cost(lambda: self.score_batch(images, prompts, ctx), n, ctx, unit="image",
                         note=f"mini metric net, batch {n}", key=("mini_metric", self.name))

    def fingerprint(self, ctx: Any = None) -> dict[str, Any]:
        fp = super().fingerprint(ctx)
        for key in ("weights", "device"):  # the digest stands for the file
            fp["params"].pop(key, None)
        return fp


class MiniAlignment(_MetricNetMetric):
    """Mini world: probability that the metric classifier reads the prompted digit (higher is better)."""

    name: ClassVar[str] = "mini_alignment"
    version: ClassVar[str] = "1"
    direction: ClassVar[str] = "higher"

    def convention(self) -> str:
        return f"mini_alignment: softmax P(prompted digit) of the mini metric net {self.weights_identity()['metric_net'][:12]}"

    def score_batch(self, images: Sequence[Any], prompts: Sequence[str | None], ctx: Any) -> np.ndarray:
        labels = np.array([parse_digit(p) for p in prompts])
        probs = self.net().probabilities(list(images))
        return probs[np.arange(len(labels)), labels].astype(np.float64)


class MiniAlignmentScorer(MetricScorer):
    """Mini world: alignment as a selector (CLIPScore-as-RM@K): the metric's own network
    and convention, so a column `mini_alignment` judging a row it selected is marked not held-out."""

    name: ClassVar[str] = "mini_alignment"
    metric_cls = MiniAlignment
    Params = MiniMetricParams


class MiniDiversity(_MetricNetMetric):
    """Mini world: mean pairwise L2 distance among a prompt's samples in metric-net feature space (higher is more diverse)."""

    name: ClassVar[str] = "mini_diversity"
    version: ClassVar[str] = "1"
    direction: ClassVar[str] = "higher"
    needs_prompts: ClassVar[bool] = False

    def convention(self) -> str:
        return (f"mini_diversity: mean pairwise L2 over a prompt's samples, 128-d features of the mini metric net "
                f"{self.weights_identity()['metric_net'][:12]}")

    def per_sample_scores(self, samples: ItemSet, ctx: Any) -> np.ndarray:
        """Each sample's mean distance to the other samples of its prompt (so the mean over samples
        is the mean over pairs when every prompt has K samples). Features are cached per item in
        the same namespace as FID's `mini_digits` features."""
        ext = self.net()
        items = list(samples.items)
        feats = ctx.per_item_arrays(
            "features/mini_digits", ext.fingerprint(), items,
            lambda batch: ext.features([it.load() for it in batch], ctx),
            batch_size=batch_size_for(ctx, self.params.batch_size), description=self.name,
        )  # fmt: skip
        index = {it.key: i for i, it in enumerate(items)}
        values = np.full(len(items), np.nan)
        for prompt_id, group in samples.by_prompt().items():
            if len(group) < 2:
                raise UserError(f"metric 'mini_diversity': prompt {prompt_id!r} has {len(group)} sample; "
                                "diversity needs K ≥ 2 samples per prompt")  # fmt: skip
            rows = [index[it.key] for it in group]
            f = feats[rows].astype(np.float64)
            dist = np.sqrt(np.maximum(((f[:, None, :] - f[None, :, :]) ** 2).sum(-1), 0.0))
            values[rows] = dist.sum(1) / (len(rows) - 1)
        return values

    def score_batch(self, images: Sequence[Any], prompts: Sequence[str | None], ctx: Any) -> np.ndarray:
        """Diversity of one group of images (the K samples of one prompt)."""
        if len(images) < 2:
            raise UserError("metric 'mini_diversity': a prompt needs at least 2 samples")
        f = self.net().features(list(images)).astype(np.float64)
        dist = np.sqrt(np.maximum(((f[:, None, :] - f[None, :, :]) ** 2).sum(-1), 0.0))
        return dist.sum(1) / (len(images) - 1)

