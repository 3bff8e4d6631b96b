"""FID: Fréchet distance between Inception (or any registered) features of samples and a reference.

Params:
    features         registered feature extractor (default `inception`; the mini world registers
                     its digit net)
    features_params  params of that extractor (weights path, cache_dir...)
    mode             clean | legacy_pytorch — the resize + weights convention of clean-fid
                     (default clean). Passed to extractors that declare a `mode` param; for
                     extractors that do their own preprocessing (the digit net) giving `mode`
                     is an error and the convention records `mode=native`.
    ci               {method, level, resamples, blocks}: block bootstrap over samples
The reference set comes from the spec (`reference=`); its statistics are cached in our store.
"""

from __future__ import annotations

from importlib.metadata import version
from typing import Any, ClassVar, Literal

from ganrm_bench.metrics.base import SetMetric, SetParams
from ganrm_bench.metrics.estimate import extractor_cost, frechet_seconds, inception_cost


class FIDParams(SetParams):
    mode: Literal["clean", "legacy_pytorch"] | None = None


class FID(SetMetric):
    """Fréchet Inception Distance (clean-fid conventions) against a reference image set; lower is better."""

    name: ClassVar[str] = "fid"
    version: ClassVar[str] = "3"  # 2: CI = delete-one-block jackknife over prompt blocks; 3: blocks by prompt id alone, leave-one-block-out values kept
    Params = FIDParams

    def extractor_overrides(self) -> dict[str, Any]:
        return {"mode": self.params.mode}  # None: the extractor's own default (inception: clean)

    def estimate_unit(self, ctx=None):
        """plan --estimate: Inception per image (samples and reference), plus the Fréchet distances
        (the value and one per leave-one-block-out CI block) at 2048-d."""
        cost = inception_cost(ctx) if self.params.features == "inception" else extractor_cost(self.extractor(), ctx)
        dim = 2048 if self.params.features == "inception" else int(getattr(self.extractor(), "dim", 2048))
        ci = self.params.ci
        blocks = {"jackknife": ci.blocks, "bootstrap": ci.resamples}.get(ci.method, 0)
        return type(cost)(cost.seconds, "image", fixed=(1 + blocks) * frechet_seconds(dim), peak_bytes=cost.peak_bytes,
                          note=f"{cost.note}; {1 + blocks} Fréchet distances at {dim}-d")

    def convention(self) -> str:
        ext = self.extractor()
        mode = getattr(ext.params, "mode", None) or "native"
        return f"fid: clean-fid {version('clean-fid')} mode={mode}, features={self.params.features}"
