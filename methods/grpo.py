"""The `grpo` row: online RL of the generator against the row's scorer (GRPO, or DDPO with
`advantage: batch`), then samples from the tuned generator. The training run is one op on the
artifact graph, keyed by the generator, the training prompts, the scorer and every setting; its
result has the fine-tunes' format, so `checkpoint: s` rows and the over-optimisation curves read
its `eval_at` weights like SFT's and DPO's."""

from __future__ import annotations

import shutil
from typing import Annotated

from pydantic import Field, ValidationInfo, field_validator

from ganrm_bench.harness.engine.estimate import EstimateRow
from ganrm_bench.harness.engine.nodes import Node, Op
from ganrm_bench.harness.errors import UserError
from ganrm_bench.harness.plugins.base import EntryRef, Method
from ganrm_bench.harness.runtime import memory
from ganrm_bench.harness.runtime.seeds import derive_seed
from ganrm_bench.methods.finetune.adapters import denoiser_for
from ganrm_bench.methods.finetune.online import GRPOConfig, cannot_rollout, check_sampler, grpo_finetune
from ganrm_bench.methods.ops import (
    FinetuneResult,
    StoresFinetuneResult,
    checkpoint_node,
    finetuned_generator_node,
    kept_step,
    prompts_entry,
    require_finetunable,
)
from ganrm_bench.methods.trajectory_kl import EstimatesTrajectoryKL


class GRPOOp(StoresFinetuneResult, EstimatesTrajectoryKL, Op):
    """Online RL of the input generator on the input prompts against the input scorer. Trains in
    `<store>/work/<key>/` (resumable from its last checkpoint); the artifact holds the weights,
    finetune.json, log.csv and the eval_at checkpoints. One process (not data-parallel)."""

    name = "grpo"
    version = "1"
    numerics_sensitive = True
    trains = True
    optimises_scorer = True  # its `scorer` input is the row's proxy (over-optimisation monitor)

    def compute(self, node: Node, ctx, inputs):
        cfg: GRPOConfig = node.obj if isinstance(node.obj, GRPOConfig) else GRPOConfig(**node.params["train"])
        generator, scorer = inputs["generator"], inputs["scorer"]
        work = ctx.store.root / "work" / node.key
        memory.release_all()
        model = denoiser_for(generator, ctx)
        texts = [p.text for p in inputs["prompts"]]

        def score(images, prompts):
            ctx.count("scorer calls (online RL)", len(images))
            return scorer.score(images, prompts, ctx)

        summary = grpo_finetune(model, generator, texts, score, cfg, work / "result", work,
                                meta={"node": node.key, "label": node.label})
        del model
        memory.free_accelerator_memory()
        shutil.rmtree(work / "checkpoints", ignore_errors=True)
        ctx.count("models fine-tuned")
        return FinetuneResult(work / "result", summary)

    def cost(self, node, value: FinetuneResult):
        s = value.summary
        return {"nfe": float(s.get("rollout_nfe", 0)) + float(s.get("train_nfe", 0)),
                "scorer_calls": float(s.get("scorer_calls", 0)), "train_steps": float(s.get("updates", 0))}

    def training_step(self, node):
        return int(node.params["train"]["steps"])

    def estimate_rows(self, node, costs) -> list[EstimateRow]:
        """plan --estimate: trajectories × (one generated sample + the trained steps' forwards and
        backwards, 3 forwards each, +1 with the KL reference) from the generator's measured unit cost;
        the scorer's calls are not timed here (its note says how many)."""
        cfg = GRPOConfig(**node.params["train"])
        gen = node.inputs["generator"].obj
        trajectories = cfg.steps * cfg.prompts_per_step * cfg.group_size
        nfe = getattr(gen, "nfe_per_sample", lambda: None)()
        cost = costs(gen) if gen is not None else None
        note = f"{trajectories} trajectories, {trajectories} scorer calls (not timed), {cfg.updates()} optimizer steps"
        if cost is None or cost.forward_seconds is None or nfe is None:
            return [EstimateRow("grpo", node.label, getattr(gen, "name", "?"), trajectories, "trajectory", None, None,
                                note=f"{note}; the generator gives no sample / forward time")]
        forwards = nfe * cfg.timestep_fraction * cfg.inner_epochs * (3 + (1 if cfg.kl_beta > 0 else 0))
        per = cost.seconds + forwards * cost.forward_seconds
        return [EstimateRow("grpo", node.label, getattr(gen, "name", "?"), trajectories, "trajectory", per, trajectories * per,
                            cost.peak_bytes, f"{note}; {forwards:g} training forwards per trajectory")]


GRPO_OP = GRPOOp()


class GRPOParams(GRPOConfig):
    train_prompts: Annotated[str | None, EntryRef("prompts")] = Field(None, description="prompt set sampled during "
                                                                      "training (default: the row's prompts)")
    eval_k: int = Field(1, ge=1, description="samples per prompt of the tuned generator")
    checkpoint: int | None = Field(None, description="sample from the run as it was after this iteration (one of "
                                   "eval_at, or steps): rows that differ only here share one training run")

    @field_validator("checkpoint")
    @classmethod
    def _a_kept_step(cls, value: int | None, info: ValidationInfo) -> int | None:
        return kept_step(value, info)


def grpo_config(b, params: GRPOParams) -> GRPOConfig:
    """The run's GRPOConfig (seed tied to the run seed, as the other fine-tunes')."""
    fields = {k: getattr(params, k) for k in GRPOConfig.model_fields}
    fields["seed"] = derive_seed(b.seed, "finetune", params.seed)  # as methods.ops.run_config
    return GRPOConfig(**fields)


class GRPO(Method):
    """Online RL (GRPO; DDPO with advantage: batch) of the generator against the row's scorer:
    prompts_per_step × group_size stochastic trajectories per iteration, PPO-clipped updates, then
    eval_k samples per prompt of the tuned generator (its own sampler)."""

    Params = GRPOParams
    version = "1"
    uses = ("generator", "prompts", "scorer")

    def build(self, b, entry):
        require_finetunable(b, entry, self.name)
        gen = b.generator(entry.generator)
        why = cannot_rollout(gen.obj)
        if why is not None:
            raise UserError(f"method 'grpo': generator {entry.generator!r} cannot sample trajectories: {why}",
                            hint="the mini world's mini_diffusion implements them")
        cfg = grpo_config(b, self.params)
        check_sampler(gen.obj, cfg)
        train_prompts = b.prompts(prompts_entry(b, entry, self.params.train_prompts))
        weights = b.node(GRPO_OP, {"train": cfg.identity()}, {"generator": gen, "prompts": train_prompts,
                                                             "scorer": b.scorer(entry.scorer)},
                         label=f"{entry.generator}:grpo", obj=cfg)
        label = f"{gen.label}+grpo"
        step = self.params.checkpoint
        if step is not None and step != cfg.steps:
            weights, label = checkpoint_node(b, weights, step), f"{label}@{step}"
        tuned = finetuned_generator_node(b, gen, weights, label=label)
        return b.pool(tuned, entry.prompts, k=self.params.eval_k)
