"""KL(tuned ‖ base) of the mini online-RL spec's fine-tunes along a stochastic sampler.

For every row of `online_rl.yaml` that samples a fine-tune (SFT, DPO, GRPO and its checkpoints),
the trajectory KL against the untuned generator (`methods.finetune.path_kl.finetune_path_kl`): the
tuned model's DDIM η = 1 trajectories on the eval prompts (one per prompt, seeded), both models'
Gaussian step means at each state, Σ_t ‖μ_tuned − μ_base‖²/(2σ_t²) over the noisy steps, averaged
over prompts with a 95 % bootstrap CI. The fine-tunes come from the store (trained there on first
use, as `run` would).

    .venv/bin/python benchmarks/mini/finetune_kl.py [--store DIR] [--seed 0] [--prompts 300]
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import ganrm_bench  # noqa: F401,I001  (first, before numpy and torch: pins the CPU kernels, as the CLI does)

MINI = Path(__file__).resolve().parent


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--store", default=str(Path.home() / ".cache" / "ganrm-bench"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--prompts", type=int, default=300)
    ap.add_argument("--rows", default="sft,dpo,grpo5,grpo10,grpo15,grpo20,grpo")
    args = ap.parse_args()

    import torch

    from ganrm_bench.harness.engine.builder import Builder
    from ganrm_bench.harness.engine.evaluator import Evaluator
    from ganrm_bench.harness.runtime.context import Context
    from ganrm_bench.harness.runtime.numerics import fixed_threads
    from ganrm_bench.harness.runtime.seeds import derive_seed
    from ganrm_bench.harness.spec.load import load_spec
    from ganrm_bench.harness.store.artifacts import Store
    from ganrm_bench.methods.finetune.adapters import denoiser_for
    from ganrm_bench.methods.finetune.path_kl import finetune_path_kl

    spec = load_spec(MINI / "online_rl.yaml")
    ctx = Context(store=Store(args.store))
    b, ev = Builder(spec, ctx, args.seed), Evaluator(ctx)
    base = ev.value(b.generator("mini"))
    prompts = list(ev.value(b.prompts("eval")))[: args.prompts]
    texts, ids = [p.text for p in prompts], [p.id for p in prompts]
    seeds = [derive_seed("finetune-kl", args.seed, p.id) for p in prompts]
    model = denoiser_for(base)
    print(f"seed {args.seed}, {len(prompts)} eval prompts, DDIM η = 1, {base.params.steps} steps")
    print("row      KL [95% CI]               √KL")
    for row in args.rows.split(","):
        tuned_gen = ev.value(b.method(row).inputs["generator"])  # the pool's generator: the fine-tune applied
        with fixed_threads(1):
            kl = finetune_path_kl(model, base, tuned_gen.unet, base.unet, texts, seeds, ids, eta=1.0)
        print(f"{row:8s} {kl.value:8.3f} [{kl.ci_low:.3f}, {kl.ci_high:.3f}]   {math.sqrt(max(kl.value, 0)):.3f}")
        del tuned_gen
        torch.cuda.empty_cache() if torch.cuda.is_available() else None


if __name__ == "__main__":
    main()
