"""What a plugin sees while it runs: the store, the device, seeds, progress bars, per-item caches."""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
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


def local_rank() -> int:
    """This process's index on its machine, as torchrun / `accelerate launch` / SLURM-via-accelerate set it."""
    return int(os.environ.get("LOCAL_RANK", os.environ.get("GANRM_BENCH_LOCAL_RANK", "0")))


def resolve_device(device: str = "auto") -> str:
    """A concrete device. "auto" (and a bare "cuda") name this process's own GPU, `cuda:{LOCAL_RANK}`,
    as accelerate assigns them, so models cached by device never land on GPU 0 for every rank; with a
    single visible GPU (one per process via CUDA_VISIBLE_DEVICES) it is `cuda:0`. Explicit devices
    ("cpu", "cuda:1", "mps") are kept."""
    check_device(device)
    if device not in ("auto", "cuda"):
        return device
    try:
        import torch
    except ImportError:  # pragma: no cover
        return "cpu"
    if not torch.cuda.is_available():
        return "cpu" if device == "auto" else device  # a bare "cuda" without CUDA fails where torch uses it
    count, rank = torch.cuda.device_count(), local_rank()
    if count == 1:
        return "cuda:0"
    if rank >= count:
        from ganrm_bench.harness.errors import UserError

        raise UserError(f"LOCAL_RANK={rank} but this process sees only {count} GPUs",
                        hint="launch at most one process per GPU (accelerate launch --num_processes / torchrun --nproc_per_node)")
    return f"cuda:{rank}"


def process_device(device: str = "auto") -> str:
    """Resolve the run's device once per process and make it the current CUDA device, so code that
    allocates on "the" GPU (bare "cuda", NCCL, accelerate) uses this rank's GPU from the start."""
    resolved = resolve_device(device)
    if resolved.startswith("cuda:"):
        import torch

        torch.cuda.set_device(resolved)
    return resolved


def in_jupyter() -> bool:
    """True inside a Jupyter / Colab kernel (where rich draws through ipywidgets)."""
    shell = sys.modules.get("IPython") and getattr(sys.modules["IPython"], "get_ipython", lambda: None)()
    return shell is not None and (type(shell).__name__ == "ZMQInteractiveShell" or "google.colab" in str(type(shell)))


class Progress:
    """A thin wrapper over rich's progress bars; silent unless enabled. With `lines` (output that
    is not a terminal: `| tee log`, a batch job) a step that runs long prints a plain line every
    `interval` seconds and one when it ends, instead of bars; style "text" draws tqdm's plain bars,
    for a notebook without ipywidgets (rich's live display there only warns). `Progress.auto` picks;
    GANRM_BENCH_PROGRESS=0 turns all off, GANRM_BENCH_PROGRESS_INTERVAL sets the seconds."""

    def __init__(self, enabled: bool | None = None, style: str = "rich", *, lines: bool = False, interval: float | None = None,
                 stream: Any = None):
        if enabled is None:
            enabled = os.environ.get("GANRM_BENCH_PROGRESS", "auto") != "0"
        self.enabled = enabled
        self.style = style
        self.lines = lines
        self.interval = interval if interval is not None else float(os.environ.get("GANRM_BENCH_PROGRESS_INTERVAL", "5"))
        self.stream = stream
        self._rich = None

    @classmethod
    def auto(cls, stream: Any = None, *, enabled: bool = True) -> "Progress":
        """Bars on a terminal or in Jupyter, periodic lines when output goes to a file or pipe."""
        stream = stream or sys.stderr
        if not enabled or os.environ.get("GANRM_BENCH_PROGRESS", "1") == "0":
            return cls(False)
        if in_jupyter():
            return cls(True, style="rich" if importlib.util.find_spec("ipywidgets") else "text")
        return cls(True, lines=not (hasattr(stream, "isatty") and stream.isatty()), stream=stream)

    @contextlib.contextmanager
    def task(self, description: str, total: int | None) -> Iterator[Callable[[int], None]]:
        if not self.enabled or not total:
            yield lambda n=1: None
            return
        if self.style == "text":
            from tqdm import tqdm

            with tqdm(total=total, desc=description, file=sys.stderr) as bar:
                yield lambda n=1: bar.update(n)
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
    sharded: bool = False  # every process of the launch is computing the current node: split per-item work
    loader_workers: int = 0  # DataLoader processes decoding items for per_item_arrays (harness.prefetch); never changes numbers
    limit_prompts: int | None = None  # run --limit-prompts: every prompt set truncated to its first N (graph.Builder.prompts)

    def __post_init__(self) -> None:
        self.device = resolve_device(self.device)  # "auto"/"cuda" → this rank's cuda:N: models are cached by it

    @contextlib.contextmanager
    def sharding(self, on: bool) -> Iterator[None]:
        """Per-item work in the body is split across processes (only where all of them run the body)."""
        before, self.sharded = self.sharded, on
        try:
            yield
        finally:
            self.sharded = before

    def count(self, what: str, n: int = 1) -> None:
        self.counters[what] = self.counters.get(what, 0) + n

    def item_array_keys(self, namespace: str, fingerprint: dict[str, Any], items: Sequence[Item]) -> list[str]:
        """The store keys of `per_item_arrays` entries (so a plugin can tell which are cached)."""
        from ganrm_bench.harness.numerics import key_part, numerics_class

        fp = hash_key({**fingerprint, **key_part(numerics_class(self.device))})
        return [hash_key({"ns": namespace, "fp": fp, "item": it.key}) for it in items]

    def per_item_arrays(
        self,
        namespace: str,
        fingerprint: dict[str, Any],
        items: Sequence[Item],
        compute: Callable[[list[Item]], np.ndarray],
        *,
        batch_size: int = 32,
        description: str | None = None,
        decode: bool | Callable[[Item], bool] = True,
        prepare: Callable[[Any], Any] | None = None,
    ) -> np.ndarray:
        """Per-item cached arrays (features, scores): computes only the missing items, in batches,
        and stacks all into one array in `items` order. The key of each entry is
        (namespace, fingerprint of the computing model, item key, numerics class unless CPU) — so a
        partly done set resumes, and CUDA-made arrays are never served to a CPU run.

        While every process of a launch computes the same node (`sharded`, set by the evaluator),
        the items are split by fixed batches: batch b of `items` belongs to process b mod P, which
        computes its missing items; then each waits for the others' files. A fresh set is computed
        in the same batches as by one process, so the arrays are byte-identical to one process's.

        With `loader_workers` > 0 the items of each batch reach `compute` decoded by DataLoader
        worker processes (`it.load()` returns the media; harness.prefetch), the same batches in the
        same order, so the arrays are byte-identical too; `decode=False` for a `compute` that does
        not load the media itself (a scorer taking items, whose features may be cached), or a
        predicate naming the items it will load. `prepare`: the plugin's per-image preprocessing,
        then also run in the workers (`harness.prefetch.Prepared`)."""
        from ganrm_bench.harness.distributed import rank_and_world, wait_for_files

        keys = self.item_array_keys(namespace, fingerprint, items)
        paths = [self.store.item_path(k, "npy") for k in keys]
        missing = [i for i, p in enumerate(paths) if not p.exists()]
        rank, world = rank_and_world() if self.sharded else (0, 1)
        mine = [i for i in missing if (i // batch_size) % world == rank]
        if mine:
            from ganrm_bench.harness.prefetch import decoded_batches

            chunks = [mine[start : start + batch_size] for start in range(0, len(mine), batch_size)]
            batches = decoded_batches([[items[i] for i in idx] for idx in chunks], self.loader_workers if decode else 0, prepare,
                                      needs=decode if callable(decode) else None)
            with contextlib.closing(batches), self.progress.task(description or f"{namespace}", len(mine)) as advance:  # a failure stops the workers
                for idx, batch in zip(chunks, batches):
                    with self.sharding(False):  # nested per-item work (a scorer's features) is this batch's alone
                        out = np.asarray(compute(batch))
                    if len(out) != len(idx):
                        raise RuntimeError(f"{namespace}: computed {len(out)} arrays for {len(idx)} items")
                    for i, arr in zip(idx, out):
                        self.store.put_item(keys[i], "npy", lambda p, a=arr: _save_npy(p, a))
                    self.count(f"{namespace}:items", len(idx))
                    advance(len(idx))
        if world > 1 and len(mine) < len(missing):
            wait_for_files([paths[i] for i in missing], what=f"{namespace} items from other processes", root=self.store.root)
        return np.stack([np.load(p, allow_pickle=False) for p in paths]) if paths else np.zeros((0,))


def _save_npy(path, array: np.ndarray) -> None:
    with open(path, "wb") as f:
        np.save(f, array, allow_pickle=False)
