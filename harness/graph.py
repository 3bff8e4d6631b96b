"""The artifact graph: nodes are computations keyed by everything that produced them.

A node's key hashes its op (name + version), its params (plugin fingerprints included, so weights
digests are in) and the keys of its inputs — so a key names one artifact forever, whichever run,
process count or batch size made it. Methods build their rows' graphs with a `Builder`:

    pool   = b.pool(entry.generator, entry.prompts, k=10)     # K samples per prompt, per-item cached
    scores = b.scores(b.scorer(entry.scorer), pool)            # per-item cached scores
    return b.select(pool, scores, "argmax")                   # one sample per prompt

Ops that a method needs beyond these (fine-tuning) subclass `Op` and are added with `b.node(...)`.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Iterator

import numpy as np

from ganrm_bench.harness.errors import UserError, did_you_mean
from ganrm_bench.harness.numerics import key_part, numerics_class
from ganrm_bench.harness.plugins import Item, ItemSet, MetricResult, Prompt, SampleRequest
from ganrm_bench.harness.prefetch import scorer_loading
from ganrm_bench.harness.runtime import derive_seed
from ganrm_bench.harness.store import Store, hash_key

if TYPE_CHECKING:  # pragma: no cover
    from ganrm_bench.harness.runtime import Context
    from ganrm_bench.harness.spec import Spec


class Op:
    """A kind of computation. Stored ops persist their value in the store under the node key."""

    name: ClassVar[str] = "op"
    version: ClassVar[str] = "1"
    stored: ClassVar[bool] = True
    reported: ClassVar[bool] = False  # values (dicts) listed in the run's records.csv, e.g. per-round reward stats
    # Bytes depend on the device's kernels (CPU vs CUDA): the node key carries the run's numerics class
    # (harness/numerics.py; the reference class, CPU, adds nothing). Thread counts are not part of it:
    # an op whose bytes depend on them computes under `fixed_threads`.
    numerics_sensitive: ClassVar[bool] = False
    data_parallel: ClassVar[bool] = False  # several processes compute it together (bytes depend on their number)
    trains: ClassVar[bool] = False  # a training op: it and what only it needs are a row's training cost (harness.cost)

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

    def cost(self, node: "Node", value: Any) -> dict[str, float]:
        """The nominal work this value takes (harness.cost): `nfe` (generator network evaluations),
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


# ---------------------------------------------------------------------------------------------
# JSON helpers for item sets and prompts.


def items_to_json(items: ItemSet | list[Item]) -> list[dict[str, Any]]:
    return [it.__dict__ for it in items]


def items_from_json(key: str, rows: list[dict[str, Any]]) -> ItemSet:
    return ItemSet(key, tuple(Item(**r) for r in rows))


def _write_json(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(obj, indent=1, default=lambda o: o.tolist() if hasattr(o, "tolist") else str(o)))


# ---------------------------------------------------------------------------------------------
# Built-in ops.


class PluginOp(Op):
    """A plugin instance used as-is (a generator, a pretrained scorer): nothing to store."""

    name = "plugin"
    stored = False

    def compute(self, node, ctx, inputs):
        return node.obj

    def pending(self, node, store, peek):
        return {}


class PromptsOp(Op):
    name = "prompts"

    def compute(self, node, ctx, inputs):
        prompts = node.obj.load(ctx)
        if not prompts:
            raise UserError(f"prompt set {node.label!r} is empty")
        return prompts

    def save(self, value, directory, node):
        _write_json(directory / "prompts.json", [{"id": p.id, "text": p.text, "meta": p.meta} for p in value])
        return {"count": len(value)}

    def load(self, directory, node, ctx):
        return [Prompt(r["id"], r["text"], r.get("meta", {})) for r in json.loads((directory / "prompts.json").read_text())]

    def pending(self, node, store, peek):
        return {}


class ItemSetOp(Op):
    """Ops whose value is an ItemSet, stored as the list of its items (the files stay where they are).
    Items in the store are referenced relative to its root, so a copied or re-mounted store works."""

    def save(self, value, directory, node):
        from ganrm_bench.harness.store import item_ref

        root = Path(directory).parents[1]  # Store.writing fills a temp dir <root>/tmp/<key>.*
        rows = [{**it.__dict__, "path": item_ref(it.path, root)} for it in value]
        _write_json(directory / "items.json", rows)
        return {"count": len(value)}

    def load(self, directory, node, ctx):
        rows = json.loads((directory / "items.json").read_text())
        rows = [{**r, "path": ctx.store.resolve_item(r["path"], artifact=node.key)} for r in rows]
        return items_from_json(node.key, rows)


class ImagesOp(ItemSetOp):
    name = "images"

    def compute(self, node, ctx, inputs):
        items = node.obj.load(ctx)
        return ItemSet(node.key, tuple(items.items if isinstance(items, ItemSet) else items))

    def pending(self, node, store, peek):
        return {}


def pool_requests(prompts: list[Prompt], k: int, seed: int) -> list[SampleRequest]:
    """K requests per prompt; each seed depends only on (run seed, prompt id, k), so a pool of K=10
    contains the pool of K=6, and base/fine-tuned generators see the same initial noise."""
    return [SampleRequest(p, j, derive_seed(seed, p.id, j)) for p in prompts for j in range(k)]


class UnionOp(ItemSetOp):
    """The items of several item sets in order (a row's samples over all seeds, for pooled metrics)."""

    name = "union"

    def compute(self, node, ctx, inputs):
        return ItemSet(node.key, tuple(it for name in sorted(inputs) for it in inputs[name]))

    def pending(self, node, store, peek):
        return {}


class PoolOp(ItemSetOp):
    """K samples per prompt from a generator, stored one item per file as they are made, so a
    killed run resumes where it stopped and any K' ≤ K reuses the items of K.

    Under several processes (RANK / WORLD_SIZE set, e.g. by `accelerate launch`), process r makes
    the missing items whose index ≡ r (mod world size), then waits for the others' items: sharding
    is by item, so a restart with another process count reuses every finished item."""

    name = "pool"
    numerics_sensitive = True

    def exclusive(self, node):
        from ganrm_bench.harness.distributed import rank_and_world

        return rank_and_world()[1] == 1  # items are atomic files: shards need no lock

    def item_keys(self, node: Node, requests: list[SampleRequest]) -> list[str]:
        gen_key = node.inputs["generator"].key
        return [hash_key({"generator": gen_key, "prompt": r.prompt.id, "text": r.prompt.text, "k": r.k, "seed": r.seed, **key_part(node.numerics)})
                for r in requests]

    def compute(self, node, ctx, inputs):
        from ganrm_bench.harness.distributed import rank_and_world, wait_for_files
        from ganrm_bench.harness.numerics import tf32_where_safe
        from ganrm_bench.harness.oom import out_of_memory_hint

        generator = inputs["generator"]
        requests = pool_requests(inputs["prompts"], node.params["k"], node.params["seed"])
        keys = self.item_keys(node, requests)
        ext = "npz" if getattr(generator, "modality", "image") == "video" else "png"
        paths = [ctx.store.item_path(k, ext) for k in keys]
        rank, world = rank_and_world()
        missing = [i for i, p in enumerate(paths) if not p.exists()]
        mine = [i for i in missing if i % world == rank]
        batch = ctx.batch_size or getattr(getattr(generator, "params", None), "batch_size", None) or 8
        base = node.inputs["generator"].label.split("+")[0]  # a fine-tuned generator's spec entry
        with ctx.progress.task(f"generate {node.label}", len(mine)) as advance:
            for start in range(0, len(mine), batch):
                idx = mine[start : start + batch]
                with out_of_memory_hint(f"generating {node.label}", batch,
                                        f"--set generators.{base}.batch_size={{n}} (or --batch-size {{n}})", device=ctx.device), \
                        tf32_where_safe(ctx.device):
                    outputs = generator.generate([requests[i] for i in idx], ctx)
                if len(outputs) != len(idx):
                    raise RuntimeError(f"generator {node.inputs['generator'].label!r} returned {len(outputs)} samples for {len(idx)} requests")
                for i, out in zip(idx, outputs):
                    ctx.store.put_item(keys[i], ext, lambda p, o=out: save_media(o, p))
                ctx.count("images generated", len(idx))
                advance(len(idx))
        if world > 1:
            wait_for_files([paths[i] for i in missing], what=f"pool {node.label} items from other processes", root=ctx.store.root)
        items = tuple(
            Item(key, str(path), r.prompt.id, r.prompt.text, r.k, r.seed) for key, path, r in zip(keys, paths, requests)
        )
        return ItemSet(node.key, items)

    def save(self, value, directory, node):
        """The item list, plus each item file's size and mtime in the manifest (for `cache verify`;
        reading a 200k-image pool to hash it would cost more than generating the record is worth)."""
        from ganrm_bench.harness.store import file_stat_signature

        meta = super().save(value, directory, node)
        root = Path(value.items[0].path).parents[2] if value.items else None  # <root>/items/ab/<key>.png
        return {**meta, "items": {Path(it.path).relative_to(root).as_posix(): file_stat_signature(it.path) for it in value} if root else {}}

    def pending(self, node, store, peek):
        generator = node.inputs["generator"].obj
        prompts = peek(node.inputs["prompts"])
        if prompts is None:
            return {"images to generate": -1}
        requests = pool_requests(prompts, node.params["k"], node.params["seed"])
        ext = "npz" if getattr(generator, "modality", "image") == "video" else "png"
        missing = {k for k in self.item_keys(node, requests) if not store.item_path(k, ext).exists()}
        return {"images to generate": missing} if missing else {}  # a set: pools sharing items count once

    def cost(self, node, value):
        from ganrm_bench.harness.cost import generator_nfe

        return {"nfe": len(value) * generator_nfe(node.inputs["generator"].obj)}


def save_media(obj: Any, path: Path) -> None:
    """A PIL image as PNG, or a uint8 T×H×W×3 array (video) as NPZ."""
    if isinstance(obj, np.ndarray):
        with open(path, "wb") as f:
            np.savez_compressed(f, frames=obj.astype(np.uint8))
    else:
        obj.save(path, format="PNG")


class TrainScorerOp(Op):
    """Trains a TrainableScorer (GAN-RM) on positives vs negatives (+ unlabeled, for bootstrap)."""

    name = "train_scorer"
    numerics_sensitive = True
    trains = True

    def compute(self, node, ctx, inputs):
        scorer = type(node.obj)(node.obj.params)
        t0 = time.time()
        metrics = scorer.fit(inputs["positives"], inputs["negatives"], ctx, unlabeled=inputs.get("unlabeled"))
        scorer.training_metrics = {**(metrics or {}), "train_seconds": round(time.time() - t0, 3)}
        ctx.count("models trained")
        return scorer

    def save(self, value, directory, node):
        value.save(directory)
        return {"training": getattr(value, "training_metrics", {})}

    def load(self, directory, node, ctx):
        scorer = type(node.obj)(node.obj.params)
        scorer.load_state(directory)
        return scorer

    def pending(self, node, store, peek):
        return {"models to train": 1}

    def cost(self, node, value):
        from ganrm_bench.harness.cost import training_steps

        return {"train_steps": training_steps(getattr(value, "training_metrics", None))}


class ScoresOp(Op):
    """Per-sample scores of an item set by a scorer (higher is better). Under several processes
    all of them score the set together, each its share of the items (`Context.per_item_arrays`)."""

    name = "scores"
    numerics_sensitive = True

    def exclusive(self, node):
        from ganrm_bench.harness.distributed import rank_and_world

        return rank_and_world()[1] == 1

    def compute(self, node, ctx, inputs):
        scorer, items = inputs["scorer"], inputs["items"]
        scores = ctx.per_item_arrays(
            "scores",
            {"scorer": node.inputs["scorer"].key},
            list(items),
            lambda batch: np.asarray(
                scorer.score(batch if getattr(scorer, "accepts_items", False) else [it.load() for it in batch], [it.prompt for it in batch], ctx),
                dtype=np.float64,
            ),
            batch_size=ctx.batch_size or 32,
            description=f"score {node.label}",
            **scorer_loading(scorer, ctx),
        )
        return scores.reshape(len(items))

    def save(self, value, directory, node):
        np.save(directory / "scores.npy", value, allow_pickle=False)
        return {"count": int(value.shape[0])}

    def load(self, directory, node, ctx):
        return np.load(directory / "scores.npy", allow_pickle=False)

    def pending(self, node, store, peek):
        return {"item sets to score": 1}

    def cost(self, node, value):
        return {"scorer_calls": int(np.asarray(value).shape[0])}


class SelectOp(ItemSetOp):
    """Per prompt, one of the pool's first k samples by score: the argmax, the argmin, or the one
    at a given rank (1 = best; ties keep pool order)."""

    name = "select"

    def compute(self, node, ctx, inputs):
        pool: ItemSet = inputs["pool"]
        scores = np.asarray(inputs["scores"])
        k, rule = node.params.get("k"), node.params["rule"]
        groups: dict[str, list[tuple[float, int, Item]]] = {}
        for i, (item, s) in enumerate(zip(pool, scores)):
            if k is not None and item.k is not None and item.k >= k:
                continue
            groups.setdefault(item.prompt_id or item.key, []).append((float(s), i, item))
        chosen = []
        for members in groups.values():  # (score, pool position, item); ties keep pool order
            if rule == "argmin":
                chosen.append(min(members, key=lambda t: (t[0], t[1]))[2])
                continue
            rank = 1 if rule == "argmax" else node.params["rank"]
            if rank > len(members):
                raise UserError(f"select rank {rank}: a prompt has only {len(members)} samples")
            chosen.append(sorted(members, key=lambda t: (-t[0], t[1]))[rank - 1][2])
        return ItemSet(node.key, tuple(chosen))

    def pending(self, node, store, peek):
        return {}


class MetricOp(Op):
    """A metric of a sample set. Under several processes, metrics whose per-item work goes through
    `Context.per_item_arrays` (`shards_items = True`) are computed by all processes together."""

    name = "metric"
    numerics_sensitive = True

    def exclusive(self, node):
        from ganrm_bench.harness.distributed import rank_and_world

        return rank_and_world()[1] == 1 or not getattr(node.obj, "shards_items", False)

    def compute(self, node, ctx, inputs):
        result = node.obj.compute(inputs["samples"], ctx, reference=inputs.get("reference"))
        if not result.convention:
            result.convention = node.params["convention"]
        return result

    def save(self, value: MetricResult, directory, node):
        data = {k: v for k, v in value.__dict__.items() if k != "per_sample"}
        _write_json(directory / "result.json", data)
        if value.per_sample is not None:
            np.save(directory / "per_sample.npy", np.asarray(value.per_sample, dtype=np.float64), allow_pickle=False)
        return {"value": value.value}

    def load(self, directory, node, ctx):
        data = json.loads((directory / "result.json").read_text())
        per = directory / "per_sample.npy"
        return MetricResult(**data, per_sample=np.load(per, allow_pickle=False) if per.exists() else None)

    def pending(self, node, store, peek):
        return {"metric values to compute": 1}


def plugin_fingerprint(obj: Any, ctx: "Context") -> dict[str, Any]:
    """`obj.fingerprint(ctx)` for plugins that digest weights files through the store, else `obj.fingerprint()`."""
    import inspect

    fp = obj.fingerprint
    return fp(ctx) if len(inspect.signature(fp).parameters) >= 1 else fp()


PLUGIN, PROMPTS, IMAGES, POOL, UNION = PluginOp(), PromptsOp(), ImagesOp(), PoolOp(), UnionOp()
TRAIN_SCORER, SCORES, SELECT, METRIC = TrainScorerOp(), ScoresOp(), SelectOp(), MetricOp()


# ---------------------------------------------------------------------------------------------
# The builder: from spec entries to nodes, shared by key.


class Builder:
    """Turns a spec (for one run seed) into graph nodes; equal keys give the same node object."""

    def __init__(self, spec: "Spec", ctx: "Context", seed: int, *, planning: bool = False):
        from ganrm_bench.harness.builtins import register_builtins

        register_builtins()
        self.spec, self.ctx, self.seed, self.planning = spec, ctx, seed, planning
        self._nodes: dict[str, Node] = {}

    def node(self, op: Op, params: dict[str, Any], inputs: dict[str, Node] | None = None, *, label: str = "", obj: Any = None) -> Node:
        """Add (or find) a node. Methods use this for their own ops (e.g. fine-tuning)."""
        n = Node(op, params, {k: v for k, v in (inputs or {}).items() if v is not None}, label, obj, self.numerics(op))
        return self._nodes.setdefault(n.key, n)

    def numerics(self, op: Op) -> str | None:
        """The numerics class of this run that `op`'s bytes depend on (None: they do not)."""
        if not op.numerics_sensitive:
            return None
        from ganrm_bench.harness.distributed import rank_and_world

        return numerics_class(self.ctx.device, rank_and_world()[1] if op.data_parallel else 1)

    def plugin(self, registry_kind: str, name: str, params: dict[str, Any]) -> Any:
        from ganrm_bench.harness.registry import REGISTRIES

        return REGISTRIES[registry_kind].get(name)(params)

    def _fingerprint(self, obj: Any) -> dict[str, Any]:
        """The plugin's identity. When only planning, weights not fetched yet get a provisional
        identity (hub id + revision) so `plan` works before `fetch-assets`; a run never does."""
        from ganrm_bench.harness.errors import MissingWeightsError

        try:
            return plugin_fingerprint(obj, self.ctx)
        except MissingWeightsError:
            if not self.planning:
                raise
            from ganrm_bench.harness.assets import unresolved_fingerprint

            return unresolved_fingerprint(obj)

    # -- spec entries --------------------------------------------------------------------------
    def entry(self, section: str, name: str) -> Any:
        """The spec entry `section.name`, or a clear error naming the close matches."""
        entries = getattr(self.spec, section)
        if name not in entries:

            raise UserError(f"{section}: no entry named {name!r}{did_you_mean(name, list(entries))}")
        return entries[name]

    def _entry_node(self, section: str, kind: str, field: str, op: Op, name: str | Node) -> Node:
        if isinstance(name, Node):
            return name
        e = self.entry(section, name)
        obj = self.plugin(kind, getattr(e, field), e.params)
        return self.node(op, {field: self._fingerprint(obj)}, label=name, obj=obj)

    def generator(self, name: str | Node) -> Node:
        return self._entry_node("generators", "generator", "generator", PLUGIN, name)

    def prompts(self, name: str | Node) -> Node:
        limit = getattr(self.ctx, "limit_prompts", None)
        if limit is None or isinstance(name, Node):
            return self._entry_node("prompts", "prompts", "source", PROMPTS, name)
        from ganrm_bench.harness.limits import limited_prompts

        e = self.entry("prompts", name)
        obj = limited_prompts(self.plugin("prompts", e.source, e.params), e.source, name, limit)
        return self.node(PROMPTS, {"source": self._fingerprint(obj)}, label=name, obj=obj)

    def images(self, name: str | Node) -> Node:
        return self._entry_node("images", "images", "source", IMAGES, name)

    def pool(self, generator: str | Node, prompts: str | Node, k: int) -> Node:
        g, p = self.generator(generator), self.prompts(prompts)
        return self.node(POOL, {"k": int(k), "seed": self.seed}, {"generator": g, "prompts": p}, label=f"{g.label}×{p.label}×{k}")

    def union(self, parts: list[Node], label: str = "") -> Node:
        """One item set holding the items of `parts` in order (e.g. a row's samples over seeds)."""
        return self.node(UNION, {}, {f"s{i:03d}": p for i, p in enumerate(parts)}, label=label or "+".join(p.label for p in parts))

    def scorer(self, name: str | Node) -> Node:
        """A scorer entry: pretrained scorers as-is; trainable ones (GAN-RM) trained as the entry says."""
        if isinstance(name, Node):
            return name
        e = self.entry("scorers", name)
        if e.train is None:
            obj = self.plugin("scorer", e.scorer, e.params)
            return self.node(PLUGIN, {"scorer": self._fingerprint(obj)}, label=name, obj=obj)
        t = e.train
        return self.trained_scorer(
            name,
            positives=self.images(t.positives),
            negatives=self.pool(t.negatives.generator, t.negatives.prompts, t.negatives.k),
            unlabeled=self.pool(t.unlabeled.generator, t.unlabeled.prompts, t.unlabeled.k) if t.unlabeled else None,
        )

    def trained_scorer(self, name: str, *, positives: Node, negatives: Node, unlabeled: Node | None = None, label: str = "") -> Node:
        """Train the scorer entry `name`'s plugin on other data (multi-round retrains each round)."""
        e = self.entry("scorers", name)
        obj = self.plugin("scorer", e.scorer, e.params)
        return self.node(
            TRAIN_SCORER,
            {"scorer": self._fingerprint(obj), "seed": self.seed},
            {"positives": positives, "negatives": negatives, "unlabeled": unlabeled},
            label=label or name,
            obj=obj,
        )

    def scores(self, scorer: str | Node, items: Node) -> Node:
        s = self.scorer(scorer)
        return self.node(SCORES, {}, {"scorer": s, "items": items}, label=f"{s.label}({items.label})")

    def select(self, pool: Node, scores: Node, rule: str = "argmax", k: int | None = None, rank: int | None = None) -> Node:
        """One sample per prompt: `argmax`, `argmin`, or `rank` (1 = best) among the first k."""
        if rule not in ("argmax", "argmin", "rank"):
            raise ValueError(f"select rule must be argmax, argmin or rank, got {rule!r}")
        params = {"rule": rule, **({"k": int(k)} if k is not None else {}), **({"rank": int(rank)} if rule == "rank" else {})}
        what = f"rank {rank}" if rule == "rank" else rule
        return self.node(SELECT, params, {"pool": pool, "scores": scores}, label=f"{what}[{scores.label}]")

    def method(self, name: str) -> Node:
        e = self.entry("methods", name)
        obj = self.plugin("method", e.method, e.params)
        out = obj.build(self, e)
        out.label = out.label or name
        return out

    def metric(self, name: str, samples: Node) -> Node:
        e = self.entry("metrics", name)
        obj = self.plugin("metric", e.metric, e.params)
        ref = self.images(e.reference) if e.reference else None
        return self.node(
            METRIC,
            {"metric": self._fingerprint(obj), "convention": obj.convention()},
            {"samples": samples, "reference": ref},
            label=f"{name}({samples.label})",
            obj=obj,
        )
