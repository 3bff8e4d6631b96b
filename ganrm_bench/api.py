"""The Python API, for notebooks and scripts: run a spec, load a run, check it against a baseline.

    import ganrm_bench as gb
    r = gb.run("mini/table1", overrides={"generators.mini.steps": 4})
    r.results          # the long DataFrame (one row per cell and seed)
    print(r.table())   # Markdown (or "latex", "csv")
    gb.check(r, "reports/baseline/results.csv")   # [] when nothing regressed

`run` is what `ganrm-bench run` does (the same function, harness.execute.run_to_dir), with the
same store: a second call computes nothing that is already cached.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any, Iterable, Mapping

import pandas as pd

from ganrm_bench.harness.spec import Spec


class Run:
    """A finished run: its directory, spec, long results table and provenance (run.json)."""

    def __init__(self, dir: Path, spec: Spec, results: pd.DataFrame, info: dict[str, Any] | None = None):
        self.dir = Path(dir)
        self.spec = spec
        self.results = results
        self.info = dict(info or {})

    @property
    def failures(self) -> list[str]:
        """Cells that failed (everything else is saved; run again to resume)."""
        return list(self.info.get("failures") or [])

    def table(self, format: str = "markdown") -> str:
        """The table as "markdown", "latex" (booktabs) or "csv" (the long results)."""
        from ganrm_bench.harness.report import render_table

        return render_table(self.results, self.spec, format, run_dir=self.dir)

    def _repr_markdown_(self) -> str:  # Jupyter shows the table
        return self.table("markdown")

    def __repr__(self) -> str:
        return f"Run({self.spec.name!r}, dir={str(self.dir)!r}, {len(self.results)} results, {len(self.failures)} failures)"


def _load(spec_or_path: str | Path | Spec, overrides: Mapping[str, Any] | None) -> tuple[Spec, str]:
    from ganrm_bench.harness.execute import resolve_spec_path
    from ganrm_bench.harness.spec import SpecError, apply_overrides, check_spec, load_spec

    if isinstance(spec_or_path, Spec):
        spec = spec_or_path
        if overrides:
            spec = Spec.model_validate(apply_overrides(spec.model_dump(mode="json"), dict(overrides)))
            problems = check_spec(spec)
            if problems:
                raise SpecError(spec.name, problems)
        return spec, f"<Spec {spec.name}>"
    path = resolve_spec_path(spec_or_path)
    return load_spec(path, dict(overrides) if overrides else None), str(path)


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
) -> Run:
    """Run a spec — a YAML path, a shipped spec by name (`"mini/table1"`), or a loaded Spec —
    and return its Run. `overrides` sets dotted paths in the spec before validation
    (`{"generators.mini.steps": 4}`); `cache` is the artifact store (default $GANRM_BENCH_CACHE or
    the user cache dir); `out` the run directory (default reports/runs/<spec>-<time>). Failed cells
    are warned about and listed in `Run.failures`; the rest of the table is kept. `random_weights`
    builds every model from its architecture config with random weights (a smoke test at real
    shapes; its artifacts have keys of their own) and `limit_prompts` keeps the first N prompts of
    every prompt set — as `ganrm-bench run --random-weights --limit-prompts N`."""
    from ganrm_bench.harness.execute import make_context, run_to_dir
    from ganrm_bench.harness.runtime import Progress

    spec, spec_path = _load(spec_or_path, overrides)
    ctx = make_context(spec, cache=cache, device=device or "auto", batch_size=batch_size, progress=Progress.auto(),
                       limit_prompts=limit_prompts)
    seed_list = [seeds] if isinstance(seeds, int) else (list(seeds) if seeds is not None else None)
    done = run_to_dir(spec, spec_path, ctx, seeds=seed_list, out_dir=Path(out).expanduser() if out is not None else None,
                      overrides=[f"{k}={v}" for k, v in (overrides or {}).items()], random_weights=random_weights)
    info = json.loads((done.run_dir / "run.json").read_text())
    result = Run(done.run_dir, spec, done.outcome.results, info)
    if result.failures:
        warnings.warn(f"{len(result.failures)} cell(s) of {spec.name} failed (see Run.failures): {result.failures[0]}", stacklevel=2)
    return result


def load_run(path: str | Path) -> Run:
    """A run directory written by `run` or `ganrm-bench run`, without recomputing anything."""
    from ganrm_bench.harness.report import load_run as read_run

    results, spec = read_run(Path(path))
    info_file = Path(path) / "run.json"
    info = json.loads(info_file.read_text()) if info_file.exists() else {}
    return Run(Path(path), spec, results, info)


def check(run: Run | str | Path, baseline: Run | str | Path | pd.DataFrame, tolerance: Mapping[str, float] | None = None) -> list[str]:
    """Regressions of `run` against `baseline` (a Run, a run directory, a results .csv/.json/.parquet
    or a DataFrame), one message per cell; [] when none. `tolerance` ({column: absolute}) adds to
    and overrides the spec's reference tolerances — as `ganrm-bench check --tolerance`."""
    from ganrm_bench.harness.report import check as find_regressions, read_results_file

    ours = run if isinstance(run, Run) else load_run(run)
    if isinstance(baseline, Run):
        base = baseline.results
    elif isinstance(baseline, pd.DataFrame):
        base = baseline
    else:
        base = read_results_file(Path(baseline))
    tol = {**ours.spec.reference.tolerance, **{k: float(v) for k, v in (tolerance or {}).items()}}
    return find_regressions(ours.results, base, tol)
