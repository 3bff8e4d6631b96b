"""KID against torchmetrics' own MMD functions and a direct numpy U-statistic; its leave-one-block-out
values against recomputation on the reduced sets; paired differences through harness.stats."""

import numpy as np
import pytest
import torch
from torchmetrics.image.kid import poly_mmd

from ganrm_bench.harness.plugins.base import FeatureExtractor, PluginParams
from ganrm_bench.harness.plugins.registry import FEATURES
from ganrm_bench.harness.stats.paired import difference
from ganrm_bench.metrics.kid import KID
from tests.helpers.metrics_fixtures import index_images as images

DIM = 5
TABLE = np.random.default_rng(3).normal(size=(300, DIM))
T32 = TABLE.astype(np.float32).astype(np.float64)  # features are cached as float32


class RowFeatures(FeatureExtractor):
    """An image whose first pixel is (hi, lo, 0) has feature row hi·256+lo of TABLE (+ shift)."""

    name = "test_rows"
    dim = DIM

    class Params(PluginParams):
        shift: float = 0.0

    def features(self, images, ctx):
        rows = [int(np.asarray(im)[0, 0, 0]) * 256 + int(np.asarray(im)[0, 0, 1]) for im in images]
        return TABLE[rows] + self.params.shift


@pytest.fixture(autouse=True)
def _register():
    from ganrm_bench.harness.plugins.builtins import register_builtins

    register_builtins()
    FEATURES.add("test_rows", RowFeatures)


def unbiased_mmd2(x, y):
    """Textbook unbiased MMD² with k(a, b) = (a·b/d + 1)^3, written out with loops over pairs' sums."""
    d = x.shape[1]
    k = lambda a, b: (a @ b.T / d + 1) ** 3  # noqa: E731
    n, m = len(x), len(y)
    kxx, kyy, kxy = k(x, x), k(y, y), k(x, y)
    return ((kxx.sum() - np.trace(kxx)) / (n * (n - 1)) + (kyy.sum() - np.trace(kyy)) / (m * (m - 1)) - 2 * kxy.mean())


def test_kid_equals_torchmetrics_poly_mmd_on_equal_sizes(ctx, write_items):
    s_rows, r_rows = list(range(0, 80)), list(range(150, 230))
    samples = write_items(images(s_rows), name="s", prompt_ids=[f"p{i % 20}" for i in range(80)])
    reference = write_items(images(r_rows), name="r")
    res = KID({"features": "test_rows"}).compute(samples, ctx, reference=reference)
    expected = float(poly_mmd(torch.tensor(T32[r_rows]), torch.tensor(T32[s_rows])))
    assert res.value == pytest.approx(expected, rel=1e-9)
    assert res.ci_low < res.value < res.ci_high and res.n == 80
    assert "torchmetrics" in res.convention


def test_kid_kernel_params_follow_torchmetrics(ctx, write_items):
    s_rows, r_rows = list(range(0, 40)), list(range(150, 190))
    samples = write_items(images(s_rows), name="s")
    reference = write_items(images(r_rows), name="r")
    res = KID({"features": "test_rows", "gamma": 0.05, "degree": 2, "coef": 0.5}).compute(samples, ctx, reference=reference)
    expected = float(poly_mmd(torch.tensor(T32[r_rows]), torch.tensor(T32[s_rows]), degree=2, gamma=0.05, coef=0.5))
    assert res.value == pytest.approx(expected, rel=1e-9) and "γ=0.05" in res.convention


def test_kid_unequal_sizes_and_scale(ctx, write_items):
    s_rows, r_rows = list(range(0, 50)), list(range(100, 220))
    samples = write_items(images(s_rows), name="s")
    reference = write_items(images(r_rows), name="r")
    res = KID({"features": "test_rows", "features_params": {"shift": 0.3}, "scale": 1000}).compute(samples, ctx, reference=reference)
    # the reference goes through the same shifted extractor: shift both
    expected = 1000 * unbiased_mmd2((TABLE[s_rows] + 0.3).astype(np.float32).astype(float), (TABLE[r_rows] + 0.3).astype(np.float32).astype(float))
    assert res.value == pytest.approx(expected, rel=1e-9)


def test_leave_one_block_out_values_match_recomputation(ctx, write_items):
    s_rows, r_rows = list(range(0, 60)), list(range(100, 160))
    pids = [f"prompt{i % 12}" for i in range(60)]
    samples = write_items(images(s_rows), name="s", prompt_ids=pids)
    reference = write_items(images(r_rows), name="r")
    kid = KID({"features": "test_rows", "ci": {"blocks": 4}})
    res = kid.compute(samples, ctx, reference=reference)
    blocks = kid.block_ids(list(samples.items), ctx, 4)
    loo = np.asarray(res.extras["block_loo"])
    for b in range(4):
        keep = np.flatnonzero(blocks != b)
        if len(keep) == 60:
            assert np.isnan(loo[b])
            continue
        assert loo[b] == pytest.approx(unbiased_mmd2(T32[np.array(s_rows)[keep]], T32[r_rows]), rel=1e-9)


def test_paired_kid_difference_detects_a_shift_that_separate_intervals_miss(ctx, write_items):
    rows = list(range(0, 120))
    pids = [f"p{i}" for i in range(120)]
    base = write_items(images(rows), name="base", prompt_ids=pids)
    reference = write_items(images(list(range(150, 300))), name="ref")
    kid = KID({"features": "test_rows"})
    r0 = kid.compute(base, ctx, reference=reference)
    shifted = KID({"features": "test_rows", "features_params": {"shift": 0.15}})
    # the same samples seen through shifted features stand in for a slightly worse row
    r1 = shifted.compute(base, ctx, reference=reference)
    u0, u1 = kid.units(r0, base), shifted.units(r1, base)
    d = difference(u1, u0)
    assert d.paired and d.estimate == pytest.approx(r1.value - r0.value)
    assert d.ci_high - d.ci_low < 0.5 * min(r0.ci_high - r0.ci_low, r1.ci_high - r1.ci_low)
