"""CPU numerics that travel: pin the kernels that pick their code path by CPU, so an artifact computed
on one x86-64 machine is byte-identical to the same computation on another (docs/reproducibility.md).

Five libraries choose kernels by CPU (measured with torch 2.14.1 / MKL 2024.2 / oneDNN 3.12 and
numpy 2.4 + OpenBLAS in benchmarks/perf/cpu_pin_probe.py, on emulated CPU classes):

| setting | library, ops | pinned to (level "v3") | read |
|---|---|---|---|
| `ATEN_CPU_CAPABILITY` | ATen's vectorized kernels: softmax, norms, SiLU, AdamW | `avx2` | torch's first CPU op |
| `MKL_CBWR` | MKL sgemm: Linear, im2col convolutions, attention | `COMPATIBLE` | MKL's first call |
| `torch.backends.mkldnn` | oneDNN convolutions and GELU (bits only promised on identical hardware) | off | every op |
| `torch.backends.nnpack` | NNPACK no-grad convolutions (AVX2-only library) | off | every op |
| `OPENBLAS_CORETYPE` | numpy/scipy's OpenBLAS: FID's sqrtm / eigh | `Haswell` | when numpy / scipy load |

`MKL_CBWR=COMPATIBLE` is the only MKL branch honoured on every vendor (Intel's CNR guide: "on non-Intel
CPUs, only AUTO and COMPATIBLE are supported"). Level "v3" needs AVX2 + FMA (Haswell / Zen 1 or
later); an older x86-64 CPU gets level "v2" (ATen `default`, OpenBLAS `Nehalem`), identical across all
classes but not to v3, so it is another numerics class.

The environment half must be set before numpy is imported and before torch's first op: `import
ganrm_bench` does it (`pin_environment`), so the CLI, `python -m ...` and the tests' conftest are pinned;
the in-process half (`activate`) runs when the harness first needs torch. A process that cannot be
pinned (a notebook whose numpy or torch ran first, or `GANRM_BENCH_CPU_PIN=0`) still works: its CPU
artifacts get a class naming this machine (`unpinned_class`), so they are never served to another one.
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import os
import platform
from functools import lru_cache
from pathlib import Path
from typing import Any

from threadpoolctl import threadpool_info

PIN_VERSION = "1"
ENV_SWITCH = "GANRM_BENCH_CPU_PIN"  # "0" turns the pin off; set by pin_environment to the level it applied
LEVELS: dict[str, dict[str, str]] = {
    "v3": {"ATEN_CPU_CAPABILITY": "avx2", "MKL_CBWR": "COMPATIBLE", "OPENBLAS_CORETYPE": "Haswell"},
    "v2": {"ATEN_CPU_CAPABILITY": "default", "MKL_CBWR": "COMPATIBLE", "OPENBLAS_CORETYPE": "Nehalem"},
}
ATEN_NAMES = {"avx2": "AVX2", "default": "DEFAULT", "avx512": "AVX512"}
MKL_CBWR_BRANCH, MKL_CBWR_COMPATIBLE = 1, 3  # mkl_cbwr_get(MKL_CBWR_BRANCH): 1 off, 2 AUTO, 3 COMPATIBLE
_OFF = {"0", "false", "no", "off"}
#: CPU flags that decide which kernels libraries pick (recorded; the rest of /proc/cpuinfo's flags is noise)
ISA_FLAGS = ("sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512_bf16", "avx512_vnni", "amx_tile")


# -- the CPU ------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def cpu_info() -> dict[str, Any]:
    """Vendor, model name, family/model/stepping and ISA flags (Linux /proc/cpuinfo; platform elsewhere)."""
    info: dict[str, Any] = {"machine": platform.machine(), "vendor": None, "model_name": platform.processor() or None}
    flags: set[str] = set()
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        text = ""
    for line in text.splitlines():
        key, _, value = (s.strip() for s in line.partition(":"))
        if key == "vendor_id" and info["vendor"] is None:
            info["vendor"] = value
        elif key == "model name" and not info.get("_model_seen"):
            info["model_name"], info["_model_seen"] = value, True
        elif key in ("cpu family", "model", "stepping") and key not in info:
            info[key] = value
        elif key == "flags" and not flags:
            flags = set(value.split())
    info.pop("_model_seen", None)
    info["isa_flags"] = [f for f in ISA_FLAGS if f in flags]
    info["caches"] = cache_sizes()
    return info


def cache_sizes() -> dict[str, str]:
    """L1d/L2/L3 sizes of cpu0 (MKL outside CNR and oneDNN size their blocks by them)."""
    out = {}
    base = Path("/sys/devices/system/cpu/cpu0/cache")
    for idx in sorted(base.glob("index*")) if base.is_dir() else []:
        try:
            level, kind, size = ((idx / f).read_text().strip() for f in ("level", "type", "size"))
        except OSError:
            continue
        if kind in ("Data", "Unified"):
            out[f"L{level}"] = size
    return out


def supported_level() -> str | None:
    """The pin level this CPU runs: "v3" (AVX2 + FMA + F16C + BMI2), "v2" (SSE4.2 + POPCNT), None (not x86-64)."""
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return None
    try:
        flags = set(Path("/proc/cpuinfo").read_text().split("flags", 1)[1].split("\n", 1)[0].split())
    except (OSError, IndexError):
        return None
    if {"avx", "avx2", "fma", "f16c", "bmi2"} <= flags:
        return "v3"
    return "v2" if {"sse4_2", "popcnt"} <= flags else None


def requested() -> bool:
    """Whether the pin is wanted (on unless GANRM_BENCH_CPU_PIN is 0/false/no/off)."""
    return os.environ.get(ENV_SWITCH, "").strip().lower() not in _OFF


# -- pinning ------------------------------------------------------------------------------------


def pin_environment() -> str | None:
    """Set the pinned environment of this CPU's level, overriding what the environment says (a pin);
    returns the level, or None when the pin is off or this CPU has no level. Call it before numpy is
    imported and before torch's first op (`import ganrm_bench` does); it imports neither."""
    if not requested():
        return None
    level = supported_level()
    if level is None:
        return None
    os.environ.update(LEVELS[level])
    os.environ[ENV_SWITCH] = f"v{PIN_VERSION}-{level}"
    return level


def pinned_level() -> str | None:
    """The level pin_environment applied in this process (or a parent passed on), else None."""
    value = os.environ.get(ENV_SWITCH, "")
    level = value.rpartition("-")[2] if value.startswith(f"v{PIN_VERSION}-") else None
    return level if level in LEVELS else None


_ACTIVE = False


def activate() -> None:
    """The in-process half of the pin (oneDNN and NNPACK off; MKL's COMPATIBLE branch if MKL has not
    started yet): every time torch ops are about to run for the harness. Cheap after the first call."""
    global _ACTIVE
    if pinned_level() is None:
        return
    import torch

    torch.backends.mkldnn.enabled = False
    torch.backends.nnpack.set_flags(False)
    if not _ACTIVE:
        _ACTIVE = True
        set_branch = _mkl("mkl_serv_cbwr_set")  # MKL_CBWR is read at MKL's first call; this covers one not started yet
        if set_branch is not None:
            set_branch(MKL_CBWR_COMPATIBLE)


def _mkl(name: str):
    import torch

    try:
        lib = ctypes.CDLL(str(Path(torch.__file__).parent / "lib" / "libtorch_cpu.so"))  # already loaded; MKL is linked in
    except OSError:
        return None
    return getattr(lib, name, None)


def mkl_version() -> str | None:
    fn = _mkl("MKL_Get_Version_String")
    if fn is None:
        return None
    buf = ctypes.create_string_buffer(256)
    fn(buf, 256)
    return buf.value.decode(errors="replace").strip()


def mkl_branch() -> int | None:
    """MKL's conditional-numerical-reproducibility branch (1 off, 2 AUTO, 3 COMPATIBLE); None without MKL.
    Reading it starts MKL's CNR state: call `activate` first."""
    get = _mkl("mkl_serv_cbwr_get")
    return None if get is None else int(get(MKL_CBWR_BRANCH))


def openblas_cores() -> list[str]:
    """The core each OpenBLAS loaded in this process chose (numpy's, scipy's)."""
    return sorted({str(d.get("architecture")) for d in threadpool_info() if d.get("internal_api") == "openblas"})


def status() -> dict[str, Any]:
    """Whether this process's CPU numerics are pinned, check by check. Imports torch (and activates the pin)."""
    import torch

    activate()
    level = pinned_level()
    want = LEVELS.get(level or "", {})
    checks = {
        "aten_capability": (ATEN_NAMES.get(want.get("ATEN_CPU_CAPABILITY", ""), "?"), torch.backends.cpu.get_cpu_capability()),
        "mkldnn_enabled": (False, bool(torch.backends.mkldnn.enabled)),
        "nnpack_enabled": (False, bool(torch._C._get_nnpack_enabled())),
    }
    branch = mkl_branch()
    if branch is not None:
        checks["mkl_cbwr_branch"] = (MKL_CBWR_COMPATIBLE, branch)
    for i, core in enumerate(openblas_cores()):
        checks[f"openblas_core_{i}"] = (want.get("OPENBLAS_CORETYPE", "?"), core)
    ok = level is not None and all(w == h for w, h in checks.values())
    return {"level": level, "pinned": ok, "checks": {k: {"want": w, "have": h} for k, (w, h) in checks.items()}}


def describe_machine() -> dict[str, Any]:
    """For records (run.json, manifests): the CPU and the path each library takes in this process."""
    import torch

    st = status()
    cpu = cpu_info()
    return {"cpu_vendor": cpu["vendor"], "cpu_model": cpu["model_name"], "cpu_family_model": f"{cpu.get('cpu family')}/{cpu.get('model')}",
            "isa_flags": cpu["isa_flags"], "caches": cpu["caches"], "aten_capability": torch.backends.cpu.get_cpu_capability(),
            "blas": f"MKL {mkl_version() or '?'} (CNR branch {mkl_branch()})", "openblas_cores": openblas_cores(),
            "onednn": bool(torch.backends.mkldnn.enabled), "cpu_pin": st["level"] if st["pinned"] else "off"}


@lru_cache(maxsize=1)
def cpu_class() -> str:
    """The numerics class of this process's CPU work: `cpu-pin1-v3` (or `-v2`) when pinned, the same on
    every x86-64 machine of that level; otherwise one naming this machine (`unpinned_class`). Decided
    once per process (`cpu_class.cache_clear()` to ask again)."""
    st = status()
    return f"cpu-pin{PIN_VERSION}-{st['level']}" if st["pinned"] else unpinned_class()


def unpinned_class() -> str:
    """A class only this machine and library stack share: a hash of the CPU and the kernel paths in use."""
    import torch

    cpu = cpu_info()
    what = {"cpu": [cpu["vendor"], cpu["model_name"], cpu.get("cpu family"), cpu.get("model"), cpu["isa_flags"], cpu["caches"]],
            "aten": torch.backends.cpu.get_cpu_capability(), "mkldnn": bool(torch.backends.mkldnn.enabled),
            "mkl": [mkl_version(), mkl_branch()], "openblas": openblas_cores(), "torch": torch.__version__}
    return "cpu-unpinned-" + hashlib.sha256(json.dumps(what, sort_keys=True, default=str).encode()).hexdigest()[:12]


def unpinned_reason(st: dict[str, Any] | None = None) -> str | None:
    """Why this process's CPU kernels are not pinned, in one line; None when they are."""
    st = st or status()
    if st["pinned"]:
        return None
    if not requested():
        return f"{ENV_SWITCH}=0: CPU kernels are not pinned; CPU artifacts are keyed to this machine"
    if supported_level() is None:
        return f"no pin level for this CPU ({platform.machine()}): CPU artifacts are keyed to this machine"
    off = ", ".join(f"{k} is {v['have']} (pinned: {v['want']})" for k, v in st["checks"].items() if v["want"] != v["have"])
    return (f"CPU kernels not pinned ({off}): numpy or torch ran before ganrm_bench was imported; import ganrm_bench "
            "first to share CPU artifacts with other machines (this run's are keyed to this machine)")
