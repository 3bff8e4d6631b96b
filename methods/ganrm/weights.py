"""Finding open_clip weights on disk without touching the network, so an offline machine fails
within seconds with an actionable MissingWeightsError instead of retrying a hub for minutes."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ganrm_bench.harness.errors import MissingWeightsError, UserError
from ganrm_bench.harness.store.offline import is_offline

HF_WEIGHTS = "open_clip_pytorch_model.bin"
HF_SAFE_WEIGHTS = "open_clip_model.safetensors"




def tag_config(model: str, tag: str) -> dict[str, Any]:
    """open_clip's pretrained config for (model, tag): hub id, url, quick_gelu, mean/std."""
    import open_clip

    return dict(open_clip.get_pretrained_cfg(model, tag) or {})


def _hub_candidates(cfg: dict[str, Any]) -> list[tuple[str, str]]:
    hub = cfg.get("hf_hub", "")
    if not hub:
        return []
    repo, filename = os.path.split(hub)  # "org/model/" → default file names; "org/model/f.bin" → f
    if not filename:
        return [(repo, HF_SAFE_WEIGHTS), (repo, HF_WEIGHTS)]
    out = []
    if filename.endswith((".bin", ".pth")):
        out.append((repo, filename[:-4] + ".safetensors"))
    return out + [(repo, filename)]


def cached_tag_weights(cfg: dict[str, Any], cache_dir: str | None) -> tuple[str | None, list[str]]:
    """The local file holding a tag's weights if some cache already has it, and what was looked at."""
    tried: list[str] = []
    candidates = _hub_candidates(cfg)
    if candidates:
        from huggingface_hub import try_to_load_from_cache

        for repo, filename in candidates:
            tried.append(f"hub cache {repo}/{filename}")
            found = try_to_load_from_cache(repo, filename, cache_dir=cache_dir)
            if isinstance(found, str) and os.path.isfile(found):
                return found, tried
    url = cfg.get("url", "")
    if url:
        path = Path(cache_dir or os.path.expanduser("~/.cache/clip")) / os.path.basename(url)
        tried.append(str(path))
        if path.is_file():
            return str(path), tried
    return None, tried


def resolve_open_clip_weights(model: str, pretrained: str | None, *, cache_dir: str | None = None, download: bool = False) -> str | None:
    """A local weights file for `pretrained` (a tag such as "openai" or a file path), or None for
    random init. Never touches the network unless `download` is set and the hub is not offline."""
    if pretrained is None or model.startswith(("local-dir:", "hf-hub:")):
        return None
    if os.path.isfile(pretrained):
        return pretrained
    cfg = tag_config(model, pretrained)
    if not cfg:
        import open_clip

        tags = open_clip.list_pretrained_tags_by_model(model)
        looks_like_path = os.sep in pretrained or pretrained.endswith((".pt", ".pth", ".bin", ".safetensors"))
        what = f"file {pretrained!r} does not exist" if looks_like_path else f"{pretrained!r} is not a pretrained tag of open_clip model {model!r}"
        raise UserError(
            f"openclip backbone: {what}",
            hint=f"known tags for {model}: {', '.join(tags) or '(none)'}; or a weights file: `checkpoint: /path/to/weights.safetensors` "
            "(with `pretrained: TAG` for that tag's conventions)",
        )
    found, tried = cached_tag_weights(cfg, cache_dir)
    if found:
        return found
    if download and not is_offline():
        import open_clip

        return open_clip.download_pretrained(cfg, cache_dir=cache_dir)
    source = cfg.get("hf_hub") or cfg.get("url")
    raise MissingWeightsError(
        f"open_clip {model} ({pretrained})",
        "looked in " + "; ".join(tried),
        f"copy the weights ({source}) onto this machine and pass `checkpoint: /path/to/{HF_SAFE_WEIGHTS}` "
        f"(keeps the {pretrained!r} tag's conventions: QuickGELU, mean/std), or put them in the Hugging Face cache "
        "(HF_HOME / cache_dir), or set `download: true` where the hub is reachable",
    )
