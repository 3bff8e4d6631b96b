"""A row's proxy scorers (those whose scores chose or trained its samples), what makes a scorer and
a metric the same model, and a scorer's scores on a row's samples, read through the evaluator
(memo, store, or computed as a `scores` node): shared by the over-optimisation monitor, its curves
and the cross-reward matrix, so all report the same proxies and proxy means. Never retrains a
scorer the store no longer holds."""

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


def proxy_scorer_nodes(samples: Node) -> list[Node]:
    """The scorers whose scores chose or trained this row's samples: the `scorer` input of every
    `scores` node in its graph (selection, fine-tuning data, per-round reward statistics) and of
    every op that optimises a scorer online (`optimises_scorer`: online RL), except scores that only
    judge (an op with `judges_scores`: a scorer judged on human pairs, a labeller)."""
    nodes = list(samples.walk())
    judging = {c.key for n in nodes if getattr(n.op, "judges_scores", False) for c in n.inputs.values() if c.op.name == "scores"}
    out: dict[str, Node] = {}
    for n in nodes:
        if (n.op.name == "scores" and n.key not in judging) or getattr(n.op, "optimises_scorer", False):
            out.setdefault(n.inputs["scorer"].key, n.inputs["scorer"])
    return list(out.values())


def scorer_identity(fp: Any) -> tuple[str, str] | None:
    """What makes a scorer and a metric "the same model": its weights identity and convention
    (a selector adapter and its metric share both; see metrics.base.MetricScorer). When only
    planning, before the weights are fetched, the provisional identity: plugin name and the assets
    it needs (a backbone that merely shares CLIP weights is not the same scorer)."""
    if not isinstance(fp, dict):
        return None
    if fp.get("unresolved_assets"):  # a selector adapter is registered under its metric's name
        return f"assets of {fp.get('plugin')}", repr(sorted(fp["unresolved_assets"]))
    if not fp.get("convention"):
        return None
    return repr(fp.get("weights")), str(fp["convention"])
