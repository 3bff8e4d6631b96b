"""Helpers shared by the GAN-RM tests: folders of synthetic images, a tiny backbone config, a scorer."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ganrm_bench.harness.plugins.builtins import register_builtins
from ganrm_bench.harness.plugins.registry import REGISTRIES
from ganrm_bench.methods.ganrm.scorer import GanRMScorer

#: a 64 px ViT with 16 px patches: 17 tokens of width 32 → pooled features of 64
TINY = {"model": "ganrm-tiny-vit", "pretrained": None}


def write_images(folder: Path, n: int, level: int, seed: int, *, size: int = 40, ext: str = "png", prefix: str = "img") -> list[Path]:
    """n noisy images around a grey level (uint8), written as files; returns their paths."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        arr = np.clip(rng.normal(level, 25, (size, size, 3)), 0, 255).astype(np.uint8)
        path = folder / f"{prefix}{i:03d}.{ext}"
        Image.fromarray(arr).save(path)
        paths.append(path)
    return paths


def make_scorer(**kw):
    register_builtins()
    cls = REGISTRIES["scorer"].get("ganrm")
    assert cls is GanRMScorer
    return cls({"backbone": "openclip", "backbone_params": TINY, "epochs": 30, "heldout_fraction": 0.25, **kw})
