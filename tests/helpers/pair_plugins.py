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
