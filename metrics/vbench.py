"""VBench, run in its own virtual environment as a subprocess.

vbench 0.1.5 pins transformers==4.33.2, numpy<2 and timm<=1.0.12, so it cannot share our
environment. `create_env` makes a venv under the cache dir and pip-installs vbench there
(~6.7 GB; exposed as `ganrm-bench env vbench`). The `vbench` metric writes the samples
(uint8 frame arrays) and a job file to a work folder, runs `metrics/vbench_driver.py` with the
venv's python (which encodes mp4s and calls `VBench.evaluate` over the requested dimensions),
and parses the JSON it writes.

Score: each dimension is min-max normalized with the package's constants and weighted
(dynamic degree 0.5); quality and semantic scores are the weighted means of their dimensions
and total = (4·quality + 1·semantic) / 5, as in VBench's `scripts/cal_final_score.py`, ×100.
With a subset of dimensions the same formula runs over the dimensions present (a group with no
dimension is left out), and `extras["complete"]` says whether all 16 were scored — only then is
the total comparable with the leaderboard. The CI is a bootstrap over prompts of the per-video
results VBench reports.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, ClassVar, Literal, Sequence

import numpy as np
from pydantic import Field, field_validator, model_validator

from ganrm_bench.harness.errors import UserError
from ganrm_bench.harness.plugins.base import ItemSet, Metric, MetricResult, PluginParams
from ganrm_bench.harness.runtime import random_weights as rw
from ganrm_bench.harness.store.artifacts import default_root
from ganrm_bench.harness.store.assets import local_asset
from ganrm_bench.metrics import ci as cimod

VBENCH_VERSION = "0.1.5"
ENV_MARKER = "ganrm-bench-env.json"
DRIVER = Path(__file__).with_name("vbench_driver.py")

# From VBench scripts/constant.py (the package's weighting).
NORMALIZE = {
    "subject_consistency": (0.1462, 1.0), "background_consistency": (0.2615, 1.0),
    "temporal_flickering": (0.6293, 1.0), "motion_smoothness": (0.706, 0.9975),
    "dynamic_degree": (0.0, 1.0), "aesthetic_quality": (0.0, 1.0), "imaging_quality": (0.0, 1.0),
    "object_class": (0.0, 1.0), "multiple_objects": (0.0, 1.0), "human_action": (0.0, 1.0),
    "color": (0.0, 1.0), "spatial_relationship": (0.0, 1.0), "scene": (0.0, 0.8222),
    "appearance_style": (0.0009, 0.2855), "temporal_style": (0.0, 0.364), "overall_consistency": (0.0, 0.364),
}
DIM_WEIGHT = {d: (0.5 if d == "dynamic_degree" else 1.0) for d in NORMALIZE}
QUALITY = ("subject_consistency", "background_consistency", "temporal_flickering", "motion_smoothness",
           "aesthetic_quality", "imaging_quality", "dynamic_degree")
SEMANTIC = ("object_class", "multiple_objects", "human_action", "color", "spatial_relationship", "scene",
            "appearance_style", "temporal_style", "overall_consistency")
QUALITY_WEIGHT, SEMANTIC_WEIGHT = 4.0, 1.0
NOT_CUSTOM = ("object_class", "multiple_objects", "scene", "appearance_style", "color", "spatial_relationship")
CUSTOM_DEFAULT = [d for d in QUALITY + SEMANTIC if d not in NOT_CUSTOM]


# ---------------------------------------------------------------------------------------------
# (a) the environment


def default_env_dir(cache_root: str | Path | None = None) -> Path:
    return Path(cache_root or default_root()) / "envs" / f"vbench-{VBENCH_VERSION}"


def env_python(env: Path) -> Path:
    return env / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def env_commands(env: Path, *, python: str = sys.executable, version: str = VBENCH_VERSION,
                 pip_args: Sequence[str] = ()) -> list[list[str]]:
    """The commands that build the environment, in order."""
    py = str(env_python(env))
    return [
        [python, "-m", "venv", str(env)],
        [py, "-m", "pip", "install", "--upgrade", "pip"],
        [py, "-m", "pip", "install", f"vbench=={version}", *pip_args],
    ]


def env_ready(env: Path) -> bool:
    return (env / ENV_MARKER).is_file() and env_python(env).exists()


def create_env(env: str | Path | None = None, *, cache_root: str | Path | None = None, python: str = sys.executable,
               version: str = VBENCH_VERSION, pip_args: Sequence[str] = (), force: bool = False,
               run: Callable[..., Any] = subprocess.run, log: Callable[[str], None] = print) -> Path:
    """Create (or reuse) the vbench venv; the marker file is written only after every step succeeded."""
    env = Path(env) if env else default_env_dir(cache_root)
    if env_ready(env) and not force:
        log(f"vbench environment already present: {env}")
        return env
    if env.exists():
        shutil.rmtree(env)
    env.parent.mkdir(parents=True, exist_ok=True)
    for cmd in env_commands(env, python=python, version=version, pip_args=pip_args):
        log("$ " + " ".join(cmd))
        try:
            run(cmd, check=True)
        except (subprocess.CalledProcessError, OSError) as exc:
            raise UserError(f"creating the vbench environment failed at: {' '.join(cmd)} ({exc})",
                            hint="check network access to PyPI and free disk space (~7 GB); rerun to retry") from exc
    (env / ENV_MARKER).write_text(json.dumps({"vbench": version, "python": python, "created": time.time()}, indent=1))
    return env


# ---------------------------------------------------------------------------------------------
# (b) the runner


class VBenchParams(PluginParams):
    dimensions: list[str] = Field(default_factory=lambda: list(CUSTOM_DEFAULT), min_length=1)
    mode: Literal["custom_input", "vbench_standard"] = "custom_input"
    env: str | None = None  # the venv; default <cache>/envs/vbench-0.1.5
    weights_dir: str | None = None  # VBENCH_CACHE_DIR; default <cache>/vbench-weights
    full_info: str | None = None  # VBench_full_info.json for vbench_standard; default the package's
    device: str | None = None  # default ctx.device
    fps: int = Field(8, ge=1)
    local: bool = False  # VBench's load_ckpt_from_local
    timeout: float | None = Field(None, gt=0)
    ci: cimod.CIParams = cimod.CIParams()

    @field_validator("dimensions")
    @classmethod
    def _known(cls, dims: list[str]) -> list[str]:
        unknown = [d for d in dims if d not in NORMALIZE]
        if unknown:
            raise ValueError(f"unknown VBench dimension(s) {unknown}; known: {', '.join(NORMALIZE)}")
        return dims

    @model_validator(mode="after")
    def _custom_supported(self) -> "VBenchParams":
        bad = [d for d in self.dimensions if self.mode == "custom_input" and d in NOT_CUSTOM]
        if bad:
            raise ValueError(f"dimension(s) {bad} need VBench's own prompt suite (mode: vbench_standard); "
                             f"custom prompts support: {', '.join(CUSTOM_DEFAULT)}")
        return self


class VBench(Metric):
    """VBench total (package weighting, ×100) over the chosen dimensions, run in its own venv; higher is better."""

    name: ClassVar[str] = "vbench"
    version: ClassVar[str] = "1"
    Params = VBenchParams

    def convention(self) -> str:
        return (f"vbench: vbench {VBENCH_VERSION} {self.params.mode}, min-max normalized, "
                f"total=(4·quality+1·semantic)/5 ×100 over {len(self.params.dimensions)} dimension(s)")

    def random_weights_unavailable(self) -> str | None:
        """run --random-weights leaves this column out: VBench runs a dozen networks of its own in
        its own venv (`ganrm-bench env vbench`), with weights it downloads itself."""
        if not rw.active():
            return None
        return ("VBench runs its own networks (DINO, RAFT, CLIP, MUSIQ, ...) in its own venv with weights it downloads "
                "itself; they have no random build, so this column is left out of a --random-weights run")

    def env_dir(self, ctx: Any) -> Path:
        if self.params.env:
            return Path(self.params.env).expanduser()
        return default_env_dir(getattr(getattr(ctx, "store", None), "root", None))

    def assets(self, store: Any = None) -> list:
        """Its own venv (`ganrm-bench env vbench`) and the weights VBench fetches into
        VBENCH_CACHE_DIR (VBench downloads them itself on a first online run) (harness.store.assets)."""
        root = getattr(store, "root", None)
        env = Path(self.params.env).expanduser() if self.params.env else default_env_dir(root)
        weights = (Path(self.params.weights_dir).expanduser() if self.params.weights_dir
                   else Path(root if root is not None else default_root()) / "vbench-weights")
        return [local_asset(env / ENV_MARKER, what="VBench environment", how="run `ganrm-bench env vbench` (needs PyPI)"),
                local_asset(weights, what="VBench model weights (VBENCH_CACHE_DIR)",
                            how=f"run this metric once where the network is reachable (VBench downloads into {weights}), then copy it")]

    # -- the job -------------------------------------------------------------------------------
    def write_job(self, samples: ItemSet, ctx: Any, work: Path) -> tuple[Path, dict[str, int]]:
        """Copy the videos to the work folder and write job.json; returns (job path, mp4 name -> index)."""
        (work / "npz").mkdir(parents=True, exist_ok=True)
        videos, names = [], {}
        for i, it in enumerate(samples.items):
            if not str(it.path).endswith(".npz"):
                raise UserError(f"metric 'vbench' scores videos; item {it.key!r} is {it.path}")
            if it.prompt is None:
                raise UserError(f"metric 'vbench': item {it.key!r} has no prompt")
            if self.params.mode == "vbench_standard":
                name = f"{it.prompt}-{it.k or 0}.mp4"  # the file name VBench's standard suite looks for
            else:
                name = f"{i:06d}.mp4"
            target = work / "npz" / f"{i:06d}.npz"
            shutil.copyfile(it.path, target)
            videos.append({"file": str(target), "name": name, "prompt": it.prompt})
            names[name] = i
        job = {
            "videos": videos, "video_dir": str(work / "videos"), "output_dir": str(work / "results"), "name": "ganrm",
            "dimensions": list(self.params.dimensions), "mode": self.params.mode,
            "device": self.params.device or getattr(ctx, "device", "cpu"), "fps": self.params.fps,
            "full_info": self.params.full_info, "local": self.params.local,
        }
        path = work / "job.json"
        path.write_text(json.dumps(job, indent=1))
        return path, names

    def command(self, env: Path, job: Path) -> list[str]:
        return [str(env_python(env)), str(DRIVER), str(job)]

    def subprocess_env(self, ctx: Any) -> dict[str, str]:
        root = Path(getattr(getattr(ctx, "store", None), "root", None) or default_env_dir().parent.parent)
        env = dict(os.environ)
        env["VBENCH_CACHE_DIR"] = str(Path(self.params.weights_dir).expanduser() if self.params.weights_dir
                                      else root / "vbench-weights")
        env.pop("PYTHONPATH", None)  # keep our packages out of vbench's interpreter
        return env

    def run(self, samples: ItemSet, ctx: Any, work: Path) -> tuple[Path, dict[str, int]]:
        env = self.env_dir(ctx)
        if not env_ready(env):
            raise UserError(f"metric 'vbench' needs its own environment, not found at {env}",
                            hint="run `ganrm-bench env vbench` once (creates it; ~6.7 GB, needs PyPI access)")
        job, names = self.write_job(samples, ctx, work)
        log = work / "vbench.log"
        with open(log, "w") as out:
            try:
                proc = subprocess.run(self.command(env, job), stdout=out, stderr=subprocess.STDOUT,
                                      env=self.subprocess_env(ctx), timeout=self.params.timeout)
            except subprocess.TimeoutExpired as exc:
                raise UserError(f"vbench did not finish within {self.params.timeout} s; log: {log}") from exc
        if proc.returncode != 0:
            tail = log.read_text(errors="replace").splitlines()[-15:]
            raise UserError(f"vbench failed (exit {proc.returncode}); log: {log}\n" + "\n".join(tail),
                            hint="VBench fetches its models at run time into VBENCH_CACHE_DIR: offline, put them there first")
        return work / "results" / "ganrm_eval_results.json", names

    def compute(self, samples: ItemSet, ctx: Any, *, reference: ItemSet | None = None) -> MetricResult:
        if len(samples) == 0:
            raise UserError(f"metric 'vbench': the sample set {samples.key!r} is empty")
        root = Path(getattr(getattr(ctx, "store", None), "root", None) or tempfile.gettempdir())
        (root / "tmp").mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix="vbench.", dir=root / "tmp"))
        results, names = self.run(samples, ctx, work)
        result = self.parse(results, names, samples, ctx)
        result.extras["work_dir"] = str(work)
        return result

    # -- parsing -------------------------------------------------------------------------------
    def parse(self, results_file: Path, names: dict[str, int], samples: ItemSet, ctx: Any) -> MetricResult:
        """MetricResult from VBench's `<name>_eval_results.json`: {dimension: [score, per-video list]}."""
        try:
            raw = json.loads(Path(results_file).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise UserError(f"vbench wrote no readable results at {results_file} ({exc})") from exc
        dims = [d for d in self.params.dimensions]
        missing = [d for d in dims if d not in raw]
        if missing:
            raise UserError(f"{results_file}: no result for dimension(s) {missing}")
        scores = {d: _aggregate(raw[d], d, results_file) for d in dims}
        per_video = {d: _per_video(raw[d], names, len(samples)) for d in dims}
        parts = total_score(scores)
        groups = cimod.group_index([it.prompt_id or it.key for it in samples.items])
        lo = hi = float("nan")
        if self.params.ci.method == "bootstrap" and int(groups.max()) > 0 and all(v is not None for v in per_video.values()):
            boot = bootstrap_total(per_video, groups, resamples=self.params.ci.resamples,
                                   rng=cimod.rng_for(ctx, self.name, samples.key))
            lo, hi = cimod.percentile_interval(boot, self.params.ci.level)
        extras = {
            "dimensions": scores,
            "normalized": {d: normalized(d, v) for d, v in scores.items()},
            "quality": parts["quality"], "semantic": parts["semantic"],
            "complete": set(dims) == set(NORMALIZE),
            "ci": cimod.describe(self.params.ci, "prompts (per-video results)") if not np.isnan(lo) else "no CI (per-video results missing)",
        }
        return MetricResult(parts["total"], lo, hi, n=len(samples), convention=self.convention(), extras=extras)


def normalized(dim: str, value: float) -> float:
    lo, hi = NORMALIZE[dim]
    return (value - lo) / (hi - lo)


def total_score(scores: dict[str, float]) -> dict[str, float]:
    """VBench's total (×100) over the dimensions present; quality/semantic are None when absent."""
    def group(names: Sequence[str]) -> float | None:
        present = [d for d in names if d in scores]
        if not present:
            return None
        return sum(normalized(d, scores[d]) * DIM_WEIGHT[d] for d in present) / sum(DIM_WEIGHT[d] for d in present)

    q, s = group(QUALITY), group(SEMANTIC)
    weights = [(q, QUALITY_WEIGHT), (s, SEMANTIC_WEIGHT)]
    num = sum(v * w for v, w in weights if v is not None)
    den = sum(w for v, w in weights if v is not None)
    return {"total": 100.0 * num / den, "quality": None if q is None else 100.0 * q, "semantic": None if s is None else 100.0 * s}


def bootstrap_total(per_video: dict[str, np.ndarray], groups: np.ndarray, *, resamples: int,
                    rng: np.random.Generator) -> np.ndarray:
    """Totals of prompt-bootstrap resamples; every dimension uses the same resampled prompts."""
    n_groups = int(groups.max()) + 1
    counts = rng.multinomial(n_groups, np.full(n_groups, 1.0 / n_groups), size=resamples).astype(np.float64)
    means = {}
    for d, values in per_video.items():
        ok = np.isfinite(values)
        sums = np.bincount(groups[ok], weights=values[ok], minlength=n_groups)
        sizes = np.bincount(groups[ok], minlength=n_groups).astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            means[d] = (counts @ sums) / (counts @ sizes)
    return np.array([total_score({d: m[r] for d, m in means.items()})["total"] for r in range(resamples)])


def _aggregate(entry: Any, dim: str, path: Path) -> float:
    value = entry[0] if isinstance(entry, (list, tuple)) else entry
    try:
        return float(value)
    except (TypeError, ValueError) as exc:
        raise UserError(f"{path}: dimension {dim!r} has no numeric score ({value!r})") from exc


def _per_video(entry: Any, names: dict[str, int], n: int) -> np.ndarray | None:
    """Per-item values from VBench's per-video list ([{video_path, video_results}, ...]), or None."""
    if not isinstance(entry, (list, tuple)) or len(entry) < 2 or not isinstance(entry[1], list):
        return None
    values = np.full(n, np.nan)
    for row in entry[1]:
        if not isinstance(row, dict) or "video_path" not in row:
            return None
        index = names.get(Path(str(row["video_path"])).name)
        result = row.get("video_results")
        if index is None or isinstance(result, (list, dict)) or result is None:
            continue
        values[index] = float(result)
    return values if np.isfinite(values).any() else None
