"""The miniature world's networks: the generator's UNet config, the metric classifier, the annotator
and the RM backbone (a fixed random conv net). All read 1-channel 16×16 images in [0, 1]."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from ganrm_bench.methods.ganrm.rpl import PortableDropout  # the same dropout masks on every CPU vendor

NUM_CLASSES = 10
NULL_CLASS = 10  # the "no digit" label used for classifier-free guidance (label dropout)

#: ~0.69M parameters; the 4×4 level has self-attention. One training step of batch 128 takes
#: ~0.2 s on one CPU thread, so 1,000 steps fit in a few minutes.
UNET_CONFIG: dict[str, Any] = {
    "sample_size": 16,
    "in_channels": 1,
    "out_channels": 1,
    "block_out_channels": [16, 32, 64],
    "layers_per_block": 1,
    "down_block_types": ["DownBlock2D", "DownBlock2D", "AttnDownBlock2D"],
    "up_block_types": ["AttnUpBlock2D", "UpBlock2D", "UpBlock2D"],
    "num_class_embeds": NUM_CLASSES + 1,
    "norm_num_groups": 8,
    "attention_head_dim": 32,
}

#: the training noise schedule (DDPM); sampling uses DDIM built from the same config.
SCHEDULER_CONFIG: dict[str, Any] = {
    "num_train_timesteps": 1000,
    "beta_schedule": "squaredcos_cap_v2",
    "prediction_type": "epsilon",
    "clip_sample": True,
}


def build_unet(config: dict[str, Any] | None = None):
    from diffusers import UNet2DModel

    return UNet2DModel(**(config or UNET_CONFIG))


class MetricNet(nn.Module):
    """The metric network: a digit classifier whose 128-d penultimate (post-ReLU) features play
    Inception's role for FID, and whose class probability plays CLIP's role for alignment."""

    feature_dim = 128

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), PortableDropout(0.25),
            nn.Linear(64 * 4 * 4, self.feature_dim), nn.ReLU(),
        )  # fmt: skip
        self.head = nn.Sequential(PortableDropout(0.25), nn.Linear(self.feature_dim, NUM_CLASSES))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body((x - 0.5) / 0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class AnnotatorNet(nn.Module):
    """The annotator: a different digit classifier (5×5 convs, average pooling, GELU, 64-d), trained
    on its own split from its own seed, standing in for human preference labellers."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, 16, 5, padding=2), nn.GELU(), nn.AvgPool2d(2),
            nn.Conv2d(16, 32, 5, padding=2), nn.GELU(), nn.AvgPool2d(2),
            nn.Flatten(), nn.Linear(32 * 4 * 4, 64), nn.GELU(), PortableDropout(0.2),
            nn.Linear(64, NUM_CLASSES),
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x - 0.5)


class RandomConvBackbone(nn.Module):
    """A frozen two-layer conv net with He-normal weights drawn by numpy from `seed` (stable across
    torch versions, never trained). Tokens: [B, 1 + 8·8, width]: token 0 is the global max-pool of
    the last feature map, the rest its 8×8 spatial positions."""

    def __init__(self, seed: int = 0, width: int = 128, hidden: int = 64) -> None:
        super().__init__()
        rng = np.random.default_rng(seed)
        self.conv1 = nn.Conv2d(1, hidden, 3, padding=1)
        self.conv2 = nn.Conv2d(hidden, width, 3, stride=2, padding=1)
        for conv in (self.conv1, self.conv2):
            fan_in = conv.in_channels * 9
            w = rng.standard_normal(conv.weight.shape) * np.sqrt(2.0 / fan_in)
            b = rng.standard_normal(conv.bias.shape) * 0.1
            conv.weight.data = torch.from_numpy(w.astype(np.float32))
            conv.bias.data = torch.from_numpy(b.astype(np.float32))
        self.requires_grad_(False)
        self.eval()
        self.width = width

    def train(self, mode: bool = True) -> "RandomConvBackbone":  # frozen: always in eval mode
        return super().train(False)

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.conv2(torch.relu(self.conv1(x))))  # [B, width, 8, 8]
        spatial = h.flatten(2).transpose(1, 2)  # [B, 64, width]
        summary = h.amax(dim=(2, 3))[:, None]  # [B, 1, width]
        return torch.cat([summary, spatial], dim=1)
