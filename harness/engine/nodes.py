"""Nodes of the artifact graph and the Op interface: a node's key hashes its op (name + version),
its params (plugin fingerprints included, so weights digests are in) and the keys of its inputs —
so a key names one artifact forever, whichever run, process count or batch size made it."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Iterator

from ganrm_bench.harness.plugins.base import Item, ItemSet
from ganrm_bench.harness.runtime.numerics import key_part
from ganrm_bench.harness.store.artifacts import Store
from ganrm_bench.harness.store.keys import hash_key

if TYPE_CHECKING:  # pragma: no cover
    from ganrm_bench.harness.runtime.context import Context


class Op:
    """A kind of computation. Stored ops persist their value in the store under the node key."""

    name: ClassVar[str] = "op"
    version: ClassVar[str] = "1"
    stored: ClassVar[bool] = True
    reported: ClassVar[bool] = False  # values (dicts) listed in the run's records.csv, e.g. per-round reward stats
    # Bytes depend on the device's kernels (CPU vs CUDA): the node key carries the run's numerics class
    # (harness/runtime/numerics.py; the reference class, CPU, adds nothing). Thread counts are not part of it:
    # an op whose bytes depend on them computes under `fixed_threads`.
    numerics_sensitive: ClassVar[bool] = False
    data_parallel: ClassVar[bool] = False  # several processes compute it together (bytes depend on their number)
    trains: ClassVar[bool] = False  # a training op: it and what only it needs are a row's training cost (harness.engine.cost)

    def compute(self, node: "Node", ctx: "Context", inputs: dict[str, Any]) -> Any:
        raise NotImplementedError

    def save(self, value: Any, directory: Path, node: "Node") -> dict[str, Any]:
        """Write the value's files into `directory`; return extra manifest fields."""
        raise NotImplementedError

    def load(self, directory: Path, node: "Node", ctx: "Context") -> Any:
        raise NotImplementedError

    def exclusive(self, node: "Node") -> bool:
        """Whether computing takes the node's file lock (so concurrent runs never compute twice).
        Ops that several processes compute together (sharded pools) must not."""
        return True

    def pending(self, node: "Node", store: Store, peek) -> dict[str, int | set[str]]:
        """What computing this node would take (for `plan`), e.g. {"models to train": 1}; a set of
        item keys where several nodes may share the same work (pool items)."""
        return {f"{self.name} to compute": 1}

    def training_step(self, node: "Node") -> int | None:
        """The optimizer step of the weights this node holds: a training op's last step, or the step
        of a checkpoint of one (None: not weights along training). The over-optimisation curves read
        rows sampling from one run's checkpoints as a curve over this step."""
        return None

    def training_run(self, node: "Node") -> "Node":
        """The training node whose weights this node holds (itself, or the run a checkpoint reads)."""
        return node

    def divergence(self, node: "Node", tuned: "Node", reference: "Node", prompts: "Node") -> "Node | None":
        """A node whose value estimates KL(tuned ‖ reference) on `prompts` — `tuned` the generator
        holding this node's weights, `reference` the one they were trained from — as a dict with
        `kl`, `ci_low`, `ci_high` and `estimator`; None when no estimator applies. The
        over-optimisation curves along training put √KL on their x axis."""
        return None

    def cost(self, node: "Node", value: Any) -> dict[str, float]:
        """The nominal work this value takes (harness.engine.cost): `nfe` (generator network evaluations),
        `scorer_calls`, `train_steps`; the evaluator adds wall `seconds` and keeps it in the manifest."""
        return {}


@dataclass(eq=False)
class Node:
    op: Op
    params: dict[str, Any]
    inputs: dict[str, "Node"] = field(default_factory=dict)
    label: str = ""
    obj: Any = None  # the plugin instance a source/plugin node carries (not part of the key)
    numerics: str | None = None  # the numerics class its bytes depend on (None: none); in the key unless the reference class

    @cached_property
    def key(self) -> str:
        return hash_key(
            {"op": self.op.name, "version": self.op.version, "params": self.params, "inputs": {k: n.key for k, n in sorted(self.inputs.items())},
             **key_part(self.numerics)}
        )

    def walk(self) -> Iterator["Node"]:
        """This node and its ancestors, inputs first, each once."""
        seen: set[str] = set()

        def visit(n: Node) -> Iterator[Node]:
            if n.key in seen:
                return
            seen.add(n.key)
            for child in n.inputs.values():
                yield from visit(child)
            yield n

        yield from visit(self)

    def __repr__(self) -> str:
        return f"Node({self.op.name}:{self.label or self.key[:8]})"


def items_to_json(items: ItemSet | list[Item]) -> list[dict[str, Any]]:
    return [it.__dict__ for it in items]


def items_from_json(key: str, rows: list[dict[str, Any]]) -> ItemSet:
    return ItemSet(key, tuple(Item(**r) for r in rows))


def _write_json(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(obj, indent=1, default=lambda o: o.tolist() if hasattr(o, "tolist") else str(o)))
