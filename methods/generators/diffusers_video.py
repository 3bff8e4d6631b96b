"""Generator `diffusers_video`: diffusers text-to-video pipelines; each video is one item of
uint8 frames T×H×W×3."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from pydantic import Field

from ganrm_bench.harness.plugins.base import SampleRequest
from ganrm_bench.methods.finetune.video_adapter import DiffusersVideoDenoiser
from ganrm_bench.methods.generators.diffusers_base import DiffusersGeneratorBase, DiffusersParams


class DiffusersVideoParams(DiffusersParams):
    num_frames: int | None = Field(None, ge=1, description="frames per video (default: the pipeline's)")
    batch_size: int = Field(1, ge=1, description="videos per pipeline call (does not change outputs)")


class DiffusersVideoGenerator(DiffusersGeneratorBase):
    """Any diffusers text-to-video pipeline (hub id or path); one item per video (uint8 T×H×W×3)."""

    version = "1"
    modality = "video"
    Params = DiffusersVideoParams

    def call_arguments(self, chunk: Sequence[SampleRequest], generators: list) -> dict[str, Any]:
        kwargs = super().call_arguments(chunk, generators)
        if self.params.num_frames is not None:
            kwargs["num_frames"] = self.params.num_frames
        return kwargs

    def finetune_model(self, ctx=None, *, device: str | None = None, resolution: int | None = None):
        """A private copy of the pipeline wrapped for video fine-tuning (5-D latents, per-frame VAE)."""
        return DiffusersVideoDenoiser(self.load_pipeline(ctx, device=device), num_frames=self.params.num_frames,
                                      height=self.params.height, width=self.params.width, resolution=resolution)

    def _call(self, pipe, chunk: Sequence[SampleRequest], generators: list) -> list:
        frames = pipe(**self.call_arguments(chunk, generators), output_type="np").frames
        return [video_to_uint8(v) for v in list(frames)[: len(chunk)]]


def video_to_uint8(video: Any) -> np.ndarray:
    """One video as uint8 T×H×W×3, from what pipelines return: float arrays in [0, 1] (T×H×W×C),
    lists of PIL frames, or tensors."""
    if isinstance(video, (list, tuple)):
        video = np.stack([np.asarray(f.convert("RGB")) if hasattr(f, "convert") else np.asarray(f) for f in video])
    if hasattr(video, "detach"):
        video = video.detach().float().cpu().numpy()
    video = np.asarray(video)
    if video.ndim != 4:
        raise ValueError(f"expected one video as a 4-d array, got shape {video.shape}")
    if video.shape[-1] not in (1, 3, 4) and video.shape[1] in (1, 3, 4):  # T×C×H×W
        video = video.transpose(0, 2, 3, 1)
    if video.dtype != np.uint8:
        video = np.clip(np.round(video.astype(np.float64) * 255.0), 0, 255).astype(np.uint8)
    if video.shape[-1] == 1:
        video = np.repeat(video, 3, axis=-1)
    return np.ascontiguousarray(video[..., :3])
