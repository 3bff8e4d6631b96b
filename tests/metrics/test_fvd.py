"""FVD: the Fréchet distance of video features (a controlled extractor) vs the closed form; the
clip cap and frame count; cd-fvd's I3D loading from a local file and the missing-weights error."""

import numpy as np
import pytest
import scipy.linalg

from ganrm_bench.harness.errors import MissingWeightsError, UserError
from ganrm_bench.harness.plugins.base import FeatureExtractor, PluginParams
from ganrm_bench.harness.plugins.registry import FEATURES
from ganrm_bench.metrics.fvd import FVD


class FrameStats(FeatureExtractor):
    """Test extractor: per-channel mean and std of the first `frames` frames (6-d)."""

    name = "test_frame_stats"
    dim = 6

    class Params(PluginParams):
        frames: int = 16

    def features(self, videos, ctx):
        out = []
        for v in videos:
            clip = np.asarray(v, dtype=np.float64)[: self.params.frames]
            out.append(np.concatenate([clip.mean(axis=(0, 1, 2)), clip.std(axis=(0, 1, 2))]))
        return np.array(out)


@pytest.fixture(autouse=True)
def _register():
    from ganrm_bench.harness.plugins.builtins import register_builtins

    register_builtins()
    FEATURES.add("test_frame_stats", FrameStats)


def videos(rng, n, t=5, scale=1.0):
    return [np.clip(rng.normal(128, 40 * scale, size=(t, 8, 8, 3)), 0, 255).astype(np.uint8) for _ in range(n)]


def closed_form(x, y):
    s1, s2 = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    return float(((x.mean(0) - y.mean(0)) ** 2).sum() + np.trace(s1 + s2 - 2 * scipy.linalg.sqrtm(s1 @ s2).real))


def test_fvd_matches_closed_form_on_the_chosen_frames(ctx, write_items, rng):
    fake, real = videos(rng, 20, scale=1.5), videos(rng, 25)
    samples, reference = write_items(fake, name="fake"), write_items(real, name="real")
    metric = FVD({"features": "test_frame_stats", "frames": 3, "ci": {"resamples": 30}})
    result = metric.compute(samples, ctx, reference=reference)
    ext = FrameStats(frames=3)
    expected = closed_form(ext.features(fake, ctx), ext.features(real, ctx))
    assert result.value == pytest.approx(expected, rel=1e-6)  # features are cached as float32
    assert "3 frames" in result.convention and result.ci_low < result.ci_high


def test_clip_cap_uses_a_seeded_subset(ctx, write_items, rng):
    fake = write_items(videos(rng, 12), name="fake")
    metric = FVD({"features": "test_frame_stats", "clips": 5, "ci": {"method": "none"}})
    chosen = metric.select(list(fake.items), ctx, "samples")
    assert len(chosen) == 5 and chosen == metric.select(list(fake.items), ctx, "samples")
    assert metric.compute(fake, ctx, reference=fake).n == 5


def test_i3d_from_a_local_file_and_missing_weights(tmp_path, ctx):
    pytest.importorskip("cdfvd", reason="fvd's I3D needs the video extra")
    import torch
    from cdfvd.third_party.i3d.pytorch_i3d import InceptionI3d

    from ganrm_bench.metrics.fvd import I3DFeatures

    with pytest.raises(MissingWeightsError, match="i3d_pretrained_400.pt"):
        I3DFeatures({"cache_dir": str(tmp_path / "none")}).fingerprint(ctx)
    path = tmp_path / "i3d.pt"
    torch.manual_seed(0)
    torch.save(InceptionI3d(400, in_channels=3).state_dict(), path)
    ext = I3DFeatures({"weights": str(path), "frames": 2})
    assert ext.fingerprint(ctx)["weights"].startswith("sha256:")
    with pytest.raises(UserError, match="fewer than frames"):
        ext.clip(np.zeros((1, 8, 8, 3), dtype=np.uint8))
    with pytest.raises(UserError, match="videos"):
        ext.clip(np.zeros((8, 8, 3), dtype=np.uint8))
