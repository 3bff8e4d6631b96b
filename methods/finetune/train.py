"""The fine-tuning loop shared by SFT and Diffusion-DPO, through accelerate.

One loop: `Accelerator(mixed_precision, gradient_accumulation_steps)`, AdamW, a diffusers LR
schedule with warm-up (stepped once per optimizer step), gradient clipping, LoRA via peft by
default (full fine-tune optional), per-step logs (loss, implicit accuracy, LR) to `log.csv`.

Determinism and resume: examples are read as a stream (consecutive seeded permutations), process
r of P taking the r-th slice of each global micro-batch; every random draw of an example (prompt
dropout, VAE sample, timestep, noise) comes from a generator seeded by its stream position. So
there is no RNG state to save, and P processes × batch B train like 1 process × batch P·B (DDP
averages the gradients). Checkpoints
(safetensors + JSON: trainable weights, optimizer moments, LR schedule, step) are written every
`checkpoint_every` steps into `work_dir/checkpoints/`. A rerun with the same `work_dir` resumes
from the last complete checkpoint and reaches the same weights as an uninterrupted run.

Checkpoints along training (`eval_at: [s, ...]`): the trainable weights after each step s are
written (complete or absent) to `work_dir/evals/` and end up in the result as
`checkpoints/step-<s>/` in the format of the final weights. Examples and their random draws depend
only on the stream position, so with an LR schedule that does not depend on `steps` (constant,
constant_with_warmup) the step-s checkpoint is byte for byte the result of a run with steps = s;
with one that does (linear, cosine, ...) it is the longer run's state at step s, not that.
"""

from __future__ import annotations

import contextlib
import copy
import math
import os
import shutil
import time
import types
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal, Sequence

import numpy as np
import torch
from pydantic import Field, ValidationInfo, field_validator

from ganrm_bench.harness.errors import UserError
from ganrm_bench.harness.plugins.base import PluginParams
from ganrm_bench.harness.runtime.numerics import fixed_threads
from ganrm_bench.harness.runtime.seeds import derive_seed
from ganrm_bench.harness.store.keys import hash_key
from ganrm_bench.methods.finetune import weights as W
from ganrm_bench.methods.finetune.encodings import PrecomputedEncodings, Prefetcher, decode_example, offload_encoders
from ganrm_bench.methods.finetune.objectives import objective_for
from ganrm_bench.methods.finetune.objectives.dpo import PreferencePair
from ganrm_bench.methods.finetune.objectives.sft import Sample
from ganrm_bench.methods.finetune.protocol import Denoiser, training_target
from ganrm_bench.methods.finetune.run_files import (
    EVALS,
    Checkpoints,
    append_log,
    collect_eval_checkpoints,
    finite_mean,
    lora_meta,
    read_log,
    save_eval_checkpoint,
)
from ganrm_bench.methods.finetune.stream import example_index, example_positions

__all__ = ["PreferencePair", "Sample", "TrainConfig", "TrainResult", "evaluate", "finetune", "train"]


class TrainConfig(PluginParams):
    """Fine-tuning hyper-parameters. Defaults: Diffusion-DPO reference (β = 5000, AdamW wd 1e-2,
    constant LR with 500 warm-up steps, grad-norm clip 1) with the GAN-RM paper's batch 8 ×
    accumulation 2, and LoRA rank 4 on to_q/k/v/out as in the authors' sibling repo (SafetyDPO),
    whose LoRA LR is 1e-5 (the paper's 1e-7 is not said to be for LoRA)."""

    objective: Literal["dpo", "sft"] = "dpo"
    beta: float = Field(5000.0, gt=0, description="Diffusion-DPO β (reference: 5000 for SD1.5)")
    finetune: Literal["lora", "full"] = "lora"
    lora_rank: int = Field(4, ge=1)
    lora_alpha: float | None = Field(None, description="LoRA alpha (default: = rank)")
    lora_targets: tuple[str, ...] = W.DEFAULT_TARGETS
    steps: int = Field(2000, ge=0, description="optimizer steps")
    batch_size: int = Field(8, ge=1, description="pairs (DPO) or samples (SFT) per micro-batch per process")
    grad_accum: int = Field(2, ge=1)
    lr: float = Field(1e-5, gt=0)
    scale_lr: bool = Field(False, description="multiply lr by batch_size × grad_accum × processes (reference --scale_lr)")
    lr_scheduler: str = "constant_with_warmup"
    warmup_steps: int = Field(500, ge=0)
    weight_decay: float = 1e-2
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    adam_eps: float = 1e-8
    max_grad_norm: float = 1.0
    mixed_precision: Literal["no", "fp16", "bf16"] = "no"
    empty_prompt_fraction: float = Field(0.0, ge=0, le=1, description="prompts replaced by '' (reference DPO: 0.2)")
    resolution: int | None = Field(None, description="training resolution (default: the generator's)")
    gradient_checkpointing: bool = False
    seed: int = 0
    checkpoint_every: int = Field(500, ge=1, description="optimizer steps between checkpoints")
    keep_checkpoints: int = Field(2, ge=1)
    optimizer: Literal["adamw", "adamw_fused", "adafactor"] = Field(
        "adamw", description="adamw; adamw_fused (torch's fused CUDA kernel); adafactor (factored second moments, "
        "transformers' Adafactor with a fixed lr, as DiffusionDPO trained SDXL)")
    reference_dtype: Literal["same", "bfloat16", "float16"] = Field(
        "same", description="dtype of the frozen reference UNet of a full DPO fine-tune (bfloat16 halves it; needs mixed precision)")
    micro_batch_size: int | None = Field(None, ge=1, description="examples per forward pass per process: batch_size is "
                                         "split into micro-batches with more accumulation (same global batch, less memory)")
    precompute_encodings: bool = Field(False, description="encode every prompt and image once before training (VAE "
                                       "posteriors, prompt embeddings), then move the VAE and text encoders off the "
                                       "accelerator while the UNet trains; the same random draws, float rounding of "
                                       "other encoder batches (so it keys the weights)")
    decode_threads: int = Field(2, ge=0, description="background threads decoding the coming micro-batches' images / "
                                "videos (0: in the training thread); never changes the weights")
    eval_at: tuple[int, ...] = Field((), description="optimizer steps whose trainable weights are kept in the result "
                                     "(checkpoints/step-<s>/, the format of the final weights), for rows that evaluate a "
                                     "fine-tune along training (method param `checkpoint`)")

    @field_validator("eval_at")
    @classmethod
    def _eval_steps(cls, value: tuple[int, ...], info: ValidationInfo) -> tuple[int, ...]:
        """Positive, strictly increasing steps no later than `steps` (a one-line error naming eval_at otherwise)."""
        steps = info.data.get("steps")
        if any(s < 1 for s in value):
            raise ValueError("eval_at steps must be ≥ 1")
        if list(value) != sorted(set(value)):
            raise ValueError("eval_at must be strictly increasing")
        if steps is not None and value and value[-1] > steps:
            raise ValueError(f"eval_at step {value[-1]} is beyond steps = {steps}")
        return value

    def identity(self) -> dict[str, Any]:
        """What determines the trained weights (checkpoint cadence does not). Options added later
        enter only when set, so earlier artifacts keep their keys."""
        out = self.model_dump(mode="json", exclude={"checkpoint_every", "keep_checkpoints", "decode_threads"})
        for name, default in _LATER_OPTIONS.items():
            if out.get(name) == default:
                out.pop(name)
        return out

    def per_forward(self) -> tuple[int, int]:
        """(examples per forward pass, forward passes per optimizer step) on each process."""
        micro = self.micro_batch_size or self.batch_size
        if micro > self.batch_size or self.batch_size % micro:
            raise UserError(f"micro_batch_size {micro} must divide batch_size {self.batch_size}",
                            hint="e.g. batch_size 8 with micro_batch_size 1, 2, 4 or 8")
        return micro, self.grad_accum * (self.batch_size // micro)


_LATER_OPTIONS = {"optimizer": "adamw", "micro_batch_size": None, "reference_dtype": "same", "precompute_encodings": False,
                  "eval_at": []}


@dataclass
class TrainResult:
    unet: torch.nn.Module  # the trained network (LoRA still injected, unmerged)
    log: list[dict[str, Any]] = field(default_factory=list)
    resumed_from: int = 0
    steps: int = 0
    seconds: float = 0.0
    offloaded: list[str] = field(default_factory=list)  # encoders moved off the accelerator (precompute_encodings)


LOG_FIELDS = ("step", "loss", "implicit_acc", "model_loss", "ref_loss", "lr", "grad_norm", "seconds")


def _forward_loss(model: Denoiser, unet, unwrapped, ref_unet, examples: Sequence, positions: list[int], cfg: TrainConfig,
                  accelerator, encoder: Any = None) -> tuple[torch.Tensor, dict[str, float]]:
    """The loss of one micro-batch (`examples`, at stream `positions`). Every random draw of an
    example (prompt dropout, VAE sample, timestep, noise) comes from its own generator seeded by
    its stream position. `encoder` answers encode_prompts / images_to_model_space (precomputed
    encodings; default the model)."""
    sched = model.noise_scheduler
    encoder = encoder or model
    steps = sched.config.num_train_timesteps
    device = accelerator.device
    gen = [torch.Generator().manual_seed(derive_seed(cfg.seed, "example", pos)) for pos in positions]
    prompts = [ex.prompt for ex in examples]
    if cfg.empty_prompt_fraction > 0:
        drop = [torch.rand(1, generator=g).item() < cfg.empty_prompt_fraction for g in gen]
        prompts = ["" if d else p for p, d in zip(prompts, drop)]
    cond = encoder.encode_prompts(prompts)
    objective = objective_for(cfg.objective)
    clean, noise, t, cond = objective.batch(encoder, examples, gen, cond, steps, device)
    noise = noise.to(clean.dtype)
    noisy = sched.add_noise(clean, noise, t)
    target = training_target(sched, clean, noise, t)
    with accelerator.autocast():
        pred = model.unet_forward(unet, noisy, t, cond)

    def reference() -> torch.Tensor:
        with torch.no_grad(), accelerator.autocast():
            if ref_unet is not None:
                return model.unet_forward(ref_unet, noisy, t, cond)
            with W.adapters_disabled(unwrapped):
                return model.unet_forward(unwrapped, noisy, t, cond)

    loss, stats = objective.loss(pred, reference, target, cfg.beta)
    stats.pop("inside", None)
    return loss, stats


def train(model: Denoiser, data: Sequence[PreferencePair | Sample], cfg: TrainConfig, work_dir: str | Path,
          *, accelerator=None) -> TrainResult:
    """Train `model.unet` in place on `data` (pairs for DPO, samples for SFT); resumable in `work_dir`."""
    from diffusers.optimization import get_scheduler

    _check_data(data, cfg)
    micro_batch, accumulation = cfg.per_forward()
    work_dir = Path(work_dir)
    accelerator = accelerator or make_accelerator(cfg)
    if accelerator.gradient_accumulation_steps != accumulation:
        raise ValueError(f"the accelerator accumulates {accelerator.gradient_accumulation_steps} forward passes; "
                         f"this config needs {accumulation} (build it with make_accelerator(cfg))")
    if hasattr(model, "to"):
        model.to(accelerator.device)
    unet, ref_unet, trainable = trainable_unet(model.unet, cfg)
    lr = cfg.lr * (cfg.batch_size * cfg.grad_accum * accelerator.num_processes if cfg.scale_lr else 1)
    optimizer = make_optimizer(trainable, cfg, lr)
    lr_schedule = get_scheduler(cfg.lr_scheduler, optimizer=optimizer, num_warmup_steps=cfg.warmup_steps,
                                num_training_steps=max(cfg.steps, 1))
    unet, optimizer = accelerator.prepare(unet, optimizer)
    unwrapped = accelerator.unwrap_model(unet)
    names = [n for n, p in unwrapped.named_parameters() if p.requires_grad]

    ckpt = Checkpoints(work_dir / "checkpoints", hash_key(cfg.identity()), cfg.keep_checkpoints)
    start = ckpt.resume(unwrapped, names, optimizer, lr_schedule)
    log_path = work_dir / "log.csv"
    log = read_log(log_path, start, fields=LOG_FIELDS, rewrite=accelerator.is_main_process) if start else []
    result = TrainResult(unwrapped, log, resumed_from=start)
    micro_positions = [example_positions(step * accumulation + a, micro_batch, accelerator.process_index, accelerator.num_processes)
                       for step in range(start, cfg.steps) for a in range(accumulation)]
    batches, encoder = _micro_batches(model, data, cfg, micro_positions, accelerator, result)
    loop = _Loop(model, unet, unwrapped, ref_unet, trainable, optimizer, lr_schedule, cfg, accelerator, encoder, accumulation)
    t0 = time.time()
    with contextlib.closing(iter(batches)) as batches:  # a failing step stops the decoding threads
        for step in range(start, cfg.steps):
            positions = micro_positions[(step - start) * accumulation:(step - start + 1) * accumulation]
            row = {**loop.step(step, batches, positions), "seconds": round(time.time() - t0, 3)}
            log.append(row)
            if accelerator.is_main_process:
                append_log(log_path, row, fresh=(step == start and not start), fields=LOG_FIELDS)
            if step + 1 in cfg.eval_at and accelerator.is_main_process:
                save_eval_checkpoint(unwrapped, cfg, step + 1, work_dir / EVALS)
            if (step + 1) % cfg.checkpoint_every == 0 and step + 1 < cfg.steps:  # the result itself follows the last step
                accelerator.wait_for_everyone()
                if accelerator.is_main_process:
                    ckpt.save(step + 1, unwrapped, names, optimizer, lr_schedule)
    result.steps = cfg.steps
    result.seconds = time.time() - t0
    accelerator.wait_for_everyone()
    unwrapped.eval()
    return result


def enable_checkpointing(unet) -> None:
    """Gradient checkpointing: diffusers' own where the network supports it, else each down, mid and
    up block recomputed in the backward pass. Diffusers' UNet3DConditionModel (Table 3's ZeroScope)
    refuses `enable_gradient_checkpointing`, which failed the video DPO row after all its sampling.
    The same gradients either way, less activation memory."""
    if not hasattr(unet, "enable_gradient_checkpointing"):
        return
    if getattr(unet, "_supports_gradient_checkpointing", True):
        unet.enable_gradient_checkpointing()
        return
    mid = [unet.mid_block] if getattr(unet, "mid_block", None) is not None else []
    for block in [*unet.down_blocks, *mid, *unet.up_blocks]:
        block.forward = types.MethodType(_checkpointed_forward, block)  # a bound method: deep copies rebind it


def _checkpointed_forward(block, *args, **kwargs):
    from torch.utils.checkpoint import checkpoint

    forward = type(block).forward
    if torch.is_grad_enabled():
        return checkpoint(forward, block, *args, use_reentrant=False, **kwargs)
    return forward(block, *args, **kwargs)


def trainable_unet(unet, cfg: TrainConfig, frozen_reference: bool | None = None):
    """The UNet made trainable as the config says (full, or LoRA adapters with a seeded init), the
    frozen reference copy DPO needs (full fine-tunes; `frozen_reference`, default the objective's
    say), and the trainable parameters in fp32."""
    ref_unet = None
    if frozen_reference is None:
        frozen_reference = objective_for(cfg.objective).frozen_reference
    if cfg.finetune == "lora":
        with torch.random.fork_rng(devices=[]):  # a seeded LoRA init, without touching the global RNG
            torch.manual_seed(derive_seed(cfg.seed, "lora-init"))
            W.add_lora(unet, cfg.lora_rank, cfg.lora_alpha, cfg.lora_targets)
    else:
        if frozen_reference:
            ref_unet = copy.deepcopy(unet).requires_grad_(False).eval()
            if cfg.reference_dtype != "same":
                if cfg.mixed_precision == "no":
                    raise UserError(f"reference_dtype {cfg.reference_dtype} needs mixed precision (its forward runs under autocast)",
                                    hint="set mixed_precision: bf16")
                ref_unet.to(getattr(torch, cfg.reference_dtype))
        unet.requires_grad_(True)
    if cfg.gradient_checkpointing:
        enable_checkpointing(unet)
    unet.train()
    trainable = [p for p in unet.parameters() if p.requires_grad]
    _check_precision(unet, cfg)
    for p in trainable:  # trainable weights always in fp32 (diffusers' cast_training_params); frozen ones keep their dtype
        p.data = p.data.float()
    return unet, ref_unet, trainable


def _micro_batches(model: Denoiser, data: Sequence[PreferencePair | Sample], cfg: TrainConfig, micro_positions: list[list[int]],
                   accelerator, result: TrainResult):
    """The coming micro-batches, decoded in background threads; with precomputed encodings, the
    VAE posteriors and prompt embeddings of every example first (the encoders then leave the device)."""
    def examples_at(positions):
        return [data[example_index(len(data), pos, cfg.seed)] for pos in positions]

    if cfg.precompute_encodings and micro_positions:
        encoder = PrecomputedEncodings(model, _unique(data, {example_index(len(data), p, cfg.seed) for ps in micro_positions for p in ps}),
                                       device=accelerator.device, threads=cfg.decode_threads)
        result.offloaded = offload_encoders(model, accelerator.device)
        return Prefetcher(examples_at, micro_positions, threads=0), encoder  # nothing left to decode
    return Prefetcher(lambda ps: [decode_example(ex) for ex in examples_at(ps)], micro_positions, threads=cfg.decode_threads), None


@dataclass
class _Loop:
    """What one optimisation step needs."""

    model: Any
    unet: Any
    unwrapped: Any
    ref_unet: Any
    trainable: list
    optimizer: Any
    lr_schedule: Any
    cfg: TrainConfig
    accelerator: Any
    encoder: Any
    accumulation: int

    def step(self, step: int, batches, positions: list[list[int]]) -> dict[str, float]:
        """One optimizer step over `accumulation` micro-batches; the log row (without seconds)."""
        acc, cfg = self.accelerator, self.cfg
        acc_stats: list[dict[str, float]] = []
        grad_norm = float("nan")
        for micro_positions in positions:
            examples = next(batches)
            with acc.accumulate(self.unet):
                loss, stats = _forward_loss(self.model, self.unet, self.unwrapped, self.ref_unet, examples, micro_positions, cfg,
                                            acc, self.encoder)
                if _nonfinite_anywhere(loss):  # every process raises together: none waits in the next all-reduce
                    raise FloatingPointError(f"fine-tuning loss is not finite at step {step} (this process: {loss.item()}); "
                                             "lower lr or beta, or use mixed_precision bf16")
                acc.backward(loss)
                if acc.sync_gradients:
                    if cfg.max_grad_norm > 0:
                        grad_norm = float(acc.clip_grad_norm_(self.trainable, cfg.max_grad_norm))
                    self.optimizer.step()
                    self.lr_schedule.step()
                    self.optimizer.zero_grad(set_to_none=True)
            acc_stats.append(stats)
        return {"step": step + 1, **_mean_stats(acc_stats, acc), "lr": self.lr_schedule.get_last_lr()[0], "grad_norm": grad_norm}


CPU_THREADS = 1  # torch threads of a fine-tune on the CPU (a fixed count: weights independent of the machine)


def make_accelerator(cfg: TrainConfig):
    """The Accelerator of a run: the launcher's processes (accelerate launch / torchrun), gloo on CPU.
    The process-group timeout is raised (GANRM_BENCH_DIST_TIMEOUT s, default 2 h) so that rank 0
    saving 10 GB of weights does not trip the others' 10-minute watchdog; failures still end all
    ranks at once (a failing process exits, and the launcher stops the rest)."""
    from accelerate import Accelerator, DistributedDataParallelKwargs, InitProcessGroupKwargs
    from accelerate.state import AcceleratorState

    timeout = timedelta(seconds=float(os.environ.get("GANRM_BENCH_DIST_TIMEOUT", 7200)))
    kwargs = dict(mixed_precision=cfg.mixed_precision, gradient_accumulation_steps=cfg.per_forward()[1],
                  cpu=not torch.cuda.is_available(),
                  kwargs_handlers=[InitProcessGroupKwargs(timeout=timeout), DistributedDataParallelKwargs(gradient_as_bucket_view=True)])
    try:
        return Accelerator(**kwargs)
    except ValueError as exc:  # an earlier fine-tune in this process used another precision
        if "already been initialized" not in str(exc):
            raise
        AcceleratorState._reset_state(reset_partial_state=False)  # keeps the process group
        return Accelerator(**kwargs)


def finetune(model: Denoiser, data: Sequence[PreferencePair | Sample], cfg: TrainConfig, out_dir: str | Path,
             work_dir: str | Path, *, meta: dict[str, Any] | None = None, accelerator=None) -> dict[str, Any]:
    """Train, then write the result to `out_dir` (weights.safetensors + finetune.json + log.csv).
    Returns a summary (final loss / implicit accuracy averaged over the last 10 % of steps)."""
    accelerator = accelerator or make_accelerator(cfg)
    on_cpu = accelerator.device.type == "cpu"
    # On the CPU the weights depend on torch's thread count (float reduction order): train with a
    # fixed one and deterministic kernels, so the same key holds the same bytes on every machine.
    with fixed_threads(CPU_THREADS) if on_cpu else contextlib.nullcontext():
        result = train(model, data, cfg, work_dir, accelerator=accelerator)
    tail = result.log[-max(1, len(result.log) // 10):] if result.log else []
    summary = {
        "objective": cfg.objective, "steps": result.steps, "resumed_from": result.resumed_from, "examples": len(data),
        "seconds": round(result.seconds, 3), **({"torch_threads": CPU_THREADS, "deterministic_algorithms": True} if on_cpu else {}),
        **{f"final_{k}": finite_mean([r.get(k, math.nan) for r in tail]) for k in ("loss", "implicit_acc", "model_loss")},
    }
    if accelerator.is_main_process:
        W.save_weights(result.unet, out_dir, kind=cfg.finetune, lora=lora_meta(cfg),
                       meta={"train": cfg.identity(), "summary": summary, **(meta or {})})
        if (Path(work_dir) / "log.csv").exists():
            shutil.copyfile(Path(work_dir) / "log.csv", Path(out_dir) / "log.csv")
        collect_eval_checkpoints(cfg, Path(work_dir) / EVALS, Path(out_dir))
    accelerator.wait_for_everyone()  # every process returns once the result is complete on disk
    return summary


def make_optimizer(params: list, cfg: TrainConfig, lr: float):
    """AdamW (optionally torch's fused kernel) or Adafactor (factored moments: ~0 optimizer memory)."""
    if cfg.optimizer == "adafactor":
        from transformers.optimization import Adafactor

        return Adafactor(params, lr=lr, scale_parameter=False, relative_step=False, warmup_init=False,
                         weight_decay=cfg.weight_decay)
    return torch.optim.AdamW(params, lr=lr, betas=(cfg.adam_beta1, cfg.adam_beta2), weight_decay=cfg.weight_decay,
                             eps=cfg.adam_eps, fused=cfg.optimizer == "adamw_fused")


def _check_precision(unet: torch.nn.Module, cfg: TrainConfig) -> None:
    """Refuse pure half-precision training: fp16 updates overflow (NaN after one AdamW step), bf16
    ones round away (a 1e-7 step changes almost no weight), so the row would silently equal base."""
    half = sorted({str(p.dtype).removeprefix("torch.") for p in unet.parameters() if p.dtype in (torch.float16, torch.bfloat16)})
    if half and cfg.mixed_precision == "no":
        raise UserError(f"fine-tuning a {'/'.join(half)} model with mixed_precision: no would train half-precision weights "
                        "(NaN with float16, updates rounded away with bfloat16)",
                        hint="set mixed_precision: bf16 (or fp16) — trainable weights are then kept in float32 — "
                        "or load the generator with dtype: float32")


def _nonfinite_anywhere(loss: torch.Tensor) -> bool:
    """Whether the loss is NaN/inf on this or any other process (one all-reduce under DDP)."""
    bad = torch.tensor([0.0 if bool(torch.isfinite(loss.detach()).all()) else 1.0], device=loss.device)
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        dist.all_reduce(bad, op=dist.ReduceOp.MAX)
    return bool(bad.item())


# -- evaluation with fixed draws (for tests and reports) ---------------------------------------------


@torch.no_grad()
def evaluate(model: Denoiser, data: Sequence[PreferencePair | Sample], *, objective: str, beta: float = 5000.0,
             seed: int = 1234, draws: int = 4, unet: torch.nn.Module | None = None) -> dict[str, float]:
    """Loss terms on every example with fixed (timestep, noise) draws: for DPO the mean implicit
    accuracy and inside term against the adapters-disabled reference; for SFT the denoising loss.
    Same seed → same draws, so before/after numbers are comparable."""
    unet = unet if unet is not None else model.unet
    was_training = unet.training
    unet.eval()
    sched = model.noise_scheduler
    obj = objective_for(objective)
    stats: list[dict[str, float]] = []
    for d in range(draws):
        gen = torch.Generator().manual_seed(derive_seed(seed, "eval", d))
        prompts = [ex.prompt for ex in data]
        cond = model.encode_prompts(prompts)
        device = next(unet.parameters()).device
        clean, noise, t, cond = obj.batch(model, data, gen, cond, sched.config.num_train_timesteps, device)
        noise = noise.to(clean.dtype)
        noisy = sched.add_noise(clean, noise, t)
        target = training_target(sched, clean, noise, t)
        pred = model.unet_forward(unet, noisy, t, cond)

        def reference() -> torch.Tensor:
            with W.adapters_disabled(unet):
                return model.unet_forward(unet, noisy, t, cond)

        stats.append(obj.loss(pred, reference, target, beta)[1])
    unet.train(was_training)
    return {k: float(np.mean([s[k] for s in stats])) for k in obj.eval_keys}


# -- checkpoints -------------------------------------------------------------------------------------


# -- logs and data checks ------------------------------------------------------------------------------


def _mean_stats(stats: list[dict[str, float]], accelerator) -> dict[str, float]:
    keys = ("loss", "implicit_acc", "model_loss", "ref_loss")
    vals = torch.tensor([[s.get(k, float("nan")) for k in keys] for s in stats], dtype=torch.float64).mean(0)
    if accelerator.num_processes > 1:
        vals = accelerator.reduce(vals.to(accelerator.device), reduction="mean").cpu()
    return {k: float(v) for k, v in zip(keys, vals)}


def _unique(data: Sequence, indices: set[int]) -> list:
    return [data[i] for i in sorted(indices)]


def _check_data(data: Sequence, cfg: TrainConfig) -> None:
    want = objective_for(cfg.objective).example
    if not data:
        raise UserError(f"no {cfg.objective} training examples (empty {want.__name__} list)")
    bad = [i for i, ex in enumerate(data) if not isinstance(ex, want)]
    if bad:
        raise UserError(f"{cfg.objective} training needs {want.__name__} examples; item {bad[0]} is {type(data[bad[0]]).__name__}")
