"""HPS v2 (hpsv2 package): ViT-H-14 open_clip model + the HPS checkpoint; score = raw cosine.

v2.0 and v2.1 are different checkpoints whose scores are not comparable: `version` is a param
and part of the convention. `hpsv2.score()` cannot run offline (it builds ViT-H-14 with a hub
tag first) and reloads the checkpoint on every call; here the model is built once with
`pretrained=None` and the checkpoint loaded with torch.load(weights_only=True).

hpsv2 1.2.0's wheel lacks `src/open_clip/bpe_simple_vocab_16e6.txt.gz`, which its tokenizer
module reads at import: we import that module with its file path pointed at open_clip's identical
copy, leaving site-packages untouched.
"""

from __future__ import annotations

import importlib.util
import sys
from importlib.metadata import version as pkg_version
from pathlib import Path
from typing import Any, ClassVar, Literal, Sequence

import numpy as np
from pydantic import Field

from ganrm_bench.harness.errors import require
from ganrm_bench.harness.plugins.base import PluginParams
from ganrm_bench.harness.runtime import random_weights as rw
from ganrm_bench.harness.store.assets import hub_asset, local_asset
from ganrm_bench.harness.store.offline import is_offline
from ganrm_bench.metrics import weights as W
from ganrm_bench.metrics.base import MetricScorer, PerSampleMetric, PerSampleParams, cached_model
from ganrm_bench.metrics.estimate import openclip_image_cost
from ganrm_bench.metrics.media import as_pil

HUB_REPO = "xswu/HPSv2"
CHECKPOINTS = {"v2.0": "HPS_v2_compressed.pt", "v2.1": "HPS_v2.1_compressed.pt"}


def import_hps_open_clip():
    """hpsv2's bundled open_clip, importable despite the missing BPE vocabulary file."""
    name = "hpsv2.src.open_clip.tokenizer"
    if "hpsv2.src.open_clip" in sys.modules:
        return sys.modules["hpsv2.src.open_clip"]
    hpsv2 = require("hpsv2", plugin="hps", extra="reward-models")
    tok_path = Path(hpsv2.__file__).parent / "src" / "open_clip" / "tokenizer.py"
    if not (tok_path.parent / "bpe_simple_vocab_16e6.txt.gz").exists() and name not in sys.modules:
        import open_clip

        spec = importlib.util.spec_from_file_location(name, tok_path)
        module = importlib.util.module_from_spec(spec)
        module.__file__ = str(Path(open_clip.__file__).parent / "tokenizer.py")  # default_bpe() looks beside __file__
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except Exception:
            del sys.modules[name]
            raise
    import hpsv2.src.open_clip as hps_open_clip

    return hps_open_clip


class HPSModel(PluginParams):
    hps_version: Literal["v2.0", "v2.1"] = "v2.1"
    checkpoint: str | None = None  # local checkpoint file; default: the hub file of hps_version
    arch: str = "ViT-H-14"  # hpsv2's open_clip architecture name
    cache_dir: str | None = None
    batch_size: int = Field(16, ge=1)


class HPS(PerSampleMetric):
    """Human Preference Score v2 (v2.0 or v2.1 checkpoint), raw cosine image·prompt; higher is better."""

    name: ClassVar[str] = "hps"
    version: ClassVar[str] = "1"

    class Params(HPSModel, PerSampleParams):
        pass

    def estimate_unit(self, ctx=None):
        """plan --estimate: the HPS open_clip image tower per image (text tower not timed)."""
        return openclip_image_cost(self.params.arch, ctx)

    def convention(self) -> str:
        ckpt = Path(self.params.checkpoint).name if self.params.checkpoint else CHECKPOINTS[self.params.hps_version]
        return f"hps: {self.params.hps_version} ({ckpt}), hpsv2 {_hps_version()} {self.params.arch}, raw cosine"

    def checkpoint_file(self, ctx: Any = None) -> Path:
        p = self.params
        model = f"HPS {p.hps_version} checkpoint"
        if p.checkpoint:
            return W.local_path(p.checkpoint, model=model)
        return W.hub_file(HUB_REPO, CHECKPOINTS[p.hps_version], model=model, cache_dir=p.cache_dir, offline=is_offline(ctx))

    def assets(self) -> list:
        """The HPS checkpoint of `hps_version` (the ViT-H-14 is built without weights) (harness.store.assets)."""
        p = self.params
        if p.checkpoint:
            return [local_asset(p.checkpoint, what=f"HPS {p.hps_version} checkpoint")]
        return [hub_asset(HUB_REPO, (CHECKPOINTS[p.hps_version],), cache_dir=p.cache_dir, what=f"HPS {p.hps_version} checkpoint")]

    def weights_identity(self, ctx: Any = None) -> dict[str, str]:
        if rw.active():  # run --random-weights: hpsv2's open_clip architecture, no checkpoint
            return {"hps": rw.identity(f"hpsv2 open_clip {self.params.arch}")}
        return {"hps": W.identity(self.checkpoint_file(ctx), ctx)}

    def _load(self, ctx: Any):
        random = rw.active()
        path = None if random else self.checkpoint_file(ctx)
        device = getattr(ctx, "device", "cpu")
        arch = self.params.arch

        def build():
            hoc = import_hps_open_clip()
            model, _, preprocess = hoc.create_model_and_transforms(
                arch, None, precision="fp32", device=device, jit=False, force_quick_gelu=False,
                force_custom_text=False, force_patch_dropout=False, force_image_size=None, pretrained_image=False,
                image_mean=None, image_std=None, light_augmentation=True, aug_cfg={}, output_dict=True,
                with_score_predictor=False, with_region_predictor=False)
            if path is not None:
                state = W.load_torch_state(path)
                state = state.get("state_dict", state)
                model.load_state_dict(state)
            return model.eval().to(device), preprocess, hoc.get_tokenizer(arch)

        if random:
            def build_random():
                with rw.seeded("hps", arch):
                    return build()

            return cached_model(("hps", arch, "random-init", device), build_random)
        return cached_model(("hps", arch, str(path), device), build)

    def score_batch(self, images: Sequence[Any], prompts: Sequence[str], ctx: Any) -> np.ndarray:
        import torch

        model, preprocess, tokenizer = self._load(ctx)
        device = getattr(ctx, "device", "cpu")
        with torch.no_grad():
            x = torch.stack([preprocess(as_pil(im, metric=self.name)) for im in images]).to(device)
            out = model(x, tokenizer(list(prompts)).to(device))
            scores = (out["image_features"] * out["text_features"]).sum(dim=-1)  # both L2-normalized
        return scores.double().cpu().numpy()


def _hps_version() -> str:
    try:
        return pkg_version("hpsv2")
    except Exception:
        return "?"


class HPSScorer(MetricScorer):
    """HPS v2 as a selector (v2.0 or v2.1 checkpoint, raw cosine)."""

    name: ClassVar[str] = "hps"
    metric_cls = HPS
    Params = HPSModel
