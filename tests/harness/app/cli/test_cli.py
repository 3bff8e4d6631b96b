"""The CLI end to end: kill -9 and resume, exit codes, check, report, sharding. What a test is about runs
through the entry point — in a real subprocess where a process is the point (a kill, two ranks, the
missing-spec exit), else in-process (tests.helpers.clirun: the same `main`, exit codes and streams,
without seconds of interpreter and import start-up per call); runs that are only a test's input are
made in-process through the service the `run` command calls."""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from tests.helpers.cli import cli, slow_spec
from tests.helpers.clirun import ganrm
from tests.helpers.clirun import run_in_process as run_service
from tests.helpers.toy_plugins import count


def pngs(cache: Path) -> int:
    return sum(1 for p in (cache / "items").glob("*/*.png") if not p.name.startswith("toyimg"))


def test_kill_9_mid_run_then_resume_finishes_without_redoing(tmp_path, inproc_env, capsys):
    """The killed run is a real process; the resume, the uninterrupted reference and `cache verify` run in-process."""
    env = inproc_env
    spec = slow_spec(tmp_path, delay=0.03)
    total = 8 * 6 + 4 * 2
    proc = subprocess.Popen([sys.executable, "-m", "ganrm_bench.harness.app.cli.main", "run", str(spec), "--out", str(tmp_path / "run1")], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while count(Path(env["TOY_COUNTER_DIR"]), "generated") < 12 and time.time() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_before = pngs(Path(env["GANRM_BENCH_CACHE"]))
    assert 0 < done_before < total, "the kill should land mid-generation"
    generated_before = count(Path(env["TOY_COUNTER_DIR"]), "generated")

    run_service(spec, tmp_path / "run2")
    generated_after = count(Path(env["TOY_COUNTER_DIR"]), "generated") - generated_before
    assert generated_after == total - done_before  # only the missing items were made
    assert pngs(Path(env["GANRM_BENCH_CACHE"])) == total

    run_service(spec, tmp_path / "clean", cache=tmp_path / "clean_cache")
    resumed = pd.read_csv(tmp_path / "run2" / "results.csv")
    uninterrupted = pd.read_csv(tmp_path / "clean" / "results.csv")
    assert resumed["value"].tolist() == uninterrupted["value"].tolist()
    assert resumed["key"].tolist() == uninterrupted["key"].tolist()
    assert ganrm(capsys, "cache", "verify")[0] == 0


def test_warm_run_computes_nothing_and_writes_provenance(tmp_path, inproc_env, capsys):
    """The cold run is in-process through the service; the warm one through the entry point, in-process."""
    env = inproc_env
    spec = slow_spec(tmp_path)
    run_service(spec, tmp_path / "r1")
    n = count(Path(env["TOY_COUNTER_DIR"]), "generated")
    code, stdout, stderr = ganrm(capsys, "run", spec, "--out", tmp_path / "r2")
    assert code == 0 and "nothing (all cached)" in stdout, stderr
    assert count(Path(env["TOY_COUNTER_DIR"]), "generated") == n
    info = json.loads((tmp_path / "r2" / "run.json").read_text())
    assert info["computed"] == {} and info["spec_hash"] and "numpy" in info["packages"]
    for f in ("results.parquet", "results.csv", "results.json", "table.md", "table.tex", "figures/brightness.png",
              "gallery.png", "gallery/base.png", "gallery/best.png"):
        assert (tmp_path / "r2" / f).exists(), f
    from PIL import Image

    with Image.open(tmp_path / "r2" / "gallery" / "best.png") as im:  # 8 prompts × 1 sample, 8×8 px scaled ×8
        assert im.size == (8 * 64, 64)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("name: x\nmethods: [", "YAML syntax error"),
        ("name: x\nmetods: {}\n", "metods: unknown key; did you mean 'methods'?"),
        ("name: x\nseeds: five\n", "seeds: expected a list, got 'five'"),
    ],
)
def test_malformed_specs_exit_2_with_yaml_path_and_no_traceback(tmp_path, inproc_env, capsys, text, expected):
    """Through `main` in-process: a traceback would escape it as an exception and fail the test (the real
    subprocess's exit 2 without one is test_missing_spec_file_exits_2's)."""
    p = tmp_path / "bad.yaml"
    p.write_text(text)
    for cmd in ("validate", "run", "plan"):
        code, stdout, stderr = ganrm(capsys, cmd, p)
        assert code == 2, (cmd, stdout, stderr)
        assert expected in stderr and "Traceback" not in stderr


def test_missing_spec_file_exits_2(tmp_path, env):
    out = cli("validate", tmp_path / "nope.yaml", env=env)
    assert out.returncode == 2 and "spec file not found" in out.stderr and "Traceback" not in out.stderr


def test_check_fails_on_planted_regression(tmp_path, inproc_env, capsys):
    """In-process: the run through the service, `check` through `main` (a real `check` subprocess exiting 1 is
    tests/harness/stats/test_paired_runs.py's)."""
    spec = slow_spec(tmp_path)
    run_service(spec, tmp_path / "run")
    results = pd.read_csv(tmp_path / "run" / "results.csv")
    results.to_csv(tmp_path / "same.csv", index=False)
    code, _, stderr = ganrm(capsys, "check", tmp_path / "run", "--baseline", tmp_path / "same.csv")
    assert code == 0, stderr
    planted = results.copy()
    planted.loc[planted.row == "best", "value"] += 10  # the baseline was much better (higher is better)
    planted.to_csv(tmp_path / "planted.csv", index=False)
    code, _, stderr = ganrm(capsys, "check", tmp_path / "run", "--baseline", tmp_path / "planted.csv")
    assert code == 1 and "best × brightness" in stderr and "base × brightness" not in stderr
    # a tolerance wider than the gap accepts it
    assert ganrm(capsys, "check", tmp_path / "run", "--baseline", tmp_path / "planted.csv", "--tolerance", "brightness=11")[0] == 0


def test_report_rerenders_without_recomputing(tmp_path, inproc_env, capsys):
    """In-process: the run through the service, `report` through `main`."""
    env = inproc_env
    spec = slow_spec(tmp_path)
    run_service(spec, tmp_path / "run")
    n = count(Path(env["TOY_COUNTER_DIR"]), "generated")
    code, latex, _ = ganrm(capsys, "report", tmp_path / "run", "--format", "latex")
    assert code == 0 and "\\toprule" in latex and "brightness$\\uparrow$" in latex
    _, md, _ = ganrm(capsys, "report", tmp_path / "run", "--format", "markdown")
    assert "(paper 99.00 ✗)" in md or "(paper 99.00 ✓)" in md
    assert count(Path(env["TOY_COUNTER_DIR"]), "generated") == n


def test_plan_shows_counts_and_sharing(tmp_path, inproc_env, capsys):
    spec = slow_spec(tmp_path)
    code, stdout, stderr = ganrm(capsys, "plan", spec)
    assert code == 0, stderr
    assert "56 images to generate" in stdout.replace("\n", " ") and "1 model to train" in stdout.replace("\n", " ")


def test_two_processes_shard_a_pool_like_one(tmp_path, inproc_env, capsys):
    """RANK/WORLD_SIZE (as set by accelerate launch) split the items; the result equals 1 process (that one,
    and the `check`s, in-process)."""
    env = inproc_env
    spec = slow_spec(tmp_path)
    run_service(spec, tmp_path / "r1", cache=tmp_path / "one")
    two = {**env, "GANRM_BENCH_CACHE": str(tmp_path / "two"), "WORLD_SIZE": "2"}
    procs = [subprocess.Popen([sys.executable, "-m", "ganrm_bench.harness.app.cli.main", "run", str(spec), "--out", str(tmp_path / f"r2_{r}")],
                              env={**two, "RANK": str(r)}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for r in (0, 1)]
    try:
        for p in procs:
            _, stderr = p.communicate(timeout=300)
            assert p.returncode == 0, stderr
    finally:  # never leave a rank behind, waiting for its partner's items
        for p in procs:
            if p.poll() is None:
                p.kill()
    a = {p.name: p.read_bytes() for p in (tmp_path / "one" / "items").glob("*/*.png")}
    b = {p.name: p.read_bytes() for p in (tmp_path / "two" / "items").glob("*/*.png")}
    assert a == b and len(a) > 50
    r1 = pd.read_csv(tmp_path / "r1" / "results.csv")
    assert pd.read_csv(tmp_path / "r2_0" / "results.csv")["value"].tolist() == r1["value"].tolist()
    assert not (tmp_path / "r2_1").exists()  # process 0 alone writes the run directory
    code, same, _ = ganrm(capsys, "check", tmp_path / "r2_0", "--baseline", tmp_path / "r1")  # equal values, other numerics: said in one line
    assert code == 0 and "numerics: run and baseline were computed under different numerics (run vs baseline: world_size: 2 vs 1)" \
        in " ".join(same.split()), same
    assert "numerics:" not in ganrm(capsys, "check", tmp_path / "r1", "--baseline", tmp_path / "r1")[1]
