"""Seeds derived from names: stable across runs, machines, process counts and batch composition."""

from __future__ import annotations

import hashlib
from typing import Any


def derive_seed(*parts: Any) -> int:
    """A 31-bit seed from any parts (spec seed, prompt id, k, purpose): stable across runs and
    machines, independent of process count and batch composition."""
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF
