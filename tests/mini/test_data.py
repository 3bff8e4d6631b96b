"""The digits data: upsampling, disjoint balanced splits, a fixed data version."""

import numpy as np
import pytest
from sklearn.datasets import load_digits

from ganrm_bench.mini import data


def _bilinear_half_pixel(img8: np.ndarray, size: int) -> np.ndarray:
    """Independent bilinear upsampling with half-pixel centres and edge clamping (numpy)."""
    n = img8.shape[0]
    src = np.clip((np.arange(size) + 0.5) * n / size - 0.5, 0, n - 1)
    lo = np.floor(src).astype(int)
    hi = np.minimum(lo + 1, n - 1)
    w = src - lo
    rows = img8[lo] * (1 - w)[:, None] + img8[hi] * w[:, None]
    return rows[:, lo] * (1 - w)[None] + rows[:, hi] * w[None]


def test_upsampling_is_documented_bilinear():
    images, labels = data.all_digits()
    raw = load_digits()
    assert images.shape == (1797, 16, 16) and images.dtype == np.uint8
    np.testing.assert_array_equal(labels, raw.target)
    for i in (0, 1, 500, 1796):
        expected = np.round(_bilinear_half_pixel(raw.images[i] * 255 / 16, 16))
        assert np.abs(images[i].astype(float) - expected).max() <= 1  # float32 vs float64 rounding


def test_splits_are_disjoint_complete_and_balanced():
    seen = np.concatenate([data.split_indices(s) for s in data.SPLITS])
    assert len(seen) == len(set(seen.tolist())) == 1797
    _, labels = data.all_digits()
    for split, size in data.SPLIT_SIZES.items():
        idx = data.split_indices(split)
        assert len(idx) == size
        counts = np.bincount(labels[idx], minlength=10)
        if split != "train":
            assert counts.max() - counts.min() <= 1, (split, counts)
    assert not set(data.split_indices("ppd")) & set(data.split_indices("fid_ref"))


def test_digit_filter_and_rgb():
    images, labels, _ = data.load_split("ppd", digits=(3, 7))
    assert set(labels.tolist()) == {3, 7} and len(images) == 100
    rgb = data.to_rgb(images)
    assert rgb.shape == (100, 16, 16, 3)
    assert (rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all()


def test_unknown_split_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown mini-digits split 'test'.*ppd"):
        data.split_indices("test")


def test_data_version_is_pinned():
    """If this fails, scikit-learn's digits or the processing changed: bump DATA_VERSION and retrain."""
    assert data.data_digest() == "1c8689f9ad95711e412ccf137778be45414322f4d60c1bd948e5feba3cfcd543"
