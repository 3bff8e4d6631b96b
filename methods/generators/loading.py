"""Finding diffusers weights by hub id or local path, offline, with errors that say what to do.

A model reference is either a local directory/file or a hub id ("org/name"). Nothing here ever
waits on the network when offline: a hub id is first looked up in the local HF cache, and its
absence becomes a MissingWeightsError within milliseconds.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ganrm_bench.harness.errors import MissingWeightsError, UserError
from ganrm_bench.harness.store.digests import weights_digest
from ganrm_bench.harness.store.hub import is_local, local_path

if TYPE_CHECKING:  # pragma: no cover
    from ganrm_bench.harness.store.artifacts import Store

_SHA = re.compile(r"[0-9a-f]{40}")
_TRUE = {"1", "true", "yes", "on"}








def hub_cache_dir(cache_dir: str | None = None) -> Path:
    if cache_dir:
        return Path(cache_dir).expanduser()
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE)


def hub_commit(repo_id: str, revision: str | None, cache_dir: str | None = None) -> str | None:
    """The commit a revision resolves to in the local HF cache (None if the repo is not cached)."""
    rev = revision or "main"
    if _SHA.fullmatch(rev):
        return rev
    ref = hub_cache_dir(cache_dir) / f"models--{repo_id.replace('/', '--')}" / "refs" / rev
    try:
        return ref.read_text().strip() or None
    except OSError:
        return None


def hub_file_cached(repo_id: str, filename: str, revision: str | None, cache_dir: str | None) -> bool:
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(repo_id, filename, cache_dir=cache_dir, revision=revision)
    return isinstance(found, str)


def how_to_provide(ref: str, what: str = "pipeline") -> str:
    return (
        f"on a machine with hub access run `huggingface-cli download {ref}` and copy the HF cache "
        f"(or set HF_HOME / the plugin's cache_dir to it), or `save_pretrained` the {what} to a "
        f"directory and give its path instead of {ref!r}"
    )


def check_available(ref: str, *, revision: str | None, cache_dir: str | None, offline: bool,
                    index_file: str = "model_index.json", subfolder: str | None = None, what: str = "pipeline") -> None:
    """Raise MissingWeightsError now (not after minutes of retries) if `ref` cannot be loaded."""
    if is_local(ref):
        path = local_path(ref)
        target = path / subfolder if subfolder and (path / subfolder).exists() else path
        if not path.exists():
            raise MissingWeightsError(ref, f"local path {path} does not exist", how_to_provide(ref, what))
        if target.is_dir() and not (target / index_file).exists():
            raise MissingWeightsError(
                ref, f"{target} has no {index_file}", f"give the directory written by `save_pretrained` ({what})"
            )
        return
    if offline:
        filename = f"{subfolder}/{index_file}" if subfolder else index_file
        if not hub_file_cached(ref, filename, revision, cache_dir):
            raise MissingWeightsError(
                ref,
                f"hub id not in the local HF cache {hub_cache_dir(cache_dir)} (revision {revision or 'main'}) and "
                "the hub is offline (HF_HUB_OFFLINE=1 or an offline run)",
                how_to_provide(ref, what),
            )


def model_index(ref: str, revision: str | None, cache_dir: str | None) -> dict[str, Any]:
    """The pipeline's model_index.json (components by name), or {} if it cannot be read."""
    if is_local(ref):
        path = local_path(ref) / "model_index.json"
    else:
        from huggingface_hub import try_to_load_from_cache

        found = try_to_load_from_cache(ref, "model_index.json", cache_dir=cache_dir, revision=revision)
        if not isinstance(found, str):
            return {}
        path = Path(found)
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def as_missing_weights(ref: str, exc: BaseException, what: str = "pipeline") -> MissingWeightsError:
    return MissingWeightsError(ref, f"loading failed: {type(exc).__name__}: {str(exc).splitlines()[0][:300]}",
                               how_to_provide(ref, what))


def weights_identity(ref: str | None, *, revision: str | None = None, cache_dir: str | None = None,
                     store: "Store | None" = None) -> dict[str, Any] | None:
    """What names a model's weights in a cache key: the content digest of a local path, or the hub
    id with the commit its revision resolves to (the revision itself if not cached yet)."""
    if ref is None:
        return None
    if is_local(ref):
        path = local_path(ref)
        if not path.exists():
            return {"missing_local": str(path)}
        return {"digest": weights_digest(path, store)}
    return {"hub": ref, "revision": hub_commit(ref, revision, cache_dir) or (revision or "main")}






def resolve_dtype(name: str, device: str) -> str:
    """A generator's dtype on `device`: "auto" is what a lab runs — bfloat16 on a CUDA GPU that has
    it (Ampere and later; float16 before), float32 on a CPU or MPS; other names are kept."""
    if name != "auto":
        return name
    if not str(device).startswith("cuda"):
        return "float32"
    import torch

    return "bfloat16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "float16"


def torch_dtype(name: str):
    import torch

    try:
        dtype = getattr(torch, name)
    except AttributeError:
        dtype = None
    if not isinstance(dtype, torch.dtype):
        raise UserError(f"dtype {name!r} is not a torch dtype", hint="use float32, float16 or bfloat16")
    return dtype


def scheduler_class(name: str, compatibles: list[type] | None = None):
    """A diffusers scheduler class by name, or a UserError listing the compatible ones."""
    import diffusers

    cls = getattr(diffusers, name, None)
    if not (isinstance(cls, type) and issubclass(cls, diffusers.SchedulerMixin)):
        known = sorted(c.__name__ for c in compatibles or [])
        raise UserError(f"scheduler {name!r} is not a diffusers scheduler class",
                        hint=f"compatible with this pipeline: {', '.join(known) or '(see diffusers docs)'}")
    return cls
