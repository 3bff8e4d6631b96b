"""Plans: what a run would compute, per node, with the work it takes; nothing is written.

A plan reads prompt sets (their sizes and ids decide the pools' work) and, for `--estimate`, counts
image folders. Before the data are on this machine (a fresh clone, planning what a paper table
takes), a source stands in with the size its spec entry declares (`expected_count`) or, for
prompt sets declaring none, `--assume-prompts N`; every size so assumed is listed with the plan."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ganrm_bench.harness.engine.evaluator import Evaluator
from ganrm_bench.harness.engine.nodes import Node
from ganrm_bench.harness.errors import UserError
from ganrm_bench.harness.plugins.base import Prompt
from ganrm_bench.harness.runtime.context import Context
from ganrm_bench.harness.store.assets import plugin_assets


@dataclass
class PlanEntry:
    node: Node
    status: str  # "cached" | "compute" | "source"
    work: dict[str, int | set[str]] = field(default_factory=dict)

    def work_counts(self) -> dict[str, int]:
        return {k: len(v) if isinstance(v, set) else v for k, v in self.work.items()}


@dataclass(frozen=True, order=True)
class Assumed:
    """A size the plan assumed because a source's data are not on this machine."""

    entry: str  # the spec entry (prompt set or image set)
    count: int
    what: str  # "prompts" | "images"
    why: str  # "expected_count" | "--assume-prompts"
    missing: str  # the absent file or folder

    def line(self) -> str:
        return f"{self.entry}: {self.count:,} {self.what} ({self.why}; {self.missing} is not here)"


class PlanPeek:
    """What a plan may read cheaply (`peek(node)`: a prompt set, else None; `image_count(node)`),
    standing in for absent data with declared or assumed sizes (recorded in `assumed`)."""

    def __init__(self, ctx: Context, assume_prompts: int | None = None):
        if assume_prompts is not None and (isinstance(assume_prompts, bool) or not isinstance(assume_prompts, int) or assume_prompts < 1):
            raise UserError(f"--assume-prompts {assume_prompts!r}: must be a whole number of prompts, 1 or more")
        self.evaluator = Evaluator(ctx)
        self.assume_prompts = assume_prompts
        self.assumed: dict[str, Assumed] = {}

    def __call__(self, node: Node) -> Any:
        if node.op.name != "prompts":
            return None
        try:
            return self.evaluator.peek(node)
        except UserError as exc:
            missing = absent_data(node.obj)
            if not missing:  # the data are here and wrong: the source's own error
                raise
            declared = declared_size(node.obj)
            n, why = (declared, "expected_count") if declared else (self.assume_prompts, "--assume-prompts")
            if not n:
                raise UserError(exc.message, hint=f"to plan before the data are here, declare the size on the entry "
                                f"(prompts.{node.label}.expected_count: N) or pass --assume-prompts N") from exc
            n = limited(node.obj, n)
            self.assumed[node.key] = Assumed(node.label, n, "prompts", why, missing[0])
            prompts = placeholder_prompts(n, missing[0])
            self.evaluator.memo[node.key] = prompts
            return prompts

    def image_count(self, node: Node) -> int | None:
        """How many images an image source yields, by listing its folder (nothing read), or its
        declared size when the folder is not here; None: unknown."""
        files = getattr(node.obj, "files", None)
        try:
            return len(files()) if files else None
        except Exception:  # noqa: BLE001 - absent or unreadable: `validate --inputs` says why
            missing, declared = absent_data(node.obj), declared_size(node.obj)
            if not (missing and declared):
                return None
            n = limited(node.obj, declared)
            self.assumed[node.key] = Assumed(node.label, n, "images", "expected_count", missing[0])
            return n


def absent_data(obj: Any) -> list[str]:
    """The local files or folders a source reads that are not on this machine."""
    return [a.dest or a.id for a in plugin_assets(obj) if a.kind == "local" and not Path(a.dest or a.id).expanduser().exists()]


def declared_size(obj: Any) -> int | None:
    """The `expected_count` a source's spec entry declares (items in its file or folder)."""
    return getattr(getattr(obj, "params", None), "expected_count", None)


def limited(obj: Any, n: int) -> int:
    """`n` items cut to the source's `limit` (its first N), as loading would."""
    limit = getattr(getattr(obj, "params", None), "limit", None)
    return min(n, limit) if isinstance(limit, int) else n


def placeholder_prompts(n: int, where: str) -> list[Prompt]:
    """Stand-ins for the first `n` prompts of an absent file: ids as a file without an id column
    gets, texts naming the file, so two sets of one file share their samples as the real ones do
    and sets of different files share none."""
    return [Prompt(id=f"{i:06d}", text=f"(assumed prompt {i} of {where})") for i in range(n)]


def plan(targets: list[Node], ctx: Context, peek: Any = None) -> list[PlanEntry]:
    """What a run would do: for each needed node, cached or to compute, with the work it takes.
    Inputs of a cached node are not needed, so they are not listed. `peek`: how prompt sets are
    read (default: from the store or their source; a PlanPeek also stands in for absent data)."""
    peek = peek or Evaluator(ctx).peek
    needed: dict[str, PlanEntry] = {}

    def visit(n: Node) -> None:
        if n.key in needed:
            return
        if n.op.stored and ctx.store.has(n.key):
            needed[n.key] = PlanEntry(n, "cached")
            return
        for child in n.inputs.values():
            visit(child)
        status = "compute" if n.op.stored else "source"
        needed[n.key] = PlanEntry(n, status, n.op.pending(n, ctx.store, peek) if n.op.stored else {})

    for t in targets:
        visit(t)
    return list(needed.values())


def plan_totals(entries: list[PlanEntry]) -> dict[str, int]:
    """Work summed over the plan; shared items (a K=10 pool serving K=6) are counted once."""
    counts: Counter[str] = Counter()
    shared: dict[str, set[str]] = {}
    for e in entries:
        for k, v in e.work.items():
            if isinstance(v, set):
                shared.setdefault(k, set()).update(v)
            elif v > 0:
                counts[k] += v
    return {**{k: len(v) for k, v in shared.items()}, **counts}
