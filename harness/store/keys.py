"""The content-addressed store: every artifact lives under a key that hashes everything that made it.

Layout under the root (`$GANRM_BENCH_CACHE`, default the user cache dir):

    objects/ab/<key>/        an artifact: data files, then `manifest.json` written last;
                             the directory appears by an atomic rename, so it is complete or absent
    items/ab/<key>.<ext>     one item (a generated image, a feature vector, a score), atomic rename
    work/<key>/              resumable scratch of a long computation (training checkpoints)
    locks/<key>.lock         file locks, so concurrent runs on one cache never compute twice
    digests.json             memo of weights-file digests by (path, size, mtime)

Content hashes are kept where they define identity (weights digests, which enter cache keys). A
manifest's record of a file only serves change detection (`cache verify`): an artifact's own
small files get a content digest, item files and files over `CONTENT_DIGEST_MAX` bytes (pool
images, fine-tuned weights) their size and mtime (`stat:<size>:<mtime_ns>`), so publishing a
200k-image pool or 10 GB of weights does not read them all again."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any


def canonical_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=_json_default)


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "model_dump"):
        return obj.model_dump(mode="json")
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "tolist"):
        return obj.tolist()
    raise TypeError(f"cannot hash {type(obj).__name__} into a cache key")


def hash_key(obj: Any) -> str:
    """The key of an artifact: sha256 of the canonical JSON of everything that produced it."""
    return hashlib.sha256(canonical_json(obj).encode()).hexdigest()[:40]
