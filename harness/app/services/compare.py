"""`report RUN RUN ...` and `ganrm_bench.compare`: several runs on one page (harness.report.compare):
the comparison, its renderings, and the folder of files it writes."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Iterable

from ganrm_bench.harness.report.compare import Comparison, compare_runs
from ganrm_bench.harness.report.compare_page import COMPARE_FORMATS, render_comparison, write_comparison

__all__ = ["COMPARE_FORMATS", "Comparison", "compare", "default_out", "render", "write"]


def compare(runs: Iterable[str | Path], *, against: str | None = None, sort_by: str | None = None) -> Comparison:
    """Every (run, method) against the first run's same method (or its row `against`), with paired
    Δs where the runs share prompts; `sort_by` the metric column of the leaderboard."""
    return compare_runs(list(runs), against=against, sort_by=sort_by)


def render(cmp: Comparison, format: str = "markdown") -> str:
    """The comparison as markdown, latex, csv (the long frame) or html (the page)."""
    return render_comparison(cmp, format)


def default_out() -> Path:
    return Path("reports/compare") / time.strftime("%Y%m%d-%H%M%S")


def write(cmp: Comparison, out: str | Path | None = None) -> list[Path]:
    """compare.html, .csv, .md and .tex in `out` (default reports/compare/<time>)."""
    return write_comparison(cmp, Path(out) if out is not None else default_out())
