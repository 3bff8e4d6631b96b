"""Metric costs: FID memory stays flat as the number of samples N grows (streaming float64
sufficient statistics), and what the FID confidence interval costs. Not a test: run it and read
the numbers.

    .venv/bin/python benchmarks/perf/bench_metrics.py                      # d=512, N = 1k, 4k, 16k
    .venv/bin/python benchmarks/perf/bench_metrics.py --dim 2048 --sizes 1000 4000 --resamples 20

Features come from a stand-in extractor (seeded random vectors of the real width), so the
numbers measure the metric's own memory and arithmetic, not a network. Peak memory is traced
with tracemalloc (numpy's buffers included) from the first feature to the final value; "held"
is what keeping the sample features in memory would take instead.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import tracemalloc

import ganrm_bench  # noqa: F401,I001  (first, before numpy and torch: pins the CPU kernels, as the CLI does)

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 4000, 16000])
    ap.add_argument("--reference", type=int, default=1000)
    ap.add_argument("--resamples", type=int, default=0, help="FID CI resamples (0: no CI)")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()

    import numpy as np
    import torch

    from ganrm_bench.harness.plugins.base import FeatureExtractor, Item, ItemSet, PluginParams
    from ganrm_bench.harness.plugins.builtins import register_builtins
    from ganrm_bench.harness.plugins.registry import FEATURES
    from ganrm_bench.harness.runtime.context import Context
    from ganrm_bench.harness.store.artifacts import Store
    from ganrm_bench.metrics.fid import FID

    torch.set_num_threads(args.threads)
    dim = args.dim

    class SeededFeatures(FeatureExtractor):
        """Stand-in extractor: a seeded Gaussian vector per item (the item file holds its seed)."""

        name = "bench_seeded"

        class Params(PluginParams):
            pass

        def features(self, items, ctx):
            return np.stack([np.random.default_rng(int(x)).normal(size=dim).astype(np.float32) for x in items])

    class SeedItem(Item):
        def load(self):
            return int(self.path.rsplit("/", 1)[-1])

    register_builtins()
    FEATURES.add("bench_seeded", SeededFeatures)

    def item_set(name: str, n: int, offset: int) -> ItemSet:
        return ItemSet(name, tuple(SeedItem(key=f"{name}-{i}", path=f"seed/{offset + i}") for i in range(n)))

    with tempfile.TemporaryDirectory() as tmp:
        ctx = Context(store=Store(tmp), seed=0)
        reference = item_set("ref", args.reference, 10_000_000)
        ci = {"method": "bootstrap", "resamples": args.resamples} if args.resamples else {"method": "none"}
        FID({"features": "bench_seeded", "ci": {"method": "none"}}).reference_stats(reference, ctx)  # cached once
        FID({"features": "bench_seeded", "ci": ci}).compute(item_set("warmup", 50, 20_000_000), ctx, reference=reference)  # imports
        print(f"FID, d={dim}, reference {args.reference} (cached), CI: {ci}, torch threads {args.threads}")
        print(f"{'N':>8} {'peak MB':>9} {'held MB':>9} {'first s':>8} {'cached s':>9} {'FID':>10}")
        for n in args.sizes:
            samples = item_set(f"s{n}", n, 0)
            metric = FID({"features": "bench_seeded", "ci": ci})
            t0 = time.perf_counter()
            tracemalloc.start()
            result = metric.compute(samples, ctx, reference=reference)
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            first = time.perf_counter() - t0
            t0 = time.perf_counter()
            again = metric.compute(samples, ctx, reference=reference)
            cached = time.perf_counter() - t0
            assert again.value == result.value
            print(f"{n:>8} {peak / 2**20:>9.1f} {n * dim * 4 / 2**20:>9.1f} {first:>8.1f} {cached:>9.1f} {result.value:>10.4f}")


if __name__ == "__main__":
    main()
