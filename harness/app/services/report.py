"""`report` and `baseline`: re-render a finished run without recomputing anything, and write the
text files a paired `check` needs from it."""

from __future__ import annotations

from pathlib import Path

from ganrm_bench.harness.errors import UserError
from ganrm_bench.harness.report.html import render_html, write_html_report
from ganrm_bench.harness.report.rundir import load_run, write_baseline
from ganrm_bench.harness.report.tables import TABLE_FORMATS, render_table

FORMATS = (*TABLE_FORMATS, "html")


def render(run_dir: str | Path, format: str = "markdown") -> str:
    """A run's table as markdown (with its reward-model and monitor sections), latex, csv (the long
    results), or html (the self-contained report page)."""
    run_dir = Path(run_dir)
    if format not in FORMATS:
        raise UserError(f"--format {format!r}: choose {', '.join(FORMATS[:-1])} or {FORMATS[-1]}")
    if format == "html":
        return render_html(run_dir)
    results, spec = load_run(run_dir)
    return render_table(results, spec, format, run_dir=run_dir)


def write_report_page(run_dir: str | Path) -> Path:
    """(Re)write `<run>/report.html` and return its path."""
    load_run(Path(run_dir))  # a clear error when it is not a run directory
    return write_html_report(Path(run_dir))


def baseline(run_dir: str | Path, out: str | Path) -> list[Path]:
    """Write a run's committed baseline (results, units, spec and run records as text files)."""
    return write_baseline(Path(run_dir), Path(out))
