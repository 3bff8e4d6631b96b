"""`report` and `baseline`: re-render a finished run without recomputing anything, and write the
text files a paired `check` needs from it."""

from __future__ import annotations

from pathlib import Path

from ganrm_bench.harness.errors import UserError
from ganrm_bench.harness.report.html import render_html, write_html_report
from ganrm_bench.harness.report.rundir import load_run, write_baseline
from ganrm_bench.harness.report.tables import TABLE_FORMATS, render_table

FORMATS = (*TABLE_FORMATS, "html")
#: the file a format is written to inside a folder given as --out (html: the run's own report.html)
FILE_NAMES = {"markdown": "table.md", "latex": "table.tex", "csv": "results.csv", "html": "report.html"}


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


def write_report(run_dir: str | Path, format: str, out: str | Path | None) -> Path:
    """Write a run's rendering to a file and return its path: `out` a file, or a folder (then
    FILE_NAMES[format] inside it); without `out`, html rewrites `<run>/report.html`."""
    if out is None:
        if format != "html":
            raise UserError(f"--format {format}: give --out FILE (or - for standard output)")
        return write_report_page(run_dir)
    path = Path(out)
    if path.is_dir():
        path = path / FILE_NAMES.get(format, "report")
    if path.resolve() == (Path(run_dir) / "report.html").resolve():
        return write_report_page(run_dir)
    text = render(run_dir, format)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def baseline(run_dir: str | Path, out: str | Path) -> list[Path]:
    """Write a run's committed baseline (results, units, spec and run records as text files)."""
    return write_baseline(Path(run_dir), Path(out))
