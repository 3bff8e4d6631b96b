"""Numerics: what besides the inputs can change an artifact's bytes, and how the harness pins or records it.

Three tools (docs/reproducibility.md gives the policy):

- `fixed_threads(n)`: torch runs a small training or accumulation with n threads and deterministic
  kernels, so its float reduction order — and its bytes — do not depend on the machine's core count.
- `numerics_class(device, world)`: the part of the execution that still changes results: on the CPU
  the pinned kernels' class (`cpu-pin1-v3`, the same on every x86-64-v3 machine: harness.runtime.cpu_pin)
  or, unpinned, a class naming this machine; CUDA with its TF32 policy; the process count of
  data-parallel training. Node keys carry it (harness/engine/builder.py), so an artifact is only
  served to runs that would compute the same bytes.
- `numerics_record(ctx)` / `numerics_mismatch(a, b)`: what a run or an artifact was computed under
  (run.json, manifests), and the differences `check` warns about between a baseline and a run.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any, Iterator

from ganrm_bench.harness.runtime import cpu_pin
from ganrm_bench.harness.runtime.devices import resolve_device
from ganrm_bench.harness.runtime.distributed import rank_and_world
from ganrm_bench.harness.runtime.random_weights import key_part as random_weights_part


@contextlib.contextmanager
def fixed_threads(n: int = 1, *, deterministic: bool = True) -> Iterator[None]:
    """Run the block with `n` torch intra-op threads (and deterministic algorithms where torch has
    them); restore the caller's settings afterwards, also on an exception."""
    import torch

    cpu_pin.activate()
    threads, strict = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    torch.set_num_threads(n)
    if deterministic:
        torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(strict, warn_only=warn_only)


def device_type(device: str | None) -> str:
    """"cuda:1" → "cuda"; "auto" resolved to the device a run would use."""
    return resolve_device(device or "cpu").split(":")[0]


def numerics_class(device: str | None, world: int = 1) -> str:
    """The class of execution whose results may differ from another's: the CPU's pinned (or this
    machine's) class, CUDA with its TF32 policy, and `×world` for work that several processes compute
    together (data-parallel gradient averaging)."""
    dev = device_type(device)
    if dev == "cpu":
        base = cpu_pin.cpu_class()
    else:
        base = dev + ("+tf32" if dev == "cuda" and tf32_policy() else "")
    return base + (f"×{world}" if world > 1 else "")


TF32_ENV = "GANRM_BENCH_TF32"


def tf32_policy() -> bool:
    """TF32 matmuls/convolutions for generation and fine-tuning on CUDA (on by default, as labs run
    diffusion models; GANRM_BENCH_TF32=0 turns it off). Metric models keep torch's defaults, so
    scores stay comparable with their reference implementations."""
    return os.environ.get(TF32_ENV, "1").strip().lower() not in {"0", "false", "no", "off"}


@contextlib.contextmanager
def tf32_where_safe(device: str | None) -> Iterator[None]:
    """Run generation or fine-tuning with TF32 on a CUDA device under the policy; restore after."""
    if device_type(device) != "cuda" or not tf32_policy():
        yield
        return
    import torch

    before = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = before


def key_part(numerics: str | None) -> dict[str, str]:
    """What a numerics class adds to a key: the class, or nothing for work that does not depend on
    numerics (None). A random-weights run (harness.runtime.random_weights) adds its marker to every
    key, whatever the class."""
    return {**({} if numerics is None else {"numerics": numerics}), **random_weights_part()}


def numerics_record(device: str | None = None) -> dict[str, Any]:
    """The execution details that can change numbers: for run.json and each artifact's manifest."""
    import torch

    dev = device_type(device)
    record: dict[str, Any] = {
        "class": numerics_class(dev, rank_and_world()[1]), "device": dev, "torch_threads": torch.get_num_threads(), "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(), "world_size": rank_and_world()[1],
        "default_dtype": str(torch.get_default_dtype()).removeprefix("torch."), "torch": torch.__version__,
        # GPU defaults (docs/scaling.md): generators' `dtype: auto` is in each generator's key as resolved
        "attention": "sdpa" if hasattr(torch.nn.functional, "scaled_dot_product_attention") else "math",
        "tf32": ("generation and fine-tuning" if tf32_policy() else "off") if dev == "cuda" else "n/a",
    }
    record.update(cpu_pin.describe_machine())  # the CPU and its kernel paths: every run has CPU work (FID statistics at least)
    if reason := cpu_pin.unpinned_reason():
        record["cpu_pin_note"] = reason
    if dev == "cuda" and torch.cuda.is_available():
        record.update(
            gpu=torch.cuda.get_device_name(), cuda=torch.version.cuda, cudnn_deterministic=torch.backends.cudnn.deterministic,
            cudnn_benchmark=torch.backends.cudnn.benchmark, tf32_matmul=torch.backends.cuda.matmul.allow_tf32,
            tf32_cudnn=torch.backends.cudnn.allow_tf32,
        )
    return record


# Fields whose difference can change results (the numerics class, compared apart, sums them up: it is
# what keys carry), and the machine facts behind it. Thread counts are not here: every op that depends on them fixes them itself.
COMPARED = ("device", "world_size", "default_dtype", "torch", "cpu_pin", "cpu_vendor", "cpu_model", "aten_capability", "blas",
            "gpu", "cuda", "cudnn_deterministic", "tf32_matmul", "tf32_cudnn")


def numerics_mismatch(run_info_a: dict[str, Any], run_info_b: dict[str, Any]) -> list[str]:
    """How two runs' numerics differ ("device: cpu vs cuda"), from their run.json contents; [] when
    they match or a run predates the record (then nothing can be said: `same_numerics_class`).
    Machine facts that differ under one pinned class (CPU model) are listed too: they do not change
    the bytes, but a reader of `check` should know."""
    a, b = run_info_a.get("numerics"), run_info_b.get("numerics")
    if not a or not b:
        return []
    return [f"{k}: {a.get(k)} vs {b.get(k)}" for k in COMPARED if (k in a or k in b) and a.get(k) != b.get(k)]


def run_info_near(path: str | Path) -> dict[str, Any]:
    """The run.json of a run directory, or of the directory holding a results file; {} if none."""
    path = Path(path)
    found = path / "run.json" if path.is_dir() else path.parent / "run.json"
    try:
        return json.loads(found.read_text())
    except (OSError, json.JSONDecodeError):
        return {}


def comparable_numerics(run_info: dict[str, Any], baseline_info: dict[str, Any]) -> tuple[bool, str]:
    """Whether a run's trained artifacts can be taken as the baseline's own draw of training:
    (True, note) when both computed under one numerics class — then the same keys mean the same bytes
    (the pinned CPU class is the same on every x86-64-v3 machine, whatever its model); else (False,
    the one line `check` prints), and `check` gives trained cells the training-variance rule
    (harness.stats.twolevel). The note names machine facts that differ without changing the bytes."""
    if not baseline_info.get("numerics"):
        return False, ("the baseline's run.json has no numerics record, so whether it was computed like this run is unknown: "
                       "trained cells with one shared seed carry the baseline's training variance")
    if not run_info.get("numerics"):
        return False, ("the run's run.json has no numerics record: trained cells with one shared seed carry the baseline's "
                       "training variance")
    diffs = numerics_mismatch(run_info, baseline_info)
    same = same_numerics_class(run_info, baseline_info)
    if same:
        return True, (f"run and baseline share the numerics class {run_info['numerics']['class']} (same keys, same bytes); "
                      f"they differ only in {'; '.join(diffs)}") if diffs else ""
    if diffs or same is False:
        return False, (f"run and baseline were computed under different numerics (run vs baseline: {'; '.join(diffs)}): "
                       "trained cells with one shared seed carry the baseline's training variance")
    return True, ""


def same_numerics_class(run_info_a: dict[str, Any], run_info_b: dict[str, Any]) -> bool | None:
    """Whether two runs computed under one numerics class (then the same keys mean the same bytes and
    trained cells pair as identical artifacts); None when a run.json has no class (an older run)."""
    a, b = (info.get("numerics") or {} for info in (run_info_a, run_info_b))
    if not a.get("class") or not b.get("class"):
        return None
    return a["class"] == b["class"]
