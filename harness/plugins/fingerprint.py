"""The artifact graph: nodes are computations keyed by everything that produced them.

A node's key hashes its op (name + version), its params (plugin fingerprints included, so weights
digests are in) and the keys of its inputs — so a key names one artifact forever, whichever run,
process count or batch size made it. Methods build their rows' graphs with a `Builder`:

    pool   = b.pool(entry.generator, entry.prompts, k=10)     # K samples per prompt, per-item cached
    scores = b.scores(b.scorer(entry.scorer), pool)            # per-item cached scores
    return b.select(pool, scores, "argmax")                   # one sample per prompt

Ops that a method needs beyond these (fine-tuning) subclass `Op` and are added with `b.node(...)`."""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from ganrm_bench.harness.runtime.context import Context


def plugin_fingerprint(obj: Any, ctx: "Context") -> dict[str, Any]:
    """`obj.fingerprint(ctx)` for plugins that digest weights files through the store, else `obj.fingerprint()`."""
    fp = obj.fingerprint
    return fp(ctx) if len(inspect.signature(fp).parameters) >= 1 else fp()
