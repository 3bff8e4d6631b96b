"""Writing a run directory: results (parquet, CSV, JSON) and units, the spec and run record
(run.json: seeds, git sha, package versions, numerics), then everything rendered from them —
tables, figures, galleries, report cards, the samples manifest and the HTML report."""

from __future__ import annotations

import json
import platform
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd

from ganrm_bench.harness.diagnostics.monitor import write_round_figure
from ganrm_bench.harness.diagnostics.scorecard import write_cards
from ganrm_bench.harness.report.cross_reward import write_cross_reward_figure
from ganrm_bench.harness.report.figures import figure_style, save_png, write_galleries
from ganrm_bench.harness.report.html import report_plots, write_html_report
from ganrm_bench.harness.report.overoptimisation import write_overoptimisation_figure
from ganrm_bench.harness.report.samples import write_samples_manifest
from ganrm_bench.harness.report.tables import _run_extras, render_latex, render_markdown
from ganrm_bench.harness.spec.schema import Spec

TRACKED_PACKAGES = (
    "ganrm-bench", "torch", "torchvision", "diffusers", "transformers", "open_clip_torch", "accelerate", "peft",
    "torchmetrics", "clean-fid", "lpips", "numpy", "pandas", "pydantic", "scikit-learn", "image-reward", "hpsv2",
)


def git_sha(cwd: Path | None = None) -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd or Path(__file__).parent, capture_output=True, text=True, timeout=5)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def package_versions() -> dict[str, str]:
    out = {}
    for name in TRACKED_PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


def run_seeds(results: pd.DataFrame) -> list[int]:
    """The seeds a run computed (its seed cells'), as run.json records them: `run --seed 0 --seed 1`
    overrides the spec's `seeds`."""
    if results.empty or "seed" not in results:
        return []
    return sorted({int(s) for s in results["seed"] if int(s) >= 0})


def write_run(run_dir: Path, spec: Spec, spec_path: str, results: pd.DataFrame, info: dict[str, Any],
              samples: dict[str, Any] | None = None, records: pd.DataFrame | None = None,
              units: pd.DataFrame | None = None, monitor: Any = None) -> None:
    """Write a run's results and provenance, then its rendered tables, plots and galleries.
    `units.parquet` holds what each cell's CI resamples (per-prompt sums, leave-one-block-out
    values): what a paired `check` against this run needs (harness.stats). `monitor`
    (harness.diagnostics.monitor) adds scorers/<name>.json report cards and diagnostics.csv; a failure there is
    recorded in run.json (`diagnostics_errors`), never raised."""
    run_dir.mkdir(parents=True, exist_ok=True)
    diagnostics_errors = list(getattr(monitor, "errors", []) or [])
    if monitor is not None:
        try:
            with figure_style():
                write_cards(run_dir, monitor.cards)
                if not monitor.diagnostics.empty:
                    monitor.diagnostics.to_csv(run_dir / "diagnostics.csv", index=False)
                write_round_figure(run_dir, spec, results, records)
                write_overoptimisation(run_dir, spec, monitor)
                write_cross_reward(run_dir, monitor)
        except Exception as exc:  # the table matters more than its diagnostics
            diagnostics_errors.append(f"writing report cards / diagnostics: {type(exc).__name__}: {exc}")
    if units is not None and not units.empty:
        units.to_parquet(run_dir / "units.parquet", index=False)
    results.to_parquet(run_dir / "results.parquet", index=False)
    results.to_csv(run_dir / "results.csv", index=False)
    results.to_json(run_dir / "results.json", orient="records", indent=1)
    (run_dir / "spec.json").write_text(json.dumps(spec.model_dump(mode="json"), indent=1))
    run_info = {
        "spec": spec.name, "spec_path": spec_path, "spec_hash": spec.digest, "seeds": run_seeds(results) or spec.seeds, "git_sha": git_sha(),
        "python": sys.version.split()[0], "platform": platform.platform(), "packages": package_versions(),
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **info,
    }
    if monitor is not None:
        run_info["diagnostics_errors"] = diagnostics_errors
    (run_dir / "run.json").write_text(json.dumps(run_info, indent=1, default=str))
    (run_dir / "table.md").write_text(render_markdown(results, spec) + _run_extras(run_dir, spec))
    (run_dir / "table.tex").write_text(render_latex(results, spec))
    if records is not None and not records.empty:
        records.to_csv(run_dir / "records.csv", index=False)

    plots = report_plots(spec, results)  # drawn once: PNGs under figures/ for papers, SVG in the report
    for plot in plots:
        save_png(plot, run_dir / "figures")
    if samples:
        write_galleries(run_dir, spec, samples)

        write_samples_manifest(run_dir, samples, info.get("cache"), int(results["seed"].iloc[0]) if not results.empty else spec.seeds[0])

    write_html_report(run_dir, plots)


def write_overoptimisation(run_dir: Path, spec: Spec, monitor: Any) -> None:
    """The best-of-n curves (harness.diagnostics.overoptimisation), when the run has any:
    `overoptimisation.csv`, `overoptimisation_fits.csv` and `figures/overoptimisation.png`."""
    table = getattr(monitor, "overoptimisation", None)
    if table is None or table.empty:
        return
    table.to_csv(run_dir / "overoptimisation.csv", index=False)
    monitor.overoptimisation_fits.to_csv(run_dir / "overoptimisation_fits.csv", index=False)
    write_overoptimisation_figure(run_dir, spec, table, monitor.overoptimisation_fits)


def write_cross_reward(run_dir: Path, monitor: Any) -> None:
    """The cross-reward matrix (harness.diagnostics.cross_reward), when the run has one:
    `cross_reward.csv` and `figures/cross_reward.png`."""
    table = getattr(monitor, "cross_reward", None)
    if table is None or table.empty:
        return
    table.to_csv(run_dir / "cross_reward.csv", index=False)
    write_cross_reward_figure(run_dir, table)


#: what `write_run` puts in a run directory (a re-run into the same folder clears these first)
RUN_OUTPUTS = ("results.parquet", "results.csv", "results.json", "spec.json", "run.json", "table.md", "table.tex",
               "records.csv", "gallery.png", "gallery", "figures",
               "units.parquet", "samples.json", "report.html", "scorers", "diagnostics.csv",
               "overoptimisation.csv", "overoptimisation_fits.csv", "cross_reward.csv")
