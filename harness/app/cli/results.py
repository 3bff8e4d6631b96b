"""`ganrm-bench report`, `check` and `baseline`: what is done with finished runs."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from ganrm_bench.harness.app.cli.common import err, print_plain
from ganrm_bench.harness.app.cli.common import out as out_console
from ganrm_bench.harness.app.services import check as check_service
from ganrm_bench.harness.app.services import compare as compare_service
from ganrm_bench.harness.app.services import report as report_service
from ganrm_bench.harness.errors import UserError


def report(
    runs: list[Path] = typer.Argument(..., help="A run directory; several to compare them on one page."),
    format: str = typer.Option("markdown", "--format", "-f", help="markdown | latex | csv | html"),
    out: Optional[str] = typer.Option(None, "--out", "-o", help="One run: the file to write (- for standard output; default: "
                                      "html rewrites <run>/report.html, the other formats print). Several runs: the folder "
                                      "for compare.html/.csv/.md/.tex (default reports/compare/<time>), or - to print --format."),
    against: Optional[str] = typer.Option(None, "--against", help="Several runs: compare every method with this row of the first "
                                          "run (default: with the same method in the first run)."),
    sort: Optional[str] = typer.Option(None, "--sort", help="Several runs: the metric column the leaderboard is sorted by "
                                       "(default: the first)."),
) -> None:
    """Re-render a run's table without recomputing anything, or put several runs side by side.

    One run: the table (markdown, latex, csv) on standard output, or the HTML report written to
    <run>/report.html (its path printed; `-o -` prints the page). Several runs: one self-contained
    page and a CSV/Markdown/LaTeX table, a line per (run, method), each cell with its Δ against the
    first run (paired where the runs share prompts, else unpaired and said so); runs whose spec,
    seeds, prompts or numerics differ from the first are marked.
    """
    if len(runs) > 1:
        _compare(runs, format, out, against, sort)
        return
    if against or sort:
        raise UserError("--against and --sort compare several runs", hint="give two or more run directories")
    if out == "-" or (out is None and format != "html"):
        sys.stdout.write(report_service.render(runs[0], format))
        return
    path = report_service.write_report(runs[0], format, out)
    out_console.print(f"{format} report written to {path}", highlight=False, soft_wrap=True)


def _compare(runs: list[Path], format: str, out: Optional[str], against: Optional[str], sort: Optional[str]) -> None:
    cmp = compare_service.compare(runs, against=against, sort_by=sort)
    for e in cmp.runs[1:]:
        if e.marks:
            err.print(f"[yellow]note:[/yellow] {e.label}: {'; '.join(e.marks)}", highlight=False, soft_wrap=True)
    if out == "-":
        sys.stdout.write(compare_service.render(cmp, format))
        return
    files = compare_service.write(cmp, out)
    out_console.print(f"comparison of {len(cmp.runs)} runs written to {files[0]} (and {', '.join(f.name for f in files[1:])})",
                      highlight=False, soft_wrap=True)


def check(
    run_dir: Path = typer.Argument(..., help="A run directory."),
    baseline: Path = typer.Option(..., "--baseline", help="A run directory or committed baseline folder (results + units.parquet), or a results file."),
    margin: Optional[list[str]] = typer.Option(
        None, "--margin", "--tolerance",
        help="COLUMN=VALUE regression margin in the metric's units: a regression up to it passes (repeatable; default: the spec's "
             "gate.margins, else 0: any significant worsening fails). --tolerance is its old name."),
    confidence: float = typer.Option(0.95, help="One-sided family-wise confidence of the test."),
    no_correction: bool = typer.Option(False, "--no-correction", help="Test each cell at 1 − confidence, without Holm's correction across cells."),
) -> None:
    """Exit 1 when a cell is worse than the baseline by more than its margin, with the given confidence.

    Per cell: R = how much worse the run is than the baseline; p = the one-sided p-value of R ≤ margin.
    FAIL when Holm's adjusted p ≤ 1 − confidence (family-wise over the cells; --no-correction: each p).
    Cells match seed by seed on the seeds both sides share; pooled cells only with equal seeds and N.
    Trained rows: a t across the shared seeds' differences (one seed: conditional on the trained model,
    or with the baseline's training variance when the numerics differ). Paired (same prompts: per-prompt
    bootstrap, or block jackknife for FID/KID) when both sides have units, else unpaired (said per cell).
    The header names the matching, the margins and the correction.
    """
    result = check_service.check(run_dir, baseline, margin=check_service.parse_margins(margin), confidence=confidence,
                                 correction=not no_correction)
    for warning in result.warnings:
        err.print(f"[yellow]warning:[/yellow] {warning}", highlight=False, soft_wrap=True)
    for line in result.lines():
        print_plain([line], err if line.startswith("FAIL") else out_console)
    rule = (f"Holm, family-wise error ≤ {result.familywise_error:.0%}" if result.correction == "holm"
            else f"no correction, family-wise error up to {result.familywise_error:.0%}")
    if result.failures:
        err.print(f"[red]{len(result.failures)} regression(s)[/red] against {baseline} (one-sided {confidence:.0%}; {rule})")
        raise typer.Exit(1)
    out_console.print(f"[green]no regression[/green] against {baseline} (one-sided {confidence:.0%}, {len(result.cells)} cells; {rule})")


def baseline(
    run_dir: Path = typer.Argument(..., help="A run directory."),
    out_dir: Path = typer.Option(..., "--out", help="The baseline folder to write (e.g. reports/baselines/<spec>)."),
) -> None:
    """Write a run's committed baseline: results and the per-cell units a paired `check` needs (text files)."""
    files = report_service.baseline(run_dir, out_dir)
    size = sum(f.stat().st_size for f in files)
    out_console.print(f"baseline written to {out_dir}: {', '.join(f.name for f in files)} ({size / 1024:.0f} KiB)")
