"""Wall time of what the claims test (tests/claims) computes: every mini table over seeds 0, 1, 2 in
one store, cold, table by table; writes each table's run directory. Prints the numbers; not a test.

    .venv/bin/python benchmarks/perf/bench_mini_claims.py --cache /tmp/claims-store --out /tmp/claims-runs [--threads 1]

Re-running the claims test warm on that store: GANRM_CLAIMS_STORE=/tmp/claims-store pytest tests/claims
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import ganrm_bench  # noqa: F401,I001  (first, before numpy and torch: pins the CPU kernels, as the CLI does)

REPO = Path(__file__).resolve().parents[2]
TABLES = ("table1", "fig2", "table8", "table4", "table7", "table9")  # the order the claims test first asks for them


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cache", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from ganrm_bench.harness.engine.runner import run_spec
    from ganrm_bench.harness.report.write import write_run
    from ganrm_bench.harness.runtime.context import Context
    from ganrm_bench.harness.runtime.numerics import numerics_record
    from ganrm_bench.harness.spec.load import load_spec
    from ganrm_bench.harness.store.artifacts import Store

    store, total = Store(args.cache), 0.0
    for name in TABLES:
        path = REPO / "benchmarks" / "mini" / f"{name}.yaml"
        spec = load_spec(path)
        t0 = time.perf_counter()
        out = run_spec(spec, Context(store=store), seeds=args.seeds)
        dt = time.perf_counter() - t0
        total += dt
        write_run(Path(args.out) / name, spec, str(path.relative_to(REPO)), out.results,
                  {"seconds": round(dt, 2), "computed": dict(out.computed), "counters": out.counters, "failures": out.failures,
                   "numerics": numerics_record("cpu")},  # what `check` compares a run with (a baseline needs it)
                  out.samples, out.records, out.units, out.monitor)
        print(f"{name}: {dt:.1f} s, images generated {out.counters.get('images generated', 0)}, computed {dict(out.computed)}, "
              f"failures {len(out.failures)}", flush=True)
    print(f"total: {total:.1f} s over seeds {args.seeds} ({args.threads} torch thread(s))")


if __name__ == "__main__":
    main()
