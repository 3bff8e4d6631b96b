"""Finding model weights on disk or on the hub, offline-first, with one clear error when absent.

Every metric model comes from one of: a local file or directory, a Hugging Face hub id (resolved
in the hub cache, `cache_dir` overriding it), or a URL file looked for in a few known directories.
Offline (`HF_HUB_OFFLINE=1` or `ctx.offline`) nothing is fetched: a missing file raises
`MissingWeightsError` at once, naming the file and where to put it — never a retry loop.

Identities (for cache keys): hub files are "hf:<repo>@<commit>/<file>" (the snapshot commit),
local files a sha256 content digest (memoized by the store when one is at hand).
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import urllib.request
from pathlib import Path
from typing import Any, Iterable

from ganrm_bench.harness.errors import MissingWeightsError, UserError
from ganrm_bench.harness.store.digests import weights_digest
from ganrm_bench.harness.store.hub import is_local


def hub_file(repo_id: str, filename: str, *, model: str, cache_dir: str | None = None, offline: bool = True,
             revision: str | None = None) -> Path:
    """One file of a hub repo, from the cache (or downloaded when online)."""
    from huggingface_hub import hf_hub_download

    try:
        return Path(hf_hub_download(repo_id, filename, revision=revision, cache_dir=cache_dir, local_files_only=offline))
    except Exception as exc:  # LocalEntryNotFoundError, network errors, gated repos...
        raise _not_in_hub_cache(model, f"{filename} of hub repo {repo_id!r}", repo_id, filename, cache_dir, offline, exc) from exc


def _not_in_hub_cache(model: str, what: str, repo_id: str, filename: str | None, cache_dir: str | None,
                      offline: bool, exc: Exception) -> MissingWeightsError:
    where = f"{what} is not in the hub cache{f' {cache_dir}' if cache_dir else ''}"
    why = " and downloads are off (offline)" if offline else f"; download failed: {type(exc).__name__}"
    return MissingWeightsError(model, where + why, how=_hub_hint(repo_id, filename, cache_dir))


def hub_snapshot(repo_id: str, *, model: str, cache_dir: str | None = None, offline: bool = True,
                 allow_patterns: Iterable[str] | None = None) -> Path:
    """A whole hub repo snapshot directory (transformers-style models and processors)."""
    from huggingface_hub import snapshot_download

    try:
        path = Path(snapshot_download(repo_id, cache_dir=cache_dir, local_files_only=offline,
                                      allow_patterns=list(allow_patterns) if allow_patterns else None))
    except Exception as exc:
        raise _not_in_hub_cache(model, f"hub repo {repo_id!r}", repo_id, None, cache_dir, offline, exc) from exc
    if not any(path.iterdir()):
        raise MissingWeightsError(model, f"hub snapshot {path} is empty", how=_hub_hint(repo_id, None, cache_dir))
    return path


def local_path(spec: str, *, model: str, what: str = "weights") -> Path:
    path = Path(spec).expanduser()
    if not path.exists():
        raise MissingWeightsError(model, f"{what} path {str(path)!r} does not exist", how="check the path in the spec")
    return path


def model_dir(spec: str, *, model: str, cache_dir: str | None, offline: bool,
              allow_patterns: Iterable[str] | None = None) -> Path:
    """A local directory, or a hub id resolved to its snapshot directory."""
    if is_local(spec):
        return local_path(spec, model=model)
    return hub_snapshot(spec, model=model, cache_dir=cache_dir, offline=offline, allow_patterns=allow_patterns)


def url_file(url: str, filename: str, *, model: str, search_dirs: Iterable[str | Path], download_dir: str | Path,
             offline: bool, timeout: float = 30.0) -> Path:
    """A weights file published at a URL: looked for in `search_dirs`, else downloaded into
    `download_dir` when online (atomically), else MissingWeightsError naming both."""
    dirs = [Path(d).expanduser() for d in search_dirs]
    for d in dirs:
        if (d / filename).is_file():
            return d / filename
    target = Path(download_dir).expanduser() / filename
    how = f"download {url} and put it at {target} (or pass its path as a parameter)"
    if offline:
        tried = ", ".join(str(d) for d in dict.fromkeys(dirs))
        raise MissingWeightsError(model, f"{filename} not found in {tried}; downloads are off (offline)", how=how)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=filename + ".", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as response:
            shutil.copyfileobj(response, out)
        os.replace(tmp, target)
    except Exception as exc:
        Path(tmp).unlink(missing_ok=True)
        raise MissingWeightsError(model, f"download of {url} failed ({type(exc).__name__}: {exc})", how=how) from exc
    return target


def torch_hub_checkpoints() -> Path:
    """torchvision / torch.hub's download folder (`$TORCH_HOME/hub/checkpoints`)."""
    import torch

    return Path(torch.hub.get_dir()) / "checkpoints"


_SNAPSHOT = re.compile(r"models--(?P<org>[^/]+?)--(?P<name>[^/]+)/snapshots/(?P<commit>[0-9a-f]{6,})(?:/(?P<rel>.*))?$")


def identity(path: str | Path, ctx: Any = None) -> str:
    """What a weights file or directory *is*: its hub snapshot commit, or a content digest
    (memoized in the run's store when a ctx is given, else per process)."""
    store = getattr(ctx, "store", None)
    path = Path(path).expanduser()
    m = _SNAPSHOT.search(path.as_posix())  # before resolving: hub snapshot files are symlinks to blobs
    if m:
        return f"hf:{m['org']}/{m['name']}@{m['commit']}" + (f"/{m['rel']}" if m["rel"] else "")
    path = path.resolve()
    if store is not None:
        return "sha256:" + store.weights_digest(path)
    return "sha256:" + weights_digest(path)




def _hub_hint(repo_id: str, filename: str | None, cache_dir: str | None) -> str:
    what = f"{repo_id} {filename}" if filename else repo_id
    where = f" --cache-dir {cache_dir}" if cache_dir else ""
    return (f"on a machine with network access run `huggingface-cli download {what}{where}` and copy the hub "
            f"cache here (HF_HOME), or pass a local path in the spec; unset HF_HUB_OFFLINE to allow downloads")


def load_torch_state(path: str | Path) -> dict:
    """A state dict from .safetensors, or from a .pt/.pth/.bin with torch.load(weights_only=True) —
    never a full unpickle."""
    path = Path(path)
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise UserError(
            f"{path}: cannot be read as plain tensors with torch.load(weights_only=True) ({type(exc).__name__}: {exc})",
            hint="convert the checkpoint to .safetensors; pickled code objects are never loaded",
        ) from exc


def he_init(net: Any) -> Any:
    """He init of every conv and linear layer (run --random-weights): keeps a deep random network's
    activations O(1), where PyTorch's default init shrinks them layer by layer (FID's random
    Inception gave features of ~4e-7, and every FID read 0)."""
    import torch

    for m in net.modules():
        if isinstance(m, (torch.nn.Conv2d, torch.nn.Conv3d, torch.nn.Linear)):
            torch.nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
    return net
