"""Scorer `mini_annotator`: the stand-in for human preference labellers in the mini world."""

from __future__ import annotations

from typing import Any, ClassVar, Sequence

import numpy as np
import torch
from pydantic import Field

from ganrm_bench.harness.errors import UserError
from ganrm_bench.harness.plugins.base import PluginParams, Scorer
from ganrm_bench.harness.runtime.context import Context
from ganrm_bench.harness.runtime.devices import resolve_device
from ganrm_bench.metrics.base import PerSampleMetric, PerSampleParams
from ganrm_bench.metrics.estimate import call_cost, probe_images
from ganrm_bench.mini.common import ANNOTATOR_FILE, digest, images_to_tensor, load_net, parse_digit, weights_path
from ganrm_bench.mini.nets import AnnotatorNet


class MiniAnnotatorParams(PluginParams):
    weights: str | None = Field(None, description="annotator safetensors; default: the shipped file")
    device: str = "auto"
    batch_size: int = Field(256, ge=1)


class MiniAnnotator(Scorer):
    """Mini world: an independent "annotator" net's probability that the image is the prompted digit.

    It stands in for Pick-a-Pic's human labels in the DiffusionDPO analogue. A person asked which
    of two pictures better shows "a handwritten digit 7" prefers the one that is clearly a 7 and
    legible; the probability of the prompted digit rewards exactly that (alignment and legibility
    together, prompt-conditioned like PickScore), whereas a realism-only score would ignore the
    prompt. Independence from the metrics: other architecture (5×5 convs, average pooling, GELU),
    other seed, and its own 200-digit split, disjoint from the metric network's, the PPD and the
    FID reference.
    """

    name = "mini_annotator"  # fixed here too, so fingerprints do not depend on registry use
    version = "1"
    Params = MiniAnnotatorParams
    params: MiniAnnotatorParams

    def __init__(self, params: Any = None, **kwargs: Any):
        super().__init__(params, **kwargs)
        self._path = weights_path(self.params.weights, ANNOTATOR_FILE, what="mini_annotator network")
        self._net: AnnotatorNet | None = None

    def fingerprint(self) -> dict[str, Any]:
        fp = super().fingerprint()
        fp["params"] = {k: v for k, v in fp["params"].items() if k not in ("weights", "batch_size")}
        return {**fp, "weights_sha256": digest(self._path)}

    @property
    def net(self) -> AnnotatorNet:
        if self._net is None:
            self._net = load_net(AnnotatorNet(), self._path, what="annotator").to(resolve_device(self.params.device))
        return self._net

    @torch.no_grad()
    def estimate_unit(self, ctx: Context | None = None):
        """plan --estimate: the annotator net on a batch of probe images, per image."""
        images, prompts = probe_images(256), ["a handwritten digit 3"] * 256
        return call_cost(lambda: self.score(images, prompts, ctx), 256, ctx, unit="image", note="mini annotator net, batch 256",
                         key=("mini_annotator",))

    def score(self, images: Sequence[Any], prompts: Sequence[str | None], ctx: Context | None = None) -> np.ndarray:
        if len(images) != len(prompts):
            raise UserError(f"mini_annotator: {len(images)} images but {len(prompts)} prompts")
        labels = torch.tensor([parse_digit(p) for p in prompts], dtype=torch.long)
        device = next(self.net.parameters()).device
        out = []
        for start in range(0, len(images), self.params.batch_size):
            x = images_to_tensor(images[start : start + self.params.batch_size]).to(device)
            probs = torch.softmax(self.net(x), 1).cpu()
            out.append(probs[torch.arange(len(x)), labels[start : start + len(x)]].numpy())
        return np.concatenate(out).astype(np.float64) if out else np.zeros(0)


class MiniAnnotatorMetricParams(PerSampleParams):
    weights: str | None = Field(None, description="annotator safetensors; default: the shipped file")
    device: str = "auto"
    batch_size: int = Field(256, ge=1)


class MiniAnnotatorMetric(PerSampleMetric):
    """Mini world: the annotator's probability of the prompted digit, as a held-out column (the
    stand-in for a human preference judge: the "gold" reward of over-optimisation curves)."""

    name: ClassVar[str] = "mini_annotator"
    version: ClassVar[str] = "1"
    direction: ClassVar[str] = "higher"
    Params = MiniAnnotatorMetricParams
    runtime_fields: ClassVar[frozenset[str]] = frozenset({"ci", "batch_size", "device", "weights"})

    def annotator(self) -> MiniAnnotator:
        """The annotator scorer itself (one per metric object: its net loads once)."""
        if getattr(self, "_annotator", None) is None:
            p = self.params
            self._annotator = MiniAnnotator({"weights": p.weights, "device": p.device, "batch_size": p.batch_size})
        return self._annotator

    def weights_identity(self, ctx: Any = None) -> dict[str, str]:
        return {"annotator": self.annotator().fingerprint()["weights_sha256"]}

    def convention(self) -> str:
        return f"mini_annotator: softmax P(prompted digit) of the mini annotator net {self.weights_identity()['annotator'][:12]}"

    def score_batch(self, images: Sequence[Any], prompts: Sequence[str | None], ctx: Any) -> np.ndarray:
        return self.annotator().score(list(images), list(prompts), ctx)

    def fingerprint(self, ctx: Any = None) -> dict[str, Any]:
        fp = super().fingerprint(ctx)
        for key in ("weights", "device"):  # the digest stands for the file
            fp["params"].pop(key, None)
        return fp
