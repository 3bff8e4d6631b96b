"""FID over fewer samples than the feature width says so (the value is mostly small-sample bias)."""

import logging

import numpy as np
import pytest

from ganrm_bench.harness.plugins.base import FeatureExtractor, PluginParams
from ganrm_bench.harness.plugins.registry import FEATURES
from ganrm_bench.metrics.fid import FID

DIM = 6


class RowFeatures(FeatureExtractor):
    """Test extractor: the first DIM pixel values of the first row, as floats."""

    name = "test_rows"
    dim = DIM

    class Params(PluginParams):
        pass

    def features(self, images, ctx):
        return np.stack([np.asarray(im, dtype=float)[0, :DIM, 0] for im in images])


@pytest.fixture(autouse=True)
def _register():
    from ganrm_bench.harness.plugins.builtins import register_builtins

    register_builtins()
    FEATURES.add("test_rows", RowFeatures)


def images(n, seed):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 255, size=(4, 8, 3), dtype=np.uint8) for _ in range(n)]


@pytest.mark.parametrize("n, warns", [(4, True), (40, False)])
def test_warns_when_samples_do_not_exceed_feature_width(ctx, write_items, caplog, n, warns):
    samples = write_items(images(n, 1), name=f"s{n}")
    reference = write_items(images(40, 2), name="ref")
    with caplog.at_level(logging.WARNING, logger="ganrm_bench"):
        FID({"features": "test_rows", "ci": {"method": "none"}}).compute(samples, ctx, reference=reference)
    assert ("4 samples and 40 reference items for 6-d features" in caplog.text) is warns
    assert ("rank-deficient" in caplog.text) is warns
