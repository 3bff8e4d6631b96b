"""IP: the OR of Q16 and NudeNet with controlled detector outputs; NudeNet's class/threshold rule;
Q16's argmax over its prompt embeddings with a tiny CLIP; the prompts file is never unpickled."""

import pickle

import numpy as np
import pytest

from ganrm_bench.harness.errors import UserError
from ganrm_bench.metrics.ip import IP, NudeNetDetector, Q16Detector, load_prompt_embeddings
from tests.helpers.metrics_fixtures import random_images, tiny_open_clip


class FixedDetector:
    """Scores looked up by the image's first pixel value (a controlled detector)."""

    def __init__(self, by_pixel, threshold=0.5):
        self.by_pixel, self.threshold = by_pixel, threshold

    def fingerprint(self, ctx=None):
        return {"fixed": sorted(self.by_pixel.items())}

    def scores(self, images, ctx):
        return np.array([self.by_pixel[int(np.asarray(im)[0, 0, 0])] for im in images], dtype=float)

    def flags(self, scores):
        return scores >= self.threshold


def test_ip_is_the_percentage_flagged_by_either_detector(ctx, write_items):
    # pixel value -> (q16 score, nudenet score): only-q16, only-nudenet, both, neither, neither
    q16 = {10: 0.9, 20: 0.1, 30: 0.8, 40: 0.2, 50: 0.49}
    nude = {10: 0.0, 20: 0.7, 30: 0.95, 40: 0.3, 50: 0.49}
    arrays = [np.full((8, 8, 3), v, dtype=np.uint8) for v in (10, 20, 30, 40, 50, 10, 40, 40)]
    samples = write_items(arrays, prompt_ids=[f"p{i // 2}" for i in range(8)])
    metric = IP({"ci": {"resamples": 100}})
    metric.detectors = {"q16": FixedDetector(q16), "nudenet": FixedDetector(nude)}
    result = metric.compute(samples, ctx)
    flagged = np.array([1, 1, 1, 0, 0, 1, 0, 0], dtype=float)  # OR of the two
    assert np.array_equal(result.per_sample, 100 * flagged)
    assert result.value == pytest.approx(100 * flagged.mean())
    assert result.extras["q16_rate"] == pytest.approx(100 * 3 / 8)
    assert result.extras["nudenet_rate"] == pytest.approx(100 * 2 / 8)
    assert IP.direction == "lower"


def test_one_detector_alone(ctx, write_items):
    arrays = [np.full((8, 8, 3), v, dtype=np.uint8) for v in (10, 20)]
    metric = IP({"detectors": ["nudenet"], "ci": {"method": "none"}})
    metric.detectors = {"nudenet": FixedDetector({10: 0.9, 20: 0.1})}
    assert metric.compute(write_items(arrays), ctx).value == pytest.approx(50.0)


def test_nudenet_counts_only_chosen_classes_above_threshold(monkeypatch):
    detections = [
        [{"class": "FEMALE_BREAST_EXPOSED", "score": 0.9, "box": [0, 0, 1, 1]}],  # not a chosen class
        [{"class": "MALE_GENITALIA_EXPOSED", "score": 0.55, "box": [0, 0, 1, 1]}],
        [{"class": "FEMALE_GENITALIA_EXPOSED", "score": 0.45, "box": [0, 0, 1, 1]},
         {"class": "FACE_FEMALE", "score": 0.99, "box": [0, 0, 1, 1]}],
        [],
    ]
    det = NudeNetDetector(IP().params)
    monkeypatch.setattr(det, "detect", lambda images: detections)
    scores = det.scores([None] * 4, None)
    assert np.allclose(scores, [0.0, 0.55, 0.45, 0.0])
    assert list(det.flags(scores)) == [False, True, False, False]
    wide = NudeNetDetector(IP({"nudenet_classes": ["FEMALE_BREAST_EXPOSED"], "nudenet_threshold": 0.95}).params)
    monkeypatch.setattr(wide, "detect", lambda images: detections)
    assert list(wide.flags(wide.scores([None] * 4, None))) == [False, False, False, False]


def test_real_nudenet_runs_offline_on_plain_images(ctx, rng):
    pytest.importorskip("nudenet", reason="needs the safety extra")
    det = NudeNetDetector(IP().params)
    images = [np.full((64, 64, 3), 200, dtype=np.uint8), rng.integers(0, 256, (48, 80, 3), dtype=np.uint8)]
    scores = det.scores(images, ctx)
    assert scores.shape == (2,) and not det.flags(scores).any()
    assert det.fingerprint(ctx)["model"].startswith("sha256:")


def test_q16_flags_the_argmax_prompt(tmp_path, ctx, rng):
    import torch
    from PIL import Image

    from ganrm_bench.metrics import openclip_models as oc

    name, ckpt = tiny_open_clip(tmp_path)
    images = random_images(rng, 4)
    bundle = oc.load(name, str(ckpt), cache_dir=None, device="cpu", offline=True)
    feats, _ = oc.encode(bundle, [Image.fromarray(a) for a in images], None, "cpu")
    # prompt 1 ("inappropriate") is image 0's own embedding, prompt 0 its opposite
    prompts = np.stack([-feats[0], feats[0]]).astype(np.float32)
    np.save(tmp_path / "prompts.npy", prompts)
    det = Q16Detector(IP({"q16_model": name, "q16_pretrained": str(ckpt), "q16_prompts": str(tmp_path / "prompts.npy")}).params)
    scores = det.scores(images, ctx)
    logits = 100 * feats @ (prompts / np.linalg.norm(prompts, axis=1, keepdims=True)).T
    expected = torch.softmax(torch.from_numpy(logits), dim=1)[:, 1].numpy()
    assert np.allclose(scores, expected, atol=1e-6)
    assert det.flags(scores)[0] and list(det.flags(scores)) == list(logits[:, 1] > logits[:, 0])


def test_q16_prompts_pickle_reads_numpy_and_refuses_code(tmp_path):
    arr = np.arange(6, dtype=np.float32).reshape(2, 3)
    with open(tmp_path / "prompts.p", "wb") as f:
        pickle.dump(arr, f)
    assert np.array_equal(load_prompt_embeddings(tmp_path / "prompts.p"), arr)

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    with open(tmp_path / "evil.p", "wb") as f:
        pickle.dump(Evil(), f)
    with pytest.raises(UserError, match="refusing to unpickle"):
        load_prompt_embeddings(tmp_path / "evil.p")


def test_q16_without_prompts_file_says_what_to_do():
    with pytest.raises(UserError, match="q16_prompts"):
        Q16Detector(IP().params).prompts_file()
