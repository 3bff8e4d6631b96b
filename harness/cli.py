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
DEFAULT_SPEC = REPO_ROOT / "benchmarks" / "mini" / "table1.yaml"  # = harness.execute.DEFAULT_SPEC (shipped in wheels too)


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
    from ganrm_bench.harness.distributed import rank_and_world
    from ganrm_bench.harness.runtime import Context, Progress, process_device
    from ganrm_bench.harness.store import Store

    show = progress and rank_and_world()[0] == 0
    return Context(store=Store(cache), device=process_device(device), progress=Progress.auto(sys.stderr, enabled=show), batch_size=batch_size)


def _spec(path: Optional[Path], sets: Optional[list[str]] = None):
    from ganrm_bench.harness.execute import resolve_spec_path
    from ganrm_bench.harness.spec import load_spec, parse_overrides

    return load_spec(resolve_spec_path(path) if path else DEFAULT_SPEC, parse_overrides(sets))


def _setup_logging(verbose: bool) -> None:
    from rich.logging import RichHandler

    # -v is about our work: third-party loggers (matplotlib, PIL, filelock, urllib3, ...) stay at WARNING
    logging.basicConfig(level=logging.WARNING, format="%(message)s", handlers=[RichHandler(console=err, show_path=False)])
    logging.getLogger("ganrm_bench").setLevel(logging.DEBUG if verbose else logging.WARNING)


CacheOpt = typer.Option(None, "--cache", envvar="GANRM_BENCH_CACHE", help="Artifact store root (default: the user cache dir).")
SpecArg = typer.Argument(None, help="A benchmark spec (YAML), or a shipped one by name (mini/table1). Default: the miniature world's Table 1.")
SetOpt = typer.Option(None, "--set", help="PATH=VALUE: override a spec value by its dotted YAML path (repeatable), "
                      "e.g. generators.mini.steps=8; validated like the spec, recorded in run.json, part of every key it changes.")


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            out.print(f"ganrm-bench {version('ganrm-bench')}", highlight=False)
        except PackageNotFoundError:  # pragma: no cover - running from a source tree that is not installed
            out.print("ganrm-bench (not installed)")
        raise typer.Exit()


@app.callback()
def _main(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version and exit.")) -> None:
    """Train, apply and judge reward models for visual generators."""


@app.command()
def validate(
    spec: Optional[Path] = SpecArg,
    inputs: bool = typer.Option(False, "--inputs", help="Also open every local input the rows need (folders, tables, prompt files)."),
    cache: Optional[Path] = CacheOpt,
    sets: Optional[list[str]] = SetOpt,
) -> None:
    """Check a spec: schema, plugin names and parameters, references between entries; warn about
    cells judged by the row's own selector (not held-out)."""
    s = _spec(spec, sets)
    out.print(f"[green]ok[/green] {spec or DEFAULT_SPEC}: {_counted(len(s.methods), 'methods')}, "
              f"{_counted(len(s.metrics), 'metrics')}, seeds {s.seeds}", highlight=False, soft_wrap=True)
    if inputs:
        from ganrm_bench.harness.preflight import require_inputs

        checks = require_inputs(s, _context(cache, progress=False))
        out.print(f"[green]inputs ok[/green]: {len(checks)} plugin(s) that the rows still need opened their inputs")
    from ganrm_bench.harness.monitor import heldout_warnings

    warnings: list[str] = []
    try:
        warnings = heldout_warnings(s, _context(cache, progress=False))
    except UserError as exc:  # the schema is fine; the graph needs more (e.g. assets): say so, don't fail
        err.print(f"held-out check skipped: {exc}")
    for w in warnings:
        err.print(f"[yellow]warning[/yellow]: {w}")


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
    kinds = [_plugin_kind(kind, list(REGISTRIES))] if kind else list(REGISTRIES)
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


def _plugin_kind(kind: str, kinds: list[str]) -> str:
    """A registry kind from what a user types: `generator`, `generators`, `prompt`, `image`."""
    from ganrm_bench.harness.errors import did_you_mean

    for k in (kind, kind.rstrip("s"), kind + "s", kind.rstrip("s") + "s"):
        if k in kinds:
            return k
    raise UserError(f"unknown plugin kind {kind!r}{did_you_mean(kind, kinds)}", hint=f"kinds: {', '.join(kinds)}")


@app.command()
def plan(
    spec: Optional[Path] = SpecArg,
    cache: Optional[Path] = CacheOpt,
    seed: Optional[list[int]] = typer.Option(None, help="Plan these seeds instead of the spec's."),
    sets: Optional[list[str]] = SetOpt,
    estimate: bool = typer.Option(False, "--estimate", help="Time a few units of each kind of work on this machine "
                                  "(random-init real-size models) and estimate the uncached work's total."),
    device: str = typer.Option("cpu", help="Device to time on with --estimate: cpu, cuda, auto."),
) -> None:
    """Show the artifact graph: what is cached, what must be computed, and what is shared (writes nothing)."""
    _print_plan(_spec(spec, sets), _context(cache, device=device if estimate else "cpu", progress=False), seeds=seed or None,
                estimate=estimate)


def _print_plan(s, ctx, seeds: Optional[list[int]] = None, estimate: bool = False) -> None:
    from rich.markup import escape

    from ganrm_bench.harness.graph import Builder
    from ganrm_bench.harness.runner import build_cells, plan as make_plan, plan_totals
    from ganrm_bench.harness.views import plan_lines

    for seed in seeds or s.seeds:
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
        summary = ", ".join(_counted(v, k) for k, v in totals.items()) or "nothing"
        out.print(f"{_counted(cached, 'artifacts')} cached, {todo} to compute: {summary}")
        if estimate:
            _print_estimate(entries, ctx)


def _counted(n: int, what: str) -> str:
    from ganrm_bench.harness.views import counted_noun

    return counted_noun(n, what)


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
    from rich.markup import escape

    from ganrm_bench.harness.execute import default_run_dir, make_context, resolve_spec_path, run_to_dir
    from ganrm_bench.harness.report import render_markdown
    from ganrm_bench.harness.runtime import Progress

    _setup_logging(verbose)
    if batch_size is not None and batch_size < 1:
        raise UserError(f"--batch-size {batch_size}: must be a positive number of samples per batch")
    s = _spec(spec, sets)
    from ganrm_bench.harness.distributed import rank_and_world

    rank = rank_and_world()[0]
    show = progress and rank == 0
    ctx = make_context(s, cache=cache, device=device, batch_size=batch_size, progress=Progress.auto(sys.stderr, enabled=show),
                       limit_prompts=limit_prompts)
    if offline:
        from ganrm_bench.harness.assets import check_offline

        os.environ["HF_HUB_OFFLINE"] = "1"
        os.environ["GANRM_BENCH_OFFLINE"] = "1"
        if not random_weights:  # random weights need no asset
            check_offline(s, ctx.store)
    if dry_run:
        from ganrm_bench.harness.random_weights import enabled

        with enabled(random_weights):
            if random_weights:
                from ganrm_bench.harness.execute import random_weights_skips, without_columns

                skips = random_weights_skips(s)
                for column, why in skips.items():
                    err.print(f"[yellow]--random-weights: column {column!r} left out[/yellow]: {escape(why)}", highlight=False)
                s = without_columns(s, list(skips)) if skips else s
            _print_plan(s, ctx, seeds=seed or None)
        return
    run_dir = out_dir or default_run_dir(s)
    if rank == 0:
        _claim_run_dir(run_dir, s, overwrite)
    done = run_to_dir(s, str(resolve_spec_path(spec) if spec else DEFAULT_SPEC), ctx, seeds=seed or None, out_dir=run_dir,
                      overrides=list(sets or []), random_weights=random_weights)
    outcome, elapsed = done.outcome, done.seconds
    for column, why in done.skipped.items():
        err.print(f"[yellow]--random-weights: column {column!r} left out[/yellow]: {escape(why)}", highlight=False)
    if done.run_dir is None:  # not process 0: that one writes the run directory and prints the table
        rank, world = done.rank_and_world
        for f in outcome.failures:
            err.print(f"  - process {rank} of {world}: {f}")
        if outcome.failures:
            raise typer.Exit(1)
        return
    if not outcome.records.empty:
        out.print(f"per-round records (reward mean/variance, a reward-hacking signal): {run_dir / 'records.csv'}")
    out.print(render_markdown(outcome.results, s), soft_wrap=True, markup=False, highlight=False)  # rows stay whole
    _print_monitor(outcome.monitor, run_dir)
    did = ", ".join(f"{v} {k}" for k, v in {**dict(outcome.computed), **outcome.counters}.items()) or "nothing (all cached)"
    out.print(f"computed: {did}; {elapsed:.1f}s. Run directory: {run_dir}", soft_wrap=True)
    if outcome.failures:
        err.print(f"[red]{len(outcome.failures)} cell(s) failed[/red] (everything else is saved; re-run to resume):")
        for f in outcome.failure_groups or outcome.failures:
            err.print(f"  - {escape(f)}", highlight=False)
        raise typer.Exit(1)


RUN_OUTPUTS = ("results.parquet", "results.csv", "results.json", "spec.json", "run.json", "table.md", "table.tex",
               "records.csv", "gallery.png", "gallery", "figures",
               "units.parquet", "samples.json", "report.html", "scorers", "diagnostics.csv")


def _claim_run_dir(run_dir: Path, s, overwrite: bool) -> None:
    """A run directory holds one spec's run: one of another spec is refused unless --overwrite; a
    reused one is cleared of the last run's outputs first, so no stale figure or gallery stays."""
    import json
    import shutil

    info_path = run_dir / "run.json"
    if not info_path.is_file():
        return
    try:
        old = json.loads(info_path.read_text())
    except (OSError, json.JSONDecodeError):
        old = {}
    if old.get("spec") != s.name and not overwrite:  # the same spec (edited or not) may re-use its folder
        raise UserError(f"--out {run_dir} holds a run of spec {old.get('spec', '?')!r}, not of {s.name!r}",
                        hint="choose another --out, or pass --overwrite to replace that run (its tables, figures and galleries)")
    for name in RUN_OUTPUTS:
        p = run_dir / name
        shutil.rmtree(p) if p.is_dir() else p.unlink(missing_ok=True)


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
    from ganrm_bench.harness.report import TABLE_FORMATS, load_run, render_table

    if format == "html":
        from ganrm_bench.harness.html_report import render_html

        sys.stdout.write(render_html(run_dir))
        return
    results, s = load_run(run_dir)
    if format not in TABLE_FORMATS:
        raise UserError(f"--format {format!r}: choose markdown, latex, csv or html")
    sys.stdout.write(render_table(results, s, format, run_dir=run_dir))


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


@cache_app.command("verify")
def cache_verify(
    cache: Optional[Path] = CacheOpt,
    quick: bool = typer.Option(False, "--quick", help="Only check that every file exists (no digests, no loading)."),
) -> None:
    """Check artifacts and items against their manifests' digests and that every item loads; exit 1 on a problem."""
    from ganrm_bench.harness.store import Store

    problems = Store(cache, create=False).verify(quick=quick)
    if problems:
        for p in problems:
            err.print(f"  - {p}")
        raise typer.Exit(1)
    out.print(f"[green]store verified[/green]{' (quick: files exist; digests not checked)' if quick else ''}")


@cache_app.command("gc")
def cache_gc(
    cache: Optional[Path] = CacheOpt,
    older_than: Optional[float] = typer.Option(None, help="Also remove artifacts and items unused for this many days."),
    dry_run: bool = typer.Option(False, "--dry-run"),
) -> None:
    """Remove leftovers of interrupted writes (and, with --older-than, old artifacts)."""
    from ganrm_bench.harness.store import Store

    removed = Store(cache, create=False).gc(older_than_days=older_than, dry_run=dry_run)
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

        err.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)


if __name__ == "__main__":
    main()
