"""Cold vs warm wall time of the miniature world's Table 1 (issue goal: cold ≤ 10 min on 2 CPU
cores, warm ≤ 5 % of cold with 0 images generated). Prints the numbers; not a test.

    .venv/bin/python benchmarks/perf/bench_mini_world.py [--threads 2] [--spec benchmarks/mini/table1.yaml]
        [--store DIR]  (keep the filled store, e.g. for GANRM_CLAIMS_STORE; it must start empty to be cold)

Also prints the machine's load average before and after (the machine may be shared) and the
process's peak resident memory.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import tempfile
import time
from pathlib import Path

import ganrm_bench  # noqa: F401,I001  (first, before numpy and torch: pins the CPU kernels, as the CLI does)

REPO = Path(__file__).resolve().parents[2]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--spec", default=str(REPO / "benchmarks" / "mini" / "table1.yaml"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--store", default=None, help="a store directory to fill and keep (default: a temporary one)")
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from ganrm_bench.harness.engine.runner import run_spec
    from ganrm_bench.harness.runtime.context import Context
    from ganrm_bench.harness.spec.load import load_spec
    from ganrm_bench.harness.store.artifacts import Store

    spec = load_spec(args.spec)
    print(f"load average before: {os.getloadavg()} on {os.cpu_count()} cores")
    with (contextlib.nullcontext(args.store) if args.store else tempfile.TemporaryDirectory()) as cache:
        times = {}
        for phase in ("cold", "warm"):
            ctx = Context(store=Store(cache))
            t0 = time.perf_counter()
            out = run_spec(spec, ctx)
            times[phase] = time.perf_counter() - t0
            print(f"{phase}: {times[phase]:.1f} s, images generated: {out.counters.get('images generated', 0)}, "
                  f"computed: {dict(out.computed)}")
            if phase == "cold" and "seconds" in out.results:  # where the time went: each row's graph (shared artifacts in several rows)
                per_row = out.results.groupby("row", sort=False)[["nfe", "seconds"]].first()
                print(per_row.to_string(float_format=lambda v: f"{v:.1f}"))
    print(f"warm/cold = {times['warm'] / times['cold']:.2%} ({args.threads} torch threads)")
    print(f"load average after: {os.getloadavg()}; peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB")


if __name__ == "__main__":
    main()
