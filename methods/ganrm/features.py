"""Pooled backbone features (CLS ⊕ mean), computed once per image and cached in the store.

The cache key is (namespace, backbone fingerprint incl. weights digest and preprocessing, pooling,
item content key), so features survive across runs and are never mixed between backbones.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ganrm_bench.harness.errors import UserError
from ganrm_bench.harness.plugins.base import Backbone, Item, load_media
from ganrm_bench.harness.plugins.fingerprint import plugin_fingerprint
from ganrm_bench.methods.ganrm.rpl import pool_tokens

NAMESPACE = "ganrm-features"
POOLING = "cls+mean"


def feature_fingerprint(backbone: Backbone, ctx: Any = None) -> dict[str, Any]:
    return {**plugin_fingerprint(backbone, ctx), "pooling": POOLING}


def load_item(item: Item | str | Path) -> Any:
    """The media of an item or path, with the file named when it cannot be read."""
    path = item.path if isinstance(item, Item) else item
    try:
        return item.load() if isinstance(item, Item) else load_media(path)  # an Item a loader worker decoded returns its media
    except FileNotFoundError as exc:
        raise UserError(f"image file not found: {path}") from exc
    except Exception as exc:  # PIL raises many types on corrupt files
        raise UserError(f"cannot read image {path}: {exc}", hint="remove or fix the file, or set `skip_bad: true` on the entry to skip unreadable files") from exc


def media_features(backbone: Backbone, media: Sequence[Any], ctx: Any = None) -> np.ndarray:
    """Pooled features [N, 2D] (float32) of loaded images/videos, not cached."""
    if len(media) == 0:
        return np.zeros((0, 0), dtype=np.float32)
    return pool_tokens(backbone.tokens(list(media), ctx)).float().cpu().numpy()


def item_features(backbone: Backbone, items: Sequence[Item], ctx: Any, *, batch_size: int = 32, description: str = "") -> np.ndarray:
    """Pooled features [N, 2D] of items, each computed once per (backbone, item) via the store."""
    items = list(items)
    if not items:
        return np.zeros((0, 0), dtype=np.float32)
    return ctx.per_item_arrays(
        NAMESPACE,
        feature_fingerprint(backbone, ctx),
        items,
        lambda batch: media_features(backbone, [load_item(it) for it in batch], ctx),
        batch_size=batch_size,
        description=description or "GAN-RM features",
        prepare=backbone_prepare(backbone, ctx),
    ).astype(np.float32)


def backbone_prepare(backbone: Backbone, ctx: Any):
    """The backbone's per-image preprocessing for loader workers, with its model built here first
    (a worker must not load weights); None without workers or without one."""
    prepare = getattr(backbone, "prepare", None)
    if prepare is None or not getattr(ctx, "loader_workers", 0):
        return None
    if hasattr(backbone, "visual"):
        backbone.visual  # noqa: B018
    return prepare


def features_of(backbone: Backbone, images: Sequence[Any], ctx: Any = None, *, batch_size: int = 32) -> np.ndarray:
    """Features of a mixed input: Items use the cache (with a Context), paths are loaded, PIL images
    and arrays are encoded directly."""
    images = list(images)
    if images and ctx is not None and all(isinstance(x, Item) for x in images):
        return item_features(backbone, images, ctx, batch_size=batch_size)
    media = [load_item(x) if isinstance(x, (Item, str, Path)) else x for x in images]
    chunks = [media_features(backbone, media[i : i + batch_size], ctx) for i in range(0, len(media), batch_size)]
    return np.concatenate(chunks) if chunks else np.zeros((0, 0), dtype=np.float32)
