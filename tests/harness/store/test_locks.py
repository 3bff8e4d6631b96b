"""Store locks on shared file systems (harness/store/locks.py): exclusive-create lock files with a
heartbeat hold across processes, a dead holder's lock is broken after `stale` seconds but a live
one never is, the mode follows the store's mount; and two simulated nodes (separate launches of
ranks with their own NODE_RANK / LOCAL_RANK, one cache, shared-FS locks) give byte-identical
results to one process."""

from __future__ import annotations

import multiprocessing as mp
import os
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
from tests.helpers.cli import slow_spec
from tests.helpers.clirun import run_in_process
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


class FakeClock:
    """The lock module's time.monotonic / time.sleep on a counter: waits counted, not timed. `on_sleep`
    runs after every sleep (e.g. a holder's heartbeat)."""

    def __init__(self, monkeypatch, on_sleep=lambda now: None):
        self.now, self.sleeps, self.on_sleep = 1000.0, [], on_sleep
        monkeypatch.setattr(locks.time, "monotonic", lambda: self.now)
        monkeypatch.setattr(locks.time, "sleep", self.sleep)

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        self.on_sleep(self.now)


def test_a_dead_holders_lock_is_broken_after_stale_seconds(tmp_path, monkeypatch):
    path = tmp_path / "k.lock"
    path.write_text("otherhost 4242 deadbeef")  # a holder that died on another host: no heartbeat
    clock = FakeClock(monkeypatch)
    with locks.SharedFSLock(path, stale=0.3).acquire():
        assert "otherhost" not in path.read_text()  # ours now
    # the waiter saw the file unchanged for 0.3 s of its clock, polling every 0.05 s: one poll to see it
    # stale, one to take it (and one of float rounding)
    waited = sum(clock.sleeps)
    assert 0.3 <= waited <= 0.3 + 3 * 0.05 and max(clock.sleeps) <= 0.05 and not path.exists()


def test_a_live_holder_is_never_broken(tmp_path, monkeypatch):
    """A holder whose file changes every stale / 4 s (its heartbeat; simulated on the waiter's clock)
    is never broken, however long the waiter waits."""
    path = tmp_path / "k.lock"
    holder = locks.SharedFSLock(path, stale=0.2)
    holder._heartbeat = lambda stop: None  # its beats come from the clock below
    holder.acquire()
    beats = []

    def heartbeat(now):  # the waiter polls every 0.05 s = stale / 4: a beat between any two polls
        beats.append(now)
        os.utime(path, ns=(len(beats) * 10**9,) * 2)  # a new mtime, whatever the file system's resolution

    clock = FakeClock(monkeypatch, on_sleep=heartbeat)
    try:
        with pytest.raises(Timeout):
            locks.SharedFSLock(path, stale=0.2).acquire(timeout=2.0)  # 10 × stale
        assert holder.is_locked and path.exists() and path.read_text() == holder.token
        assert sum(clock.sleeps) >= 2.0 and len(beats) == len(clock.sleeps)
    finally:
        holder.release()
    assert not path.exists()


@pytest.mark.timeout(60)
def test_the_heartbeat_touches_the_lock_file(tmp_path):
    path = tmp_path / "k.lock"
    lock = locks.SharedFSLock(path, stale=0.2)  # a beat every 0.05 s
    with lock.acquire():
        first = os.stat(path).st_mtime_ns
        while os.stat(path).st_mtime_ns == first:  # ends at the first beat that the file system records
            time.sleep(0.05)
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


def test_two_simulated_nodes_on_one_cache_match_one_process(tmp_path, inproc_env):
    """The one-process reference runs in this process (harness.app.services.run, as `run` does)."""
    env = inproc_env
    spec = slow_spec(tmp_path)
    run_in_process(spec, tmp_path / "r1", cache=tmp_path / "one")
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
