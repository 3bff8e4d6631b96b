"""The `ganrm-bench` command line: run, plan, validate, list, report, check, cache."""

from __future__ import annotations

import logging
import os
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from ganrm_bench.harness.errors import UserError

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Train, apply and judge reward models for visual generators.")
cache_app = typer.Typer(no_args_is_help=True, help="Inspect and maintain the artifact store.")
app.add_typer(cache_app, name="cache")
env_app = typer.Typer(no_args_is_help=True, help="Separate environments for metrics whose packages clash with ours.")
app.add_typer(env_app, name="env")
out = Console()
err = Console(stderr=True)

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SPEC = REPO_ROOT / "benchmarks" / "mini" / "table1.yaml"


def _mount_optional_apps() -> None:
    """Sub-commands that live with their plugins (GAN-RM's `rm`, VBench's `env`)."""
    import importlib

    for module, name in (("ganrm_bench.methods.ganrm.cli", "rm"), ("ganrm_bench.harness.study.cli", "study")):
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name and module.startswith(exc.name):
                continue
            raise
        app.add_typer(mod.app, name=name)


def _context(cache: Optional[Path], device: str = "cpu", progress: bool = True, batch_size: Optional[int] = None):
    from ganrm_bench.harness.runtime import Context, Progress, resolve_device
    from ganrm_bench.harness.store import Store

    show = progress and os.environ.get("GANRM_BENCH_PROGRESS", "1") != "0" and err.is_terminal
    return Context(store=Store(cache), device=resolve_device(device), progress=Progress(show), batch_size=batch_size)


def _spec(path: Optional[Path], sets: Optional[list[str]] = None):
    from ganrm_bench.harness.spec import load_spec, parse_overrides

    return load_spec(path or DEFAULT_SPEC, parse_overrides(sets))


def _setup_logging(verbose: bool) -> None:
    from rich.logging import RichHandler

    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING, format="%(message)s", handlers=[RichHandler(console=err, show_path=False)])


CacheOpt = typer.Option(None, "--cache", envvar="GANRM_BENCH_CACHE", help="Artifact store root (default: the user cache dir).")
SpecArg = typer.Argument(None, help="A benchmark spec (YAML). Default: the miniature world's Table 1.")
SetOpt = typer.Option(None, "--set", help="PATH=VALUE: override a spec value by its dotted YAML path (repeatable), "
                      "e.g. generators.mini.steps=8; validated like the spec, recorded in run.json, part of every key it changes.")


@app.command()
def validate(
    spec: Path = typer.Argument(..., help="A benchmark spec (YAML)."),
    inputs: bool = typer.Option(False, "--inputs", help="Also open every local input the rows need (folders, tables, prompt files)."),
    cache: Optional[Path] = CacheOpt,
    sets: Optional[list[str]] = SetOpt,
) -> None:
    """Check a spec: schema, plugin names and parameters, references between entries."""
    s = _spec(spec, sets)
    out.print(f"[green]ok[/green] {spec}: {len(s.methods)} methods, {len(s.metrics)} metrics, seeds {s.seeds}")
    if inputs:
        from ganrm_bench.harness.preflight import require_inputs

        checks = require_inputs(s, _context(cache, progress=False))
        out.print(f"[green]inputs ok[/green]: {len(checks)} plugin(s) that the rows still need opened their inputs")


@app.command("list")
def list_plugins(
    kind: Optional[str] = typer.Argument(None, help="Only this kind (generator, scorer, method, metric, ...)."),
    name: Optional[str] = typer.Argument(None, help="Show this one plugin in full."),
) -> None:
    """Every plugin, one block each: a one-line description, then its parameters (type = default)."""
    from rich.text import Text

    from ganrm_bench.harness.builtins import register_builtins
    from ganrm_bench.harness.registry import REGISTRIES
    from ganrm_bench.harness.views import plugin_block, plugin_full

    register_builtins()
    kinds = [kind] if kind else list(REGISTRIES)
    for k in kinds:
        if k not in REGISTRIES:
            raise UserError(f"unknown plugin kind {k!r}; kinds: {', '.join(REGISTRIES)}")
    if name is not None:
        lines = plugin_full(kinds[0], REGISTRIES[kinds[0]].entry(name), out.width)
    else:
        lines = []
        for k in kinds:
            lines += [Text(f"{k} plugins", style="bold underline"), ""]
            for entry in REGISTRIES[k].entries():
                lines += [*plugin_block(entry, out.width), ""]
    for line in lines:
        out.print(line, markup=False, highlight=False, soft_wrap=True)


@app.command()
def plan(spec: Optional[Path] = SpecArg, cache: Optional[Path] = CacheOpt, sets: Optional[list[str]] = SetOpt,
         estimate: bool = typer.Option(False, "--estimate", help="Time a few units of each kind of work on this machine "
                                       "(random-init real-size models) and estimate the uncached work's total."),
         device: str = typer.Option("cpu", help="Device to time on with --estimate: cpu, cuda, auto.")) -> None:
    """Show the artifact graph: what is cached, what must be computed, and what is shared."""
    _print_plan(_spec(spec, sets), _context(cache, device=device if estimate else "cpu", progress=False), estimate=estimate)


def _print_plan(s, ctx, estimate: bool = False) -> None:
    from rich.markup import escape

    from ganrm_bench.harness.graph import Builder
    from ganrm_bench.harness.runner import build_cells, plan as make_plan, plan_totals
    from ganrm_bench.harness.views import plan_lines

    for seed in s.seeds:
        b = Builder(s, ctx, seed, planning=True)
        cells = build_cells(s, b)
        entries = make_plan([c.node for c in cells], ctx)
        users: dict[str, set[str]] = defaultdict(set)
        for c in cells:
            for n in c.node.walk():
                users[n.key].add(c.row)
        out.print(f"[bold]plan for {escape(s.name)} (seed {seed})[/bold]")
        for line in plan_lines(entries, users, out.width):
            out.print(line, highlight=False, soft_wrap=True)
        totals = plan_totals(entries)
        cached = sum(e.status == "cached" for e in entries)
        todo = sum(e.status == "compute" for e in entries)
        summary = ", ".join(f"{v} {k}" for k, v in totals.items()) or "nothing"
        out.print(f"{cached} artifacts cached, {todo} to compute: {summary}")
        if estimate:
            _print_estimate(entries, ctx)


def _print_estimate(entries, ctx) -> None:
    import time

    from ganrm_bench.harness.estimate import estimate as make_estimate, estimate_lines
    from ganrm_bench.harness.runner import Evaluator

    t0 = time.time()
    est = make_estimate(entries, ctx, Evaluator(ctx).peek)
    for line in estimate_lines(est, time.time() - t0):
        out.print(line, markup=False, highlight=False, soft_wrap=True)


@app.command()
def run(
    spec: Optional[Path] = SpecArg,
    out_dir: Optional[Path] = typer.Option(None, "--out", help="Run directory (default reports/runs/<spec>-<time>)."),
    cache: Optional[Path] = CacheOpt,
    device: str = typer.Option("auto", help="cpu, cuda, cuda:1, or auto."),
    batch_size: Optional[int] = typer.Option(None, help="Override every plugin's batch size."),
    seed: Optional[list[int]] = typer.Option(None, help="Run these seeds instead of the spec's."),
    sets: Optional[list[str]] = SetOpt,
    dry_run: bool = typer.Option(False, "--dry-run", help="Only show the plan."),
    offline: bool = typer.Option(False, "--offline", help="Never touch the network; fail fast naming any missing asset."),
    progress: bool = typer.Option(True, help="Progress bars (on a terminal)."),
    verbose: bool = typer.Option(False, "--verbose", "-v"),
) -> None:
    """Compute what is missing for a spec, then write results and tables to a run directory."""
    from rich.markup import escape

    from ganrm_bench.harness.numerics import numerics_record
    from ganrm_bench.harness.report import render_markdown, write_run
    from ganrm_bench.harness.runner import run_spec

    _setup_logging(verbose)
    s = _spec(spec, sets)
    device = s.runtime.device if device == "auto" else device
    ctx = _context(cache, device, progress, batch_size or s.runtime.batch_size)
    if offline:
        from ganrm_bench.harness.assets import check_offline

        os.environ["HF_HUB_OFFLINE"] = "1"
        os.environ["GANRM_BENCH_OFFLINE"] = "1"
        check_offline(s, ctx.store)
    if dry_run:
        _print_plan(s, ctx)
        return
    t0 = time.time()
    outcome = run_spec(s, ctx, seeds=seed or None)
    elapsed = time.time() - t0
    run_dir = out_dir or Path("reports/runs") / f"{s.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    info = {"seconds": round(elapsed, 2), "cache": str(ctx.store.root), "device": ctx.device, "computed": dict(outcome.computed),
            "loaded": dict(outcome.loaded), "counters": outcome.counters, "failures": outcome.failures, "overrides": list(sets or []),
            "numerics": numerics_record(ctx.device)}
    write_run(run_dir, s, str(spec or DEFAULT_SPEC), outcome.results, info, outcome.samples, outcome.records, outcome.units)
    if not outcome.records.empty:
        out.print(f"per-round records (reward mean/variance, a reward-hacking signal): {run_dir / 'records.csv'}")
    out.print(render_markdown(outcome.results, s))
    did = ", ".join(f"{v} {k}" for k, v in {**dict(outcome.computed), **outcome.counters}.items()) or "nothing (all cached)"
    out.print(f"computed: {did}; {elapsed:.1f}s. Run directory: {run_dir}")
    if outcome.failures:
        err.print(f"[red]{len(outcome.failures)} cell(s) failed[/red] (everything else is saved; re-run to resume):")
        for f in outcome.failure_groups or outcome.failures:
            err.print(f"  - {escape(f)}", highlight=False)
        raise typer.Exit(1)


@app.command("fetch-assets")
def fetch_assets_cmd(
    spec: Path = typer.Argument(..., help="A benchmark spec (YAML)."),
    cache: Optional[Path] = CacheOpt,
    dry_run: bool = typer.Option(False, "--dry-run", help="Only list the assets and whether they are present."),
) -> None:
    """Download every model and data set a spec needs into the cache (on a networked machine)."""
    from ganrm_bench.harness.assets import fetch_assets
    from ganrm_bench.harness.store import Store

    report_ = fetch_assets(_spec(spec), Store(cache), dry_run=dry_run)
    out.print(report_)


@app.command()
def report(
    run_dir: Path = typer.Argument(..., help="A run directory."),
    format: str = typer.Option("markdown", "--format", "-f", help="markdown | latex | csv | html"),
) -> None:
    """Re-render a run's table without recomputing anything."""
    from ganrm_bench.harness.html_report import render_html
    from ganrm_bench.harness.report import load_run, render_latex, render_markdown

    results, s = load_run(run_dir)
    renderers = {"markdown": lambda: render_markdown(results, s), "latex": lambda: render_latex(results, s), "csv": lambda: results.to_csv(index=False),
                 "html": lambda: render_html(run_dir)}
    if format not in renderers:
        raise UserError(f"--format {format!r}: choose markdown, latex, csv or html")
    sys.stdout.write(renderers[format]())


@app.command()
def check(
    run_dir: Path = typer.Argument(..., help="A run directory."),
    baseline: Path = typer.Option(..., "--baseline", help="A run directory or committed baseline folder (results + units.parquet), or a results file."),
    tolerance: Optional[list[str]] = typer.Option(None, help="COLUMN=VALUE non-inferiority margin in the metric's units (repeatable; default: the spec's reference.tolerance, else 0)."),
    confidence: float = typer.Option(0.95, help="One-sided confidence of the test."),
) -> None:
    """Exit 1 when a cell is worse than the baseline by more than its tolerance, with the given confidence.

    Per cell: R = how much worse the run is than the baseline. FAIL when the one-sided lower
    confidence bound of R exceeds the column's tolerance. Paired (same prompts: per-prompt bootstrap,
    or block jackknife for FID/KID) when both sides have units.parquet, else unpaired from the two CIs
    (said per cell). Each line also gives the smallest regression the comparison detects (80% power).
    """
    from ganrm_bench.harness.gate import check_against_baseline
    from ganrm_bench.harness.report import load_run, load_units, read_results_file

    results, s = load_run(run_dir)
    tol = dict(s.reference.tolerance)
    for t in tolerance or []:
        col, _, val = t.partition("=")
        try:
            tol[col] = float(val)
        except ValueError:
            raise UserError(f"--tolerance {t!r}: expected COLUMN=NUMBER, e.g. fid=3") from None
    base = read_results_file(baseline)
    base_units = load_units(baseline) if baseline.is_dir() else None
    known = set(base["column"])
    tol = {c: v for c, v in tol.items() if c in known or c in {t.partition("=")[0] for t in tolerance or []}}
    report_ = check_against_baseline(results, base, tolerance=tol, units=load_units(run_dir), baseline_units=base_units,
                                     confidence=confidence)
    from ganrm_bench.harness.numerics import mismatch_warning

    if warning := mismatch_warning(run_dir, baseline):
        err.print(f"[yellow]warning:[/yellow] {warning}")
    for line in report_.lines():
        (err if line.startswith("FAIL") else out).print(line, markup=False, highlight=False, soft_wrap=True)
    if report_.failures:
        err.print(f"[red]{len(report_.failures)} regression(s)[/red] against {baseline} (one-sided {confidence:.0%})")
        raise typer.Exit(1)
    out.print(f"[green]no regression[/green] against {baseline} (one-sided {confidence:.0%}, {len(report_.cells)} cells)")


@app.command()
def baseline(
    run_dir: Path = typer.Argument(..., help="A run directory."),
    out_dir: Path = typer.Option(..., "--out", help="The baseline folder to write (e.g. reports/baselines/<spec>)."),
) -> None:
    """Write a run's committed baseline: results and the per-cell units a paired `check` needs (text files)."""
    from ganrm_bench.harness.report import write_baseline

    files = write_baseline(run_dir, out_dir)
    size = sum(f.stat().st_size for f in files)
    out.print(f"baseline written to {out_dir}: {', '.join(f.name for f in files)} ({size / 1024:.0f} KiB)")


@cache_app.command("ls")
def cache_ls(cache: Optional[Path] = CacheOpt) -> None:
    """List artifacts in the store."""
    from rich.markup import escape

    from ganrm_bench.harness.store import Store

    store = Store(cache)
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


@cache_app.command("verify")
def cache_verify(cache: Optional[Path] = CacheOpt) -> None:
    """Check every artifact's files against the digests in its manifest; exit 1 on a mismatch."""
    from ganrm_bench.harness.store import Store

    problems = Store(cache).verify()
    if problems:
        for p in problems:
            err.print(f"  - {p}")
        raise typer.Exit(1)
    out.print("[green]store verified[/green]")


@cache_app.command("gc")
def cache_gc(
    cache: Optional[Path] = CacheOpt,
    older_than: Optional[float] = typer.Option(None, help="Also remove artifacts and items unused for this many days."),
    dry_run: bool = typer.Option(False, "--dry-run"),
) -> None:
    """Remove leftovers of interrupted writes (and, with --older-than, old artifacts)."""
    from ganrm_bench.harness.store import Store

    removed = Store(cache).gc(older_than_days=older_than, dry_run=dry_run)
    out.print(f"{'would remove' if dry_run else 'removed'} {len(removed)} path(s)")


@env_app.command("vbench")
def env_vbench(
    path: Optional[Path] = typer.Option(None, "--path", help="Where to create the venv (default: under the cache)."),
    cache: Optional[Path] = CacheOpt,
    force: bool = typer.Option(False, "--force", help="Recreate it even if present."),
    pip_arg: Optional[list[str]] = typer.Option(None, "--pip-arg", help="Extra arguments for pip (repeatable)."),
) -> None:
    """Create the VBench environment (its own venv: vbench pins transformers 4.33 and numpy<2)."""
    from ganrm_bench.metrics.vbench import create_env
    from ganrm_bench.harness.store import default_root

    env = create_env(path, cache_root=cache or default_root(), pip_args=tuple(pip_arg or ()), force=force, log=out.print)
    out.print(f"[green]vbench environment ready:[/green] {env}")


def main() -> None:
    """Entry point: a UserError prints as one clear message (exit 2), never a traceback."""
    _mount_optional_apps()
    try:
        app()
    except UserError as exc:
        from rich.markup import escape

        err.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False)
        sys.exit(exc.exit_code)


if __name__ == "__main__":
    main()
