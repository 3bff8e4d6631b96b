"""Toy plugins for the reward-model monitor: a proxy scorer that rewards brightness (trained on
bright PPD images, with a held-out split and a report card), a generator whose "fine-tuned"
variant is brighter and flatter, a held-out contrast metric, a diversity metric, a metric
that is the same model as a pretrained selector (not held-out), and two lower-is-better held-out
metrics (one the fine-tune worsens, one it improves)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from ganrm_bench.harness.plugins.base import Generator, Metric, MetricResult, PluginParams, Scorer, TrainableScorer
from ganrm_bench.harness.plugins.registry import GENERATORS, METRICS, SCORERS


def _mean(im) -> float:
    return float(np.asarray(im, dtype=float).mean())


@GENERATORS.register("mon_gen")
class MonGen(Generator):
    """128 + brightness + contrast·U(-100, 100) per pixel, seeded per request."""

    class Params(PluginParams):
        brightness: float = -28.0
        contrast: float = 1.0

    def generate(self, requests, ctx):
        out = []
        for r in requests:
            noise = np.random.default_rng(r.seed).integers(0, 200, size=(8, 8, 3)) - 100
            out.append(Image.fromarray(np.clip(128 + self.params.brightness + self.params.contrast * noise, 0, 255).astype(np.uint8)))
        return out


@SCORERS.register("mon_rm")
class MonRM(TrainableScorer):
    """Proxy reward = mean brightness / 255; 'training' holds out the last quarter of each class."""

    def fit(self, positives, negatives, ctx, *, unlabeled=None):
        pos, neg = positives.load(), negatives.load()
        hp, hn = len(pos) // 4, len(neg) // 4
        held = [_mean(im) / 255 for im in pos[len(pos) - hp:]] + [_mean(im) / 255 for im in neg[len(neg) - hn:]]
        self.heldout = {"scores": held, "labels": [1] * hp + [0] * hn}
        return {"n_pos": len(pos), "n_neg": len(neg)}

    def score(self, images, prompts, ctx):
        return np.array([_mean(im) / 255 for im in images])

    def save(self, directory):
        import json

        (Path(directory) / "heldout.json").write_text(json.dumps(self.heldout))

    def load_state(self, directory):
        import json

        self.heldout = json.loads((Path(directory) / "heldout.json").read_text())

    def report_card(self):
        from ganrm_bench.harness.diagnostics.scorecard import classifier_card

        return {"n_ppd": sum(self.heldout["labels"]) * 4, **classifier_card(self.heldout["scores"], self.heldout["labels"])}


IDENTITY = {"weights": {"bright": "w1"}, "convention": "mean brightness / 255"}


@SCORERS.register("mon_bright")
class MonBrightScorer(Scorer):
    """A pretrained selector: mean brightness / 255 (the same model as metric mon_bright)."""

    def score(self, images, prompts, ctx):
        return np.array([_mean(im) / 255 for im in images])

    def fingerprint(self):
        return {**super().fingerprint(), **IDENTITY}


class _PerSample(Metric):
    def value(self, im) -> float:
        raise NotImplementedError

    def compute(self, samples, ctx, *, reference=None):
        v = np.array([self.value(im) for im in samples.load()])
        half = 1.96 * v.std(ddof=1) / np.sqrt(len(v))
        return MetricResult(float(v.mean()), float(v.mean() - half), float(v.mean() + half), len(v), self.name, per_sample=v)


@METRICS.register("mon_contrast")
class MonContrast(_PerSample):
    """Pixel standard deviation (the held-out quality metric)."""

    def value(self, im):
        return float(np.asarray(im, dtype=float).std())


@METRICS.register("mon_texture")
class MonTexture(_PerSample):
    """Mean absolute deviation of pixels from the image mean; declares itself a diversity metric."""

    diversity = True

    def value(self, im):
        a = np.asarray(im, dtype=float)
        return float(np.abs(a - a.mean()).mean())


@METRICS.register("mon_bright")
class MonBrightMetric(_PerSample):
    """Mean brightness / 255: the same model as the mon_bright selector."""

    def value(self, im):
        return _mean(im) / 255

    def fingerprint(self):
        return {**super().fingerprint(), **IDENTITY}


@METRICS.register("mon_flatness")
class MonFlatness(_PerSample):
    """255 − pixel standard deviation: a lower-is-better held-out column (as FID and KID are) that a
    flatter "fine-tuned" generator makes worse."""

    direction = "lower"

    def value(self, im):
        return 255.0 - float(np.asarray(im, dtype=float).std())


@METRICS.register("mon_darkness")
class MonDarkness(_PerSample):
    """1 − mean brightness / 255: a lower-is-better held-out column that a brighter generator improves."""

    direction = "lower"

    def value(self, im):
        return 1.0 - _mean(im) / 255
