"""What a plugin sees while it runs: the store, the device, seeds, progress bars, per-item caches."""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from ganrm_bench.harness.plugins import Item
from ganrm_bench.harness.store import Store, hash_key


def derive_seed(*parts: Any) -> int:
    """A 31-bit seed from any parts (spec seed, prompt id, k, purpose): stable across runs and
    machines, independent of process count and batch composition."""
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


DEVICE_PATTERN = re.compile(r"auto|cpu|mps|cuda(:\d+)?")


def check_device(device: str, *, UserError: type[Exception] | None = None) -> str:
    """`device` if it is one we run on (auto, cpu, cuda, cuda:N, mps), else a clear error."""
    if not DEVICE_PATTERN.fullmatch(str(device)):
        from ganrm_bench.harness.errors import UserError as _UserError

        raise (UserError or _UserError)(f"device {device!r} is not one of auto, cpu, cuda, cuda:N, mps")
    return device


def resolve_device(device: str = "auto") -> str:
    check_device(device)
    if device != "auto":
        return device
    try:
        import torch

        if torch.cuda.is_available():
            return "cuda"
    except ImportError:  # pragma: no cover
        pass
    return "cpu"


class Progress:
    """A thin wrapper over rich's progress bars; silent unless enabled (the CLI enables it on a
    terminal; GANRM_BENCH_PROGRESS=0 turns it off)."""

    def __init__(self, enabled: bool | None = None):
        if enabled is None:
            enabled = os.environ.get("GANRM_BENCH_PROGRESS", "auto") != "0"
        self.enabled = enabled
        self._rich = None

    @contextlib.contextmanager
    def task(self, description: str, total: int | None) -> Iterator[Callable[[int], None]]:
        if not self.enabled or not total:
            yield lambda n=1: None
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress as RichProgress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        with RichProgress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn(),
            transient=False,
        ) as bar:
            tid = bar.add_task(description, total=total)
            yield lambda n=1: bar.advance(tid, n)


@dataclass
class Context:
    store: Store
    device: str = "cpu"
    seed: int = 0
    progress: Progress = field(default_factory=lambda: Progress(False))
    offline: bool = True
    batch_size: int | None = None  # overrides plugins' own batch sizes when set
    counters: dict[str, int] = field(default_factory=dict)

    def count(self, what: str, n: int = 1) -> None:
        self.counters[what] = self.counters.get(what, 0) + n

    def per_item_arrays(
        self,
        namespace: str,
        fingerprint: dict[str, Any],
        items: Sequence[Item],
        compute: Callable[[list[Item]], np.ndarray],
        *,
        batch_size: int = 32,
        description: str | None = None,
    ) -> np.ndarray:
        """Per-item cached arrays (features, scores): computes only the missing items, in batches,
        and stacks all into one array in `items` order. The key of each entry is
        (namespace, fingerprint of the computing model, item key) — so a partly done set resumes."""
        fp = hash_key(fingerprint)
        keys = [hash_key({"ns": namespace, "fp": fp, "item": it.key}) for it in items]
        paths = [self.store.item_path(k, "npy") for k in keys]
        missing = [i for i, p in enumerate(paths) if not p.exists()]
        if missing:
            with self.progress.task(description or f"{namespace}", len(missing)) as advance:
                for start in range(0, len(missing), batch_size):
                    idx = missing[start : start + batch_size]
                    out = np.asarray(compute([items[i] for i in idx]))
                    if len(out) != len(idx):
                        raise RuntimeError(f"{namespace}: computed {len(out)} arrays for {len(idx)} items")
                    for i, arr in zip(idx, out):
                        self.store.put_item(keys[i], "npy", lambda p, a=arr: _save_npy(p, a))
                    self.count(f"{namespace}:items", len(idx))
                    advance(len(idx))
        return np.stack([np.load(p, allow_pickle=False) for p in paths]) if paths else np.zeros((0,))


def _save_npy(path, array: np.ndarray) -> None:
    with open(path, "wb") as f:
        np.save(f, array, allow_pickle=False)
