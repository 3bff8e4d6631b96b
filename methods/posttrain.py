"""Rows that fine-tune the generator (image or video) on reward-model-selected samples, then sample from it:
`sft` (RAFT-style, on the best sample per prompt) and `dpo` (Diffusion-DPO on best vs worst)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from ganrm_bench.harness.plugins.base import EntryRef, Method
from ganrm_bench.methods.finetune.train import TrainConfig
from ganrm_bench.methods.ops import finetune_round, finetuned_generator_node, prompts_entry, require_finetunable, run_config


class PostTrainParams(TrainConfig):
    k: int = Field(10, ge=2, description="samples per training prompt, scored by the row's scorer")
    train_prompts: Annotated[str | None, EntryRef("prompts")] = Field(None, description="prompt set of the training pool (default: the row's prompts)")
    eval_k: int = Field(1, ge=1, description="samples per prompt of the fine-tuned generator (≥ 2 for LPIPS diversity)")


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
        tuned = finetuned_generator_node(b, gen, weights, label=f"{gen.label}+{cfg.objective}")
        return b.pool(tuned, entry.prompts, k=self.params.eval_k)


class SFT(_PostTrain):
    """SFT (RAFT-style): fine-tune on the scorer's best of K per prompt, then sample eval_k per prompt (one by default)."""

    Params = SFTParams


class DPO(_PostTrain):
    """Diffusion-DPO on the scorer's (best, worst) of K per prompt, then sample eval_k per prompt (one by default)."""

    Params = DPOParams
