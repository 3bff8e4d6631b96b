"""CPU numerics that travel (harness.runtime.cpu_pin): under the pin, the mini GAN-RM fit, short SFT
and DPO fine-tunes, sampling and FID give the same bytes in child processes that emulate other CPU
classes (ATen / oneDNN / OpenBLAS / numpy capped at other instruction sets), and different bytes
without it, so the test can fail. What one machine cannot emulate (MKL on another vendor, oneDNN's
cache-size blocking — oneDNN is off under the pin — ARM, GPUs) is listed in docs/reproducibility.md."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from ganrm_bench.harness.runtime import cpu_pin
from tests.helpers import REPO

PROBE = REPO / "benchmarks" / "perf" / "cpu_pin_probe.py"
EMULATION_VARS = ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "MKL_CBWR", "OPENBLAS_CORETYPE", "NPY_DISABLE_CPU_FEATURES",
                  cpu_pin.ENV_SWITCH)
#: emulated CPU classes: the environment the libraries would see on such a CPU ("native" = this one)
CLASSES = {
    "native": {},
    "haswell": {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "OPENBLAS_CORETYPE": "Haswell",
                "NPY_DISABLE_CPU_FEATURES": "X86_V4 AVX512_ICL AVX512_SPR"},
    "nehalem": {"ATEN_CPU_CAPABILITY": "default", "ONEDNN_MAX_CPU_ISA": "SSE41", "OPENBLAS_CORETYPE": "Nehalem",
                "NPY_DISABLE_CPU_FEATURES": "X86_V3 X86_V4 AVX512_ICL AVX512_SPR"},
}
v3_only = pytest.mark.skipif(cpu_pin.supported_level() != "v3", reason="the pin's level (x86-64-v3: AVX2 + FMA) is not available here")


def probe(cls: str, *, pinned: bool, only: str = "pool,rm,sft,dpo,fid") -> dict:
    env = {k: v for k, v in os.environ.items() if k not in EMULATION_VARS}
    env.update(CLASSES[cls], OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", HF_HUB_OFFLINE="1")
    if not pinned:
        env[cpu_pin.ENV_SWITCH] = "0"
    out = subprocess.run([sys.executable, str(PROBE), "--only", only], env=env, capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@v3_only
def test_this_process_runs_pinned():
    """tests/conftest.py imports ganrm_bench before numpy and torch, as the CLI's entry point does."""
    st = cpu_pin.status()
    assert st["pinned"], st
    assert cpu_pin.cpu_class() == "cpu-pin1-v3" and cpu_pin.unpinned_reason() is None


def test_a_process_that_loaded_numpy_first_is_keyed_to_its_machine():
    """A notebook that imported numpy before ganrm_bench cannot pin OpenBLAS: its CPU class names this
    machine (never served to another), and the reason says what to do."""
    code = ("import numpy, ganrm_bench\nfrom ganrm_bench.harness.runtime import cpu_pin\n"
            "print(cpu_pin.cpu_class()); print(cpu_pin.unpinned_reason())")
    env = {k: v for k, v in os.environ.items() if k not in EMULATION_VARS}
    lines = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout.splitlines()
    if cpu_pin.supported_level() is None:
        assert lines[0].startswith("cpu-unpinned-")
        return
    assert lines[0].startswith("cpu-unpinned-") and "import ganrm_bench first" in lines[1]


@pytest.mark.slow
@v3_only
def test_emulated_cpu_classes_give_identical_bytes_pinned_and_different_bytes_unpinned():
    unpinned = {cls: probe(cls, pinned=False) for cls in ("native", "nehalem")}
    assert not any(unpinned[c]["pinned"] for c in unpinned)
    differ = [k for k in unpinned["native"]["hashes"] if unpinned["native"]["hashes"][k] != unpinned["nehalem"]["hashes"][k]]
    assert {"pool", "rm", "sft", "dpo"} <= set(differ), unpinned  # the precondition: the emulation does move bytes
    pinned = {cls: probe(cls, pinned=True) for cls in ("native", "haswell", "nehalem")}
    assert all(p["pinned"] and p["class"] == "cpu-pin1-v3" for p in pinned.values()), pinned
    first = pinned["native"]["hashes"]
    assert all(p["hashes"] == first for p in pinned.values()), pinned
    assert first != unpinned["native"]["hashes"]  # pinned bytes are another class's: hence its own keys
