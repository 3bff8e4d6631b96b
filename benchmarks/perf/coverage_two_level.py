"""Coverage of the intervals a trained row's FID Δ gets, in a world that retrains: why tables, `check`
and the claims use a t across seeds of per-seed paired differences (harness.stats.twolevel).

The world (all Gaussian, 64-d features, FID against a fixed reference of 1,000 real samples):

- real data ~ N(0, I); prompt p has a mean c_p ~ N(0, 0.25·I) shared by every row sampled on it;
  the generator draws c_p + m + e, e ~ N(0, 0.75·I), with a bias m (‖m‖ = 3) that FID sees.
- "training" a reward model (one per seed): the mean-difference direction w = mean(10 real samples
  drawn from a 200-sample PPD) − mean(10 fresh generator samples); a small training set, so w
  varies from seed to seed as GAN-RM does (the SD of a seed's Δ is about twice its within-seed se;
  2.8× for DiffusionDPO in the mini world).
- rows on 1,000 eval prompts (prompt blocks: 10, by a hash of the prompt, so of unequal sizes):
  `base` = the first of K = 8 candidates, `rm` = best of K by w·x. Δ = FID(rm) − FID(base).
- a seed redraws the training set and the candidates; the prompts and the reference stay (they are
  the benchmark), so the target of every interval is the expected Δ over seeds on this prompt set.

Per replication (a run of S = 3 seeds) it computes, with the project's own code (metrics.frechet,
harness.stats): each seed's paired jackknife Δ, the pooled Δ over the seeds' union (the old
interval), and the two-level interval (pooled Δ ± t₂·sd(Δ_s)/√3). Coverage counts how often each
95 % interval holds the truth, the mean of the pooled (or per-seed) Δ over all replications of a
world. It also runs `check`'s cross-machine case: an unchanged commit whose reward model trained to
another draw (same candidates, one seed) against a three-seed baseline, with margin 0 at one-sided
95 %: how often the conditional rule and the training-variance rule call it a regression.

    .venv/bin/python benchmarks/perf/coverage_two_level.py [--worlds 4] [--replications 250]

tests/harness/stats/test_two_level_coverage.py runs it small; docs/statistics.md has the numbers.
"""

from __future__ import annotations

import argparse
import math
import time
from dataclasses import dataclass, field

import numpy as np

import ganrm_bench  # noqa: F401,I001  (first, before numpy and torch: pins the CPU kernels, as the CLI does)
from ganrm_bench.harness.stats.gate import regression_test
from ganrm_bench.harness.stats.paired import Difference, Units, difference
from ganrm_bench.harness.stats.twolevel import across_seeds, training_variance, with_training_variance
from ganrm_bench.metrics.frechet import BlockStats, GaussianStats, block_jackknife, frechet_with_sqrt_ref, psd_sqrt


@dataclass
class World:
    """One benchmark: its prompts (means and blocks), the reference, the PPD and the generator's bias."""

    dim: int = 64
    prompts: int = 1000
    k: int = 8
    blocks: int = 10
    n_train: int = 10
    bias: float = 3.0  # ‖m‖, spread over the first four feature dimensions
    rng: np.random.Generator = field(default_factory=np.random.default_rng)

    def __post_init__(self) -> None:
        d = self.dim
        self.centres = self.rng.normal(0.0, 0.5, (self.prompts, d))
        self.block_of = self.rng.integers(0, self.blocks, self.prompts)  # a hash of the prompt id: unequal blocks
        self.shift = np.zeros(d)
        self.shift[:4] = self.bias / 2.0
        ref = self.rng.normal(0.0, 1.0, (1000, d))
        self.ref = GaussianStats.of(ref)
        self.mu_ref, self.cov_ref = self.ref.mean_cov()
        self.sqrt_ref = psd_sqrt(self.cov_ref)
        self.ppd = self.rng.normal(0.0, 1.0, (200, d))
        self.ids = [f"p{i}" for i in range(self.prompts)]

    def generate(self, rng: np.random.Generator, centres: np.ndarray, k: int) -> np.ndarray:
        return centres[:, None, :] + self.shift + rng.normal(0.0, math.sqrt(0.75), (len(centres), k, self.dim))

    def train(self, rng: np.random.Generator) -> np.ndarray:
        """A reward model's direction from a fresh training draw."""
        pos = self.ppd[rng.choice(len(self.ppd), self.n_train, replace=False)]
        neg = self.generate(rng, self.rng_centres(rng), 1)[:, 0]
        return pos.mean(axis=0) - neg.mean(axis=0)

    def rng_centres(self, rng: np.random.Generator) -> np.ndarray:
        return rng.normal(0.0, 0.5, (self.n_train, self.dim))  # training prompts, not the eval ones

    def rows(self, candidates: np.ndarray, w: np.ndarray) -> dict[str, np.ndarray]:
        best = np.argmax(candidates @ w, axis=1)
        return {"base": candidates[:, 0], "rm": candidates[np.arange(len(candidates)), best]}

    def units(self, sets: list[np.ndarray]) -> Units:
        """FID of the union of `sets` (each one seed's samples, one per prompt) with its jackknife units."""
        stats = BlockStats(self.blocks, self.dim)
        for x in sets:
            stats.update(x, self.block_of)
        mu, cov = stats.total().mean_cov()
        value = frechet_with_sqrt_ref(mu, cov, self.mu_ref, self.cov_ref, self.sqrt_ref)
        loo = np.full(self.blocks, np.nan)
        loo[stats.n > 0] = block_jackknife(stats, self.ref)
        return Units.from_jackknife(value, loo, self.ids, sizes=stats.n)


@dataclass
class Replication:
    per_seed: list[Difference]
    pooled: Difference
    two_level: Difference
    machine_conditional: Difference  # the cross-machine check of seed 0's rm cell
    machine_training: Difference


def replicate(world: World, rng: np.random.Generator, seeds: int) -> Replication:
    """One run of `seeds` seeds, and the same commit's seed 0 retrained on another machine."""
    per_seed, sets, first = [], {"base": [], "rm": []}, None
    for s in range(seeds):
        candidates = world.generate(rng, world.centres, world.k)
        w = world.train(rng)
        rows = world.rows(candidates, w)
        u = {r: world.units([x]) for r, x in rows.items()}
        per_seed.append(difference(u["rm"], u["base"]))
        for r, x in rows.items():
            sets[r].append(x)
        if s == 0:
            first = (candidates, u["rm"])
    pooled = difference(world.units(sets["rm"]), world.units(sets["base"]))
    two = across_seeds(per_seed, center=pooled.estimate)
    candidates, base_rm = first
    other = world.units([world.rows(candidates, world.train(rng))["rm"]])  # same candidates, another training draw
    r = difference(other, base_rm, level=0.90)
    tau2, tau_df = training_variance(per_seed)
    return Replication(per_seed, pooled, two, r, with_training_variance(r, tau2, tau_df, level=0.90))


def covers(d: Difference, truth: float) -> bool:
    return bool(d.ci_low <= truth <= d.ci_high)


def simulate(*, worlds: int = 4, replications: int = 250, seeds: int = 3, rng_seed: int = 0, **world_args) -> dict[str, float]:
    """Coverage of each 95 % interval of a trained row's FID Δ, and the cross-machine false-alarm
    rates of `check` (module docstring), over `worlds` × `replications` runs."""
    rng = np.random.default_rng(rng_seed)
    hits = {"two_level": 0, "pooled": 0, "one_seed": 0}
    alarms = {"conditional": 0, "training": 0}
    widths = {"two_level": [], "pooled": [], "one_seed": []}
    ratio = []
    total = 0
    for _ in range(worlds):
        world = World(rng=np.random.default_rng(rng.integers(1 << 62)), **world_args)
        reps = [replicate(world, rng, seeds) for _ in range(replications)]
        truth_pooled = float(np.mean([r.pooled.estimate for r in reps]))
        truth_seed = float(np.mean([d.estimate for r in reps for d in r.per_seed]))
        for r in reps:
            hits["two_level"] += covers(r.two_level, truth_pooled)
            hits["pooled"] += covers(r.pooled, truth_pooled)
            hits["one_seed"] += covers(r.per_seed[0], truth_seed)
            for name, d in (("two_level", r.two_level), ("pooled", r.pooled), ("one_seed", r.per_seed[0])):
                widths[name].append(d.ci_high - d.ci_low)
            alarms["conditional"] += regression_test(r.machine_conditional, "lower", 0.0).failed
            alarms["training"] += regression_test(r.machine_training, "lower", 0.0).failed
        between = np.std([d.estimate for r in reps for d in r.per_seed[:1]], ddof=1)
        ratio.append(between / np.mean([r.per_seed[0].se for r in reps]))
        total += len(reps)
    out = {f"coverage_{k}": v / total for k, v in hits.items()}
    out.update({f"false_alarm_{k}": v / total for k, v in alarms.items()})
    out.update({f"width_{k}": float(np.mean(v)) for k, v in widths.items()})
    out.update(runs=total, seed_sd_over_within_se=float(np.mean(ratio)))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--worlds", type=int, default=4)
    ap.add_argument("--replications", type=int, default=250)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--rng-seed", type=int, default=0)
    args = ap.parse_args()
    t0 = time.perf_counter()
    r = simulate(worlds=args.worlds, replications=args.replications, seeds=args.seeds, rng_seed=args.rng_seed)
    print(f"{r['runs']} runs of {args.seeds} seeds ({args.worlds} worlds), {time.perf_counter() - t0:.0f} s; "
          f"between-seed SD of a seed's Δ / its within-seed se: {r['seed_sd_over_within_se']:.2f}")
    print("| interval (nominal 95 %) | coverage | mean width |\n|---|---|---|")
    print(f"| two-level: pooled Δ ± t_{args.seeds - 1}·sd(Δ_s)/√{args.seeds} | {r['coverage_two_level']:.1%} | {r['width_two_level']:.2f} |")
    print(f"| pooled jackknife over prompt blocks (the old interval) | {r['coverage_pooled']:.1%} | {r['width_pooled']:.2f} |")
    print(f"| one seed, within-seed jackknife (conditional) | {r['coverage_one_seed']:.1%} | {r['width_one_seed']:.2f} |")
    print("\nunchanged commit, reward model retrained elsewhere, one seed, margin 0, one-sided 95 %: called a regression")
    print(f"- conditional rule (within-seed interval): {r['false_alarm_conditional']:.1%}")
    print(f"- training-variance rule (+ 2·τ̂² from the baseline's {args.seeds} seeds): {r['false_alarm_training']:.1%}")


if __name__ == "__main__":
    main()
