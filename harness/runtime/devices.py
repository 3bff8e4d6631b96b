"""Devices: which ones we run on, and the concrete device of this process (its own GPU under a launcher)."""

from __future__ import annotations

import os
import re

from ganrm_bench.harness.errors import UserError
from ganrm_bench.harness.errors import UserError as _UserError

DEVICE_PATTERN = re.compile(r"auto|cpu|mps|cuda(:\d+)?")


def check_device(device: str, *, UserError: type[Exception] | None = None) -> str:
    """`device` if it is one we run on (auto, cpu, cuda, cuda:N, mps), else a clear error."""
    if not DEVICE_PATTERN.fullmatch(str(device)):
        raise (UserError or _UserError)(f"device {device!r} is not one of auto, cpu, cuda, cuda:N, mps")
    return device


def local_rank() -> int:
    """This process's index on its machine, as torchrun / `accelerate launch` / SLURM-via-accelerate set it."""
    return int(os.environ.get("LOCAL_RANK", os.environ.get("GANRM_BENCH_LOCAL_RANK", "0")))


def resolve_device(device: str = "auto") -> str:
    """A concrete device. "auto" (and a bare "cuda") name this process's own GPU, `cuda:{LOCAL_RANK}`,
    as accelerate assigns them, so models cached by device never land on GPU 0 for every rank; with a
    single visible GPU (one per process via CUDA_VISIBLE_DEVICES) it is `cuda:0`. Explicit devices
    ("cpu", "cuda:1", "mps") are kept."""
    check_device(device)
    if device not in ("auto", "cuda"):
        return device
    try:
        import torch
    except ImportError:  # pragma: no cover
        return "cpu"
    if not torch.cuda.is_available():
        return "cpu" if device == "auto" else device  # a bare "cuda" without CUDA fails where torch uses it
    count, rank = torch.cuda.device_count(), local_rank()
    if count == 1:
        return "cuda:0"
    if rank >= count:
        raise UserError(f"LOCAL_RANK={rank} but this process sees only {count} GPUs",
                        hint="launch at most one process per GPU (accelerate launch --num_processes / torchrun --nproc_per_node)")
    return f"cuda:{rank}"


def process_device(device: str = "auto") -> str:
    """Resolve the run's device once per process and make it the current CUDA device, so code that
    allocates on "the" GPU (bare "cuda", NCCL, accelerate) uses this rank's GPU from the start."""
    resolved = resolve_device(device)
    if resolved.startswith("cuda:"):
        import torch

        torch.cuda.set_device(resolved)
    return resolved
