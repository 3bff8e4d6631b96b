"""FVD with the cd-fvd package's networks: I3D (400-d logits) or VideoMAE-v2 (ViT-g features).

Params (besides the set-metric ones, see metrics.base.SetMetric):
    features  i3d | videomae (registered feature extractors; default i3d)
    frames    frames per clip (default: the extractor's, 16): the first `frames` frames of each video
    clips     at most this many clips per set (default 2048, StyleGAN-V's fvd2048_16f); when a
              set is larger a seeded subset is used; None = all
Implementations differ (StyleGAN-V's TF-ported I3D vs cd-fvd's PyTorch port, ~10 %): the
convention names cd-fvd, the network, frames and clips.

cd-fvd downloads its checkpoints into its own package folder from a code host; here they are
looked for at `weights`, in `cache_dir` (default torch.hub's checkpoints folder) and in that
package folder, and read with torch.load(weights_only=True).
"""

from __future__ import annotations

from importlib.metadata import version as pkg_version
from pathlib import Path
from typing import Any, ClassVar, Sequence

import numpy as np
from pydantic import Field

from ganrm_bench.harness.errors import UserError, require
from ganrm_bench.harness.plugins.base import FeatureExtractor, Item, PluginParams
from ganrm_bench.harness.runtime import random_weights as rw
from ganrm_bench.harness.runtime.seeds import derive_seed
from ganrm_bench.harness.store.assets import local_asset, url_asset
from ganrm_bench.harness.store.offline import is_offline
from ganrm_bench.metrics import weights as W
from ganrm_bench.metrics.base import FeaturesRef, SetMetric, SetParams, batch_size_for, cached_model
from ganrm_bench.metrics.media import as_video

I3D_FILE, I3D_URL = "i3d_pretrained_400.pt", "https://github.com/songweige/TATS/raw/main/tats/fvd/i3d_pretrained_400.pt"
VMAE_FILE = "vit_g_hybrid_pt_1200e_ssv2_ft.pth"
VMAE_URL = "https://pjlab-gvm-data.oss-cn-shanghai.aliyuncs.com/internvideo/videomaev2/vit_g_hybrid_pt_1200e_ssv2_ft.pth"


class VideoFeatureParams(PluginParams):
    frames: int = Field(16, ge=1)
    weights: str | None = None
    cache_dir: str | None = None
    batch_size: int = Field(4, ge=1)


class _CdFvdFeatures(FeatureExtractor):
    Params = VideoFeatureParams
    filename: ClassVar[str]
    url: ClassVar[str]
    subdir: ClassVar[str]

    def weights_file(self, ctx: Any = None) -> Path:
        if self.params.weights:
            return W.local_path(self.params.weights, model=f"cd-fvd {self.name}")
        cdfvd = require("cdfvd", plugin="fvd", extra="video")
        home = Path(self.params.cache_dir).expanduser() if self.params.cache_dir else W.torch_hub_checkpoints()
        package_dir = Path(cdfvd.__file__).parent / "third_party" / self.subdir
        return W.url_file(self.url, self.filename, model=f"cd-fvd {self.name} network", search_dirs=[home, package_dir],
                          download_dir=home, offline=is_offline(ctx))

    def assets(self) -> list:
        """The network's weights file (harness.store.assets), where `weights_file` looks."""
        if self.params.weights:
            return [local_asset(self.params.weights, what=f"cd-fvd {self.name}")]
        home = Path(self.params.cache_dir).expanduser() if self.params.cache_dir else W.torch_hub_checkpoints()
        search = []
        try:
            import cdfvd

            search.append(Path(cdfvd.__file__).parent / "third_party" / self.subdir / self.filename)
        except ImportError:
            pass
        return [url_asset(self.url, home / self.filename, search=search, what=f"cd-fvd {self.name} network")]

    def fingerprint(self, ctx: Any = None) -> dict[str, Any]:
        fp = super().fingerprint()
        for k in ("batch_size", "cache_dir", "weights"):
            fp["params"].pop(k, None)
        fp["weights"] = (rw.identity(f"cd-fvd {self.name} architecture, He init") if rw.active()
                         else W.identity(self.weights_file(ctx), ctx))
        fp["implementation"] = f"cd-fvd {_pkg('cd-fvd')}"
        return fp

    def _random(self, device: str):
        with rw.seeded(f"fvd-{self.name}"):
            net, preprocess, forward = self._network()
            W.he_init(net)
        return net.eval().to(device), preprocess, forward

    def _build(self, path: Path, device: str):
        net, preprocess, forward = self._network()
        net.load_state_dict(self._state(W.load_torch_state(path)))
        return net.eval().to(device), preprocess, forward

    def _state(self, state: dict) -> dict:
        return state

    def clip(self, x: Any) -> np.ndarray:
        video = as_video(x, metric="fvd")
        if video.shape[0] < self.params.frames:
            raise UserError(f"fvd: a video has {video.shape[0]} frames, fewer than frames={self.params.frames}",
                            hint="lower `frames` or generate longer videos")
        return video[: self.params.frames]

    def features(self, videos: Sequence[Any], ctx: Any) -> np.ndarray:
        import torch

        device = getattr(ctx, "device", "cpu")
        if rw.active():  # run --random-weights: cd-fvd's network at full size, He init, no weights file
            net, preprocess, forward = cached_model((self.name, "random-init", device), lambda: self._random(device))
        else:
            path = self.weights_file(ctx)
            net, preprocess, forward = cached_model((self.name, str(path), device), lambda: self._build(path, device))
        device = getattr(ctx, "device", "cpu")
        out = []
        bs = batch_size_for(ctx, self.params.batch_size)
        for start in range(0, len(videos), bs):
            batch = [self.clip(v) for v in videos[start:start + bs]]
            x = torch.cat([preprocess(c[None]) for c in batch]).to(device)  # per clip: sizes may differ
            with torch.no_grad():
                out.append(forward(net, x).reshape(len(batch), -1).double().cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, self.dim))


class I3DFeatures(_CdFvdFeatures):
    """I3D logits (400-d) of 16-frame clips, cd-fvd's PyTorch port (for FVD)."""

    name: ClassVar[str] = "i3d"
    filename, url, subdir = I3D_FILE, I3D_URL, "i3d"
    dim = 400

    def _network(self):
        require("cdfvd", plugin="fvd", extra="video")
        from cdfvd.third_party.i3d import pytorch_i3d
        from cdfvd.third_party.i3d.utils import preprocess_i3d

        return pytorch_i3d.InceptionI3d(400, in_channels=3), preprocess_i3d, lambda m, x: m(x)


class VideoMAEFeatures(_CdFvdFeatures):
    """VideoMAE-v2 ViT-g features of 16-frame clips, as cd-fvd computes them (for FVD)."""

    name: ClassVar[str] = "videomae"
    filename, url, subdir = VMAE_FILE, VMAE_URL, "VideoMAEv2"
    dim = 1408

    def _network(self):
        require("cdfvd", plugin="fvd", extra="video")
        from cdfvd.third_party.VideoMAEv2.utils import preprocess_videomae
        from cdfvd.third_party.VideoMAEv2.videomaev2_finetune import vit_giant_patch14_224

        net = vit_giant_patch14_224(img_size=224, pretrained=False, num_classes=174, all_frames=16, tubelet_size=2,
                                    drop_path_rate=0.3, use_mean_pooling=True)
        return net, preprocess_videomae, lambda m, x: m.forward_features(x)

    def _state(self, state: dict) -> dict:
        for key in ("model", "module"):
            if key in state:
                return state[key]
        return state


class FVDParams(SetParams):
    features: FeaturesRef = "i3d"
    frames: int | None = Field(None, ge=1)  # None: the extractor's default (16)
    clips: int | None = Field(2048, ge=2)


class FVD(SetMetric):
    """Fréchet Video Distance (cd-fvd I3D or VideoMAE features) against a reference video set; lower is better."""

    name: ClassVar[str] = "fvd"
    version: ClassVar[str] = "3"  # 2: CI = delete-one-block jackknife over prompt blocks; 3: blocks by prompt id alone, leave-one-block-out values kept
    Params = FVDParams

    def extractor_overrides(self) -> dict[str, Any]:
        return {"frames": self.params.frames}

    def select(self, items: list[Item], ctx: Any, role: str) -> list[Item]:
        cap = self.params.clips
        if cap is None or len(items) <= cap:
            return items
        order = sorted(items, key=lambda it: derive_seed(ctx.seed, "fvd-clips", role, it.key))
        chosen = {it.key for it in order[:cap]}
        return [it for it in items if it.key in chosen]

    def convention(self) -> str:
        clips = self.params.clips if self.params.clips is not None else "all"
        frames = getattr(self.extractor().params, "frames", None) or "native"
        return (f"fvd: cd-fvd {_pkg('cd-fvd')} {self.params.features} features, {frames} frames, "
                f"≤{clips} clips per set, float64 streaming stats")


def _pkg(name: str) -> str:
    try:
        return pkg_version(name)
    except Exception:
        return "not installed"
