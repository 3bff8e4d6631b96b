"""`ganrm-bench plan` and `ganrm-bench validate`: what a run would compute, and whether a spec is sound."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape

from ganrm_bench.harness.app.cli.common import CacheOpt, SetOpt, SpecArg, err, out, print_plain, spec_from
from ganrm_bench.harness.app.cli.views import counted_noun, plan_lines
from ganrm_bench.harness.app.services.plan import SeedPlan
from ganrm_bench.harness.app.services.plan import plan as plan_spec
from ganrm_bench.harness.app.services.plan import validate as validate_spec
from ganrm_bench.harness.app.services.run import make_context
from ganrm_bench.harness.engine.estimate import estimate_lines


def plan(
    spec: Optional[Path] = SpecArg,
    cache: Optional[Path] = CacheOpt,
    seed: Optional[list[int]] = typer.Option(None, help="Plan these seeds instead of the spec's."),
    sets: Optional[list[str]] = SetOpt,
    estimate: bool = typer.Option(False, "--estimate", help="Time a few units of each kind of work on this machine "
                                  "(random-init real-size models) and estimate the uncached work's total."),
    device: str = typer.Option("cpu", help="Device to time on with --estimate: cpu, cuda, auto."),
    assume_prompts: Optional[int] = typer.Option(None, "--assume-prompts", metavar="N",
                                                 help="Count a prompt set whose file is not here (and whose entry declares no "
                                                 "expected_count) as N prompts; the plan lists every size it assumed."),
) -> None:
    """Show the artifact graph: what is cached, what must be computed, and what is shared (writes nothing)."""
    s, _ = spec_from(spec, sets)
    ctx = make_context(s, cache=cache, device=device if estimate else "cpu", read_only=True)
    print_plans(s.name, plan_spec(s, ctx, seeds=seed or None, with_estimate=estimate, assume_prompts=assume_prompts))


def print_plans(name: str, plans: list[SeedPlan]) -> None:
    for p in plans:
        out.print(f"[bold]plan for {escape(name)} (seed {p.seed})[/bold]")
        for line in plan_lines(p.entries, p.users, out.width):
            out.print(line, highlight=False, soft_wrap=True)
        summary = ", ".join(counted_noun(v, k) for k, v in p.totals.items()) or "nothing"
        out.print(f"{counted_noun(p.cached, 'artifacts')} cached, {p.to_compute} to compute: {summary}")
        if p.estimate is not None:
            print_plain(estimate_lines(p.estimate, p.estimate_seconds))
    assumed = sorted({a for p in plans for a in p.assumed})
    if assumed:
        out.print("[yellow]assumed sizes[/yellow] (their data are not on this machine; the counts above rest on them):", soft_wrap=True)
        print_plain([f"  {a.line()}" for a in assumed])


def validate(
    spec: Optional[Path] = SpecArg,
    inputs: bool = typer.Option(False, "--inputs", help="Also open every local input the rows need (folders, tables, prompt files)."),
    cache: Optional[Path] = CacheOpt,
    sets: Optional[list[str]] = SetOpt,
) -> None:
    """Check a spec: schema, plugin names and parameters, references between entries; warn about
    cells judged by the row's own selector (not held-out)."""
    s, path = spec_from(spec, sets)
    result = validate_spec(s, make_context(s, cache=cache, device="cpu", read_only=True), inputs=inputs)
    out.print(f"[green]ok[/green] {escape(str(spec or path))}: {counted_noun(len(s.methods), 'methods')}, "
              f"{counted_noun(len(s.metrics), 'metrics')}, seeds {s.seeds}", highlight=False, soft_wrap=True)
    if inputs:
        out.print(f"[green]inputs ok[/green]: {len(result.inputs)} plugin(s) that the rows still need opened their inputs")
    if result.skipped:
        err.print(f"held-out check skipped: {escape(result.skipped)}")
    for w in result.warnings:
        err.print(f"[yellow]warning[/yellow]: {escape(w)}")
