"""ganrm-bench: train, apply and judge reward models for visual generative models (GAN-RM and friends).

The installed import package. The repository keeps its top-level folders (harness/, methods/,
metrics/, mini/); setuptools maps them to `ganrm_bench.harness`, `ganrm_bench.methods`, ...

The public API is the names in `__all__` (docs/api.md); they import lazily, so `import ganrm_bench`
stays light (no torch, no pandas). Importing it pins the CPU numerics (harness.runtime.cpu_pin).
Everything else is internal and may change between versions.
"""

import importlib
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _version

from ganrm_bench.harness.runtime.cpu_pin import pin_environment as _pin_environment

# First of all, before numpy loads and before torch's first op: the CPU kernels that pick their code
# path by CPU are pinned, so CPU artifacts travel between machines (docs/reproducibility.md;
# GANRM_BENCH_CPU_PIN=0 turns it off, and CPU artifacts are then keyed to this machine).
_pin_environment()

try:
    __version__ = _version("ganrm-bench")
except PackageNotFoundError:  # pragma: no cover - running from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = ["run", "load_run", "check", "compare", "plan", "baseline", "Run", "GanRM", "__version__"]

_LAZY = {
    "run": "ganrm_bench.api",
    "load_run": "ganrm_bench.api",
    "check": "ganrm_bench.api",
    "compare": "ganrm_bench.api",
    "plan": "ganrm_bench.api",
    "baseline": "ganrm_bench.api",
    "Run": "ganrm_bench.api",
    "GanRM": "ganrm_bench.methods.ganrm.model",
}


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'ganrm_bench' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
