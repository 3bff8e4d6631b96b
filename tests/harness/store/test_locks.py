"""Store locks on shared file systems (harness/store/locks.py): exclusive-create lock files with a
heartbeat hold across processes, a dead holder's lock is broken after `stale` seconds but a live
one never is, the mode follows the store's mount; and two simulated nodes (separate launches of
ranks with their own NODE_RANK / LOCAL_RANK, one cache, shared-FS locks) give byte-identical
results to one process."""

from __future__ import annotations

import multiprocessing as mp
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from filelock import FileLock, Timeout

from ganrm_bench.harness.errors import UserError
from ganrm_bench.harness.store import locks
from ganrm_bench.harness.store.artifacts import Store
from tests.helpers.cli import cli, slow_spec
from tests.helpers.toy_plugins import count  # noqa: E402


def _bump(path: str, lock_path: str, n: int) -> None:
    lock = locks.SharedFSLock(lock_path, stale=30)
    for _ in range(n):
        with lock.acquire():
            value = int(Path(path).read_text())
            time.sleep(0.001)  # widen the read-modify-write window
            Path(path).write_text(str(value + 1))


def test_shared_fs_lock_excludes_other_processes(tmp_path):
    counter = tmp_path / "n"
    counter.write_text("0")
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_bump, args=(str(counter), str(tmp_path / "k.lock"), 40)) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0, 0]
    assert counter.read_text() == "120"  # no lost update
    assert not (tmp_path / "k.lock").exists()  # released


def test_a_dead_holders_lock_is_broken_after_stale_seconds(tmp_path):
    path = tmp_path / "k.lock"
    path.write_text("otherhost 4242 deadbeef")  # a holder that died on another host: no heartbeat
    t0 = time.monotonic()
    with locks.SharedFSLock(path, stale=0.3).acquire():
        waited = time.monotonic() - t0
        assert "otherhost" not in path.read_text()  # ours now
    assert 0.3 <= waited < 5 and not path.exists()


def test_a_live_holder_is_never_broken(tmp_path):
    path = tmp_path / "k.lock"
    holder = locks.SharedFSLock(path, stale=0.2)
    holder.acquire()
    try:
        with pytest.raises(Timeout):
            locks.SharedFSLock(path, stale=0.2).acquire(timeout=1.0)  # 5 × stale: the heartbeat keeps it alive
        assert holder.is_locked and path.exists()
    finally:
        holder.release()
    assert not path.exists()


def test_lock_mode_follows_the_mount_and_the_env(tmp_path, monkeypatch):
    monkeypatch.delenv(locks.ENV, raising=False)
    monkeypatch.setattr(locks, "mount_type", lambda p: "nfs4")
    assert locks.lock_mode(tmp_path) == "shared" and isinstance(Store(tmp_path / "s").file_lock("k"), locks.SharedFSLock)
    monkeypatch.setattr(locks, "mount_type", lambda p: "ext4")
    assert locks.lock_mode(tmp_path) == "flock" and isinstance(Store(tmp_path / "s").file_lock("k"), FileLock)
    monkeypatch.setenv(locks.ENV, "shared")
    assert locks.lock_mode(tmp_path) == "shared"
    monkeypatch.setenv(locks.ENV, "nfs")
    with pytest.raises(UserError, match="auto, shared or flock"):
        locks.lock_mode(tmp_path)


def test_mount_type_reads_proc_mounts():
    if not Path("/proc/mounts").exists():
        pytest.skip("no /proc/mounts")
    assert locks.mount_type("/") != ""


def test_store_lock_context_releases(tmp_path, monkeypatch):
    monkeypatch.setenv(locks.ENV, "shared")
    store = Store(tmp_path / "s")
    with store.lock("k"):
        assert (tmp_path / "s" / "locks" / "k.lock").exists()
    assert not (tmp_path / "s" / "locks" / "k.lock").exists()


def _launch_node(spec: Path, env: dict, out: Path, node: int, ranks_per_node: int, world: int) -> list[subprocess.Popen]:
    """One simulated host: its ranks, as `torchrun --nnodes 2 --node_rank N` would set them."""
    procs = []
    for local in range(ranks_per_node):
        rank = node * ranks_per_node + local
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "ganrm_bench.harness.app.cli.main", "run", str(spec), "--out", str(out / f"rank{rank}")],
            env={**env, "WORLD_SIZE": str(world), "RANK": str(rank), "LOCAL_RANK": str(local), "NODE_RANK": str(node),
                 "GROUP_RANK": str(node), "LOCAL_WORLD_SIZE": str(ranks_per_node), "GANRM_BENCH_RUN_ID": "two-nodes"},
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    return procs


def test_two_simulated_nodes_on_one_cache_match_one_process(tmp_path, env):
    spec = slow_spec(tmp_path)
    one = {**env, "GANRM_BENCH_CACHE": str(tmp_path / "one")}
    assert cli("run", spec, "--out", tmp_path / "r1", env=one).returncode == 0
    shared = {**env, "GANRM_BENCH_CACHE": str(tmp_path / "shared"), locks.ENV: "shared", locks.STALE_ENV: "30"}
    procs = _launch_node(spec, shared, tmp_path, 0, 2, 4) + _launch_node(spec, shared, tmp_path, 1, 2, 4)
    try:
        for p in procs:
            _, err = p.communicate(timeout=300)
            assert p.returncode == 0, err
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    npy = lambda root: {p.name: p.read_bytes() for p in (root / "items").glob("*/*.npy")}  # noqa: E731
    png = lambda root: {p.name: p.read_bytes() for p in (root / "items").glob("*/*.png")}  # noqa: E731
    a, b = npy(tmp_path / "one"), npy(tmp_path / "shared")
    assert a == b and len(a) >= 48
    assert png(tmp_path / "one") == png(tmp_path / "shared")
    r1 = pd.read_csv(tmp_path / "r1" / "results.csv")
    assert pd.read_csv(tmp_path / "rank0" / "results.csv")["value"].tolist() == r1["value"].tolist()
    assert count(Path(env["TOY_COUNTER_DIR"]), "trained") == 2  # once by the single process, once by the 4-rank launch
    assert not list((tmp_path / "shared" / "locks").glob("*.lock"))  # every lock released
    assert not list((tmp_path / "shared" / "tmp").iterdir())
