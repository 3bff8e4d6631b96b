"""A trivial value function for the search tests: mean brightness (higher is better)."""

import numpy as np

from ganrm_bench.harness.plugins.base import Metric, MetricResult, Scorer
from ganrm_bench.harness.plugins.registry import METRICS, SCORERS


@SCORERS.register("test_brightness")
class Brightness(Scorer):
    """Mean pixel value in [0, 255]."""

    def score(self, images, prompts, ctx):
        return np.array([np.asarray(im, dtype=np.float64).mean() for im in images])


@METRICS.register("test_brightness_metric")
class BrightnessMetric(Metric):
    """Mean brightness of the samples, per sample kept (so rows can be compared per prompt)."""

    def compute(self, samples, ctx, *, reference=None):
        v = np.array([np.asarray(im, dtype=np.float64).mean() for im in samples.load()])
        return MetricResult(float(v.mean()), n=len(v), convention="mean pixel", per_sample=v)
