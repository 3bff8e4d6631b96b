"""Compute accounting: what a row's samples cost, summed over its artifact graph.

Every op reports the nominal work of its value (`Op.cost`: generator network evaluations `nfe`,
`scorer_calls`, `train_steps`); the evaluator adds the wall `seconds` it took and writes all of it
into the artifact's manifest (`cost`), so a cached artifact reports the cost it had when computed.
NFE are nominal: a K=4 pool costs 4 × prompts × the generator's NFE per sample even when its items
were made by a K=16 pool first (what the row *needs*, whatever the cache held); seconds are what
the computing run spent (items another artifact had made cost it nothing).

A row's cost splits at training ops (`Op.trains`: reward-model training, fine-tuning): a training
op and everything only it needs (the RM's negatives pool, the fine-tuning pool) is training cost;
the rest of the graph (the evaluation pool, its scores, a search) is sampling cost. Per delivered
sample: `nfe` and `scorer_calls` (sampling), `train_nfe` (training-data NFE amortised over the
row's delivered samples); totals: `train_steps`, `seconds` (all computed artifacts of the graph).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:  # pragma: no cover
    from ganrm_bench.harness.engine.nodes import Node
    from ganrm_bench.harness.store.artifacts import Store

COST_FIELDS = ("nfe", "scorer_calls", "train_steps", "seconds")
COST_COLUMNS = ["nfe", "train_nfe", "scorer_calls", "train_steps", "seconds"]


def generator_nfe(generator: Any) -> float:
    """Network evaluations one sample of `generator` takes (`Generator.nfe_per_sample`), NaN if unknown."""
    fn = getattr(generator, "nfe_per_sample", None)
    n = fn() if callable(fn) else None
    return float(n) if n is not None else math.nan


def training_steps(metrics: dict[str, Any] | None) -> float:
    """Optimizer steps in a training summary: `steps` plus any `steps_<stage>` (GAN-RM's bootstrap)."""
    total = 0.0
    for k, v in (metrics or {}).items():
        if (k == "steps" or k.startswith("steps_")) and isinstance(v, (int, float)) and not isinstance(v, bool):
            total += float(v)
    return total


def split_graph(samples: "Node") -> tuple[list["Node"], list["Node"]]:
    """(sampling nodes, training nodes) of the graph under `samples`, each node once. A node
    reachable without passing through a training op is sampling; the training ops and what only
    they reach are training."""
    sampling: dict[str, Node] = {}
    training: dict[str, Node] = {}

    def visit(n: "Node", under_training: bool) -> None:
        under_training = under_training or n.op.trains
        if under_training:
            if n.key in sampling or n.key in training:
                return
            training[n.key] = n
        else:
            if n.key in sampling:
                return
            training.pop(n.key, None)
            sampling[n.key] = n
        for child in n.inputs.values():
            visit(child, under_training)

    visit(samples, False)
    return list(sampling.values()), list(training.values())


def node_cost(node: "Node", known: dict[str, dict[str, float]], store: "Store") -> dict[str, float]:
    """The recorded cost of one node: this run's (`known`), else its manifest's, else zero for ops
    that store nothing (plugins, pass-throughs), else NaN (an artifact neither computed nor stored)."""
    if node.key in known:
        return known[node.key]
    if node.op.stored and store.has(node.key):
        return store.manifest(node.key).get("cost") or {f: math.nan for f in COST_FIELDS}
    if not node.op.stored:
        return {}
    return {f: math.nan for f in COST_FIELDS}


def row_cost(samples: "Node", delivered: int, cost_of: Callable[["Node"], dict[str, float]]) -> dict[str, float]:
    """The cost columns of a row whose graph ends in `samples` (`delivered` items)."""
    sampling, training = split_graph(samples)

    def total(nodes: list["Node"], field: str) -> float:
        values = [cost_of(n).get(field, 0.0) for n in nodes]
        return float(sum(math.nan if v is None else float(v) for v in values))

    per = max(int(delivered), 1)
    return {
        "nfe": total(sampling, "nfe") / per,
        "train_nfe": total(training, "nfe") / per,
        "scorer_calls": total(sampling, "scorer_calls") / per,
        "train_steps": total(sampling + training, "train_steps"),
        "seconds": total(sampling + training, "seconds"),
    }
