"""Decoding items off the main process: torch DataLoader workers call `Item.load` (the same function
the main process would), so a GPU scoring features is not waiting on PNG/NPZ decompression.

The numbers cannot change: a worker returns the decoded media (`LoadedItem.load()` hands it back),
batches keep their order and composition, and every model call stays in the main process. A file a
worker could not read is read again in the main process, so the error (and `skip_bad`) is the one
the plugin sees today.

Workers are forked (they inherit the plugin's functions, which need not pickle); where processes
cannot fork (Windows), items are decoded in the main process as before.

A plugin may also have its per-image CPU preprocessing (resize, normalize) run there: it gives
`per_item_arrays` a `prepare(media)` function and accepts a `Prepared` value wherever it takes an
image, using `.value` instead of calling `prepare` itself (same function: same bytes).
"""

from __future__ import annotations

import multiprocessing
import os
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence

from ganrm_bench.harness.plugins.base import Item


def default_loader_workers(device: str) -> int:
    """0 on the CPU (the cores compute; tests stay single-process), min(4, cores) on an accelerator."""
    if str(device).startswith(("cuda", "mps")):
        return min(4, os.cpu_count() or 1)
    return 0


@dataclass(frozen=True)
class LoadedItem(Item):
    """An item whose media a loader worker has decoded already (None: read it again here)."""

    media: Any = None

    def load(self):
        return self.media if self.media is not None else Item.load(self)


@dataclass(frozen=True)
class Prepared:
    """An image already through its plugin's per-image preprocessing (`prepare`) in a loader worker."""

    value: Any


def prepared(x: Any, prepare: Callable[[Any], Any]) -> Any:
    """`x.value` for a `Prepared` input, else `prepare(x)`: what a plugin's batch code calls per image."""
    return x.value if isinstance(x, Prepared) else prepare(x)


def _decode(item: Item, prepare: Callable[[Any], Any] | None = None, needs: Callable[[Item], bool] | None = None) -> Item:
    if isinstance(item, LoadedItem) or (needs is not None and not needs(item)):
        return item
    try:
        media = item.load()
        if prepare is not None:
            media = Prepared(prepare(media))
    except Exception:  # noqa: BLE001 - read again in the main process, which raises the error plugins expect
        media = None
    fields = {k: getattr(item, k) for k in ("key", "path", "prompt_id", "prompt", "k", "seed")}
    return LoadedItem(**fields, media=media)


class _Batches:
    """A map-style dataset of fixed batches: element b is batch b, decoded."""

    def __init__(self, batches: Sequence[Sequence[Item]], prepare: Callable[[Any], Any] | None = None,
                 needs: Callable[[Item], bool] | None = None):
        self.batches = [list(b) for b in batches]
        self.prepare, self.needs = prepare, needs

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, b: int) -> list[Item]:
        return [_decode(it, self.prepare, self.needs) for it in self.batches[b]]


def _as_is(batch: Any) -> Any:
    return batch


def decoded_batches(batches: Sequence[Sequence[Item]], workers: int, prepare: Callable[[Any], Any] | None = None,
                    needs: Callable[[Item], bool] | None = None) -> Iterator[list[Item]]:
    """The batches in order, each item's media (those `needs` names, when given) decoded and
    `prepare`d, when given, by one of `workers` DataLoader processes. With 0 workers, a single batch (a worker would decode it while
    the main process waits: nothing to overlap, and starting workers costs more), or items already
    decoded: the batches as they are, decoded where used."""
    batches = [list(b) for b in batches]
    forks = "fork" in multiprocessing.get_all_start_methods()  # workers inherit the plugin's functions (closures need not pickle)
    if workers <= 0 or not forks or len(batches) < 2 or all(isinstance(it, LoadedItem) for b in batches for it in b):
        yield from batches
        return
    from torch.utils.data import DataLoader

    loader = DataLoader(_Batches(batches, prepare, needs), batch_size=None, shuffle=False, num_workers=min(workers, len(batches)),
                        collate_fn=_as_is, prefetch_factor=2, multiprocessing_context="fork")
    yield from loader


def scorer_loading(scorer: Any, ctx: Any) -> dict[str, Any]:
    """How `per_item_arrays` loads items for a scorer's scores: decoded in the workers, unless the
    scorer takes Items (its features may be cached); one that does may name the items it will read
    and its per-image preprocessing (`item_loading(ctx)` → (needs, prepare))."""
    if not getattr(scorer, "accepts_items", False):
        return {"decode": True}
    hook = getattr(scorer, "item_loading", None)
    if hook is None or not getattr(ctx, "loader_workers", 0):
        return {"decode": False}
    needs, prepare = hook(ctx)
    return {"decode": needs, "prepare": prepare}
