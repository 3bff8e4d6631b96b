"""Scorer-side diagnostics that choose smc_search's η, resample steps and λ in the mini world.

Nothing here looks at FID, KID or alignment, nor at the eval prompts: on the *train* prompts
(seed 1, disjoint from eval), K unsteered particles per prompt (λ = 0, no resampling) are denoised
with GAN-RM scoring x̂0 after every step, at several η. Printed per η: the mean GAN-RM reward of the
final samples and of the best of K (what the value function says about the sampler), and per step
the within-prompt standard deviation of the x̂0 reward and its within-prompt Spearman correlation
with the final reward (how well x̂0's reward at that step predicts where a particle ends).

    .venv/bin/python benchmarks/mini/smc_diagnostics.py [--store DIR] [--prompts 60] [--particles 8]

The trained GAN-RM comes from the store (trained there on first use, as `run` would).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

import ganrm_bench  # noqa: F401,I001  (first, before numpy and torch: pins the CPU kernels, as the CLI does)

MINI = Path(__file__).resolve().parent


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--store", default=str(Path.home() / ".cache" / "ganrm-bench"))
    ap.add_argument("--prompts", type=int, default=60)
    ap.add_argument("--particles", type=int, default=8)
    ap.add_argument("--etas", default="0,0.5,1")
    args = ap.parse_args()

    from scipy.stats import spearmanr

    from ganrm_bench.harness.engine.builder import Builder
    from ganrm_bench.harness.engine.evaluator import Evaluator
    from ganrm_bench.harness.plugins.base import SampleRequest
    from ganrm_bench.harness.runtime.context import Context
    from ganrm_bench.harness.runtime.seeds import derive_seed
    from ganrm_bench.harness.spec.load import load_spec
    from ganrm_bench.harness.store.artifacts import Store

    spec = load_spec(MINI / "scaling.yaml")
    ctx = Context(store=Store(args.store))
    b, ev = Builder(spec, ctx, 0), Evaluator(ctx)
    scorer, generator = ev.value(b.scorer("ganrm")), ev.value(b.generator("mini"))
    prompts = list(ev.value(b.prompts("train")))[: args.prompts]
    k, steps = args.particles, generator.params.steps
    requests = [SampleRequest(p, j, derive_seed("smc-diagnostics", p.id, j)) for p in prompts for j in range(k)]
    noise = generator.initial_noise(requests)
    for eta in (float(e) for e in args.etas.split(",")):
        rewards: list[np.ndarray] = []

        def record(step, images):
            rewards.append(np.asarray(scorer.score(images, [None] * len(images), ctx), dtype=np.float64))

        final = generator.denoise_particles(requests, noise, ctx, at=range(steps - 1), on_x0=record, eta=eta)
        r_final = np.asarray(scorer.score(final, [None] * len(final), ctx), dtype=np.float64).reshape(len(prompts), k)
        print(f"η = {eta}: final reward mean {r_final.mean():.4f}, best of {k} mean {r_final.max(axis=1).mean():.4f}, "
              f"within-prompt sd {r_final.std(axis=1).mean():.4f}")
        for step, r in enumerate(rewards):
            r = r.reshape(len(prompts), k)
            rho = np.nanmean([spearmanr(r[i], r_final[i]).statistic for i in range(len(prompts))])
            print(f"  step {step}: x̂0 reward mean {r.mean():.4f}, within-prompt sd {r.std(axis=1).mean():.4f}, "
                  f"Spearman with final {rho:+.2f}")


if __name__ == "__main__":
    main()
