"""Reading run directories and committed baselines: results, spec, per-cell units, the
over-optimisation diagnostics and reward-model report cards, in the files `harness.report.write`
wrote (or a baseline's text copies)."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pandas as pd

from ganrm_bench.harness.errors import UserError
from ganrm_bench.harness.spec.schema import Spec


def load_run(run_dir: Path) -> tuple[pd.DataFrame, Spec]:
    run_dir = Path(run_dir)
    if not (run_dir / "results.csv").exists():
        raise UserError(f"{run_dir}: not a run directory (no results.csv)", hint="give the folder a `ganrm-bench run` wrote")
    results = pd.read_parquet(run_dir / "results.parquet") if (run_dir / "results.parquet").exists() else pd.read_csv(run_dir / "results.csv")
    spec = Spec.model_validate(json.loads((run_dir / "spec.json").read_text()))
    return results, spec


def load_units(run_dir: Path) -> pd.DataFrame | None:
    """A run directory's (or baseline folder's) per-cell units, or None when it has none."""
    run_dir = Path(run_dir)
    if (run_dir / "units.parquet").is_file():
        return pd.read_parquet(run_dir / "units.parquet")
    if (run_dir / "units.csv").is_file():
        return pd.read_csv(run_dir / "units.csv", dtype={"unit": str, "prompts_key": str})
    return None


def load_diagnostics(run_dir: Path) -> pd.DataFrame | None:
    """A run's over-optimisation monitor (diagnostics.csv: one line per row, trained scorer and
    seed, with its flags), or None when the run wrote none (no trained scorer judged a row)."""
    path = Path(run_dir) / "diagnostics.csv"
    return pd.read_csv(path) if path.is_file() else None


def load_overoptimisation(run_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame] | None:
    """A run's best-of-n over-optimisation curves and their fits (overoptimisation.csv,
    overoptimisation_fits.csv; harness.diagnostics.overoptimisation), or None when it has no curve."""
    path = Path(run_dir) / "overoptimisation.csv"
    if not path.is_file():
        return None
    fits = Path(run_dir) / "overoptimisation_fits.csv"
    return pd.read_csv(path), (pd.read_csv(fits) if fits.is_file() else pd.DataFrame())


def load_cross_reward(run_dir: Path) -> pd.DataFrame | None:
    """A run's cross-reward matrix (cross_reward.csv: one line per row optimised for a proxy and
    judge, with the paired Δ and CI; harness.diagnostics.cross_reward), or None when it has none."""
    path = Path(run_dir) / "cross_reward.csv"
    return pd.read_csv(path, dtype={"seeds": str}) if path.is_file() else None


def load_cards(run_dir: Path) -> dict[str, dict]:
    """A run's reward-model report cards (scorers/<name>.json), by file name without .json; {}
    when it has none. An unreadable card is left out (and logged): a report is written without it."""
    folder = Path(run_dir) / "scorers"
    cards = {}
    for p in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            card = json.loads(p.read_text())
        except (OSError, ValueError) as exc:
            logging.getLogger("ganrm_bench").warning("report card %s: unreadable (%s)", p, exc)
            continue
        if isinstance(card, dict):
            cards[p.stem] = card
    return cards


BASELINE_FILES = ("results.csv", "spec.json", "run.json")


def write_baseline(run_dir: Path, out: Path) -> list[Path]:
    """A committed baseline: what a paired `check` needs from a run, in diffable text (results.csv,
    units.csv: per-prompt sums or leave-one-block-out values per cell, spec.json, run.json)."""
    run_dir, out = Path(run_dir), Path(out)
    load_run(run_dir)  # a clear error when it is not a run directory
    units = load_units(run_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name in BASELINE_FILES:
        if (run_dir / name).exists():
            shutil.copyfile(run_dir / name, out / name)
            written.append(out / name)
    if units is not None:
        units.to_csv(out / "units.csv", index=False)  # full precision: an identical re-run pairs to exactly 0
        written.append(out / "units.csv")
    return written


def read_results_file(path: Path) -> pd.DataFrame:
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: baseline file not found")
    if path.is_dir():
        return load_run(path)[0]
    readers = {".csv": pd.read_csv, ".json": pd.read_json, ".parquet": pd.read_parquet}
    if path.suffix not in readers:
        raise UserError(f"{path}: baseline must be a .csv, .json or .parquet results file, or a run directory")
    df = readers[path.suffix](path)
    missing = {"row", "column", "value", "direction"} - set(df.columns)
    if missing:
        raise UserError(f"{path}: baseline lacks the column(s) {sorted(missing)}", hint="use the results.csv a run wrote")
    return df
