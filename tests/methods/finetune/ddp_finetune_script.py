"""Run by tests/methods/finetune/test_distributed.py under torchrun: fine-tune the mini generator (DPO, LoRA) and write
the result to argv[1]; argv[2] is the per-process batch, argv[3] the mini weights file, argv[4] (optional)
"precompute" to precompute the encodings."""

import sys
from pathlib import Path

import torch

torch.set_num_threads(1)

from ganrm_bench.harness.plugins.base import Prompt, SampleRequest  # noqa: E402
from ganrm_bench.harness.runtime.context import Context  # noqa: E402
from ganrm_bench.harness.store.artifacts import Store  # noqa: E402
from ganrm_bench.methods.finetune.adapters import denoiser_for  # noqa: E402
from ganrm_bench.methods.finetune.train import PreferencePair, TrainConfig, finetune  # noqa: E402
from ganrm_bench.mini.generator import MiniDiffusion  # noqa: E402


def main(out: str, batch: int, weights: str, precompute: bool = False) -> None:
    g = MiniDiffusion(weights=weights, steps=3, device="cpu")
    ctx = Context(store=Store(Path(out) / "store"))
    reqs = [SampleRequest(Prompt(f"p{i}", f"a handwritten digit {i % 10}"), 0, 50 + i) for i in range(8)]
    ims = g.generate(reqs, ctx)
    pairs = [PreferencePair(reqs[i].prompt.text, ims[i], ims[i + 4]) for i in range(4)]
    cfg = TrainConfig(objective="dpo", beta=100, steps=2, batch_size=batch, grad_accum=2, lr=1e-3, warmup_steps=0,
                      lora_targets=("to_q", "to_k", "conv1"), empty_prompt_fraction=0.25,
                      precompute_encodings=precompute)
    finetune(denoiser_for(g), pairs, cfg, Path(out) / "result", Path(out) / "work")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3], precompute=sys.argv[4:] == ["precompute"])
