"""Fixtures for the metric tests: offline, one thread, a private store, items written to disk."""

import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

# pytest puts tests/ on sys.path (rootdir conftest), where this folder is a namespace package
# called "metrics" that shadows the real `metrics` package (the editable install's finder comes
# after the path finder). A regular package anywhere on sys.path wins over a namespace portion:
_ROOT = str(Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:
    sys.path.append(_ROOT)
if "metrics" in sys.modules and getattr(sys.modules["metrics"], "__file__", None) is None:
    del sys.modules["metrics"]

import numpy as np  # noqa: E402
import pytest  # noqa: E402

try:
    import torch

    torch.set_num_threads(1)
except ImportError:  # pragma: no cover
    pass

from harness.plugins import Item, ItemSet  # noqa: E402
from harness.runtime import Context  # noqa: E402
from harness.store import Store  # noqa: E402


@pytest.fixture
def ctx(tmp_path):
    return Context(store=Store(tmp_path / "store"), device="cpu", seed=0)


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
