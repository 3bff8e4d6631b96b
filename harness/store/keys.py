"""Cache keys: a key is the sha256 of the canonical JSON of everything that made an artifact."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any


def canonical_json(obj: Any) -> str:
    return _CANONICAL.encode(obj)


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "model_dump"):
        return obj.model_dump(mode="json")
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "tolist"):
        return obj.tolist()
    raise TypeError(f"cannot hash {type(obj).__name__} into a cache key")


_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), default=_json_default)  # what json.dumps would build per call


def hash_key(obj: Any) -> str:
    """The key of an artifact: sha256 of the canonical JSON of everything that produced it."""
    return hashlib.sha256(canonical_json(obj).encode()).hexdigest()[:40]
