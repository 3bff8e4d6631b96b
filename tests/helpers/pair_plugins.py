"""Toy scorers for the pair-set tests (tests/methods/test_judge.py): brightness as the stand-in for
people, its opposite, and the toy trainable RM with a report card."""

from __future__ import annotations

import numpy as np

from ganrm_bench.harness.plugins.base import Scorer
from ganrm_bench.harness.plugins.registry import SCORERS
from tests.helpers.toy_plugins import ToyRM


def _brightness(images) -> np.ndarray:
    return np.array([np.asarray(im, dtype=float).mean() for im in images])


@SCORERS.register("toy_brightness")
class ToyBrightnessScorer(Scorer):
    """Mean pixel value (the toy world's "people" prefer brighter images)."""

    def score(self, images, prompts, ctx):
        return _brightness(images)


@SCORERS.register("toy_darkness")
class ToyDarknessScorer(Scorer):
    """Minus the mean pixel value: always disagrees with toy_brightness."""

    def score(self, images, prompts, ctx):
        return -_brightness(images)


@SCORERS.register("toy_card_rm")
class ToyCardRM(ToyRM):
    """The toy RM with a report card (so its card can gain pair-set accuracies)."""

    def report_card(self):
        return {"heldout_auc": 0.5, "n_ppd": 5}


@SCORERS.register("toy_midpoint_rm")
class ToyMidpointRM(ToyCardRM):
    """A toy RM that prefers the negatives' median brightness: it agrees with brightness on some
    pairs only, and on a different share for each seed's training images (training variance)."""

    def fit(self, positives, negatives, ctx, *, unlabeled=None):
        summary = super().fit(positives, negatives, ctx, unlabeled=unlabeled)
        self.target = float(np.median([np.asarray(im, dtype=float).mean() for im in negatives.load()]))
        return {**summary, "target": self.target}
