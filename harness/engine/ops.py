"""The built-in ops: plugin instances, prompt and image sets, sample pools (one file per item, resumable
and sharded by item), trained scorers, per-item scores, selections, unions and metric values."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ganrm_bench.harness.engine.cost import generator_nfe, training_steps
from ganrm_bench.harness.engine.nodes import Node, Op, _write_json, items_from_json
from ganrm_bench.harness.errors import UserError
from ganrm_bench.harness.plugins.base import Item, ItemSet, MetricResult, Prompt, SampleRequest
from ganrm_bench.harness.runtime.distributed import rank_and_world, wait_for_files
from ganrm_bench.harness.runtime.numerics import key_part, tf32_where_safe
from ganrm_bench.harness.runtime.oom import out_of_memory_hint
from ganrm_bench.harness.runtime.prefetch import scorer_loading
from ganrm_bench.harness.runtime.seeds import derive_seed
from ganrm_bench.harness.store.artifacts import item_ref
from ganrm_bench.harness.store.digests import file_stat_signature
from ganrm_bench.harness.store.keys import hash_key

if TYPE_CHECKING:  # pragma: no cover
    pass


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
        return rank_and_world()[1] == 1  # items are atomic files: shards need no lock

    def item_keys(self, node: Node, requests: list[SampleRequest]) -> list[str]:
        gen_key, numerics = node.inputs["generator"].key, key_part(node.numerics)
        return [hash_key({"generator": gen_key, "prompt": r.prompt.id, "text": r.prompt.text, "k": r.k, "seed": r.seed, **numerics})
                for r in requests]

    def compute(self, node, ctx, inputs):
        generator = inputs["generator"]
        requests = pool_requests(inputs["prompts"], node.params["k"], node.params["seed"])
        keys = self.item_keys(node, requests)
        ext = "npz" if getattr(generator, "modality", "image") == "video" else "png"
        paths = [ctx.store.item_path(k, ext) for k in keys]
        rank, world = rank_and_world()
        absent = ctx.store.missing_items(keys, ext)
        missing = [i for i, k in enumerate(keys) if k in absent]
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
        missing = store.missing_items(self.item_keys(node, requests), ext)
        return {"images to generate": missing} if missing else {}  # a set: pools sharing items count once

    def cost(self, node, value):
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
        with ctx.seeded(node.params["seed"]):  # the fit's seed is the one in the key
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
        return {"train_steps": training_steps(getattr(value, "training_metrics", None))}


class ScoresOp(Op):
    """Per-sample scores of an item set by a scorer (higher is better). Under several processes
    all of them score the set together, each its share of the items (`Context.per_item_arrays`)."""

    name = "scores"
    numerics_sensitive = True

    def exclusive(self, node):
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
        return rank_and_world()[1] == 1 or not getattr(node.obj, "shards_items", False)

    def compute(self, node, ctx, inputs):
        with ctx.seeded(node.params.get("seed", ctx.seed)):  # bootstrap draws from the seed in the key
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


PLUGIN, PROMPTS, IMAGES, POOL, UNION = PluginOp(), PromptsOp(), ImagesOp(), PoolOp(), UnionOp()


TRAIN_SCORER, SCORES, SELECT, METRIC = TrainScorerOp(), ScoresOp(), SelectOp(), MetricOp()
