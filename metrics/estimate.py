"""Unit costs of the metrics' models for `plan --estimate` (harness/engine/estimate.py): random-init
models of the real architecture (no weights needed: time does not depend on them), timed on a
small batch at the real input size. Each model is built and timed once per process."""

from __future__ import annotations

from typing import Any

import numpy as np

from ganrm_bench.harness.engine.estimate import UnitCost, time_call
from ganrm_bench.metrics.frechet import frechet_distance

_MEMO: dict[tuple, UnitCost] = {}
TIMING_BATCH = 2  # images per timed call: a tiny loop, so Table 1's estimate stays within minutes on a CPU


def _device(ctx: Any) -> str:
    return str(getattr(ctx, "device", "cpu"))


def openclip_image_cost(arch: str, ctx: Any, *, size: int = 224, note: str = "") -> UnitCost:
    """Seconds per image through an open_clip image tower `arch` (random init, real size)."""
    device = _device(ctx)
    key = ("openclip", arch, size, device)
    if key not in _MEMO:
        import open_clip
        import torch

        model = open_clip.create_model(arch, pretrained=None, device=device).eval()
        x = torch.randn(TIMING_BATCH, 3, size, size, device=device)
        with torch.no_grad():
            sec, peak = time_call(lambda: model.encode_image(x), repeat=1, warmup=1, device=device)
        _MEMO[key] = UnitCost(sec / TIMING_BATCH, "image", peak_bytes=peak,
                              note=f"{arch} image tower (random init){'; ' + note if note else ''}")
        del model
    return _MEMO[key]


def inception_cost(ctx: Any) -> UnitCost:
    """Seconds per image through Inception-v3 at 299 px (torchvision's architecture, random init:
    the same network as clean-fid's pool3 extractor)."""
    device = _device(ctx)
    key = ("inception", device)
    if key not in _MEMO:
        import torch
        from torchvision.models import inception_v3

        model = inception_v3(weights=None, aux_logits=False, init_weights=False).eval().to(device)
        x = torch.randn(TIMING_BATCH, 3, 299, 299, device=device)
        with torch.no_grad():
            sec, peak = time_call(lambda: model(x), repeat=1, warmup=1, device=device)
        _MEMO[key] = UnitCost(sec / TIMING_BATCH, "image", peak_bytes=peak, note="Inception-v3 (random init)")
    return _MEMO[key]


def frechet_seconds(width: int = 2048) -> float:
    """One Fréchet distance between two `width`-d Gaussians (metrics/frechet.py), timed once."""
    key = ("frechet", width)
    if key not in _MEMO:
        rng = np.random.default_rng(0)
        a, b = rng.standard_normal((2 * width, width)), rng.standard_normal((2 * width, width))
        ca, cb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
        sec, _ = time_call(lambda: frechet_distance(a.mean(0), ca, b.mean(0), cb), repeat=1, warmup=0)
        _MEMO[key] = UnitCost(sec, "distance")
    return _MEMO[key].seconds


def probe_images(n: int, size: int = 16) -> list:
    """`n` mid-grey RGB images for timing a model that takes images (contents do not change time)."""
    from PIL import Image

    return [Image.fromarray(np.full((size, size, 3), 128, dtype=np.uint8), "RGB") for _ in range(n)]


def call_cost(fn: Any, n: int, ctx: Any, *, unit: str = "item", note: str = "", key: tuple | None = None) -> UnitCost:
    """Seconds per item of `fn()`, which processes `n` items (timed once after a warm-up call)."""
    device = _device(ctx)
    if key is None or (*key, device) not in _MEMO:
        sec, peak = time_call(fn, repeat=1, warmup=1, device=device)
        cost = UnitCost(sec / n, unit, peak_bytes=peak, note=note)
        if key is None:
            return cost
        _MEMO[(*key, device)] = cost
    return _MEMO[(*key, device)]


def extractor_cost(extractor: Any, ctx: Any, *, n: int = 64, size: int = 16) -> UnitCost:
    """Seconds per image through a registered feature extractor other than Inception (the mini
    world's digit net), on `n` probe images of `size` px."""
    images = probe_images(n, size)
    return call_cost(lambda: extractor.features(images, ctx), n, ctx, unit="image",
                     note=f"{type(extractor).__name__} features, batch {n}", key=("extractor", repr(extractor.params)))
