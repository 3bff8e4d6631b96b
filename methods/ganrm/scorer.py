"""GAN-RM as a registered TrainableScorer: the harness trains it once per artifact (fit/save) and
applies it later (load_state/score) under the same per-sample scorer protocol as ImageReward,
PickScore, HPS or CLIPScore."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated, Any, Sequence

import numpy as np

from ganrm_bench.harness.diagnostics.scorecard import classifier_card
from ganrm_bench.harness.errors import UserError
from ganrm_bench.harness.plugins.base import ItemSet, PluginRef, TrainableScorer
from ganrm_bench.harness.plugins.fingerprint import plugin_fingerprint
from ganrm_bench.harness.runtime.seeds import derive_seed
from ganrm_bench.methods.ganrm.backbones import build_backbone
from ganrm_bench.methods.ganrm.checkpoint import json_safe
from ganrm_bench.methods.ganrm.features import NAMESPACE, POOLING, backbone_prepare, feature_fingerprint, item_features
from ganrm_bench.methods.ganrm.model import GanRM
from ganrm_bench.methods.ganrm.training import TrainConfig, fit_features
from ganrm_bench.metrics.estimate import call_cost, openclip_image_cost, probe_images


class GanRMScorer(TrainableScorer):
    """GAN-RM: P(preference proxy data) from an MLP on frozen CLIP-Vision features (Liu et al.)."""

    version = "3"  # 2: the RPL fit runs with one thread; 3: its dropout masks no longer depend on the CPU vendor

    class Params(TrainConfig):
        backbone: Annotated[str, PluginRef("backbone", params="backbone_params")] = "openclip"
        backbone_params: dict[str, Any] = {}
        feature_batch_size: int = 32

    def __init__(self, params=None, **kwargs):
        super().__init__(params, **kwargs)
        self._backbone = None
        self.model: GanRM | None = None

    @property
    def backbone(self):
        if self._backbone is None:
            self._backbone = build_backbone(self.params.backbone, dict(self.params.backbone_params))
        return self._backbone

    def train_config(self) -> TrainConfig:
        return TrainConfig(**{k: getattr(self.params, k) for k in TrainConfig.model_fields})

    def fingerprint(self, ctx: Any = None) -> dict[str, Any]:
        return {**super().fingerprint(), "backbone": plugin_fingerprint(self.backbone, ctx), "pooling": POOLING}

    def estimate_unit(self, ctx: Any = None):
        """plan --estimate: seconds per item through the frozen open_clip backbone (random init);
        None for other backbones."""
        p = self.params
        if p.backbone == "openclip":
            return openclip_image_cost(p.backbone_params.get("model", "ViT-B-32"), ctx)
        if p.backbone == "video_frames" and p.backbone_params.get("image_backbone", "openclip") == "openclip":
            frames = int(p.backbone_params.get("frames", 8))
            cost = openclip_image_cost(p.backbone_params.get("image_backbone_params", {}).get("model", "ViT-B-32"), ctx)
            return type(cost)(cost.seconds * frames, "video", peak_bytes=cost.peak_bytes, note=f"{cost.note} x {frames} frames")
        if hasattr(self.backbone, "tokens"):  # another image backbone (the mini world's conv net): timed on probe images

            images = probe_images(64)
            return call_cost(lambda: self.backbone.tokens(images, ctx), 64, ctx, unit="image",
                             note=f"{p.backbone} backbone tokens, batch 64", key=("ganrm_backbone", p.backbone, repr(p.backbone_params)))
        return None

    def fit(self, positives: ItemSet, negatives: ItemSet, ctx: Any, *, unlabeled: ItemSet | None = None) -> dict[str, Any]:
        """Features of every item once (store cache), then the RPL on them. The training seed is
        derive_seed("ganrm", params.seed, ctx.seed): fixed by both, so each run seed of a spec
        trains its own RM and reruns reproduce it."""
        bs = self.params.feature_batch_size
        feats = [
            item_features(self.backbone, list(s), ctx, batch_size=bs, description=f"GAN-RM features ({what})") if s is not None else None
            for s, what in ((positives, "PPD"), (negatives, "generated"), (unlabeled, "unlabeled"))
        ]
        cfg = self.train_config()
        seed = derive_seed("ganrm", cfg.seed, getattr(ctx, "seed", 0))
        result = fit_features(feats[0], feats[1], cfg, unlabeled=feats[2], seed=seed)
        self.model = GanRM.from_fit(result, cfg, backbone=self.backbone, backbone_fp=plugin_fingerprint(self.backbone, ctx), seed=seed)
        self.heldout = {"scores": np.asarray(result.trace["heldout_probs"]).tolist(),
                        "labels": np.asarray(result.trace["heldout_labels"]).tolist()}
        return json_safe(result.metrics)  # NaN (no held-out set) → None: manifests stay strict JSON

    def _require_model(self) -> GanRM:
        if self.model is None:
            raise UserError("the GAN-RM scorer has no trained model yet: fit it or load_state a checkpoint first")
        return self.model

    HELDOUT_FILE = "heldout_scores.json"  # the held-out split's scores and labels, for the report card

    def save(self, directory: Path) -> None:
        self._require_model().save(directory)
        if getattr(self, "heldout", None) is not None:
            (Path(directory) / self.HELDOUT_FILE).write_text(json.dumps(self.heldout))

    def load_state(self, directory: Path) -> None:
        self.model = GanRM.load(directory, backbone=self.backbone)
        path = Path(directory) / self.HELDOUT_FILE
        self.heldout = json.loads(path.read_text()) if path.is_file() else None

    def report_card(self) -> dict[str, Any] | None:
        """Held-out AUC [bootstrap CI], accuracy, ECE, the data it was trained on, the training
        curve, and (bootstrap variant) the pre-bootstrap model's AUC. None without a held-out split."""
        heldout = getattr(self, "heldout", None)
        if self.model is None:
            return None
        m = self.model.metrics
        fraction = self.train_config().heldout_fraction
        if heldout and heldout.get("labels"):
            quality = classifier_card(heldout["scores"], heldout["labels"])
        elif heldout is None and _finite(m.get("heldout_auc")):  # an artifact trained before held-out scores were stored
            quality = {"heldout_auc": m["heldout_auc"], "heldout_accuracy": m.get("heldout_accuracy"), "n_heldout": m.get("n_heldout"),
                       "note": f"this artifact predates {self.HELDOUT_FILE}: no AUC interval, ECE or histogram; "
                               "retrain it (remove the train_scorer artifact) for a full card"}
        elif fraction > 0 and not m.get("n_heldout"):  # a split asked for, too few samples to make one
            quality = {"heldout_auc": None, "heldout_accuracy": None, "n_heldout": 0,
                       "note": f"no held-out samples: heldout_fraction {fraction:g} of {m.get('n_per_class')} samples per class "
                               "rounds to none (at least one per class stays in training); no AUC, ECE or histogram — "
                               "train on more PPD images for a card"}
        else:
            return None  # no held-out split (heldout_fraction 0)
        card = {"scorer": self.name, "variant": m.get("variant"), "training_seed": (self.model.config.get("training") or {}).get("effective_seed"),
                **quality,
                "n_ppd": m.get("n_positives_given"), "n_positives": m.get("n_per_class"), "n_negatives": m.get("n_per_class"),
                "n_negatives_given": m.get("n_negatives_given"), "n_train": m.get("n_train"),
                "n_pseudo_labels": 2 * int(m["bootstrap_m"]) if m.get("bootstrap_m") else 0,
                "training_curve": m.get("training_curve", [])}
        if m.get("variant") == "bootstrap":
            card.update(stage1_heldout_auc=m.get("stage1_heldout_auc"), stage1_heldout_accuracy=m.get("stage1_heldout_accuracy"),
                        training_curve_bootstrap=m.get("training_curve_bootstrap", []),
                        n_pseudo_positives=m.get("bootstrap_m"), n_pseudo_negatives=m.get("bootstrap_m"))
        return card

    accepts_items = True  # Items reuse the per-item backbone features cached during training

    def item_loading(self, ctx: Any):
        """(which items' images scoring will read: those without cached features, the backbone's
        per-image preprocessing) for loader workers (`harness.runtime.prefetch.scorer_loading`)."""
        fingerprint, store = feature_fingerprint(self.backbone, ctx), ctx.store
        needs = lambda item: not store.item_path(ctx.item_array_keys(NAMESPACE, fingerprint, [item])[0], "npy").exists()  # noqa: E731
        return needs, backbone_prepare(self.backbone, ctx)

    def score(self, images: Sequence[Any], prompts: Sequence[str | None], ctx: Any) -> np.ndarray:
        """Rewards in [0, 1]; prompts are ignored (GAN-RM judges the image alone)."""
        model = self._require_model()
        return model.score_tensor(list(images), ctx, batch_size=self.params.feature_batch_size).numpy().astype(np.float64)


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)
