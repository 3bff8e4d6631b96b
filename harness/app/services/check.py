"""`check`: the regression gate of a run against a baseline (harness.stats.gate), with everything
the two sides carry: units for paired intervals, the spec's tolerances, the numerics records.
`ganrm-bench check` prints its lines; `ganrm_bench.check` returns the same report."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import pandas as pd

from ganrm_bench.harness.errors import UserError
from ganrm_bench.harness.report.rundir import load_run, load_units, read_results_file
from ganrm_bench.harness.runtime.numerics import mismatch_warning
from ganrm_bench.harness.stats.gate import CheckReport, check_against_baseline


def parse_tolerances(items: list[str] | None) -> dict[str, float]:
    """`COLUMN=VALUE` strings (the CLI's `--tolerance`) as {column: margin}."""
    out: dict[str, float] = {}
    for t in items or []:
        col, _, val = t.partition("=")
        try:
            out[col] = float(val)
        except ValueError:
            raise UserError(f"--tolerance {t!r}: expected COLUMN=NUMBER, e.g. fid=3") from None
    return out


def check(run_dir: str | Path, baseline: str | Path | pd.DataFrame, *, tolerance: Mapping[str, float] | None = None,
          confidence: float = 0.95) -> CheckReport:
    """Per baseline cell, the one-sided regression test (harness.stats.gate). `baseline` is a run
    directory or committed baseline folder (paired when both sides have units), a results
    .csv/.json/.parquet file, or a results DataFrame (unpaired). `tolerance` ({column: margin})
    adds to and overrides the spec's reference tolerances; those of columns the baseline lacks are
    dropped, explicit ones are checked."""
    run_dir = Path(run_dir)
    results, spec = load_run(run_dir)
    explicit = dict(tolerance or {})
    if isinstance(baseline, pd.DataFrame):
        base, base_units, base_path = baseline, None, None
    else:
        base_path = Path(baseline)
        base = read_results_file(base_path)
        base_units = load_units(base_path) if base_path.is_dir() else None
    known = set(base["column"])
    tol = {c: v for c, v in spec.reference.tolerance.items() if c in known}
    tol.update(explicit)
    report = check_against_baseline(results, base, tolerance=tol, units=load_units(run_dir), baseline_units=base_units,
                                    confidence=confidence)
    if base_path is not None and (warning := mismatch_warning(run_dir, base_path)):
        report.warnings.append(warning)
    return report
