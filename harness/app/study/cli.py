"""`ganrm-bench study invite|serve|results`: parse, call the study's service (harness.app.services.study), print."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console

from ganrm_bench.harness.app.services import study as service

app = typer.Typer(no_args_is_help=True, help="A blind human preference study over a run's samples, in the browser, by invitation.")
out = Console()
err = Console(stderr=True)

RunArg = typer.Argument(..., help="A run directory (with samples.json).")
DbOpt = typer.Option(None, "--db", help="The study's SQLite file (default <run>/study.sqlite).")
CacheOpt = typer.Option(None, "--cache", help="The store holding the run's samples (default: the one the run used).")
UrlOpt = typer.Option(None, "--url", help="The address raters open, e.g. http://myhost:8765 (default: the served one).")


def _plain(text: str, console: Console = out) -> None:
    console.print(text, markup=False, highlight=False, soft_wrap=True)


@app.command()
def invite(
    run_dir: Path = RunArg,
    names: Optional[List[str]] = typer.Argument(None, help="Rater names (display only; unique ignoring case)."),
    count: int = typer.Option(0, "--count", help="Also invite this many raters named `rater N`."),
    url: Optional[str] = UrlOpt,
    db: Optional[Path] = DbOpt,
) -> None:
    """Print one invitation link per rater: the link is the rater's only way in (keep it; any browser, any time)."""
    for inv in service.invite(run_dir, names or [], count=count, db=db, url=url):
        typer.echo(f"{inv.name}\t{inv.link}")  # tab-separated as it is (a script can read it)


@app.command()
def serve(
    run_dir: Path = RunArg,
    rows: str = typer.Option(..., "--rows", help="Comma-separated rows to compare, e.g. base,dpo (every two of them are paired)."),
    host: str = typer.Option("127.0.0.1", help="Address to bind; the default serves this machine only (others need --allow-remote)."),
    port: int = typer.Option(service.DEFAULT_PORT, help="Port."),
    url: Optional[str] = UrlOpt,
    allow_remote: bool = typer.Option(False, "--allow-remote", help="Allow a --host other than loopback (plain HTTP: see docs/study.md)."),
    admin: bool = typer.Option(False, "--admin", help="Print a secret link to a live progress page."),
    max_pairs: Optional[int] = typer.Option(None, "--max-pairs", help="At most this many prompts per row pair (a seeded choice)."),
    overlap: int = typer.Option(service.DEFAULT_OVERLAP, "--overlap", help="Pairs every rater sees first (in their own order), for agreement."),
    repeats: int = typer.Option(service.DEFAULT_REPEATS, "--repeats", help="Attention checks per rater: a judged pair again, sides swapped."),
    db: Optional[Path] = DbOpt,
    cache: Optional[Path] = CacheOpt,
) -> None:
    """Serve the study until interrupted; votes are saved as they are cast, so it can be stopped and resumed."""
    server = service.serve(run_dir, rows.split(","), host=host, port=port, url=url, allow_remote=allow_remote, admin=admin,
                           max_pairs=max_pairs, overlap=overlap, repeats=repeats, db=db, cache=cache)
    for w in server.warnings:
        _plain(f"warning: {w}", err)
    _plain(f"study of {server.pairs} pairs for {server.raters} invited rater(s) at {server.url}/ — votes in {server.db_path}")
    if server.admin_link:
        _plain(f"progress (keep it private): {server.admin_link}")
    server.run()


@app.command()
def results(
    run_dir: Path = typer.Argument(..., help="A run directory with a study."),
    exclude: Optional[List[str]] = typer.Option(None, "--exclude", help="Leave this rater out of every number (repeatable)."),
    db: Optional[Path] = DbOpt,
    cache: Optional[Path] = CacheOpt,
    cached_only: bool = typer.Option(False, "--cached-only", help="Compare only scorers whose scores of the samples are cached."),
) -> None:
    """Write human.csv and the study's tables (win rates, κ, raters, scorer agreement); refresh report.html."""
    summary = service.results(run_dir, db=db, cache=cache, cached_only=cached_only, exclude=exclude or [])
    _plain(summary["markdown"])  # warnings first, then the tables
    _plain(f"votes: {run_dir / 'human.csv'}; report: {run_dir / 'report.html'}")
