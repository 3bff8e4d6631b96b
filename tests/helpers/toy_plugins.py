"""Toy plugins for the core's end-to-end tests: seeded 8×8 patterns, a brightness-matching
"reward model", a mean-pixel metric. Each plugin appends a line per unit of work to
$TOY_COUNTER_DIR/<what>.log, so tests count work even across subprocesses."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
from PIL import Image

from ganrm_bench.harness.plugins.base import (
    FeatureExtractor,
    Generator,
    ImageSource,
    Item,
    ItemSet,
    Method,
    Metric,
    MetricResult,
    PluginParams,
    Prompt,
    PromptSource,
    TrainableScorer,
)
from ganrm_bench.harness.plugins.registry import FEATURES, GENERATORS, IMAGE_SOURCES, METHODS, METRICS, PROMPT_SOURCES, SCORERS


def tick(what: str, n: int = 1) -> None:
    d = os.environ.get("TOY_COUNTER_DIR")
    if d:
        with open(Path(d) / f"{what}.log", "a") as f:
            f.write("x\n" * n)


def count(counter_dir: Path, what: str) -> int:
    p = Path(counter_dir) / f"{what}.log"
    return len(p.read_text().splitlines()) if p.exists() else 0


@PROMPT_SOURCES.register("toy_prompts")
class ToyPrompts(PromptSource):
    """N prompts 'pattern i'."""

    class Params(PluginParams):
        n: int = 4
        prefix: str = "p"

    def load(self, ctx):
        return [Prompt(f"{self.params.prefix}{i}", f"pattern {self.params.prefix}{i}") for i in range(self.params.n)]


@IMAGE_SOURCES.register("toy_images")
class ToyImages(ImageSource):
    """N bright 8×8 images written into the store (the toy PPD)."""

    class Params(PluginParams):
        n: int = 5
        level: int = 180

    def load(self, ctx):
        items = []
        for i in range(self.params.n):
            key = f"toyimg{self.params.level:03d}{i:04d}"
            arr = np.full((8, 8, 3), self.params.level, dtype=np.uint8)
            path = ctx.store.put_item(key, "png", lambda p, a=arr: Image.fromarray(a).save(p, format="PNG"))
            items.append(Item(key, str(path)))
        return ItemSet("", tuple(items))


@IMAGE_SOURCES.register("toy_noise_images")
class ToyNoiseImages(ImageSource):
    """N random 8×8 patterns drawn like `toy_pattern`'s (pixels uniform in [0, 200) + brightness): a
    reference set for FID over `toy_rows` features."""

    class Params(PluginParams):
        n: int = 200
        brightness: float = 0.0

    def load(self, ctx):
        items = []
        for i in range(self.params.n):
            key = f"toynoise{self.params.brightness:g}-{i:05d}"
            rng = np.random.default_rng(10_000 + i)
            arr = np.clip(rng.integers(0, 200, size=(8, 8, 3)) + self.params.brightness, 0, 255).astype(np.uint8)
            path = ctx.store.put_item(key, "png", lambda p, a=arr: Image.fromarray(a).save(p, format="PNG"))
            items.append(Item(key, str(path)))
        return ItemSet("", tuple(items))


@FEATURES.register("toy_rows")
class ToyRows(FeatureExtractor):
    """8-d features: each pixel row's mean value / 10 (a brightness shift b moves FID by about 8·(b/10)²)."""

    dim = 8

    def features(self, images, ctx=None):
        return np.stack([np.asarray(im, dtype=np.float64).mean(axis=(1, 2)) / 10.0 for im in images])


@GENERATORS.register("toy_pattern")
class ToyPattern(Generator):
    """Seeded random 8×8 images with a brightness offset."""

    class Params(PluginParams):
        brightness: float = 0.0
        delay: float = 0.0
        batch_size: int = 2
        fail_on_rank: int = -1  # raise on this process (RANK), for the multi-process failure tests

    def generate(self, requests, ctx):
        if int(os.environ.get("RANK", "0")) == self.params.fail_on_rank:
            raise RuntimeError(f"toy generator failed on purpose on rank {self.params.fail_on_rank}")
        out = []
        for r in requests:
            rng = np.random.default_rng(r.seed)
            arr = np.clip(rng.integers(0, 200, size=(8, 8, 3)) + self.params.brightness, 0, 255).astype(np.uint8)
            out.append(Image.fromarray(arr))
            time.sleep(self.params.delay)
        tick("generated", len(requests))
        return out

    def nfe_per_sample(self):
        return 3  # as if three network evaluations made each pattern (compute-accounting tests)


@SCORERS.register("toy_rm")
class ToyRM(TrainableScorer):
    """Scores closeness of mean brightness to the positives' mean."""

    def fit(self, positives, negatives, ctx, *, unlabeled=None):
        tick("trained")
        self.target = float(np.mean([np.asarray(im, dtype=float).mean() for im in positives.load()]))
        return {"target": self.target, "n_pos": len(positives), "n_neg": len(negatives)}

    def score(self, images, prompts, ctx):
        tick("scored", len(images))
        return np.array([-abs(np.asarray(im, dtype=float).mean() - self.target) for im in images])

    def save(self, directory):
        (Path(directory) / "target.txt").write_text(repr(self.target))

    def load_state(self, directory):
        self.target = float((Path(directory) / "target.txt").read_text())


@METRICS.register("toy_brightness")
class ToyBrightness(Metric):
    """Mean pixel value, with a normal-approximation 95% CI."""

    direction = "higher"

    def compute(self, samples, ctx, *, reference=None):
        tick("metric")
        v = np.array([np.asarray(im, dtype=float).mean() for im in samples.load()])
        half = 1.96 * v.std(ddof=1) / np.sqrt(len(v)) if len(v) > 1 else float("nan")
        return MetricResult(float(v.mean()), float(v.mean() - half), float(v.mean() + half), len(v), "toy mean pixel", per_sample=v)


@METHODS.register("toy_base")
class ToyBase(Method):
    """The pool's first sample per prompt."""

    def build(self, b, entry):
        return b.pool(entry.generator, entry.prompts, k=1)


@METHODS.register("toy_best")
class ToyBest(Method):
    """Best of K by the scorer."""

    uses = ("generator", "prompts", "scorer")

    class Params(PluginParams):
        k: int = 4

    def build(self, b, entry):
        pool = b.pool(entry.generator, entry.prompts, k=self.params.k)
        return b.select(pool, b.scores(entry.scorer, pool), "argmax")
