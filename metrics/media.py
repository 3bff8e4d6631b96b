"""Converting loaded items (PIL images, uint8 T×H×W×3 video arrays) into what each model wants."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ganrm_bench.harness.errors import UserError


def is_video(x: Any) -> bool:
    return isinstance(x, np.ndarray) and x.ndim == 4


def as_pil(x: Any, *, metric: str):
    """A PIL RGB image; a clear error for videos (image metrics score images)."""
    from PIL import Image

    if isinstance(x, Image.Image):
        return x if x.mode == "RGB" else x.convert("RGB")
    if isinstance(x, np.ndarray) and x.ndim == 3 and x.shape[-1] == 3:
        return Image.fromarray(np.ascontiguousarray(x, dtype=np.uint8))
    if is_video(x):
        raise UserError(f"metric {metric!r} scores images, but got a video (frames {tuple(x.shape)})",
                        hint="use a video metric (fvd, vbench, lpips) for video samples")
    raise UserError(f"metric {metric!r}: cannot read an image from {type(x).__name__}")


def as_uint8(x: Any, *, metric: str) -> np.ndarray:
    """An H×W×3 uint8 array."""
    return np.asarray(as_pil(x, metric=metric), dtype=np.uint8)


def as_video(x: Any, *, metric: str) -> np.ndarray:
    if is_video(x) and x.shape[-1] == 3:
        return np.asarray(x, dtype=np.uint8)
    raise UserError(f"metric {metric!r} scores videos (uint8 T×H×W×3), but got "
                    f"{type(x).__name__}{tuple(getattr(x, 'shape', ()))}")


def require_prompts(prompts: Sequence[str | None], *, metric: str, keys: Sequence[str] | None = None) -> list[str]:
    out = []
    for i, p in enumerate(prompts):
        if p is None:
            which = f"item {keys[i]!r}" if keys else f"sample #{i}"
            raise UserError(f"metric {metric!r} compares images with their prompts, but {which} has no prompt",
                            hint="score generated samples (which carry their prompt), not a bare image set")
        out.append(p)
    return out
