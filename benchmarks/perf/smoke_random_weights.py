"""Smoke test of a paper table at real model sizes, on a CPU, with no weights and no data downloaded:

    python benchmarks/perf/smoke_random_weights.py [--spec table1] [--work /tmp/ganrm-smoke] [--px 128] [--sdxl none|sampling|all]

runs `ganrm-bench run benchmarks/<spec>.yaml --random-weights --limit-prompts 2` with the steps
lowered by `--set` (1 denoising step, 1 fine-tuning step, 1 GAN-RM epoch; video: `--frames`
frames), on synthetic data of the spec's kind that it writes (prompt tables, image folders, short
target clips as NPZ through the harness's own media writer; the paper's data are gated), then
prints the wall time and the peak RSS of the run, and checks that

- run.json records `random_weights: true` and `limit_prompts: 2`;
- the plan of the same run with real weights (`run --dry-run` without `--random-weights`, same
  cache, same limit) finds none of the smoke run's artifacts cached: nothing it left can be picked
  up by a real run.

Not in CI (tens of minutes, ~14 GB). Table 1 (the default spec): the SDXL block is left out by
default: SDXL full fine-tuning needs ~29 GB even with Adafactor, more than a 24 GB machine;
`--sdxl sampling` keeps its rows without a fine-tune (base, DiffusionDPO, RM@10: the SDXL pipeline,
its GAN-RM and the metrics at full size), `--sdxl all` every row. The other tables: the rows of
`SMOKE_ROWS` (SDXL fine-tunes left out the same way; `--sdxl all` keeps every row), every generator,
fine-tune and GAN-RM of those rows lowered alike (`spec_overrides`).
Fine-tuning uses Adafactor and a bf16 reference UNet (TrainConfig options) so SD1.5's full
fine-tuning fits ~12 GB; every other setting is the spec's.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import ganrm_bench  # noqa: F401,I001  (first, before numpy and torch: pins the CPU kernels, as the CLI does)

REPO = Path(__file__).resolve().parents[2]
SD15_ROWS = ["sd15_base", "sd15_diffusion_dpo", "sd15_rm10", "sd15_sft", "sd15_dpo_round3"]
SDXL_ROWS = ["sdxl_base", "sdxl_diffusion_dpo", "sdxl_rm10", "sdxl_sft", "sdxl_dpo_round3"]
FINETUNES = {"sft", "dpo", "multi_round"}  # methods that fine-tune the generator
WORDS = ["a red fox in snow", "a lighthouse at dusk", "a bowl of ramen, studio light", "an astronaut riding a horse",
         "a watercolor city street", "a portrait of an old sailor"]
#: rows left out of a table's smoke run by default (`--sdxl all` keeps them), with why
LEFT_OUT = {
    "table2": (["sdxl_dpo_unsafe", "sdxl_dpo_coco"], "SDXL full fine-tuning needs ~29 GB with Adafactor (memory table)"),
    "table5": (["sdxl_dpo_round1", "sdxl_dpo_round2", "sdxl_dpo_round3"],
               "SDXL full fine-tuning needs ~29 GB with Adafactor (memory table)"),
}


def prompt_table(path: Path, prefix: str, n: int, *, sep: str = "\t", id_column: str = "id",
                 extra: dict[str, str] | None = None) -> None:
    """A prompt table of n rows with distinct ids (prompt ids seed the samples)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    extra = extra or {}
    header = [id_column, "prompt", *extra]
    rows = [[f"{prefix}{i:04d}", WORDS[i % len(WORDS)].replace(sep, " "), *extra.values()] for i in range(n)]
    path.write_text("\n".join(sep.join(r) for r in [header, *rows]) + "\n")


def image_folder(folder: Path, n: int, seed: int = 0, size: int = 256) -> None:
    """n random RGB images of size px as PNG."""
    import numpy as np
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(folder / f"{folder.name}_{i:03d}.png")


def write_data(root: Path, n_prompts: int = 4, n_images: int = 4) -> None:
    """data/journeydb/ as benchmarks/paper/journeydb.yaml reads it: four prompt tables (distinct
    ids) and two image folders (PPD, FID reference) of random 256 px images."""
    import numpy as np
    from PIL import Image

    jdb = root / "data" / "journeydb"
    for name, prefix in (("eval_prompts", "ev"), ("train_prompts", "tr"), ("rm_negative_prompts", "ng"), ("rm_bootstrap_prompts", "bs")):
        prompt_table(jdb / f"{name}.tsv", prefix, n_prompts)
    rng = np.random.default_rng(0)
    for folder in ("ppd", "eval_images"):
        (jdb / folder).mkdir(parents=True, exist_ok=True)
        for i in range(n_images):
            Image.fromarray(rng.integers(0, 256, (256, 256, 3), dtype=np.uint8)).save(jdb / folder / f"{folder}_{i:03d}.png")


def write_safety_data(root: Path, n_prompts: int = 4, n_images: int = 4) -> None:
    """Table 2's data: CoProV2 prompt CSVs (its test file keyed by `image`, with a category), COCO
    captions (TSV) and images, safe PPD images, and Q16's two prompt embeddings (random unit
    vectors of CLIP ViT-L/14's 768 dimensions, pickled as Q16's prompts.p is)."""
    import pickle

    import numpy as np

    cop = root / "data" / "coprov2"
    prompt_table(cop / "train_prompts.csv", "tr", n_prompts, sep=",")
    prompt_table(cop / "rm_bootstrap_prompts.csv", "bs", n_prompts, sep=",")
    prompt_table(cop / "CoProv2_test.csv", "te", n_prompts, sep=",", id_column="image", extra={"category": "hate"})
    prompt_table(root / "data" / "coco" / "val2014_captions.tsv", "co", n_prompts)
    image_folder(cop / "safe_images", n_images, seed=0)
    image_folder(root / "data" / "coco" / "val2014_images", n_images, seed=1)
    emb = np.random.default_rng(2).standard_normal((2, 768)).astype(np.float32)
    q16 = root / "data" / "q16" / "ViT-L-14" / "prompts.p"
    q16.parent.mkdir(parents=True, exist_ok=True)
    q16.write_bytes(pickle.dumps(emb / np.linalg.norm(emb, axis=1, keepdims=True)))


def write_video_data(root: Path, n_prompts: int = 4, n_clips: int = 4, frames: int = 16, size: tuple[int, int] = (320, 576)) -> None:
    """Table 3's data: VidProM prompt CSVs (`uuid`, `prompt`) and Artgrid clips (PPD, FVD / LPIPS
    reference) of `frames` random uint8 frames, written by the harness's own media writer (NPZ)."""
    import numpy as np

    from ganrm_bench.harness.engine.ops import save_media

    vp = root / "data" / "vidprom"
    for name, prefix in (("train_prompts", "tr"), ("rm_negative_prompts", "ng"), ("rm_bootstrap_prompts", "bs"), ("eval_prompts", "ev")):
        prompt_table(vp / f"{name}.csv", prefix, n_prompts, sep=",", id_column="uuid")
    rng = np.random.default_rng(0)
    for folder in ("ppd", "fvd_ref"):
        out = root / "data" / "artgrid" / folder
        out.mkdir(parents=True, exist_ok=True)
        for i in range(n_clips):
            save_media(rng.integers(0, 256, (frames, *size, 3), dtype=np.uint8), out / f"{folder}_{i:03d}.npz")


def finetune_sets(row: str, px: int | None) -> list[str]:
    """One fine-tuning step (batch 1, no warmup), memory-lean: Adafactor and a bf16 reference."""
    sets = [f"methods.{row}.steps=1", f"methods.{row}.batch_size=1", f"methods.{row}.grad_accum=1",
            f"methods.{row}.warmup_steps=0", f"methods.{row}.optimizer=adafactor", f"methods.{row}.reference_dtype=bfloat16"]
    return sets + ([f"methods.{row}.resolution={px}"] if px else [])


def overrides(sdxl: str, px: int | None = None) -> list[str]:
    """Table 1's --set list: lower steps, the SD1.5 block (and SDXL's: `sampling` keeps the rows without a
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
        sets += finetune_sets(row, px)
    for s in scorers:
        sets += [f"scorers.{s}.epochs=1"]
    return sets


def table_rows(raw: dict, keep: set[str] | None) -> tuple[list[str], list[str]]:
    """The rows a smoke run keeps (all, or those in `keep`) and the --set restricting the table to them."""
    table = raw["table"]
    if table.get("groups"):
        groups = [{**g, "rows": [r for r in g["rows"] if keep is None or r in keep]} for g in table["groups"]]
        groups = [g for g in groups if g["rows"]]
        return [r for g in groups for r in g["rows"]], ["table.groups=" + json.dumps(groups)]
    rows = [r for r in table["rows"] if keep is None or r in keep]
    return rows, ["table.rows=" + json.dumps(rows)]


def generator_sets(name: str, entry: dict, px: int | None, frames: int | None) -> list[str]:
    """1 denoising step; `px` lowers the height (video: the width in proportion, a multiple of 64);
    `frames` lowers a video generator's clip length."""
    sets = [f"generators.{name}.steps=1"]
    video = entry.get("generator") == "diffusers_video"
    if px:
        width = max(64, round(px * entry.get("width", px) / entry.get("height", px) / 64) * 64) if video else px
        sets += [f"generators.{name}.height={px}", f"generators.{name}.width={width}"]
    if video and frames:
        sets.append(f"generators.{name}.num_frames={frames}")
    return sets


def spec_overrides(spec: str, px: int | None = None, frames: int | None = None, sdxl: str = "none") -> list[str]:
    """Any paper table's --set list, read from the spec: its rows (less LEFT_OUT unless `sdxl` is
    `all`), and for those rows every generator at 1 step (and `px`, `frames`), every fine-tune at 1
    step (`finetune_sets`), every GAN-RM at 1 epoch; video metrics at `frames` frames."""
    if spec == "table1":
        return overrides(sdxl, px)
    from ganrm_bench.harness.spec.load import load_raw

    raw = load_raw(REPO / "benchmarks" / f"{spec}.yaml")
    left = set(LEFT_OUT.get(spec, ([], ""))[0]) if sdxl != "all" else set()
    rows, sets = table_rows(raw, {r for r in raw["methods"] if r not in left})
    generators, scorers = set(), set()
    for row in rows:
        method = raw["methods"][row]
        generators.add(method["generator"])
        scorers.update([method["scorer"]] if method.get("scorer") else [])
        sets += finetune_sets(row, px) if method["method"] in FINETUNES else []
    for name in sorted(generators):
        sets += generator_sets(name, raw["generators"][name], px, frames)
    sets += [f"scorers.{s}.epochs=1" for s in sorted(scorers) if raw["scorers"][s].get("scorer") == "ganrm"]
    if frames:
        sets += [f"metrics.{m}.frames={frames}" for m, e in raw.get("metrics", {}).items() if "frames" in e]
    return sets


def write_spec_data(spec: str, root: Path, frames: int | None) -> None:
    """The synthetic data of the spec's kind."""
    if spec == "table2":
        write_safety_data(root)
    elif spec == "table3":
        write_video_data(root, frames=frames or 16)
    else:
        write_data(root)


def real_plan_cached(exe: Path, common: list[str], limit: int, work: Path, env: dict) -> int | None:
    """How many artifacts the same run with real weights finds cached (None: no plan)."""
    import re

    plan = subprocess.run([str(exe), "run", *common, "--limit-prompts", str(limit), "--dry-run"],
                          cwd=work, env=env, capture_output=True, text=True)
    print(plan.stdout[-3000:], plan.stderr[-2000:])
    found = re.search(r"(\d+) artifacts? cached, (\d+) to compute", " ".join(plan.stdout.split()))
    if plan.returncode != 0 or not found:
        print("could not read the plan's summary line")
        return None
    cached, todo = map(int, found.groups())
    print(f"real-weights plan on the smoke cache: {cached} artifacts cached, {todo} to compute")
    return cached


def available_gib() -> float:
    """MemAvailable of /proc/meminfo in GiB (inf where there is none)."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return float("inf")


def run_guarded(cmd: list[str], cwd: Path, env: dict, min_free_gib: float) -> int:
    """Run cmd in its own process group; stop it (exit 137) when the machine's available memory
    falls below `min_free_gib`, so a run too big for a shared machine ends itself, not its neighbours."""
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, start_new_session=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # `timeout` stops the run too, not only this script
    try:
        while proc.poll() is None:
            if min_free_gib > 0 and available_gib() < min_free_gib:
                print(f"stopped: available memory fell below {min_free_gib} GiB", flush=True)
                return 137
            time.sleep(1)
        return proc.returncode
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--spec", default="table1", help="a paper table: table1 … table9 (benchmarks/<spec>.yaml)")
    ap.add_argument("--work", type=Path, default=Path("/tmp/ganrm-smoke"))
    ap.add_argument("--sdxl", choices=["none", "sampling", "all"], default="none",
                    help="Table 1's SDXL block: none, its rows without a fine-tune (base, DiffusionDPO, RM@10), or all "
                         "(its full fine-tuning needs ~29 GB with Adafactor); other tables: `all` keeps LEFT_OUT rows")
    ap.add_argument("--limit-prompts", type=int, default=2)
    ap.add_argument("--px", type=int, default=None, help="lower the image size (default: the spec's, 512 / 1024 px)")
    ap.add_argument("--frames", type=int, default=None, help="lower a video table's frames per clip (default: the spec's)")
    ap.add_argument("--min-free-gib", type=float, default=0.0,
                    help="stop the run when the machine's available memory falls below this (a shared machine; 0: never)")
    ap.add_argument("--dry-run", action="store_true", help="only print the plan")
    ap.add_argument("--keep", action="store_true", help="keep an earlier cache (default: a cold run)")
    args = ap.parse_args()
    work = args.work.resolve()
    if work.exists() and not args.keep:
        shutil.rmtree(work)
    write_spec_data(args.spec, work, args.frames)
    exe = Path(sys.executable).parent / "ganrm-bench"
    sets = [x for s in spec_overrides(args.spec, args.px, args.frames, args.sdxl) for x in ("--set", s)]
    common = [str(REPO / "benchmarks" / f"{args.spec}.yaml"), "--cache", str(work / "cache"), "--device", "cpu", *sets]
    cmd = [str(exe), "run", *common, "--random-weights", "--limit-prompts", str(args.limit_prompts),
           "--out", str(work / "run"), "--offline", "--no-progress", *(["--dry-run"] if args.dry_run else [])]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    print("$", " ".join(cmd), flush=True)
    t0 = time.time()
    rc = run_guarded(cmd, work, env, args.min_free_gib)
    seconds = time.time() - t0
    peak_gib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20  # KiB on Linux
    print(f"smoke run: exit {rc}, {seconds / 60:.1f} min wall, peak RSS {peak_gib:.1f} GiB", flush=True)
    if rc != 0 or args.dry_run:
        return rc
    info = json.loads((work / "run" / "run.json").read_text())
    assert info["random_weights"] is True and info["limit_prompts"] == args.limit_prompts, info
    print("run.json:", {k: info[k] for k in ("random_weights", "limit_prompts", "skipped_columns") if k in info})
    # A real-weights plan of the same spec and cache: nothing of the smoke run may count as cached.
    cached = real_plan_cached(exe, common, args.limit_prompts, work, env)
    return 1 if cached is None else (0 if cached == 0 else 1)


if __name__ == "__main__":
    sys.exit(main())
