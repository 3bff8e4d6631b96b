"""`ganrm-bench cache ls|verify|gc` and `ganrm-bench fetch-assets`: the store and the assets in it."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape
from rich.table import Table

from ganrm_bench.harness.app.cli.common import CacheOpt, err, out, spec_from
from ganrm_bench.harness.spec.assets import fetch_assets
from ganrm_bench.harness.store.artifacts import Store

app = typer.Typer(no_args_is_help=True, help="Inspect and maintain the artifact store.")


@app.command("ls")
def cache_ls(cache: Optional[Path] = CacheOpt) -> None:
    """List artifacts in the store."""
    store = Store(cache, create=False)
    table = Table(title=f"artifacts in {store.root}", title_justify="left")
    for col in ("key", "producer", "label", "files", "created"):
        table.add_column(col)
    n = 0
    for art in store.artifacts():
        n += 1
        m = art.manifest
        created = time.strftime("%Y-%m-%d %H:%M", time.localtime(m.get("created", 0)))
        table.add_row(art.key[:12], art.producer, escape(str(m.get("label", ""))), str(len(m.get("files", {})) + len(m.get("items", {}))), created)
    out.print(table)
    items = sum(1 for _ in (store.root / "items").glob("*/*"))
    out.print(f"{n} artifacts, {items} items")


@app.command("verify")
def cache_verify(
    cache: Optional[Path] = CacheOpt,
    quick: bool = typer.Option(False, "--quick", help="Only check that every file exists (no digests, no loading)."),
) -> None:
    """Check artifacts and items against their manifests' digests and that every item loads; exit 1 on a problem."""
    problems = Store(cache, create=False).verify(quick=quick)
    if problems:
        for p in problems:
            err.print(f"  - {p}")
        raise typer.Exit(1)
    out.print(f"[green]store verified[/green]{' (quick: files exist; digests not checked)' if quick else ''}")


@app.command("gc")
def cache_gc(
    cache: Optional[Path] = CacheOpt,
    older_than: Optional[float] = typer.Option(None, help="Also remove artifacts and items unused for this many days."),
    dry_run: bool = typer.Option(False, "--dry-run"),
) -> None:
    """Remove leftovers of interrupted writes (and, with --older-than, old artifacts)."""
    removed = Store(cache, create=False).gc(older_than_days=older_than, dry_run=dry_run)
    out.print(f"{'would remove' if dry_run else 'removed'} {len(removed)} path(s)")


def fetch_assets_cmd(
    spec: Path = typer.Argument(..., help="A benchmark spec (YAML)."),
    cache: Optional[Path] = CacheOpt,
    dry_run: bool = typer.Option(False, "--dry-run", help="Only list the assets and whether they are present (writes nothing)."),
) -> None:
    """Download every model and data set a spec needs into the cache (on a networked machine)."""
    s, _ = spec_from(spec)
    out.print(fetch_assets(s, Store(cache, read_only=dry_run), dry_run=dry_run))  # a dry run creates no store
