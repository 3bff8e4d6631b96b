"""A proxy scorer's scores on a row's samples, read through the evaluator (memo, store, or computed
as a `scores` node): shared by the over-optimisation monitor and its curves, so both report the same
proxy means. Never retrains a scorer the store no longer holds."""

from __future__ import annotations

from typing import Any

import numpy as np

from ganrm_bench.harness.engine.nodes import Node
from ganrm_bench.harness.engine.ops import SCORES
from ganrm_bench.harness.stats.paired import Units


def available(ev: Any, node: Node) -> bool:
    """Whether the node's value is at hand (memoized, stored, or a plugin as-is): the monitor
    reports on what the run made and never retrains a scorer that the store no longer holds."""
    return node.key in ev.memo or not node.op.stored or ev.ctx.store.has(node.key)


def scorer_scores(ev: Any, scorer: Node, samples: Node) -> tuple[np.ndarray, Any]:
    """(scores, items) of a scorer on a sample set."""
    if not available(ev, scorer):
        raise LookupError(f"the scorer {scorer.label!r} is not in the store (not retrained for diagnostics)")
    node = Node(SCORES, {}, {"scorer": scorer, "items": samples}, label=f"{scorer.label}({samples.label})")
    return np.asarray(ev.value(node), dtype=np.float64), ev.value(samples)


def prompt_units(scores: np.ndarray, items: Any) -> Units:
    """Per-prompt units of per-sample scores (the bootstrap units of a proxy mean's CI)."""
    return Units.from_samples(scores, [it.prompt_id or it.key for it in items])
