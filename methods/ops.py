"""Graph ops of the post-training methods: fine-tuning, the fine-tuned generator, per-round reward
statistics, and a pass-through that makes a row depend on records it must compute.

Keys chain: a fine-tuned generator's node key hashes the fine-tuning node's key, which hashes the
parent generator's key, the selected data's keys and the training config — so round r's generator
and RM are keyed by everything of rounds 1..r-1, and reruns find them all in the store.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ganrm_bench.harness.engine.builder import Builder
from ganrm_bench.harness.engine.cost import training_steps
from ganrm_bench.harness.engine.nodes import Node, Op
from ganrm_bench.harness.errors import UserError
from ganrm_bench.harness.plugins.base import ItemSet
from ganrm_bench.harness.runtime import memory
from ganrm_bench.harness.runtime.distributed import rank_and_world
from ganrm_bench.harness.runtime.numerics import tf32_where_safe
from ganrm_bench.harness.runtime.oom import out_of_memory_hint
from ganrm_bench.harness.runtime.seeds import derive_seed
from ganrm_bench.methods.finetune.adapters import cannot_finetune, denoiser_for, finetuned_generator
from ganrm_bench.methods.finetune.objectives import objective_for
from ganrm_bench.methods.finetune.run_files import CHECKPOINTS, checkpoint_dir
from ganrm_bench.methods.finetune.train import TrainConfig, finetune, make_accelerator
from ganrm_bench.methods.finetune.weights import WEIGHTS, read_meta
from ganrm_bench.methods.trajectory_kl import EstimatesTrajectoryKL


def _rank_and_world() -> tuple[int, int]:
    return rank_and_world()


@dataclass
class FinetuneResult:
    directory: Path  # weights.safetensors + finetune.json + log.csv
    summary: dict[str, Any]


def _link_or_copy(src: Path, dst: Path) -> None:
    """A hard link (the work folder is in the same store: 10 GB of weights are not copied), else a copy."""
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


class StoresFinetuneResult:
    """For training ops whose result is a fine-tune's directory (weights, finetune.json, log.csv and
    the eval_at checkpoints): how it is stored and loaded."""

    def save(self, value: FinetuneResult, directory: Path, node: Node) -> dict[str, Any]:
        for f in value.directory.iterdir():
            if f.is_file():
                _link_or_copy(f, directory / f.name)
            elif f.name == CHECKPOINTS:  # the eval_at weights, checkpoints/step-<s>/
                shutil.copytree(f, directory / f.name, copy_function=_link_or_copy)
        shutil.rmtree(value.directory.parent, ignore_errors=True)  # only one process saves; the others load the artifact
        return {"training": value.summary}

    def load(self, directory: Path, node: Node, ctx) -> FinetuneResult:
        return FinetuneResult(directory, read_meta(directory).get("summary", {}))

    def pending(self, node, store, peek):
        return {"models to fine-tune": 1}


def kept_step(value: int | None, info: Any) -> int | None:
    """A row's `checkpoint`: one of its run's eval_at steps, or its last step (a one-line error otherwise)."""
    steps, kept = info.data.get("steps"), info.data.get("eval_at") or ()
    if value is not None and value != steps and value not in kept:
        raise ValueError(f"checkpoint must be one of eval_at {list(kept)} or steps = {steps}")
    return value


class FinetuneOp(StoresFinetuneResult, EstimatesTrajectoryKL, Op):
    """Fine-tunes the input generator (SFT on `selected`, or DPO on `winners` vs `losers`).

    Trains in `<store>/work/<key>/` (checkpoints, log), so a killed run resumes from its last
    checkpoint; the artifact holds the weights (safetensors), finetune.json and log.csv.

    Under several processes (`accelerate launch`, torchrun) every process computes this node
    together (data-parallel training through accelerate), so it takes no lock then."""

    name = "finetune"
    version = "2"  # 2: on the CPU, one torch thread (weights independent of the core count)
    numerics_sensitive = True  # CPU and CUDA kernels train different weights
    data_parallel = True  # DDP averages gradients across processes: P processes ≈ 1, but not to the byte
    trains = True

    def exclusive(self, node):
        return rank_and_world()[1] == 1

    def compute(self, node: Node, ctx, inputs):
        cfg: TrainConfig = node.obj if isinstance(node.obj, TrainConfig) else TrainConfig(**node.params["train"])
        data, dropped = objective_for(cfg.objective).examples(inputs)
        if not data:
            raise UserError(f"{node.label}: no training examples ({dropped} prompts without a preference)",
                            hint="use k ≥ 2 samples per prompt, and a scorer that separates them")
        work = ctx.store.root / "work" / node.key
        out = work / "result"
        memory.release_all()  # sampling pipelines and metric models leave the device: training needs it whole
        accelerator = make_accelerator(cfg)  # first: it fixes this rank's device, where the model is loaded
        micro = cfg.per_forward()[0]
        with out_of_memory_hint(f"fine-tuning {node.label}", micro,
                                f"--set methods.<row>.micro_batch_size={{n}} for each row that fine-tunes {node.label} "
                                f"(gradient accumulation keeps its batch of {cfg.batch_size}), or gradient_checkpointing=true",
                                device=str(accelerator.device)), tf32_where_safe(str(accelerator.device)):
            model = denoiser_for(inputs["generator"], ctx, device=str(accelerator.device), resolution=cfg.resolution)
            summary = finetune(model, data, cfg, out, work, accelerator=accelerator,
                               meta={"node": node.key, "label": node.label, "dropped_prompts": dropped})
        del model  # the trained copy, its optimizer and DDP wrapper: freed now, not whenever the GC runs
        if hasattr(accelerator, "free_memory"):
            accelerator.free_memory()
        memory.free_accelerator_memory()
        if _rank_and_world()[0] == 0:  # every process is past training: checkpoints are no longer needed
            shutil.rmtree(work / "checkpoints", ignore_errors=True)
        ctx.count("models fine-tuned")
        return FinetuneResult(out, {**summary, "dropped_prompts": dropped})

    def cost(self, node, value: FinetuneResult):
        return {"train_steps": training_steps(value.summary)}

    def training_step(self, node):
        return int(node.params["train"]["steps"])


class FinetunedGeneratorOp(Op):
    """The parent generator with a stored fine-tuning result applied (nothing stored itself)."""

    name = "finetuned_generator"
    stored = False

    def compute(self, node: Node, ctx, inputs):
        if node.inputs["weights"].op is FINETUNE_CHECKPOINT:
            return finetuned_generator(inputs["generator"], inputs["weights"].directory)
        return finetuned_generator(inputs["generator"], ctx.store.path(node.inputs["weights"].key))

    def pending(self, node, store, peek):
        return {}


class FinetuneCheckpointOp(EstimatesTrajectoryKL, Op):
    """The weights a stored fine-tune kept after optimizer step `step` (its config's eval_at):
    nothing stored or trained, so every checkpoint of one fine-tune is a row at the cost of
    sampling. Keyed by the fine-tune's key and the step."""

    name = "finetune_checkpoint"
    stored = False

    def compute(self, node: Node, ctx, inputs):
        step = node.params["step"]
        directory = checkpoint_dir(ctx.store.path(node.inputs["weights"].key), step)
        if not (directory / WEIGHTS).is_file():
            raise UserError(f"{node.label}: the fine-tune in {directory.parent.parent} has no checkpoint at step {step}",
                            hint="add the step to the fine-tune's eval_at")
        return FinetuneResult(directory, {"step": step})

    def pending(self, node, store, peek):
        return {}

    def training_step(self, node):
        return int(node.params["step"])

    def training_run(self, node):
        return node.inputs["weights"]


class RewardStatsOp(Op):
    """A round's reward statistics on its own samples: mean and variance of all scores, and of the
    best / worst per prompt (a rising mean with a collapsing variance is a reward-hacking sign)."""

    name = "reward_stats"
    version = "1"
    reported = True

    def compute(self, node: Node, ctx, inputs):
        pool: ItemSet = inputs["pool"]
        scores = np.asarray(inputs["scores"], dtype=np.float64)
        per_prompt: dict[str, list[float]] = {}
        for it, s in zip(pool, scores):
            per_prompt.setdefault(it.prompt_id or it.key, []).append(float(s))
        best = np.array([max(v) for v in per_prompt.values()])
        worst = np.array([min(v) for v in per_prompt.values()])
        return {
            **node.params, "n": int(scores.size), "prompts": len(per_prompt),
            "mean": float(scores.mean()), "var": float(scores.var(ddof=1)) if scores.size > 1 else float("nan"),
            "best_mean": float(best.mean()), "worst_mean": float(worst.mean()),
            "within_prompt_var": float(np.mean([np.var(v, ddof=1) for v in per_prompt.values() if len(v) > 1] or [np.nan])),
        }

    def save(self, value, directory: Path, node: Node) -> dict[str, Any]:
        (directory / "stats.json").write_text(json.dumps(value, indent=1, sort_keys=True))
        return {"reward": value}

    def load(self, directory: Path, node: Node, ctx):
        return json.loads((directory / "stats.json").read_text())

    def pending(self, node, store, peek):
        return {"reward statistics": 1}


class WithRecordsOp(Op):
    """Passes `samples` through; its other inputs (per-round records) get computed on the way."""

    name = "with_records"
    stored = False

    def compute(self, node: Node, ctx, inputs):
        return inputs["samples"]

    def pending(self, node, store, peek):
        return {}


FINETUNE, FINETUNED_GENERATOR, REWARD_STATS, WITH_RECORDS = FinetuneOp(), FinetunedGeneratorOp(), RewardStatsOp(), WithRecordsOp()
FINETUNE_CHECKPOINT = FinetuneCheckpointOp()


# -- builder helpers shared by the methods -------------------------------------------------------------


def require_finetunable(b: Builder, entry: Any, method: str) -> None:
    """Refuse at planning time a generator that has no fine-tuning adapter (not hours later)."""
    gen = b.generator(entry.generator).obj
    why = cannot_finetune(gen)
    if why is not None:
        raise UserError(f"method {method!r}: generator {entry.generator!r} ({getattr(gen, 'name', type(gen).__name__)}) "
                        f"cannot be fine-tuned: {why}",
                        hint="sampling rows (base, rm_at_k) work with any generator; SFT/DPO need diffusers "
                        "(text-to-image or TextToVideoSDPipeline) or mini_diffusion generators")


def run_config(b: Builder, params: Any) -> TrainConfig:
    """The training config of a method's params, with its seed tied to the run seed."""
    fields = {k: getattr(params, k) for k in TrainConfig.model_fields if hasattr(params, k)}
    fields["seed"] = derive_seed(b.seed, "finetune", fields.get("seed", 0))
    return TrainConfig(**fields)


def prompts_entry(b: Builder, entry: Any, train_prompts: str | None) -> str:
    name = train_prompts or entry.prompts
    if name not in b.spec.prompts:
        known = ", ".join(b.spec.prompts) or "(none)"
        raise UserError(f"train_prompts: no prompt set named {name!r}", hint=f"defined prompt sets: {known}")
    return name


def finetune_round(b: Builder, generator: Node, prompts: str | Node, scorer: Node, cfg: TrainConfig, k: int,
                   label: str) -> tuple[Node, Node, Node]:
    """One post-training step of Algorithm 1 from `generator`: a K-sample pool, its scores, the
    selected data, the fine-tuning. Returns (fine-tuning node, pool, scores)."""
    pool = b.pool(generator, prompts, k)
    scores = b.scores(scorer, pool)
    data = {name: b.select(pool, scores, rule) for name, rule in objective_for(cfg.objective).selection.items()}
    weights = b.node(FINETUNE, {"train": cfg.identity()}, {"generator": generator, **data}, label=label, obj=cfg)
    return weights, pool, scores


def checkpoint_node(b: Builder, weights: Node, step: int) -> Node:
    """The fine-tune `weights` as it was after optimizer step `step` (one of its eval_at steps)."""
    return b.node(FINETUNE_CHECKPOINT, {"step": int(step)}, {"weights": weights}, label=f"{weights.label}@{step}")


def finetuned_generator_node(b: Builder, generator: Node, weights: Node, label: str) -> Node:
    return b.node(FINETUNED_GENERATOR, {}, {"generator": generator, "weights": weights}, label=label, obj=generator.obj)
