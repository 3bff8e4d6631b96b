"""The fine-tuning protocol (`Denoiser`) for diffusers text-to-video pipelines with a 3-D UNet
(TextToVideoSDPipeline: ModelScope, ZeroScope; the VideoCrafter / VideoDPO lineage).

As VideoDPO's and diffusers' video training code: prompts through the frozen CLIP text encoder
(as for SD), each frame through the frozen 2-D VAE (latent_dist.sample × scaling_factor), latents
laid out B×C×T×H×W for the UNet3DConditionModel. The loop, the DPO / SFT losses (mean over every
non-batch dim) and the shared (timestep, noise) of a pair are the image ones.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch

from ganrm_bench.harness.errors import UserError
from ganrm_bench.harness.plugins.base import load_media
from ganrm_bench.methods.finetune.diffusers_adapter import DiffusersDenoiser
from ganrm_bench.methods.finetune.protocol import randn_per_example

#: frames per VAE call: bounds memory at full resolution (576×320 × 16 frames × 16 videos)
VAE_CHUNK = 8


def load_video(x: Any) -> np.ndarray:
    """A uint8 T×H×W×3 array from an array, a list of PIL frames, an .npz path or an Item."""
    if hasattr(x, "load") and not hasattr(x, "convert"):  # an Item (a PIL image has .load too)
        x = x.load()
    if isinstance(x, (str, bytes)) or hasattr(x, "__fspath__"):
        x = load_media(x)
    if isinstance(x, (list, tuple)):
        x = np.stack([np.asarray(f.convert("RGB")) if hasattr(f, "convert") else np.asarray(f) for f in x])
    arr = np.asarray(x)
    if arr.ndim != 4 or arr.shape[-1] != 3:
        raise UserError(f"video fine-tuning needs videos as T×H×W×3 frames, got an array of shape {arr.shape}",
                        hint="train a video generator on its own samples (.npz videos), not on images")
    if arr.dtype != np.uint8:
        arr = np.clip(np.round(arr.astype(np.float64) * 255), 0, 255).astype(np.uint8)
    return arr


class DiffusersVideoDenoiser(DiffusersDenoiser):
    """A text-to-video pipeline's 3-D UNet with its frozen text encoder and per-frame VAE.

    `num_frames`: frames trained on (the first ones of each video); None = the videos' own
    length, which must then be the same for every video of a batch."""

    def __init__(self, pipe, *, num_frames: int | None = None, **kwargs):
        unet = getattr(pipe, "unet", None)
        if unet is None or getattr(pipe, "vae", None) is None or getattr(pipe, "text_encoder", None) is None \
                or type(unet).__name__ != "UNet3DConditionModel":
            raise UserError(f"pipeline {type(pipe).__name__} cannot be fine-tuned: video fine-tuning needs a "
                            f"UNet3DConditionModel, a VAE and a CLIP text encoder (got unet {type(unet).__name__})",
                            hint="use a TextToVideoSDPipeline model (e.g. cerspense/zeroscope_v2_576w, ali-vilab/text-to-video-ms-1.7b)")
        super().__init__(pipe, **kwargs)
        self.num_frames = num_frames

    def _frames(self, videos: Sequence[Any]) -> list[np.ndarray]:
        videos = [load_video(v) for v in videos]
        if self.num_frames is not None:
            short = [v.shape[0] for v in videos if v.shape[0] < self.num_frames]
            if short:
                raise UserError(f"a video of {short[0]} frames is shorter than num_frames={self.num_frames}")
            return [v[: self.num_frames] for v in videos]
        lengths = sorted({v.shape[0] for v in videos})
        if len(lengths) > 1:
            raise UserError(f"videos of a training batch have different frame counts {lengths}",
                            hint="set the generator's num_frames to train on the first frames of each video")
        return videos

    def _pixels(self, frames: np.ndarray) -> torch.Tensor:
        """Frames T×H×W×3 uint8 → T×3×height×width in [-1, 1] (resized with PIL Lanczos, like
        diffusers' image processor, when the size differs)."""
        from PIL import Image

        if frames.shape[1:3] != (self.height, self.width):
            frames = np.stack([np.asarray(Image.fromarray(f).resize((self.width, self.height), Image.LANCZOS)) for f in frames])
        x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float()
        return x / 127.5 - 1.0

    @torch.no_grad()
    def encode_images(self, images: Sequence[Any]) -> tuple[torch.Tensor, torch.Tensor]:
        """Videos → the VAE posterior (mean, std) of every frame, B×T×C×h×w (deterministic: computable once)."""
        vae = self.pipe.vae
        pixels = torch.stack([self._pixels(v) for v in self._frames(images)])  # B×T×3×H×W
        b, t = pixels.shape[:2]
        flat = pixels.flatten(0, 1)
        means, stds = [], []
        for i in range(0, flat.shape[0], VAE_CHUNK):
            dist = vae.encode(flat[i : i + VAE_CHUNK].to(device=vae.device, dtype=vae.dtype)).latent_dist
            means.append(dist.mean)
            stds.append(dist.std)
        mean, std = torch.cat(means), torch.cat(stds)
        return mean.reshape(b, t, *mean.shape[1:]), std.reshape(b, t, *std.shape[1:])

    @torch.no_grad()
    def sample_latents(self, mean: torch.Tensor, std: torch.Tensor,
                       generator: torch.Generator | Sequence[torch.Generator] | None = None) -> torch.Tensor:
        """Posterior samples laid out B×C×T×h×w, the noise of one video's frames from its own generator."""
        noise = randn_per_example(tuple(mean.shape), generator).to(mean)
        latents = (mean + std * noise) * self._vae_config.scaling_factor
        return latents.permute(0, 2, 1, 3, 4).contiguous().to(self.unet.dtype)  # B×T×C×h×w → B×C×T×h×w
