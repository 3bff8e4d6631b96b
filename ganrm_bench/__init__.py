"""ganrm-bench: train, apply and judge reward models for visual generative models (GAN-RM and friends).

The installed import package. The repository keeps its top-level folders (harness/, methods/,
metrics/, mini/); setuptools maps them to `ganrm_bench.harness`, `ganrm_bench.methods`, ...
"""

from importlib.metadata import PackageNotFoundError, version as _version

try:
    __version__ = _version("ganrm-bench")
except PackageNotFoundError:  # pragma: no cover - running from a source tree that was never installed
    __version__ = "0+unknown"
