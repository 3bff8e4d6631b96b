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

    for module, name in (("ganrm_bench.methods.ganrm.cli", "rm"),):
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

    return Context(store=Store(cache), device=resolve_device(device), progress=Progress.auto(sys.stderr, enabled=progress), batch_size=batch_size)


def _spec(path: Optional[Path]):
    from ganrm_bench.harness.spec import load_spec

    return load_spec(path or DEFAULT_SPEC)


def _setup_logging(verbose: bool) -> None:
    from rich.logging import RichHandler

    # -v is about our work: third-party loggers (matplotlib, PIL, filelock, urllib3, ...) stay at WARNING
    logging.basicConfig(level=logging.WARNING, format="%(message)s", handlers=[RichHandler(console=err, show_path=False)])
    logging.getLogger("ganrm_bench").setLevel(logging.DEBUG if verbose else logging.WARNING)


CacheOpt = typer.Option(None, "--cache", envvar="GANRM_BENCH_CACHE", help="Artifact store root (default: the user cache dir).")
SpecArg = typer.Argument(None, help="A benchmark spec (YAML). Default: the miniature world's Table 1.")


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
def validate(spec: Optional[Path] = SpecArg) -> None:
    """Check a spec: schema, plugin names and parameters, references between entries."""
    s = _spec(spec)
    out.print(f"[green]ok[/green] {spec or DEFAULT_SPEC}: {_counted(len(s.methods), 'methods')}, "
              f"{_counted(len(s.metrics), 'metrics')}, seeds {s.seeds}", highlight=False, soft_wrap=True)


@app.command("list")
def list_plugins(kind: Optional[str] = typer.Argument(None, help="Only this kind (generator, scorer, method, metric, ...).")) -> None:
    """Every plugin, with a one-line description and its parameters."""
    from ganrm_bench.harness.builtins import register_builtins
    from ganrm_bench.harness.registry import REGISTRIES

    register_builtins()
    kinds = [_plugin_kind(kind, list(REGISTRIES))] if kind else list(REGISTRIES)
    for k in kinds:
        table = Table(title=f"{k} plugins", show_lines=False, title_justify="left")
        for col in ("name", "description", "parameters"):
            table.add_column(col, overflow="fold")
        for entry in REGISTRIES[k].entries():
            try:
                obj = entry.resolve()
                params = _describe_params(getattr(obj, "Params", None))
            except Exception as exc:  # an optional extra missing: still list it
                params = f"(unavailable: {type(exc).__name__}: {exc})"
            name = entry.name + (f" ({', '.join(entry.aliases)})" if entry.aliases else "")
            table.add_row(name, entry.description, params)
        out.print(table)


def _plugin_kind(kind: str, kinds: list[str]) -> str:
    """A registry kind from what a user types: `generator`, `generators`, `prompt`, `image`."""
    from ganrm_bench.harness.errors import did_you_mean

    for k in (kind, kind.rstrip("s"), kind + "s", kind.rstrip("s") + "s"):
        if k in kinds:
            return k
    raise UserError(f"unknown plugin kind {kind!r}{did_you_mean(kind, kinds)}", hint=f"kinds: {', '.join(kinds)}")


def _describe_params(model) -> str:
    if model is None:
        return ""
    parts = []
    for name, field in model.model_fields.items():
        import typing

        plain = getattr(field.annotation, "__name__", None) if not typing.get_args(field.annotation) else None
        ann = plain or str(field.annotation).replace("typing.", "")
        default = "required" if field.is_required() else repr(field.get_default(call_default_factory=True))
        parts.append(f"{name}: {ann} = {default}")
    return "\n".join(parts)


@app.command()
def plan(
    spec: Optional[Path] = SpecArg,
    cache: Optional[Path] = CacheOpt,
    seed: Optional[list[int]] = typer.Option(None, help="Plan these seeds instead of the spec's."),
) -> None:
    """Show the artifact graph: what is cached, what must be computed, and what is shared (writes nothing)."""
    _print_plan(_spec(spec), _context(cache, progress=False), seeds=seed or None)


def _print_plan(s, ctx, seeds: Optional[list[int]] = None) -> None:
    from rich.markup import escape

    from ganrm_bench.harness.graph import Builder
    from ganrm_bench.harness.runner import build_cells, plan as make_plan, plan_totals

    for seed in seeds or s.seeds:
        b = Builder(s, ctx, seed, planning=True)
        cells = build_cells(s, b)
        entries = make_plan([c.node for c in cells], ctx)
        users: dict[str, set[str]] = defaultdict(set)
        for c in cells:
            for n in c.node.walk():
                users[n.key].add(c.row)
        table = Table(title=f"plan for {s.name} (seed {seed})", title_justify="left")
        for col in ("op", "artifact", "status", "work", "used by rows"):
            table.add_column(col, overflow="fold")
        counted: dict[str, set[str]] = defaultdict(set)  # items listed by an earlier row of the table
        for e in entries:
            if e.node.op.name == "plugin":
                continue
            parts = []
            for k, v in e.work.items():
                if isinstance(v, set):
                    new = v - counted[k]
                    counted[k] |= v
                    parts.append(_counted(len(new), k) + (f" (+{len(v) - len(new)} shared)" if len(new) < len(v) else ""))
                else:
                    parts.append(_counted(v, k))
            work = ", ".join(parts)
            style = {"cached": "green", "compute": "yellow"}.get(e.status, "white")
            table.add_row(e.node.op.name, escape(e.node.label), f"[{style}]{e.status}[/{style}]", work, ", ".join(sorted(users[e.node.key])))
        out.print(table)
        totals = plan_totals(entries)
        cached = sum(e.status == "cached" for e in entries)
        todo = sum(e.status == "compute" for e in entries)
        summary = ", ".join(_counted(v, k) for k, v in totals.items()) or "nothing"
        out.print(f"{_counted(cached, 'artifacts')} cached, {todo} to compute: {summary}")


def _counted(n: int, what: str) -> str:
    """`3 models to train`, `1 model to train` (the plural noun is the word before ' to ')."""
    if n == 1:
        head, sep, tail = what.partition(" to ")
        what = (head[:-1] if head.endswith("s") else head) + sep + tail
    return f"{n} {what}"


@app.command()
def run(
    spec: Optional[Path] = SpecArg,
    out_dir: Optional[Path] = typer.Option(None, "--out", help="Run directory (default reports/runs/<spec>-<time>)."),
    cache: Optional[Path] = CacheOpt,
    device: str = typer.Option("auto", help="auto, cpu, cuda, cuda:N or mps."),
    batch_size: Optional[int] = typer.Option(None, help="Override every plugin's batch size."),
    seed: Optional[list[int]] = typer.Option(None, help="Run these seeds instead of the spec's."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Only show the plan."),
    offline: bool = typer.Option(False, "--offline", help="Never touch the network; fail fast naming any missing asset."),
    progress: bool = typer.Option(True, help="Progress bars on a terminal; elsewhere (a pipe, a log) a line every few seconds per long step."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log what is computed and loaded (our own debug messages; other libraries stay at warnings)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Let --out replace a run directory of another spec."),
) -> None:
    """Compute what is missing for a spec, then write results and tables to a run directory."""
    from ganrm_bench.harness.report import render_markdown, write_run
    from ganrm_bench.harness.runner import run_spec

    _setup_logging(verbose)
    if batch_size is not None and batch_size < 1:
        raise UserError(f"--batch-size {batch_size}: must be a positive number of samples per batch")
    s = _spec(spec)
    device = s.runtime.device if device == "auto" else device
    ctx = _context(cache, device, progress, batch_size or s.runtime.batch_size)
    if offline:
        from ganrm_bench.harness.assets import check_offline

        os.environ["HF_HUB_OFFLINE"] = "1"
        os.environ["GANRM_BENCH_OFFLINE"] = "1"
        check_offline(s, ctx.store)
    if dry_run:
        _print_plan(s, ctx, seeds=seed or None)
        return
    run_dir = out_dir or Path("reports/runs") / f"{s.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    _claim_run_dir(run_dir, s, overwrite)
    t0 = time.time()
    outcome = run_spec(s, ctx, seeds=seed or None)
    elapsed = time.time() - t0
    info = {"seconds": round(elapsed, 2), "cache": str(ctx.store.root), "device": ctx.device, "computed": dict(outcome.computed),
            "loaded": dict(outcome.loaded), "counters": outcome.counters, "failures": outcome.failures}
    write_run(run_dir, s, str(spec or DEFAULT_SPEC), outcome.results, info, outcome.samples, outcome.records)
    if not outcome.records.empty:
        out.print(f"per-round records (reward mean/variance, a reward-hacking signal): {run_dir / 'records.csv'}")
    out.print(render_markdown(outcome.results, s), soft_wrap=True, markup=False, highlight=False)  # rows stay whole
    did = ", ".join(f"{v} {k}" for k, v in {**dict(outcome.computed), **outcome.counters}.items()) or "nothing (all cached)"
    out.print(f"computed: {did}; {elapsed:.1f}s. Run directory: {run_dir}", soft_wrap=True)
    if outcome.failures:
        err.print(f"[red]{len(outcome.failures)} cell(s) failed[/red] (everything else is saved; re-run to resume):")
        for f in outcome.failures:
            err.print(f"  - {f}")
        raise typer.Exit(1)


RUN_OUTPUTS = ("results.parquet", "results.csv", "results.json", "spec.json", "run.json", "table.md", "table.tex",
               "records.csv", "gallery.png", "gallery", "figures")


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
    format: str = typer.Option("markdown", "--format", "-f", help="markdown | latex | csv"),
) -> None:
    """Re-render a run's table without recomputing anything."""
    from ganrm_bench.harness.report import load_run, render_latex, render_markdown

    results, s = load_run(run_dir)
    renderers = {"markdown": lambda: render_markdown(results, s), "latex": lambda: render_latex(results, s), "csv": lambda: results.to_csv(index=False)}
    if format not in renderers:
        raise UserError(f"--format {format!r}: choose markdown, latex or csv")
    sys.stdout.write(renderers[format]())


@app.command()
def check(
    run_dir: Path = typer.Argument(..., help="A run directory."),
    baseline: Path = typer.Option(..., "--baseline", help="A results file (.csv/.json/.parquet) or run directory to compare with."),
    tolerance: Optional[list[str]] = typer.Option(None, help="COLUMN=VALUE absolute tolerances (default: the spec's)."),
) -> None:
    """Exit 1 when any metric is worse than the baseline beyond its tolerance (or its CI)."""
    from ganrm_bench.harness.report import check as find_regressions, load_run, read_results_file

    results, s = load_run(run_dir)
    tol = dict(s.reference.tolerance)
    for t in tolerance or []:
        col, _, val = t.partition("=")
        try:
            tol[col] = float(val)
        except ValueError:
            raise UserError(f"--tolerance {t!r}: expected COLUMN=NUMBER") from None
    problems = find_regressions(results, read_results_file(baseline), tol)
    if problems:
        err.print(f"[red]{len(problems)} regression(s)[/red] against {baseline}:")
        for p in problems:
            err.print(f"  - {p}")
        raise typer.Exit(1)
    out.print(f"[green]no regression[/green] against {baseline}")


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
