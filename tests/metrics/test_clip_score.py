"""CLIPScore: each convention against a manual cosine with the same (tiny, random) open_clip model."""

import numpy as np
import pytest

from ganrm_bench.harness.errors import MissingWeightsError
from ganrm_bench.metrics.clip_score import CLIPScore, CLIPScoreScorer
from tests.helpers.metrics_fixtures import random_images, tiny_open_clip

PROMPTS = ["a red cube", "two dogs", "a city at night", "a bowl of soup"]


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory):
    return tiny_open_clip(tmp_path_factory.mktemp("clip"))


def manual_cosines(name, ckpt, images, captions):
    """Cosine of image and caption embeddings, computed directly with open_clip."""
    import open_clip
    import torch
    from PIL import Image

    model, _, preprocess = open_clip.create_model_and_transforms(name, pretrained=str(ckpt))
    tok = open_clip.get_tokenizer(name)
    with torch.no_grad():
        img = model.encode_image(torch.stack([preprocess(Image.fromarray(a)) for a in images]))
        txt = model.encode_text(tok(captions))
    img = img / img.norm(dim=-1, keepdim=True)
    txt = txt / txt.norm(dim=-1, keepdim=True)
    return (img * txt).sum(-1).double().numpy()


@pytest.mark.parametrize("convention", ["hessel", "torchmetrics", "cosine"])
def test_each_convention_matches_manual_cosine(tiny_clip, ctx, rng, convention):
    name, ckpt = tiny_clip
    images = random_images(rng, 4)
    prefix = "A photo depicts " if convention == "hessel" else ""
    cos = manual_cosines(name, ckpt, images, [prefix + p for p in PROMPTS])
    expected = {"hessel": 2.5 * np.maximum(cos, 0), "torchmetrics": np.maximum(100 * cos, 0), "cosine": cos}[convention]
    metric = CLIPScore({"model": name, "pretrained": str(ckpt), "convention": convention})
    got = metric.score_batch(images, PROMPTS, ctx)
    assert np.allclose(got, expected, atol=1e-5)
    assert convention in metric.convention()


def test_negative_cosines_are_clipped_only_in_clipped_conventions(tiny_clip, ctx, rng):
    name, ckpt = tiny_clip
    images = random_images(rng, 4)
    raw = CLIPScore({"model": name, "pretrained": str(ckpt), "convention": "cosine", "prefix": "A photo depicts "})
    cos = raw.score_batch(images, PROMPTS, ctx)
    hessel = CLIPScore({"model": name, "pretrained": str(ckpt)}).score_batch(images, PROMPTS, ctx)
    assert np.allclose(hessel, 2.5 * np.clip(cos, 0, None), atol=1e-6)


def test_scorer_adapter_gives_the_metric_scores(tiny_clip, ctx, rng, write_items):
    name, ckpt = tiny_clip
    images = random_images(rng, 4)
    params = {"model": name, "pretrained": str(ckpt), "convention": "torchmetrics"}
    scorer = CLIPScoreScorer(params)
    metric = CLIPScore(params)
    assert np.allclose(scorer.score(images, PROMPTS, ctx), metric.score_batch(images, PROMPTS, ctx))
    samples = write_items(images, prompts=PROMPTS, prompt_ids=["a", "a", "b", "b"])
    result = metric.compute(samples, ctx)
    assert result.value == pytest.approx(metric.score_batch(images, PROMPTS, ctx).mean(), abs=1e-5)
    fp = scorer.fingerprint(ctx)
    assert fp["weights"]["clip"].startswith("sha256:")


def test_missing_openclip_weights_offline_is_a_clear_error(ctx):
    with pytest.raises(MissingWeightsError) as err:
        CLIPScore({"model": "ViT-B-32", "pretrained": "openai", "cache_dir": "/nonexistent-cache"}).fingerprint(ctx)
    assert "ViT-B-32" in str(err.value) and "huggingface-cli download" in str(err.value)


def test_local_dir_model_folder_gives_the_same_scores(tiny_clip, ctx, rng, tmp_path):
    import json
    import shutil

    from tests.helpers.metrics_fixtures import TINY_CLIP_CFG

    name, ckpt = tiny_clip
    folder = tmp_path / "tiny-folder"
    folder.mkdir()
    shutil.copy(ckpt, folder / "open_clip_model.safetensors")
    (folder / "open_clip_config.json").write_text(json.dumps({"model_cfg": TINY_CLIP_CFG, "preprocess_cfg": {}}))
    images = random_images(rng, 2)
    a = CLIPScore({"model": name, "pretrained": str(ckpt), "convention": "cosine"}).score_batch(images, PROMPTS[:2], ctx)
    b = CLIPScore({"model": f"local-dir:{folder}", "convention": "cosine"}).score_batch(images, PROMPTS[:2], ctx)
    assert np.allclose(a, b, atol=1e-6)
