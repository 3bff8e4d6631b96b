"""Which loaded models stay on the accelerator: at most those the current node uses.

Plugins that cache a model (a sampling pipeline on a generator, a metric network) `claim` it each
time they use it, with a callback that drops it. The evaluator starts a new node epoch before each
computation (`next_node`); loading a model that is not resident releases every model not claimed
in the current node — so consecutive nodes that share a model keep it loaded, and a row's
pipeline does not sit on the GPU under the next row's metric models (Table 1 on SDXL would otherwise
hold ~6 pipelines of ~14 GB). Fine-tuning calls `release_all` first: it needs the whole device.
"""

from __future__ import annotations

import gc
import sys
from typing import Callable, Hashable

_node = 0
_resident: dict[Hashable, tuple[int, Callable[[], None]]] = {}  # key -> (last node that used it, release)


def next_node() -> None:
    """A new node's computation starts (called by the evaluator)."""
    global _node
    _node += 1


def claim(key: Hashable, release: Callable[[], None]) -> None:
    """The current node uses the model `key`. A model not loaded yet first evicts the models this
    node has not used (so re-used models stay, and a node using two models keeps both)."""
    if key in _resident:
        _resident[key] = (_node, _resident[key][1])
        return
    stale = [k for k, (node, _) in _resident.items() if node < _node and k != key]
    for k in stale:
        _resident.pop(k)[1]()
    _resident[key] = (_node, release)
    if stale:
        free_accelerator_memory()


def release_all() -> None:
    """Drop every claimed model (before training, which needs the device to itself)."""
    while _resident:
        _resident.pop(next(iter(_resident)))[1]()
    free_accelerator_memory()


def resident() -> list[Hashable]:
    return list(_resident)


def free_accelerator_memory() -> None:
    """Collect dropped models now and hand their cached CUDA blocks back (no-op without CUDA)."""
    gc.collect()
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.empty_cache()
