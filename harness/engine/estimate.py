"""`plan --estimate`: how long a run's uncached work would take on this machine.

Plugins measure one unit of their own work (`estimate_unit(ctx)`, optional, on generators,
scorers and metrics: a few timed repetitions at the spec's real shapes, with random-init
real-size models when no weights are present) and return a `UnitCost`; this module only counts
units from the plan (images to generate, items to score or featurize, fine-tuning samples) and
multiplies. Cached work is not in the plan, so it costs nothing. It imports no plugin.

Fine-tuning is derived from the generator's denoiser forward time: a training sample costs
3 forwards (forward + backward ≈ 2 forwards, the usual FLOP rule) for SFT, and 8 for DPO
(policy forward + backward on the winner and the loser, plus the frozen reference's forward on
both); optimizer and data loading are not counted.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from ganrm_bench.harness.engine.ops import pool_requests
from ganrm_bench.harness.runtime.numerics import fixed_threads

#: denoiser forwards per fine-tuning sample (see the module docstring)
TRAIN_FORWARDS = {"sft": 3.0, "dpo": 8.0}


@dataclass
class UnitCost:
    """What one unit of a plugin's work costs on the measuring device."""

    seconds: float  # per unit (an image generated, an item scored / featurized)
    unit: str = "item"
    forward_seconds: float | None = None  # generators: one denoiser forward for one sample (no CFG)
    fixed: float = 0.0  # once per op, e.g. a Fréchet distance
    peak_bytes: int | None = None
    note: str = ""


@dataclass
class EstimateRow:
    op: str
    label: str
    plugin: str
    units: int | None
    unit: str
    seconds_per_unit: float | None
    seconds: float | None
    peak_bytes: int | None = None
    note: str = ""


@dataclass
class Estimate:
    device: str
    rows: list[EstimateRow] = field(default_factory=list)

    @property
    def total_seconds(self) -> float:
        return sum(r.seconds for r in self.rows if r.seconds is not None)

    @property
    def missing(self) -> list[EstimateRow]:
        return [r for r in self.rows if r.seconds is None]

    @property
    def peak_bytes(self) -> int | None:
        peaks = [r.peak_bytes for r in self.rows if r.peak_bytes]
        return max(peaks) if peaks else None


class UnitCosts:
    """Each plugin's `estimate_unit(ctx)`, measured once per plugin identity."""

    def __init__(self, ctx: Any):
        self.ctx = ctx
        self._memo: dict[Any, UnitCost | None] = {}

    def __call__(self, obj: Any) -> UnitCost | None:
        hook: Callable[[Any], UnitCost | None] | None = getattr(obj, "estimate_unit", None)
        if hook is None:
            return None
        key = (type(obj).__name__, repr(getattr(obj, "params", id(obj))))
        if key not in self._memo:
            self._memo[key] = hook(self.ctx)
        return self._memo[key]


def item_count(node: Any, peek: Callable[[Any], Any]) -> int | None:
    """How many items an item-set node holds, from the plan alone (prompt sets are cheap to read)."""
    op = node.op.name
    if op == "pool":
        prompts = peek(node.inputs["prompts"])
        return None if prompts is None else len(prompts) * int(node.params["k"])
    if op == "select":  # one per prompt of its pool
        pool = node.inputs["pool"]
        prompts = peek(pool.inputs["prompts"]) if "prompts" in pool.inputs else None
        return None if prompts is None else len(prompts)
    if op == "images":
        counted = getattr(peek, "image_count", None)  # a PlanPeek (harness.engine.plan): declared sizes too
        if counted is not None:
            return counted(node)
        files = getattr(node.obj, "files", None)
        try:
            return len(files()) if files else None
        except Exception:  # absent folder: unknown (validate --inputs says why)
            return None
    planned = getattr(node.op, "planned_items", None)  # ops whose size their own inputs or source decide (pair sets)
    if callable(planned):
        return planned(node, peek)
    counts = [item_count(n, peek) for n in node.inputs.values() if n.op.name in ("pool", "select", "images", "union", "with_records")]
    if op in ("union", "with_records") and counts and None not in counts:
        return sum(counts) if op == "union" else counts[0]
    return None


def pool_item_keys(node: Any, peek: Callable[[Any], Any]) -> set[str] | None:
    """The item keys of a pool node (None for other nodes or unknown prompts)."""
    if node.op.name != "pool" or not hasattr(node.op, "item_keys"):
        return None

    prompts = peek(node.inputs["prompts"])
    if prompts is None:
        return None
    return set(node.op.item_keys(node, pool_requests(prompts, int(node.params["k"]), node.params["seed"])))


def _name(obj: Any) -> str:
    return getattr(obj, "name", type(obj).__name__) if obj is not None else "?"


def estimate(entries: Iterable[Any], ctx: Any, peek: Callable[[Any], Any], costs: UnitCosts | None = None) -> Estimate:
    """Seconds of each computed plan entry: units from the plan × the plugin's measured unit cost."""
    e = _Estimator(Estimate(device=str(getattr(ctx, "device", "cpu"))), costs or UnitCosts(ctx), peek)
    for entry in entries:
        if entry.status == "compute":
            e.add(entry)
    return e.est


class _Estimator:
    """One estimate: per op kind, how many units a plan entry is, with shared work counted once."""

    def __init__(self, est: Estimate, costs: UnitCosts, peek: Callable[[Any], Any]):
        self.est, self.costs, self.peek = est, costs, peek
        self.generated: set[str] = set()  # pool items shared by several pools count once
        self.featurized: set[tuple[str, str]] = set()  # (metric identity, reference set) featurized once
        self.scored: set[tuple[str, str]] = set()  # (scorer, item) scored once

    def add(self, entry: Any) -> None:
        handler = getattr(self, f"_{entry.node.op.name}", None)
        own = getattr(entry.node.op, "estimate_rows", None)  # a plugin op that sizes its own work (online RL)
        if handler is not None:
            handler(entry, entry.node)
        elif callable(own):
            self.est.rows.extend(own(entry.node, self.costs))
        elif entry.work:
            self.est.rows.append(EstimateRow(entry.node.op.name, entry.node.label, "", None, "", None, None,
                                             note="no estimate for this op"))

    def _pool(self, entry: Any, node: Any) -> None:
        todo = entry.work.get("images to generate", set())  # absent: every item is stored (the pool's list is not)
        units = len(todo - self.generated) if isinstance(todo, set) else None
        if isinstance(todo, set):
            self.generated |= todo
        _add(self.est, "pool", node, node.inputs["generator"].obj, units, self.costs, unit="image")

    def _scores(self, entry: Any, node: Any) -> None:
        keys = pool_item_keys(node.inputs["items"], self.peek)
        if keys is None:
            units = item_count(node.inputs["items"], self.peek)
        else:  # per-item score caches: a K = 10 pool's scores serve K = 6
            keys = {(node.inputs["scorer"].key, k) for k in keys}
            units = len(keys - self.scored)
            self.scored.update(keys)
        _add(self.est, "scores", node, node.inputs["scorer"].obj, units, self.costs)

    def _train_scorer(self, entry: Any, node: Any) -> None:
        parts = [item_count(node.inputs[k], self.peek) for k in ("positives", "negatives", "unlabeled") if k in node.inputs]
        _add(self.est, "train_scorer", node, node.obj, None if None in parts else sum(parts), self.costs,
             note="features of every training item; head epochs not timed")

    def _metric(self, entry: Any, node: Any) -> None:
        units = item_count(node.inputs["samples"], self.peek)
        ref = node.inputs.get("reference")
        if ref is not None and units is not None:
            key = (repr(getattr(node.obj, "params", None)), ref.key)
            if key not in self.featurized:
                self.featurized.add(key)
                n_ref = item_count(ref, self.peek)
                units = None if n_ref is None else units + n_ref
        _add(self.est, "metric", node, node.obj, units, self.costs)

    def _finetune(self, entry: Any, node: Any) -> None:
        _add_finetune(self.est, node, self.costs)


def _add(est: Estimate, op: str, node: Any, obj: Any, units: int | None, costs: UnitCosts, *, unit: str | None = None,
         note: str = "") -> None:
    cost = costs(obj) if obj is not None else None
    if cost is None:
        est.rows.append(EstimateRow(op, node.label, _name(obj), units, unit or "item", None, None,
                                    note=f"{_name(obj)} has no estimate_unit()"))
        return
    seconds = None if units is None else units * cost.seconds + cost.fixed
    est.rows.append(EstimateRow(op, node.label, _name(obj), units, unit or cost.unit, cost.seconds, seconds, cost.peak_bytes,
                                "; ".join(x for x in (cost.note, note) if x) or ("unit count unknown" if units is None else "")))


def _add_finetune(est: Estimate, node: Any, costs: UnitCosts) -> None:
    train = node.params.get("train", {})
    objective = train.get("objective", "dpo")
    samples = int(train.get("steps", 0)) * int(train.get("batch_size", 1)) * int(train.get("grad_accum", 1))
    gen = node.inputs["generator"].obj
    cost = costs(gen) if gen is not None else None
    if cost is None or cost.forward_seconds is None:
        est.rows.append(EstimateRow("finetune", node.label, _name(gen), samples, f"{objective} sample", None, None,
                                    note=f"{_name(gen)} gives no denoiser forward time"))
        return
    per = TRAIN_FORWARDS.get(objective, TRAIN_FORWARDS["dpo"]) * cost.forward_seconds
    est.rows.append(EstimateRow("finetune", node.label, _name(gen), samples, f"{objective} sample", per, samples * per,
                                cost.peak_bytes, f"{TRAIN_FORWARDS.get(objective, 8):g} denoiser forwards per sample"))


# -- helpers plugins use to time their unit ---------------------------------------------------------


def time_call(fn: Callable[[], Any], *, repeat: int = 2, warmup: int = 1, device: str = "cpu") -> tuple[float, int | None]:
    """Median seconds of `fn()` over `repeat` runs after `warmup`, and peak CUDA bytes (None on CPU).

    On a CPU this is single-thread CPU time (torch pinned to one thread for the call): wall time
    on a shared machine would count the other processes' load, and with several threads the
    process's CPU time would count their idle spinning. A machine with C free cores runs at best
    C times faster."""

    cuda = str(device).startswith("cuda")
    if not cuda:
        with fixed_threads(1, deterministic=False):
            return _timed(fn, repeat, warmup, cuda=False, clock=time.process_time)
    return _timed(fn, repeat, warmup, cuda=True, clock=time.perf_counter)


def _timed(fn: Callable[[], Any], repeat: int, warmup: int, *, cuda: bool, clock: Callable[[], float]) -> tuple[float, int | None]:
    import torch

    if cuda:
        torch.cuda.reset_peak_memory_stats()
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        if cuda:
            torch.cuda.synchronize()
        t0 = clock()
        fn()
        if cuda:
            torch.cuda.synchronize()
        times.append(clock() - t0)
    times.sort()
    return times[len(times) // 2], (torch.cuda.max_memory_allocated() if cuda else None)


def hours(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h" if seconds >= 360 else f"{seconds / 60:.1f} min"


def _mib(b: int | None) -> str:
    return "—" if not b else f"{b / 2**30:.1f} GiB"


def _secs(s: float | None) -> str:
    if s is None:
        return "?"
    return f"{s:.3g} s" if s < 600 else hours(s)


def estimate_lines(est: Estimate, elapsed: float | None = None) -> list[str]:
    """The per-op table and the `estimated total:` line."""
    lines = [f"{'op':<13} {'artifact':<32} {'units':>9} {'per unit':>10} {'total':>10} {'peak':>8}  note"]
    for r in est.rows:
        units = "?" if r.units is None else f"{r.units:,}"
        lines.append(f"{r.op:<13} {r.label[:32]:<32} {units:>9} {_secs(r.seconds_per_unit):>10} {_secs(r.seconds):>10} "
                     f"{_mib(r.peak_bytes):>8}  {r.unit}; {r.note}")
    by_op: dict[str, list[EstimateRow]] = {}
    for r in est.rows:
        by_op.setdefault(r.op, []).append(r)
    lines.append("by op:")
    for op, rows in by_op.items():
        known = [r.seconds for r in rows if r.seconds is not None]
        units = sum(r.units or 0 for r in rows)
        lines.append(f"  {op:<13} {len(rows):>4} artifact(s) {units:>12,} units {hours(sum(known)):>12}"
                     + (f"  ({len(rows) - len(known)} without an estimate)" if len(known) < len(rows) else ""))
    peak = f", peak {_mib(est.peak_bytes)}" if est.peak_bytes else ", peak memory not measurable on this device"
    lines.append(f"estimated total: {hours(est.total_seconds)} on {est.device}{peak}"
                 + (f" ({len(est.missing)} op(s) without an estimate)" if est.missing else ""))
    if elapsed is not None:
        lines.append(f"(estimating took {elapsed:.0f} s)")
    return lines
