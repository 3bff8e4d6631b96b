"""Rows that fine-tune the generator (image or video) on reward-model-selected samples, then sample from it:
`sft` (RAFT-style, on the best sample per prompt) and `dpo` (Diffusion-DPO on best vs worst)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, ValidationInfo, field_validator

from ganrm_bench.harness.plugins.base import EntryRef, Method
from ganrm_bench.methods.finetune.train import TrainConfig
from ganrm_bench.methods.ops import (
    checkpoint_node,
    finetune_round,
    finetuned_generator_node,
    kept_step,
    prompts_entry,
    require_finetunable,
    run_config,
)


class PostTrainParams(TrainConfig):
    k: int = Field(10, ge=2, description="samples per training prompt, scored by the row's scorer")
    train_prompts: Annotated[str | None, EntryRef("prompts")] = Field(None, description="prompt set of the training pool (default: the row's prompts)")
    eval_k: int = Field(1, ge=1, description="samples per prompt of the fine-tuned generator (≥ 2 for LPIPS diversity)")
    checkpoint: int | None = Field(None, description="sample from the fine-tune as it was after this optimizer step (one of "
                                   "eval_at, or steps): rows that differ only here share one training run")

    @field_validator("checkpoint")
    @classmethod
    def _a_kept_step(cls, value: int | None, info: ValidationInfo) -> int | None:
        return kept_step(value, info)


class SFTParams(PostTrainParams):
    objective: Literal["sft"] = "sft"


class DPOParams(PostTrainParams):
    objective: Literal["dpo"] = "dpo"


class _PostTrain(Method):
    version = "1"
    uses = ("generator", "prompts", "scorer")

    def build(self, b, entry):
        require_finetunable(b, entry, self.name)
        gen = b.generator(entry.generator)
        cfg = run_config(b, self.params)
        train_prompts = prompts_entry(b, entry, self.params.train_prompts)
        weights, _, _ = finetune_round(b, gen, train_prompts, b.scorer(entry.scorer), cfg, self.params.k,
                                       label=f"{entry.generator}:{cfg.objective}")
        label = f"{gen.label}+{cfg.objective}"
        step = self.params.checkpoint
        if step is not None and step != cfg.steps:  # the last step is the fine-tune's own result
            weights, label = checkpoint_node(b, weights, step), f"{label}@{step}"
        tuned = finetuned_generator_node(b, gen, weights, label=label)
        return b.pool(tuned, entry.prompts, k=self.params.eval_k)


class SFT(_PostTrain):
    """SFT (RAFT-style): fine-tune on the scorer's best of K per prompt, then sample eval_k per prompt (one by default)."""

    Params = SFTParams


class DPO(_PostTrain):
    """Diffusion-DPO on the scorer's (best, worst) of K per prompt, then sample eval_k per prompt (one by default)."""

    Params = DPOParams
