"""Inception-v3 pool features (2048-d) with clean-fid's conventions, for FID.

mode=clean           clean-fid's default: PIL bicubic resize to 299 on float channels, then the
                     TorchScript Inception of the TF FID graph (`inception-2015-12-05.pt`, the
                     file StyleGAN2-ADA publishes and clean-fid downloads).
mode=legacy_pytorch  pytorch-fid's convention: torch bilinear resize (no antialias), then
                     pytorch-fid's ported weights (`pt_inception-2015-12-05-6726825d.pth`).

The two differ by whole FID points: the mode is part of the features' identity (cache key) and
of the FID convention string. Weights are looked for at `weights` (a file), in `cache_dir`
(default torch.hub's checkpoints folder), and where clean-fid itself would have put them; they
are downloaded only when online.
"""

from __future__ import annotations

from importlib.metadata import version
from pathlib import Path
from typing import Any, ClassVar, Literal, Sequence

import numpy as np
from pydantic import Field

from ganrm_bench.harness.plugins.base import FeatureExtractor, PluginParams
from ganrm_bench.harness.runtime import random_weights as rw
from ganrm_bench.harness.runtime.prefetch import prepared
from ganrm_bench.harness.store.assets import local_asset, url_asset
from ganrm_bench.harness.store.offline import is_offline
from ganrm_bench.metrics import weights as W
from ganrm_bench.metrics.base import batch_size_for, cached_model
from ganrm_bench.metrics.media import as_uint8

CLEAN_FILE = "inception-2015-12-05.pt"
CLEAN_URL = "https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/metrics/inception-2015-12-05.pt"
LEGACY_FILE = "pt_inception-2015-12-05-6726825d.pth"
LEGACY_URL = "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/pt_inception-2015-12-05-6726825d.pth"


class InceptionParams(PluginParams):
    mode: Literal["clean", "legacy_pytorch"] = "clean"
    weights: str | None = None  # a local weights file (overrides the lookup)
    cache_dir: str | None = None  # where to look for / download the file; default $TORCH_HOME/hub/checkpoints
    batch_size: int = Field(32, ge=1)


class InceptionFeatures(FeatureExtractor):
    """Inception-v3 pool3 features (2048-d) in clean-fid's clean or legacy_pytorch convention."""

    name: ClassVar[str] = "inception"
    version: ClassVar[str] = "1"
    Params = InceptionParams
    dim = 2048

    def weights_file(self, ctx: Any = None) -> Path:
        p = self.params
        if p.weights:
            return W.local_path(p.weights, model=f"Inception ({p.mode})")
        filename, url = (CLEAN_FILE, CLEAN_URL) if p.mode == "clean" else (LEGACY_FILE, LEGACY_URL)
        home = Path(p.cache_dir).expanduser() if p.cache_dir else W.torch_hub_checkpoints()
        search = [home, Path("/tmp")] if p.mode == "clean" else [home]  # /tmp: clean-fid's own download folder
        return W.url_file(url, filename, model=f"Inception for FID ({p.mode})", search_dirs=search,
                          download_dir=home, offline=is_offline(ctx))

    def assets(self) -> list:
        """The Inception weights file of the mode (harness.store.assets), where `weights_file` looks."""
        p = self.params
        if p.weights:
            return [local_asset(p.weights, what=f"Inception ({p.mode})")]
        filename, url = (CLEAN_FILE, CLEAN_URL) if p.mode == "clean" else (LEGACY_FILE, LEGACY_URL)
        home = Path(p.cache_dir).expanduser() if p.cache_dir else W.torch_hub_checkpoints()
        search = [Path("/tmp") / filename] if p.mode == "clean" else []
        return [url_asset(url, home / filename, search=search, what=f"Inception for FID ({p.mode})")]

    def fingerprint(self, ctx: Any = None) -> dict[str, Any]:
        fp = super().fingerprint()
        fp["params"].pop("batch_size", None)
        fp["params"].pop("cache_dir", None)
        fp["params"].pop("weights", None)
        fp["weights"] = rw.identity("pytorch-fid FID Inception-v3, He init") if rw.active() else W.identity(self.weights_file(ctx), ctx)
        fp["implementation"] = f"clean-fid {version('clean-fid')}"
        return fp

    def _model(self, ctx: Any):
        device = getattr(ctx, "device", "cpu")
        if rw.active():  # run --random-weights: the FID Inception architecture (pytorch-fid's port), random init
            return cached_model(("inception", "random-init", device), lambda: _load_random(device))
        path = self.weights_file(ctx)
        return cached_model(("inception", self.params.mode, str(path), device), lambda: _load(self.params.mode, path, device))

    def prepare(self, image: Any) -> np.ndarray:
        """clean-fid's resize of one image to 299×299 (float32, 0..255): CPU work a loader worker can do."""
        from cleanfid.resize import build_resizer

        return np.asarray(build_resizer(self.params.mode)(as_uint8(image, metric="fid")), dtype=np.float32)

    def features(self, images: Sequence[Any], ctx: Any) -> np.ndarray:
        import torch


        model = self._model(ctx)
        device = getattr(ctx, "device", "cpu")
        out = []
        bs = batch_size_for(ctx, self.params.batch_size)
        for start in range(0, len(images), bs):
            arrays = [prepared(im, self.prepare) for im in images[start:start + bs]]
            x = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).to(device)  # [B,3,299,299] in 0..255
            with torch.no_grad():
                out.append(model(x).reshape(len(arrays), -1).double().cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, self.dim))


class _CleanInception:
    """clean-fid's InceptionV3W forward without its hard-coded download: (x-128)/128 → layers."""

    def __init__(self, scripted):
        self.base = scripted

    def __call__(self, x):
        return self.base.layers.forward((x - 128) / 128)


def _load(mode: str, path: Path, device: str):
    import torch

    if mode == "clean":
        scripted = torch.jit.load(str(path), map_location=device).eval()  # TorchScript archive, not a pickle
        return _CleanInception(scripted)
    import cleanfid.inception_pytorch as ip

    original = ip.load_state_dict_from_url
    ip.load_state_dict_from_url = lambda url, progress=False: W.load_torch_state(path)  # no download
    try:
        net = ip.InceptionV3(output_blocks=[3], resize_input=False).to(device).eval()
    finally:
        ip.load_state_dict_from_url = original
    return lambda x: net(x / 255)[0]


def _load_random(device: str):
    """The FID Inception-v3 of pytorch-fid (the TF graph's structure: FIDInceptionA/C/E blocks,
    1008 classes) with random weights (He init, so the 2048-d features are not ~0 and FID is not
    ~0), for run --random-weights; same output as `_load`'s."""
    import cleanfid.inception_pytorch as ip

    def random_state(url, progress=False):
        net = ip._inception_v3(num_classes=1008, aux_logits=False, pretrained=False)
        for name, block in (("Mixed_5b", ip.FIDInceptionA(192, pool_features=32)), ("Mixed_5c", ip.FIDInceptionA(256, pool_features=64)),
                            ("Mixed_5d", ip.FIDInceptionA(288, pool_features=64)), ("Mixed_6b", ip.FIDInceptionC(768, channels_7x7=128)),
                            ("Mixed_6c", ip.FIDInceptionC(768, channels_7x7=160)), ("Mixed_6d", ip.FIDInceptionC(768, channels_7x7=160)),
                            ("Mixed_6e", ip.FIDInceptionC(768, channels_7x7=192)), ("Mixed_7b", ip.FIDInceptionE_1(1280)),
                            ("Mixed_7c", ip.FIDInceptionE_2(2048))):
            setattr(net, name, block)
        import torch

        for m in net.modules():  # He init keeps activations O(1) through the 90+ layers (PyTorch's default shrinks them to ~1e-7)
            if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)):
                torch.nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
        return net.state_dict()

    original = ip.load_state_dict_from_url
    ip.load_state_dict_from_url = random_state
    try:
        with rw.seeded("fid-inception"):
            net = ip.InceptionV3(output_blocks=[3], resize_input=False).to(device).eval()
    finally:
        ip.load_state_dict_from_url = original
    return lambda x: net(x / 255)[0]
