"""PickScore: exp(logit_scale)·cos with a tiny transformers CLIP saved like the hub repos."""

import math

import numpy as np
import pytest

from ganrm_bench.harness.errors import MissingWeightsError
from ganrm_bench.metrics.pickscore import PickScore, PickScoreScorer
from tests.helpers.metrics_fixtures import random_images, tiny_pickscore

PROMPTS = ["a cat", "a dog on a skateboard", "mountains"]
SCALE = math.log(37.0)  # not CLIP's default 1/0.07, so a missing or wrong scale shows


@pytest.fixture(scope="module")
def dirs(tmp_path_factory):
    return tiny_pickscore(tmp_path_factory.mktemp("pick"), logit_scale=SCALE)


def test_score_is_exp_logit_scale_times_cosine(dirs, ctx, rng):
    import torch
    from PIL import Image
    from transformers import CLIPModel, CLIPProcessor

    model_dir, proc_dir = dirs
    images = random_images(rng, 3, size=40)
    got = PickScore({"model": str(model_dir), "processor": str(proc_dir)}).score_batch(images, PROMPTS, ctx)

    model, proc = CLIPModel.from_pretrained(model_dir), CLIPProcessor.from_pretrained(proc_dir)
    with torch.no_grad():
        img = model.get_image_features(**proc(images=[Image.fromarray(a) for a in images], return_tensors="pt"))
        txt = model.get_text_features(**proc(text=PROMPTS, padding=True, return_tensors="pt"))
    cos = torch.nn.functional.cosine_similarity(img, txt).double().numpy()
    assert np.allclose(got, 37.0 * cos, atol=1e-4)
    assert np.allclose(got / cos, 37.0, rtol=1e-4), "the logit scale is exp(logit_scale) of the checkpoint"


def test_scorer_and_metric_agree(dirs, ctx, rng):
    model_dir, proc_dir = dirs
    images = random_images(rng, 3)
    params = {"model": str(model_dir), "processor": str(proc_dir), "batch_size": 2}
    assert np.allclose(PickScoreScorer(params).score(images, PROMPTS, ctx),
                       PickScore(params).score_batch(images, PROMPTS, ctx), atol=1e-6)
    assert "exp(logit_scale)" in PickScore(params).convention()


def test_missing_hub_model_offline_is_a_clear_error(ctx, tmp_path):
    metric = PickScore({"cache_dir": str(tmp_path / "hub")})
    with pytest.raises(MissingWeightsError) as err:
        metric.fingerprint(ctx)
    assert "yuvalkirstain/PickScore_v1" in str(err.value)
