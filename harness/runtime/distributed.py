"""Process rank and world size for sharded work, from the environment any launcher sets
(`accelerate launch`, torchrun, SLURM via accelerate), with no process group needed for sharding.

One rank fails, all stop: a rank whose work raises writes a failure marker (its rank and the error)
under `<store>/failures/` before it releases anything; every wait on other ranks (their shard files,
a node's lock) checks the markers of the same launch and raises `PeerFailure` naming the first
rank's error — so no rank sits out a 24 h shard timeout or computes on after a peer died. Waits poll
with back-off and stat only up to the first missing file (cheap on NFS).

Two launches on one cache: a node that all processes of a launch compute together (a sharded pool,
a data-parallel fine-tune) is guarded by process 0 holding the node's lock (`launch_lock`), so a
second job waits and then loads it instead of training the same node into the same checkpoints."""

from __future__ import annotations

import contextlib
import hashlib
import os
import time
from pathlib import Path
from typing import Iterator

from filelock import Timeout

from ganrm_bench.harness.errors import UserError

#: markers older than this process are from an earlier launch and never count
_STARTED = time.time()


class PeerFailure(UserError):
    """Another process of this launch failed; its error is in the message."""

    exit_code = 1


def rank_and_world() -> tuple[int, int]:
    rank = int(os.environ.get("RANK", os.environ.get("GANRM_BENCH_RANK", "0")))
    world = int(os.environ.get("WORLD_SIZE", os.environ.get("GANRM_BENCH_WORLD_SIZE", "1")))
    if not 0 <= rank < max(world, 1):
        raise UserError(f"RANK={rank} is outside WORLD_SIZE={world}")
    return rank, max(world, 1)


def _launch_tag() -> str:
    """What the processes of one launch share (and two jobs on one cache do not, as a rule)."""
    parts = [os.environ.get(v, "") for v in ("GANRM_BENCH_RUN_ID", "TORCHELASTIC_RUN_ID", "MASTER_ADDR", "MASTER_PORT", "WORLD_SIZE")]
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:12]


def _marker(root: Path, rank: int) -> Path:
    return Path(root) / "failures" / f"{_launch_tag()}.rank{rank}.txt"


def mark_failure(root: Path, exc: BaseException) -> None:
    """Tell the other processes of this launch that this one failed, and why (multi-process only)."""
    rank, world = rank_and_world()
    if world == 1 or isinstance(exc, PeerFailure):
        return
    path = _marker(root, rank)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(f"{type(exc).__name__}: {exc}" if not isinstance(exc, UserError) else str(exc))
    os.replace(tmp, path)


def check_peers(root: Path | None) -> None:
    """Raise PeerFailure if another process of this launch has marked a failure since this one started."""
    if root is None:
        return
    rank, world = rank_and_world()
    if world == 1:
        return
    for r in range(world):
        p = _marker(root, r)
        if r == rank or not p.exists():
            continue
        try:
            if p.stat().st_mtime < _STARTED:  # an earlier launch's
                continue
            message = p.read_text()
        except OSError:
            continue
        raise PeerFailure(f"process {r} of {world} failed: {message}", hint="fix the cause and re-run: finished items are kept")


def clear_failure(root: Path) -> None:
    """Forget this rank's marker of an earlier launch (at start-up)."""
    rank, world = rank_and_world()
    if world > 1:
        _marker(root, rank).unlink(missing_ok=True)


@contextlib.contextmanager
def failing_together(root: Path) -> Iterator[None]:
    """Mark a failure of the body for the other ranks before the exception leaves (and a lock is released)."""
    try:
        yield
    except BaseException as exc:
        if not isinstance(exc, (KeyboardInterrupt, SystemExit)):
            mark_failure(root, exc)
        raise


def _backoff(poll: float, max_poll: float) -> Iterator[float]:
    while True:
        yield poll
        poll = min(poll * 1.5, max_poll)


def wait_for_files(paths: list[Path], *, what: str, timeout: float | None = None, poll: float = 0.05,
                   max_poll: float = 5.0, root: Path | None = None) -> None:
    """Block until every path exists (other processes' shards); a clear error after `timeout` s, or
    as soon as another process of this launch marks a failure in the store at `root`."""
    timeout = float(os.environ.get("GANRM_BENCH_SHARD_TIMEOUT", 24 * 3600)) if timeout is None else timeout
    deadline = time.monotonic() + timeout
    pending = list(paths)
    for delay in _backoff(poll, max_poll):
        while pending and pending[0].exists():  # stat only up to the first missing file
            pending.pop(0)
        if not pending:
            return
        check_peers(root)
        if time.monotonic() > deadline:
            raise UserError(f"timed out waiting for {len(pending)} {what}", hint="did another process die? re-run: finished items are kept")
        time.sleep(delay)


@contextlib.contextmanager
def node_lock(store, key: str, *, poll: float = 0.05, max_poll: float = 5.0) -> Iterator[None]:
    """The store's lock on a node, waiting with back-off and giving up when another rank failed."""
    lock = store.file_lock(key)
    for delay in _backoff(poll, max_poll):
        try:
            lock.acquire(timeout=delay)
            break
        except Timeout:
            check_peers(store.root)
    try:
        check_peers(store.root)  # the holder may have failed just before releasing it
        yield
    finally:
        lock.release()


@contextlib.contextmanager
def launch_lock(store, key: str) -> Iterator[None]:
    """Process 0 holds the node's lock across jobs while the launch computes it; the other processes
    start once it has the lock (a "go" file naming process 0's start time: an earlier launch's go
    file, older than a minute before this process, does not count) or once the node is published."""
    rank, _ = rank_and_world()
    go = Path(store.root) / "locks" / f"{key}.{_launch_tag()}.go"
    if rank == 0:
        with node_lock(store, key):
            tmp = go.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(repr(_STARTED))
            os.replace(tmp, go)
            yield
        return
    for delay in _backoff(0.05, 5.0):
        if store.has(key):  # published meanwhile (process 0, finding it there, loads it without a go)
            break
        try:
            if float(go.read_text()) >= _STARTED - 60:
                break
        except (OSError, ValueError):
            pass
        check_peers(store.root)
        time.sleep(delay)
    yield
