"""Fixtures for the metric tests: offline, one thread, a private store, items written to disk."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import pytest  # noqa: E402

try:
    import torch

    torch.set_num_threads(1)
except ImportError:  # pragma: no cover
    pass

from ganrm_bench.harness.plugins.base import Item, ItemSet  # noqa: E402


@pytest.fixture
def write_items(tmp_path):
    """write_items(arrays, prompts=None, prompt_ids=None, name="set") -> ItemSet of PNGs / NPZ videos."""
    from PIL import Image

    def make(arrays, prompts=None, prompt_ids=None, name="set"):
        folder = tmp_path / name
        folder.mkdir(parents=True, exist_ok=True)
        items = []
        for i, arr in enumerate(arrays):
            arr = np.asarray(arr, dtype=np.uint8)
            if arr.ndim == 4:
                path = folder / f"{i:04d}.npz"
                np.savez(path, frames=arr)
            else:
                path = folder / f"{i:04d}.png"
                Image.fromarray(arr).save(path)
            items.append(Item(key=f"{name}-{i}", path=str(path),
                              prompt=None if prompts is None else prompts[i],
                              prompt_id=None if prompt_ids is None else prompt_ids[i], k=i))
        return ItemSet(key=name, items=tuple(items))

    return make


@pytest.fixture
def rng():
    return np.random.default_rng(0)
