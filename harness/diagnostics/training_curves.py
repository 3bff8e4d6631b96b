"""Over-optimisation along training: rows that sample from checkpoints of one training run (a
fine-tune's `eval_at` steps and its final step), with the untuned generator as step 0, read as one
curve whose x is the optimizer step. Gao et al. 2022 plot RL against √KL: where the op holding the
weights has an estimator (`Op.divergence`: the fine-tunes' trajectory KL, methods.trajectory_kl),
each point also carries KL(tuned ‖ untuned) [CI], computed in the monitor pass and cached in the
store like any artifact, and step 0 is KL 0; otherwise kl_estimator says "none".

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
    """A row read along training: its step, the training run (None: an untuned generator, step 0),
    the source it samples (parent generator key, prompts key, samples per prompt) and the node
    estimating the KL of its generator against the parent (None: no estimator)."""

    step: int
    run: Node | None
    source: tuple[str, str, int]
    divergence: Node | None = None


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
    kl = weights.op.divergence(weights, gen, parent, samples.inputs["prompts"])
    return TrainingPoint(int(weights.op.training_step(weights)), run, (parent.key, prompts, k), kl)


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
    divergences: dict[str, Node] = field(default_factory=dict)  # row -> its KL node (rows past step 0)
    axis = "step"

    @property
    def method(self) -> str:
        return f"{self.run.label} along training (proxy {self.scorer.label})"

    def point(self, step: int, ev: Any = None, row: str | None = None) -> dict[str, Any]:
        """The row's x: its step, and its KL [CI] when every tuned row of the curve has an estimator."""
        none = {"step": step, "kl": math.nan, "sqrt_kl": math.nan, "kl_ci_low": math.nan, "kl_ci_high": math.nan,
                "kl_estimator": KL_NONE}
        tuned = [r for r, s in self.rows.items() if s > 0]
        if ev is None or not tuned or any(r not in self.divergences for r in tuned):
            return none
        try:
            v = ev.value(self.divergences[row if step > 0 else tuned[0]])
        except Exception as exc:  # the curve stays, on the step axis, and says why it has no KL
            return {**none, "kl_estimator": f"{KL_NONE}; the estimate failed: {type(exc).__name__}: {exc}"}
        if step == 0:  # the untuned generator against itself
            return {**none, "kl": 0.0, "sqrt_kl": 0.0, "kl_ci_low": 0.0, "kl_ci_high": 0.0, "kl_estimator": v["estimator"]}
        return {**none, "kl": v["kl"], "sqrt_kl": math.sqrt(max(v["kl"], 0.0)), "kl_ci_low": v["ci_low"],
                "kl_ci_high": v["ci_high"], "kl_estimator": v["estimator"]}


def training_curves(rows: dict[str, Node], min_points: int) -> list[TrainingCurve]:
    """The curves among one seed's rows (row -> samples node); rows of equal step keep the first."""
    read = {row: p for row, node in rows.items() if (p := training_point(node)) is not None}
    curves: dict[tuple, TrainingCurve] = {}
    for row, p in read.items():
        scorer = training_proxy(p.run) if p.run is not None else None
        if scorer is None:
            continue
        curve = curves.setdefault((p.run.key, p.source), TrainingCurve(scorer, p.run))
        add_point(curve, row, p.step)
        if p.divergence is not None and curve.rows.get(row) == p.step:
            curve.divergences[row] = p.divergence
    for (_, source), curve in curves.items():
        for row, p in read.items():
            if p.run is None and p.source == source:
                add_point(curve, row, 0)
    return finished(curves.values(), min_points)
