"""KL(tuned ‖ base) of the mini online-RL spec's fine-tunes along a stochastic sampler.

For every row of `online_rl.yaml` that samples a fine-tune (SFT, DPO, GRPO and its checkpoints),
the trajectory KL against the untuned generator: the artifact the over-optimisation curves put on
their x axis (`methods.trajectory_kl`, the node the fine-tune's op gives through `Op.divergence`),
so these values are the ones in a run's overoptimisation.csv and come from the same store entries:
the tuned model's DDIM η = 1 trajectories on the eval prompts (one per prompt, seeded), both models'
Gaussian step means at each state, Σ_t ‖μ_tuned − μ_base‖²/(2σ_t²) over the noisy steps, averaged
over prompts with a 95 % bootstrap CI. The fine-tunes come from the store (trained there on first
use, as `run` would).

    .venv/bin/python benchmarks/mini/finetune_kl.py [--store DIR] [--seed 0]
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
    ap.add_argument("--rows", default="sft,dpo,grpo5,grpo10,grpo15,grpo20,grpo")
    args = ap.parse_args()

    from ganrm_bench.harness.diagnostics.training_curves import training_point
    from ganrm_bench.harness.engine.builder import Builder
    from ganrm_bench.harness.engine.evaluator import Evaluator
    from ganrm_bench.harness.runtime.context import Context
    from ganrm_bench.harness.spec.load import load_spec
    from ganrm_bench.harness.store.artifacts import Store

    spec = load_spec(MINI / "online_rl.yaml")
    ctx = Context(store=Store(args.store))
    b, ev = Builder(spec, ctx, args.seed), Evaluator(ctx)
    print(f"seed {args.seed}: KL(row ‖ base), DDIM η = 1, one trajectory per eval prompt")
    print("row      KL [95% CI]               √KL")
    for row in args.rows.split(","):
        kl = ev.value(training_point(b.method(row)).divergence)
        print(f"{row:8s} {kl['kl']:8.3f} [{kl['ci_low']:.3f}, {kl['ci_high']:.3f}]   {math.sqrt(max(kl['kl'], 0)):.3f}")


if __name__ == "__main__":
    main()
