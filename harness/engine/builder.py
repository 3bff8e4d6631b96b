"""The artifact graph: nodes are computations keyed by everything that produced them.

A node's key hashes its op (name + version), its params (plugin fingerprints included, so weights
digests are in) and the keys of its inputs — so a key names one artifact forever, whichever run,
process count or batch size made it. Methods build their rows' graphs with a `Builder`:

    pool   = b.pool(entry.generator, entry.prompts, k=10)     # K samples per prompt, per-item cached
    scores = b.scores(b.scorer(entry.scorer), pool)            # per-item cached scores
    return b.select(pool, scores, "argmax")                   # one sample per prompt

Ops that a method needs beyond these (fine-tuning) subclass `Op` and are added with `b.node(...)`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ganrm_bench.harness.engine.nodes import Node, Op
from ganrm_bench.harness.engine.ops import IMAGES, METRIC, PLUGIN, POOL, PROMPTS, SCORES, SELECT, TRAIN_SCORER, UNION
from ganrm_bench.harness.engine.pair_ops import JUDGE, PAIRS
from ganrm_bench.harness.errors import MissingWeightsError, UserError, did_you_mean
from ganrm_bench.harness.plugins.builtins import register_builtins
from ganrm_bench.harness.plugins.fingerprint import plugin_fingerprint
from ganrm_bench.harness.plugins.registry import REGISTRIES
from ganrm_bench.harness.runtime.distributed import rank_and_world
from ganrm_bench.harness.runtime.limits import limited_prompts
from ganrm_bench.harness.runtime.numerics import numerics_class
from ganrm_bench.harness.store.assets import unresolved_fingerprint

if TYPE_CHECKING:  # pragma: no cover
    from ganrm_bench.harness.runtime.context import Context
    from ganrm_bench.harness.spec.schema import Spec


class Builder:
    """Turns a spec (for one run seed) into graph nodes; equal keys give the same node object."""

    def __init__(self, spec: "Spec", ctx: "Context", seed: int, *, planning: bool = False):
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

        return numerics_class(self.ctx.device, rank_and_world()[1] if op.data_parallel else 1)

    def plugin(self, registry_kind: str, name: str, params: dict[str, Any]) -> Any:
        return REGISTRIES[registry_kind].get(name)(params)

    def _fingerprint(self, obj: Any) -> dict[str, Any]:
        """The plugin's identity. When only planning, weights not fetched yet get a provisional
        identity (hub id + revision) so `plan` works before `fetch-assets`; a run never does."""
        try:
            return plugin_fingerprint(obj, self.ctx)
        except MissingWeightsError:
            if not self.planning:
                raise

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

        e = self.entry("prompts", name)
        obj = limited_prompts(self.plugin("prompts", e.source, e.params), e.source, name, limit)
        return self.node(PROMPTS, {"source": self._fingerprint(obj)}, label=name, obj=obj)

    def images(self, name: str | Node) -> Node:
        return self._entry_node("images", "images", "source", IMAGES, name)

    def pool(self, generator: str | Node, prompts: str | Node, k: int) -> Node:
        g, p = self.generator(generator), self.prompts(prompts)
        return self.node(POOL, {"k": int(k), "seed": self.seed}, {"generator": g, "prompts": p}, label=f"{g.label}×{p.label}×{k}")

    def union(self, parts: list[Node], label: str = "") -> Node:
        """One item set holding the items of `parts` in order (e.g. a row's samples over seeds).
        Parts of one op that says how its values pool (`union_op`: judged pair sets) use that op."""
        op = getattr(parts[0].op, "union_op", None) if parts and all(p.op is parts[0].op for p in parts) else None
        return self.node(op or UNION, {}, {f"s{i:03d}": p for i, p in enumerate(parts)}, label=label or "+".join(p.label for p in parts))

    def pairs(self, name: str | Node) -> Node:
        """A pair set entry: read by its source, or made on the graph by it (`PairSource.build`)."""
        if isinstance(name, Node):
            return name
        e = self.entry("pairs", name)
        obj = self.plugin("pairs", e.source, e.params)
        built = obj.build(self, name)
        if built is not None:
            return built
        return self.node(PAIRS, {"source": self._fingerprint(obj)}, label=name, obj=obj)

    def judged(self, scorer: str | Node, pairs: str | Node) -> Node:
        """A scorer's judgement of a pair set: the pairs with its per-image scores (a `scores` node,
        cached per image), for pair metrics (pairwise accuracy)."""
        s, p = self.scorer(scorer), self.pairs(pairs)
        return self.node(JUDGE, {}, {"pairs": p, "scores": self.scores(s, p)}, label=f"{s.label} on {p.label}")

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
            {"metric": self._fingerprint(obj), "convention": obj.convention(), "seed": self.seed},  # its CI's bootstrap seed
            {"samples": samples, "reference": ref},
            label=f"{name}({samples.label})",
            obj=obj,
        )
