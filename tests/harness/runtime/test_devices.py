"""A device per rank: "auto" resolves to this process's own GPU (cuda:LOCAL_RANK) and becomes the
current device; checked with a mocked multi-GPU CUDA, since these machines have no GPU."""

import pytest
import torch

from ganrm_bench.harness.errors import UserError
from ganrm_bench.harness.runtime.devices import process_device, resolve_device


@pytest.fixture
def gpus(monkeypatch):
    """Pretend CUDA is there with `n` GPUs; record set_device calls."""
    current = []

    def setup(n: int, local_rank: int | None):
        monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: n)
        monkeypatch.setattr(torch.cuda, "set_device", lambda d: current.append(str(d)))
        if local_rank is None:
            monkeypatch.delenv("LOCAL_RANK", raising=False)
        else:
            monkeypatch.setenv("LOCAL_RANK", str(local_rank))
        return current

    return setup


def test_auto_and_bare_cuda_resolve_to_the_ranks_own_gpu(gpus):
    gpus(2, 1)
    assert resolve_device("auto") == "cuda:1"
    assert resolve_device("cuda") == "cuda:1"  # a bare "cuda" would mean GPU 0 (or whatever is current)
    assert resolve_device("cuda:0") == "cuda:0" and resolve_device("cpu") == "cpu"  # explicit ones are kept


def test_process_device_sets_the_current_device(gpus):
    current = gpus(4, 3)
    assert process_device("auto") == "cuda:3"
    assert current == ["cuda:3"]


def test_single_visible_gpu_per_process_is_cuda_0(gpus):
    gpus(1, 2)  # e.g. SLURM giving each task its own CUDA_VISIBLE_DEVICES
    assert resolve_device("auto") == "cuda:0"


def test_more_ranks_than_gpus_is_a_clear_error(gpus):
    gpus(2, 2)
    with pytest.raises(UserError, match="LOCAL_RANK=2.*only 2 GPUs"):
        resolve_device("auto")


def test_no_cuda_is_cpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert resolve_device("auto") == "cpu"
    assert process_device("auto") == "cpu"


def test_a_context_holds_the_resolved_device(gpus, tmp_path):
    from ganrm_bench.harness.runtime.context import Context
    from ganrm_bench.harness.store.artifacts import Store

    gpus(2, 1)
    assert Context(store=Store(tmp_path), device="cuda").device == "cuda:1"  # metric models are cached under it
