"""`plan SPEC --estimate` for a paper spec on a machine without its data or weights.

The plan needs the prompt tables (their row counts) and lists the image folders; this writes
placeholders of the paper's sizes (JourneyDB: 5,000 eval / 20,000 train / 500 RM-negative /
5,000 bootstrap prompts, 500 PPD and 5,000 FID-reference files) into a scratch data root and runs
the estimate there with an empty cache. Nothing is downloaded; models are random-init.

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
SIZES = {"eval_prompts": 5000, "train_prompts": 20000, "rm_negative_prompts": 500, "rm_bootstrap_prompts": 5000}
FOLDERS = {"ppd": 500, "eval_images": 5000}


def make_journeydb(root: Path) -> None:
    d = root / "data" / "journeydb"
    d.mkdir(parents=True)
    for name, n in SIZES.items():
        rows = "".join(f"{name[:4]}{i:06d}\tplaceholder prompt {i}\n" for i in range(n))
        (d / f"{name}.tsv").write_text("id\tprompt\n" + rows)
    for name, n in FOLDERS.items():
        (d / name).mkdir()
        for i in range(n):
            (d / name / f"{i:06d}.png").touch()  # listed for counting only; the plan reads no image


def main(argv: list[str]) -> int:
    spec = Path(argv[0] if argv and not argv[0].startswith("-") else REPO / "benchmarks" / "table1.yaml").resolve()
    rest = argv[1:] if argv and not argv[0].startswith("-") else argv
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        make_journeydb(root)
        cmd = [str(Path(sys.executable).parent / "ganrm-bench"), "plan", str(spec), "--cache", str(root / "cache"), "--estimate", *rest]
        t0 = time.time()
        rc = subprocess.call(cmd, cwd=root, env={**os.environ, "HF_HUB_OFFLINE": "1"})
        print(f"wall time of the whole command: {time.time() - t0:.0f} s")
        return rc


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
