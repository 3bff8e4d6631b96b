"""KL(tuned ‖ reference) of a fine-tuned diffusion generator as an artifact: the x axis of the
over-optimisation curves along training (Gao et al. 2022 plot proxy and gold against √KL).

The fine-tuning ops (SFT, DPO, their checkpoints, GRPO) answer `Op.divergence` with a node of this
op, so `harness.diagnostics.training_curves` finds an estimator on the graph without knowing any
method. The estimator is `methods.finetune.path_kl.finetune_path_kl`: one trajectory per prompt
drawn from the tuned model with the generator's sampler made stochastic (DDIM η = 1, or DDPM), both
networks' Gaussian step means at each state, Σ_t ‖μ_tuned − μ_ref‖²/(2σ_t²) over the noisy steps,
averaged over prompts with a bootstrap CI. Every point of a curve uses the same per-prompt seeds
(common random numbers), so the curve's shape is not noise in the trajectories.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ganrm_bench.harness.engine.nodes import Node, Op
from ganrm_bench.harness.errors import UserError
from ganrm_bench.harness.runtime import memory
from ganrm_bench.harness.runtime.numerics import fixed_threads
from ganrm_bench.harness.runtime.seeds import derive_seed
from ganrm_bench.methods.finetune.adapters import denoiser_for
from ganrm_bench.methods.finetune.online import cannot_rollout
from ganrm_bench.methods.finetune.path_kl import finetune_path_kl

ETA = 1.0  # DDIM's step noise for the KL's trajectories (DDPO's and Flow-GRPO's rollouts); DDPM ignores it
ESTIMATOR = "trajectory: Σ_t ‖μ_tuned − μ_ref‖²/(2σ_t²), DDIM η = 1 / DDPM, one trajectory per prompt"


class TrajectoryKLOp(Op):
    """The trajectory KL of the `tuned` generator against `reference` on `prompts` (a small JSON)."""

    name = "trajectory_kl"
    version = "1"
    numerics_sensitive = True

    def compute(self, node: Node, ctx, inputs: dict[str, Any]) -> dict[str, Any]:
        tuned, reference, prompts = inputs["tuned"], inputs["reference"], list(inputs["prompts"])
        why = cannot_rollout(reference)
        if why is not None:
            raise UserError(f"{node.label}: no trajectory KL for generator {getattr(reference, 'name', '?')!r}: {why}")
        memory.release_all()
        model = denoiser_for(reference, ctx)
        tuned_unet = denoiser_for(tuned, ctx).unet
        seeds = [derive_seed("trajectory-kl", node.params["seed"], p.id) for p in prompts]
        with fixed_threads(1):  # the bytes of a CPU estimate do not depend on the core count
            kl = finetune_path_kl(model, reference, tuned_unet, model.unet, [p.text for p in prompts], seeds,
                                  [p.id for p in prompts], eta=node.params["eta"], guidance=float(reference.rollout_guidance()),
                                  seed=node.params["seed"])
        del model, tuned_unet
        memory.free_accelerator_memory()
        return {"kl": float(kl.value), "ci_low": float(kl.ci_low), "ci_high": float(kl.ci_high), "prompts": kl.n_prompts,
                "steps": kl.steps, "eta": node.params["eta"], "estimator": ESTIMATOR}

    def save(self, value: dict[str, Any], directory: Path, node: Node) -> dict[str, Any]:
        (directory / "kl.json").write_text(json.dumps(value, indent=1, sort_keys=True))
        return {"kl": value}

    def load(self, directory: Path, node: Node, ctx) -> dict[str, Any]:
        return json.loads((directory / "kl.json").read_text())

    def pending(self, node, store, peek):
        return {"trajectory KL estimates": 1}


TRAJECTORY_KL = TrajectoryKLOp()


def trajectory_kl_node(weights: Node, tuned: Node, reference: Node, prompts: Node) -> Node:
    """The KL node of a tuned generator against the generator it was trained from, on `prompts`
    (in the numerics class of the training run that made `weights`)."""
    run = weights.op.training_run(weights)
    return Node(TRAJECTORY_KL, {"eta": ETA, "seed": 0}, {"tuned": tuned, "reference": reference, "prompts": prompts},
                label=f"KL({tuned.label} ‖ {reference.label})", numerics=run.numerics)


class EstimatesTrajectoryKL:
    """For the ops whose nodes hold a diffusion generator's fine-tuned weights: `Op.divergence`."""

    def divergence(self, node: Node, tuned: Node, reference: Node, prompts: Node) -> Node:
        return trajectory_kl_node(node, tuned, reference, prompts)
