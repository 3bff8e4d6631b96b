"""LPIPS (lpips package): diversity among the K samples of a prompt, or distance to a reference.

mode=diversity  per prompt, the mean LPIPS over all pairs of its K samples (K ≥ 2); higher is
                more diverse. Each sample's value is its mean distance to the prompt's other
                samples, so the mean over samples equals the mean over pairs when K is constant.
mode=reference  each sample's mean LPIPS to the reference items of the same prompt id (e.g. the
                base model's samples for the same prompts), or with pairing=all to every
                reference item (unpaired target sets, e.g. real videos); lower is closer.
Videos are compared frame by frame (same frame count) and averaged over frames.

The trunk (AlexNet/VGG/SqueezeNet ImageNet weights) is torchvision's download file, looked for in
torch.hub's checkpoints folder or given as `backbone_weights`; the calibrated linear heads ship
with the lpips package.
"""

from __future__ import annotations

import warnings
from importlib.metadata import version as pkg_version
from pathlib import Path
from typing import Any, ClassVar, Literal, Sequence

import numpy as np
from pydantic import Field

from ganrm_bench.harness.errors import UserError
from ganrm_bench.harness.plugins.base import Item, ItemSet, MetricResult
from ganrm_bench.harness.runtime import random_weights as rw
from ganrm_bench.harness.store.assets import local_asset, url_asset
from ganrm_bench.harness.store.keys import hash_key
from ganrm_bench.harness.store.offline import is_offline
from ganrm_bench.metrics import ci as cimod
from ganrm_bench.metrics import weights as W
from ganrm_bench.metrics.base import PerSampleMetric, PerSampleParams, batch_size_for, cached_model
from ganrm_bench.metrics.media import as_uint8, is_video

# torchvision's ImageNet weights each lpips trunk is built from
TRUNKS = {
    "alex": ("alexnet", "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth"),
    "vgg": ("vgg16", "https://download.pytorch.org/models/vgg16-397923af.pth"),
    "squeeze": ("squeezenet1_1", "https://download.pytorch.org/models/squeezenet1_1-b8a52dc0.pth"),
}


class LPIPSParams(PerSampleParams):
    mode: Literal["diversity", "reference"] = "diversity"
    net: Literal["alex", "vgg", "squeeze"] = "alex"
    backbone_weights: str | None = None  # torchvision weights file of the trunk; default torch.hub's cache
    size: int | None = Field(None, ge=32)  # resize to size×size first; None: native (sizes must match)
    pairing: Literal["prompt", "all"] = "prompt"  # reference mode: same-prompt items, or every reference item


class LPIPS(PerSampleMetric):
    """LPIPS diversity among a prompt's samples (higher) or distance to a reference set (lower)."""

    name: ClassVar[str] = "lpips"
    version: ClassVar[str] = "1"
    needs_prompts: ClassVar[bool] = False
    shards_items: ClassVar[bool] = False  # one per_item_arrays call per prompt group: one process computes it
    Params = LPIPSParams

    def __init__(self, params: Any = None, **kwargs: Any):
        super().__init__(params, **kwargs)
        # direction and reference depend on the mode: instance attributes shadow the class defaults
        self.direction = "higher" if self.params.mode == "diversity" else "lower"
        self.needs_reference = self.params.mode == "reference"

    def convention(self) -> str:
        what = ("mean pairwise over a prompt's samples" if self.params.mode == "diversity" else
                "mean to every reference item" if self.params.pairing == "all" else "mean to same-prompt reference items")
        size = f", resized to {self.params.size}" if self.params.size else ""
        return f"lpips: {_pkg('lpips')} v0.1 {self.params.net}, {what}{size}"

    def trunk_file(self, ctx: Any = None) -> Path:
        if self.params.backbone_weights:
            return W.local_path(self.params.backbone_weights, model=f"LPIPS {self.params.net} trunk")
        _, url = TRUNKS[self.params.net]
        home = W.torch_hub_checkpoints()
        return W.url_file(url, Path(url).name, model=f"LPIPS {self.params.net} trunk (torchvision ImageNet weights)",
                          search_dirs=[home], download_dir=home, offline=is_offline(ctx))

    def assets(self) -> list:
        """The trunk's torchvision weights (the linear heads ship with lpips) (harness.store.assets)."""
        if self.params.backbone_weights:
            return [local_asset(self.params.backbone_weights, what=f"LPIPS {self.params.net} trunk")]
        _, url = TRUNKS[self.params.net]
        return [url_asset(url, W.torch_hub_checkpoints() / Path(url).name, what=f"LPIPS {self.params.net} trunk")]

    def weights_identity(self, ctx: Any = None) -> dict[str, str]:
        if rw.active():  # run --random-weights: a random trunk, lpips's shipped linear heads
            return {"trunk": rw.identity(f"torchvision {TRUNKS[self.params.net][0]}, random init")}
        return {"trunk": W.identity(self.trunk_file(ctx), ctx)}

    def _model(self, ctx: Any):
        device = getattr(ctx, "device", "cpu")
        if rw.active():
            return cached_model(("lpips", self.params.net, "random-init", device), lambda: build_lpips(self.params.net, None, device))
        path = self.trunk_file(ctx)
        return cached_model(("lpips", self.params.net, str(path), device), lambda: build_lpips(self.params.net, path, device))

    # -- distances -----------------------------------------------------------------------------
    def _tensor(self, x: Any):
        import torch

        frames = np.asarray(x, dtype=np.uint8) if is_video(x) else as_uint8(x, metric=self.name)[None]
        t = torch.from_numpy(np.array(frames)).permute(0, 3, 1, 2).float() / 127.5 - 1.0  # [-1,1]
        if self.params.size:
            t = torch.nn.functional.interpolate(t, size=(self.params.size, self.params.size), mode="bilinear",
                                                align_corners=False, antialias=True)
        if min(t.shape[-2:]) < 32:
            raise UserError(f"metric 'lpips': images of {tuple(t.shape[-2:])} px are too small for the {self.params.net} trunk",
                            hint="set `size:` (≥ 32) to upsample them")
        return t

    def distances(self, pairs: Sequence[tuple[Any, Any]], ctx: Any) -> np.ndarray:
        """LPIPS of each (a, b) pair of loaded images/videos (videos: mean over frames)."""
        import torch

        model = self._model(ctx)
        device = getattr(ctx, "device", "cpu")
        out = []
        bs = batch_size_for(ctx, self.params.batch_size)
        for start in range(0, len(pairs), bs):
            chunk = pairs[start:start + bs]
            a, b, owner = [], [], []
            for i, (x, y) in enumerate(chunk):
                ta, tb = self._tensor(x), self._tensor(y)
                if ta.shape != tb.shape:
                    raise UserError(f"metric 'lpips': compared items differ in shape {tuple(ta.shape)} vs {tuple(tb.shape)}",
                                    hint="set `size:` to resize both to a common square size")
                a.append(ta)
                b.append(tb)
                owner += [i] * ta.shape[0]
            with torch.no_grad():
                d = model(torch.cat(a).to(device), torch.cat(b).to(device)).reshape(-1).double().cpu().numpy()
            out.extend(np.bincount(owner, weights=d) / np.bincount(owner))
        return np.asarray(out, dtype=np.float64)

    def score_batch(self, images: Sequence[Any], prompts: Sequence[str | None], ctx: Any) -> np.ndarray:
        """Diversity of one group of images: each image's mean distance to the others."""
        k = len(images)
        if k < 2:
            raise UserError("metric 'lpips' (diversity): a prompt needs at least 2 samples")
        pairs = [(i, j) for i in range(k) for j in range(i + 1, k)]
        d = self.distances([(images[i], images[j]) for i, j in pairs], ctx)
        per = np.zeros(k)
        for (i, j), dij in zip(pairs, d):
            per[i] += dij
            per[j] += dij
        return per / (k - 1)

    # -- per-sample values, cached per group -----------------------------------------------------
    def per_sample_scores(self, samples: ItemSet, ctx: Any, reference: ItemSet | None = None) -> np.ndarray:
        fp = self.score_fingerprint(ctx)
        index = {it.key: i for i, it in enumerate(samples.items)}
        values = np.full(len(samples), np.nan)
        ref_groups = reference.by_prompt() if reference is not None else {}
        for prompt_id, group in samples.by_prompt().items():
            if self.params.mode == "diversity":
                if len(group) < 2:
                    raise UserError(f"metric 'lpips' (diversity): prompt {prompt_id!r} has {len(group)} sample; "
                                    "diversity needs K ≥ 2 samples per prompt")
                key = hash_key({"group": [it.key for it in group]})
                def compute(_, g=group):
                    return self.score_batch([it.load() for it in g], [], ctx)[None]
            else:
                refs = list(reference.items) if self.params.pairing == "all" else ref_groups.get(prompt_id)
                if not refs:
                    raise UserError(f"metric 'lpips' (reference): the reference set has no item for prompt {prompt_id!r}",
                                    hint="the reference must hold samples with the same prompt ids")
                key = hash_key({"group": [it.key for it in group], "reference": [it.key for it in refs]})
                def compute(_, g=group, r=refs):
                    return self._to_reference(g, r, ctx)[None]
            row = ctx.per_item_arrays(f"metric/lpips/{self.params.mode}", fp, [Item(key=key, path="")], compute,
                                      batch_size=1, description="lpips", decode=False)[0]
            for it, v in zip(group, row):
                values[index[it.key]] = v
        return values

    def _to_reference(self, group: list[Item], refs: list[Item], ctx: Any) -> np.ndarray:
        loaded_refs = [r.load() for r in refs]
        out = []
        for it in group:
            x = it.load()
            out.append(self.distances([(x, r) for r in loaded_refs], ctx).mean())
        return np.asarray(out)

    def compute(self, samples: ItemSet, ctx: Any, *, reference: ItemSet | None = None) -> MetricResult:
        self._ctx = ctx
        if self.params.mode == "reference" and reference is None:
            raise UserError("metric 'lpips' with mode=reference needs a reference set", hint="give `reference:` in the spec")
        if len(samples) == 0:
            raise UserError(f"metric 'lpips': the sample set {samples.key!r} is empty")
        scores = self.per_sample_scores(samples, ctx, reference if self.params.mode == "reference" else None)
        groups = cimod.group_index([it.prompt_id or it.key for it in samples.items])
        value, lo, hi = cimod.mean_with_ci(scores, groups, self.params.ci, cimod.rng_for(ctx, self.name, samples.key))
        return MetricResult(value, lo, hi, n=len(scores), convention=self.convention(), per_sample=scores,
                            extras={"prompts": int(groups.max()) + 1, "ci": cimod.describe(self.params.ci, "prompts")})


def build_lpips(net: str, trunk_file: Path | None, device: str):
    """lpips.LPIPS with its shipped linear heads and the trunk loaded from `trunk_file` (no download;
    None: the random trunk, for run --random-weights).

    The trunk's slices hold torchvision's `features[i]` modules under the name str(i), so a
    torchvision state dict ("features.{i}.weight" or "{i}.weight") maps onto them directly."""
    import lpips

    with warnings.catch_warnings():  # lpips passes torchvision's deprecated `pretrained=`
        warnings.simplefilter("ignore", UserWarning)
        with rw.seeded("lpips", net):
            model = lpips.LPIPS(net=net, pretrained=True, pnet_rand=True, verbose=False)
    if trunk_file is None:  # run --random-weights: the random trunk lpips built
        return model.eval().to(device)
    state = W.load_torch_state(trunk_file)
    target = {(name[len("features."):] if name.startswith("features.") else name): t for name, t in state.items()}
    loaded = 0
    for _, module in model.net.named_children():  # slice1..sliceN
        for idx, sub in module.named_children():  # torchvision features[idx]
            for pname, param in sub.named_parameters():
                key = f"{idx}.{pname}"
                if key not in target:
                    raise UserError(f"{trunk_file}: no weights for trunk layer features.{key} of lpips {net}",
                                    hint=f"give torchvision's {TRUNKS[net][0]} ImageNet weights file")
                param.data.copy_(target[key])
                loaded += 1
    if not loaded:
        raise UserError(f"{trunk_file}: no trunk weights found for lpips {net}")
    return model.eval().to(device)


def _pkg(name: str) -> str:
    try:
        return pkg_version(name)
    except Exception:
        return "?"
