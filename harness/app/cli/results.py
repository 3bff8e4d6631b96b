"""`ganrm-bench report`, `check` and `baseline`: what is done with a finished run."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from ganrm_bench.harness.app.cli.common import err, out, print_plain
from ganrm_bench.harness.app.services import check as check_service
from ganrm_bench.harness.app.services import report as report_service


def report(
    run_dir: Path = typer.Argument(..., help="A run directory."),
    format: str = typer.Option("markdown", "--format", "-f", help="markdown | latex | csv | html"),
) -> None:
    """Re-render a run's table without recomputing anything."""
    sys.stdout.write(report_service.render(run_dir, format))


def check(
    run_dir: Path = typer.Argument(..., help="A run directory."),
    baseline: Path = typer.Option(..., "--baseline", help="A run directory or committed baseline folder (results + units.parquet), or a results file."),
    tolerance: Optional[list[str]] = typer.Option(None, help="COLUMN=VALUE non-inferiority margin in the metric's units (repeatable; default: the spec's reference.tolerance, else 0)."),
    confidence: float = typer.Option(0.95, help="One-sided confidence of the test."),
) -> None:
    """Exit 1 when a cell is worse than the baseline by more than its tolerance, with the given confidence.

    Per cell: R = how much worse the run is than the baseline. FAIL when the one-sided lower
    confidence bound of R exceeds the column's tolerance. Paired (same prompts: per-prompt bootstrap,
    or block jackknife for FID/KID) when both sides have units.parquet, else unpaired from the two CIs
    (said per cell). Each line also gives the smallest regression the comparison detects (80% power).
    """
    result = check_service.check(run_dir, baseline, tolerance=check_service.parse_tolerances(tolerance), confidence=confidence)
    for warning in result.warnings:
        err.print(f"[yellow]warning:[/yellow] {warning}", highlight=False, soft_wrap=True)
    for line in result.lines():
        print_plain([line], err if line.startswith("FAIL") else out)
    if result.failures:
        err.print(f"[red]{len(result.failures)} regression(s)[/red] against {baseline} (one-sided {confidence:.0%})")
        raise typer.Exit(1)
    out.print(f"[green]no regression[/green] against {baseline} (one-sided {confidence:.0%}, {len(result.cells)} cells)")


def baseline(
    run_dir: Path = typer.Argument(..., help="A run directory."),
    out_dir: Path = typer.Option(..., "--out", help="The baseline folder to write (e.g. reports/baselines/<spec>)."),
) -> None:
    """Write a run's committed baseline: results and the per-cell units a paired `check` needs (text files)."""
    files = report_service.baseline(run_dir, out_dir)
    size = sum(f.stat().st_size for f in files)
    out.print(f"baseline written to {out_dir}: {', '.join(f.name for f in files)} ({size / 1024:.0f} KiB)")
