"""`check`: the regression gate of a run against a baseline (harness.stats.gate), with everything
the two sides carry: units for paired intervals, the spec's regression margins (`gate: {margins}`),
the numerics records. `ganrm-bench check` prints its lines; `ganrm_bench.check` returns the same
report."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import pandas as pd

from ganrm_bench.harness.errors import UserError
from ganrm_bench.harness.report.rundir import load_run, load_units, read_results_file
from ganrm_bench.harness.runtime.numerics import comparable_numerics, run_info_near
from ganrm_bench.harness.spec.schema import Spec
from ganrm_bench.harness.stats.gate import CheckReport, check_against_baseline


def parse_margins(items: list[str] | None, *, flag: str = "--margin") -> dict[str, float]:
    """`COLUMN=VALUE` strings (the CLI's `--margin`, alias `--tolerance`) as {column: margin}."""
    out: dict[str, float] = {}
    for t in items or []:
        col, _, val = t.partition("=")
        try:
            out[col] = float(val)
        except ValueError:
            raise UserError(f"{flag} {t!r}: expected COLUMN=NUMBER, e.g. fid=3") from None
    return out


parse_tolerances = parse_margins  # the flag's old name


def margins_for(spec: Spec, columns: set[str], explicit: Mapping[str, float]) -> tuple[dict[str, float], dict[str, str]]:
    """Each column's regression margin and where it came from: `--margin` over the spec's
    `gate.margins` (those of columns the baseline lacks are dropped). The paper band
    (`reference.band`) is never a margin."""
    margins = {c: float(v) for c, v in spec.gate.margins.items() if c in columns}
    sources = {c: "spec gate" for c in margins}
    for c, v in explicit.items():
        margins[c], sources[c] = float(v), "--margin"
    return margins, sources


def check(run_dir: str | Path, baseline: str | Path | pd.DataFrame, *, margin: Mapping[str, float] | None = None,
          confidence: float = 0.95, correction: bool = True, tolerance: Mapping[str, float] | None = None) -> CheckReport:
    """Per baseline cell, the one-sided regression test (harness.stats.gate), Holm-corrected across
    cells unless `correction=False`. `baseline` is a run directory or committed baseline folder
    (paired when both sides have units), a results .csv/.json/.parquet file, or a results DataFrame
    (unpaired). `margin` ({column: margin}; `tolerance` is its old name) adds to and overrides the
    spec's `gate.margins`; a column without one has margin 0."""
    run_dir = Path(run_dir)
    results, spec = load_run(run_dir)
    explicit = dict(margin if margin is not None else (tolerance or {}))
    if isinstance(baseline, pd.DataFrame):
        base, base_units, base_path = baseline, None, None
    else:
        base_path = Path(baseline)
        base = read_results_file(base_path)
        base_units = load_units(base_path) if base_path.is_dir() else None
    margins, sources = margins_for(spec, set(base["column"]), explicit)
    ok, why = comparable_numerics(run_info_near(run_dir), run_info_near(base_path) if base_path is not None else {})
    return check_against_baseline(results, base, margins=margins, margin_sources=sources, units=load_units(run_dir),
                                  baseline_units=base_units, confidence=confidence, correction="holm" if correction else "none",
                                  numerics_comparable=ok, numerics_note=why)
