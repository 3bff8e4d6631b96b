"""Numerics: what besides the inputs can change an artifact's bytes, and how the harness pins or records it.

Three tools (docs/reproducibility.md gives the policy):

- `fixed_threads(n)`: torch runs a small training or accumulation with n threads and deterministic
  kernels, so its float reduction order — and its bytes — do not depend on the machine's core count.
- `numerics_class(device, world)`: the part of the execution that still changes results (CPU vs CUDA
  kernels; the process count of data-parallel training). Node keys carry it (harness/engine/builder.py), so a
  CPU-made reward model is never served to a GPU run. "cpu" is the reference class and adds nothing
  to a key, so CPU keys stay what they were.
- `numerics_record(ctx)` / `numerics_mismatch(a, b)`: what a run or an artifact was computed under
  (run.json, manifests), and the differences `check` warns about between a baseline and a run.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any, Iterator

from ganrm_bench.harness.runtime.devices import resolve_device
from ganrm_bench.harness.runtime.distributed import rank_and_world
from ganrm_bench.harness.runtime.random_weights import key_part as random_weights_part

REFERENCE_CLASS = "cpu"


@contextlib.contextmanager
def fixed_threads(n: int = 1, *, deterministic: bool = True) -> Iterator[None]:
    """Run the block with `n` torch intra-op threads (and deterministic algorithms where torch has
    them); restore the caller's settings afterwards, also on an exception."""
    import torch

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
    """The class of execution whose results may differ from another's: the device type (CUDA with
    its TF32 policy), and `×world` for work that several processes compute together (data-parallel
    gradient averaging)."""
    dev = device_type(device)
    return dev + ("+tf32" if dev == "cuda" and tf32_policy() else "") + (f"×{world}" if world > 1 else "")


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
    """What a numerics class adds to a key: nothing for the reference class (CPU, one process) or
    for work that does not depend on numerics (None). A random-weights run (harness.runtime.random_weights)
    adds its marker to every key, whatever the class."""
    return {**({} if numerics in (None, REFERENCE_CLASS) else {"numerics": numerics}), **random_weights_part()}


def numerics_record(device: str | None = None) -> dict[str, Any]:
    """The execution details that can change numbers: for run.json and each artifact's manifest."""
    import torch


    dev = device_type(device)
    record: dict[str, Any] = {
        "device": dev, "torch_threads": torch.get_num_threads(), "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(), "world_size": rank_and_world()[1],
        "default_dtype": str(torch.get_default_dtype()).removeprefix("torch."), "torch": torch.__version__,
        # GPU defaults (docs/scaling.md): generators' `dtype: auto` is in each generator's key as resolved
        "attention": "sdpa" if hasattr(torch.nn.functional, "scaled_dot_product_attention") else "math",
        "tf32": ("generation and fine-tuning" if tf32_policy() else "off") if dev == "cuda" else "n/a",
    }
    if dev == "cuda" and torch.cuda.is_available():
        record.update(
            gpu=torch.cuda.get_device_name(), cuda=torch.version.cuda, cudnn_deterministic=torch.backends.cudnn.deterministic,
            cudnn_benchmark=torch.backends.cudnn.benchmark, tf32_matmul=torch.backends.cuda.matmul.allow_tf32,
            tf32_cudnn=torch.backends.cudnn.allow_tf32,
        )
    return record


# Fields whose difference can change results that are not pinned (device kernels, process count,
# library versions). Thread counts are not here: every op that depends on them fixes them itself.
COMPARED = ("device", "world_size", "default_dtype", "torch", "gpu", "cuda", "cudnn_deterministic", "tf32_matmul", "tf32_cudnn")


def numerics_mismatch(run_info_a: dict[str, Any], run_info_b: dict[str, Any]) -> list[str]:
    """How two runs' numerics differ ("device: cpu vs cuda"), from their run.json contents; [] when
    they match or a run predates the record (then nothing can be said)."""
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
    (True, "") when both run.json files carry a numerics record and it matches; else (False, the
    one line `check` prints). Across numerics classes, training makes other models from the same
    seed, so `check` gives trained cells the training-variance rule (harness.stats.twolevel). The
    one place that decides: later CPU fields (model, ISA, BLAS) belong in `COMPARED`/here."""
    if not baseline_info.get("numerics"):
        return False, ("the baseline's run.json has no numerics record, so whether it was computed like this run is unknown: "
                       "trained cells with one shared seed carry the baseline's training variance")
    if not run_info.get("numerics"):
        return False, ("the run's run.json has no numerics record: trained cells with one shared seed carry the baseline's "
                       "training variance")
    diffs = numerics_mismatch(run_info, baseline_info)
    if diffs:
        return False, (f"run and baseline were computed under different numerics (run vs baseline: {'; '.join(diffs)}): "
                       "trained cells with one shared seed carry the baseline's training variance")
    return True, ""


def mismatch_warning(run_dir: str | Path, baseline: str | Path) -> str | None:
    """One line for `check`: the run and its baseline were computed under different numerics."""
    diffs = numerics_mismatch(run_info_near(run_dir), run_info_near(baseline))
    if not diffs:
        return None
    return f"run and baseline were computed under different numerics (run vs baseline: {'; '.join(diffs)}): differences may come from that, not from the model"
