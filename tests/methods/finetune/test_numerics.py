"""Same key, same bytes (issue 16): a fine-tune's weights do not depend on the torch thread count
(where, without the pin, they would: a precondition, or the test skips), and under several processes
(data-parallel, not byte-identical) its key differs from one process's."""

import pytest
import torch

from ganrm_bench.harness.engine.nodes import Op
from ganrm_bench.methods.finetune import train as train_module
from ganrm_bench.methods.finetune.adapters import denoiser_for
from ganrm_bench.methods.finetune.train import PreferencePair, TrainConfig, finetune
from ganrm_bench.methods.ops import FinetuneOp
from tests.helpers.threads import require_thread_dependence
from tests.helpers.tiny_pipelines import mini_samples


def finetune_bytes(generator, data, cfg, out, threads: int) -> bytes:
    """The weights of a fine-tune with `threads` torch threads (0: as the caller set them)."""
    import shutil

    shutil.rmtree(out, ignore_errors=True)
    before = torch.get_num_threads()
    torch.set_num_threads(threads or before)
    try:
        finetune(denoiser_for(generator), data, cfg, out / "result", out / "work")
    finally:
        torch.set_num_threads(before)
    return (out / "result" / "weights.safetensors").read_bytes()


@pytest.mark.parametrize("objective", ["sft", "dpo"])
def test_finetune_weights_do_not_depend_on_the_thread_count(objective, mini_generator, tmp_path, ctx):
    samples = mini_samples(mini_generator, ctx, n=8)
    data = samples if objective == "sft" else [PreferencePair(a.prompt, a.image, b.image) for a, b in zip(samples[::2], samples[1::2])]
    cfg = TrainConfig(objective=objective, steps=3, batch_size=4, grad_accum=1, lr=1e-3, warmup_steps=0, beta=1000,
                      lora_targets=("to_q", "to_k", "to_v", "conv1", "conv2"))
    require_thread_dependence(lambda: finetune_bytes(mini_generator, data, cfg, tmp_path / "plain", 0), train_module,
                              what=f"a {objective} fine-tune")
    one = finetune_bytes(mini_generator, data, cfg, tmp_path / "one", 1)
    two = finetune_bytes(mini_generator, data, cfg, tmp_path / "two", 2)
    assert one == two


def test_finetune_key_carries_the_process_count_and_the_device(monkeypatch, tmp_path):
    """2 processes average gradients in another order than 1 (tests/methods/finetune/test_distributed.py:
    equal to 1e-5, not to the byte), so they make a different artifact; so does a CUDA run."""
    from ganrm_bench.harness.engine.builder import Builder
    from ganrm_bench.harness.runtime.context import Context
    from ganrm_bench.harness.spec.schema import Spec
    from ganrm_bench.harness.store.artifacts import Store

    def key(device: str, world: int) -> str:
        monkeypatch.setenv("WORLD_SIZE", str(world))
        monkeypatch.setenv("RANK", "0")
        b = Builder(Spec(name="x"), Context(store=Store(tmp_path), device=device), 0)
        return b.node(FinetuneOp(), {"train": {"steps": 1}}).key

    assert key("cpu", 1) != key("cpu", 2) != key("cuda", 2)
    assert key("cpu", 1) != key("cuda", 1)
    assert FinetuneOp.numerics_sensitive and FinetuneOp.data_parallel and not Op.data_parallel
