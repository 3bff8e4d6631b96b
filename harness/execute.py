"""Running a spec into a run directory: the one code path behind `ganrm-bench run` and
`ganrm_bench.run`, and where specs are found by name (`mini/table1`) when no such file exists.

The benchmark specs ship with the package: benchmarks/ in the repository, `ganrm_bench/benchmarks`
in a wheel — in both layouts the folder beside this package's parent, so a notebook with no
checkout can still run the miniature tables.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ganrm_bench.harness.runner import RunOutcome, run_spec
from ganrm_bench.harness.runtime import Context, Progress, process_device
from ganrm_bench.harness.spec import Spec
from ganrm_bench.harness.store import Store

SPECS_DIR = Path(__file__).resolve().parent.parent / "benchmarks"
DEFAULT_SPEC = SPECS_DIR / "mini" / "table1.yaml"


def bundled_specs() -> list[str]:
    """Names of the shipped specs (`mini/table1`, `table1`, ...), for messages and docs."""
    skip = {"common", "paper"}
    return sorted(str(p.relative_to(SPECS_DIR).with_suffix("")) for p in SPECS_DIR.rglob("*.yaml")
                  if p.stem not in skip and p.parent.name not in skip)


def resolve_spec_path(spec: str | Path) -> Path:
    """A spec file: the path itself (or with .yaml added) when it exists, else a shipped spec of
    that name (`mini/table1` or `mini/table1.yaml`); otherwise the path unchanged, so loading it
    reports the missing file."""
    path = Path(spec)
    name = path if path.suffix in (".yaml", ".yml") else path.with_name(path.name + ".yaml")
    for candidate in (path, name):
        if candidate.exists():
            return candidate
    if not name.is_absolute() and (SPECS_DIR / name).is_file():
        return SPECS_DIR / name
    return path


def make_context(spec: Spec, *, cache: str | Path | None = None, device: str = "auto", batch_size: int | None = None,
                 progress: Progress | None = None, limit_prompts: int | None = None) -> Context:
    """The run context: device `auto` defers to the spec's runtime.device, resolved once per process
    (cuda:LOCAL_RANK, made current); the batch size falls back to the spec's runtime.batch_size;
    `limit_prompts` truncates every prompt set (harness.limits)."""
    from ganrm_bench.harness.limits import check_limit
    from ganrm_bench.harness.prefetch import default_loader_workers

    device = process_device(spec.runtime.device if device == "auto" else device)
    workers = spec.runtime.loader_workers
    return Context(store=Store(Path(cache).expanduser() if cache is not None else None), device=device,
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


def default_run_dir(spec: Spec) -> Path:
    return Path("reports/runs") / f"{spec.name}-{time.strftime('%Y%m%d-%H%M%S')}"


def run_to_dir(spec: Spec, spec_path: str, ctx: Context, *, seeds: list[int] | None = None,
               out_dir: str | Path | None = None, overrides: list[str] | None = None,
               random_weights: bool | None = None) -> Finished:
    """Compute what the store lacks, then write results, provenance, tables and figures to the run
    directory. Failed cells are in `outcome.failures`; everything else is saved. With
    `random_weights` every model is built from its architecture config with random weights
    (harness.random_weights; None: as the environment says) and columns whose metric cannot be
    built so are left out, each with its reason in run.json and `Finished.skipped`."""
    from ganrm_bench.harness import random_weights as rw

    on = rw.active() if random_weights is None else random_weights
    with rw.enabled(on):
        skipped = random_weights_skips(spec) if on else {}
        if skipped:
            spec = without_columns(spec, list(skipped))
        if on:
            spec = without_paper_values(spec)
        finished = _run_to_dir(spec, spec_path, ctx, seeds=seeds, out_dir=out_dir, overrides=overrides, skipped=skipped)
    finished.skipped = skipped
    return finished


def random_weights_skips(spec: Spec) -> dict[str, str]:
    """Table columns whose metric cannot be built with random weights, with the reason."""
    from ganrm_bench.harness.random_weights import unavailable_reason
    from ganrm_bench.harness.registry import REGISTRIES

    out: dict[str, str] = {}
    for column in spec.table.columns or list(spec.metrics):
        entry = spec.metrics.get(column)
        if entry is None:
            continue
        obj = REGISTRIES["metric"].get(entry.metric)(entry.params)
        reason = unavailable_reason(obj)
        if reason is None:  # no random build of its own: it must do without weights files
            from ganrm_bench.harness.errors import MissingWeightsError
            from ganrm_bench.harness.graph import plugin_fingerprint

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
        from ganrm_bench.harness.errors import UserError

        raise UserError(f"--random-weights: no column of table {spec.name!r} can be built with random weights",
                        hint="; ".join(f"{c}: {why}" for c, why in random_weights_skips(spec).items()))
    return spec.model_copy(update={"table": table})


RANDOM_WEIGHTS_NOTE = "random weights (--random-weights): a smoke test at real shapes; the numbers say nothing about the models"


def without_paper_values(spec: Spec) -> Spec:
    """A random-weights run's spec: no paper values beside its cells (a ✗ against the paper would read
    as a finding) and a note saying what the numbers are."""
    reference = spec.reference.model_copy(update={"values": {}, "notes": [RANDOM_WEIGHTS_NOTE, *spec.reference.notes]})
    return spec.model_copy(update={"reference": reference})


def _run_to_dir(spec: Spec, spec_path: str, ctx: Context, *, seeds: list[int] | None, out_dir: str | Path | None,
                overrides: list[str] | None, skipped: dict[str, str]) -> Finished:
    from ganrm_bench.harness import random_weights as rw
    from ganrm_bench.harness.numerics import numerics_record
    from ganrm_bench.harness.report import write_run

    from ganrm_bench.harness.distributed import rank_and_world

    t0 = time.time()
    outcome = run_spec(spec, ctx, seeds=list(seeds) if seeds else None)
    elapsed = time.time() - t0
    rank, world = rank_and_world()
    if rank > 0:
        return Finished(None, outcome, elapsed, (rank, world))
    run_dir = Path(out_dir) if out_dir is not None else default_run_dir(spec)
    info: dict[str, Any] = {"seconds": round(elapsed, 2), "cache": str(ctx.store.root), "device": ctx.device,
                            "computed": dict(outcome.computed), "loaded": dict(outcome.loaded), "counters": outcome.counters,
                            "failures": outcome.failures, "overrides": list(overrides or []), "numerics": numerics_record(ctx.device),
                            **rw.record(ctx.limit_prompts, skipped)}
    write_run(run_dir, spec, spec_path, outcome.results, info, outcome.samples, outcome.records, outcome.units, outcome.monitor)
    return Finished(run_dir, outcome, elapsed, (rank, world))
