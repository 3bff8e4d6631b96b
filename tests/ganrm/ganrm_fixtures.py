"""Helpers shared by the GAN-RM tests (imported by name: tests/ganrm is on sys.path)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

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
