"""Backbone `mini_conv`: the reward model's frozen feature network in the mini world."""

from __future__ import annotations

from typing import Any, Sequence

import torch
from pydantic import Field

from ganrm_bench.harness.plugins.base import Backbone, PluginParams
from ganrm_bench.harness.runtime.context import Context
from ganrm_bench.harness.runtime.devices import resolve_device
from ganrm_bench.mini.common import images_to_tensor
from ganrm_bench.mini.nets import RandomConvBackbone


class MiniConvParams(PluginParams):
    seed: int = Field(0, description="draws the fixed random weights (numpy, He-normal)")
    width: int = Field(128, ge=1, description="token width D")
    hidden: int = Field(64, ge=1, description="channels of the first conv layer")
    device: str = "auto"


class MiniConv(Backbone):
    """Mini world: a fixed random 2-layer conv net (never trained) giving 65 tokens of width 128.

    Deliberately *not* the metric network, so that a reward model built on it cannot game the
    metrics by sharing their features. Token 0 is the global max-pool of the last feature map (the
    summary token, as CLS in a ViT); tokens 1..64 are its 8×8 spatial positions. GAN-RM pools
    token 0 ⊕ mean over all tokens.
    """

    name = "mini_conv"  # fixed here too, so fingerprints do not depend on registry use
    version = "1"
    Params = MiniConvParams
    params: MiniConvParams

    def __init__(self, params: Any = None, **kwargs: Any):
        super().__init__(params, **kwargs)
        self.dim = self.params.width
        self._net: RandomConvBackbone | None = None

    @property
    def net(self) -> RandomConvBackbone:
        if self._net is None:
            p = self.params
            self._net = RandomConvBackbone(p.seed, p.width, p.hidden).to(resolve_device(p.device))
        return self._net

    @torch.no_grad()
    def tokens(self, images: Sequence[Any], ctx: Context | None = None) -> torch.Tensor:
        device = next(self.net.parameters()).device
        return self.net(images_to_tensor(images).to(device))
