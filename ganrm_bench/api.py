"""The Python API, for notebooks and scripts: run a spec, load a run, check it against a baseline,
compare runs, plan a spec, write a baseline.

    import ganrm_bench as gb
    r = gb.run("mini/table1", overrides={"generators.mini.steps": 4})
    r.results          # the long DataFrame (one row per cell and seed)
    print(r.table())   # Markdown (or "latex", "csv", "html")
    gb.check(r, "reports/baselines/mini-table1").passed   # True when nothing regressed
    c = gb.compare("reports/runs/last-week", r, out="reports/compare/today")  # several runs, one page
    c.frame            # one line per (run, method, metric): value, CI, Δ vs the first run, paired or not

Each function is the service the matching `ganrm-bench` command calls (harness.app.services), with
the same store: a second `run` computes nothing that is already cached, and `check` gives the
command's verdicts, cell for cell.
"""

from __future__ import annotations

import json
import warnings
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping

import pandas as pd

from ganrm_bench.harness.app.services import check as check_service
from ganrm_bench.harness.app.services import compare as compare_service
from ganrm_bench.harness.app.services import plan as plan_service
from ganrm_bench.harness.app.services import report as report_service
from ganrm_bench.harness.app.services import run as run_service
from ganrm_bench.harness.app.services.specs import open_spec
from ganrm_bench.harness.report.rundir import load_cards, load_cross_reward, load_diagnostics, load_overoptimisation, load_units
from ganrm_bench.harness.report.rundir import load_run as read_run
from ganrm_bench.harness.runtime.progress import Progress
from ganrm_bench.harness.spec.schema import Spec

if TYPE_CHECKING:  # pragma: no cover
    from ganrm_bench.harness.app.services.plan import SeedPlan
    from ganrm_bench.harness.report.compare import Comparison
    from ganrm_bench.harness.stats.gate import CheckReport


class Run:
    """A finished run: its directory, spec, long results table and provenance (run.json); its
    per-cell units, over-optimisation diagnostics and reward-model report cards load on first use."""

    def __init__(self, dir: Path, spec: Spec, results: pd.DataFrame, info: dict[str, Any] | None = None):
        self.dir = Path(dir)
        self.spec = spec
        self.results = results
        self.info = dict(info or {})

    @property
    def failures(self) -> list[str]:
        """Cells that failed (everything else is saved; run again to resume)."""
        return list(self.info.get("failures") or [])

    @cached_property
    def units(self) -> pd.DataFrame | None:
        """What each cell's CI resamples (units.parquet: per-prompt sums or leave-one-block-out
        values, by cell and seed), the input of paired comparisons; None when the run has none."""
        return load_units(self.dir)

    @cached_property
    def diagnostics(self) -> pd.DataFrame | None:
        """The over-optimisation monitor (diagnostics.csv: per row, trained scorer and seed, the
        proxy reward against held-out PPD, with `flags`); None when no trained scorer judged a row."""
        return load_diagnostics(self.dir)

    @cached_property
    def overoptimisation(self) -> tuple[pd.DataFrame, pd.DataFrame] | None:
        """Best-of-n over-optimisation curves (overoptimisation.csv: n, √KL, the proxy and every
        column with CIs) and their fits and gold peaks (overoptimisation_fits.csv); None without a curve."""
        return load_overoptimisation(self.dir)

    @cached_property
    def cross_reward(self) -> pd.DataFrame | None:
        """The cross-reward matrix (cross_reward.csv: rows optimised for one proxy judged by every
        per-sample column and proxy, paired Δ vs the comparison row [CI]); None with fewer than two proxies."""
        return load_cross_reward(self.dir)

    @cached_property
    def cards(self) -> dict[str, dict[str, Any]]:
        """The reward-model report cards (scorers/<name>.json: how well each trained scorer
        separates held-out PPD from generated images), by name; {} when none was trained."""
        return load_cards(self.dir)

    def table(self, format: str = "markdown") -> str:
        """The table as "markdown", "latex" (booktabs), "csv" (the long results) or "html" (the report page)."""
        return report_service.render(self.dir, format)

    def _repr_markdown_(self) -> str:  # Jupyter shows the table
        return self.table("markdown")

    def __repr__(self) -> str:
        return f"Run({self.spec.name!r}, dir={str(self.dir)!r}, {len(self.results)} results, {len(self.failures)} failures)"


def run(
    spec_or_path: str | Path | Spec,
    *,
    seeds: int | Iterable[int] | None = None,
    overrides: Mapping[str, Any] | None = None,
    cache: str | Path | None = None,
    out: str | Path | None = None,
    device: str | None = None,
    batch_size: int | None = None,
    random_weights: bool = False,
    limit_prompts: int | None = None,
    overwrite: bool = False,
) -> Run:
    """Run a spec — a YAML path, a shipped spec by name (`"mini/table1"`), or a loaded Spec —
    and return its Run. `overrides` sets dotted paths in the spec before validation
    (`{"generators.mini.steps": 4}`); `cache` is the artifact store (default $GANRM_BENCH_CACHE or
    the user cache dir); `out` the run directory (default reports/runs/<spec>-<time>; one of another
    spec is refused unless `overwrite`). Failed cells are warned about and listed in
    `Run.failures`; the rest of the table is kept. `random_weights` builds every model from its
    architecture config with random weights (a smoke test at real shapes; its artifacts have keys
    of their own) and `limit_prompts` keeps the first N prompts of every prompt set — as
    `ganrm-bench run --random-weights --limit-prompts N`."""
    done = run_service.run(spec_or_path, seeds=list(seeds) if isinstance(seeds, Iterable) else seeds, overrides=overrides,
                           cache=cache, out=out, device=device or "auto", batch_size=batch_size, random_weights=random_weights,
                           limit_prompts=limit_prompts, overwrite=overwrite, progress=Progress.auto())
    info = json.loads((done.run_dir / "run.json").read_text())
    result = Run(done.run_dir, done.spec, done.outcome.results, info)
    if result.failures:
        warnings.warn(f"{len(result.failures)} cell(s) of {done.spec.name} failed (see Run.failures): {result.failures[0]}", stacklevel=2)
    return result


def load_run(path: str | Path) -> Run:
    """A run directory written by `run` or `ganrm-bench run`, without recomputing anything."""
    results, spec = read_run(Path(path))
    info_file = Path(path) / "run.json"
    info = json.loads(info_file.read_text()) if info_file.exists() else {}
    return Run(Path(path), spec, results, info)


def check(run: Run | str | Path, baseline: Run | str | Path | pd.DataFrame, margin: Mapping[str, float] | None = None,
          confidence: float = 0.95, *, correction: bool = True, tolerance: Mapping[str, float] | None = None) -> "CheckReport":
    """`ganrm-bench check`: the regression gate of `run` against `baseline` (a Run, a run directory, a
    committed baseline folder, a results .csv/.json/.parquet, or a DataFrame). `margin` ({column:
    regression margin}; `tolerance` is its old name) adds to and overrides the spec's `gate.margins`;
    `correction=False` is `--no-correction`. The report's `.passed` is the command's exit status,
    `.failures` its failing cells, `.lines()` its output (header: matching, margins, correction),
    `.familywise_error` the rate the decisions keep; a cell's `.conditional` marks a trained row
    compared on one seed (its interval is conditional on the trained model)."""
    run_dir = run.dir if isinstance(run, Run) else Path(run)
    base = baseline.dir if isinstance(baseline, Run) else baseline
    return check_service.check(run_dir, base, margin=margin, confidence=confidence, correction=correction, tolerance=tolerance)


def plan(spec_or_path: str | Path | Spec, *, seeds: Iterable[int] | None = None, overrides: Mapping[str, Any] | None = None,
         cache: str | Path | None = None, estimate: bool = False, device: str = "cpu",
         assume_prompts: int | None = None) -> "list[SeedPlan]":
    """`ganrm-bench plan`: per seed, what a run would compute (nothing is written, the store is not
    even created). Sources whose data are not here count as their entry's `expected_count`, prompt
    sets declaring none as `assume_prompts`; each plan's `.assumed` lists the sizes so assumed."""
    spec, _ = open_spec(spec_or_path, overrides)
    ctx = run_service.make_context(spec, cache=cache, device=device, read_only=True)
    return plan_service.plan(spec, ctx, seeds=list(seeds) if seeds is not None else None, with_estimate=estimate,
                             assume_prompts=assume_prompts)


def baseline(run: Run | str | Path, out: str | Path) -> list[Path]:
    """`ganrm-bench baseline`: write a run's committed baseline folder; returns the files written."""
    return report_service.baseline(run.dir if isinstance(run, Run) else run, out)



class Compared:
    """Several runs side by side (`compare`): `.frame` is the long DataFrame (one line per run,
    method and metric: value, CI, Δ against the reference, its CI, paired or not — compare.csv),
    `.wide()` the (run, method) × metric table in leaderboard order, `.runs[i].marks` how run i
    differs from the first, `.table(format)` markdown, latex, csv or html (the page)."""

    def __init__(self, comparison: "Comparison"):
        self.comparison = comparison

    @property
    def runs(self) -> list:
        return self.comparison.runs

    @property
    def frame(self) -> pd.DataFrame:
        return self.comparison.frame

    def wide(self) -> pd.DataFrame:
        return self.comparison.wide()

    def leaderboard(self) -> list[tuple[str, str]]:
        return self.comparison.leaderboard()

    def table(self, format: str = "markdown") -> str:
        return compare_service.render(self.comparison, format)

    def write(self, out: str | Path | None = None) -> list[Path]:
        """compare.html, .csv, .md and .tex in `out` (default reports/compare/<time>), as the command."""
        return compare_service.write(self.comparison, out)

    def _repr_markdown_(self) -> str:
        return self.table("markdown")

    def __repr__(self) -> str:
        return f"Compared({[e.label for e in self.runs]}, {len(self.frame)} lines)"


def compare(*runs: Run | str | Path, against: str | None = None, sort_by: str | None = None,
            out: str | Path | None = None) -> Compared:
    """`ganrm-bench report RUN RUN ...`: several runs side by side, the first the reference. Each
    (run, method) gets a Δ per metric against the first run's same method (or its row `against`),
    paired where the runs share prompts (their units.parquet), else unpaired and said so; runs
    whose spec, seeds, prompts or numerics differ from the first are marked. `sort_by`: the
    leaderboard's metric column (default the first). With `out`, writes the command's files there."""
    dirs = [r.dir if isinstance(r, Run) else Path(r) for r in runs]
    result = Compared(compare_service.compare(dirs, against=against, sort_by=sort_by))
    if out is not None:
        result.write(out)
    return result
