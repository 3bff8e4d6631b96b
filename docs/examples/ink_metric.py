"""A spec-local plugin: the `ink` metric, the share of dark pixels in a sample (docs/plugins.md)."""

from typing import ClassVar, Sequence

import numpy as np
from pydantic import Field

from ganrm_bench.harness.plugins.registry import METRICS
from ganrm_bench.metrics.base import PerSampleMetric, PerSampleParams


class InkParams(PerSampleParams):  # PerSampleParams brings `ci` (bootstrap over prompts) and `batch_size`
    threshold: int = Field(128, ge=0, le=255)


@METRICS.register("ink")
class Ink(PerSampleMetric):
    """Share of pixels darker than `threshold` (a toy metric for the plugin guide)."""

    name: ClassVar[str] = "ink"
    version: ClassVar[str] = "1"  # bump when the scores change: it is part of every cache key
    direction: ClassVar[str] = "higher"
    needs_prompts: ClassVar[bool] = False
    Params = InkParams

    def convention(self) -> str:  # lands under every table that shows this metric
        return f"share of grey levels < {self.params.threshold} (mean over RGB), bootstrap CI over prompts"

    def score_batch(self, images: Sequence, prompts: Sequence, ctx) -> np.ndarray:
        return np.array([(np.asarray(im, dtype=float).mean(axis=-1) < self.params.threshold).mean() for im in images])
