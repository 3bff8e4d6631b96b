"""Smoke test of a paper table at real model sizes, on a CPU, with no weights and no data downloaded:

    python benchmarks/perf/smoke_random_weights.py [--work /tmp/ganrm-smoke] [--px 128] [--sdxl none|sampling|all]

runs `ganrm-bench run benchmarks/table1.yaml --random-weights --limit-prompts 2` with the steps
lowered by `--set` (1 denoising step, 1 fine-tuning step, 1 GAN-RM epoch), on a synthetic
JourneyDB folder it writes (the prompt tables and a few images; the paper's data are gated),
then prints the wall time and the peak RSS of the run, and checks that

- run.json records `random_weights: true` and `limit_prompts: 2`;
- the plan of the same run with real weights (`run --dry-run` without `--random-weights`, same
  cache, same limit) finds none of the smoke run's artifacts cached: nothing it left can be picked
  up by a real run.

Not in CI (tens of minutes, ~14 GB). The SDXL block is left out by default: SDXL full fine-tuning
needs ~29 GB even with Adafactor, more than a 24 GB machine; `--sdxl sampling` keeps its rows
without a fine-tune (base, DiffusionDPO, RM@10: the SDXL pipeline, its GAN-RM and the metrics at
full size), `--sdxl all` every row.
Fine-tuning uses Adafactor and a bf16 reference UNet (TrainConfig options) so SD1.5's full
fine-tuning fits ~12 GB; every other setting is the spec's.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import ganrm_bench  # noqa: F401,I001  (first, before numpy and torch: pins the CPU kernels, as the CLI does)

REPO = Path(__file__).resolve().parents[2]
SD15_ROWS = ["sd15_base", "sd15_diffusion_dpo", "sd15_rm10", "sd15_sft", "sd15_dpo_round3"]
SDXL_ROWS = ["sdxl_base", "sdxl_diffusion_dpo", "sdxl_rm10", "sdxl_sft", "sdxl_dpo_round3"]


def write_data(root: Path, n_prompts: int = 4, n_images: int = 4) -> None:
    """data/journeydb/ as benchmarks/paper/journeydb.yaml reads it: four prompt tables (distinct
    ids) and two image folders (PPD, FID reference) of random 256 px images."""
    import numpy as np
    from PIL import Image

    jdb = root / "data" / "journeydb"
    words = ["a red fox in snow", "a lighthouse at dusk", "a bowl of ramen, studio light", "an astronaut riding a horse",
             "a watercolor city street", "a portrait of an old sailor"]
    for name, prefix in (("eval_prompts", "ev"), ("train_prompts", "tr"), ("rm_negative_prompts", "ng"), ("rm_bootstrap_prompts", "bs")):
        rows = [f"{prefix}{i:04d}\t{words[i % len(words)]}" for i in range(n_prompts)]
        (jdb).mkdir(parents=True, exist_ok=True)
        (jdb / f"{name}.tsv").write_text("id\tprompt\n" + "\n".join(rows) + "\n")
    rng = np.random.default_rng(0)
    for folder in ("ppd", "eval_images"):
        (jdb / folder).mkdir(parents=True, exist_ok=True)
        for i in range(n_images):
            Image.fromarray(rng.integers(0, 256, (256, 256, 3), dtype=np.uint8)).save(jdb / folder / f"{folder}_{i:03d}.png")


def overrides(sdxl: str, px: int | None = None) -> list[str]:
    """The --set list: lower steps, the SD1.5 block (and SDXL's: `sampling` keeps the rows without a
    fine-tune, `all` every row), memory-lean fine-tuning; `px` lowers the image size too (a quicker
    shake-out; the default keeps the spec's 512 px, 1024 for SDXL)."""
    sets = ["generators.sd15.steps=1"] + ([f"generators.sd15.height={px}", f"generators.sd15.width={px}"] if px else [])
    groups = [{"name": "SD1.5", "rows": SD15_ROWS}]
    ft_rows = ["sd15_sft", "sd15_dpo_round3"]
    scorers = ["ganrm_sd15"]
    if sdxl != "none":
        sets.append("generators.sdxl.steps=1")
        sets += [f"generators.sdxl.height={px}", f"generators.sdxl.width={px}"] if px else []
        groups.append({"name": "SDXL", "rows": SDXL_ROWS if sdxl == "all" else SDXL_ROWS[:3]})
        ft_rows += ["sdxl_sft", "sdxl_dpo_round3"] if sdxl == "all" else []
        scorers.append("ganrm_sdxl")
    sets.append("table.groups=" + json.dumps(groups))
    for row in ft_rows:
        sets += [f"methods.{row}.steps=1", f"methods.{row}.batch_size=1", f"methods.{row}.grad_accum=1",
                 f"methods.{row}.warmup_steps=0", f"methods.{row}.optimizer=adafactor", f"methods.{row}.reference_dtype=bfloat16"]
        if px:
            sets.append(f"methods.{row}.resolution={px}")
    for s in scorers:
        sets += [f"scorers.{s}.epochs=1"]
    return sets


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, default=Path("/tmp/ganrm-smoke"))
    ap.add_argument("--sdxl", choices=["none", "sampling", "all"], default="none",
                    help="the SDXL block: none, its rows without a fine-tune (base, DiffusionDPO, RM@10), or all "
                         "(its full fine-tuning needs ~29 GB with Adafactor)")
    ap.add_argument("--limit-prompts", type=int, default=2)
    ap.add_argument("--px", type=int, default=None, help="lower the image size (default: the spec's, 512 / 1024 px)")
    ap.add_argument("--dry-run", action="store_true", help="only print the plan")
    ap.add_argument("--keep", action="store_true", help="keep an earlier cache (default: a cold run)")
    args = ap.parse_args()
    work = args.work.resolve()
    if work.exists() and not args.keep:
        shutil.rmtree(work)
    write_data(work)
    exe = Path(sys.executable).parent / "ganrm-bench"
    sets = [x for s in overrides(args.sdxl, args.px) for x in ("--set", s)]
    common = [str(REPO / "benchmarks" / "table1.yaml"), "--cache", str(work / "cache"), "--device", "cpu", *sets]
    cmd = [str(exe), "run", *common, "--random-weights", "--limit-prompts", str(args.limit_prompts),
           "--out", str(work / "run"), "--offline", "--no-progress", *(["--dry-run"] if args.dry_run else [])]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    print("$", " ".join(cmd), flush=True)
    t0 = time.time()
    rc = subprocess.call(cmd, cwd=work, env=env)
    seconds = time.time() - t0
    peak_gib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20  # KiB on Linux
    print(f"smoke run: exit {rc}, {seconds / 60:.1f} min wall, peak RSS {peak_gib:.1f} GiB", flush=True)
    if rc != 0 or args.dry_run:
        return rc
    info = json.loads((work / "run" / "run.json").read_text())
    assert info["random_weights"] is True and info["limit_prompts"] == args.limit_prompts, info
    print("run.json:", {k: info[k] for k in ("random_weights", "limit_prompts", "skipped_columns") if k in info})
    # A real-weights plan of the same spec and cache: nothing of the smoke run may count as cached.
    plan = subprocess.run([str(exe), "run", *common, "--limit-prompts", str(args.limit_prompts), "--dry-run"],
                          cwd=work, env=env, capture_output=True, text=True)  # the same run with real weights: its plan
    print(plan.stdout[-3000:], plan.stderr[-2000:])
    if plan.returncode != 0:
        return plan.returncode
    import re

    found = re.search(r"(\d+) artifacts? cached, (\d+) to compute", " ".join(plan.stdout.split()))
    if not found:
        print("could not read the plan's summary line")
        return 1
    cached, todo = map(int, found.groups())
    print(f"real-weights plan on the smoke cache: {cached} artifacts cached, {todo} to compute")
    return 0 if cached == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
