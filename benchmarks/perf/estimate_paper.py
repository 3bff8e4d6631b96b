"""`plan SPEC --estimate` for a paper spec on a machine without its data or weights, timed.

Runs the documented command from an empty working directory with an empty cache, as on a fresh
clone: the JourneyDB prompt tables and image folders are absent, so the plan counts them at the
sizes `benchmarks/paper/journeydb.yaml` declares (`expected_count`: 5,000 eval / 20,000 train /
500 RM-negative / 5,000 bootstrap prompts, 500 PPD and 5,000 FID-reference images) and lists them
under "assumed sizes". Nothing is downloaded; models are random-init.

    .venv/bin/python benchmarks/perf/estimate_paper.py [benchmarks/table1.yaml] [--device cuda]
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def main(argv: list[str]) -> int:
    spec = Path(argv[0] if argv and not argv[0].startswith("-") else REPO / "benchmarks" / "table1.yaml").resolve()
    rest = argv[1:] if argv and not argv[0].startswith("-") else argv
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        cmd = [str(Path(sys.executable).parent / "ganrm-bench"), "plan", str(spec), "--cache", str(root / "cache"), "--estimate", *rest]
        t0 = time.time()
        rc = subprocess.call(cmd, cwd=root, env={**os.environ, "HF_HUB_OFFLINE": "1"})
        print(f"wall time of the whole command: {time.time() - t0:.0f} s; cache created: {(root / 'cache').exists()}")
        return rc


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
