"""FID against the closed-form Fréchet distance on fixed features; Inception extractor conventions;
reference statistics cached in our store; missing weights offline."""

from pathlib import Path

import numpy as np
import pytest
import scipy.linalg

from ganrm_bench.harness.errors import MissingWeightsError, UserError
from ganrm_bench.harness.plugins.base import FeatureExtractor, PluginParams
from ganrm_bench.harness.plugins.registry import FEATURES
from ganrm_bench.metrics.fid import FID
from ganrm_bench.metrics.frechet import GaussianStats, frechet_distance, frechet_with_sqrt_ref, psd_sqrt
from tests.helpers.metrics_fixtures import index_images

DIM = 6
TABLE = np.random.default_rng(42).normal(size=(200, DIM)) @ np.random.default_rng(7).normal(size=(DIM, DIM))


class LookupFeatures(FeatureExtractor):
    """Test extractor: an image whose first pixel is (hi, lo, 0) has feature row hi·256+lo of TABLE."""

    name = "test_lookup"
    dim = DIM
    calls = 0

    class Params(PluginParams):
        shift: float = 0.0

    def features(self, images, ctx):
        type(self).calls += len(images)
        rows = [int(np.asarray(im)[0, 0, 0]) * 256 + int(np.asarray(im)[0, 0, 1]) for im in images]
        return TABLE[rows] + self.params.shift


@pytest.fixture(autouse=True)
def _register_lookup():
    from ganrm_bench.harness.plugins.builtins import register_builtins

    register_builtins()
    FEATURES.add("test_lookup", LookupFeatures)
    yield


def closed_form_fid(x, y):
    """Textbook Fréchet distance of two Gaussians fitted to x and y (numpy + scipy, no project code)."""
    mu1, mu2 = x.mean(0), y.mean(0)
    s1, s2 = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * covmean))


def test_fid_matches_closed_form_on_fixed_features(ctx, write_items):
    sample_rows, ref_rows = list(range(0, 60)), list(range(80, 200))
    samples = write_items(index_images(sample_rows), name="samples")
    reference = write_items(index_images(ref_rows), name="reference")
    result = FID({"features": "test_lookup", "ci": {"resamples": 50}}).compute(samples, ctx, reference=reference)
    expected = closed_form_fid(TABLE[sample_rows], TABLE[ref_rows])
    assert result.value == pytest.approx(expected, rel=1e-8)
    assert result.n == 60 and result.extras["n_reference"] == 120
    assert np.isfinite(result.ci_low) and result.ci_low < result.ci_high
    assert "mode=native" in result.convention and "clean-fid" in result.convention


def test_fid_shifted_features_grow_by_the_squared_shift(ctx, write_items):
    rows = list(range(100))
    samples = write_items(index_images(rows), name="s")
    base = FID({"features": "test_lookup", "ci": {"method": "none"}}).compute(samples, ctx, reference=samples)
    shifted = FID({"features": "test_lookup", "features_params": {"shift": 0.5}, "ci": {"method": "none"}})
    # same images, features shifted by 0.5 in every dimension: FID = |Δμ|² = 0.25·DIM (covariances equal)
    ref_stats = GaussianStats.of(TABLE[rows])
    s_stats = GaussianStats.of(TABLE[rows] + 0.5)
    mu1, c1 = s_stats.mean_cov()
    mu2, c2 = ref_stats.mean_cov()
    assert frechet_distance(mu1, c1, mu2, c2) == pytest.approx(0.25 * DIM, abs=1e-6)
    assert base.value == pytest.approx(0.0, abs=1e-6)
    assert np.isnan(base.ci_low)
    assert shifted.params.features_params == {"shift": 0.5}


def test_streaming_stats_and_eigen_form_agree_with_numpy(rng):
    x, y = rng.normal(size=(50, DIM)), rng.normal(size=(70, DIM)) * 1.5 + 0.2
    stats = GaussianStats.empty(DIM)
    for chunk in np.array_split(x, 7):
        stats.update(chunk)
    mu, cov = stats.mean_cov()
    assert np.allclose(mu, x.mean(0)) and np.allclose(cov, np.cov(x, rowvar=False))
    mu2, cov2 = GaussianStats.of(y).mean_cov()
    fast = frechet_with_sqrt_ref(mu, cov, mu2, cov2, psd_sqrt(cov2))
    assert fast == pytest.approx(closed_form_fid(x, y), rel=1e-8)


def test_reference_stats_are_a_store_artifact_not_in_cleanfid_folder(ctx, write_items):
    import cleanfid

    stats_folder = Path(cleanfid.__file__).parent / "stats"
    before = sorted(stats_folder.glob("*")) if stats_folder.exists() else []
    samples = write_items(index_images(range(30)), name="s")
    reference = write_items(index_images(range(100, 140)), name="r")
    FID({"features": "test_lookup", "ci": {"method": "none"}}).compute(samples, ctx, reference=reference)
    producers = [a.producer for a in ctx.store.artifacts()]
    assert "metric/fid/reference-stats" in producers
    LookupFeatures.calls = 0
    FID({"features": "test_lookup", "ci": {"resamples": 20}}).compute(samples, ctx, reference=reference)
    assert LookupFeatures.calls == 0, "features and reference statistics come from the store the second time"
    after = sorted(stats_folder.glob("*")) if stats_folder.exists() else []
    assert after == before


def test_mode_on_an_extractor_without_mode_is_a_clear_error(ctx, write_items):
    samples = write_items(index_images(range(10)), name="s")
    with pytest.raises(UserError, match="mode"):
        FID({"features": "test_lookup", "mode": "legacy_pytorch"}).compute(samples, ctx, reference=samples)


def test_fid_needs_a_reference(ctx, write_items):
    samples = write_items(index_images(range(5)), name="s")
    with pytest.raises(UserError, match="reference"):
        FID({"features": "test_lookup"}).compute(samples, ctx)


# -- the Inception extractor ------------------------------------------------------------------


def tiny_torchscript_inception(path: Path):
    """A TorchScript module shaped like clean-fid's Inception file: `.layers` maps [B,3,299,299] → features."""
    import torch

    class Layers(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.proj = torch.nn.Linear(3, 32)  # the real file gives 2048; small keeps the test fast

        def forward(self, x):
            return self.proj(x.mean(dim=(2, 3)))

    class Wrapper(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = Layers()

        def forward(self, x):
            return self.layers(x)

    torch.manual_seed(0)
    torch.jit.script(Wrapper()).save(str(path))


def test_inception_clean_mode_resizes_and_normalizes_like_cleanfid(tmp_path, ctx, rng):
    import torch
    from cleanfid.resize import build_resizer

    from ganrm_bench.metrics.inception import InceptionFeatures

    weights = tmp_path / "inception-2015-12-05.pt"
    tiny_torchscript_inception(weights)
    images = [rng.integers(0, 256, size=(40, 56, 3), dtype=np.uint8) for _ in range(3)]
    feats = InceptionFeatures({"weights": str(weights)}).features(images, ctx)
    scripted = torch.jit.load(str(weights))
    resize = build_resizer("clean")  # PIL bicubic on float channels to 299×299
    x = torch.from_numpy(np.stack([resize(im) for im in images])).permute(0, 3, 1, 2).float()
    with torch.no_grad():
        manual = scripted.layers((x - 128) / 128).double().numpy()
    assert feats.shape == (3, 32)
    assert np.allclose(feats, manual, atol=1e-5)


def test_inception_missing_weights_offline_names_the_file(tmp_path):
    from ganrm_bench.metrics.inception import InceptionFeatures

    with pytest.raises(MissingWeightsError) as err:
        InceptionFeatures({"cache_dir": str(tmp_path / "empty")}).fingerprint()
    assert "inception-2015-12-05.pt" in str(err.value) and str(tmp_path / "empty") in str(err.value)
    with pytest.raises(MissingWeightsError, match="pt_inception-2015-12-05-6726825d.pth"):
        InceptionFeatures({"mode": "legacy_pytorch", "cache_dir": str(tmp_path / "empty")}).fingerprint()


def test_fid_with_inception_records_mode_and_weights(tmp_path, ctx, write_items, rng):
    weights = tmp_path / "w.pt"
    tiny_torchscript_inception(weights)
    samples = write_items([rng.integers(0, 256, (16, 16, 3), dtype=np.uint8) for _ in range(8)], name="s")
    metric = FID({"features_params": {"weights": str(weights)}, "ci": {"method": "none"}})
    assert "mode=clean" in metric.convention()
    fp = metric.fingerprint(ctx)
    assert fp["features"]["params"]["mode"] == "clean" and fp["features"]["weights"].startswith("sha256:")
    result = metric.compute(samples, ctx, reference=samples)
    assert result.value == pytest.approx(0.0, abs=1e-3)


def test_block_jackknife_interval_covers_the_expected_fid_about_95_percent():
    """The default set-metric CI: delete-one-block jackknife over 10 blocks, t interval."""
    from ganrm_bench.metrics import ci as cimod
    from ganrm_bench.metrics.frechet import BlockStats, GaussianStats, block_jackknife, frechet_distance

    rng = np.random.default_rng(7)
    d, n = 8, 200
    ref = GaussianStats.of(rng.normal(size=(4000, d)))
    mu_r, cov_r = ref.mean_cov()

    def draw():
        b = BlockStats(10, d)
        b.update(rng.normal(size=(n, d)) * 1.2 + 0.2, rng.integers(0, 10, n))
        return b

    def fid(b):
        return frechet_distance(*b.total().mean_cov(), mu_r, cov_r)

    target = np.mean([fid(draw()) for _ in range(300)])  # E[FID_n]: what a CI at fixed n should cover
    covered = 0
    for _ in range(120):
        b = draw()
        v = fid(b)
        lo, hi = cimod.jackknife_interval(block_jackknife(b, ref), v, 0.95)
        covered += lo <= target <= hi
    assert 0.88 <= covered / 120 <= 0.995, covered / 120


def test_paired_difference_is_the_jackknife_of_leave_one_block_out_differences(ctx, write_items):
    """FID(a) − FID(b) on the same prompts: its interval comes from the differences of the closed-form
    FIDs with each prompt block left out, by the delete-a-group jackknife weighted by the blocks'
    sizes (Busing et al. 1999; computed here with numpy/scipy only)."""
    import math

    from scipy import stats

    pids = [f"p{i % 30}" for i in range(90)]
    a = write_items(index_images(list(range(0, 90))), name="a", prompt_ids=pids)
    b = write_items(index_images(list(range(5, 95))), name="b", prompt_ids=pids)
    reference = write_items(index_images(list(range(100, 200))), name="ref")
    fid = FID({"features": "test_lookup", "ci": {"blocks": 5}})
    delta, lo, hi = fid.paired_difference(a, b, reference, ctx, level=0.9)
    blocks = fid.block_ids(list(a.items), ctx, 5)
    x_a, x_b, ref = TABLE[list(range(0, 90))], TABLE[list(range(5, 95))], TABLE[list(range(100, 200))]
    assert delta == pytest.approx(closed_form_fid(x_a, ref) - closed_form_fid(x_b, ref), rel=1e-6)
    used = [k for k in range(5) if (blocks == k).any()]
    loo = np.array([closed_form_fid(x_a[blocks != k], ref) - closed_form_fid(x_b[blocks != k], ref) for k in used])
    m = np.array([(blocks == k).sum() for k in used], dtype=float)
    assert len(set(m)) > 1  # unequal blocks: the weighted formula matters
    g, h = len(used), len(blocks) / m
    centre = g * delta - np.sum((1 - m / len(blocks)) * loo)
    se = math.sqrt(np.sum((h * delta - (h - 1) * loo - centre) ** 2 / (h - 1)) / g)
    half = stats.t.ppf(0.95, len(loo) - 1) * se
    assert lo == pytest.approx(delta - half, rel=1e-4) and hi == pytest.approx(delta + half, rel=1e-4)


def test_inception_features_resized_in_loader_workers_are_byte_identical(tmp_path, rng, monkeypatch):
    """clean-fid's resize (the CPU half of FID's features) runs in DataLoader workers: same bytes."""
    import os

    from PIL import Image

    from ganrm_bench.metrics.inception import InceptionFeatures

    real, log = InceptionFeatures.prepare, tmp_path / "resized"
    log.mkdir()
    monkeypatch.setattr(InceptionFeatures, "prepare", lambda self, im: ((log / f"{os.getpid()}.{os.urandom(4).hex()}").touch(), real(self, im))[1])

    from ganrm_bench.harness.plugins.base import Item, ItemSet
    from ganrm_bench.harness.runtime.context import Context
    from ganrm_bench.harness.store.artifacts import Store

    weights = tmp_path / "w.pt"
    tiny_torchscript_inception(weights)
    items = []
    for i in range(5):
        path = tmp_path / f"im{i}.png"
        Image.fromarray(rng.integers(0, 256, (24, 40, 3), dtype=np.uint8)).save(path)
        items.append(Item(f"k{i}", str(path)))
    feats, where = {}, {}
    for workers in (0, 2):
        for f in log.iterdir():
            f.unlink()
        metric = FID({"features_params": {"weights": str(weights)}, "ci": {"method": "none"}, "batch_size": 2})
        ctx = Context(store=Store(tmp_path / f"store{workers}"), loader_workers=workers)
        feats[workers] = np.concatenate([f for _, f in metric._feature_chunks(list(ItemSet("s", tuple(items)).items), ctx)])
        where[workers] = [int(f.name.split(".")[0]) for f in log.iterdir()]
    assert len(where[0]) == len(where[2]) == 5 and set(where[0]) == {os.getpid()} and os.getpid() not in where[2]
    assert feats[0].shape == (5, 32) and feats[0].tobytes() == feats[2].tobytes()
