"""Generator `diffusers`: any diffusers text-to-image pipeline (SD1.5, SDXL, ...) by hub id or path."""

from __future__ import annotations

from typing import Sequence

from ganrm_bench.harness.plugins import SampleRequest
from ganrm_bench.methods.generators.diffusers_base import DiffusersGeneratorBase, DiffusersParams


class DiffusersImageGenerator(DiffusersGeneratorBase):
    """Any diffusers text-to-image pipeline (hub id or path), with UNet/LoRA swaps and sampler params."""

    version = "1"
    modality = "image"
    Params = DiffusersParams

    def _call(self, pipe, chunk: Sequence[SampleRequest], generators: list) -> list:
        out = pipe(**self.call_arguments(chunk, generators), output_type="pil")
        return [im.convert("RGB") for im in out.images]
