"""Test-only plugins for the method graph tests (registered under `mt_*` names): a trainable
brightness reward model, a brightness metric and a folder-free PPD of bright images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from ganrm_bench.harness.plugins.base import Generator, ImageSource, Item, ItemSet, Metric, MetricResult, PluginParams, TrainableScorer
from ganrm_bench.harness.plugins.registry import GENERATORS, IMAGE_SOURCES, METRICS, SCORERS


def brightness(im) -> float:
    return float(np.asarray(im, dtype=np.float64).mean())


@IMAGE_SOURCES.register("mt_bright")
class BrightImages(ImageSource):
    """N uniform bright 16×16 images (the PPD of the tests)."""

    class Params(PluginParams):
        n: int = 6
        level: int = 200

    def load(self, ctx):
        items = []
        for i in range(self.params.n):
            key = f"mtbright{self.params.level:03d}{i:04d}"
            arr = np.full((16, 16, 3), self.params.level, dtype=np.uint8)
            path = ctx.store.put_item(key, "png", lambda p, a=arr: Image.fromarray(a).save(p, format="PNG"))
            items.append(Item(key, str(path)))
        return ItemSet("", tuple(items))


@SCORERS.register("mt_rm")
class BrightnessRM(TrainableScorer):
    """Reward = −|brightness − mean brightness of the positives|; records what it was trained on."""

    def fit(self, positives, negatives, ctx, *, unlabeled=None):
        self.target = float(np.mean([brightness(im) for im in positives.load()]))
        self.negatives_mean = float(np.mean([brightness(im) for im in negatives.load()]))
        return {"target": self.target, "negatives_mean": self.negatives_mean}

    def score(self, images, prompts, ctx):
        return np.array([-abs(brightness(im) - self.target) for im in images])

    def save(self, directory):
        (Path(directory) / "rm.txt").write_text(f"{self.target!r} {self.negatives_mean!r}")

    def load_state(self, directory):
        a, b = (Path(directory) / "rm.txt").read_text().split()
        self.target, self.negatives_mean = float(a), float(b)


@METRICS.register("mt_brightness")
class MeanBrightness(Metric):
    """Mean pixel value of the samples."""

    def compute(self, samples, ctx, *, reference=None):
        v = np.array([brightness(im) for im in samples.load()])
        return MetricResult(float(v.mean()), n=len(v), convention="mean pixel", per_sample=v)


@GENERATORS.register("mt_frames_only")
class FramesOnly(Generator):
    """A video generator without a fine-tuning adapter: grey frames whose level is the seed's."""

    modality = "video"

    def generate(self, requests, ctx):
        return [np.full((2, 16, 16, 3), int(r.seed) % 256, np.uint8) for r in requests]
