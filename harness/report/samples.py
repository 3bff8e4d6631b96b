"""`<run>/samples.json`: the items each row was evaluated on (first seed), with paths relative to
the store, so later tools (the HTML report's gallery, the human study) use the cached samples and
regenerate nothing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ganrm_bench.harness.errors import UserError
from ganrm_bench.harness.plugins.base import Item, ItemSet

SAMPLES_FILE = "samples.json"


def write_samples_manifest(run_dir: Path, samples: dict[str, ItemSet], store_root: str | Path | None, seed: int | None) -> Path:
    root = Path(store_root).resolve() if store_root else None
    rows = {}
    for row, items in samples.items():
        entries = []
        for it in items:
            p = Path(it.path).resolve()
            rel = str(p.relative_to(root)) if root is not None and p.is_relative_to(root) else str(p)
            entries.append({"key": it.key, "path": rel, "prompt_id": it.prompt_id, "prompt": it.prompt, "k": it.k, "seed": it.seed})
        rows[row] = {"key": items.key, "items": entries}
    out = run_dir / SAMPLES_FILE
    out.write_text(json.dumps({"store": str(root) if root else None, "seed": seed, "rows": rows}, indent=1))
    return out


def read_samples_manifest(run_dir: Path, store_root: str | Path | None = None) -> dict[str, list[Item]]:
    """Each row's items with absolute paths (relative ones resolved against `store_root`, default
    the store the run used)."""
    path = Path(run_dir) / SAMPLES_FILE
    if not path.exists():
        raise UserError(f"{path}: not found; this run predates sample manifests",
                        hint="re-run the spec with `ganrm-bench run` (cached samples are loaded, nothing is regenerated)")
    data: dict[str, Any] = json.loads(path.read_text())
    root = Path(store_root or data.get("store") or ".")
    out = {}
    for row, entry in data["rows"].items():
        out[row] = [Item(key=e["key"], path=str(root / e["path"]), prompt_id=e.get("prompt_id"), prompt=e.get("prompt"),
                         k=e.get("k"), seed=e.get("seed")) for e in entry["items"]]
    return out
