"""Digests: one recipe for the content identity of weights (it enters cache keys), and the cheaper
signatures manifests keep for change detection (`cache verify`).

A weights file's identity is its sha256; a directory's is the sha256 of the sorted list of
(relative path, file sha256). `weights_digest` memoizes in this process, `Store.weights_digest` on
disk (`digests.json`); both use `tree_digest`, so an identity is the same with or without a store.
Manifests record small files by content and files over `CONTENT_DIGEST_MAX` bytes (pool images,
fine-tuned weights) by size and mtime (`stat:<size>:<mtime_ns>`), so publishing a 200k-image pool or
10 GB of weights does not read them all again."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Callable

from ganrm_bench.harness.store.keys import canonical_json


def file_digest(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


#: files up to this size get a content digest in manifests; larger ones their size and mtime
CONTENT_DIGEST_MAX = 64 << 20


STAT_PREFIX = "stat:"


def file_stat_signature(path: str | Path) -> str:
    """`stat:<size>:<mtime_ns>`: what changes when a file is rewritten or truncated, without reading it."""
    st = Path(path).stat()
    return f"{STAT_PREFIX}{st.st_size}:{st.st_mtime_ns}"


def file_signature(path: str | Path) -> str:
    """A manifest's record of a file: its sha256 up to `CONTENT_DIGEST_MAX` bytes, else size and mtime."""
    return file_digest(path) if Path(path).stat().st_size <= CONTENT_DIGEST_MAX else file_stat_signature(path)


def signature_matches(path: str | Path, recorded: str) -> bool:
    """Whether `path` still matches what a manifest recorded of it (a content digest or a stat signature)."""
    if recorded.startswith(STAT_PREFIX):
        return file_stat_signature(path) == recorded
    return file_digest(path) == recorded


def tree_digest(path: str | Path, digest_of: Callable[[Path], str]) -> str:
    """A weights file's digest, or a directory's: sha256 of its sorted (relative path, file digest) list."""
    path = Path(path).resolve()
    if not path.is_dir():
        return digest_of(path)
    parts = [(f.relative_to(path).as_posix(), digest_of(f)) for f in sorted(q for q in path.rglob("*") if q.is_file())]
    return hashlib.sha256(canonical_json(parts).encode()).hexdigest()


_MEMO: dict[tuple[str, int, int], str] = {}


def _memoized_file_digest(path: Path) -> str:
    st = path.stat()
    key = (str(path), st.st_size, st.st_mtime_ns)
    if key not in _MEMO:
        _MEMO[key] = file_digest(path)
    return _MEMO[key]


def weights_digest(path: str | Path, store=None) -> str:
    """The identity of a weights file or directory: the store's disk-memoized digest when a store
    (or a Context holding one) is at hand, else the same recipe memoized in this process."""
    store = getattr(store, "store", store)  # a Context passes its store
    if store is not None:
        return store.weights_digest(path)
    return tree_digest(path, _memoized_file_digest)
