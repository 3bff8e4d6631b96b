"""Metrics under `run --random-weights`: built at full size with random weights and no weights file
looked up (FID's Inception, CLIPScore's open_clip), fingerprints that say so, reproducible builds;
ImageReward says why it cannot be built."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from ganrm_bench.harness.runtime import random_weights as rw
from ganrm_bench.metrics import base
from ganrm_bench.metrics import weights as W


@pytest.fixture
def no_weight_files(monkeypatch):
    def refuse(*a, **k):
        raise AssertionError("a weights file was looked up under --random-weights")

    for name in ("url_file", "hub_file", "hub_snapshot", "local_path", "model_dir"):
        monkeypatch.setattr(W, name, refuse)


def _images(n=2, seed=0):
    rng = np.random.default_rng(seed)
    return [Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)) for _ in range(n)]


def test_inception_random_build(ctx, no_weight_files):
    from ganrm_bench.metrics.inception import InceptionFeatures

    ext = InceptionFeatures({})
    with rw.enabled():
        fp = ext.fingerprint(ctx)
        a = ext.features(_images(), ctx)
        base._MODELS.clear()  # a fresh build gives the same random weights
        b = ext.features(_images(), ctx)
    assert fp["weights"]["random_init"].startswith("pytorch-fid")
    assert a.shape == (2, 2048) and np.array_equal(a, b) and np.isfinite(a).all()
    assert np.abs(a).max() > 0.1 and (a[0] - a[1]).std() > 1e-3  # O(1) features that tell images apart (not ~1e-7)


def test_clip_score_random_build(ctx, no_weight_files):
    from ganrm_bench.metrics.clip_score import CLIPScore

    m = CLIPScore({"model": "ViT-B-32", "pretrained": "openai", "convention": "cosine"})
    with rw.enabled():
        fp = m.fingerprint(ctx)
        s = m.score_batch(_images(), ["a fox", "a lighthouse"], ctx)
    assert "random_init" in fp["weights"]["clip"] and s.shape == (2,) and (np.abs(s) <= 1).all()


def test_image_reward_says_why_it_is_left_out():
    from ganrm_bench.metrics.image_reward import ImageReward

    assert ImageReward({}).random_weights_unavailable() is None  # a real run builds it
    with rw.enabled():
        why = ImageReward({}).random_weights_unavailable()
    assert "vocab.txt" in why and "left out" in why


def _videos(n=2, frames=16, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (frames, 64, 64, 3), dtype=np.uint8) for _ in range(n)]


def test_i3d_random_build(ctx, no_weight_files):
    """Table 3's FVD at real size under --random-weights (it was left out: no I3D weights file)."""
    pytest.importorskip("cdfvd")
    from ganrm_bench.metrics.fvd import I3DFeatures

    ext = I3DFeatures({})
    with rw.enabled():
        fp = ext.fingerprint(ctx)
        a = ext.features(_videos(), ctx)
        base._MODELS.clear()
        b = ext.features(_videos(), ctx)
    assert fp["weights"]["random_init"].startswith("cd-fvd i3d")
    assert a.shape == (2, 400) and np.array_equal(a, b) and np.isfinite(a).all()
    assert (a[0] - a[1]).std() > 1e-3 * np.abs(a).max() > 0  # features that tell clips apart


def test_lpips_random_build(ctx, no_weight_files):
    """Table 3's LPIPS columns under --random-weights: a random AlexNet trunk, lpips's shipped heads."""
    pytest.importorskip("lpips")
    from ganrm_bench.metrics.lpips_metric import LPIPS

    m = LPIPS({"mode": "reference", "net": "alex", "size": 64})
    with rw.enabled():
        ident = m.weights_identity(ctx)
        v = _videos(3, frames=2)
        d = m.distances([(v[0], v[1]), (v[0], v[0]), (v[0], v[2])], ctx)
    assert "random_init" in ident["trunk"]
    assert d.shape == (3,) and d[1] == pytest.approx(0.0, abs=1e-6) and d[0] > 0 and d[2] > 0  # a distance: 0 to itself


def test_vbench_says_why_it_is_left_out():
    from ganrm_bench.metrics.vbench import VBench

    assert VBench({"mode": "custom_input"}).random_weights_unavailable() is None
    with rw.enabled():
        why = VBench({"mode": "custom_input"}).random_weights_unavailable()
    assert "left out" in why
