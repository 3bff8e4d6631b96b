"""`run`: compute what the store lacks for a spec, judge the reward models it trained, and write the
run directory. The one code path behind `ganrm-bench run` and `ganrm_bench.run`."""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from ganrm_bench.harness.app.services.specs import Overrides, open_spec, overrides_record
from ganrm_bench.harness.diagnostics.monitor import monitor_outcome
from ganrm_bench.harness.engine.runner import RunOutcome, run_spec
from ganrm_bench.harness.errors import MissingWeightsError, UserError
from ganrm_bench.harness.plugins.fingerprint import plugin_fingerprint
from ganrm_bench.harness.plugins.registry import REGISTRIES
from ganrm_bench.harness.report.write import RUN_OUTPUTS, write_run
from ganrm_bench.harness.runtime import random_weights as rw
from ganrm_bench.harness.runtime.context import Context
from ganrm_bench.harness.runtime.devices import process_device
from ganrm_bench.harness.runtime.distributed import rank_and_world
from ganrm_bench.harness.runtime.limits import check_limit
from ganrm_bench.harness.runtime.numerics import numerics_record
from ganrm_bench.harness.runtime.prefetch import default_loader_workers
from ganrm_bench.harness.runtime.progress import Progress
from ganrm_bench.harness.spec.assets import check_offline
from ganrm_bench.harness.spec.schema import Spec
from ganrm_bench.harness.store.artifacts import Store
from ganrm_bench.harness.store.offline import go_offline


def make_context(spec: Spec, *, cache: str | Path | None = None, device: str = "auto", batch_size: int | None = None,
                 progress: Progress | None = None, limit_prompts: int | None = None, read_only: bool = False) -> Context:
    """The run context: device `auto` defers to the spec's runtime.device, resolved once per process
    (cuda:LOCAL_RANK, made current); the batch size falls back to the spec's runtime.batch_size;
    `limit_prompts` truncates every prompt set (harness.runtime.limits). `read_only`: for the
    commands that write nothing (plan, validate): the store is neither created nor written."""
    if batch_size is not None and batch_size < 1:
        raise UserError(f"--batch-size {batch_size}: must be a positive number of samples per batch")
    device = process_device(spec.runtime.device if device == "auto" else device)
    workers = spec.runtime.loader_workers
    return Context(store=Store(Path(cache).expanduser() if cache is not None else None, read_only=read_only), device=device,
                   progress=progress or Progress(False), batch_size=batch_size or spec.runtime.batch_size,
                   loader_workers=default_loader_workers(device) if workers is None else workers,
                   limit_prompts=check_limit(limit_prompts))


@dataclass
class Finished:
    run_dir: Path | None  # None on processes other than 0 of a launch: process 0 writes the run directory
    outcome: RunOutcome
    seconds: float
    rank_and_world: tuple[int, int] = (0, 1)
    skipped: dict[str, str] = field(default_factory=dict)  # random-weights run: column -> why it was left out
    spec: Spec | None = None  # the spec as run (random weights: without unbuildable columns and paper values)


def default_run_dir(spec: Spec) -> Path:
    return Path("reports/runs") / f"{spec.name}-{time.strftime('%Y%m%d-%H%M%S')}"


def run(spec: str | Path | Spec | None = None, *, seeds: Sequence[int] | int | None = None, overrides: Overrides = None,
        cache: str | Path | None = None, out: str | Path | None = None, device: str = "auto", batch_size: int | None = None,
        random_weights: bool = False, limit_prompts: int | None = None, offline: bool = False, overwrite: bool = False,
        progress: Progress | None = None) -> Finished:
    """The `run` action: open the spec, make the context, claim the run directory (a folder of another
    spec is refused unless `overwrite`), compute, judge, write. Failed cells are in
    `Finished.outcome.failures`; everything else is saved."""
    s, spec_path = open_spec(spec, overrides)
    ctx = make_context(s, cache=cache, device=device, batch_size=batch_size, progress=progress, limit_prompts=limit_prompts)
    if offline:
        go_offline()
        if not random_weights:  # random weights need no asset
            check_offline(s, ctx.store)
    run_dir = Path(out).expanduser() if out is not None else default_run_dir(s)
    if rank_and_world()[0] == 0:
        claim_run_dir(run_dir, s, overwrite)
    seed_list = [seeds] if isinstance(seeds, int) else (list(seeds) if seeds else None)
    return run_to_dir(s, spec_path, ctx, seeds=seed_list, out_dir=run_dir, overrides=overrides_record(overrides),
                      random_weights=random_weights)


def claim_run_dir(run_dir: Path, spec: Spec, overwrite: bool) -> None:
    """A run directory holds one spec's run: one of another spec is refused unless `overwrite`; a
    reused one is cleared of the last run's outputs first, so no stale figure or gallery stays."""
    info_path = run_dir / "run.json"
    if not info_path.is_file():
        return
    try:
        old = json.loads(info_path.read_text())
    except (OSError, json.JSONDecodeError):
        old = {}
    if old.get("spec") != spec.name and not overwrite:  # the same spec (edited or not) may re-use its folder
        raise UserError(f"--out {run_dir} holds a run of spec {old.get('spec', '?')!r}, not of {spec.name!r}",
                        hint="choose another --out, or pass --overwrite to replace that run (its tables, figures and galleries)")
    for name in RUN_OUTPUTS:
        p = run_dir / name
        shutil.rmtree(p) if p.is_dir() else p.unlink(missing_ok=True)


def evaluate(spec: Spec, ctx: Context, *, seeds: list[int] | None = None) -> RunOutcome:
    """Every cell of the spec's table (harness.engine.runner), then the reward-model report cards and
    the over-optimisation monitor over the same graphs (harness.diagnostics.monitor)."""
    return monitor_outcome(spec, ctx, run_spec(spec, ctx, seeds=seeds))


def run_to_dir(spec: Spec, spec_path: str, ctx: Context, *, seeds: list[int] | None = None,
               out_dir: str | Path | None = None, overrides: list[str] | None = None,
               random_weights: bool | None = None) -> Finished:
    """Compute what the store lacks, then write results, provenance, tables and figures to the run
    directory. With `random_weights` every model is built from its architecture config with random
    weights (harness.runtime.random_weights; None: as the environment says) and columns whose metric
    cannot be built so are left out, each with its reason in run.json and `Finished.skipped`."""
    on = rw.active() if random_weights is None else random_weights
    with rw.enabled(on):
        spec, skipped = as_random_weights_run(spec) if on else (spec, {})
        t0 = time.time()
        outcome = evaluate(spec, ctx, seeds=list(seeds) if seeds else None)
        elapsed = time.time() - t0
        rank, world = rank_and_world()
        if rank > 0:
            return Finished(None, outcome, elapsed, (rank, world), skipped, spec)
        run_dir = Path(out_dir) if out_dir is not None else default_run_dir(spec)
        info: dict[str, Any] = {"seconds": round(elapsed, 2), "cache": str(ctx.store.root), "device": ctx.device,
                                "computed": dict(outcome.computed), "loaded": dict(outcome.loaded), "counters": outcome.counters,
                                "failures": outcome.failures, "overrides": list(overrides or []),
                                "numerics": numerics_record(ctx.device), **rw.record(ctx.limit_prompts, skipped)}
        write_run(run_dir, spec, spec_path, outcome.results, info, outcome.samples, outcome.records, outcome.units, outcome.monitor)
    return Finished(run_dir, outcome, elapsed, (rank, world), skipped, spec)


def as_random_weights_run(spec: Spec) -> tuple[Spec, dict[str, str]]:
    """A random-weights run's spec (no unbuildable columns, no paper values) and the columns left out, with why."""
    skipped = random_weights_skips(spec)
    if skipped:
        spec = without_columns(spec, list(skipped))
    return without_paper_values(spec), skipped


def random_weights_skips(spec: Spec) -> dict[str, str]:
    """Table columns whose metric cannot be built with random weights, with the reason."""
    out: dict[str, str] = {}
    for column in spec.table.columns or list(spec.metrics):
        entry = spec.metrics.get(column)
        if entry is None:
            continue
        obj = REGISTRIES["metric"].get(entry.metric)(entry.params)
        reason = rw.unavailable_reason(obj)
        if reason is None:  # no random build of its own: it must do without weights files
            try:
                plugin_fingerprint(obj, None)
            except MissingWeightsError as exc:
                reason = f"metric {entry.metric!r} has no random-weights build and needs its weights ({exc})"
        if reason:
            out[column] = reason
    return out


def without_columns(spec: Spec, columns: list[str]) -> Spec:
    """The spec with these table columns left out (a random-weights run's unbuildable metrics)."""
    table = spec.table.model_copy(update={"columns": [c for c in spec.table.columns or list(spec.metrics) if c not in columns]})
    if not table.columns:
        raise UserError(f"--random-weights: no column of table {spec.name!r} can be built with random weights",
                        hint="; ".join(f"{c}: {why}" for c, why in random_weights_skips(spec).items()))
    return spec.model_copy(update={"table": table})


RANDOM_WEIGHTS_NOTE = "random weights (--random-weights): a smoke test at real shapes; the numbers say nothing about the models"


def without_paper_values(spec: Spec) -> Spec:
    """A random-weights run's spec: no paper values beside its cells (a ✗ against the paper would read
    as a finding) and a note saying what the numbers are."""
    reference = spec.reference.model_copy(update={"values": {}, "notes": [RANDOM_WEIGHTS_NOTE, *spec.reference.notes]})
    return spec.model_copy(update={"reference": reference})
