"""`ganrm-bench study serve|results`: the CLI only dispatches to the study modules."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from ganrm_bench.harness.app.study.app import create_app
from ganrm_bench.harness.app.study.db import StudyDB
from ganrm_bench.harness.app.study.pairs import Study
from ganrm_bench.harness.app.study.results import render_markdown, summarise, voted_items
from ganrm_bench.harness.app.study.scoring import scorer_scores
from ganrm_bench.harness.errors import MissingExtraError
from ganrm_bench.harness.report.html import write_html_report
from ganrm_bench.harness.report.samples import read_samples_manifest
from ganrm_bench.harness.store.artifacts import Store

app = typer.Typer(no_args_is_help=True, help="A blind human preference study over a run's samples, in the browser.")
out = Console()

DbOpt = typer.Option(None, "--db", help="The votes' SQLite file (default <run>/study.sqlite).")
CacheOpt = typer.Option(None, "--cache", help="The store holding the run's samples (default: the one the run used).")


def _store(run_dir: Path, cache: Optional[Path]):
    if cache is None:
        manifest = run_dir / "samples.json"
        cache = Path(json.loads(manifest.read_text())["store"]) if manifest.exists() else None
    return Store(cache)


@app.command()
def serve(
    run_dir: Path = typer.Argument(..., help="A run directory (with samples.json)."),
    rows: str = typer.Option(..., "--rows", help="Comma-separated rows to compare, e.g. base,dpo (every two of them are paired)."),
    host: str = typer.Option("127.0.0.1", help="Address to bind; the default serves this machine only."),
    port: int = typer.Option(8765, help="Port."),
    rater: str = typer.Option("", "--rater", help="Pre-fill this rater name on the start page."),
    max_pairs: Optional[int] = typer.Option(None, "--max-pairs", help="At most this many prompts per row pair (a seeded choice)."),
    db: Optional[Path] = DbOpt,
    cache: Optional[Path] = CacheOpt,
) -> None:
    """Serve the study until interrupted; votes are saved as they are cast, so it can be stopped and resumed."""
    for module in ("uvicorn", "starlette", "multipart"):
        try:
            __import__(module)
        except ModuleNotFoundError:
            raise MissingExtraError("study serve", "study", module) from None
    import uvicorn

    store = _store(run_dir, cache)
    study = Study.from_samples(read_samples_manifest(run_dir, store.root), [r.strip() for r in rows.split(",") if r.strip()], max_pairs)
    database = StudyDB(db or run_dir / "study.sqlite")
    application = create_app(study, database, default_rater=rater)
    if host not in ("127.0.0.1", "localhost", "::1"):
        out.print(f"[yellow]serving on {host}: anyone who can reach this address can vote[/yellow]")
    out.print(f"study of {len(study.pairs)} pairs at http://{host}:{port}/ — votes in {database.path}")
    uvicorn.run(application, host=host, port=port, log_level="warning")


@app.command()
def results(
    run_dir: Path = typer.Argument(..., help="A run directory with a study."),
    db: Optional[Path] = DbOpt,
    cache: Optional[Path] = CacheOpt,
    cached_only: bool = typer.Option(False, "--cached-only", help="Compare only scorers whose scores of the samples are cached."),
) -> None:
    """Write human.csv and the study's table (win rates, κ, scorer agreement); refresh report.html."""
    db_path = db or run_dir / "study.sqlite"
    store = _store(run_dir, cache)
    keys = voted_items(db_path)
    items = {it.key: it for its in read_samples_manifest(run_dir, store.root).values() for it in its if it.key in keys}
    scores = scorer_scores(run_dir, list(items.values()), store, compute_missing=not cached_only) if items else {}
    summary = summarise(run_dir, db_path, scores)
    write_html_report(run_dir)
    out.print(render_markdown(summary), markup=False, highlight=False)
    out.print(f"votes: {run_dir / 'human.csv'}; report: {run_dir / 'report.html'}")
