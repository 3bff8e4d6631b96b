"""Several processes of one launch (RANK / WORLD_SIZE, as `accelerate launch` sets them), in real
subprocesses: one rank fails, all stop with the real error; scores and metrics are sharded and
byte-identical to one process."""

import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from tests.helpers.cli import slow_spec
from tests.helpers.clirun import run_in_process
from tests.helpers.toy_plugins import count  # noqa: E402


def launch(spec: Path, env: dict, out: Path, world: int = 2, timeout: float = 300, per_rank=lambda r: {},
           args: tuple[str, ...] = ()) -> list[tuple[int, str, float]]:
    """Start `world` ranks of `ganrm-bench run`; (exit code, stderr, seconds) per rank."""
    t0 = time.monotonic()
    procs = [subprocess.Popen([sys.executable, "-m", "ganrm_bench.harness.app.cli.main", "run", str(spec), "--out", str(out / f"rank{r}"), *args],
                              env={**env, "WORLD_SIZE": str(world), "RANK": str(r), **per_rank(r)}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for r in range(world)]
    results = []
    try:
        for p in procs:
            _, stderr = p.communicate(timeout=timeout)
            results.append((p.returncode, stderr, time.monotonic() - t0))
    finally:  # never leave a rank behind
        for p in procs:
            if p.poll() is None:
                p.kill()
    return results


def test_one_rank_fails_all_stop_promptly_with_the_real_error(tmp_path, env):
    spec = slow_spec(tmp_path)
    spec.write_text(spec.read_text().replace("batch_size: 2}", "batch_size: 2, fail_on_rank: 1}"))
    env = {**env, "GANRM_BENCH_SHARD_TIMEOUT": "240"}  # the old behaviour: waiting this long, then a vague timeout
    (rc0, err0, t0), (rc1, err1, t1) = launch(spec, env, tmp_path)
    assert rc1 != 0 and "failed on purpose on rank 1" in err1
    assert rc0 != 0, err0
    assert "process 1 of 2 failed" in err0 and "failed on purpose on rank 1" in err0, err0
    assert "timed out" not in err0  # stopped by the peer's failure marker, not by the 240 s shard timeout


def test_a_failure_marker_of_an_earlier_launch_does_not_stop_a_rerun(tmp_path, env):
    spec = slow_spec(tmp_path)
    failing = tmp_path / "failing.yaml"
    failing.write_text(spec.read_text().replace("batch_size: 2}", "batch_size: 2, fail_on_rank: 1}"))
    assert all(rc != 0 for rc, _, _ in launch(failing, env, tmp_path / "a"))
    assert list((Path(env["GANRM_BENCH_CACHE"]) / "failures").glob("*.rank1.txt"))  # left behind by the failed launch
    results = launch(spec, env, tmp_path / "b")
    assert all(rc == 0 for rc, _, _ in results), results


@pytest.mark.parametrize("workers", [0, 2])
def test_two_processes_split_scoring_and_metrics_byte_identically(tmp_path, inproc_env, workers):
    """… also with items decoded in 2 DataLoader workers per process (one process decodes in its own).
    The one-process reference runs in this process (harness.app.services.run, as `run` does)."""
    env = inproc_env
    spec = slow_spec(tmp_path)
    batches = ("--set", "runtime.batch_size=4")  # 12 scoring batches: several per process, for the loader workers
    run_in_process(spec, tmp_path / "r1", cache=tmp_path / "one", sets=[batches[1]])
    scored_by_one = count(Path(env["TOY_COUNTER_DIR"]), "scored")
    for r in (0, 1):
        (tmp_path / f"counters{r}").mkdir()
    two = {**env, "GANRM_BENCH_CACHE": str(tmp_path / "two"), "GANRM_BENCH_PROGRESS": "1", "GANRM_BENCH_PROGRESS_INTERVAL": "0"}
    results = launch(spec, two, tmp_path, per_rank=lambda r: {"TOY_COUNTER_DIR": str(tmp_path / f"counters{r}")},
                     args=(*batches, "--set", f"runtime.loader_workers={workers}"))
    assert all(rc == 0 for rc, _, _ in results), results
    progress = [[line for line in err.splitlines() if line.startswith("score ")] for _, err, _ in results]
    assert progress[0] and not progress[1]  # progress lines from process 0 alone (both scored)
    assert (tmp_path / "rank0" / "results.csv").exists() and not (tmp_path / "rank1").exists()  # one run directory
    scored = [count(tmp_path / f"counters{r}", "scored") for r in (0, 1)]
    assert sum(scored) == scored_by_one and min(scored) > 0  # each item scored once, the work split between the ranks
    npy = lambda root: {p.name: p.read_bytes() for p in (root / "items").glob("*/*.npy")}  # noqa: E731
    a, b = npy(tmp_path / "one"), npy(tmp_path / "two")
    assert a == b and len(a) >= 48  # the 8 × 6 pool's scores
    r1 = pd.read_csv(tmp_path / "r1" / "results.csv")
    assert pd.read_csv(tmp_path / "rank0" / "results.csv")["value"].tolist() == r1["value"].tolist()
    manifests = list((tmp_path / "two" / "objects").glob("*/*/manifest.json"))
    assert len(manifests) == len(list((tmp_path / "one" / "objects").glob("*/*/manifest.json")))  # each published once
    assert not list((tmp_path / "two" / "tmp").iterdir())  # no second copy left behind by another process


def test_two_launches_on_one_cache_compute_each_node_once(tmp_path, env):
    """Process 0 of a launch holds the node's lock while its processes compute it together, so a
    second job on the same cache waits and loads (it would otherwise generate and train the same
    nodes at once, into the same checkpoints)."""
    spec = slow_spec(tmp_path, delay=0.05)
    jobs = []
    for job in ("a", "b"):
        procs = [subprocess.Popen([sys.executable, "-m", "ganrm_bench.harness.app.cli.main", "run", str(spec), "--out", str(tmp_path / f"{job}{r}")],
                                  env={**env, "WORLD_SIZE": "2", "RANK": str(r), "GANRM_BENCH_RUN_ID": job},
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for r in (0, 1)]
        jobs += procs
    try:
        for p in jobs:
            _, stderr = p.communicate(timeout=300)
            assert p.returncode == 0, stderr
    finally:
        for p in jobs:
            if p.poll() is None:
                p.kill()
    assert count(Path(env["TOY_COUNTER_DIR"]), "generated") == 56  # every image once, over both jobs
    assert count(Path(env["TOY_COUNTER_DIR"]), "trained") == 1
    a, b = (pd.read_csv(tmp_path / f"{job}0" / "results.csv")["value"].tolist() for job in ("a", "b"))
    assert a == b  # (a hang ends at the 300 s communicate timeout above)
