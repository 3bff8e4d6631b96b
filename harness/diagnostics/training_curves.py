"""Over-optimisation along training: rows that sample from checkpoints of one training run (a
fine-tune's `eval_at` steps and its final step), with the untuned generator as step 0, read as one
curve whose x is the optimizer step (Gao et al. 2022 plot RL against √KL; no KL estimate is wired
for fine-tunes yet, so these lines carry kl_estimator "none" and the step is the axis).

Found on the artifact graph through the ops' `training_step` / `training_run` (harness.engine.nodes.Op),
whatever method built the rows: a row whose samples are a `pool` of a generator holding weights
along training is a point; a `pool` of the run's parent generator with the same prompts and k is
step 0. The proxy is the scorer that selected the run's training data.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from ganrm_bench.harness.diagnostics.curve_rows import add_point, finished
from ganrm_bench.harness.engine.nodes import Node

KL_NONE = "none (x = optimizer step)"


@dataclass(frozen=True)
class TrainingPoint:
    """A row read along training: its step, the training run (None: an untuned generator, step 0)
    and the source it samples (parent generator key, prompts key, samples per prompt)."""

    step: int
    run: Node | None
    source: tuple[str, str, int]


def training_point(samples: Node) -> TrainingPoint | None:
    """The along-training reading of a row's samples node, or None when it is no pool."""
    if samples.op.name != "pool" or "generator" not in samples.inputs or "prompts" not in samples.inputs:
        return None
    gen, prompts, k = samples.inputs["generator"], samples.inputs["prompts"].key, int(samples.params.get("k", 0))
    held = [w for w in gen.inputs.values() if w.op.training_step(w) is not None]
    if not held:
        return TrainingPoint(0, None, (gen.key, prompts, k))
    weights = held[0]
    run = weights.op.training_run(weights)
    parent = run.inputs.get("generator")
    if parent is None:
        return None
    return TrainingPoint(int(weights.op.training_step(weights)), run, (parent.key, prompts, k))


def training_proxy(run: Node) -> Node | None:
    """The scorer that selected a run's training data (a `select` over `scores` among its inputs),
    or the one it optimised online (a `scorer` input: online RL)."""
    for data in run.inputs.values():
        scores = data.inputs.get("scores") if data.op.name == "select" else None
        if scores is not None and scores.op.name == "scores":
            return scores.inputs["scorer"]
    return run.inputs.get("scorer")


@dataclass
class TrainingCurve:
    """Rows sampling one training run's checkpoints (and step 0): row -> step."""

    scorer: Node
    run: Node
    rows: dict[str, int] = field(default_factory=dict)
    axis = "step"

    @property
    def method(self) -> str:
        return f"{self.run.label} along training (proxy {self.scorer.label})"

    def point(self, step: int) -> dict[str, Any]:
        return {"step": step, "kl": math.nan, "sqrt_kl": math.nan, "kl_estimator": KL_NONE}


def training_curves(rows: dict[str, Node], min_points: int) -> list[TrainingCurve]:
    """The curves among one seed's rows (row -> samples node); rows of equal step keep the first."""
    read = {row: p for row, node in rows.items() if (p := training_point(node)) is not None}
    curves: dict[tuple, TrainingCurve] = {}
    for row, p in read.items():
        scorer = training_proxy(p.run) if p.run is not None else None
        if scorer is None:
            continue
        add_point(curves.setdefault((p.run.key, p.source), TrainingCurve(scorer, p.run)), row, p.step)
    for (_, source), curve in curves.items():
        for row, p in read.items():
            if p.run is None and p.source == source:
                add_point(curve, row, 0)
    return finished(curves.values(), min_points)
