"""Test-wide settings: pinned CPU kernels, offline hub, one torch thread, no progress bars, an isolated cache."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
os.environ["GANRM_BENCH_PROGRESS"] = "0"

import pytest  # noqa: E402

import ganrm_bench  # noqa: E402, F401  (before numpy and torch: pins the CPU kernels, as the CLI does)

try:
    import torch

    torch.set_num_threads(1)
except ImportError:  # pragma: no cover
    pass


@pytest.fixture
def ctx(tmp_path):
    """A run context on a private store (CPU, seed 0)."""
    from ganrm_bench.harness.runtime.context import Context
    from ganrm_bench.harness.store.artifacts import Store

    return Context(store=Store(tmp_path / "store"), device="cpu", seed=0)


@pytest.fixture
def counters(tmp_path, monkeypatch):
    """A fresh folder where the toy plugins (tests/helpers/toy_plugins.py) count their calls."""
    d = tmp_path / "counters"
    d.mkdir()
    monkeypatch.setenv("TOY_COUNTER_DIR", str(d))
    return d


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    """Every test gets its own store unless it passes one explicitly."""
    monkeypatch.setenv("GANRM_BENCH_CACHE", str(tmp_path / "cache"))
