"""VBench: the venv commands, the runner's subprocess contract (with a fake vbench interpreter)
and the parsing + package weighting of a results file. vbench itself is never installed here."""

import json
import os
import stat
import sys
import textwrap

import numpy as np
import pytest

from ganrm_bench.harness.errors import UserError
from ganrm_bench.metrics import vbench as vb

# VBench scripts/constant.py, written out independently for the check
MINMAX = {"subject_consistency": (0.1462, 1.0), "background_consistency": (0.2615, 1.0),
          "temporal_flickering": (0.6293, 1.0), "motion_smoothness": (0.706, 0.9975), "dynamic_degree": (0.0, 1.0),
          "aesthetic_quality": (0.0, 1.0), "imaging_quality": (0.0, 1.0), "object_class": (0.0, 1.0),
          "multiple_objects": (0.0, 1.0), "human_action": (0.0, 1.0), "color": (0.0, 1.0),
          "spatial_relationship": (0.0, 1.0), "scene": (0.0, 0.8222), "appearance_style": (0.0009, 0.2855),
          "temporal_style": (0.0, 0.364), "overall_consistency": (0.0, 0.364)}
QUALITY = ["subject_consistency", "background_consistency", "temporal_flickering", "motion_smoothness",
           "aesthetic_quality", "imaging_quality", "dynamic_degree"]


def official_total(raw):
    norm = {k: (raw[k] - lo) / (hi - lo) * (0.5 if k == "dynamic_degree" else 1) for k, (lo, hi) in MINMAX.items()}
    q = sum(norm[k] for k in QUALITY) / 6.5
    s = sum(norm[k] for k in MINMAX if k not in QUALITY) / 9
    return 100 * (4 * q + s) / 5


def test_env_commands_make_a_venv_and_install_the_pinned_vbench(tmp_path):
    env = tmp_path / "envs" / "vbench-0.1.5"
    cmds = vb.env_commands(env, python="/usr/bin/python3")
    assert cmds[0] == ["/usr/bin/python3", "-m", "venv", str(env)]
    assert cmds[-1][:4] == [str(env / "bin" / "python"), "-m", "pip", "install"] and "vbench==0.1.5" in cmds[-1]
    assert vb.default_env_dir(tmp_path) == tmp_path / "envs" / "vbench-0.1.5"


def test_create_env_writes_its_marker_only_after_success(tmp_path):
    ran = []

    def fake_run(cmd, check):
        ran.append(cmd)
        if cmd[1:3] == ["-m", "venv"]:
            (tmp_path / "env" / "bin").mkdir(parents=True)
            (tmp_path / "env" / "bin" / "python").write_text("")

    env = vb.create_env(tmp_path / "env", run=fake_run, log=lambda s: None)
    assert len(ran) == 3 and vb.env_ready(env)
    assert json.loads((env / vb.ENV_MARKER).read_text())["vbench"] == "0.1.5"
    vb.create_env(env, run=fake_run, log=lambda s: None)
    assert len(ran) == 3, "a ready environment is reused"

    def failing(cmd, check):
        import subprocess

        if "pip" in cmd:
            raise subprocess.CalledProcessError(1, cmd)
        (tmp_path / "bad" / "bin").mkdir(parents=True, exist_ok=True)

    with pytest.raises(UserError, match="creating the vbench environment failed"):
        vb.create_env(tmp_path / "bad", run=failing, log=lambda s: None)
    assert not vb.env_ready(tmp_path / "bad")


def test_total_is_the_packages_weighting_over_all_16_dimensions(rng):
    raw = {k: float(rng.uniform(lo, hi)) for k, (lo, hi) in MINMAX.items()}
    assert vb.total_score(raw)["total"] == pytest.approx(official_total(raw), rel=1e-12)


def test_parse_results_file_with_per_video_values(tmp_path, ctx, write_items, rng):
    samples = write_items([np.zeros((2, 4, 4, 3), np.uint8)] * 6, prompts=["p"] * 6, prompt_ids=["a", "a", "b", "b", "c", "c"])
    names = {f"{i:06d}.mp4": i for i in range(6)}
    per = {"subject_consistency": rng.uniform(0.9, 1.0, 6), "dynamic_degree": np.array([1, 0, 1, 1, 0, 0.0]),
           "overall_consistency": rng.uniform(0.1, 0.3, 6)}
    results = {d: [float(v.mean()), [{"video_path": f"/w/videos/{i:06d}.mp4", "video_results": float(x) if d != "dynamic_degree" else bool(x)}
                                      for i, x in enumerate(v)]] for d, v in per.items()}
    path = tmp_path / "ganrm_eval_results.json"
    path.write_text(json.dumps(results))
    metric = vb.VBench({"dimensions": list(per), "ci": {"resamples": 200}})
    result = metric.parse(path, names, samples, ctx)
    sc = (per["subject_consistency"].mean() - 0.1462) / (1 - 0.1462)
    q = (sc + 0.5 * per["dynamic_degree"].mean()) / 1.5
    s = per["overall_consistency"].mean() / 0.364
    assert result.value == pytest.approx(100 * (4 * q + s) / 5, rel=1e-9)
    assert result.extras["complete"] is False and result.extras["dimensions"]["dynamic_degree"] == pytest.approx(0.5)
    assert np.isfinite(result.ci_low) and result.ci_low <= result.ci_high


def test_unsupported_custom_dimension_and_unknown_dimension_are_rejected():
    with pytest.raises(Exception, match="vbench_standard"):
        vb.VBench({"dimensions": ["color"]})
    with pytest.raises(Exception, match="unknown VBench dimension"):
        vb.VBench({"dimensions": ["beauty"]})
    assert vb.VBench({"dimensions": ["color"], "mode": "vbench_standard"}).params.mode == "vbench_standard"


FAKE_DRIVER = """
import json, os, sys
import numpy as np
job = json.load(open(sys.argv[1]))
os.makedirs(job["output_dir"], exist_ok=True)
res = {}
for d in job["dimensions"]:
    rows = []
    for v in job["videos"]:
        with np.load(v["file"]) as z:
            rows.append({"video_path": os.path.join(job["video_dir"], v["name"]), "video_results": float(z["frames"].mean() / 255)})
    res[d] = [float(np.mean([r["video_results"] for r in rows])), rows]
json.dump(res, open(os.path.join(job["output_dir"], job["name"] + "_eval_results.json"), "w"))
json.dump({"cache": os.environ.get("VBENCH_CACHE_DIR"), "prompts": [v["prompt"] for v in job["videos"]],
           "device": job["device"], "mode": job["mode"]}, open(os.path.join(job["output_dir"], "seen.json"), "w"))
"""


def fake_env(tmp_path):
    """A 'venv' whose python runs a fake driver (with our interpreter) instead of vbench."""
    env = tmp_path / "fake-env"
    (env / "bin").mkdir(parents=True)
    driver = tmp_path / "fake_driver.py"
    driver.write_text(textwrap.dedent(FAKE_DRIVER))
    py = env / "bin" / "python"
    py.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{driver}" "$2"\n')  # $1 is our driver script
    py.chmod(py.stat().st_mode | stat.S_IEXEC)
    (env / vb.ENV_MARKER).write_text("{}")
    return env


def test_runner_end_to_end_with_a_fake_vbench(tmp_path, ctx, write_items, rng):
    vids = [rng.integers(0, 256, (3, 8, 8, 3), dtype=np.uint8) for _ in range(4)]
    samples = write_items(vids, prompts=["a cat", "a cat", "a dog", "a dog"], prompt_ids=["c", "c", "d", "d"])
    env = fake_env(tmp_path)
    metric = vb.VBench({"env": str(env), "dimensions": ["subject_consistency", "temporal_flickering"],
                        "weights_dir": str(tmp_path / "w"), "ci": {"resamples": 100}})
    cmd = metric.command(env, tmp_path / "job.json")
    assert cmd == [str(env / "bin" / "python"), str(vb.DRIVER), str(tmp_path / "job.json")]
    result = metric.compute(samples, ctx)
    means = np.array([v.mean() / 255 for v in vids])
    sc = (means.mean() - 0.1462) / (1 - 0.1462)
    tf = (means.mean() - 0.6293) / (1 - 0.6293)
    assert result.value == pytest.approx(100 * (sc + tf) / 2, rel=1e-9)
    seen = json.loads(open(os.path.join(result.extras["work_dir"], "results", "seen.json")).read())
    assert seen == {"cache": str(tmp_path / "w"), "prompts": ["a cat", "a cat", "a dog", "a dog"],
                    "device": "cpu", "mode": "custom_input"}


def test_runner_without_env_points_to_the_env_command(tmp_path, ctx, write_items):
    samples = write_items([np.zeros((2, 4, 4, 3), np.uint8)], prompts=["x"])
    with pytest.raises(UserError, match="ganrm-bench env vbench"):
        vb.VBench({"env": str(tmp_path / "nowhere")}).compute(samples, ctx)


def test_runner_reports_a_failing_vbench_with_its_log(tmp_path, ctx, write_items):
    env = fake_env(tmp_path)
    (env / "bin" / "python").write_text("#!/bin/sh\necho 'CUDA error: no GPU' >&2\nexit 3\n")
    samples = write_items([np.zeros((2, 4, 4, 3), np.uint8)], prompts=["x"])
    with pytest.raises(UserError, match="exit 3") as err:
        vb.VBench({"env": str(env)}).compute(samples, ctx)
    assert "CUDA error" in str(err.value)
