"""The one rule for "may we use the network": every plugin and command asks here.

Offline when `HF_HUB_OFFLINE` or `GANRM_BENCH_OFFLINE` is set to a true value, or when the run
context says so (`Context.offline`, the default: a run never downloads; `fetch-assets` does)."""

from __future__ import annotations

import os
from typing import Any

OFFLINE_VARIABLES = ("HF_HUB_OFFLINE", "GANRM_BENCH_OFFLINE")
_TRUE = {"1", "true", "yes", "on"}


def is_offline(ctx: Any = None) -> bool:
    """True when nothing may be downloaded: an offline variable is set, or `ctx.offline`."""
    if any(os.environ.get(v, "").strip().lower() in _TRUE for v in OFFLINE_VARIABLES):
        return True
    return bool(getattr(ctx, "offline", False))


def go_offline() -> None:
    """From here on, this process and the libraries it calls (huggingface_hub, transformers) stay offline."""
    for v in OFFLINE_VARIABLES:
        os.environ[v] = "1"
