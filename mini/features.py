"""Feature extractor `mini_digits`: the metric network (FID's features, alignment's classifier)."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
from pydantic import Field

from ganrm_bench.harness.plugins.base import FeatureExtractor, PluginParams
from ganrm_bench.harness.runtime.context import Context
from ganrm_bench.harness.runtime.devices import resolve_device
from ganrm_bench.mini.common import METRIC_FILE, digest, images_to_tensor, load_net, weights_path
from ganrm_bench.mini.nets import MetricNet


class MiniDigitsFeaturesParams(PluginParams):
    weights: str | None = Field(None, description="metric network safetensors; default: the shipped file")
    device: str = "auto"
    batch_size: int = Field(256, ge=1)


class MiniDigitsFeatures(FeatureExtractor):
    """Mini world: 128-d penultimate features of the project-trained metric digit classifier.

    The metric network never saw the PPD or the FID reference (it trains on the `train` split) and
    is not the reward model's backbone. Besides `features` (FID's feature net in the mini world),
    `probabilities` gives its softmax over the 10 digits (the alignment metric's classifier).
    """

    name = "mini_digits"  # fixed here too, so fingerprints do not depend on registry use
    version = "1"
    Params = MiniDigitsFeaturesParams
    params: MiniDigitsFeaturesParams
    dim = MetricNet.feature_dim

    def __init__(self, params: Any = None, **kwargs: Any):
        super().__init__(params, **kwargs)
        self._path = weights_path(self.params.weights, METRIC_FILE, what="mini_digits metric network")
        self._net: MetricNet | None = None

    def fingerprint(self) -> dict[str, Any]:
        fp = super().fingerprint()
        fp["params"] = {k: v for k, v in fp["params"].items() if k not in ("weights", "batch_size")}
        return {**fp, "weights_sha256": digest(self._path)}

    @property
    def net(self) -> MetricNet:
        if self._net is None:
            self._net = load_net(MetricNet(), self._path, what="metric network").to(resolve_device(self.params.device))
        return self._net

    @torch.no_grad()
    def _run(self, images: Sequence[Any], head: bool) -> np.ndarray:
        device = next(self.net.parameters()).device
        out = []
        for start in range(0, len(images), self.params.batch_size):
            x = images_to_tensor(images[start : start + self.params.batch_size]).to(device)
            f = self.net.features(x)
            out.append((torch.softmax(self.net.head(f), 1) if head else f).cpu().numpy())
        width = 10 if head else self.dim
        return np.concatenate(out).astype(np.float32) if out else np.zeros((0, width), np.float32)

    def features(self, images: Sequence[Any], ctx: Context | None = None) -> np.ndarray:
        return self._run(images, head=False)

    def probabilities(self, images: Sequence[Any], ctx: Context | None = None) -> np.ndarray:
        """[B, 10] softmax probabilities of the digits."""
        return self._run(images, head=True)
