"""Per-item scores of the study's samples by every scorer of the run's spec, through the same
per-item cache the `scores` op uses (so scores the run computed are read back, not recomputed).
A trainable scorer is used only if its trained model is in the store: nothing is trained here."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from ganrm_bench.harness.engine.builder import Builder
from ganrm_bench.harness.engine.evaluator import Evaluator
from ganrm_bench.harness.plugins.base import Item
from ganrm_bench.harness.report.rundir import load_run
from ganrm_bench.harness.runtime.context import Context
from ganrm_bench.harness.runtime.prefetch import scorer_loading
from ganrm_bench.harness.spec.load import import_plugins
from ganrm_bench.harness.store.artifacts import Store
from ganrm_bench.harness.store.keys import hash_key

log = logging.getLogger("ganrm_bench")


def scorer_scores(run_dir: Path, items: list[Item], store: Store, *, compute_missing: bool = True) -> dict[str, dict[str, float] | str]:
    """{scorer name: {item key: score}} or {scorer name: why it could not be compared}."""
    _, spec = load_run(run_dir)
    run_info = json.loads((Path(run_dir) / "run.json").read_text()) if (Path(run_dir) / "run.json").exists() else {}
    if spec.plugins and run_info.get("spec_path"):
        import_plugins(spec.plugins, base=Path(run_info["spec_path"]).resolve().parent, source=str(run_info["spec_path"]))
    ctx = Context(store=store)
    seed = (run_info.get("seeds") or spec.seeds or [0])[0]
    b = Builder(spec, ctx, seed)
    ev = Evaluator(ctx)
    out: dict[str, dict[str, float] | str] = {}
    for name in spec.scorers:
        try:
            node = b.scorer(name)
        except Exception as exc:  # a plugin that cannot be built here (missing weights, packages)
            out[name] = f"cannot build it here ({type(exc).__name__}: {exc})"
            continue
        fp = {"scorer": node.key}
        keys = [hash_key({"ns": "scores", "fp": hash_key(fp), "item": it.key}) for it in items]
        paths = [store.item_path(k, "npy") for k in keys]
        if all(p.exists() for p in paths):
            out[name] = {it.key: float(np.load(p, allow_pickle=False).reshape(-1)[0]) for it, p in zip(items, paths)}
            continue
        if not compute_missing:
            out[name] = "scores of these samples are not cached (run without --cached-only to score them)"
            continue
        if node.op.stored and not store.has(node.key):
            out[name] = f"its trained model is not in the store {store.root} (no row of the run trained it)"
            continue
        try:
            scorer = ev.value(node)
            scores = ctx.per_item_arrays(
                "scores", fp, items,
                lambda batch: np.asarray(scorer.score(batch if getattr(scorer, "accepts_items", False) else [it.load() for it in batch],
                                                      [it.prompt for it in batch], ctx), dtype=np.float64),
                batch_size=32, description=f"score {name}", **scorer_loading(scorer, ctx))
        except Exception as exc:
            log.debug("scorer %s failed", name, exc_info=True)
            out[name] = f"scoring failed ({type(exc).__name__}: {exc})"
            continue
        out[name] = {it.key: float(s) for it, s in zip(items, scores.reshape(len(items)))}
    return out
