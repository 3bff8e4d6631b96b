"""`ganrm-bench run`: compute what is missing for a spec, then print its table and where the run went."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape

from ganrm_bench.harness.app.cli.common import CacheOpt, SetOpt, SpecArg, err, out, progress_for, say_default_spec, setup_logging
from ganrm_bench.harness.app.cli.plan import print_plans
from ganrm_bench.harness.app.services.plan import plan as plan_spec
from ganrm_bench.harness.app.services.run import as_random_weights_run, make_context
from ganrm_bench.harness.app.services.run import run as run_spec
from ganrm_bench.harness.app.services.specs import open_spec
from ganrm_bench.harness.report.tables import render_markdown
from ganrm_bench.harness.runtime import random_weights as rw
from ganrm_bench.harness.spec.assets import check_offline
from ganrm_bench.harness.store.offline import go_offline


def run(
    spec: Optional[Path] = SpecArg,
    out_dir: Optional[Path] = typer.Option(None, "--out", help="Run directory (default reports/runs/<spec>-<time>)."),
    cache: Optional[Path] = CacheOpt,
    device: str = typer.Option("auto", help="auto, cpu, cuda, cuda:N or mps."),
    batch_size: Optional[int] = typer.Option(None, help="Override every plugin's batch size."),
    seed: Optional[list[int]] = typer.Option(None, help="Run these seeds instead of the spec's."),
    sets: Optional[list[str]] = SetOpt,
    dry_run: bool = typer.Option(False, "--dry-run", help="Only show the plan."),
    offline: bool = typer.Option(False, "--offline", help="Never touch the network; fail fast naming any missing asset."),
    progress: bool = typer.Option(True, help="Progress bars on a terminal; elsewhere (a pipe, a log) a line every few seconds per long step."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log what is computed and loaded (our own debug messages; other libraries stay at warnings)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Let --out replace a run directory of another spec."),
    random_weights: bool = typer.Option(False, "--random-weights", help="Smoke test: build every model at full size from its shipped architecture config with random weights (no downloads); recorded in run.json and in every cache key."),
    limit_prompts: Optional[int] = typer.Option(None, "--limit-prompts", help="Keep the first N prompts of every prompt set (recorded in run.json and the keys it changes)."),
) -> None:
    """Compute what is missing for a spec, then write results and tables to a run directory."""
    setup_logging(verbose)
    say_default_spec(spec)
    if dry_run:
        _dry_run(spec, sets, cache, device, seed, random_weights, limit_prompts, offline)
        return
    done = run_spec(spec, seeds=seed, overrides=list(sets or []), cache=cache, out=out_dir, device=device, batch_size=batch_size,
                    random_weights=random_weights, limit_prompts=limit_prompts, offline=offline, overwrite=overwrite,
                    progress=progress_for(progress))
    _say_skipped(done.skipped)
    outcome = done.outcome
    if done.run_dir is None:  # not process 0: that one writes the run directory and prints the table
        rank, world = done.rank_and_world
        for f in outcome.failures:
            err.print(f"  - process {rank} of {world}: {f}")
        if outcome.failures:
            raise typer.Exit(1)
        return
    if not outcome.records.empty:
        out.print(f"per-round records (reward mean/variance, a reward-hacking signal): {done.run_dir / 'records.csv'}")
    out.print(render_markdown(outcome.results, done.spec), soft_wrap=True, markup=False, highlight=False)  # rows stay whole
    _print_monitor(outcome.monitor, done.run_dir)
    did = ", ".join(f"{v} {k}" for k, v in {**dict(outcome.computed), **outcome.counters}.items()) or "nothing (all cached)"
    out.print(f"computed: {did}; {done.seconds:.1f}s. Run directory: {done.run_dir}", soft_wrap=True)
    if outcome.failures:
        err.print(f"[red]{len(outcome.failures)} cell(s) failed[/red] (everything else is saved; re-run to resume):")
        for f in outcome.failure_groups or outcome.failures:
            err.print(f"  - {escape(f)}", highlight=False)
        raise typer.Exit(1)


def _dry_run(spec, sets, cache, device: str, seeds, random_weights: bool, limit_prompts, offline: bool) -> None:
    s, _ = open_spec(spec, list(sets or []))  # the default was announced by `run`
    ctx = make_context(s, cache=cache, device=device, limit_prompts=limit_prompts, read_only=True)
    if offline:
        go_offline()
        if not random_weights:
            check_offline(s, ctx.store)
    with rw.enabled(random_weights):
        if random_weights:
            s, skipped = as_random_weights_run(s)
            _say_skipped(skipped)
        print_plans(s.name, plan_spec(s, ctx, seeds=seeds or None))


def _say_skipped(skipped: dict[str, str]) -> None:
    for column, why in skipped.items():
        err.print(f"[yellow]--random-weights: column {column!r} left out[/yellow]: {escape(why)}", highlight=False)


def _print_monitor(monitor, run_dir: Path) -> None:
    """Where the reward-model cards and the over-optimisation table are, and any flag raised."""
    if monitor is None:
        return
    if monitor.cards:
        out.print(f"reward-model report cards: {run_dir / 'scorers'} ({', '.join(monitor.cards)})")
    diag = monitor.diagnostics
    if not diag.empty:
        flagged = diag[diag["flags"].fillna("") != ""]
        out.print(f"over-optimisation monitor: {run_dir / 'diagnostics.csv'} ({len(flagged)} of {len(diag)} lines flagged)")
        for r in flagged.itertuples():
            err.print(f"[yellow]⚠ {r.row} / {r.scorer} (seed {r.seed}): {r.flags}[/yellow]")
    if monitor.errors:
        err.print(f"[yellow]{len(monitor.errors)} diagnostics error(s)[/yellow], recorded in run.json (diagnostics_errors)")
