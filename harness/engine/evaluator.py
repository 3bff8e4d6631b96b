"""The evaluator: computes a node only when the store lacks it (under its lock, or sharded across
processes), loads it otherwise, and remembers what it computed, loaded and cost."""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections import Counter
from typing import Any

from ganrm_bench.harness.engine.cost import node_cost
from ganrm_bench.harness.engine.nodes import Node
from ganrm_bench.harness.runtime import memory
from ganrm_bench.harness.runtime.context import Context
from ganrm_bench.harness.runtime.distributed import (
    failing_together,
    launch_lock,
    node_lock,
    rank_and_world,
    wait_for_files,
)
from ganrm_bench.harness.runtime.numerics import numerics_record
from ganrm_bench.harness.store.artifacts import MANIFEST

log = logging.getLogger("ganrm_bench")


class Evaluator:
    """Computes node values, memoized per run; stored ops are loaded when their artifact exists."""

    def __init__(self, ctx: Context):
        self.ctx = ctx
        self.memo: dict[str, Any] = {}
        self.computed: Counter[str] = Counter()
        self.loaded: Counter[str] = Counter()
        self.failed: dict[str, Exception] = {}  # a node that failed fails every cell needing it, computed once
        self.costs: dict[str, dict[str, float]] = {}  # node key -> its cost (harness.engine.cost), computed or from its manifest

    def value(self, node: Node) -> Any:
        if node.key in self.memo:
            return self.memo[node.key]
        if node.key in self.failed:
            raise self.failed[node.key]
        try:
            return self._value(node)
        except Exception as exc:
            if getattr(exc, "failed_node", None) is None:
                try:
                    exc.failed_node = node  # type: ignore[attr-defined]  # the innermost artifact that failed
                except AttributeError:  # pragma: no cover - exceptions without a __dict__
                    pass
            self.failed[node.key] = exc
            raise

    def _value(self, node: Node) -> Any:
        store, op = self.ctx.store, node.op
        if op.stored and store.has(node.key):
            value = self._load(node)
        elif not op.stored:
            inputs = {k: self.value(n) for k, n in node.inputs.items()}
            value = op.compute(node, self.ctx, inputs)
            self.costs[node.key] = op.cost(node, value)  # no artifact: no recorded seconds (its work is its inputs')
        else:
            inputs = {k: self.value(n) for k, n in node.inputs.items()}
            rank, world = rank_and_world()
            exclusive = op.exclusive(node)
            if world == 1:
                lock = store.lock(node.key) if exclusive else contextlib.nullcontext()
            else:  # one process computes under the node's lock, or all together while process 0 holds it
                lock = node_lock(store, node.key) if exclusive else launch_lock(store, node.key)
            # under a lock only this rank computes; otherwise every rank does, sharding per-item work
            with lock, failing_together(store.root), self.ctx.sharding(world > 1 and not exclusive):
                if store.has(node.key):
                    value = self._load(node)
                else:
                    log.info("computing %s %s", op.name, node.label)
                    memory.next_node()  # models only earlier nodes used leave the device when this one loads its own
                    t0 = time.perf_counter()
                    value = op.compute(node, self.ctx, inputs)
                    if exclusive or rank == 0:  # computed together: rank 0 alone publishes (hashes, copies)
                        meta = {"producer": op.name, "op_version": op.version, "label": node.label, "params": node.params,
                                "inputs": {k: n.key for k, n in node.inputs.items()},
                                "numerics": {**numerics_record(self.ctx.device), "class": node.numerics}}
                        with store.writing(node.key, meta) as tmp:
                            extra = op.save(value, tmp, node) or {}
                            meta.update(extra)
                            meta["cost"] = self.costs[node.key] = {**op.cost(node, value), "seconds": round(time.perf_counter() - t0, 4)}
                    else:
                        wait_for_files([store.path(node.key) / MANIFEST], what=f"{op.name} {node.label} from process 0", root=store.root)
                        value = self._load(node)
                    self.computed[op.name] += 1
        self.memo[node.key] = value
        return value

    def _load(self, node: Node) -> Any:
        """A stored artifact, with the cost it had when computed (its manifest's; nominal work and
        unknown seconds for artifacts stored before costs were recorded)."""
        value = node.op.load(self.ctx.store.path(node.key), node, self.ctx)
        self.loaded[node.op.name] += 1
        recorded = self.ctx.store.manifest(node.key).get("cost")
        self.costs[node.key] = recorded if recorded is not None else {**node.op.cost(node, value), "seconds": math.nan}
        return value

    def cost(self, node: Node) -> dict[str, float]:
        """The recorded cost of a node of this run's graphs (harness.engine.cost)."""
        return node_cost(node, self.costs, self.ctx.store)

    def peek(self, node: Node) -> Any:
        """A cheap value for planning (prompt sets), or None when it would take real work.
        Nothing is written: a plan leaves the store as it found it."""
        if node.op.name != "prompts":
            return None
        if node.key not in self.memo:
            store = self.ctx.store
            self.memo[node.key] = (node.op.load(store.path(node.key), node, self.ctx) if store.has(node.key)
                                   else node.op.compute(node, self.ctx, {}))
        return self.memo[node.key]
