"""What a plugin sees while it runs: the store, the device, seeds, progress bars, per-item caches."""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import sys
import time
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
    """A thin wrapper over rich's progress bars; silent unless enabled. With `lines` (output that
    is not a terminal: `| tee log`, a batch job) a step that runs long prints a plain line every
    `interval` seconds and one when it ends, instead of bars. The CLI picks with `Progress.auto`;
    GANRM_BENCH_PROGRESS=0 turns both off, GANRM_BENCH_PROGRESS_INTERVAL sets the seconds."""

    def __init__(self, enabled: bool | None = None, *, lines: bool = False, interval: float | None = None, stream: Any = None):
        if enabled is None:
            enabled = os.environ.get("GANRM_BENCH_PROGRESS", "auto") != "0"
        self.enabled = enabled
        self.lines = lines
        self.interval = interval if interval is not None else float(os.environ.get("GANRM_BENCH_PROGRESS_INTERVAL", "5"))
        self.stream = stream
        self._rich = None

    @classmethod
    def auto(cls, stream: Any = None, *, enabled: bool = True) -> "Progress":
        """Bars on a terminal, periodic lines otherwise."""
        stream = stream or sys.stderr
        enabled = enabled and os.environ.get("GANRM_BENCH_PROGRESS", "1") != "0"
        return cls(enabled, lines=not (hasattr(stream, "isatty") and stream.isatty()), stream=stream)

    @contextlib.contextmanager
    def task(self, description: str, total: int | None) -> Iterator[Callable[[int], None]]:
        if not self.enabled or not total:
            yield lambda n=1: None
            return
        if self.lines:
            with self._line_task(description, total) as advance:
                yield advance
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress as RichProgress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        with RichProgress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn(),
            transient=False,
        ) as bar:
            tid = bar.add_task(description, total=total)
            yield lambda n=1: bar.advance(tid, n)

    @contextlib.contextmanager
    def _line_task(self, description: str, total: int) -> Iterator[Callable[[int], None]]:
        start = last = time.monotonic()
        done = 0

        def say(final: bool = False) -> None:
            elapsed = time.monotonic() - start
            eta = f", ~{elapsed / done * (total - done):.0f}s left" if 0 < done < total and not final else ""
            print(f"{description}: {done}/{total} ({100 * done / total:.0f}%) {elapsed:.0f}s{eta}{' done' if final else ''}",
                  file=self.stream or sys.stderr, flush=True)

        def advance(n: int = 1) -> None:
            nonlocal done, last
            done += n
            now = time.monotonic()
            if now - last >= self.interval and done < total:
                last = now
                say()

        yield advance
        if time.monotonic() - start >= self.interval:  # short steps stay quiet
            say(final=True)


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
