"""`GanRM`: the Python API — train on images or features, score, save, load.

    rm = GanRM.train(ppd_items, generated_items, backbone="openclip", ctx=ctx, variant="bootstrap")
    rewards = rm.score(images)          # pandas Series: P(preference proxy data) in [0, 1], by file path
    rm.score_tensor(images)             # the same rewards as a torch.Tensor [N]
    rm.save("ckpt/");  rm = GanRM.load("ckpt/")
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd
import torch

from ganrm_bench.harness.errors import UserError
from ganrm_bench.harness.plugins.base import Backbone
from ganrm_bench.harness.plugins.fingerprint import plugin_fingerprint
from ganrm_bench.harness.plugins.sources import FolderImages
from ganrm_bench.harness.runtime.context import Context
from ganrm_bench.harness.runtime.numerics import fixed_threads
from ganrm_bench.harness.store.artifacts import Store
from ganrm_bench.methods.ganrm import checkpoint
from ganrm_bench.methods.ganrm.backbones import build_backbone
from ganrm_bench.methods.ganrm.features import POOLING, features_of
from ganrm_bench.methods.ganrm.rpl import PPD_CLASS
from ganrm_bench.methods.ganrm.training import FIT_THREADS, FitResult, TrainConfig, build_rpl, fit_features


def default_context(ctx: Any = None) -> Any:
    if ctx is not None:
        return ctx
    return Context(store=Store())


def image_inputs(images: Any, ctx: Any) -> list[Any]:
    """What `train` and `score` accept, as a list the backbones read: a folder (its images, as
    store Items), an image batch tensor/array [N, C, H, W] or [N, H, W, C] (uint8, or floats in
    [0, 1]), or a sequence of Items, paths, PIL images or arrays (kept as is)."""
    if isinstance(images, (str, Path)) and Path(images).is_dir():
        return list(FolderImages(path=str(images)).load(ctx).items)
    if isinstance(images, (str, Path)):
        raise UserError(f"{images}: not a folder of images", hint="give a folder, a list of image paths, or an image batch")
    if isinstance(images, (torch.Tensor, np.ndarray)) and images.ndim == 4:
        x = torch.as_tensor(images).detach().cpu()
        if x.shape[1] in (1, 3, 4) and x.shape[-1] not in (1, 3, 4):
            x = x.permute(0, 2, 3, 1)  # N C H W -> N H W C
        if x.is_floating_point():
            x = (x.clamp(0, 1) * 255).round()
        x = x.to(torch.uint8).numpy()
        if x.shape[-1] == 1:
            x = np.repeat(x, 3, axis=-1)
        return [np.ascontiguousarray(im[..., :3]) for im in x]
    return list(images)


def image_path(image: Any) -> str | None:
    """The file an image input came from (an Item or a path), else None."""
    if isinstance(image, (str, Path)):
        return str(image)
    path = getattr(image, "path", None)
    return str(path) if isinstance(path, (str, Path)) else None


def default_variant(cfg: TrainConfig, n_positives: int, n_negatives: int, has_unlabeled: bool) -> TrainConfig:
    """The variant when the caller chose none: bootstrap (the paper's default) when it has
    generator outputs to rank — `unlabeled` ones, or negatives left over by class balancing —
    else naive, with a warning (bootstrap would stop with "needs more generator outputs")."""
    left = n_negatives - min(n_positives, n_negatives) if cfg.balance else 0
    if cfg.variant != "bootstrap" or has_unlabeled or left >= 2:
        return cfg
    warnings.warn(f"GanRM.train: variant 'naive', as there are no generator outputs to rank for the paper's bootstrap "
                  f"({n_positives} PPD and {n_negatives} generated leave {left} over): pass unlabeled=<more generated "
                  "images> for it, or variant='naive' to silence this", UserWarning, stacklevel=3)
    return cfg.model_copy(update={"variant": "naive"})


def backbone_spec(backbone: Backbone) -> dict[str, Any]:
    return {"name": backbone.name, "params": backbone.params.model_dump(mode="json")}


class GanRM:
    """A trained GAN-RM: one RPL (naive / average / bootstrap) or several (voting: mean probability)."""

    def __init__(
        self,
        states: list[dict[str, torch.Tensor]],
        in_dim: int,
        hidden_dim: int,
        *,
        backbone: Backbone | None = None,
        config: dict[str, Any] | None = None,
    ):
        self.models = [build_rpl(s, in_dim, hidden_dim) for s in states]
        self.in_dim, self.hidden_dim = in_dim, hidden_dim
        self.backbone = backbone
        self.config = dict(config or {})
        self._backbone_checked = False

    # -- training ----------------------------------------------------------------------------------
    @classmethod
    def from_fit(cls, result: FitResult, cfg: TrainConfig, *, backbone: Backbone | None = None, backbone_fp: dict | None = None, seed: int | None = None) -> "GanRM":
        config = {
            "in_dim": result.in_dim, "hidden_dim": result.hidden_dim, "dropout": cfg.dropout,
            "ppd_class": PPD_CLASS, "aggregate": "mean probability over models", "pooling": POOLING,
            "score": "softmax probability of the PPD class",
            "training": {**cfg.model_dump(mode="json"), "effective_seed": cfg.seed if seed is None else seed},
            "metrics": result.metrics,
            "backbone": None if backbone is None else {**backbone_spec(backbone), "fingerprint": backbone_fp},
        }
        rm = cls(result.states, result.in_dim, result.hidden_dim, backbone=backbone, config=config)
        rm._backbone_checked = backbone is not None
        rm.fit_result = result
        return rm

    @classmethod
    def train(
        cls,
        positives: Sequence[Any],
        negatives: Sequence[Any],
        *,
        backbone: str | Backbone = "openclip",
        backbone_params: dict[str, Any] | None = None,
        unlabeled: Sequence[Any] | None = None,
        ctx: Any = None,
        config: TrainConfig | None = None,
        batch_size: int = 32,
        **overrides: Any,
    ) -> "GanRM":
        """Train on images: folders, image batches [N, C, H, W], or sequences of Items / ItemSets
        (features cached in the store), paths, PIL images or arrays. `overrides` are TrainConfig
        fields (variant, epochs, seed, ...). Without a chosen variant: bootstrap (the paper's) when
        there are generator outputs to rank (`unlabeled`, or negatives beyond the PPD count), else
        naive, with a warning saying so."""
        cfg = (config or TrainConfig()).model_copy(update=overrides) if overrides else (config or TrainConfig())
        cfg = TrainConfig(**cfg.model_dump())  # validate overrides
        chosen = "variant" in overrides or (config is not None and "variant" in config.model_fields_set)
        bb = build_backbone(backbone, backbone_params) if isinstance(backbone, str) else backbone
        ctx = default_context(ctx)
        feats = [features_of(bb, image_inputs(s, ctx), ctx, batch_size=batch_size) if s is not None else None
                 for s in (positives, negatives, unlabeled)]
        if not chosen:
            cfg = default_variant(cfg, len(feats[0]), len(feats[1]), feats[2] is not None)
        result = fit_features(feats[0], feats[1], cfg, unlabeled=feats[2])
        return cls.from_fit(result, cfg, backbone=bb, backbone_fp=plugin_fingerprint(bb, ctx))

    @classmethod
    def from_features(cls, positives: np.ndarray, negatives: np.ndarray, *, unlabeled: np.ndarray | None = None, config: TrainConfig | None = None, **overrides: Any) -> "GanRM":
        """Train on precomputed pooled features [N, d] (no backbone attached)."""
        cfg = TrainConfig(**{**(config or TrainConfig()).model_dump(), **overrides})
        return cls.from_fit(fit_features(positives, negatives, cfg, unlabeled=unlabeled), cfg)

    # -- scoring -----------------------------------------------------------------------------------
    @property
    def metrics(self) -> dict[str, Any]:
        return dict(self.config.get("metrics", {}))

    def score_features(self, features: np.ndarray | torch.Tensor) -> torch.Tensor:
        """Rewards [N] from pooled features [N, d]."""
        x = torch.as_tensor(np.asarray(features, dtype=np.float32))
        if x.ndim != 2 or x.shape[1] != self.in_dim:
            raise UserError(f"GAN-RM expects features [N, {self.in_dim}], got {tuple(x.shape)}")
        with torch.inference_mode(), fixed_threads(FIT_THREADS):  # as in training: bytes independent of the core count
            return torch.stack([m.reward(x) for m in self.models]).mean(dim=0)

    def _check_backbone(self, ctx: Any) -> None:
        if self._backbone_checked:
            return
        saved = (self.config.get("backbone") or {}).get("fingerprint")
        if saved is not None:
            current = plugin_fingerprint(self.backbone, ctx)
            if current != saved:
                diff = sorted(k for k in set(saved) | set(current) if saved.get(k) != current.get(k))
                raise UserError(
                    f"the backbone given differs from the one this GAN-RM was trained on (fields: {', '.join(diff)})",
                    hint="scores would be meaningless: use the same backbone model, weights and preprocessing",
                )
        self._backbone_checked = True

    def features(self, images: Sequence[Any], ctx: Any = None, *, batch_size: int = 32) -> np.ndarray:
        if self.backbone is None:
            raise UserError("this GAN-RM has no backbone attached (trained on features): use score_features, or load it with a backbone")
        self._check_backbone(ctx)
        return features_of(self.backbone, list(images), ctx, batch_size=batch_size)

    def score(self, images: Any, ctx: Any = None, *, batch_size: int = 32) -> pd.Series:
        """Rewards in [0, 1] (P(preference proxy data)) as a pandas Series named "reward", one per
        image in input order, indexed by file path when every image has one (a folder: its files
        in sorted order; paths; Items), else by position. `.to_numpy()` gives the array,
        `score_tensor` the same values as a torch.Tensor. Images: as `score_tensor` takes them."""
        if isinstance(images, (str, Path)):
            images = image_inputs(images, default_context(ctx))
        images = image_inputs(images, ctx)
        values = self.score_tensor(images, ctx, batch_size=batch_size).numpy()
        paths = [image_path(im) for im in images]
        index = pd.Index(paths, name="path") if paths and None not in paths else pd.RangeIndex(len(values), name="image")
        return pd.Series(values, index=index, name="reward")

    def score_tensor(self, images: Any, ctx: Any = None, *, batch_size: int = 32) -> torch.Tensor:
        """Rewards [N] in [0, 1] for images: a folder, an image batch [N, C, H, W], or a sequence of
        PIL images, H×W×3 arrays, videos for video backbones, paths, or Items (whose features come
        from the store cache when a Context is given)."""
        if isinstance(images, (str, Path)):
            images = image_inputs(images, default_context(ctx))
        images = image_inputs(images, ctx)
        if len(images) == 0:
            return torch.zeros(0)
        return self.score_features(self.features(images, ctx, batch_size=batch_size))

    def __repr__(self) -> str:
        training = self.config.get("training") or {}
        backbone = (self.config.get("backbone") or {}).get("name") or (self.backbone.name if self.backbone is not None else None)
        m = self.metrics
        parts = [f"variant={training.get('variant', '?')!r}", f"backbone={backbone!r}" if backbone else "backbone=None (features)",
                 f"features={self.in_dim}", f"models={len(self.models)}"]
        if "n_positives_given" in m:
            parts.append(f"trained on {m['n_positives_given']} PPD / {m['n_negatives_given']} generated")
        auc = m.get("heldout_auc")
        if isinstance(auc, (int, float)) and auc == auc:
            parts.append(f"held-out AUC {auc:.3f}")
        return f"GanRM({', '.join(parts)})"

    # -- persistence -------------------------------------------------------------------------------
    def save(self, directory: str | Path) -> Path:
        states = [{k: v.detach().clone() for k, v in m.state_dict().items()} for m in self.models]
        return checkpoint.save_checkpoint(directory, states, self.config)

    @classmethod
    def load(cls, directory: str | Path, *, backbone: Backbone | None = None, build: bool = True, device: str | None = None) -> "GanRM":
        """Load a checkpoint. The backbone is rebuilt from the saved name + params unless given
        (or `build=False`); its fingerprint is checked against the saved one before scoring."""
        states, config = checkpoint.load_checkpoint(directory)
        if backbone is None and build and config.get("backbone"):
            spec = config["backbone"]
            params = dict(spec.get("params") or {})
            if device is not None and "device" in params:
                params["device"] = device
            backbone = build_backbone(spec["name"], params)
        return cls(states, int(config["in_dim"]), int(config["hidden_dim"]), backbone=backbone, config=config)
