"""Pair source `labelled_pairs`: pairs of a generator's samples labelled by a scorer that stands in
for people (the mini world's annotator), made on the graph: the pool of K samples per prompt, the
labeller's scores on it (cached per item like any scores), then every two samples of a prompt as a
pair, preferred by the labeller unless their scores differ by at most `tie_margin` (a tie).

Held out by construction when its prompt set is one no scorer was trained on: its prompt ids seed
its own samples, so the pairs share no image with any other pool."""

from __future__ import annotations

from collections import defaultdict
from typing import Annotated, Any

import numpy as np
from pydantic import Field

from ganrm_bench.harness.engine.estimate import item_count
from ganrm_bench.harness.engine.nodes import Node, Op
from ganrm_bench.harness.errors import UserError
from ganrm_bench.harness.plugins.base import EntryRef, ItemSet, PluginParams
from ganrm_bench.harness.plugins.preference import PREFERRED_A, PREFERRED_B, TIE, PairSource, PreferencePairs


class LabelledPairsParams(PluginParams):
    generator: Annotated[str, EntryRef("generators")]
    prompts: Annotated[str, EntryRef("prompts")]
    labeller: Annotated[str, EntryRef("scorers")] = Field(description="the scorer whose preferences stand in for people's")
    k: int = Field(2, ge=2, description="samples per prompt; every two of them are a pair")
    tie_margin: float = Field(0.0, ge=0.0, description="the labeller calls a tie when its two scores differ by at most this")


class LabelledPairs(PairSource):
    """Pairs of a generator's samples for the same prompt, labelled by a scorer standing in for people."""

    version = "1"
    Params = LabelledPairsParams
    params: LabelledPairsParams

    def build(self, b, name):
        p = self.params
        pool = b.pool(p.generator, p.prompts, k=p.k)
        return b.node(LABEL_PAIRS, {"k": p.k, "tie_margin": p.tie_margin}, {"pool": pool, "scores": b.scores(p.labeller, pool)},
                      label=name)


class LabelPairsOp(Op):
    """Every two samples of a prompt (pool order) as a pair, labelled by the labeller's scores."""

    name = "label_pairs"
    stored = False  # cheap to redo from its stored inputs
    judges_scores = True  # the labeller's scores label the pairs; they chose no samples (harness.diagnostics.monitor)

    def compute(self, node: Node, ctx: Any, inputs: dict[str, Any]) -> PreferencePairs:
        return label_pairs(node.key, inputs["pool"], np.asarray(inputs["scores"], dtype=np.float64), node.params["tie_margin"])

    def planned_items(self, node: Node, peek: Any) -> int | None:
        return item_count(node.inputs["pool"], peek)


def label_pairs(key: str, pool: ItemSet, scores: np.ndarray, tie_margin: float) -> PreferencePairs:
    if len(scores) != len(pool):
        raise UserError(f"label_pairs: {len(scores)} labeller scores for {len(pool)} samples")
    by_prompt: dict[str, list[int]] = defaultdict(list)
    for i, it in enumerate(pool.items):
        by_prompt[it.prompt_id or it.key].append(i)
    a, b, pref, ids = [], [], [], []
    for prompt_id, members in by_prompt.items():
        for x in range(len(members)):
            for y in range(x + 1, len(members)):
                i, j = members[x], members[y]
                d = scores[i] - scores[j]
                a.append(i)
                b.append(j)
                pref.append(TIE if abs(d) <= tie_margin else (PREFERRED_A if d > 0 else PREFERRED_B))
                ids.append(f"{prompt_id}:{pool.items[i].k}-{pool.items[j].k}")
    if not a:
        raise UserError("label_pairs: no prompt has two samples")
    return PreferencePairs(key, pool.items, tuple(a), tuple(b), tuple(pref), tuple(ids))


LABEL_PAIRS = LabelPairsOp()
