"""GPU defaults, checked on the CPU: `dtype: auto` resolves per device (and keys as resolved, so CPU
keys are unchanged), TF32 is a policy of the CUDA numerics class and of generation/fine-tuning
only, and a GPU out-of-memory error becomes a UserError naming the exact batch-size override."""

from __future__ import annotations

import pytest
import torch

from ganrm_bench.harness.errors import UserError
from ganrm_bench.harness.runtime import numerics
from ganrm_bench.harness.runtime.oom import OutOfMemory, out_of_memory_hint
from ganrm_bench.methods.generators.diffusers_image import DiffusersImageGenerator
from ganrm_bench.methods.generators.loading import resolve_dtype
from tests.helpers import HELPERS

CORE = HELPERS


@pytest.mark.parametrize("bf16,expected", [(True, "bfloat16"), (False, "float16")])
def test_auto_dtype_on_cuda(monkeypatch, bf16, expected):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: bf16)
    assert resolve_dtype("auto", "cuda:0") == expected
    assert resolve_dtype("float32", "cuda:0") == "float32"  # the spec says otherwise: kept


def test_auto_dtype_on_cpu_and_mps():
    assert resolve_dtype("auto", "cpu") == "float32" and resolve_dtype("auto", "mps") == "float32"
    assert resolve_dtype("float16", "cpu") == "float16"


def test_auto_keys_as_resolved(tmp_path):
    """On a CPU `auto` keys exactly as float32 did, so no CPU artifact is recomputed by the new default."""
    ref = str(tmp_path / "pipe")
    (tmp_path / "pipe").mkdir()
    auto = DiffusersImageGenerator({"model": ref}).fingerprint()
    fp32 = DiffusersImageGenerator({"model": ref, "dtype": "float32"}).fingerprint()
    assert auto == fp32 and auto["params"]["dtype"] == "float32"
    gpu = DiffusersImageGenerator({"model": ref, "device": "cuda:0"})
    gpu.device = lambda ctx: "cuda:0"  # a CUDA run on a machine without one
    assert gpu.dtype_name(None) in ("bfloat16", "float16") and gpu.fingerprint()["params"]["dtype"] == gpu.dtype_name(None)


def test_tf32_is_in_the_cuda_numerics_class(monkeypatch):
    monkeypatch.delenv(numerics.TF32_ENV, raising=False)
    assert numerics.numerics_class("cuda") == "cuda+tf32" and numerics.numerics_class("cuda", 2) == "cuda+tf32×2"
    assert "tf32" not in numerics.numerics_class("cpu")  # TF32 is a CUDA policy
    monkeypatch.setenv(numerics.TF32_ENV, "0")
    assert numerics.numerics_class("cuda") == "cuda"


def test_tf32_context_leaves_cpu_runs_alone(monkeypatch):
    before = torch.backends.cuda.matmul.allow_tf32
    with numerics.tf32_where_safe("cpu"):
        assert torch.backends.cuda.matmul.allow_tf32 == before
    with numerics.tf32_where_safe("cuda:0"):  # sets the flags (no kernel runs), restores them after
        assert torch.backends.cuda.matmul.allow_tf32 is True
    assert torch.backends.cuda.matmul.allow_tf32 == before


def test_out_of_memory_hint_names_the_override():
    with pytest.raises(OutOfMemory) as exc:
        with out_of_memory_hint("generating sdxl×eval×1", 4, "--set generators.sdxl.batch_size={n}", device="cuda:0"):
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
    assert isinstance(exc.value, UserError)
    assert "ran out of memory on cuda:0 at batch 4" in str(exc.value) and "--set generators.sdxl.batch_size=2" in exc.value.hint
    with pytest.raises(ValueError):  # other errors pass through unchanged
        with out_of_memory_hint("x", 4, "--set a={n}"):
            raise ValueError("not memory")


def test_a_pool_that_runs_out_of_memory_fails_its_cells_with_the_override(tmp_path, monkeypatch):
    from ganrm_bench.harness.engine.runner import run_spec
    from ganrm_bench.harness.plugins.registry import REGISTRIES
    from ganrm_bench.harness.runtime.context import Context
    from ganrm_bench.harness.spec.load import load_spec
    from ganrm_bench.harness.store.artifacts import Store

    monkeypatch.setenv("TOY_COUNTER_DIR", str(tmp_path))

    def oom(self, requests, ctx):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    spec = load_spec(CORE / "toy_spec.yaml")  # registers the toy plugins
    monkeypatch.setattr(REGISTRIES["generator"].get("toy_pattern"), "generate", oom)
    out = run_spec(spec, Context(store=Store(tmp_path / "s"), batch_size=4))
    assert out.failures and all("--set generators.gen.batch_size=2 (or --batch-size 2)" in f for f in out.failures)
