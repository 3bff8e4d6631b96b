"""Rows that only sample: `base` (one sample per prompt), `rm_at_k` (best of K by a scorer) and
`diffusion_dpo` (the public Diffusion-DPO UNet swapped into the base pipeline)."""

from __future__ import annotations

from pydantic import Field

from ganrm_bench.harness.engine.ops import PLUGIN
from ganrm_bench.harness.errors import UserError
from ganrm_bench.harness.plugins.base import Method, PluginParams
from ganrm_bench.harness.plugins.fingerprint import plugin_fingerprint
from ganrm_bench.harness.plugins.registry import REGISTRIES


class BaseParams(PluginParams):
    k: int = Field(1, ge=1, description="samples per prompt (the pool's first k); ≥ 2 for LPIPS diversity")


class Base(Method):
    """The base generator: the first k samples per prompt of the shared pool (default one)."""

    version = "1"
    Params = BaseParams

    def build(self, b, entry):
        return b.pool(entry.generator, entry.prompts, k=self.params.k)


class RMAtKParams(PluginParams):
    k: int = Field(10, ge=1, description="samples per prompt to choose from (the pool's first k)")


class RMAtK(Method):
    """RM@K: per prompt, the scorer's argmax among the first K samples of the pool."""

    version = "1"
    uses = ("generator", "prompts", "scorer")
    Params = RMAtKParams

    def build(self, b, entry):
        pool = b.pool(entry.generator, entry.prompts, k=self.params.k)
        return b.select(pool, b.scores(entry.scorer, pool), "argmax")


class RankOfKParams(PluginParams):
    k: int = Field(10, ge=1, description="samples per prompt in the pool")
    rank: int = Field(1, ge=1, description="which rank to keep, 1 = the scorer's best")


class RankOfK(Method):
    """The sample at a given scorer rank among K per prompt (rows of the paper's Fig. 2)."""

    version = "1"
    uses = ("generator", "prompts", "scorer")
    Params = RankOfKParams

    def build(self, b, entry):
        if self.params.rank > self.params.k:
            raise UserError(f"method rank_of_k: rank {self.params.rank} is beyond k={self.params.k}")
        pool = b.pool(entry.generator, entry.prompts, k=self.params.k)
        return b.select(pool, b.scores(entry.scorer, pool), "rank", rank=self.params.rank)


class DiffusionDPOParams(PluginParams):
    unet: str | None = Field(None, description="the public DPO UNet: mhdang/dpo-sd1.5-text2image-v1 (SD1.5) or "
                             "mhdang/dpo-sdxl-text2image-v1 (SDXL), or a local path; default: the generator entry's own `unet`")
    unet_subfolder: str | None = "unet"


class DiffusionDPO(Method):
    """DiffusionDPO baseline: the base pipeline with the public Diffusion-DPO UNet swapped in."""

    version = "1"
    Params = DiffusionDPOParams

    def build(self, b, entry):
        g = b.spec.generators[entry.generator]
        cls = REGISTRIES["generator"].get(g.generator)
        if "unet" not in getattr(cls.Params, "model_fields", {}):
            raise UserError(f"method diffusion_dpo: generator {g.generator!r} (entry {entry.generator!r}) cannot swap its UNet",
                            hint="use a diffusers generator (generator: diffusers)")
        unet = self.params.unet or g.params.get("unet")
        if unet is None:
            raise UserError("method diffusion_dpo needs the DPO UNet: set unet: mhdang/dpo-sd1.5-text2image-v1 (SD1.5) "
                            "or mhdang/dpo-sdxl-text2image-v1 (SDXL), or a local path")
        obj = b.plugin("generator", g.generator, {**g.params, "unet": unet, "unet_subfolder": self.params.unet_subfolder})
        gen = b.node(PLUGIN, {"generator": plugin_fingerprint(obj, b.ctx)}, label=f"{entry.generator}+dpo-unet", obj=obj)
        return b.pool(gen, entry.prompts, k=1)
