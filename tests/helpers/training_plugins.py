"""A toy fine-tune for the over-optimisation curves along training: `toy_tune` rows sample a mon_gen
whose "checkpoint at step s" is brighter by 3·s (the brightness proxy rises with s) and whose
contrast (the held-out mon_contrast) follows a known shape of s: an inverted U peaking at s = 5, or
a monotone rise. Its ops declare `training_step` / `training_run` as the real fine-tune's do, and
with `kl: shift` `divergence` as well: a toy KL, the Gaussian shift's (Δbrightness / 10)² / 2, with
`kl: fail` one that raises."""

from __future__ import annotations

from typing import Literal

from ganrm_bench.harness.engine.nodes import Node, Op
from ganrm_bench.harness.plugins.base import Method, PluginParams
from ganrm_bench.harness.plugins.registry import METHODS
from tests.helpers.monitor_plugins import MonGen

SHAPES = {"inverted_u": lambda s: 1 + 0.02 * s * (10 - s), "monotone": lambda s: 1 + 0.05 * s}  # × the base contrast


class ToyKLOp(Op):
    """KL of two unit-variance Gaussians whose means are the generators' brightness / 10."""

    name = "toy_kl"
    stored = False

    def compute(self, node, ctx, inputs):
        if node.params["kind"] == "fail":
            raise RuntimeError("toy KL refuses")
        kl = ((inputs["tuned"].params.brightness - inputs["reference"].params.brightness) / 10) ** 2 / 2
        return {"kl": kl, "ci_low": kl * 0.9, "ci_high": kl * 1.1, "estimator": "toy: Gaussian shift"}

    def pending(self, node, store, peek):
        return {}


KL = ToyKLOp()


class _ToyDivergence:
    def divergence(self, node, tuned, reference, prompts):
        kind = self.training_run(node).params.get("kl")
        return Node(KL, {"kind": kind}, {"tuned": tuned, "reference": reference, "prompts": prompts}) if kind else None


class ToyTuneOp(_ToyDivergence, Op):
    name = "toy_tune"
    stored = False
    trains = True

    def compute(self, node, ctx, inputs):
        return dict(node.params)

    def pending(self, node, store, peek):
        return {}

    def training_step(self, node):
        return int(node.params["steps"])


class ToyCheckpointOp(_ToyDivergence, Op):
    name = "toy_tune_checkpoint"
    stored = False

    def compute(self, node, ctx, inputs):
        return {**inputs["weights"], "steps": node.params["step"]}

    def pending(self, node, store, peek):
        return {}

    def training_step(self, node):
        return int(node.params["step"])

    def training_run(self, node):
        return node.inputs["weights"]


class ToyTunedGeneratorOp(Op):
    name = "toy_tuned_generator"
    stored = False

    def compute(self, node, ctx, inputs):
        base, w = inputs["generator"].params, inputs["weights"]
        return MonGen({"brightness": base.brightness + 3 * w["steps"], "contrast": base.contrast * SHAPES[w["shape"]](w["steps"])})

    def pending(self, node, store, peek):
        return {}


TUNE, CHECKPOINT, TUNED = ToyTuneOp(), ToyCheckpointOp(), ToyTunedGeneratorOp()


@METHODS.register("toy_tune")
class ToyTune(Method):
    """Trains on the scorer's best of k per prompt; samples the checkpoint at `checkpoint` (default: the last step)."""

    uses = ("generator", "prompts", "scorer")

    class Params(PluginParams):
        steps: int = 10
        checkpoint: int | None = None
        shape: Literal["inverted_u", "monotone"] = "inverted_u"
        k: int = 2
        kl: Literal["shift", "fail"] | None = None

    def build(self, b, entry):
        gen = b.generator(entry.generator)
        pool = b.pool(gen, entry.prompts, k=self.params.k)
        kl = {"kl": self.params.kl} if self.params.kl else {}
        weights = b.node(TUNE, {"steps": self.params.steps, "shape": self.params.shape, **kl},
                         {"generator": gen, "selected": b.select(pool, b.scores(entry.scorer, pool), "argmax")}, label="toy-tune")
        step = self.params.checkpoint
        if step is not None and step != self.params.steps:
            weights = b.node(CHECKPOINT, {"step": step}, {"weights": weights}, label=f"toy-tune@{step}")
        tuned = b.node(TUNED, {}, {"generator": gen, "weights": weights}, label=f"{gen.label}+tune", obj=gen.obj)
        return b.pool(tuned, entry.prompts, k=1)
