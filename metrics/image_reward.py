"""ImageReward (image-reward package): BLIP ViT-L + MLP, normalized (r - 0.16717) / 1.03334.

Made to work on current transformers and offline:
- its BLIP code imports `apply_chunking_to_forward`, `find_pruneable_heads_and_indices`,
  `prune_linear_layer` from `transformers.modeling_utils`; they moved to `pytorch_utils` and are
  provided there before import;
- its tokenizer is `BertTokenizer.from_pretrained('bert-base-uncased')` with no path hook
  (ImageReward#28): the `tokenizer` param (hub id or local dir) is used instead, cache-only offline;
- the checkpoint and `med_config.json` are resolved by us (hub repo THUDM/ImageReward or local
  files) and the state dict read with torch.load(weights_only=True).
Scoring is batched (the package scores one image at a time) with the same arithmetic.
"""

from __future__ import annotations

import contextlib
from importlib.metadata import version as pkg_version
from pathlib import Path
from typing import Any, ClassVar, Sequence

import numpy as np
from pydantic import Field

from ganrm_bench.harness.errors import UserError, require
from ganrm_bench.harness.plugins.base import PluginParams
from ganrm_bench.harness.runtime import random_weights as rw
from ganrm_bench.harness.store.assets import hub_asset, local_asset, ref_asset
from ganrm_bench.harness.store.hub import is_local
from ganrm_bench.harness.store.offline import is_offline
from ganrm_bench.metrics import weights as W
from ganrm_bench.metrics.base import MetricScorer, PerSampleMetric, PerSampleParams, cached_model
from ganrm_bench.metrics.estimate import openclip_image_cost
from ganrm_bench.metrics.media import as_pil

HUB_REPO = "THUDM/ImageReward"
MEAN, STD = 0.16717362830052426, 1.0333394966054072  # the package's normalization constants


def import_image_reward():
    """The package's ImageReward class, after restoring the transformers names it imports."""
    import transformers.modeling_utils as mu
    import transformers.pytorch_utils as pu

    for name in ("apply_chunking_to_forward", "find_pruneable_heads_and_indices", "prune_linear_layer"):
        if not hasattr(mu, name) and hasattr(pu, name):
            setattr(mu, name, getattr(pu, name))
    require("clip", plugin="image_reward", extra="reward-models")  # openai-clip, imported by the package
    module = require("ImageReward.ImageReward", plugin="image_reward", extra="reward-models")
    return module


@contextlib.contextmanager
def tokenizer_from(spec: str, *, cache_dir: str | None, offline: bool):
    """Make BLIP's `init_tokenizer` load BERT's tokenizer from `spec` (same special tokens)."""
    import ImageReward.models.BLIP.blip_pretrain as bp

    def init_tokenizer():
        from transformers import BertTokenizer

        try:
            tok = BertTokenizer.from_pretrained(spec, cache_dir=cache_dir, local_files_only=offline or is_local(spec))
        except Exception as exc:
            raise W.MissingWeightsError(
                f"ImageReward tokenizer {spec}", f"the BERT tokenizer is not in the hub cache or at that path ({type(exc).__name__})",
                how=f"pass `tokenizer: <local dir with vocab.txt>` or put {spec} in the hub cache (HF_HOME)") from exc
        tok.add_special_tokens({"bos_token": "[DEC]"})
        tok.add_special_tokens({"additional_special_tokens": ["[ENC]"]})
        tok.enc_token_id = tok.additional_special_tokens_ids[0]
        return tok

    original = bp.init_tokenizer
    bp.init_tokenizer = init_tokenizer
    try:
        yield
    finally:
        bp.init_tokenizer = original


class ImageRewardModel(PluginParams):
    checkpoint: str = HUB_REPO  # hub repo holding ImageReward.pt, or a local checkpoint file
    med_config: str | None = None  # BLIP's med_config.json; default: beside the checkpoint / in the hub repo
    tokenizer: str = "bert-base-uncased"  # hub id or local directory
    cache_dir: str | None = None
    batch_size: int = Field(8, ge=1)


class ImageReward(PerSampleMetric):
    """ImageReward v1.0 (BLIP + MLP), normalized to ≈N(0,1) as the package does; higher is better."""

    name: ClassVar[str] = "image_reward"
    version: ClassVar[str] = "1"

    class Params(ImageRewardModel, PerSampleParams):
        pass

    def estimate_unit(self, ctx=None):
        """plan --estimate: ImageReward's BLIP ViT-L/16 image encoder, timed as open_clip ViT-L-14
        (a ViT-L at 224 px: about the same FLOPs); its BERT text side is not timed."""
        return openclip_image_cost("ViT-L-14", ctx, note="stands in for BLIP ViT-L/16")

    def convention(self) -> str:
        return (f"image_reward: ImageReward-v1.0 (image-reward {_pkg('image-reward')}), "
                f"(r - {MEAN:.5f}) / {STD:.5f}, prompts truncated at 35 BERT tokens")

    def files(self, ctx: Any = None) -> tuple[Path, Path]:
        p, offline = self.params, is_offline(ctx)
        model = "ImageReward-v1.0"
        if is_local(p.checkpoint):
            ckpt = W.local_path(p.checkpoint, model=model)
            med = W.local_path(p.med_config or str(ckpt.parent / "med_config.json"), model=model, what="med_config")
            return ckpt, med
        ckpt = W.hub_file(p.checkpoint, "ImageReward.pt", model=model, cache_dir=p.cache_dir, offline=offline)
        med = (W.local_path(p.med_config, model=model, what="med_config") if p.med_config else
               W.hub_file(p.checkpoint, "med_config.json", model=model, cache_dir=p.cache_dir, offline=offline))
        return ckpt, med

    def assets(self) -> list:
        """ImageReward.pt + med_config.json, and the BERT tokenizer (harness.store.assets)."""
        p = self.params
        out = []
        if is_local(p.checkpoint):
            out.append(local_asset(p.checkpoint, what="ImageReward-v1.0 checkpoint"))
            out.append(local_asset(p.med_config or str(Path(p.checkpoint).expanduser().parent / "med_config.json"),
                                   what="ImageReward med_config.json"))
        else:
            files = ("ImageReward.pt",) + (() if p.med_config else ("med_config.json",))
            out.append(hub_asset(p.checkpoint, files, cache_dir=p.cache_dir, what="ImageReward-v1.0 checkpoint"))
            if p.med_config:
                out.append(local_asset(p.med_config, what="ImageReward med_config.json"))
        out.append(ref_asset(p.tokenizer, looks_local=is_local, files=("vocab.txt",), cache_dir=p.cache_dir,
                             what="BERT tokenizer for ImageReward",
                             patterns=("vocab.txt", "tokenizer_config.json", "tokenizer.json", "special_tokens_map.json", "config.json")))
        return out

    def random_weights_unavailable(self) -> str | None:
        """run --random-weights leaves this column out: BLIP's BERT needs bert-base-uncased's
        vocab.txt and ImageReward's med_config.json, which no installed package ships."""
        if not rw.active():
            return None
        return ("ImageReward (BLIP ViT-L + BERT) cannot be built without downloads: its BERT tokenizer needs "
                "bert-base-uncased's vocab.txt and its med_config.json comes with the checkpoint; neither ships with an "
                "installed package, so this column is left out of a --random-weights run")

    def weights_identity(self, ctx: Any = None) -> dict[str, str]:
        ckpt, med = self.files(ctx)
        return {"checkpoint": W.identity(ckpt, ctx), "med_config": W.identity(med, ctx), "tokenizer": self.params.tokenizer}

    def _load(self, ctx: Any):
        ckpt, med = self.files(ctx)
        device = getattr(ctx, "device", "cpu")
        p = self.params

        def build():
            module = import_image_reward()
            with tokenizer_from(p.tokenizer, cache_dir=p.cache_dir, offline=is_offline(ctx)):
                model = module.ImageReward(med_config=str(med), device=device)
            state = W.load_torch_state(ckpt)
            result = model.load_state_dict(state, strict=False)  # as the package (BLIP keys it does not use)
            if any(k.startswith("mlp.") for k in result.missing_keys):
                raise UserError(f"{ckpt}: not an ImageReward checkpoint (no MLP head weights)",
                                hint="point `checkpoint` at ImageReward.pt from THUDM/ImageReward")
            return model.eval().to(device)

        return cached_model(("image_reward", str(ckpt), str(med), p.tokenizer, device), build)

    def score_batch(self, images: Sequence[Any], prompts: Sequence[str], ctx: Any) -> np.ndarray:
        import torch

        model = self._load(ctx)
        device = getattr(ctx, "device", "cpu")
        with torch.no_grad():
            text = model.blip.tokenizer(list(prompts), padding="max_length", truncation=True, max_length=35,
                                        return_tensors="pt").to(device)
            x = torch.stack([model.preprocess(as_pil(im, metric=self.name)) for im in images]).to(device)
            image_embeds = model.blip.visual_encoder(x)
            image_atts = torch.ones(image_embeds.size()[:-1], dtype=torch.long, device=device)
            out = model.blip.text_encoder(text.input_ids, attention_mask=text.attention_mask,
                                          encoder_hidden_states=image_embeds, encoder_attention_mask=image_atts,
                                          return_dict=True)
            raw = model.mlp(out.last_hidden_state[:, 0, :].float())
            rewards = (raw - model.mean) / model.std
        return rewards.reshape(-1).double().cpu().numpy()


def _pkg(name: str) -> str:
    try:
        return pkg_version(name)
    except Exception:
        return "?"


class ImageRewardScorer(MetricScorer):
    """ImageReward v1.0 as a selector (normalized reward)."""

    name: ClassVar[str] = "image_reward"
    metric_cls = ImageReward
    Params = ImageRewardModel
