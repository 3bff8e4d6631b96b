"""Plugins for the search tests: a trivial value function (mean brightness, higher is better), and a
scripted particle generator with its scorer, whose rewards are a table, so SMC's ancestors and
choices can be worked out by hand."""

from typing import ClassVar

import numpy as np
from PIL import Image

from ganrm_bench.harness.plugins.base import Generator, Metric, MetricResult, PluginParams, Scorer
from ganrm_bench.harness.plugins.registry import GENERATORS, METRICS, SCORERS


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


FINAL = 255  # the step code of a finished particle


def _code(step: int, index: int) -> Image.Image:
    """A 2×1 grey image holding (step, index): what the scripted scorer reads back."""
    return Image.fromarray(np.array([[step, index]], dtype=np.uint8), mode="L")


@GENERATORS.register("scripted_particles")
class ScriptedParticles(Generator):
    """SMC's particle hooks without a network: at a resample step i the x̂0 of the particle in row j
    (of the chunk) is the code (i, j); a finished particle is (FINAL, its lineage: the row it descends
    from through every resampling). Every `on_x0` answer is logged in `LOG` as (prompt ids of the
    rows, step, ancestors)."""

    LOG: ClassVar[list[tuple[tuple[str, ...], int, list[int]]]] = []

    class Params(PluginParams):
        steps: int = 3
        batch_size: int = 6

    def nfe_per_sample(self):
        return self.params.steps

    def generate(self, requests, ctx):
        return self.denoise_particles(requests, self.initial_noise(requests), ctx, at=[], on_x0=None)

    def initial_noise(self, requests):
        return np.arange(len(requests))

    def denoise_particles(self, requests, noise, ctx, *, at, on_x0, eta=0.0):
        lineage = list(range(len(requests)))
        for step in range(self.params.steps):
            if step in at:
                ancestors = on_x0(step, [_code(step, j) for j in range(len(requests))])
                if ancestors is not None:
                    ScriptedParticles.LOG.append((tuple(r.prompt.id for r in requests), step, list(ancestors)))
                    lineage = [lineage[a] for a in ancestors]
        return [_code(FINAL, lin) for lin in lineage]


@SCORERS.register("scripted_reward")
class ScriptedReward(Scorer):
    """Reads the scripted generator's codes: x̂0 of row j at step i scores `x0[i][j mod K]` (its row
    within its prompt's K particles); a finished particle of lineage l scores `final[l mod K]`."""

    class Params(PluginParams):
        x0: list[list[float]]
        final: list[float]

    def score(self, images, prompts, ctx):
        k = len(self.params.final)
        out = []
        for im in images:
            step, index = (int(v) for v in np.asarray(im.convert("L")).reshape(-1)[:2])  # items load as RGB
            out.append(self.params.final[index % k] if step == FINAL else self.params.x0[step][index % k])
        return np.array(out, dtype=np.float64)
