"""What a plugin sees while it runs: the store, the device, seeds, progress bars, per-item caches."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from ganrm_bench.harness.plugins.base import Item
from ganrm_bench.harness.runtime import cpu_pin
from ganrm_bench.harness.runtime.devices import resolve_device
from ganrm_bench.harness.runtime.distributed import rank_and_world, wait_for_files
from ganrm_bench.harness.runtime.numerics import key_part, numerics_class
from ganrm_bench.harness.runtime.prefetch import decoded_batches
from ganrm_bench.harness.runtime.progress import Progress
from ganrm_bench.harness.store.artifacts import Store
from ganrm_bench.harness.store.keys import hash_key


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
    loader_workers: int = 0  # DataLoader processes decoding items for per_item_arrays (harness.runtime.prefetch); never changes numbers
    limit_prompts: int | None = None  # run --limit-prompts: every prompt set truncated to its first N (graph.Builder.prompts)

    def __post_init__(self) -> None:
        cpu_pin.activate()  # before any torch op a plugin runs for this context (harness.runtime.cpu_pin)
        self.device = resolve_device(self.device)  # "auto"/"cuda" → this rank's cuda:N: models are cached by it

    @contextlib.contextmanager
    def seeded(self, seed: int) -> Iterator[None]:
        """The body runs with `ctx.seed = seed`: an op sets the seed its key carries (a metric's
        bootstrap, a scorer's fit), whichever seed the caller was on."""
        before, self.seed = self.seed, seed
        try:
            yield
        finally:
            self.seed = before

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
        worker processes (`it.load()` returns the media; harness.runtime.prefetch), the same batches in the
        same order, so the arrays are byte-identical too; `decode=False` for a `compute` that does
        not load the media itself (a scorer taking items, whose features may be cached), or a
        predicate naming the items it will load. `prepare`: the plugin's per-image preprocessing,
        then also run in the workers (`harness.runtime.prefetch.Prepared`)."""
        keys = self.item_array_keys(namespace, fingerprint, items)
        paths = [self.store.item_path(k, "npy") for k in keys]
        missing = [i for i, p in enumerate(paths) if not p.exists()]
        rank, world = rank_and_world() if self.sharded else (0, 1)
        mine = [i for i in missing if (i // batch_size) % world == rank]
        if mine:
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
