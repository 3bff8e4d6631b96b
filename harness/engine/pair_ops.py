"""Ops of preference pair sets: reading one from its source, and one scorer's judgement of it.

A judgement is the pair set plus the scorer's score for each of its images. The scores come from
an ordinary `scores` node over the pair set's items (`Builder.judged`), so they are cached per image,
resumable and shared by every process, like any sample's scores; the judgement itself only joins
them with the pairs, which is cheap, so it is not stored. A row whose samples are a judgement (the
`judge` method) is measured by pair metrics (pairwise accuracy)."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from ganrm_bench.harness.engine.estimate import item_count
from ganrm_bench.harness.engine.nodes import Node, Op
from ganrm_bench.harness.engine.plan import Assumed, absent_data
from ganrm_bench.harness.errors import UserError
from ganrm_bench.harness.plugins.preference import JudgedPairs, PreferencePairs


class PairsOp(Op):
    """A pair set read from its source. Not stored: the annotation file is re-read each run (its
    content digest is in the source's fingerprint, hence in every key downstream)."""

    name = "pairs"
    stored = False

    def compute(self, node: Node, ctx: Any, inputs: dict[str, Any]) -> PreferencePairs:
        pairs = node.obj.load(ctx)
        if not isinstance(pairs, PreferencePairs):
            raise TypeError(f"pair source {node.label!r} returned {type(pairs).__name__}, not PreferencePairs")
        return dataclasses.replace(pairs, key=node.key)

    def planned_items(self, node: Node, peek: Any) -> int | None:
        """Images to score, for `plan --estimate`: counted from the annotations when they are here
        and the source can count cheaply (`count_images()`), else the size the entry declares
        (`expected_images`), listed among the plan's assumed sizes when its data are not here."""
        missing = absent_data(node.obj)
        counter = getattr(node.obj, "count_images", None)
        if not missing and callable(counter):
            try:
                counted = counter()
            except Exception:  # noqa: BLE001 - unreadable: `validate --inputs` says why; plan with the declared size
                counted = None
            if counted is not None:
                return int(counted)
        declared = getattr(getattr(node.obj, "params", None), "expected_images", None)
        if declared is None:
            return None
        assumed = getattr(peek, "assumed", None)
        if missing and isinstance(assumed, dict):
            assumed[node.key] = Assumed(node.label, int(declared), "images", "expected_images", missing[0])
        return int(declared)


class JudgeOp(Op):
    """A pair set with one scorer's per-image scores (`JudgedPairs`)."""

    name = "judge"
    stored = False
    #: the scores it reads judge the scorer; they chose no samples (the over-optimisation monitor skips them)
    judges_scores = True

    def compute(self, node: Node, ctx: Any, inputs: dict[str, Any]) -> JudgedPairs:
        pairs: PreferencePairs = inputs["pairs"]
        scores = np.asarray(inputs["scores"], dtype=np.float64).reshape(-1)
        if len(scores) != len(pairs.items):
            raise UserError(f"{node.label}: {len(scores)} scores for {len(pairs.items)} images")
        bad = ~np.isfinite(scores)
        if bad.any():
            raise UserError(f"{node.label}: the scorer gave {int(bad.sum())} non-finite score(s), e.g. for {pairs.items[int(np.argmax(bad))].path}")
        return JudgedPairs(node.key, pairs.items, pairs.a, pairs.b, pairs.preference, pairs.pair_ids,
                           tuple(float(s) for s in scores), scorer=node.inputs["scores"].inputs["scorer"].label)

    def planned_items(self, node: Node, peek: Any) -> int | None:
        return item_count(node.inputs["pairs"], peek)


class JudgedUnionOp(Op):
    """A row's judgements over several seeds as one (the runner's pooled cells)."""

    name = "judged_union"
    stored = False
    judges_scores = True

    def compute(self, node: Node, ctx: Any, inputs: dict[str, Any]) -> JudgedPairs:
        return JudgedPairs.concat(node.key, [inputs[k] for k in sorted(inputs)])

    def planned_items(self, node: Node, peek: Any) -> int | None:
        counts = [item_count(n, peek) for n in node.inputs.values()]
        return None if None in counts else sum(counts)


PAIRS, JUDGE, JUDGED_UNION = PairsOp(), JudgeOp(), JudgedUnionOp()
JudgeOp.union_op = JUDGED_UNION  # how `Builder.union` pools judgements over seeds
