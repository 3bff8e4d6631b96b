"""The miniature world's data: scikit-learn's 1,797 handwritten digits, upsampled to 16×16.

`sklearn.datasets.load_digits` ships inside scikit-learn (no download). Each 8×8 image (ink
intensity 0..16, white ink on black) is scaled to 0..255 and upsampled ×2 by **bilinear
interpolation with half-pixel centres** (`torch.nn.functional.interpolate(mode="bilinear",
align_corners=False, antialias=False)`), then rounded to uint8. Images are handed out as RGB with
three equal channels so every image plugin (CLIP-based ones included) works unchanged; the mini
networks read the mean of the channels.

Splits (disjoint, stratified by digit, from the one fixed seed `DATA_SEED`):

| split      | size | used by                                                              |
|------------|------|----------------------------------------------------------------------|
| `ppd`      | 500  | GAN-RM's preference proxy data (the "target domain", as 500 JourneyDB images in the paper) |
| `fid_ref`  | 500  | the FID reference set; also the held-out set for every trained net's accuracy |
| `annotator`| 200  | the annotator network only (stand-in for Pick-a-Pic's human labellers) |
| `train`    | 597  | the generator and the metric network (FID features, alignment)      |

Why these sizes, with only 1,797 digits:
- PPD has 500 because the paper uses 500 (Table 7 varies it; smaller PPDs are subsets of this one).
- The FID reference must be disjoint from the PPD, or choosing samples that look like the PPD
  would be rewarded by the metric for memorised neighbours rather than for realism. 500 is the
  largest that still leaves data to train on, and about 4× the feature width (128), which a
  full covariance needs; the sample side should be as large (FID over ~250 samples moves by
  ±10 between sample draws here).
- The metric network must never see the PPD (the RM's only positives) nor the FID reference (whose
  features it summarises): it trains on `train`. The generator shares `train` with it, as image
  generators and Inception share ImageNet-like data in the real setting: the metric's independence
  from the reward model comes from the RM never touching the metric network (its backbone is a
  fixed random conv net) and the metric never touching the PPD.
- The annotator stands in for independent human judgement, so it gets its own split (and its own
  architecture and seed): its labels must not be a copy of the metric network's opinion.
- `train` takes the rest (597, ~60 per digit): enough for a ≥95 % metric classifier and a
  legible-but-flawed generator.

Stratification: each digit's indices are shuffled, then interleaved round-robin over digits, and
the splits are cut as consecutive chunks of that order (ppd, fid_ref, annotator, train), so the
first three splits are balanced to ±1 per digit; `train` absorbs the remainder.
"""

from __future__ import annotations

import functools
import hashlib

import numpy as np

DATA_VERSION = "mini-digits16-v1"
DATA_SEED = 20240611
IMAGE_SIZE = 16
SPLIT_SIZES: dict[str, int] = {"ppd": 500, "fid_ref": 500, "annotator": 200, "train": 597}
SPLITS = tuple(SPLIT_SIZES)


@functools.lru_cache(maxsize=1)
def all_digits() -> tuple[np.ndarray, np.ndarray]:
    """All 1,797 digits as (uint8 [N,16,16] grayscale, int64 [N] labels), read-only."""
    import torch
    from sklearn.datasets import load_digits

    raw = load_digits()
    x = torch.from_numpy(raw.images.astype(np.float32) * (255.0 / 16.0))[:, None]
    up = torch.nn.functional.interpolate(x, size=(IMAGE_SIZE, IMAGE_SIZE), mode="bilinear", align_corners=False, antialias=False)
    images = up[:, 0].round().clamp(0, 255).to(torch.uint8).numpy()
    labels = raw.target.astype(np.int64)
    images.setflags(write=False)
    labels.setflags(write=False)
    return images, labels


@functools.lru_cache(maxsize=1)
def _split_order() -> np.ndarray:
    _, labels = all_digits()
    rng = np.random.default_rng(DATA_SEED)
    per_digit = [rng.permutation(np.flatnonzero(labels == d)) for d in range(10)]
    longest = max(len(p) for p in per_digit)
    order = [p[i] for i in range(longest) for p in per_digit if i < len(p)]
    out = np.asarray(order, dtype=np.int64)
    assert len(out) == len(labels) == sum(SPLIT_SIZES.values())
    out.setflags(write=False)
    return out


def split_indices(split: str) -> np.ndarray:
    """Indices into `all_digits()` of one split, in a fixed order."""
    if split not in SPLIT_SIZES:
        raise ValueError(f"unknown mini-digits split {split!r}; known: {', '.join(SPLITS)}")
    start = 0
    for name, size in SPLIT_SIZES.items():
        if name == split:
            return _split_order()[start : start + size]
        start += size
    raise AssertionError("unreachable")


def load_split(split: str, digits: tuple[int, ...] | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(uint8 grayscale images [n,16,16], labels [n], dataset indices [n]) of a split, optionally
    only the given digits (order kept)."""
    images, labels = all_digits()
    idx = split_indices(split)
    if digits is not None:
        idx = idx[np.isin(labels[idx], list(digits))]
    return images[idx], labels[idx], idx


def to_rgb(gray: np.ndarray) -> np.ndarray:
    """uint8 [..., H, W] grayscale to uint8 [..., H, W, 3] with three equal channels."""
    return np.repeat(gray[..., None], 3, axis=-1)


def data_digest() -> str:
    """sha256 over the processed images, labels and the split order (identifies the data version)."""
    images, labels = all_digits()
    h = hashlib.sha256()
    for arr in (images, labels, _split_order()):
        h.update(np.ascontiguousarray(arr).tobytes())
    return h.hexdigest()
